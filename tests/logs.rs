//! Secrets never reach the logs: a token and a password used in requests are absent from everything
//! the server logged at TRACE level.
mod common;

use common::api::register_with;
use common::capture::Capture;
use serde_json::json;

#[tokio::test]
async fn tokens_and_passwords_are_not_logged() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt().with_env_filter("trace").with_writer(move || writer.clone()).with_ansi(false).init();

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
