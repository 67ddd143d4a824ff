//! Dry-run publishes (`validatePackage`, REST `?dry_run=true`): every problem at once, nothing
//! stored; and the problems beside the unchanged error of a real publish that fails.
use crate::testkit as common;

use common::api::{expect_error, meta, publish, publish_form, publish_package, register};
use common::tarballs::{file, manifest_with, package, targz};
use common::TestApp;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

/// Rows of every table a publish writes, the blob keys, and the catalog generation.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    packages: u64,
    versions: u64,
    dependencies: u64,
    owners: u64,
    audit: u64,
    blobs: Vec<String>,
    generation: i64,
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
        audit: entity::audit_log::Entity::find().count(db).await.unwrap(),
        blobs,
        generation: raven_registry::service::generation::current(db).await.unwrap(),
    }
}

/// REST dry run: 200 and the `{ok, problems}` body.
async fn rest_dry_run(app: &TestApp, token: &str, name: &str, version: &str, tarball: Vec<u8>) -> Value {
    let res = app
        .client
        .post(app.url("/api/v1/packages/publish?dry_run=true"))
        .bearer_auth(token)
        .multipart(publish_form(meta(name, version), Some(tarball)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// GraphQL `validatePackage` through a multipart request; returns the whole response.
async fn gql_validate(app: &TestApp, token: Option<&str>, tarball: Vec<u8>) -> Value {
    let operations = json!({
        "query": "mutation($t: Upload!) { validatePackage(tarball: $t) { ok problems { code field path message } } }",
        "variables": {"t": null}
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.t"]}).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(tarball).file_name("pkg.tar.gz").mime_str("application/gzip").unwrap(),
        );
    let mut req = app.client.post(app.url("/graphql")).multipart(form);
    req = match token {
        Some(token) => req.bearer_auth(token),
        // Passes the cross-site request protection, so the refusal is about the missing viewer.
        None => req.header("Apollo-Require-Preflight", "true"),
    };
    req.send().await.unwrap().json().await.unwrap()
}

fn codes(problems: &Value) -> Vec<String> {
    problems.as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap().to_owned()).collect()
}

/// raven.toml with a bad keyword and an unknown dependency, plus an entry escaping the archive.
fn many_problems(name: &str, version: &str) -> Vec<u8> {
    let text = manifest_with(name, version, "keywords = [\"not a keyword!\"]", "no-such-dep = \"1\"");
    let mut evil = tar::Header::new_gnu();
    // `set_path` refuses `..`; the raw name field does not.
    evil.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../evil.txt\0");
    evil.set_size(4);
    evil.set_entry_type(tar::EntryType::Regular);
    evil.set_mode(0o644);
    evil.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&evil, &b"evil"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append_data(&mut h, "raven.toml", text.as_bytes()).unwrap();
    common::tarballs::gzip(&builder.into_inner().unwrap())
}

#[tokio::test]
async fn a_dry_run_lists_every_problem_and_stores_nothing() {
    let app = common::spawn().await;
    let token = register(&app, "dora").await;
    publish_package(&app, &token, "taken-pkg", "1.0.0").await;
    let before = stored(&app).await;

    let bytes = many_problems("taken-pkg", "1.0.0");
    // REST, with metadata that disagrees with raven.toml on the version.
    let body = rest_dry_run(&app, &token, "taken-pkg", "2.0.0", bytes.clone()).await;
    assert_eq!(body["ok"], false, "{body}");
    let got = codes(&body["problems"]);
    for want in
        ["TARBALL_PATH_TRAVERSAL", "METADATA_INVALID", "MANIFEST_MISMATCH", "VERSION_TAKEN", "DEPENDENCY_UNKNOWN"]
    {
        assert!(got.iter().any(|c| c == want), "{want} missing from {body}");
    }
    let traversal =
        body["problems"].as_array().unwrap().iter().find(|p| p["code"] == "TARBALL_PATH_TRAVERSAL").unwrap();
    assert_eq!(traversal["path"], "../evil.txt", "{body}");
    let unknown = body["problems"].as_array().unwrap().iter().find(|p| p["code"] == "DEPENDENCY_UNKNOWN").unwrap();
    assert_eq!(unknown["field"], "dependencies");
    assert!(unknown["message"].as_str().unwrap().contains("no-such-dep"), "{body}");
    assert_eq!(stored(&app).await, before, "a REST dry run stored something");

    // GraphQL: the same problems (no metadata there, so no mismatch).
    let res = gql_validate(&app, Some(&token), bytes).await;
    assert_eq!(res["errors"], Value::Null, "{res}");
    let v = &res["data"]["validatePackage"];
    assert_eq!(v["ok"], false);
    assert_eq!(
        codes(&v["problems"]),
        ["TARBALL_PATH_TRAVERSAL", "METADATA_INVALID", "VERSION_TAKEN", "DEPENDENCY_UNKNOWN"],
        "{res}"
    );
    assert_eq!(stored(&app).await, before, "a GraphQL dry run stored something");
}

#[tokio::test]
async fn a_clean_dry_run_is_ok_stores_nothing_and_the_publish_then_works() {
    let app = common::spawn().await;
    let token = register(&app, "cleo").await;
    let before = stored(&app).await;
    let bytes = package("clean-pkg", "0.1.0");

    let body = rest_dry_run(&app, &token, "clean-pkg", "0.1.0", bytes.clone()).await;
    assert_eq!(body, json!({"ok": true, "problems": []}));
    let res = gql_validate(&app, Some(&token), bytes.clone()).await;
    assert_eq!(res["data"]["validatePackage"], json!({"ok": true, "problems": []}), "{res}");
    assert_eq!(stored(&app).await, before, "a clean dry run stored something");

    let res = publish(&app, &token, "clean-pkg", "0.1.0", bytes.clone()).await;
    assert_eq!(res.status(), 201);
    // And now the same upload is taken.
    let body = rest_dry_run(&app, &token, "clean-pkg", "0.1.0", bytes).await;
    assert_eq!(codes(&body["problems"]), ["VERSION_TAKEN"], "{body}");
}

#[tokio::test]
async fn a_dry_run_reports_the_permission_problem_of_a_non_owner() {
    let app = common::spawn().await;
    let owner = register(&app, "olga").await;
    let other = register(&app, "otto").await;
    publish_package(&app, &owner, "owned-pkg", "1.0.0").await;
    let before = stored(&app).await;

    let body = rest_dry_run(&app, &other, "owned-pkg", "1.1.0", package("owned-pkg", "1.1.0")).await;
    assert_eq!(body["ok"], false);
    assert_eq!(codes(&body["problems"]), ["PERMISSION_DENIED"], "{body}");
    assert!(body["problems"][0]["message"].as_str().unwrap().contains("owned-pkg"), "{body}");
    // The owner's dry run of the same upload is clean.
    let body = rest_dry_run(&app, &owner, "owned-pkg", "1.1.0", package("owned-pkg", "1.1.0")).await;
    assert_eq!(body, json!({"ok": true, "problems": []}));
    assert_eq!(stored(&app).await, before);

    // Signed out, validatePackage is refused like any mutation that needs a viewer.
    let res = gql_validate(&app, None, package("owned-pkg", "1.1.0")).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{res}");
}

#[tokio::test]
async fn a_failed_publish_keeps_its_code_and_carries_every_problem() {
    let app = common::spawn().await;
    let token = register(&app, "pia").await;
    publish_package(&app, &token, "pub-pkg", "1.0.0").await;
    let before = stored(&app).await;

    // REST: taken version and an unknown dependency: 409 conflict as before, both problems beside.
    let text = manifest_with("pub-pkg", "1.0.0", "", "ghost = \"1\"");
    let bytes = targz(&[file("raven.toml", &text)]);
    let res = publish(&app, &token, "pub-pkg", "1.0.0", bytes.clone()).await;
    let body = expect_error(res, 409, "conflict").await;
    assert_eq!(codes(&body["details"]["problems"]), ["VERSION_TAKEN", "DEPENDENCY_UNKNOWN"], "{body}");

    // A first problem that is bad input keeps invalid_request and its field.
    let text = manifest_with("pub-pkg", "2.0.0", "keywords = [\"bad keyword\"]", "ghost = \"1\"");
    let res = publish(&app, &token, "pub-pkg", "2.0.0", targz(&[file("raven.toml", &text)])).await;
    let body = expect_error(res, 400, "invalid_request").await;
    assert_eq!(body["details"]["field"], "keywords", "{body}");
    assert_eq!(codes(&body["details"]["problems"]), ["METADATA_INVALID", "DEPENDENCY_UNKNOWN"], "{body}");

    // GraphQL: extensions.code as before, extensions.problems beside it.
    let operations = json!({
        "query": "mutation($t: Upload!) { publish(tarball: $t) { version } }",
        "variables": {"t": null}
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.t"]}).to_string())
        .part("0", reqwest::multipart::Part::bytes(bytes).file_name("p.tar.gz"));
    let res: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ext = &res["errors"][0]["extensions"];
    assert_eq!(ext["code"], "CONFLICT", "{res}");
    assert_eq!(codes(&ext["problems"]), ["VERSION_TAKEN", "DEPENDENCY_UNKNOWN"], "{res}");
    assert_eq!(stored(&app).await, before, "a refused publish stored something");

    // A clean publish has no problems to carry, and a new name is still checked as before.
    let res = publish(&app, &token, "std", "1.0.0", package("std", "1.0.0")).await;
    let body = expect_error(res, 400, "invalid_request").await;
    assert_eq!(body["details"]["field"], "name", "{body}");
    assert_eq!(codes(&body["details"]["problems"]), ["NAME_RESERVED"], "{body}");
    assert_eq!(stored(&app).await, before, "a refused publish stored something");
}

/// A `dry_run` that is not `true` or `false` is a v1 JSON error naming it, and nothing is stored.
#[tokio::test]
async fn a_malformed_dry_run_flag_is_a_json_error_and_stores_nothing() {
    let app = common::spawn().await;
    let token = register(&app, "flagger").await;
    let before = stored(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/packages/publish?dry_run=perhaps"))
        .bearer_auth(&token)
        .multipart(publish_form(meta("flag-pkg", "1.0.0"), Some(package("flag-pkg", "1.0.0"))))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 400, "invalid_request").await;
    assert!(body["message"].as_str().unwrap().contains("dry_run"), "{body}");
    assert!(stored(&app).await == before, "nothing stored");
}
