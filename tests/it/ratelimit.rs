//! Rate limits with small configured quotas: budgets per IP and per user shared by REST and
//! GraphQL, exemptions, headers and 429 bodies, the client address from the one configured proxy
//! header only, login and publish buckets (aliases included), and bounded memory.
use crate::testkit as common;

use std::net::IpAddr;

use common::api::{expect_registered, meta, publish_raw, register_request, Meta};
use common::{tarballs, TestApp};
use raven_registry::config::Config;
use reqwest::header::HeaderName;
use serde_json::{json, Value};

/// Behind one proxy that appends to X-Forwarded-For.
fn behind_one_proxy(c: &mut Config) {
    c.client_ip_header = Some(HeaderName::from_static("x-forwarded-for"));
    c.trusted_proxy_hops = 1;
}

fn limited(c: &mut Config) {
    c.rate_limits_enabled = true;
    c.rate_limit_unauthenticated = 4;
    c.rate_limit_authenticated = 50;
    c.rate_limit_login = 3;
}

/// Registers `name` as if from `xff` behind a proxy; returns the login token.
async fn register(app: &TestApp, name: &str, xff: &str) -> String {
    expect_registered(register_request(app, name).header("x-forwarded-for", xff)).await.token
}

fn assert_refusal_headers(res: &reqwest::Response) {
    for h in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"] {
        assert!(res.headers().contains_key(h), "missing {h}");
    }
    let reset: u64 = res.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(reset >= now, "reset is an epoch time in the future");
}

/// Anonymous GraphQL mutations share the REST budget (read-only queries have their own, see
/// `budgets.rs`).
#[tokio::test]
async fn anonymous_budget_is_shared_by_rest_and_graphql_mutations() {
    let app = common::spawn_with(limited).await;
    let mutation = json!({"query": "mutation { login(email: \"x@example.com\", password: \"wrongwrong\") { token } }"});
    let login = || app.client.post(app.url("/graphql")).json(&mutation).send();
    let first = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-limit"], "4");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "3");
    let res = login().await.unwrap();
    assert_eq!(res.headers()["x-ratelimit-remaining"], "2", "the tightest bucket is the request budget");
    assert_eq!(res.json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(app.client.get(app.url("/api/v1/stats")).send().await.unwrap().status(), 200);
    assert_eq!(
        login().await.unwrap().json::<Value>().await.unwrap()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );

    let res = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_refusal_headers(&res);
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "rate_limit_exceeded");
    assert_eq!(body["retry_after"], json!(retry));
    assert!(body["message"].as_str().unwrap().contains("rate limit"));

    let res = login().await.unwrap();
    assert_eq!(res.status(), 429, "GraphQL mutations share the budget and still answer 429");
    assert_refusal_headers(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");

    // Exempt: probes and downloads.
    for path in ["/health", "/ready"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(!res.headers().contains_key("x-ratelimit-limit"), "{path} is not limited");
    }
}

#[tokio::test]
async fn users_have_their_own_budget_and_downloads_are_exempt() {
    let app = common::spawn_with(|c| {
        limited(c);
        behind_one_proxy(c);
    })
    .await;
    // Set up from another (trusted-proxy) address so the test client's own budget stays whole.
    let token = register(&app, "ursula", "10.0.0.9").await;
    let res = publish_raw(&app, Some(&token), Meta::None, Some(tarballs::package("limited-pkg", "1.0.0"))).await;
    assert_eq!(res.status(), 201);
    // The headers report the tightest bucket charged: here the new-package burst (5), not the user's
    // request budget (50).
    assert_eq!(res.headers()["x-ratelimit-limit"], "5", "a publish reports its own, tighter bucket");
    assert_eq!(res.headers()["x-ratelimit-remaining"], "4");

    for _ in 0..4 {
        assert_eq!(app.client.get(app.url("/api/v1/stats")).send().await.unwrap().status(), 200);
    }
    assert_eq!(app.client.get(app.url("/api/v1/stats")).send().await.unwrap().status(), 429);
    // The same client with a token is counted against the user, not the IP.
    let res = app.client.get(app.url("/api/v1/users/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-limit"], "50");
    for _ in 0..3 {
        let res = app.client.get(app.url("/api/v1/packages/limited-pkg/1.0.0/download")).send().await.unwrap();
        assert_eq!(res.status(), 200, "downloads are exempt");
    }
}

#[tokio::test]
async fn proxy_headers_count_only_when_trusted() {
    let untrusted = common::spawn_with(limited).await;
    for i in 0..4 {
        let res = untrusted
            .client
            .get(untrusted.url("/api/v1/stats"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = untrusted
        .client
        .get(untrusted.url("/api/v1/stats"))
        .header("x-forwarded-for", "203.0.113.99")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "a spoofed X-Forwarded-For buys nothing when proxies are not trusted");

    let trusted = common::spawn_with(|c| {
        limited(c);
        behind_one_proxy(c);
    })
    .await;
    for _ in 0..4 {
        let res = trusted
            .client
            .get(trusted.url("/api/v1/stats"))
            .header("x-forwarded-for", "1.1.1.1, 198.51.100.7")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = trusted
        .client
        .get(trusted.url("/api/v1/stats"))
        .header("x-forwarded-for", "9.9.9.9, 198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the right-most entry is the client; entries to its left are ignored");
    let res = trusted
        .client
        .get(trusted.url("/api/v1/stats"))
        .header("x-forwarded-for", "198.51.100.8")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "another client");
}

/// Sends GET /api/v1/stats with `headers`; returns the status.
async fn stats_with(app: &TestApp, headers: &[(&str, &str)]) -> u16 {
    let mut req = app.client.get(app.url("/api/v1/stats"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn only_the_configured_header_names_the_client() {
    // Behind a CDN and a load balancer: the client is the second entry from the right. Two clients
    // that forge different left-most entries (and a Fly-Client-IP) are still one client.
    let app = common::spawn_with(|c| {
        limited(c);
        behind_one_proxy(c);
        c.trusted_proxy_hops = 2;
    })
    .await;
    let cdn = "203.0.113.50";
    for forged in ["6.6.6.1", "6.6.6.2", "6.6.6.3, 6.6.6.4", "6.6.6.5"] {
        let xff = format!("{forged}, 198.51.100.7, {cdn}");
        assert_eq!(stats_with(&app, &[("x-forwarded-for", &xff), ("fly-client-ip", forged)]).await, 200, "{xff}");
    }
    let xff = format!("6.6.6.6, 198.51.100.7, {cdn}");
    assert_eq!(stats_with(&app, &[("x-forwarded-for", &xff), ("fly-client-ip", "6.6.6.7")]).await, 429);
    assert_eq!(stats_with(&app, &[("x-forwarded-for", &format!("198.51.100.8, {cdn}"))]).await, 200, "another client");
    // A request that did not come through both proxies is keyed by the peer, not by what it says.
    assert_eq!(stats_with(&app, &[("x-forwarded-for", "198.51.100.9")]).await, 200);
    for _ in 0..3 {
        stats_with(&app, &[("x-forwarded-for", "198.51.100.10")]).await;
    }
    assert_eq!(
        stats_with(&app, &[("x-forwarded-for", "198.51.100.11")]).await,
        429,
        "single-entry headers all share the peer's bucket"
    );

    // TRUST_PROXY_HEADERS=true (the older setting) reads Fly-Client-IP and nothing else: a forged
    // X-Forwarded-For buys nothing.
    let fly = common::spawn_with(|c| {
        limited(c);
        c.trust_proxy_headers = true;
    })
    .await;
    for i in 0..4 {
        let xff = format!("203.0.113.{i}");
        assert_eq!(stats_with(&fly, &[("fly-client-ip", "198.51.100.7"), ("x-forwarded-for", &xff)]).await, 200);
    }
    assert_eq!(stats_with(&fly, &[("fly-client-ip", "198.51.100.7"), ("x-forwarded-for", "203.0.113.99")]).await, 429);
    assert_eq!(stats_with(&fly, &[("fly-client-ip", "198.51.100.8")]).await, 200, "Fly-Client-IP names another client");
    for i in 0..4 {
        let xff = format!("203.0.113.{i}");
        assert_eq!(stats_with(&fly, &[("x-forwarded-for", &xff)]).await, 200, "without Fly-Client-IP: the peer");
    }
    assert_eq!(stats_with(&fly, &[("x-forwarded-for", "203.0.113.99")]).await, 429, "the peer's budget is spent");
}

#[tokio::test]
async fn login_attempts_are_limited_per_ip_and_per_email() {
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_unauthenticated = 1000;
        c.trust_proxy_headers = true;
    })
    .await;
    register(&app, "lena", "10.0.0.1").await;
    let login = |ip: &'static str, email: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("fly-client-ip", ip)
            .json(&json!({"email": email, "password": "wrong password"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(login("10.1.0.1", "nobody@example.com").await.unwrap().status(), 401);
    }
    let res = login("10.1.0.1", "other@example.com").await.unwrap();
    assert_eq!(res.status(), 429, "per IP");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "rate_limit_exceeded");
    // Per email, from fresh addresses.
    for ip in ["10.2.0.1", "10.2.0.2", "10.2.0.3"] {
        assert_eq!(login(ip, "lena@example.com").await.unwrap().status(), 401);
    }
    assert_eq!(login("10.2.0.4", "LENA@example.com").await.unwrap().status(), 429, "per email, case-insensitively");

    // Aliased logins in one GraphQL document each count.
    let doc = "mutation { a: login(email: \"x@example.com\", password: \"wrongwrong\") { token } \
               b: login(email: \"y@example.com\", password: \"wrongwrong\") { token } \
               c: login(email: \"z@example.com\", password: \"wrongwrong\") { token } \
               d: login(email: \"w@example.com\", password: \"wrongwrong\") { token } }";
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("fly-client-ip", "10.3.0.1")
        .json(&json!({"query": doc}))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    let codes: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["extensions"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == "UNAUTHENTICATED").count(), 3, "{body}");
    assert_eq!(codes.iter().filter(|c| **c == "RATE_LIMITED").count(), 1, "{body}");
}

#[tokio::test]
async fn publish_buckets_refuse_before_storing() {
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_publish_new_burst = 2;
        c.rate_limit_publish_version_burst = 1;
    })
    .await;
    let token = register(&app, "pete", "10.0.0.1").await;
    let publish = |name: &str, version: &str, with_metadata: bool| {
        let metadata = if with_metadata { meta(name, version) } else { Meta::None };
        publish_raw(&app, Some(&token), metadata, Some(tarballs::package(name, version)))
    };
    assert_eq!(publish("first-pkg", "1.0.0", true).await.status(), 201);
    assert_eq!(publish("second-pkg", "1.0.0", false).await.status(), 201);
    let res = publish("third-pkg", "1.0.0", true).await;
    assert_eq!(res.status(), 429, "the third new package exceeds the burst of 2");
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(publish("first-pkg", "1.1.0", true).await.status(), 201, "new versions have their own bucket");
    assert_eq!(publish("first-pkg", "1.2.0", false).await.status(), 429);
    let keys = app.state.storage.list_keys().await.unwrap();
    assert_eq!(keys.len(), 3, "refused publishes stored nothing: {keys:?}");
}

#[tokio::test]
async fn disabled_means_no_limits() {
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limits_enabled = false;
    })
    .await;
    for _ in 0..10 {
        let res = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(!res.headers().contains_key("x-ratelimit-limit"));
    }
}

#[test]
fn stale_keys_are_purged() {
    let mut cfg = Config::defaults();
    cfg.rate_limits_enabled = true;
    cfg.rate_limit_unauthenticated = 1000;
    cfg.rate_limit_window_secs = 1;
    let limits = raven_registry::ratelimit::RateLimits::from_config(&cfg);
    for i in 0..100_000u32 {
        let ip = IpAddr::from(i.to_be_bytes());
        assert!(limits.anonymous.check(&ip).retry_after.is_none());
    }
    assert_eq!(limits.anonymous.tracked_keys(), 100_000);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    limits.purge();
    assert_eq!(limits.anonymous.tracked_keys(), 0, "keys whose buckets refilled are dropped");
}

/// The codes of a GraphQL response's errors, counted.
fn error_codes(body: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut codes = std::collections::BTreeMap::new();
    for e in body["errors"].as_array().map(Vec::as_slice).unwrap_or_default() {
        *codes.entry(e["extensions"]["code"].as_str().unwrap_or("none").to_owned()).or_default() += 1;
    }
    codes
}

/// The aliased fields of `data` that came back with a value.
fn answered(body: &Value) -> usize {
    body["data"].as_object().map_or(0, |d| d.values().filter(|v| !v.is_null()).count())
}

async fn count_rows<E: sea_orm::EntityTrait>(app: &TestApp, _entity: E) -> u64
where
    E::Model: Sync,
{
    use sea_orm::PaginatorTrait;
    E::find().count(&app.state.db).await.unwrap()
}

/// Sends one GraphQL document (and a token); returns the response headers and body.
async fn gql_raw(app: &TestApp, doc: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app.client.post(app.url("/graphql")).json(&json!({ "query": doc }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.unwrap())
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap().to_owned()
}

/// Issue 15, item 6: one anonymous request with 400 aliased `register` fields created 400 accounts
/// and cost the request budget 1. Each field is charged to the client's registration budget: the
/// first RATE_LIMIT_REGISTER create accounts, every other field answers RATE_LIMITED (with the
/// wait) without touching the database, and the headers report the registration bucket, the
/// tightest one charged. REST registration shares the budget.
#[tokio::test]
async fn aliased_registrations_are_each_charged_to_the_register_budget() {
    const BUDGET: u32 = 10;
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_unauthenticated = 1000;
        c.rate_limit_register = BUDGET;
    })
    .await;
    let doc = (0..400)
        .map(|i| format!("r{i}: register(input: {{username: \"mass{i}\", email: \"mass{i}@example.com\", password: \"pppppppp\"}}) {{ token }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let (status, headers, body) = gql_raw(&app, &format!("mutation {{ {doc} }}"), None).await;
    assert_eq!(status, 200, "the other fields ran: {body}");
    assert_eq!(count_rows(&app, entity::users::Entity).await, u64::from(BUDGET), "exactly the budget of accounts");
    assert_eq!(answered(&body), BUDGET as usize);
    assert_eq!(error_codes(&body), [("RATE_LIMITED".to_owned(), 400 - BUDGET as usize)].into());
    let refusal = &body["errors"][0];
    assert!(refusal["extensions"]["retryAfter"].as_u64().unwrap() >= 1, "{refusal}");
    // The first BUDGET fields won: registration is charged in document order.
    assert!(body["data"]["r0"]["token"].is_string() && body["data"][format!("r{}", BUDGET - 1)]["token"].is_string());
    assert_eq!(header(&headers, "x-ratelimit-limit"), BUDGET.to_string(), "the tightest bucket is reported");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "0");
    assert!(header(&headers, "retry-after").parse::<u64>().unwrap() >= 1);

    // REST draws on the same budget: 429 with Retry-After and the v1 error, and nothing created.
    let res = register_request(&app, "late").send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_refusal_headers(&res);
    assert_eq!(res.headers()["x-ratelimit-limit"], BUDGET.to_string().as_str());
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "rate_limit_exceeded");
    assert_eq!(count_rows(&app, entity::users::Entity).await, u64::from(BUDGET));
    // Reading is still within the request budget, whose headers come back once nothing tighter
    // was charged.
    let res = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-limit"], "1000");
}

/// The REST registration budget on its own: RATE_LIMIT_REGISTER accounts per window per client,
/// each response reporting what is left of it (tighter than the request budget).
#[tokio::test]
async fn rest_registration_has_its_own_budget() {
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_unauthenticated = 1000;
        c.rate_limit_register = 3;
    })
    .await;
    for (i, left) in ["2", "1", "0"].into_iter().enumerate() {
        let res = register_request(&app, &format!("rest{i}")).send().await.unwrap();
        assert_eq!(res.status(), 201);
        assert_eq!(
            (
                res.headers()["x-ratelimit-limit"].to_str().unwrap(),
                res.headers()["x-ratelimit-remaining"].to_str().unwrap()
            ),
            ("3", left)
        );
    }
    let res = register_request(&app, "rest3").send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_refusal_headers(&res);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["error"].as_str(), body["retry_after"].as_u64()), (Some("rate_limit_exceeded"), Some(retry)));
    // GraphQL shares it.
    let (_, _, body) = gql_raw(
        &app,
        "mutation { register(input: {username: \"gql\", email: \"gql@example.com\", password: \"pppppppp\"}) { token } }",
        None,
    )
    .await;
    assert_eq!(error_codes(&body), [("RATE_LIMITED".to_owned(), 1)].into(), "{body}");
    assert_eq!(count_rows(&app, entity::users::Entity).await, 3);
}

/// Issue 15, item 6: 2,000 aliased `refreshToken` fields minted 2,000 live login tokens. A login
/// token now rotates once (the fields after the first find it revoked), sign-ins beyond the
/// login-token cap revoke the oldest, token minting is charged per field to the user's token
/// budget, and owner changes to the owner budget; each response reports the tightest bucket.
#[tokio::test]
async fn aliased_token_minting_is_charged_and_capped() {
    const CAP: usize = 5;
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_login = 1000;
        c.rate_limit_tokens = 1000;
        c.max_login_tokens = CAP as u32;
    })
    .await;
    let reg = expect_registered(register_request(&app, "minter")).await;
    let user_id: uuid::Uuid = reg.user_id.parse().unwrap();
    let live_logins = || async {
        use entity::api_tokens::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        Entity::find()
            .filter(Column::UserId.eq(user_id))
            .filter(Column::Name.eq("login"))
            .filter(Column::RevokedAt.is_null())
            .all(&app.state.db)
            .await
            .unwrap()
    };

    // 1,000 aliased refreshes: one rotation, nothing more.
    let doc = (0..1000).map(|i| format!("f{i}: refreshToken {{ token }}")).collect::<Vec<_>>().join(" ");
    let (status, _, body) = gql_raw(&app, &format!("mutation {{ {doc} }}"), Some(&reg.token)).await;
    assert_eq!(status, 200);
    assert_eq!(answered(&body), 1, "one refresh per login token");
    assert_eq!(error_codes(&body), [("UNAUTHENTICATED".to_owned(), 999)].into());
    let rotated = body["data"]["f0"]["token"].as_str().unwrap().to_owned();
    assert_eq!(live_logins().await.len(), 1);
    assert_eq!(count_rows(&app, entity::api_tokens::Entity).await, 2, "one token minted");

    // 50 aliased sign-ins: every one succeeds, only the newest CAP stay live.
    let doc = (0..50)
        .map(|i| {
            format!("l{i}: login(email: \"minter@example.com\", password: \"{}\") {{ token }}", common::api::PASSWORD)
        })
        .collect::<Vec<_>>()
        .join(" ");
    let (_, _, body) = gql_raw(&app, &format!("mutation {{ {doc} }}"), None).await;
    assert_eq!(answered(&body), 50, "{}", body["errors"]);
    let live: std::collections::HashSet<uuid::Uuid> = live_logins().await.iter().map(|t| t.id).collect();
    assert_eq!(live.len(), CAP, "the login-token cap holds");
    let newest: std::collections::HashSet<uuid::Uuid> = (50 - CAP..50)
        .map(|i| app.state.keys.verify(body["data"][format!("l{i}")]["token"].as_str().unwrap()).unwrap().jti)
        .collect();
    assert_eq!(live, newest, "the oldest were revoked, the newest kept");
    let me = app.client.get(app.url("/api/v1/users/me")).bearer_auth(&rotated).send().await.unwrap();
    assert_eq!(me.status(), 401, "the older session was revoked to make room");
}

/// createApiToken and the owner mutations are charged per field to their own per-user buckets,
/// and the response reports the tighter of them and the request budget.
#[tokio::test]
async fn token_and_owner_mutations_are_charged_per_field() {
    let app = common::spawn_with(|c| {
        limited(c);
        c.rate_limit_tokens = 3;
        c.rate_limit_owners = 2;
    })
    .await;
    let token = expect_registered(register_request(&app, "owner")).await.token;
    for name in ["helper0", "helper1", "helper2"] {
        expect_registered(register_request(&app, name)).await;
    }
    let res = publish_raw(&app, Some(&token), Meta::None, Some(tarballs::package("charged", "1.0.0"))).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-ratelimit-limit"], "5", "the new-package bucket is tighter than the user budget");

    let doc = (0..10)
        .map(|i| format!("t{i}: createApiToken(input: {{name: \"ci{i}\", expiresInDays: 7}}) {{ token }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let (_, headers, body) = gql_raw(&app, &format!("mutation {{ {doc} }}"), Some(&token)).await;
    assert_eq!(answered(&body), 3);
    assert_eq!(error_codes(&body), [("RATE_LIMITED".to_owned(), 7)].into());
    assert_eq!(
        (header(&headers, "x-ratelimit-limit"), header(&headers, "x-ratelimit-remaining")),
        ("3".into(), "0".into())
    );
    // The REST call shares the bucket.
    let res = app
        .client
        .post(app.url("/api/v1/users/me/tokens"))
        .bearer_auth(&token)
        .json(&json!({"name": "rest", "expires_in_days": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_refusal_headers(&res);
    // Three live API tokens plus the session.
    assert_eq!(count_rows(&app, entity::api_tokens::Entity).await, 4 + 3);

    let doc = "mutation { a: addOwner(package: \"charged\", username: \"helper0\") { role } \
               b: addOwner(package: \"charged\", username: \"helper1\") { role } \
               c: removeOwner(package: \"charged\", username: \"helper0\") { name } \
               d: addOwner(package: \"charged\", username: \"helper2\") { role } }";
    let (_, headers, body) = gql_raw(&app, doc, Some(&token)).await;
    assert_eq!(answered(&body), 2, "{body}");
    assert_eq!(error_codes(&body), [("RATE_LIMITED".to_owned(), 2)].into());
    assert_eq!(header(&headers, "x-ratelimit-limit"), "2");
    assert_eq!(count_rows(&app, entity::package_owners::Entity).await, 3, "owner plus the two added");

    // A plain query reports the request budget again.
    let (_, headers, _) = gql_raw(&app, "{ me { username } }", Some(&token)).await;
    assert_eq!(header(&headers, "x-ratelimit-limit"), "50");
}
