//! Regressions for what API fuzzing (`.ci/schemathesis`) found: every REST error is the v1 JSON body,
//! the standard GraphQL introspection query runs, forged upload markers are refused instead of
//! panicking inside async-graphql, and async-graphql's own errors carry an `extensions.code`.
use crate::testkit as common;

use serde_json::{json, Value};

async fn v1_error(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string() && body["message"].is_string() && body["details"].is_object(), "{body}");
    body
}

#[tokio::test]
async fn rest_extractor_rejections_are_v1_errors() {
    let app = common::spawn().await;
    // A repeated query parameter.
    let res = app.client.get(app.url("/api/v1/search?offset=1&offset=2")).send().await.unwrap();
    assert_eq!(v1_error(res, 400).await["error"], "invalid_request");
    // A path segment that is not UTF-8 once percent-decoded.
    for path in
        ["/api/v1/packages/%FF", "/api/v1/packages/a/%FF", "/api/v1/users/%C3%28", "/api/v1/packages/%FF/owners"]
    {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(v1_error(res, 400).await["error"], "invalid_request", "{path}");
    }
}

/// The introspection query of graphql-core 3.2 / graphql-js: `ofType` nested nine levels deep.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}
"#;

#[tokio::test]
async fn the_standard_introspection_query_runs_and_data_depth_is_still_limited() {
    let app = common::spawn().await;
    let res = app.gql(INTROSPECTION, json!({}), None).await;
    assert!(res.get("errors").is_none(), "{res}");
    assert_eq!(res["data"]["__schema"]["queryType"]["name"], "Query");

    // Data fields alone still stop at depth 10.
    let mut deep = String::from("name");
    for _ in 0..4 {
        deep = format!("name latestVersion {{ dependencies {{ package {{ {deep} }} }} }}");
    }
    let res = app.gql(&format!("{{ package(name: \"x\") {{ {deep} }} }}"), json!({}), None).await;
    assert!(res["errors"][0]["message"].as_str().unwrap().contains("too deep"), "{res}");
    assert_eq!(res["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{res}");
}

#[tokio::test]
async fn forged_upload_markers_are_refused() {
    let app = common::spawn().await;
    let forged = [
        (r##"mutation { publish(tarball: "#__graphql_file__:x") { version } }"##, json!({})),
        (r##"mutation { publish(tarball: "#__graphql_file__:0") { version } }"##, json!({})),
        // The marker spelled with a GraphQL escape.
        (r##"mutation { publish(tarball: "#\u005F_graphql_file__:0") { version } }"##, json!({})),
        (r##"mutation($t: Upload!) { publish(tarball: $t) { version } }"##, json!({"t": "#__graphql_file__:3"})),
        (r##"mutation($t: Upload! = "#__graphql_file__:x") { publish(tarball: $t) { version } }"##, json!({})),
    ];
    for (query, variables) in forged {
        let res = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{query}: the connection failed: {e}"));
        assert_eq!(res.status(), 400, "{query}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{query}: {body}");
    }
    // The server is still there, and an ordinary string argument is just a bad Upload.
    let res = app.gql(r#"mutation { publish(tarball: "abc") { version } }"#, json!({}), None).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{res}");
}

#[tokio::test]
async fn async_graphql_errors_carry_a_code() {
    let app = common::spawn().await;
    for (query, code) in [
        ("{ nosuchfield }", "BAD_REQUEST"),
        ("{ package(name: ) { name } }", "BAD_REQUEST"),
        ("{ packages(first: \"ten\") { totalCount } }", "BAD_REQUEST"),
    ] {
        let res = app.gql(query, json!({}), None).await;
        assert_eq!(res["errors"][0]["extensions"]["code"], code, "{query}: {res}");
    }
}

#[tokio::test]
async fn oversized_bodies_get_the_json_error_of_their_api() {
    let app = common::spawn_with(|c| c.max_tarball_bytes = 4 * 1024).await;
    // Past the tarball limit plus the multipart allowance: refused on Content-Length alone.
    let big = vec![b'x'; 1024 * 1024];
    let form = reqwest::multipart::Form::new()
        .part("tarball", reqwest::multipart::Part::bytes(big.clone()).file_name("big.tar.gz"));
    let res = app.client.post(app.url("/api/v1/packages/publish")).multipart(form).send().await.unwrap();
    assert_eq!(v1_error(res, 413).await["error"], "payload_too_large");

    let res =
        app.client.post(app.url("/graphql")).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE", "{body}");

    // A GraphQL upload over the tarball limit, inside the body allowance.
    let operations =
        json!({"query": "mutation($t: Upload!) { publish(tarball: $t) { version } }", "variables": {"t": null}});
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.t"]}).to_string())
        .part("0", reqwest::multipart::Part::bytes(vec![b'x'; 64 * 1024]).file_name("big.tar.gz"));
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("apollo-require-preflight", "true")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE", "{body}");
}
