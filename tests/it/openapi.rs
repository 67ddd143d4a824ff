//! The OpenAPI document at /api/v1/openapi.json describes exactly the REST routes the server serves.
//!
//! The router's REST side is built from `http::API_ROUTES`; this test checks the document against that
//! table in both directions, and checks the table against the running router by requesting every
//! route (it must not fall through to the 404 fallback nor answer 405) and every other method on the
//! same paths (those must answer 405). Adding a route without documenting it fails here.
use crate::testkit as common;

use std::collections::BTreeSet;

use raven_registry::http::API_ROUTES;
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

    let table: BTreeSet<(String, String)> = API_ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(table.len(), API_ROUTES.len(), "API_ROUTES has duplicates");
    let documented = documented_operations(&doc);
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&table).collect();
    assert!(undocumented.is_empty(), "routes missing from the OpenAPI document: {undocumented:?}");
    assert!(unserved.is_empty(), "documented operations the router does not serve: {unserved:?}");

    // Every route of the table is really served: not the 404 fallback, not 405.
    for (method, path) in API_ROUTES {
        let url = app.url(&concrete(path));
        let res = app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), &url).send().await.unwrap();
        let status = res.status();
        assert_ne!(status, 405, "{method} {path} answers 405");
        assert!(!is_fallback(res).await, "{method} {path} falls through to the unknown-path fallback");

        // Operations that refuse an anonymous request are exactly those documented with bearer auth.
        let op = &doc["paths"][*path][method.to_lowercase()];
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

    // No other method is served on those paths (HEAD comes with every GET in axum and is left out).
    let paths: BTreeSet<&str> = API_ROUTES.iter().map(|(_, p)| *p).collect();
    for path in paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if table.contains(&(method.to_string(), path.to_string())) {
                continue;
            }
            let res = app
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(&concrete(path)))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 405, "{method} {path} is served but not in API_ROUTES");
            assert!(
                res.headers().contains_key(reqwest::header::ALLOW),
                "{method} {path}: 405 names the allowed methods"
            );
            let body: serde_json::Value = res.json().await.expect("a 405 has the v1 JSON error body");
            assert_eq!(body["error"], "method_not_allowed", "{method} {path}: {body}");
        }
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
