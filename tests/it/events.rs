//! The event feed (issue 18, part 2): every publish, yank, unyank, owner change and new package is
//! an event, numbered in commit order, listed by the GraphQL `events` query and by
//! `GET /api/v1/events` with the same cursors. (Subscriptions: `subscriptions.rs`.)
use crate::testkit as common;

use base64::Engine;
use common::api::*;
use common::TestApp;
use serde_json::{json, Value};

const EVENTS: &str = "query($after: String, $first: Int, $package: String) {
  events(after: $after, first: $first, package: $package) {
    edges { cursor node { cursor kind package version actor at } }
    pageInfo { hasNextPage endCursor }
  }
}";

/// One page of the `events` query; asserts no errors.
pub async fn events_page(app: &TestApp, after: Option<&str>, first: i32, package: Option<&str>) -> Value {
    let body = app.gql(EVENTS, json!({ "after": after, "first": first, "package": package }), None).await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    body["data"]["events"].clone()
}

/// Every event through the `events` query, pages of `first`, each event checked against its edge.
pub async fn all_events(app: &TestApp, first: i32, package: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let page = events_page(app, after.as_deref(), first, package).await;
        for edge in page["edges"].as_array().unwrap() {
            assert_eq!(edge["cursor"], edge["node"]["cursor"], "an edge's cursor is its event's: {edge}");
            out.push(edge["node"].clone());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    panic!("the feed never ended");
}

/// The number inside a cursor (opaque to clients; the tests look inside to check the order).
pub fn seq(cursor: &Value) -> i64 {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.as_str().unwrap()).unwrap();
    String::from_utf8(bytes).unwrap().strip_prefix("event:").unwrap().parse().unwrap()
}

pub fn summary(events: &[Value]) -> Vec<(String, String, Option<String>)> {
    events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["package"].as_str().unwrap().to_owned(),
                e["version"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn ev(kind: &str, package: &str, version: Option<&str>) -> (String, String, Option<String>) {
    (kind.to_owned(), package.to_owned(), version.map(str::to_owned))
}

async fn ok(res: reqwest::Response) {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
}

#[tokio::test]
async fn every_change_is_an_event_in_commit_order_and_pages_resume_without_gaps() {
    let app = common::spawn().await;
    let alice = register(&app, "alice").await;
    register(&app, "bob").await;
    publish_package(&app, &alice, "evpkg", "1.0.0").await;
    publish_package(&app, &alice, "evpkg", "1.1.0").await;
    ok(yank(&app, &alice, "evpkg", "1.0.0").await).await;
    // Yanking a yanked version changes nothing: no event.
    ok(yank(&app, &alice, "evpkg", "1.0.0").await).await;
    ok(unyank(&app, &alice, "evpkg", "1.0.0").await).await;
    ok(add_owner(&app, &alice, "evpkg", "bob", "maintainer").await).await;
    // The same role again is no change: no event.
    ok(add_owner(&app, &alice, "evpkg", "bob", "maintainer").await).await;
    ok(remove_owner(&app, &alice, "evpkg", "bob").await).await;
    publish_package(&app, &alice, "otherpkg", "0.1.0").await;
    // A refused write leaves no event.
    let again = publish(&app, &alice, "otherpkg", "0.1.0", common::tarballs::package("otherpkg", "0.1.0")).await;
    assert_eq!(again.status(), 409);

    let events = all_events(&app, 100, None).await;
    assert_eq!(
        summary(&events),
        [
            ev("PACKAGE_CREATED", "evpkg", None),
            ev("VERSION_PUBLISHED", "evpkg", Some("1.0.0")),
            ev("VERSION_PUBLISHED", "evpkg", Some("1.1.0")),
            ev("VERSION_YANKED", "evpkg", Some("1.0.0")),
            ev("VERSION_UNYANKED", "evpkg", Some("1.0.0")),
            ev("OWNER_ADDED", "evpkg", None),
            ev("OWNER_REMOVED", "evpkg", None),
            ev("PACKAGE_CREATED", "otherpkg", None),
            ev("VERSION_PUBLISHED", "otherpkg", Some("0.1.0")),
        ]
    );
    let seqs: Vec<i64> = events.iter().map(|e| seq(&e["cursor"])).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "cursors increase: {seqs:?}");
    assert!(events.iter().all(|e| e["actor"] == "alice"), "{events:?}");
    for e in &events {
        rfc3339(&e["at"]);
    }

    // Pages of two, each resuming after the last: the same events, none skipped or repeated.
    assert_eq!(all_events(&app, 2, None).await, events);
    // After the last event: an empty page.
    let last = events.last().unwrap()["cursor"].as_str().unwrap();
    let tail = events_page(&app, Some(last), 10, None).await;
    assert_eq!(tail["edges"], json!([]));
    assert_eq!(tail["pageInfo"]["hasNextPage"], false);

    // One package's events only, in the same order, with the same cursors.
    let only = all_events(&app, 3, Some("OtherPkg")).await;
    assert_eq!(only, events[7..]);

    // The REST feed: the same events with the same cursors, in pages resuming at `next_cursor`.
    let mut rest = Vec::new();
    let mut after = String::new();
    loop {
        let path = if after.is_empty() {
            "/api/v1/events?limit=4".to_owned()
        } else {
            format!("/api/v1/events?limit=4&after={after}")
        };
        let page = get_ok(&app, &path).await;
        let got = page["events"].as_array().unwrap();
        assert!(got.len() <= 4);
        rest.extend(got.iter().cloned());
        after = page["next_cursor"].as_str().unwrap().to_owned();
        if page["has_more"] != true {
            break;
        }
    }
    assert_eq!(after, last, "next_cursor at the end is the last event's cursor");
    assert_eq!(rest.len(), events.len());
    for (r, g) in rest.iter().zip(&events) {
        for field in ["cursor", "kind", "package", "version", "actor"] {
            assert_eq!(r[field], g[field], "{field}: {r} vs {g}");
        }
        assert_eq!(rfc3339(&r["at"]), rfc3339(&g["at"]));
    }
    // Default limit 100; `package` filters; after the end, an empty page resuming where it was.
    let all = get_ok(&app, "/api/v1/events").await;
    assert_eq!(all["events"].as_array().unwrap().len(), events.len());
    let end = get_ok(&app, &format!("/api/v1/events?after={last}&package=evpkg")).await;
    assert_eq!(end, json!({ "events": [], "next_cursor": last, "has_more": false }));
    let evpkg = get_ok(&app, "/api/v1/events?package=evpkg").await;
    assert_eq!(evpkg["events"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn bad_feed_arguments_are_refused_naming_the_argument() {
    let app = common::spawn().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("after=bm9wZQ", "after"),
        ("after=%21%21", "after"),
        ("package=Not_A_Name!", "package"),
    ] {
        let body = expect_error(get(&app, &format!("/api/v1/events?{query}")).await, 400, "invalid_request").await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    for (vars, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 101 }), "first"),
        (json!({ "after": "garbage" }), "after"),
        (json!({ "package": "--" }), "package"),
    ] {
        let body = app.gql(EVENTS, vars.clone(), None).await;
        let err = &body["errors"][0];
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{vars}: {body}");
        assert_eq!(err["extensions"]["field"], field, "{vars}: {body}");
    }
}
