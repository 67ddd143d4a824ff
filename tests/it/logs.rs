//! What reaches the logs: tokens and passwords never do (everything the server logged at TRACE level
//! is searched for them), and neither does a client's `x-request-id` unless it is a plain token.
use crate::testkit as common;

use std::sync::OnceLock;

use common::api::register_with;
use common::capture::Capture;
use serde_json::json;

/// One subscriber for the whole test binary (a global one can be set only once); each test looks
/// for its own strings.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        tracing_subscriber::fmt().with_env_filter("trace").with_writer(move || writer.clone()).with_ansi(false).init();
        capture
    })
}

#[tokio::test]
async fn tokens_and_passwords_are_not_logged() {
    let capture = capture();
    let app = common::spawn().await;
    let password = "s3cret-Passw0rd-xyzzy";
    let token = register_with(&app, "logan", "logan@example.com", password).await.token;
    assert_eq!(app.client.get(app.url("/api/v1/users/me")).bearer_auth(&token).send().await.unwrap().status(), 200);
    let me = app.gql("{ me { username } }", json!({}), Some(&token)).await;
    assert_eq!(me["data"]["me"]["username"], "logan");
    // A refused token is logged about, but not itself.
    let bogus = format!("{token}x");
    assert_eq!(app.client.get(app.url("/api/v1/users/me")).bearer_auth(&bogus).send().await.unwrap().status(), 401);

    let logged = capture.text();
    assert!(logged.contains("/api/v1/users/me"), "the capture saw the requests");
    let signature = token.rsplit('.').next().unwrap();
    assert!(!logged.contains(signature), "a token signature reached the logs");
    assert!(!logged.contains(password), "a password reached the logs");
}

#[tokio::test]
async fn a_forged_request_id_never_reaches_the_log() {
    let capture = capture();
    let app = common::spawn().await;
    let forged = [
        "abc\tFORGEDTAB status=200 user_id=admin",
        "abc%0aFORGEDPCT level=INFO",
        "abc%0d%0aFORGEDCRLF",
        "FORGEDSPACE request_id=x",
        "FORGEDQUOTE\"}",
        &format!("FORGEDLONG{}", "a".repeat(200)),
    ];
    for id in forged {
        let res = app.client.get(app.url("/api/v1/stats")).header("x-request-id", id).send().await.unwrap();
        assert_eq!(res.status(), 200, "{id}");
        let echoed = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(echoed, id, "a forged id is replaced");
        assert!(raven_registry::http::is_usable_request_id(echoed.as_bytes()), "{echoed}");
        assert!(capture.text().contains(&echoed), "the replacement is the id in the log");
    }
    // Two ids in one request: neither is trusted.
    let res = app
        .client
        .get(app.url("/api/v1/stats"))
        .header("x-request-id", "FORGEDTWICE-1")
        .header("x-request-id", "FORGEDTWICE-2")
        .send()
        .await
        .unwrap();
    assert!(!res.headers()["x-request-id"].to_str().unwrap().starts_with("FORGEDTWICE"));

    // A plain token is kept: in the response and in the log line of the request.
    let valid = "client-42.retry_3";
    let res = app.client.get(app.url("/api/v1/stats")).header("x-request-id", valid).send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], valid);
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "gql-0001")
        .json(&json!({"query": "{ stats { totalUsers } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "gql-0001");

    let logged = capture.text();
    assert!(logged.contains(&format!("request_id={valid}")), "the valid id is logged");
    assert!(!logged.contains("FORGED"), "a forged id reached the log");
}

/// FRONTEND_KEYS (issue 17): neither a configured key nor a wrong one presented reaches the logs,
/// though both requests are logged about (the wrong key by a line of its own).
#[tokio::test]
async fn frontend_keys_are_not_logged() {
    let capture = capture();
    let key = "LOGGED-FRONTEND-KEY-never-0123456789";
    let wrong = "WRONG-FRONTEND-KEY-never-0123456789";
    let app = common::spawn_with(|c| {
        c.rate_limits_enabled = true;
        c.frontend_keys = Some(raven_registry::frontend_key::parse_keys(key).unwrap());
    })
    .await;
    for presented in [key, wrong] {
        let res = app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", "{ stats { totalPackages } }")])
            .header("x-frontend-key", presented)
            .header("x-frontend-client-ip", "198.51.100.77")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let logged = capture.text();
    assert!(logged.contains("X-Frontend-Key matches no FRONTEND_KEYS entry"), "the wrong key was noticed");
    assert!(
        !logged.contains("LOGGED-FRONTEND-KEY") && !logged.contains("WRONG-FRONTEND-KEY"),
        "a key reached the logs"
    );
}
