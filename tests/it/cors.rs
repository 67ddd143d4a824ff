//! CORS through the real router: preflights and cross-origin requests in both modes of
//! `CORS_ALLOWED_ORIGINS` (any origin without credentials, or a list with credentials).
use crate::testkit as common;

use raven_registry::config::{CorsHeaders, CorsOrigins};
use reqwest::header::HeaderMap;
use reqwest::Method;

const FRONTEND_HEADERS: &str =
    "authorization,content-type,sentry-trace,baggage,apollographql-client-name,apollographql-client-version,x-frontend-key";

async fn preflight(app: &common::TestApp, origin: &str, headers: &str) -> (u16, HeaderMap) {
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.headers().clone())
}

async fn cross_origin_post(app: &common::TestApp, origin: Option<&str>) -> HeaderMap {
    let mut req =
        app.client.post(app.url("/graphql")).json(&serde_json::json!({"query": "{ stats { totalPackages } }"}));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["stats"]["totalPackages"], 0, "{body}");
    headers
}

fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k.starts_with("access-control-")).collect()
}

fn varies_by_origin(headers: &HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().split(',').any(|p| p.trim().eq_ignore_ascii_case("origin")))
}

#[tokio::test]
async fn by_default_any_origin_without_credentials_and_the_requested_headers() {
    let app = common::spawn().await;
    let (status, h) = preflight(&app, "https://anywhere.example", FRONTEND_HEADERS).await;
    assert_eq!(status, 200);
    assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
    assert_eq!(get(&h, "access-control-allow-credentials"), None, "no credentials with a wildcard");
    assert_eq!(get(&h, "access-control-allow-headers"), Some(FRONTEND_HEADERS), "the requested headers are allowed");
    assert!(get(&h, "access-control-allow-methods").unwrap().contains("POST"));
    assert_eq!(get(&h, "access-control-max-age"), Some("86400"));

    let h = cross_origin_post(&app, Some("https://anywhere.example")).await;
    assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
    assert_eq!(get(&h, "access-control-allow-credentials"), None);
    assert!(get(&h, "access-control-expose-headers").unwrap().contains("x-request-id"));
}

#[tokio::test]
async fn a_list_of_origins_echoes_the_matching_one_with_credentials_and_answers_no_other() {
    let app = common::spawn_with(|c| {
        c.cors_allowed_origins =
            CorsOrigins::List(vec!["https://registry.example".into(), "http://localhost:3000".into()]);
        c.cors_max_age_secs = 600;
        // Rate limits on: a preflight is answered before them, and is charged nothing. The POSTs
        // are anonymous queries, charged to the browse budget.
        c.rate_limits_enabled = true;
        c.rate_limit_unauthenticated = 2;
        c.rate_limit_browse = 2;
    })
    .await;
    for origin in ["https://registry.example", "http://localhost:3000"] {
        let (status, h) = preflight(&app, origin, FRONTEND_HEADERS).await;
        assert_eq!(status, 200);
        assert_eq!(get(&h, "access-control-allow-origin"), Some(origin));
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(get(&h, "access-control-allow-headers"), Some(FRONTEND_HEADERS));
        assert_eq!(get(&h, "access-control-max-age"), Some("600"));
        assert!(varies_by_origin(&h), "{h:?}");
    }
    let h = cross_origin_post(&app, Some("https://registry.example")).await;
    assert_eq!(get(&h, "access-control-allow-origin"), Some("https://registry.example"));
    assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
    assert!(varies_by_origin(&h), "{h:?}");

    // Another origin, or one that only looks alike, gets no CORS header at all.
    for other in ["https://evil.example", "https://registry.example.evil.example", "http://registry.example", "null"] {
        let (status, h) = preflight(&app, other, FRONTEND_HEADERS).await;
        assert_eq!(status, 200);
        assert_eq!(cors_headers(&h), Vec::<String>::new(), "{other}: {h:?}");
        assert!(varies_by_origin(&h));
    }
    // The two requests of the budget were the two cross-origin POSTs: every preflight was free.
    let h = cross_origin_post(&app, Some("https://evil.example")).await;
    assert_eq!(cors_headers(&h), Vec::<String>::new(), "{h:?}");
    assert!(varies_by_origin(&h), "a cache must not serve one origin's answer to another");
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&serde_json::json!({"query": "{ stats { totalPackages } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the budget of 2 is spent by the two POSTs alone");
}

#[tokio::test]
async fn a_configured_header_list_is_allowed_with_the_apis_own_headers() {
    let app = common::spawn_with(|c| {
        c.cors_allowed_headers = CorsHeaders::List(FRONTEND_HEADERS.split(',').map(str::to_owned).collect());
    })
    .await;
    let (_, h) = preflight(&app, "https://anywhere.example", "sentry-trace").await;
    let allowed: Vec<&str> = get(&h, "access-control-allow-headers").unwrap().split(", ").collect();
    for name in FRONTEND_HEADERS.split(',').chain(["accept", "apollo-require-preflight", "x-apollo-operation-name"]) {
        assert!(allowed.contains(&name), "{name} in {allowed:?}");
    }
    assert!(!allowed.contains(&"x-not-listed"));
}
