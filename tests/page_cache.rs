//! The search and browse page cache: a page served from it is as current as the database, even
//! when the change was made through another instance sharing that database.
mod common;

use std::sync::atomic::Ordering;

use common::api::*;
use common::tarballs;
use common::TestApp;
use serde_json::Value;

/// GET /api/v1/search?q=…, and how many statements this instance ran to answer it.
async fn search_counted(app: &TestApp, q: &str) -> (Value, u64) {
    let before = app.state.db_statements.load(Ordering::SeqCst);
    let body = get_ok(app, &format!("/api/v1/search?q={q}")).await;
    (body, app.state.db_statements.load(Ordering::SeqCst) - before)
}

fn names(body: &Value) -> Vec<&str> {
    body["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect()
}

fn result<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["results"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} in {body}"))
}

async fn publish_described(app: &TestApp, token: &str, name: &str, version: &str, description: &str) {
    let manifest = tarballs::manifest_with(name, version, &format!("description = \"{description}\"\n"), "");
    publish_ok(app, token, name, version, tarballs::package_from_manifest(&manifest)).await;
}

#[tokio::test]
async fn cached_pages_follow_every_catalog_change_made_through_another_instance() {
    let a = common::spawn().await;
    let b = common::start(a.config.clone(), None, tempfile::tempdir().unwrap()).await;
    let token = register(&a, "cachier").await;
    publish_described(&a, &token, "cachepkg-alpha", "1.0.0", "first words").await;

    // The first search computes the page; the same search again is served from the cache and costs
    // only the generation check and the latest-version lookup.
    let (first, miss) = search_counted(&a, "cachepkg").await;
    assert_eq!(names(&first), ["cachepkg-alpha"]);
    let (again, hit) = search_counted(&a, "cachepkg").await;
    assert_eq!(again, first);
    assert_eq!(hit, 2, "a cached page costs the generation check and the latest-version lookup");
    assert!(miss > hit, "the first search ran the search itself ({miss} statements)");

    // A new package, published through the other instance.
    publish_described(&b, &token, "cachepkg-beta", "1.0.0", "second package").await;
    let (body, _) = search_counted(&a, "cachepkg").await;
    assert_eq!(body["total"], 2, "{body}");

    // A new version changes the package's description and latest version.
    publish_described(&b, &token, "cachepkg-alpha", "1.1.0", "newer words").await;
    let (body, _) = search_counted(&a, "cachepkg").await;
    assert_eq!(result(&body, "cachepkg-alpha")["description"], "newer words");
    assert_eq!(result(&body, "cachepkg-alpha")["version"], "1.1.0");

    // Yanking a package's only version takes it out of search; unyanking brings it back.
    yank_ok(&b, &token, "cachepkg-beta", "1.0.0").await;
    let (body, _) = search_counted(&a, "cachepkg").await;
    assert_eq!(names(&body), ["cachepkg-alpha"], "{body}");
    assert_eq!(unyank(&b, &token, "cachepkg-beta", "1.0.0").await.status(), 200);
    let (body, _) = search_counted(&a, "cachepkg").await;
    assert_eq!(body["total"], 2, "{body}");

    // Download counts, once the other instance flushes them.
    download(&b, "cachepkg-alpha", "1.1.0").await;
    b.state.downloads.flush(&b.state.db).await.expect("flush");
    let (body, _) = search_counted(&a, "cachepkg").await;
    assert_eq!(result(&body, "cachepkg-alpha")["downloads"], 1, "{body}");

    // GraphQL search and browse share the cache and its invalidation.
    let query = "{ search(query: \"cachepkg\") { totalCount } packages(first: 50) { nodes { name } } }";
    let seen = a.gql(query, Value::Null, None).await;
    assert_eq!(seen["data"]["search"]["totalCount"], 2, "{seen}");
    publish_described(&b, &token, "cachepkg-gamma", "1.0.0", "third package").await;
    let seen = a.gql(query, Value::Null, None).await;
    assert_eq!(seen["data"]["search"]["totalCount"], 3, "{seen}");
    let browsed: Vec<&str> =
        seen["data"]["packages"]["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert!(browsed.contains(&"cachepkg-gamma"), "browse shows the new package: {seen}");
}

#[tokio::test]
async fn with_the_cache_off_every_search_runs_the_query() {
    let app = common::spawn_with(|c| c.page_cache_entries = 0).await;
    let token = register(&app, "nocache").await;
    publish_described(&app, &token, "uncached-pkg", "1.0.0", "plain").await;
    let (_, first) = search_counted(&app, "uncached").await;
    let (body, second) = search_counted(&app, "uncached").await;
    assert_eq!(names(&body), ["uncached-pkg"]);
    assert_eq!(first, second, "no generation check and no saved statement without the cache");
    assert_eq!(second, 2, "the search and the latest-version lookup");
}
