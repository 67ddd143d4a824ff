//! Search through the in-process index: one ranking on both databases (exact name, name prefix,
//! text relevance, downloads, name), exact totals and stable pages, prefixes and several words,
//! and an index that follows every publish, yank and download count, on this instance at once and
//! on another instance sharing the database.
use crate::testkit as common;

use std::time::Duration;

use common::api::*;
use common::tarballs;
use common::TestApp;
use serde_json::Value;

async fn search(app: &TestApp, q: &str, limit: u64, offset: u64) -> Value {
    get_ok(app, &format!("/api/v1/search?q={}&limit={limit}&offset={offset}", urlencode(q))).await
}

fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn names(body: &Value) -> Vec<String> {
    body["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

async fn publish_described(app: &TestApp, token: &str, name: &str, extra: &str) {
    let manifest = tarballs::manifest_with(name, "1.0.0", extra, "");
    publish_ok(app, token, name, "1.0.0", tarballs::package_from_manifest(&manifest)).await;
}

#[tokio::test]
async fn exact_name_then_name_prefix_then_text_then_downloads_then_name() {
    let app = common::spawn().await;
    let token = register(&app, "ranker").await;
    // Text matches only (the name does not start with the query): keyword weighs more than
    // description; equal text scores fall back to downloads, then to the name.
    publish_described(&app, &token, "zeta-desc", "description = \"a widget helper\"").await;
    publish_described(&app, &token, "beta-desc", "description = \"a widget helper\"").await;
    publish_described(&app, &token, "alpha-desc", "description = \"a widget helper\"").await;
    publish_described(&app, &token, "kw-only", "keywords = [\"widget\"]").await;
    // Name prefix, and the exact name.
    publish_described(&app, &token, "widget-extra", "description = \"more\"").await;
    publish_described(&app, &token, "widget", "description = \"the widget\"").await;
    // An unrelated package is never a hit.
    publish_described(&app, &token, "unrelated", "description = \"nothing here\"").await;

    // beta-desc gets a download: among the three equal descriptions it comes first.
    download(&app, "beta-desc", "1.0.0").await;
    raven_registry::service::fetch::flush_counts(&app.state).await.expect("flush");

    let body = search(&app, "widget", 20, 0).await;
    assert_eq!(body["total"], 6, "{body}");
    assert_eq!(
        names(&body),
        ["widget", "widget-extra", "kw-only", "beta-desc", "alpha-desc", "zeta-desc"],
        "exact, prefix, keyword over description, downloads, then name: {body}"
    );
    let scores: Vec<f64> = body["results"].as_array().unwrap().iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores[0] >= 1000.0 && (100.0..1000.0).contains(&scores[1]) && scores[2] < 100.0, "{scores:?}");
    assert_eq!(scores[3], scores[4], "equal text scores are ordered by downloads, not by score: {scores:?}");
}

#[tokio::test]
async fn totals_are_exact_and_pages_cover_the_order_once() {
    let app = common::spawn().await;
    let token = register(&app, "pager").await;
    for i in 0..23 {
        publish_described(&app, &token, &format!("pagepkg-{i:02}"), "description = \"paging fixture\"").await;
    }
    let whole = search(&app, "paging", 100, 0).await;
    assert_eq!(whole["total"], 23);
    let all = names(&whole);
    assert_eq!(all.len(), 23);
    let mut paged = Vec::new();
    for offset in (0..30).step_by(5) {
        let page = search(&app, "paging", 5, offset).await;
        assert_eq!(page["total"], 23, "every page reports the whole count: {page}");
        paged.extend(names(&page));
    }
    assert_eq!(paged, all, "pages are disjoint, in the same order, and cover every hit");
    let past = search(&app, "paging", 5, 50).await;
    assert_eq!((past["total"].as_u64(), names(&past).len()), (Some(23), 0));
}

#[tokio::test]
async fn every_word_must_match_as_a_word_prefix() {
    let app = common::spawn().await;
    let token = register(&app, "worder").await;
    publish_described(&app, &token, "fast-parser", "description = \"parses quickly\"").await;
    publish_described(&app, &token, "slow-parser", "description = \"parses slowly\"").await;
    publish_described(&app, &token, "fast-writer", "keywords = [\"serializer\"]").await;

    let hits = |body: &Value| {
        let mut n = names(body);
        n.sort();
        n
    };
    assert_eq!(hits(&search(&app, "fast pars", 20, 0).await), ["fast-parser"]);
    assert_eq!(hits(&search(&app, "PARS fast", 20, 0).await), ["fast-parser"], "word order and case do not matter");
    assert_eq!(hits(&search(&app, "pars", 20, 0).await), ["fast-parser", "slow-parser"]);
    assert_eq!(hits(&search(&app, "serial", 20, 0).await), ["fast-writer"], "keywords are searched");
    assert_eq!(hits(&search(&app, "quick", 20, 0).await), ["fast-parser"], "descriptions are searched");
    assert_eq!(hits(&search(&app, "arser", 20, 0).await), Vec::<String>::new(), "prefixes, not substrings");
    assert_eq!(hits(&search(&app, "fast-p", 20, 0).await), ["fast-parser"], "a name prefix with its dash");
    // GraphQL reads the same index.
    let body = app.gql("{ search(query: \"fast pars\") { totalCount nodes { name } } }", Value::Null, None).await;
    assert_eq!(body["data"]["search"]["totalCount"], 1, "{body}");
    assert_eq!(body["data"]["search"]["nodes"][0]["name"], "fast-parser");
}

#[tokio::test]
async fn publish_yank_and_unyank_are_searchable_at_once() {
    let app = common::spawn().await;
    let token = register(&app, "fresher").await;
    assert_eq!(search(&app, "freshpkg", 20, 0).await["total"], 0);
    publish_described(&app, &token, "freshpkg", "description = \"first words\"").await;
    assert_eq!(names(&search(&app, "freshpkg", 20, 0).await), ["freshpkg"]);
    assert_eq!(search(&app, "first", 20, 0).await["total"], 1);

    // A new version's metadata replaces the old words.
    let manifest = tarballs::manifest_with("freshpkg", "1.1.0", "description = \"second words\"", "");
    publish_ok(&app, &token, "freshpkg", "1.1.0", tarballs::package_from_manifest(&manifest)).await;
    assert_eq!(search(&app, "first", 20, 0).await["total"], 0, "the old description is gone");
    assert_eq!(search(&app, "second", 20, 0).await["total"], 1);
    let hit = &search(&app, "freshpkg", 20, 0).await["results"][0];
    assert_eq!((&hit["version"], &hit["description"]), (&"1.1.0".into(), &"second words".into()), "{hit}");

    // Yanking the latest shows the one before it, with its words again.
    yank_ok(&app, &token, "freshpkg", "1.1.0").await;
    let hit = &search(&app, "freshpkg", 20, 0).await["results"][0];
    assert_eq!((&hit["version"], &hit["description"]), (&"1.0.0".into(), &"first words".into()), "{hit}");
    assert_eq!(search(&app, "second", 20, 0).await["total"], 0);

    // A package whose every version is yanked leaves search, and comes back when one is unyanked.
    yank_ok(&app, &token, "freshpkg", "1.0.0").await;
    assert_eq!(search(&app, "freshpkg", 20, 0).await["total"], 0);
    assert_eq!(unyank(&app, &token, "freshpkg", "1.0.0").await.status(), 200);
    let body = search(&app, "freshpkg", 20, 0).await;
    assert_eq!(names(&body), ["freshpkg"]);
    assert_eq!(body["results"][0]["version"], "1.0.0", "{body}");
}

/// Polls `check` on `app` until it holds, for at most 10 s (a guard, not a timing assertion).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not seen within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn another_instance_sharing_the_database_follows_publishes_and_yanks() {
    // Two instances on one database: PostgreSQL only (one process serves a SQLite file).
    if !common::needs_postgres("search::another_instance_sharing_the_database_follows_publishes_and_yanks") {
        return;
    }
    let a = common::spawn().await;
    let b = common::start(a.config.clone(), None, tempfile::tempdir().unwrap()).await;
    let token = register(&a, "twoinst").await;
    // b has loaded its index and answered once before a writes.
    assert_eq!(search(&b, "twinpkg", 20, 0).await["total"], 0);

    publish_described(&a, &token, "twinpkg", "description = \"made on a\"").await;
    eventually("b finds the package published through a", async || {
        names(&search(&b, "twinpkg", 20, 0).await) == ["twinpkg"]
    })
    .await;
    yank_ok(&a, &token, "twinpkg", "1.0.0").await;
    eventually("b drops the package yanked through a", async || search(&b, "twinpkg", 20, 0).await["total"] == 0).await;
}

#[tokio::test]
async fn a_misspelled_word_gets_suggestions_that_are_not_results() {
    let app = common::spawn().await;
    let token = register(&app, "typist").await;
    publish_described(&app, &token, "react-dom", "description = \"render components\"").await;
    publish_described(&app, &token, "reactor", "description = \"an event loop\"").await;
    publish_described(&app, &token, "unrelated", "description = \"nothing here\"").await;
    download(&app, "react-dom", "1.0.0").await;
    raven_registry::service::fetch::flush_counts(&app.state).await.expect("flush");

    // A swap of two letters: nothing matches, so the near packages are suggested, most downloaded
    // first, with the query as it was probably meant.
    let body = search(&app, "raect", 20, 0).await;
    assert_eq!((&body["total"], &body["results"]), (&0.into(), &serde_json::json!([])), "{body}");
    let suggested: Vec<&str> =
        body["suggestions"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(suggested, ["react-dom", "reactor"], "{body}");
    assert_eq!(body["suggestions"][0]["version"], "1.0.0");
    assert_eq!(body["did_you_mean"], "react", "{body}");
    // A correct word beside it is kept as typed, and must still match.
    assert_eq!(search(&app, "raect render", 20, 0).await["did_you_mean"], "react render");
    assert_eq!(search(&app, "raect nothing", 20, 0).await["suggestions"], Value::Null);

    // Results, or words that are all known but never together, or too short to guess: no
    // suggestions, and the body is the plain shape `raven pkg` reads.
    for q in ["react", "render loop", "rxa"] {
        let body = search(&app, q, 20, 0).await;
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["limit", "offset", "results", "total"], "{q}: {body}");
    }

    // GraphQL: the same, beside an empty page.
    let gql = app
        .gql(
            "{ search(query: \"raect\") { totalCount nodes { name } suggestions { name latestVersion { version } } didYouMean } }",
            Value::Null,
            None,
        )
        .await;
    let s = &gql["data"]["search"];
    assert_eq!((&s["totalCount"], &s["nodes"]), (&0.into(), &serde_json::json!([])), "{gql}");
    assert_eq!(s["suggestions"][0]["name"], "react-dom", "{gql}");
    assert_eq!(s["suggestions"][0]["latestVersion"]["version"], "1.0.0", "{gql}");
    assert_eq!(s["didYouMean"], "react", "{gql}");
    let found =
        app.gql("{ search(query: \"react\") { totalCount suggestions { name } didYouMean } }", Value::Null, None).await;
    assert_eq!(found["data"]["search"]["suggestions"], serde_json::json!([]), "{found}");
    assert_eq!(found["data"]["search"]["didYouMean"], Value::Null, "{found}");
}

/// Package and version rows written straight to the database (the index reads rows; how they got
/// there does not matter to it): thousands of packages in a second instead of minutes of publishes.
async fn insert_packages(app: &TestApp, count: usize, yank_every: usize) {
    use entity::{packages, versions};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let now = chrono::Utc::now();
    let rows: Vec<(packages::ActiveModel, versions::ActiveModel)> = (0..count)
        .map(|i| {
            let id = uuid::Uuid::new_v4();
            let package = packages::ActiveModel {
                id: Set(id),
                name: Set(format!("bulk-{i:05}")),
                name_folded: Set(raven_registry::domain::confusable::fold_name(&format!("bulk-{i:05}"))),
                description: Set(Some(format!("bulkword item n{i:05}"))),
                license: Set(Some("MIT".into())),
                repository: Set(None),
                homepage: Set(None),
                keywords_text: Set(String::new()),
                downloads: Set(i as i64),
                created_at: Set(now),
                updated_at: Set(now),
            };
            let version = versions::ActiveModel {
                id: Set(uuid::Uuid::new_v4()),
                package_id: Set(id),
                num: Set("1.0.0".into()),
                canonical: Set("1.0.0".into()),
                authors: Set("[]".into()),
                description: Set(Some(format!("bulkword item n{i:05}"))),
                license: Set(Some("MIT".into())),
                repository: Set(None),
                homepage: Set(None),
                keywords: Set(String::new()),
                readme: Set(None),
                sha256: Set("0".repeat(64)),
                size_bytes: Set(1),
                yanked: Set(yank_every > 0 && i % yank_every == 0),
                yanked_at: Set(None),
                yank_reason: Set(None),
                published_by: Set(None),
                published_at: Set(now),
                downloads: Set(0),
            };
            (package, version)
        })
        .collect();
    for chunk in rows.chunks(500) {
        packages::Entity::insert_many(chunk.iter().map(|(p, _)| p.clone())).exec(&app.state.db).await.unwrap();
        versions::Entity::insert_many(chunk.iter().map(|(_, v)| v.clone())).exec(&app.state.db).await.unwrap();
    }
}

#[tokio::test]
async fn an_instance_starting_on_thousands_of_packages_indexes_every_one() {
    // More packages than one read of the index's start-up load (2,000), with every 10th package's
    // only version yanked.
    let a = common::spawn().await;
    insert_packages(&a, 4_100, 10).await;
    // The same database, opened again by a new process (a restart).
    let (config, pg, dir) = a.stop().await;
    let b = common::start(config, pg, dir).await;
    let body = search(&b, "bulkword", 20, 0).await;
    assert_eq!(body["total"], 4_100 - 410, "every visible package, and no yanked one");
    // Downloads break the tie between equal descriptions: the most downloaded first.
    assert_eq!(names(&body)[..3], ["bulk-04099", "bulk-04098", "bulk-04097"], "{body}");
    assert_eq!(body["results"][0]["version"], "1.0.0");
    let last = search(&b, "bulkword", 20, 3_680).await;
    assert_eq!(names(&last).len(), 10, "the last page: {last}");
    assert_eq!(names(&last).last().map(String::as_str), Some("bulk-00001"), "{last}");
    assert!(!names(&last).contains(&"bulk-00010".to_owned()), "bulk-00010 is yanked: {last}");
}
