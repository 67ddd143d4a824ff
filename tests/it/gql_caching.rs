//! HTTP caching of GraphQL answers and automatic persisted queries (issue 17): ETag and
//! `Cache-Control: public` on anonymous GET answers, 304 on `If-None-Match` without executing,
//! a new tag after a publish, `private, no-store` with `Authorization`, `no-store` on POST and on
//! errors; persisted queries by hash over GET, with the GET-never-mutates rule applied to stored
//! documents too, hashes checked and the store bounded.
use crate::testkit as common;

use common::api::{publish_package, register};
use common::TestApp;
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use reqwest::Response;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const STATS: &str = "{ stats { totalPackages } }";

async fn get_query(app: &TestApp, query: &str, if_none_match: Option<&str>) -> Response {
    let mut req = app.client.get(app.url("/graphql")).query(&[("query", query)]);
    if let Some(tag) = if_none_match {
        req = req.header(IF_NONE_MATCH, tag);
    }
    req.send().await.unwrap()
}

fn header(res: &Response, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn apq(hash: &str) -> String {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}}).to_string()
}

/// A GET with only the hash.
async fn get_by_hash(app: &TestApp, hash: &str) -> Response {
    app.client.get(app.url("/graphql")).query(&[("extensions", apq(hash))]).send().await.unwrap()
}

/// A GET with the document and its hash (what an Apollo client sends after a miss).
async fn get_registering(app: &TestApp, query: &str, hash: &str) -> Response {
    let ext = apq(hash);
    app.client.get(app.url("/graphql")).query(&[("query", query), ("extensions", ext.as_str())]).send().await.unwrap()
}

#[tokio::test]
async fn anonymous_get_is_public_with_an_etag_and_if_none_match_answers_304() {
    let app = common::spawn_with(|c| c.graphql_cache_max_age = 45).await;
    let res = get_query(&app, STATS, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, CACHE_CONTROL).as_deref(), Some("public, max-age=45"));
    let vary = res.headers().get_all("vary").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert!(vary.iter().any(|v| v.contains("authorization")), "{vary:?}");
    let etag = header(&res, ETAG).expect("an ETag");
    assert!(etag.starts_with("W/\""), "{etag}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["stats"]["totalPackages"], 0);

    // The same request again has the same tag; another request another one.
    assert_eq!(header(&get_query(&app, STATS, None).await, ETAG).as_deref(), Some(etag.as_str()));
    let other = get_query(&app, "{ stats { totalUsers } }", None).await;
    assert_ne!(header(&other, ETAG).unwrap(), etag);

    let res = get_query(&app, STATS, Some(&etag)).await;
    assert_eq!(res.status(), 304);
    assert_eq!(header(&res, ETAG).as_deref(), Some(etag.as_str()));
    assert_eq!(header(&res, CACHE_CONTROL).as_deref(), Some("public, max-age=45"));
    assert!(res.bytes().await.unwrap().is_empty());
    // In a list, and compared weakly.
    let strong = etag.trim_start_matches("W/");
    assert_eq!(get_query(&app, STATS, Some(&format!("\"nope\", {strong}"))).await.status(), 304);
    assert_eq!(get_query(&app, STATS, Some("\"nope\"")).await.status(), 200);

    // Errors are never stored publicly.
    let res = get_query(&app, "{ nosuchfield }", None).await;
    assert_eq!(header(&res, CACHE_CONTROL).as_deref(), Some("no-store"));
    assert_eq!(header(&res, ETAG), None);
}

/// A 304 is decided before execution: the operation never runs, which the operation counter of
/// /metrics shows (an operation name of this test's own, as the metrics are process-wide).
#[tokio::test]
async fn a_matching_etag_does_not_execute_the_query() {
    let app = common::spawn().await;
    let query = "query EtagNoExecute { packages(first: 5) { edges { node { name } } } stats { totalPackages } }";
    let executed = || async {
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let line =
            text.lines().find(|l| l.starts_with("raven_graphql_operations_total{") && l.contains("EtagNoExecute"));
        line.map_or(0, |l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    let etag = header(&get_query(&app, query, None).await, ETAG).unwrap();
    assert_eq!(executed().await, 1);
    for _ in 0..5 {
        assert_eq!(get_query(&app, query, Some(&etag)).await.status(), 304);
    }
    assert_eq!(executed().await, 1, "no 304 ran the operation");
    assert_eq!(get_query(&app, query, None).await.status(), 200);
    assert_eq!(executed().await, 2, "while a 200 runs it");
}

#[tokio::test]
async fn a_publish_changes_the_etag() {
    let app = common::spawn().await;
    let first = get_query(&app, STATS, None).await;
    let etag = header(&first, ETAG).unwrap();
    let token = register(&app, "etagger").await;
    // Registering raises the generation already; the tag after the publish differs from both.
    let registered = header(&get_query(&app, STATS, None).await, ETAG).unwrap();
    publish_package(&app, &token, "etag-pkg", "1.0.0").await;
    let res = get_query(&app, STATS, Some(&etag)).await;
    assert_eq!(res.status(), 200, "the old tag no longer matches");
    let published = header(&res, ETAG).unwrap();
    assert_ne!(published, etag);
    assert_ne!(published, registered);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["stats"]["totalPackages"], 1);
    assert_eq!(get_query(&app, STATS, Some(&published)).await.status(), 304);
}

#[tokio::test]
async fn authorization_is_private_and_post_is_never_stored() {
    let app = common::spawn().await;
    let token = register(&app, "private-viewer").await;
    let etag = header(&get_query(&app, "{ me { username } }", None).await, ETAG).unwrap();
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { username } }")])
        .bearer_auth(&token)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a signed-in request never gets the anonymous 304");
    assert_eq!(header(&res, CACHE_CONTROL).as_deref(), Some("private, no-store"));
    assert_eq!(header(&res, ETAG), None);
    assert_eq!(res.json::<Value>().await.unwrap()["data"]["me"]["username"], "private-viewer");
    // Even a token that does not verify.
    let res =
        app.client.get(app.url("/graphql")).query(&[("query", STATS)]).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(header(&res, CACHE_CONTROL).as_deref(), Some("private, no-store"));
    assert_eq!(header(&res, ETAG), None);

    let res = app.client.post(app.url("/graphql")).json(&json!({"query": STATS})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, CACHE_CONTROL).as_deref(), Some("no-store"));
    assert_eq!(header(&res, ETAG), None);
    let res = app.client.post(app.url("/graphql")).bearer_auth(&token).json(&json!({"query": STATS})).send().await;
    assert_eq!(header(&res.unwrap(), CACHE_CONTROL).as_deref(), Some("private, no-store"));
}

#[tokio::test]
async fn persisted_queries_by_hash_over_get() {
    let app = common::spawn().await;
    let hash = sha256_hex(STATS);
    let res = get_by_hash(&app, &hash).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, CACHE_CONTROL).as_deref(), Some("no-store"), "a miss must not be cached");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

    let res = get_registering(&app, STATS, &hash).await;
    assert_eq!(res.status(), 200);
    let full_tag = header(&res, ETAG).unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["data"]["stats"]["totalPackages"], 0);
    let res = get_by_hash(&app, &hash).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, ETAG).as_deref(), Some(full_tag.as_str()), "the tag is the document's, however sent");
    assert_eq!(res.json::<Value>().await.unwrap()["data"]["stats"]["totalPackages"], 0);
    // Registered over POST works the same, and an upper-case hash names the same document.
    let users = "{ stats { totalUsers } }";
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(
            &json!({"query": users, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(users)}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["data"]["stats"]["totalUsers"], 0);
    let res = get_by_hash(&app, &sha256_hex(users).to_uppercase()).await;
    assert_eq!(res.json::<Value>().await.unwrap()["data"]["stats"]["totalUsers"], 0);
}

#[tokio::test]
async fn persisted_mutations_are_still_refused_over_get_and_hashes_are_checked() {
    let app = common::spawn().await;
    let mutation = "mutation { login(email: \"nobody@example.com\", password: \"wrong password\") { token } }";
    let hash = sha256_hex(mutation);
    // Registered through POST, where a mutation belongs (the login itself fails).
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": mutation, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash}}}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
    let res = get_by_hash(&app, &hash).await;
    assert_eq!(res.status(), 405, "a stored mutation is refused over GET like one sent in full");
    assert_eq!(header(&res, "allow").as_deref(), Some("POST"));
    // Registering one over GET is refused, and leaves nothing stored.
    let other = "mutation { login(email: \"other@example.com\", password: \"wrong password\") { token } }";
    assert_eq!(get_registering(&app, other, &sha256_hex(other)).await.status(), 405);
    let body: Value = get_by_hash(&app, &sha256_hex(other)).await.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");

    // A hash that does not match the document sent with it.
    let res = get_registering(&app, STATS, &sha256_hex("{ stats { totalUsers } }")).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["message"], "provided sha does not match query", "{body}");
    let body: Value = get_by_hash(&app, &sha256_hex("{ stats { totalUsers } }")).await.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "nothing was stored");
    // Malformed extensions.
    for ext in [
        json!({"persistedQuery": {"version": 2, "sha256Hash": sha256_hex(STATS)}}),
        json!({"persistedQuery": {"version": 1, "sha256Hash": "abc"}}),
        json!({"persistedQuery": {"version": 1}}),
    ] {
        let res = app.client.get(app.url("/graphql")).query(&[("extensions", ext.to_string())]).send().await.unwrap();
        assert_eq!(res.status(), 400, "{ext}");
    }
}

#[tokio::test]
async fn the_persisted_query_store_is_bounded() {
    // Room for about two of these documents with their hashes.
    let docs: Vec<String> =
        (0..3).map(|i| format!("{{ a{i}: stats {{ totalPackages }} {} }}", " ".repeat(400))).collect();
    let per = docs[0].len() + 64;
    let app = common::spawn_with(|c| c.persisted_queries_max_bytes = (2 * per + per / 2).max(1024) as u64).await;
    assert!(2 * per + per / 2 >= 1024, "the documents fill the smallest allowed store");
    for doc in &docs {
        assert_eq!(get_registering(&app, doc, &sha256_hex(doc)).await.status(), 200);
    }
    let body: Value = get_by_hash(&app, &sha256_hex(&docs[0])).await.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "the oldest was dropped");
    for doc in &docs[1..] {
        let body: Value = get_by_hash(&app, &sha256_hex(doc)).await.json().await.unwrap();
        assert!(body["errors"].is_null(), "{body}");
    }
}
