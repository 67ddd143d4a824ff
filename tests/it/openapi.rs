//! The OpenAPI document at /api/v1/openapi.json describes exactly the REST routes the server serves.
//!
//! Each REST route is declared once (`rest_routes` in src/http.rs, with utoipa-axum's `routes!`), and
//! that one list yields both the router and the document; the committed `openapi.json` must be that
//! document, and `/graphql` and `/metrics` stay out of it. This test holds the router and the document
//! against each other on the running server: a 405 must name exactly the documented methods of its
//! path in `Allow`, and it requests every documented operation (it must not fall through to the 404
//! fallback nor answer 405) and every other method on the
//! same paths (those must answer 405). Adding a route without documenting it fails here.
use crate::testkit as common;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::Value;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// A concrete URL path for a templated one.
fn concrete(path: &str) -> String {
    path.replace("{name}", "no-such-package")
        .replace("{version}", "1.0.0")
        .replace("{username}", "nobody")
        .replace("{token_id}", "00000000-0000-4000-8000-000000000000")
}

/// True when the response is the router's fallback for unknown paths.
async fn is_fallback(res: reqwest::Response) -> bool {
    if res.status() != reqwest::StatusCode::NOT_FOUND {
        return false;
    }
    let body: Value = res.json().await.unwrap_or(Value::Null);
    body["message"] == "no such endpoint"
}

async fn document(app: &common::TestApp) -> Value {
    let res = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(*m).is_some() {
                ops.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_lists_exactly_the_served_routes() {
    let app = common::spawn().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "an OpenAPI 3 document");

    let documented = documented_operations(&doc);
    assert!(documented.len() > 20, "the document lists the REST routes ({} operations)", documented.len());

    // Every documented operation is really served: not the 404 fallback, not 405.
    for (method, path) in &documented {
        let url = app.url(&concrete(path));
        let res = app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), &url).send().await.unwrap();
        let status = res.status();
        assert_ne!(status, 405, "{method} {path} answers 405");
        assert!(!is_fallback(res).await, "{method} {path} falls through to the unknown-path fallback");

        // Operations that refuse an anonymous request are exactly those documented with bearer auth.
        let op = &doc["paths"][path.as_str()][method.to_lowercase()];
        let secured = op["security"]
            .as_array()
            .is_some_and(|reqs| reqs.iter().any(|r| r.get(raven_registry::rest::openapi::BEARER).is_some()));
        assert_eq!(
            status == 401,
            secured,
            "{method} {path}: anonymous status {status}, but the document says bearer auth is {}",
            if secured { "required" } else { "not required" }
        );
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} documents no response");
    }

    // No other method is served on those paths, and the 405 names exactly the documented methods (HEAD
    // comes with every GET in axum).
    let mut methods_by_path: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (method, path) in &documented {
        let methods = methods_by_path.entry(path.as_str()).or_default();
        methods.insert(method.clone());
        if method == "GET" {
            methods.insert("HEAD".into());
        }
    }
    for (path, served) in &methods_by_path {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if served.contains(method) {
                continue;
            }
            let res = app
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(&concrete(path)))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 405, "{method} {path} is served but not documented");
            let allow: BTreeSet<String> = res
                .headers()
                .get(reqwest::header::ALLOW)
                .unwrap_or_else(|| panic!("{method} {path}: 405 names the allowed methods"))
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_string())
                .collect();
            assert_eq!(&allow, served, "{method} {path}: the methods served (Allow) are the documented ones");
            let body: serde_json::Value = res.json().await.expect("a 405 has the v1 JSON error body");
            assert_eq!(body["error"], "method_not_allowed", "{method} {path}: {body}");
        }
    }

    // /graphql and /metrics are served, and are not part of the REST contract.
    for (method, path) in [("GET", "/metrics"), ("POST", "/graphql")] {
        let res =
            app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path)).send().await.unwrap();
        assert_ne!(res.status(), 405, "{method} {path} answers 405");
        assert!(!is_fallback(res).await, "{method} {path} falls through to the unknown-path fallback");
        assert!(doc["paths"].get(path).is_none(), "{path} is in the OpenAPI document");
    }

    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

/// Every `$ref` in the document points at a component that exists.
#[tokio::test]
async fn every_reference_resolves() {
    let app = common::spawn().await;
    let doc = document(&app).await;
    fn walk(v: &Value, doc: &Value, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let pointer = r.strip_prefix('#').expect("local reference");
                    assert!(doc.pointer(pointer).is_some(), "dangling reference {r}");
                    *seen += 1;
                }
                map.values().for_each(|v| walk(v, doc, seen));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, doc, seen)),
            _ => {}
        }
    }
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 20, "the document references its schemas ({seen} references)");
}

/// `openapi.json` in the repository is the document the code generates, like `schema.graphql` for
/// GraphQL; and the server serves that same document.
#[tokio::test]
async fn committed_openapi_json_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json is committed");
    let printed = raven_registry::http::openapi_json();
    assert!(committed == printed, "openapi.json is out of date: run `cargo run -- openapi > openapi.json`");

    let app = common::spawn().await;
    let served = document(&app).await;
    let committed: Value = serde_json::from_str(&committed).expect("openapi.json is JSON");
    assert!(served == committed, "the server serves a document other than openapi.json");
}
