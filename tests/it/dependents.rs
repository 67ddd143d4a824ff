//! `Package.dependents`: the other packages whose latest version depends on a package (the same
//! latest-version rule as everywhere), with that version, its requirement and kind, most
//! downloaded first; exact totals, pages, and a constant number of statements per page.
use crate::testkit as common;

use std::sync::atomic::Ordering;

use common::api::*;
use common::tarballs;
use common::TestApp;
use serde_json::{json, Value};

/// Publishes `name` `version` with `deps` as the body of [dependencies] (it may open
/// [dev-dependencies] too).
async fn publish_deps(app: &TestApp, token: &str, name: &str, version: &str, deps: &str) {
    // An empty [dependencies] table keeps a dev-only body valid.
    let manifest = tarballs::manifest_with(name, version, "", &format!("\n{deps}"));
    publish_ok(app, token, name, version, tarballs::package_from_manifest(&manifest)).await;
}

const NODES: &str =
    "totalCount pageInfo { hasNextPage endCursor } nodes { package { name } version { version } req kind }";

async fn dependents(app: &TestApp, name: &str, args: &str) -> Value {
    let q = format!("{{ package(name: \"{name}\") {{ dependents{args} {{ {NODES} }} }} }}");
    let res = app.gql(&q, json!({}), None).await;
    assert!(res.get("errors").is_none(), "{res}");
    res["data"]["package"]["dependents"].clone()
}

fn node(package: &str, version: &str, req: &str, kind: &str) -> Value {
    json!({"package": {"name": package}, "version": {"version": version}, "req": req, "kind": kind})
}

#[tokio::test]
async fn dependents_are_latest_versions_that_depend_most_downloaded_first() {
    let app = common::spawn().await;
    let t = register(&app, "depender").await;
    publish_package(&app, &t, "base", "1.0.0").await;
    // Listed: a normal dependency, a dev-dependency, and one that lists base as both (NORMAL).
    publish_deps(&app, &t, "app-a", "1.0.0", "base = \"1\"").await;
    publish_deps(&app, &t, "app-b", "1.0.0", "[dev-dependencies]\nbase = \"^1.0\"").await;
    publish_deps(&app, &t, "app-g", "1.0.0", "base = \"~1.0\"\n[dev-dependencies]\nbase = \"1\"").await;
    // Not listed: the latest no longer depends (an older version did).
    publish_deps(&app, &t, "app-c", "1.0.0", "base = \"1\"").await;
    publish_deps(&app, &t, "app-c", "2.0.0", "").await;
    // Not listed: the version that depends was yanked; its latest is an older one that does not.
    publish_deps(&app, &t, "app-d", "1.0.0", "").await;
    publish_deps(&app, &t, "app-d", "2.0.0", "base = \">=1\"").await;
    yank_ok(&app, &t, "app-d", "2.0.0").await;
    // Listed with its older version: the newer one, without the dependency, is yanked.
    publish_deps(&app, &t, "app-e", "1.0.0", "base = \"=1.0.0\"").await;
    publish_deps(&app, &t, "app-e", "2.0.0", "").await;
    yank_ok(&app, &t, "app-e", "2.0.0").await;
    // Not listed: only a prerelease depends, and the release is latest.
    publish_deps(&app, &t, "app-f", "1.0.0", "").await;
    publish_deps(&app, &t, "app-f", "2.0.0-beta.1", "base = \"1\"").await;
    // Not listed: every version yanked.
    publish_deps(&app, &t, "app-h", "1.0.0", "base = \"1\"").await;
    yank_ok(&app, &t, "app-h", "1.0.0").await;
    for (name, n) in [("app-a", 3), ("app-b", 1)] {
        for _ in 0..n {
            download(&app, name, "1.0.0").await;
        }
    }
    raven_registry::service::fetch::flush_counts(&app.state).await.expect("flush");

    let all = dependents(&app, "base", "").await;
    assert_eq!(all["totalCount"], 4, "{all}");
    assert_eq!(
        all["nodes"],
        json!([
            node("app-a", "1.0.0", "^1", "NORMAL"),
            node("app-b", "1.0.0", "^1.0", "DEV"),
            node("app-e", "1.0.0", "=1.0.0", "NORMAL"),
            node("app-g", "1.0.0", "~1.0", "NORMAL"),
        ]),
        "most downloaded first, then by name"
    );
    // Pages: exact totals, stable order.
    let first = dependents(&app, "base", "(first: 3)").await;
    assert_eq!(first["totalCount"], 4);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap();
    let rest = dependents(&app, "base", &format!("(first: 3, after: \"{cursor}\")")).await;
    assert_eq!((&rest["totalCount"], &rest["pageInfo"]["hasNextPage"]), (&json!(4), &json!(false)));
    assert_eq!(rest["nodes"], json!([node("app-g", "1.0.0", "~1.0", "NORMAL")]));
    // REST keeps its JSON, and counts the same dependents.
    let stats = get_ok(&app, "/api/v1/packages/base/stats").await;
    assert_eq!(stats["dependents_count"], json!(4), "{stats}");
    // A package nothing depends on.
    let none = dependents(&app, "app-a", "").await;
    assert_eq!((&none["totalCount"], &none["nodes"]), (&json!(0), &json!([])));
    // Bounds.
    let res = app.gql("{ package(name: \"base\") { dependents(first: 101) { totalCount } } }", json!({}), None).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{res}");

    // Unyanking app-e's 2.0.0 makes it latest again: app-e leaves the list.
    let res = unyank(&app, &t, "app-e", "2.0.0").await;
    assert_eq!(res.status(), 200);
    let after = dependents(&app, "base", "").await;
    assert_eq!(after["totalCount"], 3, "{after}");
}

#[tokio::test]
async fn a_page_of_dependents_costs_a_constant_number_of_statements() {
    // The catalog generation is trusted until this instance writes, so counts do not depend on
    // timing (see graphql::a_page_costs_a_constant_number_of_statements).
    let app = common::spawn_with(|c| c.generation_max_age_ms = 60_000).await;
    let t = register(&app, "many").await;
    publish_package(&app, &t, "corelib", "1.0.0").await;
    for i in 0..22 {
        let name = format!("user-{i:02}");
        publish_deps(&app, &t, &name, "1.0.0", "corelib = \"1\"").await;
        // A second version each, so picking the latest has something to do.
        let deps = if i % 2 == 0 { "corelib = \"1\"" } else { "[dev-dependencies]\ncorelib = \"1\"" };
        publish_deps(&app, &t, &name, "1.1.0", deps).await;
    }
    let page = |n: usize| {
        format!(
            "{{ package(name: \"corelib\") {{ dependents(first: {n}) {{ totalCount nodes {{ package {{ name downloads {{ total }} }} \
             version {{ version yanked }} req kind }} }} }} }}"
        )
    };
    let count = |q: String| {
        let app = &app;
        async move {
            let before = app.state.db_statements.load(Ordering::SeqCst);
            let body = app.gql(&q, json!({}), None).await;
            let ran = app.state.db_statements.load(Ordering::SeqCst) - before;
            assert!(body.get("errors").is_none(), "{body}");
            (ran, body)
        }
    };
    count(page(1)).await; // reads the generation and caches the package by name
    let (small, body2) = count(page(2)).await;
    let (large, body20) = count(page(20)).await;
    assert_eq!(body2["data"]["package"]["dependents"]["nodes"].as_array().unwrap().len(), 2);
    let nodes = body20["data"]["package"]["dependents"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 20);
    assert_eq!(body20["data"]["package"]["dependents"]["totalCount"], 22);
    assert!(nodes.iter().all(|n| n["version"]["version"] == "1.1.0"), "the latest versions: {body20}");
    assert_eq!(nodes[1]["kind"], "DEV", "user-01's latest is a dev-dependent: {body20}");
    eprintln!("statements: first 2 -> {small}, first 20 -> {large}");
    assert_eq!(small, large, "the statement count does not grow with the page");
    // The dependents, their packages, their versions.
    assert_eq!(large, 3, "a page of dependents costs 3 statements, took {large}");
}
