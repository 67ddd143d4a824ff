//! Calls of the REST shim shared by the integration tests: registering, publishing, downloading,
//! reading JSON, and the S3 target that .ci/run provides.
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use raven_registry::config::{Config, StorageType};

use super::TestApp;

/// A package name no other test (nor an earlier run against the same bucket) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Registers `username` (email USERNAME@example.com) and returns the login token.
pub async fn register(app: &TestApp, username: &str) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": "correct horse battery",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// POST /packages/publish with `metadata` then `tarball`, as `raven pkg` sends it.
pub async fn publish(app: &TestApp, token: &str, name: &str, version: &str, tarball: Vec<u8>) -> reqwest::Response {
    let form = Form::new()
        .text("metadata", json!({"name": name, "version": version}).to_string())
        .part("tarball", Part::bytes(tarball).file_name("package.tar.gz").mime_str("application/gzip").unwrap());
    app.client.post(app.url("/api/v1/packages/publish")).bearer_auth(token).multipart(form).send().await.unwrap()
}

pub async fn publish_ok(app: &TestApp, token: &str, name: &str, version: &str, tarball: Vec<u8>) -> Value {
    let res = publish(app, token, name, version, tarball).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "publishing {name} {version}: {body}");
    body
}

pub async fn download(app: &TestApp, name: &str, version: &str) -> Vec<u8> {
    let res = app.client.get(app.url(&format!("/api/v1/packages/{name}/{version}/download"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "download {name} {version}");
    res.bytes().await.unwrap().to_vec()
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
            eprintln!("skipping {test}: TEST_S3_ENDPOINT is not set (.ci/run starts an S3-API server and sets it)");
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
