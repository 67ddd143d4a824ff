//! Calls of the REST shim shared by the integration tests: registering, API tokens, publishing,
//! yanking, downloading, reading JSON and v1 errors, and the S3 target that .ci/run provides.
use reqwest::multipart::{Form, Part};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use raven_registry::config::{Config, StorageType};

use super::tarballs;
use super::TestApp;

/// A package name no other test (nor an earlier run against the same bucket) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

// ---------------------------------------------------------------------------------------------
// Accounts and tokens
// ---------------------------------------------------------------------------------------------

/// The password every test user registers with.
pub const PASSWORD: &str = "correct horse battery";

/// A registered user: its login token, its id, and the whole 201 body.
pub struct User {
    pub token: String,
    pub user_id: String,
    pub body: Value,
}

/// The body of POST /api/v1/auth/register.
pub fn registration(username: &str, email: &str, password: &str) -> Value {
    json!({"username": username, "email": email, "password": password})
}

/// The registration of `username` (email USERNAME@example.com, password PASSWORD) at `base`, not
/// yet sent.
fn register_request_at(client: &reqwest::Client, base: &str, username: &str) -> RequestBuilder {
    let body = registration(username, &format!("{username}@example.com"), PASSWORD);
    client.post(format!("{base}/api/v1/auth/register")).json(&body)
}

/// The registration of `username` (email USERNAME@example.com, password PASSWORD) on `app`, not yet
/// sent: add headers, then hand it to `expect_registered`.
pub fn register_request(app: &TestApp, username: &str) -> RequestBuilder {
    register_request_at(&app.client, &app.base, username)
}

/// Sends a registration; asserts 201 and returns the user.
pub async fn expect_registered(req: RequestBuilder) -> User {
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "registering: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("registering: not JSON ({e}): {text}"));
    let token = body["token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_owned();
    let user_id = body["user_id"].as_str().unwrap_or_else(|| panic!("no user_id: {body}")).to_owned();
    User { token, user_id, body }
}

/// Registers `username` with the email and password given; asserts 201.
pub async fn register_with(app: &TestApp, username: &str, email: &str, password: &str) -> User {
    expect_registered(app.client.post(app.url("/api/v1/auth/register")).json(&registration(username, email, password)))
        .await
}

/// Registers `username` (email USERNAME@example.com, password PASSWORD); asserts 201.
pub async fn register_user(app: &TestApp, username: &str) -> User {
    expect_registered(register_request(app, username)).await
}

/// Registers `username` (email USERNAME@example.com) and returns the login token.
pub async fn register(app: &TestApp, username: &str) -> String {
    register_user(app, username).await.token
}

/// Registers `username` on the server at `base` (a binary run as a child process) and returns the
/// login token.
pub async fn register_at(client: &reqwest::Client, base: &str, username: &str) -> String {
    expect_registered(register_request_at(client, base, username)).await.token
}

/// POST /api/v1/users/me/tokens with `body` as `login`; asserts 201 and returns the body.
pub async fn create_token(app: &TestApp, login: &str, body: Value) -> Value {
    let res = app.client.post(app.url("/api/v1/users/me/tokens")).bearer_auth(login).json(&body).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "creating a token {body}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("creating a token: not JSON ({e}): {text}"))
}

// ---------------------------------------------------------------------------------------------
// Publishing and yanking
// ---------------------------------------------------------------------------------------------

/// What a publish request carries besides its tarball.
#[derive(Clone)]
pub enum Meta {
    /// No metadata part at all.
    None,
    /// A text part with this name and text.
    Part(&'static str, String),
}

/// The metadata part `raven pkg` sends.
pub fn meta(name: &str, version: &str) -> Meta {
    Meta::Part("metadata", json!({"name": name, "version": version}).to_string())
}

/// The multipart body of a publish: `meta`, then `tarball`, as `raven pkg` sends them.
pub fn publish_form(meta: Meta, tarball: Option<Vec<u8>>) -> Form {
    let mut form = Form::new();
    if let Meta::Part(part, text) = meta {
        form = form.text(part, text);
    }
    if let Some(bytes) = tarball {
        form =
            form.part("tarball", Part::bytes(bytes).file_name("package.tar.gz").mime_str("application/gzip").unwrap());
    }
    form
}

/// POST /api/v1/packages/publish with any token (or none), metadata and tarball (or none).
pub async fn publish_raw(app: &TestApp, token: Option<&str>, meta: Meta, tarball: Option<Vec<u8>>) -> Response {
    let mut req = app.client.post(app.url("/api/v1/packages/publish")).multipart(publish_form(meta, tarball));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// POST /api/v1/packages/publish at `base`, as `raven pkg` sends it; an error when the server is gone.
pub async fn publish_at(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    version: &str,
    tarball: Vec<u8>,
) -> reqwest::Result<Response> {
    let form = publish_form(meta(name, version), Some(tarball));
    client.post(format!("{base}/api/v1/packages/publish")).bearer_auth(token).multipart(form).send().await
}

/// POST /packages/publish with `metadata` then `tarball`, as `raven pkg` sends it.
pub async fn publish(app: &TestApp, token: &str, name: &str, version: &str, tarball: Vec<u8>) -> Response {
    publish_at(&app.client, &app.base, token, name, version, tarball).await.unwrap()
}

/// Publishes `tarball`; asserts 201 and returns the body.
pub async fn publish_ok(app: &TestApp, token: &str, name: &str, version: &str, tarball: Vec<u8>) -> Value {
    let res = publish(app, token, name, version, tarball).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "publishing {name} {version}: {body}");
    body
}

/// Publishes the small valid package `tarballs::package(name, version)`; asserts 201 and returns
/// its bytes.
pub async fn publish_package(app: &TestApp, token: &str, name: &str, version: &str) -> Vec<u8> {
    let bytes = tarballs::package(name, version);
    publish_ok(app, token, name, version, bytes.clone()).await;
    bytes
}

/// PUT /api/v1/packages/NAME/owners: adds `username` with `role`, or changes their role.
pub async fn add_owner(app: &TestApp, token: &str, name: &str, username: &str, role: &str) -> Response {
    app.client
        .put(app.url(&format!("/api/v1/packages/{name}/owners")))
        .bearer_auth(token)
        .json(&json!({"username": username, "role": role}))
        .send()
        .await
        .unwrap()
}

/// DELETE /api/v1/packages/NAME/owners/USERNAME.
pub async fn remove_owner(app: &TestApp, token: &str, name: &str, username: &str) -> Response {
    app.client
        .delete(app.url(&format!("/api/v1/packages/{name}/owners/{username}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// DELETE /api/v1/packages/NAME/VERSION.
pub async fn yank(app: &TestApp, token: &str, name: &str, version: &str) -> Response {
    app.client.delete(app.url(&format!("/api/v1/packages/{name}/{version}"))).bearer_auth(token).send().await.unwrap()
}

/// Yanks; asserts 200 and `"yanked": true`.
pub async fn yank_ok(app: &TestApp, token: &str, name: &str, version: &str) {
    let res = yank(app, token, name, version).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "yanking {name} {version}: {body}");
    assert_eq!(body["yanked"], true);
}

/// PUT /api/v1/packages/NAME/VERSION/unyank.
pub async fn unyank(app: &TestApp, token: &str, name: &str, version: &str) -> Response {
    app.client
        .put(app.url(&format!("/api/v1/packages/{name}/{version}/unyank")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// GET `path`, without a token.
pub async fn get(app: &TestApp, path: &str) -> Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

/// GET `path`; the body as JSON, or as a JSON string when it is not JSON.
pub async fn get_json(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// GET `path`; asserts 200 and a JSON body, and returns it.
pub async fn get_ok(app: &TestApp, path: &str) -> Value {
    let res = get(app, path).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"))
}

/// Asserts the v1 error shape (a non-empty message, an object of details, and Retry-After on a 503)
/// with `status` and `code`; returns the body.
pub async fn expect_error(res: Response, status: u16, code: &str) -> Value {
    let got = res.status();
    let url = res.url().path().to_owned();
    let retry_after = res.headers().get("retry-after").cloned();
    let text = res.text().await.unwrap();
    assert_eq!(got.as_u16(), status, "{url}: expected {status} {code}, got {got}: {text}");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: error body is not JSON ({e}): {text}"));
    assert_eq!(body["error"], code, "{url}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{url}: a message is required: {body}");
    assert!(body["details"].is_object(), "{url}: details must be an object: {body}");
    if status == 503 {
        assert!(retry_after.is_some(), "{url}: a 503 carries Retry-After: {body}");
    }
    body
}

/// Asserts a timestamp in RFC 3339 and returns it.
pub fn rfc3339(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))).expect("RFC 3339")
}

pub fn download_path(name: &str, version: &str) -> String {
    format!("/api/v1/packages/{name}/{version}/download")
}

/// A complete GET of a tarball; asserts 200 and returns the body.
pub async fn download(app: &TestApp, name: &str, version: &str) -> Vec<u8> {
    let res = get(app, &download_path(name, version)).await;
    assert_eq!(res.status(), StatusCode::OK, "download {name} {version}");
    res.bytes().await.unwrap().to_vec()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Blob keys of one package.
pub async fn keys_of(app: &TestApp, name: &str) -> Vec<String> {
    let prefix = format!("packages/{name}/");
    let mut keys: Vec<String> =
        app.state.storage.list_keys().await.unwrap().into_iter().filter(|k| k.starts_with(&prefix)).collect();
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------------------------

/// The S3-API server of .ci/run (moto), when TEST_S3_ENDPOINT is set.
pub struct S3Target {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
}

pub fn s3_target(test: &str) -> Option<S3Target> {
    match std::env::var("TEST_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(S3Target {
            endpoint,
            bucket: std::env::var("TEST_S3_BUCKET").unwrap_or_else(|_| "raven-test".into()),
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        }),
        _ => {
            super::skipped(test, "an S3-API server (set TEST_S3_ENDPOINT; .ci/run starts one)");
            None
        }
    }
}

pub fn use_s3(cfg: &mut Config, s3: &S3Target) {
    cfg.storage_type = StorageType::S3;
    cfg.s3_bucket = Some(s3.bucket.clone());
    cfg.s3_endpoint = Some(s3.endpoint.clone());
    cfg.s3_region = s3.region.clone();
}
