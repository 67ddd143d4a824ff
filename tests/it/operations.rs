//! Operations: Prometheus metrics at /metrics, JSON logs from the real binary, S3-compatible storage
//! against a real S3-API server (when TEST_S3_ENDPOINT is set), and two instances sharing one
//! PostgreSQL database (when TEST_DATABASE_URL is set) and one storage.
use crate::testkit as common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{
    create_token, download, get_json, keys_of, publish, publish_ok, register, s3_target, sha256_hex, unique, use_s3,
    S3Target,
};
use common::tarballs::{dir, file, manifest, package, targz};
use common::{free_port, spawn, spawn_with, TestApp};
use raven_registry::config::Config;
use raven_registry::storage::{PutOutcome, Storage};
use reqwest::StatusCode;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

async fn scrape(app: &TestApp) -> String {
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ct = res.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain"), "Prometheus text format, got {ct}");
    res.text().await.unwrap()
}

/// The value of the first sample of `metric` whose labels include every one of `labels`
/// (`key="value"` strings).
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (name, rest) = match series.split_once('{') {
            Some((n, r)) => (n, r.trim_end_matches('}')),
            None => (series, ""),
        };
        if name != metric {
            return None;
        }
        let present: Vec<&str> = rest.split(',').collect();
        labels.iter().all(|l| present.contains(l)).then(|| value.parse().ok())?
    })
}

fn expect_sample(text: &str, metric: &str, labels: &[&str]) -> f64 {
    sample(text, metric, labels).unwrap_or_else(|| {
        let related: Vec<&str> = text.lines().filter(|l| l.contains(metric)).collect();
        panic!("no sample {metric}{labels:?} in /metrics; related lines:\n{}", related.join("\n"))
    })
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_registry_events() {
    let app = spawn().await;
    let token = register(&app, "metrix").await;
    let name = unique("metered");
    publish_ok(&app, &token, &name, "1.0.0", package(&name, "1.0.0")).await;
    let (status, _) = get_json(&app, &format!("/api/v1/packages/{name}"), None).await;
    assert_eq!(status, 200);
    let (status, _) = get_json(&app, "/api/v1/packages/no-such-package", None).await;
    assert_eq!(status, 404);
    assert_eq!(download(&app, &name, "1.0.0").await, package(&name, "1.0.0"));
    let res =
        app.client.delete(app.url(&format!("/api/v1/packages/{name}/1.0.0"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ok = app.gql("query OpsProbe { stats { totalPackages } }", json!({}), None).await;
    assert!(ok["errors"].is_null(), "{ok}");
    let failed = app.gql("mutation OpsBroken { refreshToken { token } }", json!({}), None).await;
    assert!(!failed["errors"].is_null(), "{failed}");
    let _ = app.client.get(app.url("/definitely/not/a/route")).send().await.unwrap();

    // A download is counted once the server has sent its last byte, which may be just after the
    // client has read it.
    let mut text = scrape(&app).await;
    for _ in 0..100 {
        if sample(&text, "raven_downloads_total", &[]).is_some_and(|n| n >= 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        text = scrape(&app).await;
    }
    let route = r#"route="/api/v1/packages/{name}""#;
    assert!(expect_sample(&text, "raven_http_requests_total", &[route, r#"method="GET""#, r#"status="200""#]) >= 1.0);
    assert!(expect_sample(&text, "raven_http_requests_total", &[route, r#"method="GET""#, r#"status="404""#]) >= 1.0);
    assert!(
        expect_sample(&text, "raven_http_requests_total", &[r#"route="/api/v1/packages/publish""#, r#"status="201""#])
            >= 1.0
    );
    assert!(expect_sample(&text, "raven_http_requests_total", &[r#"route="unmatched""#, r#"status="404""#]) >= 1.0);
    // No raw path (with the package name) becomes a label.
    assert!(!text.lines().any(|l| l.starts_with("raven_http") && l.contains(&name)), "raw paths leaked into labels");
    assert!(
        expect_sample(&text, "raven_http_request_duration_seconds_count", &[route, r#"method="GET""#]) >= 2.0,
        "latency histogram"
    );
    assert!(text.contains("raven_http_request_duration_seconds_bucket{"), "a histogram, not a summary");
    assert!(expect_sample(&text, "raven_publishes_total", &[]) >= 1.0);
    assert!(expect_sample(&text, "raven_yanks_total", &[r#"action="yank""#]) >= 1.0);
    assert!(expect_sample(&text, "raven_downloads_total", &[]) >= 1.0);
    assert_eq!(
        expect_sample(&text, "raven_graphql_operations_total", &[r#"operation="OpsProbe""#, r#"outcome="ok""#]),
        1.0
    );
    assert_eq!(
        expect_sample(&text, "raven_graphql_operations_total", &[r#"operation="OpsBroken""#, r#"outcome="error""#]),
        1.0
    );
    assert!(expect_sample(&text, "raven_db_statements_total", &[]) > 0.0);
    assert!(expect_sample(&text, "raven_db_pool_connections", &[r#"state="idle""#]) >= 0.0);
    assert!(expect_sample(&text, "raven_db_pool_connections", &[r#"state="in_use""#]) >= 0.0);
    assert!(expect_sample(&text, "raven_db_pool_max_connections", &[]) >= 1.0);
    assert!(expect_sample(&text, "raven_db_pool_acquire_seconds", &[]) >= 0.0);
    assert!(
        expect_sample(&text, "raven_storage_operation_duration_seconds_count", &[r#"op="put_new""#, r#"outcome="ok""#])
            >= 1.0
    );
    assert!(expect_sample(&text, "raven_storage_operation_duration_seconds_count", &[r#"op="get""#]) >= 1.0);
    let version = format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"));
    assert_eq!(expect_sample(&text, "raven_build_info", &[&version]), 1.0);
    assert!(text.contains("# TYPE raven_http_requests_total counter"), "{text}");
}

#[tokio::test]
async fn metrics_are_exempt_from_rate_limits() {
    let app = spawn_with(|c| {
        c.rate_limits_enabled = true;
        c.rate_limit_unauthenticated = 2;
    })
    .await;
    for i in 0..6 {
        let res = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "scrape {i} was limited");
    }
}

// ---------------------------------------------------------------------------------------------
// JSON logs from the real binary
// ---------------------------------------------------------------------------------------------

/// Sends SIGTERM and waits (bounded) for the process to exit.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_request_fields() {
    let data = tempfile::tempdir().unwrap();
    let pg = if common::on_postgres() { Some(common::PgDatabase::create().await) } else { None };
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raven-registry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("S3_")
            || key.starts_with("STORAGE_")
            || key.starts_with("RATE_LIMIT")
            || matches!(key.as_str(), "DATABASE_URL" | "JWT_SECRET" | "PUBLIC_URL" | "HOST" | "PORT" | "RUST_LOG")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("DATA_DIR", data.path())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RATE_LIMITS_ENABLED", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pg) = &pg {
        cmd.env("DATABASE_URL", &pg.url);
    }
    let mut child = cmd.spawn().expect("start the server binary");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("the server exited early ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "the server did not answer /health in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let res = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "jsonlog", "email": "jsonlog@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let user_id = body["user_id"].as_str().unwrap().to_owned();
    let res = client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&token)
        .header("x-request-id", "ops-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "ops-me-1");
    let res = client
        .get(format!("{base}/api/v1/packages/ghost-pkg/1.2.3"))
        .header("x-request-id", "ops-missing-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let exit = terminate(&mut child);
    assert!(exit.success(), "graceful exit on SIGTERM, got {exit}");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let all = format!("{out}{err}");

    let mut lines = Vec::new();
    for line in all.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for key in ["timestamp", "level", "message"] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
        lines.push(v);
    }
    assert!(!all.contains(token.rsplit('.').next().unwrap()), "a token reached the logs");

    let response_line = |request_id: &str| {
        lines
            .iter()
            .find(|v| v["message"] == "response" && v["span"]["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no response line for {request_id}:\n{all}"))
            .clone()
    };
    let me = response_line("ops-me-1");
    assert_eq!(me["status"], 200, "{me}");
    assert!(me["latency_ms"].is_number(), "{me}");
    assert_eq!(me["level"], "INFO");
    assert_eq!(me["span"]["method"], "GET");
    assert_eq!(me["span"]["path"], "/api/v1/users/me");
    assert_eq!(me["span"]["route"], "/api/v1/users/me");
    assert_eq!(me["span"]["user_id"], user_id.as_str(), "the user id, not the token: {me}");

    let missing = response_line("ops-missing-1");
    assert_eq!(missing["status"], 404, "{missing}");
    assert_eq!(missing["span"]["path"], "/api/v1/packages/ghost-pkg/1.2.3");
    assert_eq!(missing["span"]["route"], "/api/v1/packages/{name}/{version}");
    assert_eq!(missing["span"]["package"], "ghost-pkg");
    assert_eq!(missing["span"]["version"], "1.2.3");
    assert!(missing["span"].get("user_id").is_none(), "anonymous: {missing}");

    // Generated request ids are logged too (the registration had none of its own).
    assert!(lines.iter().any(|v| v["message"] == "response"
        && v["span"]["path"] == "/api/v1/auth/register"
        && v["status"] == 201
        && v["span"]["request_id"].as_str().is_some_and(|id| id.len() >= 32)));
    drop(pg);
}

// ---------------------------------------------------------------------------------------------
// S3-compatible storage, against a real S3-API server (moto in .ci/run)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn s3_storage_creates_only_once_and_round_trips_bytes() {
    let Some(s3) = s3_target("operations::s3_storage_creates_only_once_and_round_trips_bytes") else { return };
    let mut cfg = Config::defaults();
    use_s3(&mut cfg, &s3);
    let storage = Storage::from_config(&cfg).unwrap();
    storage.check().await.expect("the bucket answers");
    let name = unique("s3-raw");
    let key = Storage::key(&name, "1.0.0");
    let first = bytes::Bytes::from(common::tarballs::noise(300_000, 7));
    assert_eq!(storage.put_new(&key, first.clone()).await.unwrap(), PutOutcome::Created);
    assert_eq!(
        storage.put_new(&key, bytes::Bytes::from_static(b"second")).await.unwrap(),
        PutOutcome::AlreadyExists,
        "PutMode::Create must refuse an existing key"
    );
    assert_eq!(storage.get_bytes(&key).await.unwrap(), first, "the first write stays");
    assert_eq!(storage.size(&key).await.unwrap(), first.len() as u64);
    assert!(storage.age_secs(&key).await.unwrap() < 600);
    assert!(storage.list_keys().await.unwrap().contains(&key.to_string()));
    storage.delete(&key).await.unwrap();
    assert!(matches!(storage.get_bytes(&key).await, Err(raven_registry::storage::StorageError::NotFound(_))));
    storage.delete(&key).await.expect("deleting a missing blob is fine");
}

#[tokio::test]
async fn s3_publish_download_and_refusals_leave_no_object() {
    let Some(s3) = s3_target("operations::s3_publish_download_and_refusals_leave_no_object") else { return };
    let app = spawn_with(|c| use_s3(c, &s3)).await;
    let (status, ready) = get_json(&app, "/ready", None).await;
    assert_eq!(status, 200, "{ready}");
    let token = register(&app, "bucketeer").await;
    let name = unique("s3-pkg");
    let tarball = package(&name, "1.0.0");
    let body = publish_ok(&app, &token, &name, "1.0.0", tarball.clone()).await;
    assert_eq!(body["checksum"], format!("sha256:{}", sha256_hex(&tarball)));
    assert_eq!(keys_of(&app, &name).await, vec![Storage::key(&name, "1.0.0").to_string()]);
    assert_eq!(download(&app, &name, "1.0.0").await, tarball, "byte-identical through S3");
    let head = app.client.head(app.url(&format!("/api/v1/packages/{name}/1.0.0/download"))).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()[reqwest::header::CONTENT_LENGTH], tarball.len().to_string().as_str());

    // Refused publishes store nothing: metadata disagreeing with raven.toml, a hostile path, a
    // second publish of the same version with other bytes.
    let res = publish(&app, &token, &name, "2.0.0", package(&name, "2.0.1")).await;
    assert_eq!(res.status(), 400);
    let hostile = targz(&[file("raven.toml", manifest(&name, "3.0.0")), file("../escape.txt", "x")]);
    let res = publish(&app, &token, &name, "3.0.0", hostile).await;
    assert_eq!(res.status(), 400);
    let other = targz(&[file("raven.toml", manifest(&name, "1.0.0")), dir("src/"), file("src/x.rvn", "other")]);
    let res = publish(&app, &token, &name, "1.0.0", other).await;
    assert_eq!(res.status(), 409);
    assert_eq!(keys_of(&app, &name).await, vec![Storage::key(&name, "1.0.0").to_string()], "refusals stored nothing");
    assert_eq!(download(&app, &name, "1.0.0").await, tarball, "the published blob is untouched");

    let (_, pkg) = get_json(&app, &format!("/api/v1/packages/{name}"), None).await;
    assert_eq!(pkg["versions"], json!(["1.0.0"]), "{pkg}");
}

// ---------------------------------------------------------------------------------------------
// DOWNLOAD_REDIRECT: 302 to a CDN or a presigned URL, still counted
// ---------------------------------------------------------------------------------------------

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Downloads counted for `name` once the in-memory counter is flushed.
async fn downloads_total(app: &TestApp, name: &str) -> i64 {
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush download counts");
    let (status, pkg) = get_json(app, &format!("/api/v1/packages/{name}"), None).await;
    assert_eq!(status, StatusCode::OK, "{pkg}");
    pkg["downloads_total"].as_i64().unwrap()
}

#[tokio::test]
async fn download_redirect_to_a_cdn_is_counted_and_keeps_the_etag() {
    let app = spawn_with(|c| {
        c.download_redirect = true;
        c.download_cdn_url = Some("https://cdn.example.test/registry/".parse().unwrap());
    })
    .await;
    let token = register(&app, "cdnuser").await;
    let tarball = package("cdn-pkg", "1.0.0");
    publish_ok(&app, &token, "cdn-pkg", "1.0.0", tarball.clone()).await;
    let url = app.url("/api/v1/packages/cdn-pkg/1.0.0/download");
    let client = no_redirects();

    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let h = res.headers();
    assert_eq!(h[reqwest::header::LOCATION], "https://cdn.example.test/registry/packages/cdn-pkg/cdn-pkg-1.0.0.tar.gz");
    assert_eq!(h[reqwest::header::CACHE_CONTROL], "no-store");
    assert_eq!(h.get_all(reqwest::header::CACHE_CONTROL).iter().count(), 1);
    let etag = h[reqwest::header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&tarball)));
    assert!(res.bytes().await.unwrap().is_empty(), "a redirect carries no tarball");

    // HEAD redirects too but is not a download; a revalidation is answered 304 and not counted.
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::FOUND);
    let revalidate = client.get(&url).header(reqwest::header::IF_NONE_MATCH, &etag).send().await.unwrap();
    assert_eq!(revalidate.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(downloads_total(&app, "cdn-pkg").await, 1, "only the one GET redirect counts");

    // Unknown versions are still 404, not a redirect to nothing.
    let missing = client.get(app.url("/api/v1/packages/cdn-pkg/9.9.9/download")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn download_redirect_without_a_target_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::base_config(dir.path());
    cfg.download_redirect = true;
    let err = raven_registry::build(cfg).await.err().expect("local storage has no URL to redirect to");
    let msg = format!("{err:#}");
    assert!(msg.contains("DOWNLOAD_REDIRECT") && msg.contains("DOWNLOAD_CDN_URL"), "{msg}");
}

#[tokio::test]
async fn s3_download_redirect_hands_out_a_presigned_url_that_serves_the_bytes() {
    let Some(s3) = s3_target("operations::s3_download_redirect_hands_out_a_presigned_url_that_serves_the_bytes") else {
        return;
    };
    let app = spawn_with(|c| {
        use_s3(c, &s3);
        c.download_redirect = true;
    })
    .await;
    let token = register(&app, "presigner").await;
    let name = unique("s3-redirect");
    let tarball = package(&name, "1.0.0");
    publish_ok(&app, &token, &name, "1.0.0", tarball.clone()).await;

    let res = no_redirects().get(app.url(&format!("/api/v1/packages/{name}/1.0.0/download"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()[reqwest::header::LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with(&s3.endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "presigned: {location}");
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), tarball, "the presigned URL serves the published bytes");
    assert_eq!(downloads_total(&app, &name).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_concurrent_publishes_of_one_version_let_exactly_one_win() {
    let Some(s3) = s3_target("operations::s3_concurrent_publishes_of_one_version_let_exactly_one_win") else { return };
    let app = spawn_with(|c| use_s3(c, &s3)).await;
    let token = register(&app, "racer").await;
    let name = unique("s3-race");
    // Two different tarballs of the same version: the stored blob must be the winner's.
    let a = package(&name, "1.0.0");
    let b = targz(&[file("raven.toml", manifest(&name, "1.0.0")), file("README.md", "# the other one\n")]);
    let (ra, rb) = tokio::join!(
        publish(&app, &token, &name, "1.0.0", a.clone()),
        publish(&app, &token, &name, "1.0.0", b.clone())
    );
    let (sa, sb) = (ra.status().as_u16(), rb.status().as_u16());
    let (ba, bb): (Value, Value) = (ra.json().await.unwrap(), rb.json().await.unwrap());
    let mut statuses = [sa, sb];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "one wins, one conflicts: {ba} {bb}");
    let winner = if sa == 201 { &a } else { &b };
    let loser_body = if sa == 201 { &bb } else { &ba };
    assert_eq!(loser_body["error"], "conflict", "{loser_body}");
    assert_eq!(keys_of(&app, &name).await, vec![Storage::key(&name, "1.0.0").to_string()]);
    assert_eq!(&download(&app, &name, "1.0.0").await, winner, "the stored blob is the winner's");
}

// ---------------------------------------------------------------------------------------------
// Two instances on one PostgreSQL database and one storage
// ---------------------------------------------------------------------------------------------

const SHARED_SECRET: &str = "two-instances-share-this-signing-secret-0123456789";

async fn two_instances_stay_consistent(s3: Option<S3Target>) {
    // Each read below comes right after a write on the other instance: both ask the database for
    // the catalog generation on every cached read rather than trust it for GENERATION_MAX_AGE_MS
    // (the default bounds that delay; `caches` tests it).
    let a = spawn_with(|c| {
        c.jwt_secret = Some(SHARED_SECRET.into());
        c.generation_max_age_ms = 0;
        if let Some(s3) = &s3 {
            use_s3(c, s3);
        }
    })
    .await;
    // The second instance: the same configuration (database URL, DATA_DIR and so storage, secret).
    let b = common::start(a.config.clone(), None, tempfile::tempdir().unwrap()).await;

    // A token issued by one instance works on the other.
    let login = register(&a, "twin").await;
    let (status, me) = get_json(&b, "/api/v1/users/me", Some(&login)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "twin");
    let created = create_token(&b, &login, json!({"name": "ci", "expires_in_days": 7})).await;
    let (api, api_id) = (created["token"].as_str().unwrap(), created["token_id"].as_str().unwrap());
    assert_eq!(get_json(&a, "/api/v1/users/me", Some(api)).await.0, 200);
    // Revoked on one, refused by the other at once.
    let res = a.client.delete(a.url(&format!("/api/v1/users/me/tokens/{api_id}"))).bearer_auth(&login).send().await;
    assert_eq!(res.unwrap().status(), 200);
    assert_eq!(get_json(&b, "/api/v1/users/me", Some(api)).await.0, 401, "revocation seen by the other instance");
    assert_eq!(get_json(&a, "/api/v1/users/me", Some(api)).await.0, 401);

    // A publish on one is visible, and downloadable, on the other.
    let name = unique("twin-pkg");
    let v1 = package(&name, "1.0.0");
    publish_ok(&a, &login, &name, "1.0.0", v1.clone()).await;
    let (status, pkg) = get_json(&b, &format!("/api/v1/packages/{name}"), None).await;
    assert_eq!(status, 200, "{pkg}");
    assert_eq!(pkg["latest_version"], "1.0.0");
    assert_eq!(download(&b, &name, "1.0.0").await, v1);
    let v2 = package(&name, "1.1.0");
    publish_ok(&b, &login, &name, "1.1.0", v2.clone()).await;
    // The same version from the other instance conflicts.
    assert_eq!(publish(&a, &login, &name, "1.1.0", v2.clone()).await.status(), 409);
    let (_, pkg) = get_json(&a, &format!("/api/v1/packages/{name}"), None).await;
    assert_eq!(pkg["versions"], json!(["1.0.0", "1.1.0"]), "{pkg}");
    // Yank and owners on one, seen by the other.
    let res = b.client.delete(b.url(&format!("/api/v1/packages/{name}/1.1.0"))).bearer_auth(&login).send().await;
    assert_eq!(res.unwrap().status(), 200);
    let (_, pkg) = get_json(&a, &format!("/api/v1/packages/{name}"), None).await;
    assert_eq!(pkg["versions"], json!(["1.0.0"]), "{pkg}");
    register(&b, "helper").await;
    let res = a
        .client
        .put(a.url(&format!("/api/v1/packages/{name}/owners")))
        .bearer_auth(&login)
        .json(&json!({"username": "helper", "role": "maintainer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, owners) = get_json(&b, &format!("/api/v1/packages/{name}/owners"), None).await;
    let names: Vec<&str> = owners["owners"].as_array().unwrap().iter().filter_map(|o| o["username"].as_str()).collect();
    assert!(names.contains(&"helper") && names.contains(&"twin"), "{owners}");

    // Downloads on both are counted exactly once both have stopped (each flushes at shutdown).
    for _ in 0..3 {
        assert_eq!(download(&a, &name, "1.0.0").await, v1);
    }
    for _ in 0..4 {
        assert_eq!(download(&b, &name, "1.0.0").await, v1);
    }
    let (status, _) = get_json(&b, &format!("/api/v1/packages/{name}/1.1.0/download"), None).await;
    assert_eq!(status, 200, "yanked versions still download");
    let _ = b.stop().await;
    let (cfg, pg, data) = a.stop().await;
    let c = common::start(cfg, pg, data).await;
    let (_, pkg) = get_json(&c, &format!("/api/v1/packages/{name}"), None).await;
    // 1 (from b right after the publish) + 3 + 4 of 1.0.0, and 1 of the yanked 1.1.0.
    assert_eq!(pkg["downloads_total"], json!(9), "{pkg}");
    let (_, v) = get_json(&c, &format!("/api/v1/packages/{name}/1.0.0"), None).await;
    assert!(v["yanked"] == json!(false), "{v}");
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let versions = entity::versions::Entity::find()
        .filter(entity::versions::Column::Num.is_in(["1.0.0", "1.1.0"]))
        .all(&c.state.db)
        .await
        .unwrap();
    let mut counts: Vec<(String, i64)> = versions.into_iter().map(|v| (v.num, v.downloads)).collect();
    counts.sort();
    assert_eq!(counts, vec![("1.0.0".to_owned(), 8), ("1.1.0".to_owned(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_postgres_and_a_storage_directory() {
    if !common::needs_postgres("operations::two_instances_share_postgres_and_a_storage_directory") {
        return;
    }
    two_instances_stay_consistent(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_postgres_and_a_bucket() {
    if !common::needs_postgres("operations::two_instances_share_postgres_and_a_bucket") {
        return;
    }
    let Some(s3) = s3_target("operations::two_instances_share_postgres_and_a_bucket") else { return };
    two_instances_stay_consistent(Some(s3)).await;
}
