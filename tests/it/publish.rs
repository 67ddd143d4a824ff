//! Publishing through the REST shim (`raven pkg publish`), with yank, unyank and owners: valid
//! uploads, every kind of hostile tarball, authorisation by owner role and token scope, version
//! uniqueness and racing publishes. After every refused write, nothing may have been stored: no
//! row in any table a publish touches, and no blob.
use crate::testkit as common;

use common::api::{
    add_owner, create_token, expect_error, get_ok, meta, publish, publish_at, publish_ok, publish_package, publish_raw,
    register, remove_owner, rfc3339, sha256_hex, unyank, yank, Meta,
};
use common::tarballs::{
    dir, file, git_archive, gnu_long_name, gzip, gzip_bomb, hardlink, manifest, manifest_with, noise, package,
    package_from_manifest, pax_global, pax_local, pax_local_raw, pax_record, symlink, tar_bytes,
    tar_bytes_unterminated, targz, two_gzip_members, Member,
};
use common::{spawn, spawn_with, TestApp};
use raven_registry::storage::Storage;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Creates an API token of `owner` limited to `scopes`.
async fn scoped_token(app: &TestApp, owner: &str, scopes: &[&str]) -> String {
    let body = json!({"name": format!("only-{}", scopes.join("-")), "expires_in_days": 7, "scopes": scopes});
    create_token(app, owner, body).await["token"].as_str().unwrap().to_owned()
}

/// Asserts a 400 invalid_request naming `field`, whose message contains `needle`.
async fn expect_invalid(res: reqwest::Response, field: &str, needle: &str) -> Value {
    let body = expect_error(res, 400, "invalid_request").await;
    assert_eq!(body["details"]["field"], field, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(needle), "expected {needle:?} in the message: {body}");
    body
}

/// Everything a publish may write: row counts of every table it touches, and the blob keys.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    packages: u64,
    versions: u64,
    dependencies: u64,
    owners: u64,
    keywords: u64,
    audit: u64,
    blobs: Vec<String>,
}

async fn stored(app: &TestApp) -> Stored {
    let db = &app.state.db;
    let mut blobs = app.state.storage.list_keys().await.unwrap();
    blobs.sort();
    Stored {
        packages: entity::packages::Entity::find().count(db).await.unwrap(),
        versions: entity::versions::Entity::find().count(db).await.unwrap(),
        dependencies: entity::dependencies::Entity::find().count(db).await.unwrap(),
        owners: entity::package_owners::Entity::find().count(db).await.unwrap(),
        keywords: entity::keywords::Entity::find().count(db).await.unwrap(),
        audit: entity::audit_log::Entity::find().count(db).await.unwrap(),
        blobs,
    }
}

async fn stats(app: &TestApp) -> Value {
    get_ok(app, "/api/v1/stats").await
}

/// After a refusal on a registry that holds no package: still nothing, and nothing else changed
/// since `before` (taken after the users registered).
async fn assert_empty_registry(app: &TestApp, before: &Stored, what: &str) {
    let now = stored(app).await;
    assert_eq!((now.packages, now.versions, now.blobs.len()), (0, 0, 0), "{what} left something behind: {now:?}");
    assert_eq!(&now, before, "{what} left something behind");
    let s = stats(app).await;
    assert_eq!((s["total_packages"].clone(), s["total_versions"].clone()), (json!(0), json!(0)), "{what}: {s}");
}

async fn owners(app: &TestApp, name: &str) -> Value {
    get_ok(app, &format!("/api/v1/packages/{name}/owners")).await
}

async fn version_row(app: &TestApp, num: &str) -> entity::versions::Model {
    let rows = entity::versions::Entity::find().all(&app.state.db).await.unwrap();
    rows.into_iter().find(|v| v.num == num).unwrap_or_else(|| panic!("no version row {num}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Valid publishes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn valid_publish_returns_the_v1_shape_and_stores_the_exact_bytes() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let text = manifest_with(
        "http-client",
        "1.2.0",
        "description = \"An HTTP client.\"\nkeywords = [\"net\", \"HTTP\"]\nlicense = \"MIT\"",
        "",
    );
    let readme = "# http-client\n\nFetches things.\n";
    let bytes = targz(&[
        file("raven.toml", &text),
        file("README.md", readme),
        dir("src/"),
        file("src/lib.rvn", "fn get() {}\n"),
    ]);

    let res = publish(&app, &token, "http-client", "1.2.0", bytes.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let keys: std::collections::BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["checksum", "download_url", "name", "package_id", "published_at", "version"].into_iter().collect(),
        "{body}"
    );
    assert_eq!(body["name"], "http-client");
    assert_eq!(body["version"], "1.2.0");
    let package_id: uuid::Uuid = body["package_id"].as_str().unwrap().parse().expect("package_id is a UUID");
    rfc3339(&body["published_at"]);
    assert_eq!(body["checksum"], format!("sha256:{}", sha256_hex(&bytes)));
    let url = body["download_url"].as_str().unwrap();
    assert!(url.starts_with(&app.base), "download_url must be absolute on PUBLIC_URL: {url}");
    assert_eq!(url, format!("{}/api/v1/packages/http-client/1.2.0/download", app.base));

    // Exactly one package, one version, one owner, one blob; the blob is the upload, byte for byte.
    let s = stored(&app).await;
    assert_eq!((s.packages, s.versions, s.owners), (1, 1, 1), "{s:?}");
    assert_eq!(s.keywords, 2, "keywords are lowercased and stored: {s:?}");
    let key = Storage::key("http-client", "1.2.0");
    assert_eq!(s.blobs, vec![key.to_string()]);
    let blob = app.state.storage.get_bytes(&key).await.unwrap();
    assert_eq!(blob.len(), bytes.len());
    assert!(blob.as_ref() == bytes.as_slice(), "the stored blob differs from the upload");

    let pkg = entity::packages::Entity::find().one(&app.state.db).await.unwrap().unwrap();
    assert_eq!(pkg.id, package_id);
    assert_eq!(pkg.description.as_deref(), Some("An HTTP client."));
    let v = version_row(&app, "1.2.0").await;
    assert_eq!(v.package_id, package_id);
    assert_eq!(v.sha256, sha256_hex(&bytes));
    assert_eq!(v.size_bytes, bytes.len() as i64);
    assert_eq!(v.readme.as_deref(), Some(readme));
    assert!(!v.yanked);

    let st = stats(&app).await;
    assert_eq!((st["total_packages"].clone(), st["total_versions"].clone()), (json!(1), json!(1)), "{st}");
}

#[tokio::test]
async fn manifest_part_name_and_absent_metadata_are_accepted() {
    let app = spawn().await;
    let token = register(&app, "alice").await;

    // `manifest` is the older client's name for the metadata part.
    let res = publish_raw(
        &app,
        Some(&token),
        Meta::Part("manifest", json!({"name": "widget", "version": "1.0.0"}).to_string()),
        Some(package("widget", "1.0.0")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["name"].clone(), body["version"].clone()), (json!("widget"), json!("1.0.0")));

    // No metadata part at all: raven.toml is the source of truth.
    let bytes = package("widget", "1.1.0");
    let res = publish_raw(&app, Some(&token), Meta::None, Some(bytes.clone())).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["name"].clone(), body["version"].clone()), (json!("widget"), json!("1.1.0")));
    assert_eq!(body["checksum"], format!("sha256:{}", sha256_hex(&bytes)));

    // Metadata that carries only extra fields (no name or version) is fine too.
    let res = publish_raw(
        &app,
        Some(&token),
        Meta::Part("metadata", json!({"description": "ignored"}).to_string()),
        Some(package("widget", "1.2.0")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let s = stored(&app).await;
    assert_eq!((s.packages, s.versions), (1, 3), "{s:?}");
    assert_eq!(s.blobs.len(), 3, "{s:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. Refusals: each leaves no row and no blob
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hostile_paths_and_links_are_refused() {
    let app = spawn().await;
    let token = register(&app, "mallory").await;
    let before = stored(&app).await;
    let m = manifest("evil-pkg", "1.0.0");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("parent traversal", targz(&[file("raven.toml", &m), file("../evil", "x")]), "'..'"),
        ("nested traversal", targz(&[file("raven.toml", &m), file("src/../../evil", "x")]), "'..'"),
        ("absolute path", targz(&[file("raven.toml", &m), file("/etc/evil", "x")]), "is absolute"),
        ("symlink", targz(&[file("raven.toml", &m), symlink("link", "/etc/passwd")]), "is a symlink"),
        ("relative symlink", targz(&[file("raven.toml", &m), symlink("up", "../../..")]), "is a symlink"),
        ("hard link", targz(&[file("raven.toml", &m), hardlink("hard", "/etc/shadow")]), "is a hard link"),
    ];
    for (what, bytes, needle) in cases {
        let res = publish(&app, &token, "evil-pkg", "1.0.0", bytes).await;
        let body = expect_invalid(res, "tarball", needle).await;
        eprintln!("{what}: {}", body["message"]);
        assert_empty_registry(&app, &before, what).await;
    }
}

#[tokio::test]
async fn missing_or_duplicate_manifest_is_refused() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    let m = manifest("widget", "1.0.0");
    let missing = targz(&[file("README.md", "# no manifest"), file("src/lib.rvn", "")]);
    let res = publish(&app, &token, "widget", "1.0.0", missing).await;
    expect_invalid(res, "tarball", "missing raven.toml").await;
    assert_empty_registry(&app, &before, "missing raven.toml").await;

    let nested_only = targz(&[file("a/raven.toml", &m), file("b/other", "")]);
    let res = publish(&app, &token, "widget", "1.0.0", nested_only).await;
    expect_invalid(res, "tarball", "missing raven.toml").await;
    assert_empty_registry(&app, &before, "raven.toml below the root").await;

    for (what, bytes) in [
        ("duplicate raven.toml", targz(&[file("raven.toml", &m), file("raven.toml", &m)])),
        ("duplicate ./raven.toml", targz(&[file("raven.toml", &m), file("./raven.toml", &m)])),
    ] {
        let res = publish(&app, &token, "widget", "1.0.0", bytes).await;
        expect_invalid(res, "tarball", "duplicate raven.toml").await;
        assert_empty_registry(&app, &before, what).await;
    }
}

#[tokio::test]
async fn metadata_disagreeing_with_raven_toml_is_refused() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    let bytes = package("widget", "1.0.0");

    let res = publish(&app, &token, "other-name", "1.0.0", bytes.clone()).await;
    expect_invalid(res, "name", "widget").await;
    assert_empty_registry(&app, &before, "name mismatch").await;

    let res = publish(&app, &token, "widget", "2.0.0", bytes.clone()).await;
    expect_invalid(res, "version", "1.0.0").await;
    assert_empty_registry(&app, &before, "version mismatch").await;

    // Metadata that is not JSON, or not a JSON object.
    for text in ["{not json", "\"a string\"", "[1, 2]"] {
        let res = publish_raw(&app, Some(&token), Meta::Part("metadata", text.to_owned()), Some(bytes.clone())).await;
        expect_invalid(res, "metadata", "").await;
        assert_empty_registry(&app, &before, text).await;
    }
}

#[tokio::test]
async fn gzip_bomb_is_refused() {
    let app = spawn().await;
    let token = register(&app, "mallory").await;
    let before = stored(&app).await;
    const UNPACKED: u64 = 300 * 1024 * 1024;
    let started = std::time::Instant::now();
    let bomb = gzip_bomb(&manifest("bomb", "1.0.0"), UNPACKED);
    eprintln!("built a {} byte bomb of {UNPACKED} bytes in {:?}", bomb.len(), started.elapsed());
    assert!(bomb.len() < 2 * 1024 * 1024, "the bomb must be small compressed: {}", bomb.len());

    let started = std::time::Instant::now();
    let res = publish(&app, &token, "bomb", "1.0.0", bomb).await;
    expect_invalid(res, "tarball", "unpacked size limit").await;
    eprintln!("refused in {:?}", started.elapsed());
    assert_empty_registry(&app, &before, "gzip bomb").await;
}

#[tokio::test]
async fn oversize_tarball_is_refused_with_413() {
    let app = spawn_with(|c| c.max_tarball_bytes = 64 * 1024).await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    let bytes = targz(&[file("raven.toml", manifest("big", "1.0.0")), file("blob.bin", noise(200 * 1024, 7))]);
    assert!(bytes.len() > 190 * 1024, "noise must not compress: {}", bytes.len());
    let res = publish(&app, &token, "big", "1.0.0", bytes).await;
    expect_error(res, 413, "payload_too_large").await;
    assert_empty_registry(&app, &before, "oversize tarball").await;

    // Just under the limit still publishes on the same server.
    let bytes = targz(&[file("raven.toml", manifest("small", "1.0.0")), file("blob.bin", noise(40 * 1024, 9))]);
    assert!(bytes.len() < 64 * 1024);
    let res = publish(&app, &token, "small", "1.0.0", bytes).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn not_gzip_is_refused() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    let plain_tar = tar_bytes(&[file("raven.toml", manifest("widget", "1.0.0"))]);
    for (what, bytes, needle) in [
        ("plain tar", plain_tar, "not gzip-compressed"),
        ("text", b"this is not an archive at all".to_vec(), "not gzip-compressed"),
        ("zip magic", b"PK\x03\x04rest-of-a-zip".to_vec(), "not gzip-compressed"),
        ("empty file", Vec::new(), "empty"),
        ("gzip of garbage", gzip(&[b'x'; 4096]), "corrupt"),
    ] {
        let res = publish(&app, &token, "widget", "1.0.0", bytes).await;
        expect_invalid(res, "tarball", needle).await;
        assert_empty_registry(&app, &before, what).await;
    }
}

#[tokio::test]
async fn git_path_and_unknown_dependencies_are_refused() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    // `base` exists, so a refusal below is about the source, not about existence.
    publish_package(&app, &token, "base", "1.0.0").await;
    let before = stored(&app).await;

    for (what, deps, needle) in [
        ("git dependency", "base = { git = \"https://example.com/base.git\" }", "git dependencies are not allowed"),
        (
            "git dependency with version",
            "base = { version = \"^1.0\", git = \"https://example.com/base.git\" }",
            "git dependencies are not allowed",
        ),
        ("path dependency", "base = { path = \"../base\" }", "path dependencies are not allowed"),
        ("unknown dependency", "no-such-package = \"^1.0\"", "no-such-package"),
    ] {
        let bytes = package_from_manifest(&manifest_with("app", "1.0.0", "", deps));
        let res = publish(&app, &token, "app", "1.0.0", bytes).await;
        expect_invalid(res, "dependencies", needle).await;
        assert_eq!(stored(&app).await, before, "{what} left something behind");
    }
}

#[tokio::test]
async fn invalid_names_and_versions_in_raven_toml_are_refused() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    for (what, name, version, field, needle) in [
        ("uppercase and underscore", "Bad_Name", "1.0.0", "name", "lowercase"),
        ("reserved", "std", "1.0.0", "name", "reserved"),
        ("reserved raven", "raven", "1.0.0", "name", "reserved"),
        ("two-part version", "widget", "1.0", "version", "SemVer"),
        ("leading v", "widget", "v1.0.0", "version", "leading 'v'"),
    ] {
        let bytes = package_from_manifest(&manifest(name, version));
        // The metadata agrees with raven.toml: the refusal must come from the rules themselves.
        let res = publish(&app, &token, name, version, bytes.clone()).await;
        expect_invalid(res, field, needle).await;
        assert_empty_registry(&app, &before, what).await;
        // Without metadata, raven.toml alone is refused the same way.
        let res = publish_raw(&app, Some(&token), Meta::None, Some(bytes)).await;
        expect_invalid(res, field, needle).await;
        assert_empty_registry(&app, &before, what).await;
    }
}

#[tokio::test]
async fn publish_requires_authentication() {
    let app = spawn().await;
    let before = stored(&app).await;
    let res = publish_raw(&app, None, meta("widget", "1.0.0"), Some(package("widget", "1.0.0"))).await;
    expect_error(res, 401, "authentication_required").await;
    assert_empty_registry(&app, &before, "anonymous publish").await;

    let res = publish_raw(&app, Some("not-a-token"), meta("widget", "1.0.0"), Some(package("widget", "1.0.0"))).await;
    expect_error(res, 401, "authentication_required").await;
    assert_empty_registry(&app, &before, "garbage token").await;
}

#[tokio::test]
async fn publish_requires_a_tarball_part() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    let res = publish_raw(&app, Some(&token), meta("widget", "1.0.0"), None).await;
    expect_invalid(res, "tarball", "tarball").await;
    assert_empty_registry(&app, &before, "no tarball part").await;
}

#[tokio::test]
async fn a_body_that_is_not_multipart_gets_the_v1_error_shape() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/packages/publish"))
        .bearer_auth(&token)
        .json(&json!({"name": "widget", "version": "1.0.0"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "invalid_request").await;
    assert_empty_registry(&app, &before, "JSON body").await;
}

// ---------------------------------------------------------------------------------------------
// 2b. Smuggling: an extractor must see exactly what the check saw (issue 15, item 3)
// ---------------------------------------------------------------------------------------------

/// Publishes each case as `evil-pkg` 1.0.0 and expects a 400 on the tarball naming `needle`, with
/// nothing stored.
async fn expect_refused_tarballs(app: &TestApp, token: &str, cases: Vec<(&str, Vec<u8>, &str)>) {
    let before = stored(app).await;
    for (what, bytes, needle) in cases {
        let res = publish(app, token, "evil-pkg", "1.0.0", bytes).await;
        let body = expect_invalid(res, "tarball", needle).await;
        eprintln!("{what}: {}", body["message"]);
        assert_empty_registry(app, &before, what).await;
    }
}

#[tokio::test]
async fn a_second_gzip_member_or_bytes_after_the_gzip_stream_are_refused() {
    let app = spawn().await;
    let token = register(&app, "mallory").await;
    let m = manifest("evil-pkg", "1.0.0");
    let valid = tar_bytes(&[file("raven.toml", &m), file("README.md", "# fine\n")]);
    let open = tar_bytes_unterminated(&[file("raven.toml", &m), file("README.md", "# fine\n")]);
    let hostile = tar_bytes(&[symlink("link", "/etc/passwd"), file("../../gx", "x")]);
    let gz = gzip(&valid);
    let mut cut_mid_header = gzip(&hostile[..700]);
    cut_mid_header.extend(gzip(&hostile[700..]));
    let with = |tail: &[u8]| [gz.as_slice(), tail].concat();
    expect_refused_tarballs(
        &app,
        &token,
        vec![
            // The reproduction of the issue: the first member ends where a header would start, and
            // GNU tar and Python carry on into the second, with a symlink and a `..` path.
            ("second member after an open tar", two_gzip_members(&open, &hostile), "a second gzip member"),
            ("second member after a complete tar", two_gzip_members(&valid, &hostile), "a second gzip member"),
            ("two valid members", two_gzip_members(&valid, &valid), "a second gzip member"),
            ("member split inside a header", [gzip(&open), cut_mid_header].concat(), "a second gzip member"),
            ("trailing garbage", with(b"garbage after the stream"), "data that is not gzip"),
            ("trailing zero padding", with(&[0; 1024]), "zero padding"),
            ("one trailing byte", with(&[0x1f]), "after the end of its gzip stream"),
            ("tar after the end-of-archive blocks", gzip(&[valid.clone(), hostile.clone()].concat()), "end-of-archive"),
        ],
    )
    .await;
    // The same archive alone publishes: the refusals are about the extra bytes.
    let res = publish(&app, &token, "evil-pkg", "1.0.0", gz).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn pax_global_headers_that_move_or_resize_entries_are_refused() {
    let app = spawn().await;
    let token = register(&app, "mallory").await;
    let m = manifest("evil-pkg", "1.0.0");
    let with_global = |records: &[(&str, &str)]| targz(&[pax_global(records), file("raven.toml", &m), file("a", "x")]);
    let comment = ("comment", "0123456789012345678901234567890123456789");
    expect_refused_tarballs(
        &app,
        &token,
        vec![
            ("global path", with_global(&[("path", "../../gx")]), "sets \"path\""),
            ("global path after a comment", with_global(&[comment, ("path", "../../gx")]), "sets \"path\""),
            ("global linkpath", with_global(&[("linkpath", "/etc/passwd")]), "sets \"linkpath\""),
            ("global size", with_global(&[("size", "0")]), "sets \"size\""),
            ("global sparse name", with_global(&[("GNU.sparse.name", "../x")]), "sets \"GNU.sparse.name\""),
            ("global hdrcharset", with_global(&[("hdrcharset", "BINARY")]), "sets \"hdrcharset\""),
            ("global xattr", with_global(&[("SCHILY.xattr.security.capability", "x")]), "sets \"SCHILY.xattr"),
            ("global key twice", with_global(&[comment, comment]), "given twice"),
            (
                "global header after a pax header",
                targz(&[file("raven.toml", &m), pax_local(&[("mtime", "1")]), pax_global(&[comment]), file("a", "x")]),
                "right after a pax extended header",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn extension_headers_are_applied_before_the_checks() {
    let app = spawn().await;
    let token = register(&app, "mallory").await;
    let m = manifest("evil-pkg", "1.0.0");
    let before_a = |header: Member| targz(&[file("raven.toml", &m), header, file("a", "x")]);
    let mut newline_in_value = pax_record("path", b"a\n../../evil");
    newline_in_value.extend(pax_record("mtime", b"1"));
    expect_refused_tarballs(
        &app,
        &token,
        vec![
            // The check must judge the path an extractor uses, not the header's name.
            ("pax path", before_a(pax_local(&[("path", "../evil")])), "'..'"),
            ("pax absolute path", before_a(pax_local(&[("path", "/etc/cron.d/x")])), "is absolute"),
            ("GNU long name", before_a(gnu_long_name("../evil")), "'..'"),
            ("GNU long name, absolute", before_a(gnu_long_name("/etc/evil")), "is absolute"),
            (
                "safe pax path, escaping header name",
                targz(&[file("raven.toml", &m), pax_local(&[("path", "safe")]), file("../evil", "x")]),
                "extractor that ignores extension headers",
            ),
            ("pax linkpath", before_a(pax_local(&[("linkpath", "/etc/passwd")])), "links are not allowed"),
            ("pax sparse name", before_a(pax_local(&[("GNU.sparse.name", "../x")])), "GNU sparse-file record"),
            (
                "pax security xattr",
                before_a(pax_local(&[("SCHILY.xattr.security.capability", "x")])),
                "extended attribute",
            ),
            ("pax unknown record", before_a(pax_local(&[("SCHILY.fflags", "schg")])), "\"SCHILY.fflags\""),
            ("pax binary names", before_a(pax_local(&[("hdrcharset", "BINARY")])), "hdrcharset"),
            ("pax size disagreeing", before_a(pax_local(&[("size", "0")])), "pax size of 0 bytes"),
            ("pax path twice", before_a(pax_local(&[("path", "b"), ("path", "../evil")])), "given twice"),
            ("pax value with a newline", before_a(pax_local_raw(newline_in_value)), "contains a newline"),
            ("pax record malformed", before_a(pax_local_raw(b"99 path=x\n".to_vec())), "malformed"),
            ("empty pax path", before_a(pax_local(&[("path", "")])), "empty `path`"),
            (
                "long name and pax path",
                targz(&[file("raven.toml", &m), gnu_long_name("b"), pax_local(&[("path", "c")]), file("a", "x")]),
                "both a GNU long name",
            ),
            (
                "two pax headers",
                targz(&[
                    file("raven.toml", &m),
                    pax_local(&[("path", "b")]),
                    pax_local(&[("path", "c")]),
                    file("a", ""),
                ]),
                "two pax extended headers",
            ),
            (
                "two long names",
                targz(&[file("raven.toml", &m), gnu_long_name("b"), gnu_long_name("c"), file("a", "")]),
                "two GNU long-name headers",
            ),
            (
                "pax header at the end",
                targz(&[file("raven.toml", &m), pax_local(&[("path", "b")])]),
                "describes no entry",
            ),
            // A symlink hidden behind an extension header is still a symlink.
            (
                "pax path on a symlink",
                targz(&[file("raven.toml", &m), pax_local(&[("path", "innocent")]), symlink("x", "/etc/passwd")]),
                "is a symlink",
            ),
            // The manifest is found, and clashes judged, under the effective path too.
            (
                "pax path duplicating raven.toml",
                targz(&[file("raven.toml", &m), pax_local(&[("path", "raven.toml")]), file("other.toml", "x")]),
                "duplicate raven.toml",
            ),
        ],
    )
    .await;

    // Allowed: a pax path that is safe, descriptive records, and a GNU long name.
    let long = format!("src/{}.rvn", "n".repeat(150));
    let bytes = targz(&[
        file("raven.toml", &m),
        pax_local(&[("path", "src/renamed.rvn"), ("mtime", "1700000000.5"), ("SCHILY.xattr.user.note", "hi")]),
        file("src/ustar-name.rvn", "fn a() {}\n"),
        gnu_long_name(&long),
        file(&long[..90], "fn b() {}\n"),
    ]);
    let res = publish(&app, &token, "evil-pkg", "1.0.0", bytes).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn names_that_collide_by_case_or_normalisation_are_refused() {
    let app = spawn().await;
    let token = register(&app, "mallory").await;
    let m = manifest("evil-pkg", "1.0.0");
    let (nfc, nfd) = ("caf\u{e9}.txt", "cafe\u{301}.txt");
    assert_ne!(nfc, nfd);
    let needle = "same name once case and Unicode normalisation are ignored";
    expect_refused_tarballs(
        &app,
        &token,
        vec![
            ("raven.toml and RAVEN.TOML", targz(&[file("raven.toml", &m), file("RAVEN.TOML", "[package]\n")]), needle),
            ("NFC and NFD", targz(&[file("raven.toml", &m), file(nfc, "a"), file(nfd, "b")]), needle),
            (
                "nested case",
                targz(&[file("raven.toml", &m), file("src/Lib.rvn", "a"), file("src/lib.rvn", "b")]),
                needle,
            ),
            ("directory case", targz(&[file("raven.toml", &m), dir("Src/"), file("src/lib.rvn", "b")]), needle),
            ("Windows trailing dot", targz(&[file("raven.toml", &m), file("raven.toml.", "x")]), needle),
            (
                "through a prefix directory",
                targz(&[dir("pkg/"), file("pkg/raven.toml", &m), file("pkg/Raven.toml", "x")]),
                needle,
            ),
            (
                "through a pax path",
                targz(&[file("raven.toml", &m), pax_local(&[("path", "RAVEN.toml")]), file("x", "x")]),
                needle,
            ),
            ("exact duplicate", targz(&[file("raven.toml", &m), file("a", "1"), file("a", "2")]), "duplicate path"),
        ],
    )
    .await;
}

#[tokio::test]
async fn git_archive_output_publishes() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    // Built like `git archive --format=tar.gz --prefix=gitpkg-1.0.0/ HEAD`: a pax global header
    // with the commit id as `comment`, and a pax `path` record for a path longer than 100 bytes.
    let long = format!("src/{}.rvn", "l".repeat(120));
    let m = manifest("gitpkg", "1.0.0");
    let bytes = git_archive(
        "gitpkg-1.0.0",
        "72b4e0cb93168d77f7bc9cffc9731ccab1cc7a58",
        &[("README.md", b"# hi\n"), ("raven.toml", m.as_bytes()), (&long, b"x\n"), ("src/lib.rvn", b"fn main() {}\n")],
    );
    let body = publish_ok(&app, &token, "gitpkg", "1.0.0", bytes.clone()).await;
    assert_eq!(body["checksum"], format!("sha256:{}", sha256_hex(&bytes)));

    // And the real thing, when git is installed.
    let Some(bytes) = real_git_archive(&manifest("gitpkg", "1.0.1")) else {
        eprintln!("skipping the real `git archive`: git is not installed");
        return;
    };
    publish_ok(&app, &token, "gitpkg", "1.0.1", bytes).await;
}

/// `git archive --format=tar.gz` of a one-commit repository holding `manifest`, or None without git.
fn real_git_archive(manifest: &str) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(dir.path())
            .output()
    };
    if git(&["init", "-q"]).map(|o| !o.status.success()).unwrap_or(true) {
        return None;
    }
    std::fs::write(dir.path().join("raven.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("README.md"), "# hi\n").unwrap();
    let long_dir = dir.path().join("src").join("d".repeat(110));
    std::fs::create_dir_all(&long_dir).unwrap();
    std::fs::write(long_dir.join("deep.rvn"), "fn main() {}\n").unwrap();
    assert!(git(&["add", "."]).unwrap().status.success());
    assert!(git(&["commit", "-qm", "init"]).unwrap().status.success());
    let out = git(&["archive", "--format=tar.gz", "--prefix=gitpkg/", "HEAD"]).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(out.stdout)
}

// ---------------------------------------------------------------------------------------------
// 2c. The multipart body: every part once (issue 15, item 8)
// ---------------------------------------------------------------------------------------------

fn tarball_part(bytes: Vec<u8>) -> Part {
    Part::bytes(bytes).file_name("package.tar.gz").mime_str("application/gzip").unwrap()
}

async fn publish_form_raw(app: &TestApp, token: &str, form: Form) -> reqwest::Response {
    app.client.post(app.url("/api/v1/packages/publish")).bearer_auth(token).multipart(form).send().await.unwrap()
}

#[tokio::test]
async fn repeated_multipart_parts_are_refused() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    let meta = |name: &str| json!({"name": name, "version": "1.0.0"}).to_string();
    let pkg = || tarball_part(package("widget", "1.0.0"));
    let cases: Vec<(&str, Form, &str, &str)> = vec![
        (
            "metadata twice",
            Form::new().text("metadata", meta("widget")).text("metadata", meta("widget")).part("tarball", pkg()),
            "metadata",
            "more than one `metadata` part",
        ),
        (
            "metadata after the tarball",
            Form::new().text("metadata", meta("widget")).part("tarball", pkg()).text("metadata", meta("widget")),
            "metadata",
            "more than one `metadata` part",
        ),
        (
            "manifest twice",
            Form::new().text("manifest", meta("widget")).text("manifest", meta("widget")).part("tarball", pkg()),
            "manifest",
            "more than one `manifest` part",
        ),
        (
            "metadata and manifest",
            Form::new().text("metadata", meta("widget")).text("manifest", meta("widget")).part("tarball", pkg()),
            "manifest",
            "both a `metadata` and a `manifest` part",
        ),
        (
            "manifest and metadata",
            Form::new().text("manifest", meta("widget")).part("tarball", pkg()).text("metadata", meta("widget")),
            "metadata",
            "both a `manifest` and a `metadata` part",
        ),
        (
            "tarball twice",
            Form::new().text("metadata", meta("widget")).part("tarball", pkg()).part("tarball", pkg()),
            "tarball",
            "more than one `tarball` part",
        ),
        (
            "unknown part twice",
            Form::new().text("note", "a").text("note", "b").part("tarball", pkg()),
            "note",
            "more than one `note` part",
        ),
    ];
    for (what, form, field, needle) in cases {
        let res = publish_form_raw(&app, &token, form).await;
        expect_invalid(res, field, needle).await;
        assert_empty_registry(&app, &before, what).await;
    }
    let mut many = Form::new();
    for i in 0..20 {
        many = many.text(format!("extra-{i}"), "x");
    }
    let res = publish_form_raw(&app, &token, many.part("tarball", pkg())).await;
    expect_invalid(res, "multipart", "more than 16 parts").await;
    assert_empty_registry(&app, &before, "20 parts").await;
}

/// The shape of the bypass: the budget was chosen from the first `metadata` (an existing package,
/// so the new-version budget), and a `metadata` after the tarball then named the new package.
#[tokio::test]
async fn a_later_metadata_part_cannot_move_a_publish_to_another_budget() {
    let app = spawn_with(|c| {
        c.rate_limits_enabled = true;
        c.rate_limit_publish_new_burst = 1;
    })
    .await;
    let token = register(&app, "alice").await;
    publish_package(&app, &token, "base", "1.0.0").await; // spends the one new package
    let before = stored(&app).await;
    let meta = |name: &str| json!({"name": name, "version": "1.0.0"}).to_string();
    let form = Form::new()
        .text("metadata", meta("base"))
        .part("tarball", tarball_part(package("second", "1.0.0")))
        .text("metadata", meta("second"));
    let res = publish_form_raw(&app, &token, form).await;
    expect_invalid(res, "metadata", "more than one `metadata` part").await;
    assert_eq!(stored(&app).await, before, "the refused publish left something behind");
    // The honest request for a second new package meets the exhausted budget.
    let res = publish(&app, &token, "second", "1.0.0", package("second", "1.0.0")).await;
    expect_error(res, 429, "rate_limit_exceeded").await;
}

// ---------------------------------------------------------------------------------------------
// 2d. Too large: a client that sends everything before reading gets the 413 (issue 15, item 9)
// ---------------------------------------------------------------------------------------------

/// The configured MAX_TARBALL_BYTES of the 413 tests; the route limit is this plus 256 KiB of
/// multipart overhead, and what is drained after an early answer at most this much more. Large
/// enough that an upload between the two does not fit the sockets' buffers (4 MiB to send at most
/// here): a server that stops reading leaves the client's write failing, as `raven pkg` saw.
const SMALL_LIMIT: u64 = 8 * 1024 * 1024;
const ROUTE_LIMIT: u64 = SMALL_LIMIT + 256 * 1024;

/// A multipart body of `parts`: (name, file name, content).
fn multipart_body(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, content) in parts {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").into_bytes());
        if let Some(f) = file_name {
            body.extend(format!("; filename=\"{f}\"\r\nContent-Type: application/gzip").into_bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend_from_slice(content);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").into_bytes());
    body
}

/// Writes the whole request (head, then the body with Content-Length or chunked), and only then
/// reads the answer to its end. Returns (status, headers, body) or the I/O error that ended it.
async fn send_all_then_read(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: &[u8],
    chunked: bool,
) -> std::io::Result<(u16, String, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let boundary_type = "multipart/form-data; boundary=XBOUNDARYX";
    let framing =
        if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {}", body.len()) };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Apollo-Require-Preflight: true\r\n\
         Content-Type: {boundary_type}\r\n{framing}\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    if chunked {
        for chunk in body.chunks(16 * 1024) {
            stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            stream.write_all(chunk).await?;
            stream.write_all(b"\r\n").await?;
        }
        stream.write_all(b"0\r\n\r\n").await?;
    } else {
        stream.write_all(body).await?;
    }
    stream.flush().await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        // One chunk is enough for these small JSON bodies.
        body.split_once("\r\n").map(|(_, rest)| rest.rsplit_once("\r\n0\r\n").map_or(rest, |(b, _)| b)).unwrap_or(body)
    } else {
        body
    };
    Ok((status, head.to_owned(), serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()))))
}

#[tokio::test]
async fn an_oversized_upload_sent_in_full_before_reading_gets_the_413() {
    let app = spawn_with(|c| c.max_tarball_bytes = SMALL_LIMIT).await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    // Over the route's limit, within what is drained after it.
    let tarball = noise((ROUTE_LIMIT + SMALL_LIMIT - 512 * 1024) as usize, 3);

    // Through reqwest (Content-Length, multipart), as the other tests stand in for `raven pkg`.
    let res = publish_at(&app.client, &app.base, &token, "big", "1.0.0", tarball.clone())
        .await
        .unwrap_or_else(|e| panic!("the upload failed before the answer arrived: {e:?}"));
    expect_error(res, 413, "payload_too_large").await;

    let publish_body = multipart_body(
        "XBOUNDARYX",
        &[
            ("metadata", None, json!({"name": "big", "version": "1.0.0"}).to_string().as_bytes()),
            ("tarball", Some("p.tar.gz"), &tarball),
        ],
    );
    let operations =
        json!({"query": "mutation($t: Upload!) { publish(tarball: $t) { version } }", "variables": {"t": null}});
    let graphql_body = multipart_body(
        "XBOUNDARYX",
        &[
            ("operations", None, operations.to_string().as_bytes()),
            ("map", None, json!({"0": ["variables.t"]}).to_string().as_bytes()),
            ("0", Some("p.tar.gz"), &tarball),
        ],
    );
    assert!(publish_body.len() as u64 > ROUTE_LIMIT && (publish_body.len() as u64) < ROUTE_LIMIT + SMALL_LIMIT);
    for chunked in [false, true] {
        let how = if chunked { "chunked" } else { "with Content-Length" };
        let (status, head, body) =
            send_all_then_read(app.addr, "/api/v1/packages/publish", &token, &publish_body, chunked)
                .await
                .unwrap_or_else(|e| panic!("publish {how}: the connection failed before the answer: {e}"));
        assert_eq!(status, 413, "publish {how}: {head}\n{body}");
        assert_eq!(body["error"], "payload_too_large", "publish {how}: {body}");
        assert!(head.to_ascii_lowercase().contains("connection: close"), "publish {how}: {head}");

        let (status, head, body) = send_all_then_read(app.addr, "/graphql", &token, &graphql_body, chunked)
            .await
            .unwrap_or_else(|e| panic!("graphql {how}: the connection failed before the answer: {e}"));
        assert_eq!(status, 413, "graphql {how}: {head}\n{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE", "graphql {how}: {body}");
    }
    assert_empty_registry(&app, &before, "oversized uploads").await;

    // A client that waits for "100 Continue" is not told to send a body that will be thrown away.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let head = format!(
            "POST /api/v1/packages/publish HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: multipart/form-data; boundary=XBOUNDARYX\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\n\r\n",
            app.addr,
            ROUTE_LIMIT + 1
        );
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(!answer.contains("100 Continue"), "{answer}");
    }

    // Refused before the body is read (no token): the answer still arrives.
    let small = multipart_body("XBOUNDARYX", &[("tarball", Some("p.tar.gz"), &noise(300 * 1024, 5))]);
    for chunked in [false, true] {
        let (status, _, body) =
            send_all_then_read(app.addr, "/api/v1/packages/publish", "not-a-token", &small, chunked)
                .await
                .expect("the 401 arrives");
        assert_eq!((status, body["error"].clone()), (401, json!("authentication_required")), "{body}");
    }
}

#[tokio::test]
async fn a_client_that_sends_past_the_drain_budget_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(|c| c.max_tarball_bytes = SMALL_LIMIT).await;
    let token = register(&app, "alice").await;
    let before = stored(&app).await;
    // A chunked upload that would go on for far more than the limit plus the drain budget (and
    // than the kernel's socket buffers can hold): the server must stop reading and close.
    const ENDLESS: usize = 256 * 1024 * 1024;
    let head = format!(
        "POST /api/v1/packages/publish HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=XBOUNDARYX\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let start = b"--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"tarball\"; filename=\"p.tar.gz\"\r\n\r\n";
    let chunk = noise(64 * 1024, 11);
    let mut sent = 0usize;
    let outcome: std::io::Result<()> = async {
        stream.write_all(format!("{:x}\r\n", start.len()).as_bytes()).await?;
        stream.write_all(start).await?;
        stream.write_all(b"\r\n").await?;
        while sent < ENDLESS {
            stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            stream.write_all(&chunk).await?;
            stream.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        Ok(())
    }
    .await;
    assert!(outcome.is_err(), "the server read {sent} bytes without closing the connection");
    assert!((sent as u64) < ROUTE_LIMIT + SMALL_LIMIT + 64 * 1024 * 1024, "sent {sent}");
    eprintln!("disconnected after {sent} bytes: {:?}", outcome.unwrap_err());
    assert_empty_registry(&app, &before, "endless upload").await;
}

// ---------------------------------------------------------------------------------------------
// 3. Version uniqueness
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_version_is_published_once_ignoring_build_metadata() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let first = package("widget", "1.0.0");
    let res = publish(&app, &token, "widget", "1.0.0", first.clone()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let before = stored(&app).await;

    // The very same upload again.
    let res = publish(&app, &token, "widget", "1.0.0", first.clone()).await;
    expect_error(res, 409, "conflict").await;
    assert_eq!(stored(&app).await, before);

    // Different contents, same version.
    let other = targz(&[file("raven.toml", manifest("widget", "1.0.0")), file("NEW", "changed")]);
    let res = publish(&app, &token, "widget", "1.0.0", other).await;
    expect_error(res, 409, "conflict").await;
    assert_eq!(stored(&app).await, before);

    // Build metadata does not make a new version.
    let res = publish(&app, &token, "widget", "1.0.0+build.5", package("widget", "1.0.0+build.5")).await;
    expect_error(res, 409, "conflict").await;
    assert_eq!(stored(&app).await, before);

    // The stored blob is still the first upload.
    let blob = app.state.storage.get_bytes(&Storage::key("widget", "1.0.0")).await.unwrap();
    assert!(blob.as_ref() == first.as_slice(), "a refused publish changed the stored blob");

    // A pre-release of the same numbers is a different version.
    publish_package(&app, &token, "widget", "1.0.1-beta.1").await;
}

// ---------------------------------------------------------------------------------------------
// 4. Authorisation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn strangers_cannot_publish_yank_or_change_owners() {
    let app = spawn().await;
    let alice = register(&app, "alice").await;
    let eve = register(&app, "eve").await;
    publish_package(&app, &alice, "widget", "1.0.0").await;
    let before = stored(&app).await;

    let res = publish(&app, &eve, "widget", "1.1.0", package("widget", "1.1.0")).await;
    expect_error(res, 403, "permission_denied").await;
    assert_eq!(stored(&app).await, before, "a refused publish stored something");

    let res = yank(&app, &eve, "widget", "1.0.0").await;
    expect_error(res, 403, "permission_denied").await;
    assert!(!version_row(&app, "1.0.0").await.yanked);

    let res = add_owner(&app, &eve, "widget", "eve", "owner").await;
    expect_error(res, 403, "permission_denied").await;
    let res = add_owner(&app, &eve, "widget", "eve", "maintainer").await;
    expect_error(res, 403, "permission_denied").await;
    let res = remove_owner(&app, &eve, "widget", "alice").await;
    expect_error(res, 403, "permission_denied").await;

    assert_eq!(stored(&app).await, before, "refused writes changed the database");
    let list = owners(&app, "widget").await;
    assert_eq!(list["owners"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["owners"][0]["username"], "alice");
}

#[tokio::test]
async fn token_scopes_limit_publishing() {
    let app = spawn().await;
    let alice = register(&app, "alice").await;
    publish_package(&app, &alice, "widget", "1.0.0").await;
    register(&app, "bob").await;
    let yank_only = scoped_token(&app, &alice, &["yank"]).await;
    let update_only = scoped_token(&app, &alice, &["publish-update"]).await;
    let new_only = scoped_token(&app, &alice, &["publish-new"]).await;
    let owners_token = scoped_token(&app, &alice, &["change-owners"]).await;
    let before = stored(&app).await;

    let res = publish(&app, &yank_only, "widget", "1.1.0", package("widget", "1.1.0")).await;
    expect_error(res, 403, "permission_denied").await;
    let res = publish(&app, &yank_only, "fresh", "1.0.0", package("fresh", "1.0.0")).await;
    expect_error(res, 403, "permission_denied").await;
    assert_eq!(stored(&app).await, before);

    let res = publish(&app, &update_only, "fresh", "1.0.0", package("fresh", "1.0.0")).await;
    let body = expect_error(res, 403, "permission_denied").await;
    assert!(body["message"].as_str().unwrap().contains("publish-new"), "{body}");
    assert_eq!(stored(&app).await, before);
    // ...but it may publish a new version of a package alice owns.
    let res = publish(&app, &update_only, "widget", "1.1.0", package("widget", "1.1.0")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // It cannot yank, and the yank token can.
    let res = yank(&app, &update_only, "widget", "1.1.0").await;
    expect_error(res, 403, "permission_denied").await;
    assert!(!version_row(&app, "1.1.0").await.yanked);
    let res = yank(&app, &yank_only, "widget", "1.1.0").await;
    assert_eq!(res.status(), 200);

    let res = publish(&app, &new_only, "widget", "1.2.0", package("widget", "1.2.0")).await;
    expect_error(res, 403, "permission_denied").await;
    let res = publish(&app, &new_only, "fresh", "1.0.0", package("fresh", "1.0.0")).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Owner changes need change-owners.
    let res = add_owner(&app, &yank_only, "widget", "bob", "maintainer").await;
    expect_error(res, 403, "permission_denied").await;
    let res = add_owner(&app, &owners_token, "widget", "bob", "maintainer").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn maintainers_publish_and_yank_but_do_not_manage_owners() {
    let app = spawn().await;
    let alice = register(&app, "alice").await;
    let bob = register(&app, "bob").await;
    register(&app, "carol").await;
    publish_package(&app, &alice, "widget", "1.0.0").await;

    let res = add_owner(&app, &alice, "widget", "bob", "maintainer").await;
    assert_eq!(res.status(), 200);
    let added: Value = res.json().await.unwrap();
    assert_eq!(added["username"], "bob");
    assert_eq!(added["role"], "maintainer");
    rfc3339(&added["added_at"]);

    let body = publish_ok(&app, &bob, "widget", "1.1.0", package("widget", "1.1.0")).await;
    assert_eq!(body["version"], "1.1.0");
    let v = version_row(&app, "1.1.0").await;
    assert!(v.published_by.is_some());

    let res = yank(&app, &bob, "widget", "1.0.0").await;
    assert_eq!(res.status(), 200);
    assert!(version_row(&app, "1.0.0").await.yanked);
    let res = unyank(&app, &bob, "widget", "1.0.0").await;
    assert_eq!(res.status(), 200);

    let before = stored(&app).await;
    let res = add_owner(&app, &bob, "widget", "carol", "maintainer").await;
    expect_error(res, 403, "permission_denied").await;
    let res = add_owner(&app, &bob, "widget", "bob", "owner").await;
    expect_error(res, 403, "permission_denied").await;
    let res = remove_owner(&app, &bob, "widget", "alice").await;
    expect_error(res, 403, "permission_denied").await;
    assert_eq!(stored(&app).await, before);

    let list = owners(&app, "widget").await;
    let roles: Vec<(String, String)> = list["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["username"].as_str().unwrap().to_owned(), o["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(roles, [("alice".to_owned(), "owner".to_owned()), ("bob".to_owned(), "maintainer".to_owned())]);

    // Being a maintainer somewhere does not stop bob from creating packages of his own.
    let res = publish(&app, &bob, "bobs-own", "0.1.0", package("bobs-own", "0.1.0")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

// ---------------------------------------------------------------------------------------------
// 5. Concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_of_one_version_let_exactly_one_win() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let bytes = package("racer", "1.0.0");
    let requests = (0..20).map(|_| publish(&app, &token, "racer", "1.0.0", bytes.clone()));
    let responses = futures::future::join_all(requests).await;
    let mut created = 0;
    let mut conflicts = 0;
    let mut other = Vec::new();
    for res in responses {
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        match status.as_u16() {
            201 => created += 1,
            409 if body["error"] == "conflict" => conflicts += 1,
            _ => other.push(format!("{status}: {body}")),
        }
    }
    assert!(other.is_empty(), "unexpected answers: {other:#?}");
    assert_eq!((created, conflicts), (1, 19));

    let s = stored(&app).await;
    assert_eq!((s.packages, s.versions, s.owners), (1, 1, 1), "{s:?}");
    assert_eq!(s.blobs, vec![Storage::key("racer", "1.0.0").to_string()]);
    let blob = app.state.storage.get_bytes(&Storage::key("racer", "1.0.0")).await.unwrap();
    assert!(blob.as_ref() == bytes.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_of_different_versions_all_land() {
    // Ten versions of one new package at once. Creating the package is a race: its loser may get
    // a conflict ("just created by another publish; retry"), but never a 5xx, and whatever lands,
    // every stored version has its blob and every blob its row.
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let versions: Vec<String> = (0..10).map(|i| format!("1.{i}.0")).collect();
    let requests = versions.iter().map(|v| publish(&app, &token, "multi", v, package("multi", v)));
    let responses = futures::future::join_all(requests).await;
    let mut created = Vec::new();
    let mut unexpected = Vec::new();
    for (v, res) in versions.iter().zip(responses) {
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        match status {
            201 => created.push(Storage::key("multi", v).to_string()),
            409 if body["error"] == "conflict" => {}
            _ => unexpected.push(format!("{v}: {status} {body}")),
        }
    }
    created.sort();
    let s = stored(&app).await;
    assert_eq!(s.blobs, created, "blobs must be exactly those of the 201s: {s:?}");
    assert_eq!(s.versions, created.len() as u64, "{s:?}");
    assert_eq!((s.packages, s.owners), (1, 1), "{s:?}");
    assert!(unexpected.is_empty(), "only 201 or 409 are acceptable answers: {unexpected:#?}");
    assert!(!created.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishes_of_different_packages_all_succeed() {
    // Nothing conflicts here: eight users' worth of unrelated packages at once must all land.
    let app = spawn().await;
    let token = register(&app, "alice").await;
    let names: Vec<String> = (0..8).map(|i| format!("pkg-{i}")).collect();
    let requests = names.iter().map(|n| publish(&app, &token, n, "1.0.0", package(n, "1.0.0")));
    let responses = futures::future::join_all(requests).await;
    let mut answers = Vec::new();
    for (n, res) in names.iter().zip(responses) {
        let status = res.status().as_u16();
        if status != 201 {
            answers.push(format!("{n}: {status} {}", res.text().await.unwrap()));
        }
    }
    let s = stored(&app).await;
    assert_eq!(s.versions as usize, s.blobs.len(), "rows and blobs disagree: {s:?}");
    assert!(answers.is_empty(), "every unrelated publish must succeed: {answers:#?}");
    assert_eq!((s.packages, s.versions, s.owners), (8, 8, 8), "{s:?}");
}

// ---------------------------------------------------------------------------------------------
// 6. Yank and unyank
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn yank_and_unyank_round_trip() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    publish_package(&app, &token, "widget", "1.0.0").await;
    publish_package(&app, &token, "widget", "1.1.0").await;

    let res = yank(&app, &token, "widget", "1.1.0").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let keys: std::collections::BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["name", "version", "yanked", "yanked_at"].into_iter().collect(), "{body}");
    assert_eq!(body["name"], "widget");
    assert_eq!(body["version"], "1.1.0");
    assert_eq!(body["yanked"], true);
    rfc3339(&body["yanked_at"]);
    let row = version_row(&app, "1.1.0").await;
    assert!(row.yanked && row.yanked_at.is_some());
    assert!(!version_row(&app, "1.0.0").await.yanked, "only the named version is yanked");

    // Yanking again is idempotent.
    let res = yank(&app, &token, "widget", "1.1.0").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["yanked"], true);

    let res = unyank(&app, &token, "widget", "1.1.0").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"name": "widget", "version": "1.1.0", "yanked": false}));
    let row = version_row(&app, "1.1.0").await;
    assert!(!row.yanked && row.yanked_at.is_none());

    // The blob and row stay throughout.
    let s = stored(&app).await;
    assert_eq!((s.versions, s.blobs.len()), (2, 2), "{s:?}");

    // A yanked version cannot be re-published: versions are immutable.
    let res = yank(&app, &token, "widget", "1.1.0").await;
    assert_eq!(res.status(), 200);
    let res = publish(&app, &token, "widget", "1.1.0", package("widget", "1.1.0")).await;
    expect_error(res, 409, "conflict").await;
}

#[tokio::test]
async fn yanking_unknown_versions_and_packages_is_404() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    publish_package(&app, &token, "widget", "1.0.0").await;
    let before = stored(&app).await;
    expect_error(yank(&app, &token, "widget", "9.9.9").await, 404, "not_found").await;
    // A malformed version names nothing that could exist: bad input, not "not found".
    let body = expect_error(yank(&app, &token, "widget", "not-a-version").await, 400, "invalid_request").await;
    assert_eq!(body["details"]["field"], "version", "{body}");
    expect_error(yank(&app, &token, "no-such-package", "1.0.0").await, 404, "not_found").await;
    expect_error(unyank(&app, &token, "widget", "9.9.9").await, 404, "not_found").await;
    assert_eq!(stored(&app).await, before);

    // Yank needs a token.
    let res = app.client.delete(app.url("/api/v1/packages/widget/1.0.0")).send().await.unwrap();
    expect_error(res, 401, "authentication_required").await;
    assert!(!version_row(&app, "1.0.0").await.yanked);
}

// ---------------------------------------------------------------------------------------------
// 7. Owners
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn owners_list_and_the_last_owner_rule() {
    let app = spawn().await;
    let alice = register(&app, "alice").await;
    let bob = register(&app, "bob").await;
    let carol = register(&app, "carol").await;
    publish_package(&app, &alice, "widget", "1.0.0").await;

    let list = owners(&app, "widget").await;
    assert_eq!(list.as_object().unwrap().len(), 1, "{list}");
    let entries = list["owners"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let keys: std::collections::BTreeSet<&str> = entries[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["role", "user_id", "username"].into_iter().collect(), "{list}");
    assert_eq!(entries[0]["username"], "alice");
    assert_eq!(entries[0]["role"], "owner");
    assert!(entries[0]["user_id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());

    let res = app.client.get(app.url("/api/v1/packages/nothing-here/owners")).send().await.unwrap();
    expect_error(res, 404, "not_found").await;

    // The last owner cannot leave.
    let before = stored(&app).await;
    let res = remove_owner(&app, &alice, "widget", "alice").await;
    expect_error(res, 409, "conflict").await;
    assert_eq!(stored(&app).await, before);
    assert_eq!(owners(&app, "widget").await["owners"][0]["username"], "alice");

    // Nor be demoted to maintainer while alone.
    let res = add_owner(&app, &alice, "widget", "alice", "maintainer").await;
    expect_error(res, 409, "conflict").await;
    assert_eq!(owners(&app, "widget").await["owners"][0]["role"], "owner");

    // Unknown role and unknown user.
    let res = add_owner(&app, &alice, "widget", "bob", "emperor").await;
    let body = expect_error(res, 400, "invalid_request").await;
    assert_eq!(body["details"]["field"], "role");
    let res = add_owner(&app, &alice, "widget", "nobody", "owner").await;
    expect_error(res, 404, "not_found").await;
    assert_eq!(stored(&app).await, before);

    // Non-owners cannot change owners.
    expect_error(add_owner(&app, &carol, "widget", "carol", "owner").await, 403, "permission_denied").await;
    expect_error(remove_owner(&app, &carol, "widget", "alice").await, 403, "permission_denied").await;
    assert_eq!(stored(&app).await, before);

    // With a second owner, the first may go.
    let res = add_owner(&app, &alice, "widget", "bob", "owner").await;
    assert_eq!(res.status(), 200);
    let added: Value = res.json().await.unwrap();
    let keys: std::collections::BTreeSet<&str> = added.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["added_at", "role", "username"].into_iter().collect(), "{added}");
    assert_eq!((added["username"].clone(), added["role"].clone()), (json!("bob"), json!("owner")));
    rfc3339(&added["added_at"]);
    assert_eq!(owners(&app, "widget").await["owners"].as_array().unwrap().len(), 2);

    let res = remove_owner(&app, &alice, "widget", "alice").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"username": "alice", "removed": true}));
    let list = owners(&app, "widget").await;
    let entries = list["owners"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!((entries[0]["username"].clone(), entries[0]["role"].clone()), (json!("bob"), json!("owner")));

    // Alice has no rights left; bob has them all.
    let res = publish(&app, &alice, "widget", "1.1.0", package("widget", "1.1.0")).await;
    expect_error(res, 403, "permission_denied").await;
    publish_package(&app, &bob, "widget", "1.1.0").await;
    expect_error(remove_owner(&app, &bob, "widget", "bob").await, 409, "conflict").await;
}

/// Issue 15, item 5: two owners removing each other (or each demoting or removing themselves) at the
/// same moment. Each check saw two owners and each write went ahead, leaving packages without an
/// owner (on PostgreSQL, under READ COMMITTED, in about half the trials). Every package keeps
/// exactly one owner, one request of each pair wins, and the other is refused (403: no longer an
/// owner, or 409: the last owner), never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_owner_changes_never_leave_a_package_without_an_owner() {
    #[derive(Clone, Copy, Debug)]
    enum Race {
        /// alice removes bob while bob removes alice.
        RemoveEachOther,
        /// Both demote themselves to maintainer.
        DemoteThemselves,
        /// Both remove themselves.
        RemoveThemselves,
    }
    const TRIALS: usize = 20;
    let app = spawn().await;
    let alice = register(&app, "alice").await;
    let bob = register(&app, "bob").await;
    let mut trials = Vec::new();
    for i in 0..TRIALS {
        for race in [Race::RemoveEachOther, Race::DemoteThemselves, Race::RemoveThemselves] {
            if i >= TRIALS / 2 && !matches!(race, Race::RemoveEachOther) {
                continue;
            }
            let name = format!("race-{i}-{}", trials.len());
            publish_package(&app, &alice, &name, "1.0.0").await;
            assert_eq!(add_owner(&app, &alice, &name, "bob", "owner").await.status(), 200);
            trials.push((name, race));
        }
    }
    // Every pair at once, all pairs at once.
    let attempt = |token: &str, name: &str, race: Race, me: &str, other: &str| {
        let (token, name, me, other) = (token.to_owned(), name.to_owned(), me.to_owned(), other.to_owned());
        let app = &app;
        async move {
            match race {
                Race::RemoveEachOther => remove_owner(app, &token, &name, &other).await,
                Race::DemoteThemselves => add_owner(app, &token, &name, &me, "maintainer").await,
                Race::RemoveThemselves => remove_owner(app, &token, &name, &me).await,
            }
            .status()
        }
    };
    let pairs = trials.iter().map(|(name, race)| {
        let a = attempt(&alice, name, *race, "alice", "bob");
        let b = attempt(&bob, name, *race, "bob", "alice");
        async move { (name.clone(), *race, futures::join!(a, b)) }
    });
    let outcomes = futures::future::join_all(pairs).await;
    let mut broken = Vec::new();
    for (name, race, (a, b)) in outcomes {
        let list = owners(&app, &name).await;
        let full = list["owners"].as_array().unwrap().iter().filter(|o| o["role"] == "owner").count();
        let mut answers = [a.as_u16(), b.as_u16()];
        answers.sort();
        // One wins; the other is no longer an owner (403) or would leave none (409).
        if full != 1 || !(answers == [200, 403] || answers == [200, 409]) {
            broken.push(format!("{name} ({race:?}): {full} owners left, answers {answers:?}: {list}"));
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {} races broke the one-owner rule:\n{}",
        broken.len(),
        trials.len(),
        broken.join("\n")
    );
}

/// Issue 15, item 5 (the same shape elsewhere): a package shows the metadata of its latest
/// version, which yank, unyank and publish each recompute and write back. Two of them on one
/// package at once each computed it without the other's change, on PostgreSQL, and the last to
/// commit won. With the package row locked first, the package always ends showing its real latest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_yanks_and_publishes_keep_the_latest_metadata() {
    const TRIALS: usize = 10;
    let app = spawn().await;
    let alice = register(&app, "alice").await;
    let described = |name: &str, version: &str| {
        package_from_manifest(&manifest_with(name, version, &format!("description = \"v{version}\""), ""))
    };
    for i in 0..TRIALS {
        for version in ["1.0.0", "2.0.0", "3.0.0"] {
            let name = format!("yanked-{i}");
            publish_ok(&app, &alice, &name, version, described(&name, version)).await;
        }
        let name = format!("bumped-{i}");
        publish_ok(&app, &alice, &name, "1.0.0", described(&name, "1.0.0")).await;
    }
    let races = (0..TRIALS).map(|i| {
        let (app, alice) = (&app, &alice);
        let (yanked, bumped) = (format!("yanked-{i}"), format!("bumped-{i}"));
        async move {
            let (a, b, c, d) = futures::join!(
                yank(app, alice, &yanked, "3.0.0"),
                yank(app, alice, &yanked, "2.0.0"),
                publish(app, alice, &bumped, "1.2.0", described(&bumped, "1.2.0")),
                publish(app, alice, &bumped, "1.1.0", described(&bumped, "1.1.0")),
            );
            [a.status().as_u16(), b.status().as_u16(), c.status().as_u16(), d.status().as_u16()]
        }
    });
    let answers = futures::future::join_all(races).await;
    assert!(answers.iter().all(|a| *a == [200, 200, 201, 201]), "{answers:?}");
    let rows = entity::packages::Entity::find().all(&app.state.db).await.unwrap();
    let mut wrong = Vec::new();
    for p in rows {
        let expected = if p.name.starts_with("yanked-") { "v1.0.0" } else { "v1.2.0" };
        if p.description.as_deref() != Some(expected) {
            wrong.push(format!("{} shows {:?}, not {expected}", p.name, p.description));
        }
    }
    assert!(wrong.is_empty(), "{} of {} packages show stale metadata:\n{}", wrong.len(), 2 * TRIALS, wrong.join("\n"));
}

/// Yanks lock the package row and then write a version row; the download flush writes version and
/// package rows of many packages in one transaction. Unless both take rows in the same order
/// (package, then its versions), a yank and a flush can each hold what the other waits for, and
/// PostgreSQL aborts one of them as a deadlock. Yanks and flushes on one package, at once, many
/// times: every yank answers 200 and every flush succeeds with exact counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn yanks_racing_download_flushes_never_deadlock() {
    const ROUNDS: usize = 30;
    const VERSIONS: [&str; 4] = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"];
    let app = spawn().await;
    let alice = register(&app, "alice").await;
    for v in VERSIONS {
        publish_package(&app, &alice, "busy", v).await;
    }
    for round in 0..ROUNDS {
        for v in VERSIONS {
            app.state.downloads.record("busy", v);
        }
        let yanked = VERSIONS[round % VERSIONS.len()];
        let (a, b, flushed) = futures::join!(
            yank(&app, &alice, "busy", yanked),
            unyank(&app, &alice, "busy", VERSIONS[(round + 1) % VERSIONS.len()]),
            app.state.downloads.flush(&app.state.db, &app.state.generation),
        );
        assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK), "round {round}");
        flushed.unwrap_or_else(|e| panic!("round {round}: the flush failed: {e}"));
    }
    let pkg = entity::packages::Entity::find().all(&app.state.db).await.unwrap();
    assert_eq!(pkg[0].downloads, (ROUNDS * VERSIONS.len()) as i64);
}

// ---------------------------------------------------------------------------------------------
// 8. Dependencies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn dependencies_on_registry_packages_are_accepted() {
    let app = spawn().await;
    let token = register(&app, "alice").await;
    publish_package(&app, &token, "base", "1.0.0").await;

    let text = manifest_with("app", "0.1.0", "", "base = \"^1.0\"\nbase-ext = { version = \"1\" }");
    // base-ext does not exist yet: refused, and nothing is stored.
    let before = stored(&app).await;
    let res = publish(&app, &token, "app", "0.1.0", package_from_manifest(&text)).await;
    expect_invalid(res, "dependencies", "base-ext").await;
    assert_eq!(stored(&app).await, before);
    publish_package(&app, &token, "base-ext", "1.0.0").await;

    let res = publish(&app, &token, "app", "0.1.0", package_from_manifest(&text)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let deps = entity::dependencies::Entity::find().all(&app.state.db).await.unwrap();
    let mut got: Vec<(String, String, String)> = deps.into_iter().map(|d| (d.name, d.req, d.kind)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("base".to_owned(), "^1.0".to_owned(), "normal".to_owned()),
            ("base-ext".to_owned(), "^1".to_owned(), "normal".to_owned()),
        ]
    );
    let s = stored(&app).await;
    assert_eq!((s.packages, s.versions, s.blobs.len()), (3, 3, 3), "{s:?}");
}
