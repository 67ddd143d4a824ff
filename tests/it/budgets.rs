//! Budgets a browser can live with (issue 17): anonymous read-only GraphQL queries draw on their
//! own per-IP budget (RATE_LIMIT_BROWSE) while the REST shim and anonymous mutations keep the
//! anonymous budget; a 304 costs nothing; a server-side-rendering frontend with a key from
//! FRONTEND_KEYS is budgeted per end user (X-Frontend-Client-IP), within its key's own budget
//! (RATE_LIMIT_FRONTEND_KEY), and a wrong key buys no trust in the forwarded address.
use crate::testkit as common;

use common::TestApp;
use raven_registry::config::Config;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::Response;
use serde_json::{json, Value};

const KEY: &str = "ssr-frontend-key-0123456789";
const QUERY: &str = "{ stats { totalPackages } }";

fn limited(c: &mut Config) {
    c.rate_limits_enabled = true;
    c.rate_limit_unauthenticated = 2;
    c.rate_limit_browse = 5;
}

async fn get_query(app: &TestApp, headers: &[(&str, &str)]) -> Response {
    let mut req = app.client.get(app.url("/graphql")).query(&[("query", QUERY)]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn limit_of(res: &Response) -> Option<&str> {
    res.headers().get("x-ratelimit-limit").map(|v| v.to_str().unwrap())
}

async fn assert_rate_limited(res: Response) {
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body}");
}

async fn login_mutation(app: &TestApp) -> Response {
    let doc = "mutation { login(email: \"nobody@example.com\", password: \"wrong password\") { token } }";
    app.client.post(app.url("/graphql")).json(&json!({ "query": doc })).send().await.unwrap()
}

#[tokio::test]
async fn anonymous_queries_have_their_own_browse_budget_and_mutations_keep_theirs() {
    let app = common::spawn_with(limited).await;
    // Past the REST budget of 2, up to the browse budget of 5, GET and POST alike.
    for i in 0..5 {
        let res = if i % 2 == 0 {
            get_query(&app, &[]).await
        } else {
            app.client.post(app.url("/graphql")).json(&json!({ "query": QUERY })).send().await.unwrap()
        };
        assert_eq!(res.status(), 200, "read {i}");
        assert_eq!(limit_of(&res), Some("5"));
        assert_eq!(res.headers()["x-ratelimit-remaining"], (4 - i).to_string().as_str());
    }
    assert_rate_limited(get_query(&app, &[]).await).await;
    let res = app.client.post(app.url("/graphql")).json(&json!({ "query": QUERY })).send().await.unwrap();
    assert_rate_limited(res).await;

    // The REST shim's anonymous budget is untouched by those reads...
    let res = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(limit_of(&res), Some("2"));
    // ...and anonymous mutations draw on it, not on the (spent) browse budget.
    let res = login_mutation(&app).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    assert_rate_limited(login_mutation(&app).await).await;
    assert_eq!(app.client.get(app.url("/api/v1/stats")).send().await.unwrap().status(), 429);
}

#[tokio::test]
async fn a_304_is_not_charged() {
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_browse = 2;
    })
    .await;
    let res = get_query(&app, &[]).await;
    assert_eq!(res.headers()["x-ratelimit-remaining"], "1");
    let etag = res.headers()[ETAG].to_str().unwrap().to_owned();
    for _ in 0..10 {
        let res = get_query(&app, &[(IF_NONE_MATCH.as_str(), &etag)]).await;
        assert_eq!(res.status(), 304);
        assert_eq!(limit_of(&res), None, "nothing was charged, so nothing is reported");
    }
    let res = get_query(&app, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0", "the ten 304s cost nothing");
    assert_rate_limited(get_query(&app, &[]).await).await;
    // The client that still holds the answer keeps revalidating it.
    assert_eq!(get_query(&app, &[(IF_NONE_MATCH.as_str(), &etag)]).await.status(), 304);
}

#[tokio::test]
async fn a_frontend_key_budgets_per_end_user_within_its_own_budget() {
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_browse = 2;
        c.rate_limit_frontend_key = 6;
        c.frontend_keys =
            Some(raven_registry::frontend_key::parse_keys(&format!("other-key-0123456789abc,{KEY}")).unwrap());
    })
    .await;
    let as_user = |ip: &'static str| [("x-frontend-key", KEY), ("x-frontend-client-ip", ip)];
    // Each end user has the browse budget of 2.
    for _ in 0..2 {
        let res = get_query(&app, &as_user("198.51.100.1")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(limit_of(&res), Some("2"));
    }
    assert_rate_limited(get_query(&app, &as_user("198.51.100.1")).await).await;
    assert_eq!(get_query(&app, &as_user("198.51.100.2")).await.status(), 200, "another end user");

    // A wrong key: the forwarded address is not trusted; the connection's address is budgeted.
    let wrong = |ip: &'static str| [("x-frontend-key", "not-the-key-0123456789"), ("x-frontend-client-ip", ip)];
    assert_eq!(get_query(&app, &wrong("203.0.113.1")).await.status(), 200);
    assert_eq!(get_query(&app, &wrong("203.0.113.2")).await.status(), 200);
    assert_rate_limited(get_query(&app, &wrong("203.0.113.3")).await).await;
    assert_rate_limited(get_query(&app, &[]).await).await;

    // The key's own budget of 6: four requests went through it so far (the refused one counts).
    assert_eq!(get_query(&app, &as_user("198.51.100.3")).await.status(), 200);
    assert_eq!(get_query(&app, &as_user("198.51.100.4")).await.status(), 200);
    let res = get_query(&app, &as_user("198.51.100.5")).await;
    assert_eq!(limit_of(&res), Some("6"), "the key's budget refuses");
    assert_rate_limited(res).await;
    // It covers the REST shim too, where the end user is budgeted the same way.
    let res = app
        .client
        .get(app.url("/api/v1/stats"))
        .header("x-frontend-key", KEY)
        .header("x-frontend-client-ip", "198.51.100.6")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(limit_of(&res), Some("6"));
}

#[tokio::test]
async fn short_frontend_keys_are_refused_at_start_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::base_config(dir.path());
    cfg.frontend_keys = Some(raven_registry::frontend_key::parse_keys("long-enough-key-0123456789,tiny").unwrap());
    let err = raven_registry::build(cfg).await.err().expect("a short key is refused").to_string();
    assert!(err.contains("FRONTEND_KEYS") && err.contains("#2"), "{err}");
    assert!(!err.contains("tiny") && !err.contains("long-enough"), "{err}");
}
