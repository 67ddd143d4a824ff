//! Startup, migrations, health/readiness, stats, schema drift, configuration errors, GraphQL transport.
use crate::testkit as common;

use common::{spawn, spawn_with};
use serde_json::{json, Value};

#[tokio::test]
async fn health_is_ok_text() {
    let app = spawn().await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"), "request id is returned");
    assert_eq!(res.text().await.unwrap(), "OK");
}

#[tokio::test]
async fn ready_reports_database_and_storage() {
    let app = spawn().await;
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok", "database": "ok", "storage": "ok"}));
}

#[tokio::test]
async fn stats_on_an_empty_registry_rest_and_graphql() {
    let app = spawn().await;
    let res = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    for key in ["total_packages", "total_versions", "total_downloads", "total_users"] {
        assert_eq!(body[key], json!(0), "{key} in {body}");
    }
    let updated = body["updated_at"].as_str().expect("updated_at is a string");
    chrono::DateTime::parse_from_rfc3339(updated).expect("RFC 3339 timestamp");

    let gql =
        app.gql("{ stats { totalPackages totalVersions totalDownloads totalUsers updatedAt } }", json!({}), None).await;
    assert_eq!(gql["errors"], Value::Null, "{gql}");
    assert_eq!(gql["data"]["stats"]["totalPackages"], json!(0));
    assert_eq!(gql["data"]["stats"]["totalUsers"], json!(0));
    assert!(gql["data"]["stats"]["updatedAt"].is_string());
}

#[tokio::test]
async fn unknown_route_is_a_v1_not_found() {
    let app = spawn().await;
    let res = app.client.get(app.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].is_string());
    assert!(body["details"].is_object());
}

#[tokio::test]
async fn migrations_are_idempotent_and_data_survives_restart() {
    let app = spawn().await;
    let secret_before = app.state.jwt_secret.clone();
    // Write a row directly through the entity layer, then restart on the same database and data dir.
    use sea_orm::{ActiveModelTrait, Set};
    let now = chrono::Utc::now();
    entity::users::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        username: Set("alice".into()),
        email: Set("alice@example.com".into()),
        password_hash: Set("x".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    let (cfg, pg, dir) = app.stop().await;
    // Migrations run again at start (a no-op now), then a third time explicitly.
    let app = common::start(cfg, pg, dir).await;
    raven_registry::db::migrate(&app.state.db).await.expect("migrating twice is a no-op");
    assert_eq!(&*app.state.jwt_secret, &*secret_before, "the generated secret is kept");
    let body: Value = app.client.get(app.url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["total_users"], json!(1));
}

#[cfg(unix)]
#[tokio::test]
async fn generated_secret_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn().await;
    let meta = std::fs::metadata(app.dir.path().join("jwt-secret")).expect("secret file exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql is committed");
    let printed = raven_registry::graphql::sdl();
    assert!(committed == printed, "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`");
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let bin = env!("CARGO_BIN_EXE_raven-registry");
    for (var, value) in [("PORT", "eighty"), ("STORAGE_TYPE", "floppy"), ("RATE_LIMITS_ENABLED", "maybe")] {
        let out = std::process::Command::new(bin).arg("schema").env(var, value).output().unwrap();
        assert!(!out.status.success(), "{var}={value} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var), "{var}={value}: error names the variable: {err}");
        assert!(!err.contains("panicked"), "no panic: {err}");
    }
    // A short JWT secret is refused at startup, naming the variable.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin)
        .env("JWT_SECRET", "short")
        .env("DATA_DIR", dir.path())
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("JWT_SECRET"), "the error names JWT_SECRET: {err}");
}

#[test]
fn schema_subcommand_prints_the_sdl() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raven-registry")).arg("schema").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), raven_registry::graphql::sdl());
}

#[tokio::test]
async fn graphql_transport_follows_graphql_over_http() {
    let app = spawn().await;
    // GET without a query from a browser serves GraphiQL.
    let res = app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().to_lowercase().contains("graphiql"));
    // GET with a query executes it.
    let res = app.client.get(app.url("/graphql?query=%7Bstats%7BtotalUsers%7D%7D")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["stats"]["totalUsers"], json!(0));
    // POST without a content type is refused with a 4xx.
    let res = app.client.post(app.url("/graphql")).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 415);
    // Validation failure: 200 with errors under application/json; 400 without `data` under the modern type.
    let bad = json!({"query": "{ nope }"});
    let res = app.client.post(app.url("/graphql")).json(&bad).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/graphql-response+json");
    let body: Value = res.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body}");
    assert!(body["errors"].is_array());
    // Batches are refused.
    let res =
        app.client.post(app.url("/graphql")).json(&json!([{"query": "{stats{totalUsers}}"}])).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn introspection_can_be_disabled() {
    let app = spawn_with(|c| c.graphql_introspection = false).await;
    let body = app.gql("{ __schema { queryType { name } } }", json!({}), None).await;
    assert_eq!(body["data"]["__schema"], Value::Null, "no schema is revealed: {body}");
    let on = spawn().await;
    let body = on.gql("{ __schema { queryType { name } } }", json!({}), None).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
}

/// PostgreSQL only: cut the database off through a TCP proxy; /ready answers 503 and /health 200,
/// then everything recovers without a restart once the proxy is restored.
#[tokio::test]
async fn readiness_follows_a_database_outage() {
    if !common::needs_postgres("foundation::readiness_follows_a_database_outage") {
        return;
    }
    let (app, proxy) = common::proxy::spawn_behind_proxy().await;
    assert_eq!(app.client.get(app.url("/ready")).send().await.unwrap().status(), 200);

    proxy.cut();
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["database"], "unavailable");
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), 200);
    let res = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(res.status(), 503, "a database outage is 503, never 500");
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "service_unavailable");

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if app.client.get(app.url("/ready")).send().await.unwrap().status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "/ready recovers without a restart");
    assert_eq!(app.client.get(app.url("/api/v1/stats")).send().await.unwrap().status(), 200);
}

/// The real binary with no configuration but a data directory and a port: it serves, and SIGTERM
/// makes it exit 0 promptly, keeping its data and secret for the next start.
#[cfg(unix)]
#[tokio::test]
async fn binary_serves_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_raven-registry"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", dir.path())
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let client = reqwest::Client::new();
    let mut first_secret: Option<Vec<u8>> = None;
    for round in 0..2 {
        let mut child = start();
        let mut up = false;
        for _ in 0..100 {
            if let Ok(res) = client.get(format!("http://127.0.0.1:{port}/health")).send().await {
                up = res.status() == 200;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(up, "round {round}: the server answers /health");
        assert!(dir.path().join("registry.db").exists());
        let secret = std::fs::read(dir.path().join("jwt-secret")).unwrap();
        assert!(!secret.is_empty());
        let started = std::time::Instant::now();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
        assert!(status.success(), "round {round}: exit status {status}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "exits within a few seconds");
        match &first_secret {
            None => first_secret = Some(secret),
            Some(first) => assert_eq!(&secret, first, "the generated secret is kept across restarts"),
        }
    }
}
