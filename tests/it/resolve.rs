//! `resolve` (GraphQL) and `POST /api/v1/resolve`: dependency resolution over packages published
//! through the real publish path, on the test's own database.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::testkit as common;
use common::api::{publish_ok, register, yank_ok};
use common::tarballs::package_from_manifest;
use common::TestApp;

const RESOLVE: &str = "query($deps: [DependencyInput!]!, $dev: Boolean! = false) { \
    resolve(dependencies: $deps, includeDev: $dev) { \
      packages { name version sha256 downloadUrl dependencies { name req version } } \
      conflicts { package message requirements { req requiredBy } } } }";

/// Publishes NAME VERSION with these normal and dev dependencies; returns its sha256.
async fn publish(
    app: &TestApp,
    token: &str,
    name: &str,
    version: &str,
    deps: &[(&str, &str)],
    dev: &[(&str, &str)],
) -> String {
    let mut m =
        format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nauthors = [\"Ada <ada@example.com>\"]\n");
    for (table, list) in [("dependencies", deps), ("dev-dependencies", dev)] {
        if !list.is_empty() {
            m.push_str(&format!("\n[{table}]\n"));
            for (n, r) in list {
                m.push_str(&format!("{n} = \"{r}\"\n"));
            }
        }
    }
    let body = publish_ok(app, token, name, version, package_from_manifest(&m)).await;
    body["checksum"].as_str().unwrap().trim_start_matches("sha256:").to_owned()
}

fn deps(list: &[(&str, &str)]) -> Value {
    Value::Array(list.iter().map(|(n, r)| json!({ "name": n, "req": r })).collect())
}

/// The GraphQL `resolve` answer; asserts there is no error.
async fn resolve(app: &TestApp, deps: Value, include_dev: bool) -> Value {
    let res = app.gql(RESOLVE, json!({ "deps": deps, "dev": include_dev }), None).await;
    assert!(res.get("errors").is_none(), "{res}");
    res["data"]["resolve"].clone()
}

/// `name version` of each chosen package, in the answer's order.
fn chosen(r: &Value) -> Vec<String> {
    r["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no packages: {r}"))
        .iter()
        .map(|p| format!("{} {}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap()))
        .collect()
}

fn package<'a>(r: &'a Value, name: &str, version: &str) -> &'a Value {
    r["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name && p["version"] == version)
        .unwrap_or_else(|| panic!("{name} {version} not chosen: {r}"))
}

#[tokio::test]
async fn a_chain_resolves_with_checksums_urls_and_the_version_of_each_edge() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    let c_sum = publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "b", "1.0.0", &[("c", "^1")], &[]).await;
    publish(&app, &t, "a", "1.0.0", &[("b", "1.0")], &[]).await;
    let r = resolve(&app, deps(&[("a", "^1")]), false).await;
    assert_eq!(chosen(&r), ["a 1.0.0", "b 1.0.0", "c 1.0.0"]);
    assert_eq!(r["conflicts"], json!([]));
    let a = package(&r, "a", "1.0.0");
    assert_eq!(a["dependencies"], json!([{ "name": "b", "req": "^1.0", "version": "1.0.0" }]));
    let c = package(&r, "c", "1.0.0");
    assert_eq!(c["sha256"], c_sum.as_str());
    assert_eq!(c["dependencies"], json!([]));
    // The download URL serves the tarball whose checksum is given.
    let url = c["downloadUrl"].as_str().unwrap();
    let res = app.client.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    use sha2::Digest as _;
    assert_eq!(hex::encode(sha2::Sha256::digest(res.bytes().await.unwrap())), c_sum);
}

#[tokio::test]
async fn the_highest_compatible_release_wins() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    for v in ["1.0.0", "1.2.0", "1.10.0", "2.0.0", "2.1.0-beta.1"] {
        publish(&app, &t, "c", v, &[], &[]).await;
    }
    assert_eq!(chosen(&resolve(&app, deps(&[("c", "^1")]), false).await), ["c 1.10.0"], "1.10 > 1.2 by semver");
    assert_eq!(chosen(&resolve(&app, deps(&[("c", "~1.2")]), false).await), ["c 1.2.0"]);
    assert_eq!(chosen(&resolve(&app, deps(&[("c", "*")]), false).await), ["c 2.0.0"], "never a prerelease unasked");
    assert_eq!(chosen(&resolve(&app, deps(&[("c", ">=1.1, <2")]), false).await), ["c 1.10.0"]);
}

#[tokio::test]
async fn yanked_versions_are_chosen_only_when_the_root_pins_them_exactly() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "c", "1.0.1", &[], &[]).await;
    publish(&app, &t, "a", "1.0.0", &[("c", "=1.0.1")], &[]).await;
    yank_ok(&app, &t, "c", "1.0.1").await;
    assert_eq!(chosen(&resolve(&app, deps(&[("c", "^1")]), false).await), ["c 1.0.0"]);
    assert_eq!(chosen(&resolve(&app, deps(&[("c", "=1.0.1")]), false).await), ["c 1.0.1"]);
    // The root's exact pin lets a dependency that pins it too be resolved...
    assert_eq!(chosen(&resolve(&app, deps(&[("a", "^1"), ("c", "=1.0.1")]), false).await), ["a 1.0.0", "c 1.0.1"]);
    // ...but a dependency's own pin of a yanked version is not enough.
    let r = resolve(&app, deps(&[("a", "^1")]), false).await;
    assert_eq!(r["packages"], json!([]), "{r}");
    let c = r["conflicts"].as_array().unwrap().iter().find(|c| c["package"] == "c").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(c["requirements"], json!([{ "req": "=1.0.1", "requiredBy": "a@1.0.0" }]));
    let msg = c["message"].as_str().unwrap();
    assert!(msg.contains("1.0.1 (yanked)"), "{msg}");
}

#[tokio::test]
async fn prereleases_are_chosen_only_when_a_requirement_names_one() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "c", "1.1.0-beta.1", &[], &[]).await;
    publish(&app, &t, "d", "2.0.0-rc.1", &[], &[]).await;
    assert_eq!(chosen(&resolve(&app, deps(&[("c", "^1")]), false).await), ["c 1.0.0"]);
    assert_eq!(chosen(&resolve(&app, deps(&[("c", "^1.1.0-beta.1")]), false).await), ["c 1.1.0-beta.1"]);
    let r = resolve(&app, deps(&[("d", "^2")]), false).await;
    assert_eq!(r["packages"], json!([]));
    assert_eq!(r["conflicts"][0]["package"], "d", "{r}");
    assert_eq!(r["conflicts"][0]["requirements"], json!([{ "req": "^2", "requiredBy": "root" }]));
    assert_eq!(chosen(&resolve(&app, deps(&[("d", "=2.0.0-rc.1")]), false).await), ["d 2.0.0-rc.1"]);
}

#[tokio::test]
async fn two_compatible_ranges_of_one_package_coexist_like_cargo() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        publish(&app, &t, "c", v, &[], &[]).await;
    }
    for v in ["0.1.0", "0.1.5", "0.2.0"] {
        publish(&app, &t, "z", v, &[], &[]).await;
    }
    publish(&app, &t, "a", "1.0.0", &[("c", "^1"), ("z", "^0.1")], &[]).await;
    publish(&app, &t, "b", "1.0.0", &[("c", "^2"), ("z", "^0.2")], &[]).await;
    let r = resolve(&app, deps(&[("a", "^1"), ("b", "^1")]), false).await;
    assert_eq!(chosen(&r), ["a 1.0.0", "b 1.0.0", "c 1.1.0", "c 2.0.0", "z 0.1.5", "z 0.2.0"]);
    let a = package(&r, "a", "1.0.0");
    assert_eq!(
        a["dependencies"],
        json!([{ "name": "c", "req": "^1", "version": "1.1.0" }, { "name": "z", "req": "^0.1", "version": "0.1.5" }])
    );
    let b = package(&r, "b", "1.0.0");
    assert_eq!(b["dependencies"][0], json!({ "name": "c", "req": "^2", "version": "2.0.0" }));
}

#[tokio::test]
async fn colliding_requirements_are_conflicts_that_name_the_package_and_both_requirers() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "c", "1.1.0", &[], &[]).await;
    publish(&app, &t, "a", "1.0.0", &[("c", "~1.0")], &[]).await;
    publish(&app, &t, "b", "1.0.0", &[("c", "^1.1")], &[]).await;
    let r = resolve(&app, deps(&[("a", "^1"), ("b", "^1")]), false).await;
    assert_eq!(r["packages"], json!([]), "{r}");
    let conflicts = r["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{r}");
    let c = &conflicts[0];
    assert_eq!(c["package"], "c");
    let mut reqs = c["requirements"].as_array().unwrap().clone();
    reqs.sort_by_key(|q| q["requiredBy"].as_str().unwrap().to_owned());
    assert_eq!(
        reqs,
        [json!({ "req": "~1.0", "requiredBy": "a@1.0.0" }), json!({ "req": "^1.1", "requiredBy": "b@1.0.0" })]
    );
    let msg = c["message"].as_str().unwrap();
    assert!(msg.starts_with("c: no version satisfies all of"), "{msg}");
    assert!(msg.contains("Because"), "the solver's derivation follows: {msg}");
}

#[tokio::test]
async fn the_solver_backtracks_to_an_older_version_to_find_a_solution() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "c", "1.1.0", &[], &[]).await;
    // The newest a needs c ^1.1, which b's ~1.0 excludes: a 1.0.0 is the way out.
    publish(&app, &t, "a", "1.0.0", &[("c", "^1.0")], &[]).await;
    publish(&app, &t, "a", "1.1.0", &[("c", "^1.1")], &[]).await;
    publish(&app, &t, "b", "1.0.0", &[("c", "~1.0")], &[]).await;
    let r = resolve(&app, deps(&[("a", "^1"), ("b", "^1")]), false).await;
    assert_eq!(chosen(&r), ["a 1.0.0", "b 1.0.0", "c 1.0.0"], "{r}");
    // Without b, the newest a stands.
    assert_eq!(chosen(&resolve(&app, deps(&[("a", "^1")]), false).await), ["a 1.1.0", "c 1.1.0"]);
}

#[tokio::test]
async fn dev_dependencies_of_the_root_follow_include_dev_and_those_of_dependencies_never() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "testlib", "1.0.0", &[], &[]).await;
    publish(&app, &t, "a", "1.0.0", &[("c", "^1")], &[("testlib", "^1")]).await;
    let roots = json!([{ "name": "a", "req": "^1" }, { "name": "testlib", "req": "^1", "kind": "DEV" }]);
    assert_eq!(chosen(&resolve(&app, roots.clone(), false).await), ["a 1.0.0", "c 1.0.0"]);
    let r = resolve(&app, roots, true).await;
    assert_eq!(chosen(&r), ["a 1.0.0", "c 1.0.0", "testlib 1.0.0"]);
    assert_eq!(package(&r, "a", "1.0.0")["dependencies"], json!([{ "name": "c", "req": "^1", "version": "1.0.0" }]));
    // a's own dev-dependency is never resolved, with includeDev or not.
    assert_eq!(chosen(&resolve(&app, deps(&[("a", "^1")]), true).await), ["a 1.0.0", "c 1.0.0"]);
}

#[tokio::test]
async fn an_unknown_root_package_is_a_conflict_naming_it() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    let r = resolve(&app, deps(&[("c", "^1"), ("nope", "^1")]), false).await;
    assert_eq!(r["packages"], json!([]));
    assert_eq!(r["conflicts"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["conflicts"][0]["package"], "nope");
    assert_eq!(r["conflicts"][0]["requirements"], json!([{ "req": "^1", "requiredBy": "root" }]));
    assert!(r["conflicts"][0]["message"].as_str().unwrap().contains("no package of this name"), "{r}");
}

async fn rest(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = app.client.post(app.url("/api/v1/resolve")).json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn rest_answers_the_same_resolution_in_snake_case() {
    let app = common::spawn().await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "c", "1.1.0", &[], &[]).await;
    publish(&app, &t, "d", "1.0.0", &[], &[]).await;
    publish(&app, &t, "a", "1.0.0", &[("c", "~1.0")], &[]).await;
    publish(&app, &t, "b", "1.0.0", &[("c", "^1.1")], &[]).await;
    let (status, ok) =
        rest(&app, json!({ "dependencies": [{"name": "a", "req": "^1"}, {"name": "d", "req": "^1", "kind": "dev"}], "include_dev": true }))
            .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    let gql = resolve(&app, json!([{"name": "a", "req": "^1"}, {"name": "d", "req": "^1", "kind": "DEV"}]), true).await;
    assert_eq!(chosen(&ok), chosen(&gql));
    assert_eq!(chosen(&ok), ["a 1.0.0", "c 1.0.0", "d 1.0.0"]);
    let c = &ok["packages"][1];
    assert_eq!(c["download_url"], gql["packages"][1]["downloadUrl"]);
    assert_eq!(c["sha256"], gql["packages"][1]["sha256"]);
    assert_eq!(ok["packages"][0]["dependencies"], json!([{ "name": "c", "req": "~1.0", "version": "1.0.0" }]));
    assert_eq!(ok["conflicts"], json!([]));
    // Without include_dev, d is left out.
    let (_, no_dev) =
        rest(&app, json!({ "dependencies": [{"name": "a", "req": "^1"}, {"name": "d", "req": "^1", "kind": "dev"}] }))
            .await;
    assert_eq!(chosen(&no_dev), ["a 1.0.0", "c 1.0.0"]);

    let (status, bad) =
        rest(&app, json!({ "dependencies": [{"name": "a", "req": "^1"}, {"name": "b", "req": "^1"}] })).await;
    assert_eq!(status, StatusCode::OK, "no solution is an answer, not an error: {bad}");
    assert_eq!(bad["packages"], json!([]));
    assert_eq!(bad["conflicts"][0]["package"], "c");
    let by: Vec<&str> = bad["conflicts"][0]["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["required_by"].as_str().unwrap())
        .collect();
    assert!(by.contains(&"a@1.0.0") && by.contains(&"b@1.0.0"), "{bad}");
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_before_any_work() {
    let app = common::spawn().await;
    let many: Vec<Value> = (0..101).map(|i| json!({ "name": format!("p{i}"), "req": "^1" })).collect();
    let (status, body) = rest(&app, json!({ "dependencies": many })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"]["field"], "dependencies");
    assert!(body["message"].as_str().unwrap().contains("at most 100"), "{body}");
    let res = app.gql(RESOLVE, json!({ "deps": many }), None).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{res}");
    assert_eq!(res["errors"][0]["extensions"]["field"], "dependencies", "{res}");

    let (status, body) = rest(&app, json!({ "dependencies": [{"name": "a", "req": "not a req"}] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("invalid version requirement"), "{body}");
    let (status, body) = rest(&app, json!({ "dependencies": [{"name": "Bad Name", "req": "^1"}] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = rest(&app, json!({ "dependencies": [{"name": "a", "req": "^1", "kind": "optional"}] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_graph_past_the_package_bound_is_refused_with_422() {
    let app = common::spawn_with(|c| c.resolve_max_packages = 2).await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "c", "1.0.0", &[], &[]).await;
    publish(&app, &t, "b", "1.0.0", &[("c", "^1")], &[]).await;
    publish(&app, &t, "a", "1.0.0", &[("b", "^1")], &[]).await;
    assert_eq!(chosen(&resolve(&app, deps(&[("b", "^1")]), false).await), ["b 1.0.0", "c 1.0.0"], "2 packages: within");
    let (status, body) = rest(&app, json!({ "dependencies": [{"name": "a", "req": "^1"}] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "too_complex");
    assert!(body["message"].as_str().unwrap().contains("RESOLVE_MAX_PACKAGES"), "{body}");
    let res = app.gql(RESOLVE, json!({ "deps": deps(&[("a", "^1")]) }), None).await;
    assert_eq!(res["errors"][0]["extensions"]["code"], "TOO_COMPLEX", "{res}");
    assert!(res["errors"][0]["message"].as_str().unwrap().contains("more than 2 packages"), "{res}");
}

#[tokio::test]
async fn a_resolution_past_the_step_bound_is_refused_with_422() {
    let app = common::spawn_with(|c| c.resolve_max_steps = 6).await;
    let t = register(&app, "ada").await;
    publish(&app, &t, "e", "1.0.0", &[], &[]).await;
    publish(&app, &t, "d", "1.0.0", &[("e", "^1")], &[]).await;
    publish(&app, &t, "c", "1.0.0", &[("d", "^1")], &[]).await;
    publish(&app, &t, "b", "1.0.0", &[("c", "^1")], &[]).await;
    publish(&app, &t, "a", "1.0.0", &[("b", "^1")], &[]).await;
    assert_eq!(chosen(&resolve(&app, deps(&[("e", "^1")]), false).await), ["e 1.0.0"], "a short one fits");
    let (status, body) = rest(&app, json!({ "dependencies": [{"name": "a", "req": "^1"}] })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "too_complex");
    assert!(body["message"].as_str().unwrap().contains("RESOLVE_MAX_STEPS"), "{body}");
}
