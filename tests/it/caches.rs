//! The search-page and metadata caches: what they serve is as current as the database, even when
//! the change was made through another instance sharing that database.
//!
//! Most tests here read on an instance that asks the database for the catalog generation on every
//! cached read (`GENERATION_MAX_AGE_MS=0`), so another instance's write is seen by the very next
//! read and statement counts do not depend on timing. The last tests cover the default, where the
//! generation is trusted for a while.
use crate::testkit as common;

use std::sync::atomic::Ordering;

use common::api::*;
use common::tarballs;
use common::TestApp;
use serde_json::{json, Value};

/// GET `path` (asserting 200), and how many statements this instance ran to answer it.
async fn get_counted(app: &TestApp, path: &str) -> (Value, u64) {
    let before = app.state.db_statements.load(Ordering::SeqCst);
    let body = get_ok(app, path).await;
    (body, app.state.db_statements.load(Ordering::SeqCst) - before)
}

/// A GraphQL query without errors, and how many statements this instance ran to answer it.
async fn gql_counted(app: &TestApp, query: &str) -> (Value, u64) {
    let before = app.state.db_statements.load(Ordering::SeqCst);
    let body = app.gql(query, Value::Null, None).await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    (body, app.state.db_statements.load(Ordering::SeqCst) - before)
}

async fn search_counted(app: &TestApp, q: &str) -> (Value, u64) {
    get_counted(app, &format!("/api/v1/search?q={q}")).await
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
    // Two instances on one database: PostgreSQL only (one process serves a SQLite file).
    if !common::needs_postgres("caches::cached_pages_follow_every_catalog_change_made_through_another_instance") {
        return;
    }
    let a = common::spawn_with(|c| c.generation_max_age_ms = 0).await;
    let b = common::start(a.config.clone(), None, tempfile::tempdir().unwrap()).await;
    let token = register(&a, "cachier").await;
    publish_described(&a, &token, "cachepkg-alpha", "1.0.0", "first words").await;

    // The first search computes the page; the same search again is served from the cache and costs
    // only the generation check.
    let (first, miss) = search_counted(&a, "cachepkg").await;
    assert_eq!(names(&first), ["cachepkg-alpha"]);
    let (again, hit) = search_counted(&a, "cachepkg").await;
    assert_eq!(again, first);
    assert_eq!(hit, 1, "a cached REST search page costs only the generation check");
    let (_, spelled) = search_counted(&a, "%20CachePkg").await;
    assert_eq!(spelled, 1, "the same search text in other case and spacing is the same page");
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
    b.state.downloads.flush(&b.state.db, &b.state.generation).await.expect("flush");
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
async fn with_the_caches_off_every_read_runs_its_queries() {
    let app = common::spawn_with(|c| {
        c.page_cache_entries = 0;
        c.metadata_cache_entries = 0;
        c.generation_max_age_ms = 0;
    })
    .await;
    let token = register(&app, "nocache").await;
    // Metadata too.
    publish_described(&app, &token, "plain-meta", "1.0.0", "plain").await;
    let (_, first) = get_counted(&app, "/api/v1/packages/plain-meta").await;
    let (_, second) = get_counted(&app, "/api/v1/packages/plain-meta").await;
    assert_eq!((first, second), (2, 2), "the package row and its versions, every time");
    let query = "{ package(name: \"plain-meta\") { name owners { role } } }";
    let before = app.state.db_statements.load(Ordering::SeqCst);
    app.gql(query, Value::Null, None).await;
    app.gql(query, Value::Null, None).await;
    let ran = app.state.db_statements.load(Ordering::SeqCst) - before;
    assert_eq!(ran, 4, "the package and its owners, twice, without a generation check");
    publish_described(&app, &token, "uncached-pkg", "1.0.0", "plain").await;
    let (_, first) = search_counted(&app, "uncached").await;
    let (body, second) = search_counted(&app, "uncached").await;
    assert_eq!(names(&body), ["uncached-pkg"]);
    // The search index checks the generation even without caches (that is how it stays current);
    // the first search after the publish also catches the index up. The index holds the rows and
    // latest versions it shows: nothing else is read.
    assert!(first > second, "{first} then {second}");
    assert_eq!(second, 1, "the generation check only");
}

#[tokio::test]
async fn cached_metadata_follows_every_catalog_change_made_through_another_instance() {
    // Two instances on one database: PostgreSQL only (one process serves a SQLite file).
    if !common::needs_postgres("caches::cached_metadata_follows_every_catalog_change_made_through_another_instance") {
        return;
    }
    let a = common::spawn_with(|c| c.generation_max_age_ms = 0).await;
    let b = common::start(a.config.clone(), None, tempfile::tempdir().unwrap()).await;
    let first_owner = register(&a, "meta-first").await;
    let second_owner = register(&a, "meta-second").await;
    publish_described(&a, &first_owner, "meta-pkg", "1.0.0", "one").await;
    let package = "/api/v1/packages/meta-pkg";
    let version = "/api/v1/packages/meta-pkg/1.0.0";

    let (body, _) = get_counted(&a, package).await;
    let (again, hit) = get_counted(&a, package).await;
    assert_eq!(again, body);
    assert_eq!(hit, 1, "a cached package body costs only the generation check");
    assert_eq!(body["latest_version"], "1.0.0");
    let (v, _) = get_counted(&a, version).await;
    let (v_again, hit) = get_counted(&a, version).await;
    assert_eq!((v_again, hit), (v.clone(), 1), "a cached version body costs only the generation check");
    assert_eq!(v["yanked"], false);

    publish_described(&b, &first_owner, "meta-pkg", "1.1.0", "two").await;
    let (body, _) = get_counted(&a, package).await;
    assert_eq!((&body["latest_version"], &body["description"]), (&json!("1.1.0"), &json!("two")), "{body}");

    yank_ok(&b, &first_owner, "meta-pkg", "1.0.0").await;
    let (v, _) = get_counted(&a, version).await;
    assert_eq!(v["yanked"], true, "{v}");
    let (body, _) = get_counted(&a, package).await;
    assert_eq!(body["versions"], json!(["1.1.0"]), "{body}");

    // The package names its first owner: hand it over through the other instance.
    assert_eq!(body["owner"]["username"], "meta-first");
    assert_eq!(add_owner(&b, &first_owner, "meta-pkg", "meta-second", "owner").await.status(), 200);
    assert_eq!(remove_owner(&b, &second_owner, "meta-pkg", "meta-first").await.status(), 200);
    let (body, _) = get_counted(&a, package).await;
    assert_eq!(body["owner"]["username"], "meta-second", "{body}");

    download(&b, "meta-pkg", "1.1.0").await;
    b.state.downloads.flush(&b.state.db, &b.state.generation).await.expect("flush");
    let (body, _) = get_counted(&a, package).await;
    assert_eq!((&body["downloads_total"], &body["downloads_last_month"]), (&json!(1), &json!(1)), "{body}");

    // GraphQL: the package, its versions and its owners come from the relation cache on a repeat,
    // and follow changes made through the other instance.
    let query = "{ package(name: \"meta-pkg\") { latestVersion { version } versions { nodes { version yanked } } \
                 owners { role user { username } } } }";
    let (seen, _) = gql_counted(&a, query).await;
    let (again, hit) = gql_counted(&a, query).await;
    assert_eq!((again, hit), (seen.clone(), 1), "a repeated package query costs only the generation check");
    assert_eq!(seen["data"]["package"]["owners"].as_array().unwrap().len(), 1, "{seen}");
    publish_described(&b, &second_owner, "meta-pkg", "1.2.0", "three").await;
    assert_eq!(add_owner(&b, &second_owner, "meta-pkg", "meta-first", "maintainer").await.status(), 200);
    let (seen, _) = gql_counted(&a, query).await;
    let package = &seen["data"]["package"];
    assert_eq!(package["latestVersion"]["version"], "1.2.0", "{seen}");
    // 1.0.0 was yanked above, and the list leaves yanked versions out.
    assert_eq!(package["versions"]["nodes"].as_array().unwrap().len(), 2, "{seen}");
    assert_eq!(package["owners"].as_array().unwrap().len(), 2, "{seen}");

    // A missing package is never cached as missing.
    let res = get(&a, "/api/v1/packages/meta-later").await;
    assert_eq!(res.status(), 404);
    publish_described(&b, &first_owner, "meta-later", "1.0.0", "late").await;
    let (body, _) = get_counted(&a, "/api/v1/packages/meta-later").await;
    assert_eq!(body["name"], "meta-later");
}

#[tokio::test]
async fn cached_registry_stats_follow_registrations_publishes_and_downloads_made_elsewhere() {
    // Two instances on one database: PostgreSQL only (one process serves a SQLite file).
    if !common::needs_postgres(
        "caches::cached_registry_stats_follow_registrations_publishes_and_downloads_made_elsewhere",
    ) {
        return;
    }
    let a = common::spawn_with(|c| c.generation_max_age_ms = 0).await;
    let b = common::start(a.config.clone(), None, tempfile::tempdir().unwrap()).await;
    let token = register(&a, "stat-keeper").await;
    let (first, _) = get_counted(&a, "/api/v1/stats").await;
    let (again, hit) = get_counted(&a, "/api/v1/stats").await;
    assert_eq!(hit, 1, "cached totals cost only the generation check");
    assert_eq!(again["total_users"], first["total_users"]);
    assert_eq!(first["total_users"], 1, "{first}");

    register(&b, "stat-newcomer").await;
    let (body, _) = get_counted(&a, "/api/v1/stats").await;
    assert_eq!(body["total_users"], 2, "a registration through the other instance: {body}");

    publish_described(&b, &token, "stat-pkg", "1.0.0", "counted").await;
    let (body, _) = get_counted(&a, "/api/v1/stats").await;
    assert_eq!((&body["total_packages"], &body["total_versions"]), (&json!(1), &json!(1)), "{body}");

    download(&b, "stat-pkg", "1.0.0").await;
    b.state.downloads.flush(&b.state.db, &b.state.generation).await.expect("flush");
    let seen = a.gql("{ stats { totalDownloads totalUsers } }", Value::Null, None).await;
    assert_eq!(seen["data"]["stats"]["totalDownloads"], 1, "{seen}");
}

#[tokio::test]
async fn the_generation_is_trusted_for_its_max_age_but_never_past_a_write_of_this_instance() {
    // `a` trusts the generation it read for a minute: only its own writes make it ask again.
    let a = common::spawn_with(|c| c.generation_max_age_ms = 60_000).await;
    let token = register(&a, "trusty").await;
    publish_described(&a, &token, "trusted-pkg", "1.0.0", "first words").await;
    let (_, miss) = get_counted(&a, "/api/v1/packages/trusted-pkg").await;
    let (_, hit) = get_counted(&a, "/api/v1/packages/trusted-pkg").await;
    assert!(miss > 0, "the first read after the publish reads the generation and the package");
    assert_eq!(hit, 0, "a cached body within the max age costs no statement");
    search_counted(&a, "trusted").await;
    let (_, hit) = search_counted(&a, "trusted").await;
    assert_eq!(hit, 0, "nor does a cached search page");

    // Its own write is seen by the very next read.
    publish_described(&a, &token, "trusted-pkg", "1.1.0", "second words").await;
    let (body, _) = get_counted(&a, "/api/v1/packages/trusted-pkg").await;
    assert_eq!(body["latest_version"], "1.1.0", "{body}");
    let (body, _) = search_counted(&a, "trusted").await;
    assert_eq!(result(&body, "trusted-pkg")["version"], "1.1.0", "{body}");

    // Another instance with the default max age (250 ms) sees a's writes within it: polled here
    // with a 10 s guard, not timed. Two instances on one database: PostgreSQL only.
    if !common::on_postgres() {
        return;
    }
    let mut config = a.config.clone();
    config.generation_max_age_ms = 250;
    let b = common::start(config, None, tempfile::tempdir().unwrap()).await;
    assert_eq!(get_ok(&b, "/api/v1/packages/trusted-pkg").await["latest_version"], "1.1.0");
    publish_described(&a, &token, "trusted-pkg", "1.2.0", "third words").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (body, _) = search_counted(&b, "trusted").await;
        let meta = get_ok(&b, "/api/v1/packages/trusted-pkg").await;
        if result(&body, "trusted-pkg")["version"] == "1.2.0" && meta["latest_version"] == "1.2.0" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "b never saw 1.2.0: {body} {meta}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
