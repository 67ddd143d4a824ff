//! Reading the registry: package and version metadata over REST, tarball downloads (headers,
//! conditional requests, integrity checks, counting across a restart), search, the GraphQL read
//! API with its paging rules and request limits, and registry-wide statistics.
use crate::testkit as common;

use std::time::Duration;

use common::api::{
    download, download_path, expect_error, get, get_ok, publish_ok, publish_package, register_user, rfc3339,
    sha256_hex, yank_ok,
};
use common::tarballs::{manifest_with, package_from_manifest, package_with_readme};
use common::{spawn, start, TestApp};
use raven_registry::storage::Storage;
use reqwest::header;
use reqwest::StatusCode;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Publishes a package whose raven.toml carries `extra` in [package] and `deps` after [dependencies].
async fn publish_with(app: &TestApp, token: &str, name: &str, version: &str, extra: &str, deps: &str) -> Vec<u8> {
    let bytes = package_from_manifest(&manifest_with(name, version, extra, deps));
    publish_ok(app, token, name, version, bytes.clone()).await;
    bytes
}

async fn search(app: &TestApp, params: &[(&str, &str)]) -> Value {
    let res = app.client.get(app.url("/api/v1/search")).query(params).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "search {params:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("search {params:?}: not JSON ({e}): {text}"))
}

fn names(results: &Value) -> Vec<String> {
    results.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect();
    keys.sort();
    keys
}

fn assert_keys(v: &Value, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(sorted_keys(v), expected, "field set of {v}");
}

/// Flushes the in-memory download counter and waits until `name` shows `expected` downloads (the
/// periodic flusher may hold the batch in a transaction of its own for a moment).
async fn flush_until(app: &TestApp, name: &str, expected: i64) {
    let mut last = Value::Null;
    for _ in 0..100 {
        app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush download counts");
        last = get_ok(app, &format!("/api/v1/packages/{name}")).await;
        if last["downloads_total"] == json!(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name}: expected downloads_total {expected} after flushing, got {}", last["downloads_total"]);
}

/// Asserts a GraphQL response failed with `code` (and `field` when given), without data.
fn gql_error(res: &Value, code: &str, field: Option<&str>) {
    let errors = res["errors"].as_array().unwrap_or_else(|| panic!("expected errors: {res}"));
    assert!(!errors.is_empty(), "{res}");
    assert_eq!(errors[0]["extensions"]["code"], code, "{res}");
    if let Some(f) = field {
        assert_eq!(errors[0]["extensions"]["field"], f, "{res}");
    }
}

fn gql_ok(res: &Value) -> &Value {
    assert!(res.get("errors").is_none_or(|e| e.as_array().is_some_and(|a| a.is_empty())), "unexpected errors: {res}");
    &res["data"]
}

const WIDGET_EXTRA: &str = "description = \"A widget toolkit\"\nlicense = \"MIT\"\n\
                            repository = \"https://github.com/example/widget\"\nkeywords = [\"UI\", \"widgets\"]";

// ---------------------------------------------------------------------------------------------
// 1. GET /packages/:name
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn package_metadata_has_the_v1_shape_and_semver_order() {
    let app = spawn().await;
    let alice = register_user(&app, "alice").await;
    for v in ["1.2.0", "1.10.0", "1.9.0"] {
        publish_with(&app, &alice.token, "widget", v, WIDGET_EXTRA, "").await;
    }
    publish_package(&app, &alice.token, "bare", "0.1.0").await;

    let p = get_ok(&app, "/api/v1/packages/widget").await;
    assert_keys(
        &p,
        &[
            "name",
            "description",
            "latest_version",
            "versions",
            "owner",
            "license",
            "repository",
            "homepage",
            "keywords",
            "downloads_total",
            "downloads_last_month",
            "created_at",
            "updated_at",
        ],
    );
    assert_eq!(p["name"], "widget");
    assert_eq!(p["description"], "A widget toolkit");
    assert_eq!(p["latest_version"], "1.10.0");
    assert_eq!(p["versions"], json!(["1.2.0", "1.9.0", "1.10.0"]), "ascending SemVer, not lexical");
    assert_keys(&p["owner"], &["username", "user_id"]);
    assert_eq!(p["owner"], json!({"username": "alice", "user_id": alice.user_id}));
    assert_eq!(p["license"], "MIT");
    assert_eq!(p["repository"], "https://github.com/example/widget");
    assert_eq!(p["homepage"], Value::Null);
    assert_eq!(p["keywords"], json!(["ui", "widgets"]));
    assert_eq!(p["downloads_total"], json!(0));
    assert!(p["downloads_total"].is_i64());
    assert_eq!(p["downloads_last_month"], json!(0));
    assert!(p["downloads_last_month"].is_i64());
    let created = rfc3339(&p["created_at"]);
    let updated = rfc3339(&p["updated_at"]);
    assert!(updated >= created, "updated_at {updated} precedes created_at {created}");

    // A manifest without the optional keys: empty strings, nulls and an empty list.
    let b = get_ok(&app, "/api/v1/packages/bare").await;
    assert_eq!(b["description"], "", "{b}");
    assert_eq!(b["license"], "", "{b}");
    assert_eq!(b["repository"], Value::Null, "{b}");
    assert_eq!(b["homepage"], Value::Null, "{b}");
    assert_eq!(b["keywords"], json!([]), "{b}");
    assert_eq!(b["versions"], json!(["0.1.0"]));
    assert_eq!(b["latest_version"], "0.1.0");

    yank_ok(&app, &alice.token, "widget", "1.10.0").await;
    let p = get_ok(&app, "/api/v1/packages/widget").await;
    assert_eq!(p["versions"], json!(["1.2.0", "1.9.0"]), "yanked versions leave `versions`");
    assert_eq!(p["latest_version"], "1.9.0");

    let err = expect_error(get(&app, "/api/v1/packages/nope").await, 404, "not_found").await;
    assert!(err["details"].is_object(), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 2. GET /packages/:name/:version
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn version_metadata_has_the_v1_shape_and_both_dependency_maps() {
    let app = spawn().await;
    let alice = register_user(&app, "alice").await;
    publish_package(&app, &alice.token, "dep-a", "1.0.0").await;
    publish_package(&app, &alice.token, "test-kit", "0.3.0").await;
    let extra =
        "description = \"Consumes things\"\nlicense = \"Apache-2.0\"\nhomepage = \"https://consumer.example.com\"\n\
                 keywords = [\"cli\"]";
    let bytes = publish_with(
        &app,
        &alice.token,
        "consumer",
        "2.0.0",
        extra,
        "dep-a = \"^1.0\"\n\n[dev-dependencies]\ntest-kit = \"=0.3.0\"",
    )
    .await;

    let v = get_ok(&app, "/api/v1/packages/consumer/2.0.0").await;
    assert_keys(
        &v,
        &[
            "name",
            "version",
            "description",
            "authors",
            "license",
            "repository",
            "homepage",
            "keywords",
            "dependencies",
            "dev_dependencies",
            "published_at",
            "download_url",
            "checksum",
            "size_bytes",
            "yanked",
            "yanked_at",
        ],
    );
    assert_eq!(v["name"], "consumer");
    assert_eq!(v["version"], "2.0.0");
    assert_eq!(v["description"], "Consumes things");
    assert_eq!(v["authors"], json!(["Ada <ada@example.com>"]));
    assert_eq!(v["license"], "Apache-2.0");
    assert_eq!(v["repository"], Value::Null);
    assert_eq!(v["homepage"], "https://consumer.example.com/", "URLs are stored in their normalised form");
    assert_eq!(v["keywords"], json!(["cli"]));
    assert_eq!(v["dependencies"], json!({"dep-a": "^1.0"}));
    assert_eq!(v["dev_dependencies"], json!({"test-kit": "=0.3.0"}));
    rfc3339(&v["published_at"]);
    assert_eq!(v["download_url"], app.url("/api/v1/packages/consumer/2.0.0/download"));
    assert_eq!(v["checksum"], format!("sha256:{}", sha256_hex(&bytes)));
    assert_eq!(v["size_bytes"], json!(bytes.len()));
    assert_eq!(v["yanked"], false);
    assert_eq!(v["yanked_at"], Value::Null);

    // A version without dependencies has empty maps, and its optional strings are "".
    let d = get_ok(&app, "/api/v1/packages/dep-a/1.0.0").await;
    assert_eq!(d["dependencies"], json!({}));
    assert_eq!(d["dev_dependencies"], json!({}));
    assert_eq!(d["description"], "");
    assert_eq!(d["license"], "");
    assert_eq!(d["keywords"], json!([]));

    yank_ok(&app, &alice.token, "consumer", "2.0.0").await;
    let v = get_ok(&app, "/api/v1/packages/consumer/2.0.0").await;
    assert_eq!(v["yanked"], true);
    rfc3339(&v["yanked_at"]);

    expect_error(get(&app, "/api/v1/packages/consumer/9.9.9").await, 404, "not_found").await;
    expect_error(get(&app, "/api/v1/packages/nope/1.0.0").await, 404, "not_found").await;
}

// ---------------------------------------------------------------------------------------------
// 3. Downloads
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn download_headers_conditional_requests_and_counting_across_a_restart() {
    let app = spawn().await;
    let alice = register_user(&app, "alice").await;
    let bytes = publish_package(&app, &alice.token, "dl-pkg", "1.0.0").await;
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    let url = app.url(&download_path("dl-pkg", "1.0.0"));

    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h[header::CONTENT_TYPE], "application/gzip");
    assert_eq!(h[header::CONTENT_LENGTH], bytes.len().to_string().as_str());
    assert_eq!(h[header::CONTENT_DISPOSITION], "attachment; filename=\"dl-pkg-1.0.0.tar.gz\"");
    assert_eq!(h[header::ETAG], etag.as_str());
    assert_eq!(h[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(h.get(header::CONTENT_ENCODING).is_none(), "a tarball is never compressed again");
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes, "the body is the uploaded tarball");

    let res = app.client.head(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/gzip");
    assert_eq!(res.headers()[header::CONTENT_LENGTH], bytes.len().to_string().as_str());
    assert_eq!(res.headers()[header::ETAG], etag.as_str());
    assert_eq!(res.headers()[header::CONTENT_DISPOSITION], "attachment; filename=\"dl-pkg-1.0.0.tar.gz\"");
    assert!(res.bytes().await.unwrap().is_empty(), "HEAD has no body");

    for inm in [etag.clone(), format!("\"deadbeef\", {etag}"), "*".to_owned()] {
        let res = app.client.get(&url).header(header::IF_NONE_MATCH, &inm).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "If-None-Match: {inm}");
        assert_eq!(res.headers()[header::ETAG], etag.as_str());
        assert!(res.bytes().await.unwrap().is_empty());
    }
    let res = app.client.get(&url).header(header::IF_NONE_MATCH, "\"deadbeef\"").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a different ETag gets the full body");
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);

    yank_ok(&app, &alice.token, "dl-pkg", "1.0.0").await;
    assert_eq!(download(&app, "dl-pkg", "1.0.0").await, bytes, "a yanked version still downloads");

    let res = app.client.get(app.url(&download_path("dl-pkg", "9.9.9"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "not_found");

    // Complete GETs so far: the first, the mismatched If-None-Match and the yanked one.
    const N: i64 = 3;
    let (cfg, pg, dir) = app.stop().await;
    let app = start(cfg, pg, dir).await;
    let p = get_ok(&app, "/api/v1/packages/dl-pkg").await;
    assert_eq!(p["downloads_total"], json!(N), "HEAD and 304 do not count; counts survive a graceful restart: {p}");
    assert_eq!(p["downloads_last_month"], json!(N), "{p}");
    let s = get_ok(&app, "/api/v1/packages/dl-pkg/stats").await;
    assert_eq!(s["name"], "dl-pkg");
    assert_eq!(s["downloads"]["total"], json!(N), "{s}");
    assert_eq!(s["downloads"]["last_week"], json!(N), "{s}");
    assert_eq!(s["downloads"]["last_month"], json!(N), "{s}");
    assert_eq!(s["downloads"]["last_year"], json!(N), "{s}");
    assert_eq!(s["versions_count"], json!(1), "{s}");
    assert_eq!(s["dependents_count"], json!(0), "{s}");
    let v = get_ok(&app, "/api/v1/packages/dl-pkg/1.0.0").await;
    assert_eq!(v["yanked"], true);
    assert_eq!(download(&app, "dl-pkg", "1.0.0").await, bytes, "the restarted app serves the same blob");
}

// ---------------------------------------------------------------------------------------------
// 4. Corrupted blobs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_corrupted_blob_is_never_served_as_a_complete_download() {
    // Streamed from storage, hashed on the way out (the blob cache off).
    corrupted_blob_is_never_served(0).await;
}

#[tokio::test]
async fn a_corrupted_blob_is_never_served_or_cached_by_the_blob_cache() {
    // Read whole and checked before any byte goes out, then cached (the default).
    corrupted_blob_is_never_served(8 << 20).await;
}

async fn corrupted_blob_is_never_served(blob_cache_bytes: u64) {
    let app = common::spawn_with(|c| c.blob_cache_bytes = blob_cache_bytes).await;
    let alice = register_user(&app, "alice").await;
    let bytes = publish_package(&app, &alice.token, "fragile", "1.0.0").await;
    let key = Storage::key("fragile", "1.0.0");

    // The blob lives in the local storage directory, byte for byte.
    let mut found = Vec::new();
    let mut stack = vec![app.dir.path().join("storage")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "fragile-1.0.0.tar.gz" {
                found.push(e.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "one stored blob: {found:?}");
    assert_eq!(std::fs::read(&found[0]).unwrap(), bytes);

    // Same length, different bytes: the size check passes, the checksum cannot.
    let bad: Vec<u8> = bytes.iter().map(|b| b ^ 0x5a).collect();
    app.state.storage.put(&key, bad.clone().into()).await.unwrap();
    assert_eq!(std::fs::read(&found[0]).unwrap(), bad, "the stored blob was replaced");
    for attempt in 0..2 {
        // The verdict comes with the last chunk; for a one-chunk blob the connection fails before
        // any header is out, which is as good a refusal as a cut-off body.
        let res = match app.client.get(app.url(&download_path("fragile", "1.0.0"))).send().await {
            Ok(res) => res,
            Err(e) => {
                assert!(e.is_request(), "attempt {attempt}: {e}");
                continue;
            }
        };
        let status = res.status();
        match res.bytes().await {
            Ok(body) if status == StatusCode::OK => panic!(
                "attempt {attempt}: a corrupted blob was delivered as a complete 200 response ({} bytes, equal to the \
                 corrupted blob: {})",
                body.len(),
                body.as_ref() == bad.as_slice()
            ),
            Ok(_) => assert!(status.is_server_error(), "attempt {attempt}: status {status}"),
            Err(_) => assert_eq!(status, StatusCode::OK, "the transfer was cut off mid-body"),
        }
    }
    // A corrupted transfer is not a download.
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let p = get_ok(&app, "/api/v1/packages/fragile").await;
    assert_eq!(p["downloads_total"], json!(0), "a failed transfer is not counted: {p}");

    // A different length is caught before anything is sent.
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"trailing garbage");
    app.state.storage.put(&key, longer.into()).await.unwrap();
    let res = app.client.get(app.url(&download_path("fragile", "1.0.0"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "internal_error", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(!message.contains("packages/fragile"), "internal details stay in the logs: {body}");

    assert!(app.state.blobs.is_empty(), "a blob that failed its check is never cached");

    // Restoring the original bytes makes it downloadable again.
    app.state.storage.put(&key, bytes.clone().into()).await.unwrap();
    assert_eq!(download(&app, "fragile", "1.0.0").await, bytes);
    assert_eq!(app.state.blobs.len(), usize::from(blob_cache_bytes > 0), "verified, it is cached (when on)");
}

/// Once verified and cached, a blob is served from memory: corrupting (or losing) the stored copy
/// afterwards never reaches a client, and downloads are still counted.
#[tokio::test]
async fn a_cached_blob_is_served_as_verified_and_the_cache_keeps_its_bound() {
    let app = spawn().await;
    let alice = register_user(&app, "alice").await;
    let bytes = publish_package(&app, &alice.token, "hot-blob", "1.0.0").await;
    assert_eq!(download(&app, "hot-blob", "1.0.0").await, bytes);
    assert_eq!(app.state.blobs.len(), 1);
    let key = Storage::key("hot-blob", "1.0.0");
    let bad: Vec<u8> = bytes.iter().map(|b| b ^ 0x5a).collect();
    app.state.storage.put(&key, bad.into()).await.unwrap();
    for _ in 0..3 {
        assert_eq!(download(&app, "hot-blob", "1.0.0").await, bytes, "the verified copy, not the corrupted one");
    }
    let (hits, _) = app.state.blobs.lookups();
    assert!(hits >= 3, "{hits} hits");
    app.state.storage.delete(&key).await.unwrap();
    assert_eq!(download(&app, "hot-blob", "1.0.0").await, bytes, "served from memory");
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush");
    let p = get_ok(&app, "/api/v1/packages/hot-blob").await;
    assert_eq!(p["downloads_total"], json!(5), "every cached download counts: {p}");

    // A cache of five small tarballs' room holds no more than its bound, however many pass.
    let bound = 5 * bytes.len() as u64;
    let small = common::spawn_with(|c| c.blob_cache_bytes = bound).await;
    let bob = register_user(&small, "bob").await;
    for i in 0..8 {
        let name = format!("many-{i}");
        let b = publish_package(&small, &bob.token, &name, "1.0.0").await;
        assert_eq!(download(&small, &name, "1.0.0").await, b);
        assert!(small.state.blobs.used_bytes() <= bound, "{} > {bound}", small.state.blobs.used_bytes());
    }
    let held = small.state.blobs.len();
    assert!((1..8).contains(&held), "some were cached, older ones evicted: {held}");
}

// ---------------------------------------------------------------------------------------------
// 5. Search (REST and GraphQL)
// ---------------------------------------------------------------------------------------------

/// json (exact name), json-schema (name prefix), fast-parser (text match only), plus json-old which
/// is yanked away; returns the owner's token.
async fn search_fixture(app: &TestApp) -> String {
    let alice = register_user(app, "alice").await;
    publish_with(app, &alice.token, "json", "1.0.0", "description = \"JSON parser\"", "").await;
    publish_with(app, &alice.token, "json-schema", "0.2.0", "description = \"schemas\"", "").await;
    publish_with(
        app,
        &alice.token,
        "fast-parser",
        "3.1.0",
        "description = \"a fast json parser\"\nkeywords = [\"json\"]",
        "",
    )
    .await;
    publish_with(app, &alice.token, "json-old", "0.1.0", "description = \"old json reader\"", "").await;
    publish_with(app, &alice.token, "unrelated", "1.0.0", "description = \"nothing to see\"", "").await;
    alice.token
}

#[tokio::test]
async fn rest_search_ranks_pages_and_treats_operators_as_text() {
    let app = spawn().await;
    let token = search_fixture(&app).await;

    let all = search(&app, &[("q", "json")]).await;
    assert_eq!(all["total"], json!(4), "{all}");
    assert!(names(&all["results"]).contains(&"json-old".to_owned()));
    // A package whose only version is yanked leaves search.
    yank_ok(&app, &token, "json-old", "0.1.0").await;
    let solo = search(&app, &[("q", "json-old")]).await;
    assert_eq!(solo["total"], json!(0), "{solo}");
    assert_eq!(solo["results"], json!([]));

    let body = search(&app, &[("q", "json")]).await;
    assert_keys(&body, &["results", "total", "limit", "offset"]);
    assert_eq!(names(&body["results"]), ["json", "json-schema", "fast-parser"], "{body}");
    assert_eq!(body["total"], json!(3));
    assert_eq!(body["limit"], json!(20), "default limit");
    assert_eq!(body["offset"], json!(0));
    let results = body["results"].as_array().unwrap();
    for r in results {
        assert_keys(r, &["name", "version", "description", "keywords", "downloads", "score"]);
        assert!(r["score"].is_f64(), "score is a float: {r}");
        assert!(r["downloads"].is_i64(), "{r}");
    }
    let scores: Vec<f64> = results.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "scores descend: {scores:?}");
    assert_eq!(results[0]["version"], "1.0.0");
    assert_eq!(results[0]["description"], "JSON parser");
    assert_eq!(results[0]["keywords"], json!([]));
    assert_eq!(results[0]["downloads"], json!(0));
    assert_eq!(results[2]["version"], "3.1.0");
    assert_eq!(results[2]["description"], "a fast json parser");
    assert_eq!(results[2]["keywords"], json!(["json"]));

    // total counts every match, not the page; pages are disjoint and cover the whole order.
    let mut paged = Vec::new();
    for offset in 0..3 {
        let page = search(&app, &[("q", "json"), ("limit", "1"), ("offset", &offset.to_string())]).await;
        assert_eq!(page["total"], json!(3), "{page}");
        assert_eq!(page["limit"], json!(1));
        assert_eq!(page["offset"], json!(offset));
        assert_eq!(page["results"].as_array().unwrap().len(), 1, "{page}");
        paged.extend(names(&page["results"]));
    }
    assert_eq!(paged, ["json", "json-schema", "fast-parser"]);
    let two = search(&app, &[("q", "json"), ("limit", "2"), ("offset", "2")]).await;
    assert_eq!(names(&two["results"]), ["fast-parser"]);
    let past = search(&app, &[("q", "json"), ("offset", "3")]).await;
    assert_eq!(past["results"], json!([]));
    assert_eq!(past["total"], json!(3));

    let capped = search(&app, &[("q", "json"), ("limit", "1000")]).await;
    assert_eq!(capped["limit"], json!(100), "limit is capped at 100");
    assert_eq!(capped["results"].as_array().unwrap().len(), 3);

    // Operators and wildcards of LIKE, FTS5 and tsquery are plain text.
    for q in [
        "%",
        "_",
        "\"",
        "*",
        "OR",
        "NEAR(",
        "'",
        "json OR",
        "OR json",
        "json*",
        "\"json",
        "NEAR(json, parser)",
        "json'",
        "%json%",
        "_son",
        "json AND NOT x",
        "-json",
        "json:*",
        "json & !x | y",
        "\\",
    ] {
        let body = search(&app, &[("q", q)]).await;
        assert!(body["results"].is_array(), "{q:?}: {body}");
        assert!(body["total"].as_u64().unwrap() <= 3, "{q:?} matched more than the json packages: {body}");
    }
    for q in ["%", "_", "%%", "*", "'", "\""] {
        let body = search(&app, &[("q", q)]).await;
        assert_eq!(body["total"], json!(0), "{q:?} must not match everything: {body}");
        assert_eq!(body["results"], json!([]), "{q:?}");
    }
    let body = search(&app, &[("q", "\"json\"")]).await;
    assert_eq!(names(&body["results"]), ["json", "json-schema", "fast-parser"], "quotes are ignored");

    // Malformed numbers are refused, not a 500.
    let res = app.client.get(app.url("/api/v1/search")).query(&[("q", "json"), ("limit", "-1")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn graphql_search_pages_with_cursors() {
    let app = spawn().await;
    let token = search_fixture(&app).await;
    yank_ok(&app, &token, "json-old", "0.1.0").await;
    let q = "query($after: String) { search(query: \"json\", first: 2, after: $after) { totalCount \
             pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { name } } nodes { name } } }";

    let first = app.gql(q, json!({}), None).await;
    let s = &gql_ok(&first)["search"];
    assert_eq!(s["totalCount"], json!(3), "{first}");
    let edges = s["edges"].as_array().unwrap();
    let page1: Vec<&str> = edges.iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
    assert_eq!(page1, ["json", "json-schema"], "{first}");
    assert_eq!(s["nodes"], json!([{"name": "json"}, {"name": "json-schema"}]));
    assert_eq!(s["pageInfo"]["hasNextPage"], true);
    assert_eq!(s["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(s["pageInfo"]["endCursor"], edges[1]["cursor"]);
    assert_ne!(edges[0]["cursor"], edges[1]["cursor"]);

    let second = app.gql(q, json!({"after": s["pageInfo"]["endCursor"]}), None).await;
    let s2 = &gql_ok(&second)["search"];
    assert_eq!(s2["totalCount"], json!(3));
    let page2: Vec<&str> =
        s2["edges"].as_array().unwrap().iter().map(|e| e["node"]["name"].as_str().unwrap()).collect();
    assert_eq!(page2, ["fast-parser"], "{second}");
    assert_eq!(s2["pageInfo"]["hasNextPage"], false);
    assert_eq!(s2["pageInfo"]["hasPreviousPage"], true);
    assert!(page1.iter().all(|n| !page2.contains(n)), "pages are disjoint");

    let weird = app.gql("{ search(query: \"%\", first: 5) { totalCount nodes { name } } }", json!({}), None).await;
    assert_eq!(gql_ok(&weird)["search"], json!({"totalCount": 0, "nodes": []}));
    let ops = app.gql("{ search(query: \"NEAR( ' OR * _\", first: 5) { totalCount } }", json!({}), None).await;
    assert!(gql_ok(&ops)["search"]["totalCount"].is_u64(), "{ops}");
}

// ---------------------------------------------------------------------------------------------
// 6. GraphQL reads
// ---------------------------------------------------------------------------------------------

const HOSTILE_README: &str =
    "# Widget\n\nSome *text*.\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(2))\n";

#[tokio::test]
async fn graphql_package_version_and_browse() {
    let app = spawn().await;
    let alice = register_user(&app, "alice").await;
    publish_package(&app, &alice.token, "dep-a", "1.0.0").await;
    publish_package(&app, &alice.token, "test-kit", "0.3.0").await;
    let deps = "dep-a = \"^1.0\"\n\n[dev-dependencies]\ntest-kit = \"=0.3.0\"";
    publish_with(&app, &alice.token, "widget", "1.2.0", WIDGET_EXTRA, deps).await;
    let latest = package_with_readme(&manifest_with("widget", "1.10.0", WIDGET_EXTRA, deps), HOSTILE_README);
    publish_ok(&app, &alice.token, "widget", "1.10.0", latest.clone()).await;
    publish_with(&app, &alice.token, "widget", "1.9.0", WIDGET_EXTRA, deps).await;

    // Counted through the app's own counter (HTTP download counting is covered on its own above),
    // then flushed to the database as the flusher does.
    for _ in 0..2 {
        app.state.downloads.record("widget", "1.10.0");
    }
    flush_until(&app, "widget", 2).await;

    let q = r#"query($name: String!, $after: String) {
        package(name: $name) {
            name description keywords
            latestVersion {
                version sha256 sizeBytes downloadUrl authors readme readmeHtml
                dependencies { name req kind package { name } }
                publishedBy { username }
            }
            versions(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { version } }
            owners { role user { username } }
            downloads { total lastWeek lastMonth daily(days: 7) { day count } }
        }
    }"#;
    let res = app.gql(q, json!({"name": "widget"}), None).await;
    let p = &gql_ok(&res)["package"];
    assert_eq!(p["name"], "widget");
    assert_eq!(p["description"], "A widget toolkit");
    assert_eq!(p["keywords"], json!(["ui", "widgets"]));
    let lv = &p["latestVersion"];
    assert_eq!(lv["version"], "1.10.0");
    assert_eq!(lv["sha256"], sha256_hex(&latest));
    assert_eq!(lv["sizeBytes"], json!(latest.len()));
    assert_eq!(lv["downloadUrl"], app.url("/api/v1/packages/widget/1.10.0/download"));
    assert_eq!(lv["authors"], json!(["Ada <ada@example.com>"]));
    assert_eq!(lv["readme"], HOSTILE_README);
    let html = lv["readmeHtml"].as_str().unwrap();
    assert!(html.contains("<h1 id=\"user-content-widget\">Widget</h1>"), "{html}");
    assert!(html.contains("<em>text</em>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("onerror"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    let mut deps: Vec<Value> = lv["dependencies"].as_array().unwrap().clone();
    deps.sort_by_key(|d| d["name"].as_str().unwrap().to_owned());
    assert_eq!(
        deps,
        [
            json!({"name": "dep-a", "req": "^1.0", "kind": "NORMAL", "package": {"name": "dep-a"}}),
            json!({"name": "test-kit", "req": "=0.3.0", "kind": "DEV", "package": {"name": "test-kit"}}),
        ]
    );
    assert_eq!(lv["publishedBy"], json!({"username": "alice"}));

    let vs = &p["versions"];
    assert_eq!(vs["totalCount"], json!(3));
    assert_eq!(vs["nodes"], json!([{"version": "1.10.0"}, {"version": "1.9.0"}]), "newest SemVer first");
    assert_eq!(vs["pageInfo"]["hasNextPage"], true);
    let cursor = vs["pageInfo"]["endCursor"].as_str().unwrap().to_owned();

    assert_eq!(p["owners"], json!([{"role": "owner", "user": {"username": "alice"}}]));

    let dl = &p["downloads"];
    assert_eq!(dl["total"], json!(2), "{dl}");
    assert_eq!(dl["lastWeek"], json!(2), "{dl}");
    assert_eq!(dl["lastMonth"], json!(2), "{dl}");
    let daily = dl["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 7, "{dl}");
    let today = chrono::Utc::now().date_naive();
    let days: Vec<String> = (0..7).rev().map(|back| (today - chrono::Duration::days(back)).to_string()).collect();
    assert_eq!(daily.iter().map(|d| d["day"].as_str().unwrap().to_owned()).collect::<Vec<_>>(), days, "oldest first");
    assert_eq!(daily.iter().map(|d| d["count"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 0, 0, 0, 0, 0, 2]);

    let res = app.gql(q, json!({"name": "widget", "after": cursor}), None).await;
    let vs = &gql_ok(&res)["package"]["versions"];
    assert_eq!(vs["nodes"], json!([{"version": "1.2.0"}]), "{res}");
    assert_eq!(vs["pageInfo"]["hasNextPage"], false);
    assert_eq!(vs["totalCount"], json!(3));

    // Unknown package: null, not an error.
    let res = app.gql("{ package(name: \"nope\") { name } }", json!({}), None).await;
    assert_eq!(gql_ok(&res)["package"], Value::Null, "{res}");

    let res = app
        .gql(
            "{ v: version(name: \"widget\", version: \"1.9.0\") { version yanked sha256 package { name } } \
               missing: version(name: \"widget\", version: \"9.9.9\") { version } \
               nopkg: version(name: \"nope\", version: \"1.0.0\") { version } }",
            json!({}),
            None,
        )
        .await;
    let d = gql_ok(&res);
    assert_eq!(d["v"]["version"], "1.9.0");
    assert_eq!(d["v"]["yanked"], false);
    assert_eq!(d["v"]["package"], json!({"name": "widget"}));
    let v19 = get_ok(&app, "/api/v1/packages/widget/1.9.0").await;
    assert_eq!(format!("sha256:{}", d["v"]["sha256"].as_str().unwrap()), v19["checksum"].as_str().unwrap());
    assert_eq!(d["missing"], Value::Null);
    assert_eq!(d["nopkg"], Value::Null);

    let res = app.gql("{ packages(first: 10, sort: NAME) { totalCount nodes { name } } }", json!({}), None).await;
    let b = &gql_ok(&res)["packages"];
    assert_eq!(b["totalCount"], json!(3));
    assert_eq!(b["nodes"], json!([{"name": "dep-a"}, {"name": "test-kit"}, {"name": "widget"}]));
    let res = app
        .gql(
            "{ packages(first: 1, sort: NAME) { totalCount pageInfo { hasNextPage endCursor } nodes { name } } }",
            json!({}),
            None,
        )
        .await;
    let b = &gql_ok(&res)["packages"];
    assert_eq!(b["nodes"], json!([{"name": "dep-a"}]));
    let after = b["pageInfo"]["endCursor"].clone();
    let res = app
        .gql(
            "query($after: String) { packages(first: 5, after: $after, sort: NAME) { nodes { name } } }",
            json!({"after": after}),
            None,
        )
        .await;
    assert_eq!(gql_ok(&res)["packages"]["nodes"], json!([{"name": "test-kit"}, {"name": "widget"}]));

    // Bounds of `first` and garbage cursors are bad input.
    for (query, field) in [
        ("{ packages(first: 0) { totalCount } }", "first"),
        ("{ packages(first: 101) { totalCount } }", "first"),
        ("{ search(query: \"json\", first: 0) { totalCount } }", "first"),
        ("{ search(query: \"json\", first: 101) { totalCount } }", "first"),
        ("{ package(name: \"widget\") { versions(first: 0) { totalCount } } }", "first"),
        ("{ package(name: \"widget\") { versions(first: 101) { totalCount } } }", "first"),
        ("{ packages(first: 5, after: \"garbage!!\") { totalCount } }", "after"),
        ("{ search(query: \"json\", first: 5, after: \"bm90LWEtY3Vyc29y\") { totalCount } }", "after"),
        ("{ package(name: \"widget\") { versions(first: 5, after: \"\") { totalCount } } }", "after"),
    ] {
        let res = app.gql(query, json!({}), None).await;
        gql_error(&res, "BAD_USER_INPUT", Some(field));
    }
}

// ---------------------------------------------------------------------------------------------
// 7. GraphQL limits
// ---------------------------------------------------------------------------------------------

fn refused(res: &Value, needle: &str) {
    let errors = res["errors"].as_array().unwrap_or_else(|| panic!("expected the query to be refused: {res}"));
    assert!(!errors.is_empty(), "{res}");
    assert!(res.get("data").is_none_or(Value::is_null), "a refused query returns no data: {res}");
    let message = errors[0]["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(message.contains(needle), "expected {needle:?} in the error: {res}");
}

#[tokio::test]
async fn graphql_depth_and_complexity_limits() {
    let app = spawn().await;
    let alice = register_user(&app, "alice").await;
    publish_package(&app, &alice.token, "leaf", "1.0.0").await;
    publish_with(&app, &alice.token, "mid", "1.0.0", "", "leaf = \"^1\"").await;
    publish_with(&app, &alice.token, "top", "1.0.0", "", "mid = \"^1\"").await;

    // Within the limits: depth 7.
    let shallow =
        "{ package(name: \"top\") { latestVersion { dependencies { package { latestVersion { version } } } } } }";
    let res = app.gql(shallow, json!({}), None).await;
    assert_eq!(
        gql_ok(&res)["package"]["latestVersion"]["dependencies"],
        json!([{"package": {"latestVersion": {"version": "1.0.0"}}}])
    );

    // package -> latestVersion -> dependencies -> package ... nested past depth 10.
    let mut deep = String::from("name");
    for _ in 0..5 {
        deep = format!("name latestVersion {{ dependencies {{ package {{ {deep} }} }} }}");
    }
    let deep = format!("{{ package(name: \"top\") {{ {deep} }} }}");
    let res = app.gql(&deep, json!({}), None).await;
    refused(&res, "deep");

    // 100 packages x 100 versions x their dependencies: far above the complexity budget.
    let complex = "{ search(query: \"a\", first: 100) { nodes { versions(first: 100) { nodes { dependencies { \
                   package { name } } } } } } }";
    let res = app.gql(complex, json!({}), None).await;
    refused(&res, "complex");
    let browse = "{ packages(first: 100) { nodes { versions(first: 100) { nodes { version } } } } }";
    let res = app.gql(browse, json!({}), None).await;
    refused(&res, "complex");

    // The same shapes with small pages are fine.
    let small = "{ packages(first: 5, sort: NAME) { nodes { versions(first: 5) { nodes { dependencies { package { \
                 name } } } } } } }";
    let res = app.gql(small, json!({}), None).await;
    let nodes = gql_ok(&res)["packages"]["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3, "{res}");
    assert_eq!(nodes[0]["versions"]["nodes"][0]["dependencies"], json!([]), "leaf");
    assert_eq!(nodes[1]["versions"]["nodes"][0]["dependencies"], json!([{"package": {"name": "leaf"}}]), "mid");
    assert_eq!(nodes[2]["versions"]["nodes"][0]["dependencies"], json!([{"package": {"name": "mid"}}]), "top");
}

// ---------------------------------------------------------------------------------------------
// 8. Registry statistics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn registry_stats_over_rest_and_graphql() {
    let app = spawn().await;
    let empty = get_ok(&app, "/api/v1/stats").await;
    assert_keys(&empty, &["total_packages", "total_versions", "total_downloads", "total_users", "updated_at"]);
    assert_eq!(empty["total_packages"], json!(0));
    assert_eq!(empty["total_versions"], json!(0));
    assert_eq!(empty["total_downloads"], json!(0));
    assert_eq!(empty["total_users"], json!(0));
    rfc3339(&empty["updated_at"]);

    let alice = register_user(&app, "alice").await;
    let _bob = register_user(&app, "bob").await;
    register_user(&app, "carol").await;
    publish_package(&app, &alice.token, "pkg-one", "1.0.0").await;
    publish_package(&app, &alice.token, "pkg-one", "1.1.0").await;
    publish_package(&app, &alice.token, "pkg-two", "0.1.0").await;
    // Counted through the app's own counter; HTTP download counting has its own test.
    app.state.downloads.record("pkg-one", "1.1.0");
    app.state.downloads.record("pkg-two", "0.1.0");
    app.state.downloads.record("pkg-two", "0.1.0");
    flush_until(&app, "pkg-one", 1).await;
    flush_until(&app, "pkg-two", 2).await;

    let s = get_ok(&app, "/api/v1/stats").await;
    assert_eq!(s["total_packages"], json!(2), "{s}");
    assert_eq!(s["total_versions"], json!(3), "{s}");
    assert_eq!(s["total_users"], json!(3), "{s}");
    assert_eq!(s["total_downloads"], json!(3), "{s}");
    rfc3339(&s["updated_at"]);

    let res =
        app.gql("{ stats { totalPackages totalVersions totalDownloads totalUsers updatedAt } }", json!({}), None).await;
    let g = &gql_ok(&res)["stats"];
    assert_eq!(g["totalPackages"], json!(2), "{res}");
    assert_eq!(g["totalVersions"], json!(3));
    assert_eq!(g["totalUsers"], json!(3));
    assert_eq!(g["totalDownloads"], json!(3));
    rfc3339(&g["updatedAt"]);

    let p = get_ok(&app, "/api/v1/packages/pkg-one/stats").await;
    assert_eq!(p["versions_count"], json!(2), "{p}");
    assert_eq!(p["downloads"]["total"], json!(1), "{p}");
}

/// A flush spanning several write transactions (more distinct versions than one transaction takes)
/// adds every count once, and skips versions that do not exist.
#[tokio::test]
async fn a_large_flush_is_written_in_chunks_and_counts_everything_once() {
    let app = spawn().await;
    let token = common::api::register(&app, "counter").await;
    for v in ["1.0.0", "1.0.1", "1.0.2"] {
        publish_ok(&app, &token, "chunky", v, common::tarballs::package("chunky", v)).await;
    }
    for i in 0..250 {
        app.state.downloads.record("chunky", &format!("9.9.{i}"));
        app.state.downloads.record("no-such-package", "1.0.0");
    }
    for (v, n) in [("1.0.0", 3), ("1.0.1", 1), ("1.0.2", 2)] {
        for _ in 0..n {
            app.state.downloads.record("chunky", v);
        }
    }
    let written = app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush");
    assert_eq!(written, 3, "the three real versions; unknown ones are skipped");
    assert_eq!(app.state.downloads.pending_total(), 0);
    let (status, pkg) = common::api::get_json(&app, "/api/v1/packages/chunky", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pkg["downloads_total"], json!(6), "{pkg}");
    assert_eq!(pkg["downloads_last_month"], json!(6), "{pkg}");
    assert_eq!(
        app.state.downloads.flush(&app.state.db, &app.state.generation).await.unwrap(),
        0,
        "nothing counted twice"
    );
}

// ---------------------------------------------------------------------------------------------
// Which version is latest
// ---------------------------------------------------------------------------------------------

/// The latest version of `name` as every surface that shows one reports it, with the surface's
/// name: REST package metadata, REST search, the REST profiles of its owner (public and own),
/// GraphQL `package`, `search` and `packages`. None where the surface shows no version.
async fn latest_everywhere(
    app: &TestApp,
    owner: &common::api::User,
    name: &str,
) -> Vec<(&'static str, Option<String>)> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let mut seen = Vec::new();
    let p = get_ok(app, &format!("/api/v1/packages/{name}")).await;
    seen.push(("REST package latest_version", text(&p["latest_version"])));
    let hits = search(app, &[("q", name)]).await;
    let hit = hits["results"].as_array().unwrap().iter().find(|r| r["name"] == name).map(|r| r["version"].clone());
    seen.push(("REST search version", hit.as_ref().and_then(text)));
    let username = owner.body["username"].as_str().unwrap();
    for (surface, path, token) in [
        ("REST user packages[].version", format!("/api/v1/users/{username}"), None),
        ("REST me packages[].version", "/api/v1/users/me".to_owned(), Some(owner.token.as_str())),
    ] {
        let (status, body) = common::api::get_json(app, &path, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let pkg = body["packages"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned();
        seen.push((surface, pkg.as_ref().and_then(|p| text(&p["version"]))));
    }
    let res = app
        .gql(
            "query($n: String!) { package(name: $n) { latestVersion { version } } \
               search(query: $n) { nodes { name latestVersion { version } } } \
               packages(first: 100) { nodes { name latestVersion { version } } } }",
            json!({"n": name}),
            None,
        )
        .await;
    let data = gql_ok(&res);
    seen.push(("GraphQL package.latestVersion", text(&data["package"]["latestVersion"]["version"])));
    for (surface, list) in [("GraphQL search latestVersion", "search"), ("GraphQL packages latestVersion", "packages")]
    {
        let node = data[list]["nodes"].as_array().unwrap().iter().find(|n| n["name"] == name).cloned();
        seen.push((surface, node.as_ref().and_then(|n| text(&n["latestVersion"]["version"]))));
    }
    seen
}

async fn assert_latest(app: &TestApp, owner: &common::api::User, name: &str, expected: Option<&str>) {
    for (surface, got) in latest_everywhere(app, owner, name).await {
        assert_eq!(got.as_deref(), expected, "{surface} of {name}");
    }
}

/// Packages whose latest version depends on `name`, over REST (a count) and GraphQL (names).
async fn dependents(app: &TestApp, name: &str) -> (Value, Value) {
    let stats = get_ok(app, &format!("/api/v1/packages/{name}/stats")).await;
    let res = app
        .gql(
            "query($n: String!) { package(name: $n) { dependents { nodes { package { name } } } } }",
            json!({"n": name}),
            None,
        )
        .await;
    let nodes = gql_ok(&res)["package"]["dependents"]["nodes"].as_array().unwrap().iter().map(|n| n["package"].clone());
    (stats["dependents_count"].clone(), Value::Array(nodes.collect()))
}

/// With 1.0.0 and 2.0.0-alpha.1 published, 1.0.0 is latest everywhere; prereleases are latest only
/// when no release is left, and a fully yanked package has none. The package's metadata (what
/// search matches, what its page shows) and "dependents" follow the same rule through publish,
/// yank and unyank.
#[tokio::test]
async fn latest_is_the_highest_release_everywhere_and_prereleases_only_without_one() {
    let app = spawn().await;
    let alice = register_user(&app, "alice").await;
    publish_package(&app, &alice.token, "base", "1.0.0").await;
    let extra = |d: &str, k: &str| format!("description = \"{d}\"\nkeywords = [\"{k}\"]");
    publish_with(&app, &alice.token, "lat", "1.0.0", &extra("The stable one", "stable"), "base = \"1\"").await;
    assert_latest(&app, &alice, "lat", Some("1.0.0")).await;
    publish_with(&app, &alice.token, "lat", "2.0.0-alpha.1", &extra("The alpha", "alphakw"), "").await;
    publish_with(&app, &alice.token, "lat", "1.1.0-beta", &extra("The beta", "betakw"), "").await;
    assert_latest(&app, &alice, "lat", Some("1.0.0")).await;
    let p = get_ok(&app, "/api/v1/packages/lat").await;
    assert_eq!(p["description"], "The stable one", "the package shows its latest version's metadata: {p}");
    assert_eq!(p["keywords"], json!(["stable"]), "{p}");
    assert_eq!(p["versions"], json!(["1.0.0", "1.1.0-beta", "2.0.0-alpha.1"]), "every version is still listed: {p}");
    assert!(
        names(&search(&app, &[("q", "alphakw")]).await["results"]).is_empty(),
        "a prerelease's keywords are not the package's"
    );
    assert_eq!(dependents(&app, "base").await, (json!(1), json!([{"name": "lat"}])));

    // The only release yanked: the highest prerelease left is latest, and its metadata is shown.
    yank_ok(&app, &alice.token, "lat", "1.0.0").await;
    assert_latest(&app, &alice, "lat", Some("2.0.0-alpha.1")).await;
    let p = get_ok(&app, "/api/v1/packages/lat").await;
    assert_eq!((&p["description"], &p["keywords"]), (&json!("The alpha"), &json!(["alphakw"])), "{p}");
    assert_eq!(names(&search(&app, &[("q", "alphakw")]).await["results"]), ["lat"]);
    assert!(names(&search(&app, &[("q", "stable")]).await["results"]).is_empty());
    assert_eq!(dependents(&app, "base").await, (json!(0), json!([])), "lat's latest no longer depends on base");

    // Unyanked: the release is latest again.
    let res = common::api::unyank(&app, &alice.token, "lat", "1.0.0").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_latest(&app, &alice, "lat", Some("1.0.0")).await;
    let p = get_ok(&app, "/api/v1/packages/lat").await;
    assert_eq!((&p["description"], &p["keywords"]), (&json!("The stable one"), &json!(["stable"])), "{p}");
    assert_eq!(names(&search(&app, &[("q", "stable")]).await["results"]), ["lat"]);

    // A higher release published after the prereleases takes over; a lower prerelease after it does not.
    publish_with(&app, &alice.token, "lat", "1.2.0", &extra("The second release", "second"), "").await;
    publish_with(&app, &alice.token, "lat", "1.3.0-rc.1", &extra("A candidate", "candidate"), "").await;
    assert_latest(&app, &alice, "lat", Some("1.2.0")).await;
    assert_eq!(get_ok(&app, "/api/v1/packages/lat").await["description"], "The second release");

    // Every version yanked: no latest (null / "" / left out of search). On the way, once no release
    // was left, 2.0.0-alpha.1 was latest; its metadata stays.
    for v in ["1.0.0", "1.1.0-beta", "1.2.0", "1.3.0-rc.1", "2.0.0-alpha.1"] {
        yank_ok(&app, &alice.token, "lat", v).await;
    }
    assert_latest(&app, &alice, "lat", None).await;
    assert_eq!(get_ok(&app, "/api/v1/packages/lat").await["description"], "The alpha");

    // Only prereleases ever published: the highest one.
    for v in ["0.1.0-rc.2", "0.1.0-rc.10", "0.1.0-alpha"] {
        publish_package(&app, &alice.token, "pre-only", v).await;
    }
    assert_latest(&app, &alice, "pre-only", Some("0.1.0-rc.10")).await;
}
