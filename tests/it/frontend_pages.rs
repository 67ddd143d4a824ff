//! Every page of a registry site (crates.io / npmjs.com style) is ONE GraphQL request (issue 17):
//! each test below is the query a frontend page would send, run over real HTTP, with what the page
//! shows checked. Together they are the frontend's contract.
use crate::testkit as common;

use common::api::{download, publish_ok, register};
use common::tarballs::{manifest_with, package_with_readme};
use serde_json::{json, Value};

/// Publishes `name` `version` with keywords, a repository, a README and dependencies.
async fn publish(
    app: &common::TestApp,
    token: &str,
    name: &str,
    version: &str,
    keywords: &[&str],
    deps: &str,
    dev: &str,
) {
    let kw = keywords.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
    let extra = format!(
        "description = \"{name} does things\"\nlicense = \"MIT\"\nkeywords = [{kw}]\nrepository = \"https://github.com/ada/{name}\"\n"
    );
    let mut manifest = manifest_with(name, version, &extra, deps);
    if !dev.is_empty() {
        manifest.push_str(&format!("\n[dev-dependencies]\n{dev}\n"));
    }
    let readme = format!("# {name}\n\nSee [the guide](docs/guide.md) and [install](#install).\n\n## Install\n\n```rust\nuse {name};\n```\n");
    publish_ok(app, token, name, version, package_with_readme(&manifest, &readme)).await;
}

fn ok(res: &Value) -> &Value {
    assert!(res["errors"].is_null(), "{res}");
    &res["data"]
}

fn names(connection: &Value) -> Vec<&str> {
    connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{connection}"))
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect()
}

/// A small registry: ada's `core-http` used by `web-kit` (normal) and `test-kit` (dev); bob's
/// `web-kit`; downloads on core-http.
async fn site() -> (common::TestApp, String, String) {
    let app = common::spawn().await;
    let ada = register(&app, "ada").await;
    let bob = register(&app, "bob").await;
    publish(&app, &ada, "core-http", "1.0.0", &["http", "network"], "", "").await;
    publish(&app, &ada, "core-http", "1.1.0", &["http", "network"], "", "").await;
    publish(&app, &bob, "web-kit", "0.3.0", &["http", "web"], "core-http = \"^1.0\"", "").await;
    publish(&app, &ada, "test-kit", "2.0.0", &["testing"], "", "core-http = \"^1.1\"").await;
    for _ in 0..3 {
        download(&app, "core-http", "1.1.0").await;
    }
    download(&app, "web-kit", "0.3.0").await;
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush");
    (app, ada, bob)
}

#[tokio::test]
async fn home_page() {
    let (app, _, _) = site().await;
    let res = app
        .gql(
            "{ stats { totalPackages totalVersions totalDownloads totalUsers }
               popular: packages(first: 10, sort: DOWNLOADS) { nodes { id name description latestVersion { version } downloads { total } } }
               newest: packages(first: 10, sort: NEWEST) { nodes { name createdAt } }
               updated: packages(first: 10, sort: RECENTLY_UPDATED) { nodes { name updatedAt } }
               keywords(first: 10) { nodes { name packageCount } } }",
            json!({}),
            None,
        )
        .await;
    let d = ok(&res);
    assert_eq!(d["stats"], json!({"totalPackages": 3, "totalVersions": 4, "totalDownloads": 4, "totalUsers": 2}));
    assert_eq!(names(&d["popular"])[..2], ["core-http", "web-kit"]);
    assert_eq!(d["popular"]["nodes"][0]["latestVersion"]["version"], "1.1.0");
    assert_eq!(names(&d["newest"])[0], "test-kit");
    assert_eq!(d["keywords"]["nodes"][0], json!({"name": "http", "packageCount": 2}), "{res}");
}

#[tokio::test]
async fn search_page_with_keyword_filter_and_sort() {
    let (app, _, _) = site().await;
    let res = app
        .gql(
            "query($q: String!, $k: String) { search(query: $q, keyword: $k, first: 20, sort: DOWNLOADS) {
                 totalCount pageInfo { hasNextPage endCursor }
                 nodes { name description keywords latestVersion { version publishedAt } downloads { total lastMonth } } } }",
            json!({"q": "", "k": "http"}),
            None,
        )
        .await;
    let s = &ok(&res)["search"];
    assert_eq!(s["totalCount"], 2, "{res}");
    assert_eq!(names(s), ["core-http", "web-kit"]);
    let res =
        app.gql("{ search(query: \"kit\", keyword: \"web\") { totalCount nodes { name } } }", json!({}), None).await;
    assert_eq!(names(&ok(&res)["search"]), ["web-kit"]);
}

#[tokio::test]
async fn package_page_with_readme_versions_dependencies_dependents_and_a_year_chart() {
    let (app, _, _) = site().await;
    let res = app
        .gql(
            "{ package(name: \"core-http\") {
                 id name description license repository keywords createdAt updatedAt
                 owners { role user { id username } }
                 downloads { total lastWeek lastMonth daily(days: 365) { day count } }
                 latestVersion { id version readmeHtml sizeBytes sha256 downloadUrl publishedBy { username }
                                 dependencies { name req kind package { name } } }
                 versions(first: 20) { totalCount nodes { version yanked publishedAt downloads } }
                 dependents(first: 20) { totalCount nodes { req kind package { name } version { version } } } } }",
            json!({}),
            None,
        )
        .await;
    let p = &ok(&res)["package"];
    assert_eq!(p["owners"][0]["user"]["username"], "ada");
    assert_eq!(p["downloads"]["total"], 3);
    assert_eq!(p["downloads"]["daily"].as_array().unwrap().len(), 365);
    let html = p["latestVersion"]["readmeHtml"].as_str().unwrap();
    assert!(html.contains("https://github.com/ada/core-http/blob/HEAD/docs/guide.md"), "{html}");
    assert!(html.contains("id=\"user-content-install\"") && html.contains("href=\"#user-content-install\""), "{html}");
    assert!(html.contains("class=\"language-rust\""), "{html}");
    assert_eq!(p["versions"]["totalCount"], 2);
    assert_eq!(p["dependents"]["totalCount"], 2, "{res}");
    let dependents: Vec<(&str, &str)> = p["dependents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["package"]["name"].as_str().unwrap(), n["kind"].as_str().unwrap()))
        .collect();
    assert!(dependents.contains(&("web-kit", "NORMAL")) && dependents.contains(&("test-kit", "DEV")), "{res}");
}

#[tokio::test]
async fn version_page() {
    let (app, _, _) = site().await;
    let res = app
        .gql(
            "{ version(name: \"web-kit\", version: \"0.3.0\") { id version yanked yankReason publishedAt sha256 sizeBytes
                 downloadUrl authors description downloads dailyDownloads(days: 90) { day count }
                 readmeHtml package { name latestVersion { version } }
                 dependencies { name req kind package { name latestVersion { version } } } } }",
            json!({}),
            None,
        )
        .await;
    let v = &ok(&res)["version"];
    assert_eq!(
        v["dependencies"],
        json!([{"name": "core-http", "req": "^1.0", "kind": "NORMAL", "package": {"name": "core-http", "latestVersion": {"version": "1.1.0"}}}])
    );
    assert_eq!(v["dailyDownloads"].as_array().unwrap().len(), 90);
    assert_eq!(v["downloads"], 1);
}

#[tokio::test]
async fn user_profile_and_my_packages_and_tokens() {
    let (app, ada, _) = site().await;
    let res = app
        .gql(
            "{ user(username: \"ada\") { id username createdAt
                 packages(first: 10) { totalCount nodes { name latestVersion { version } downloads { total } } } } }",
            json!({}),
            None,
        )
        .await;
    let u = &ok(&res)["user"];
    assert_eq!(u["packages"]["totalCount"], 2);
    assert_eq!(names(&u["packages"]), ["core-http", "test-kit"]);
    let res = app
        .gql(
            "{ me { id username email tokens { id name scopes expiresAt lastUsedAt }
                    packages(first: 10, sort: NAME) { totalCount nodes { name } } } }",
            json!({}),
            Some(&ada),
        )
        .await;
    let me = &ok(&res)["me"];
    assert_eq!(me["id"], u["id"], "Viewer.id is the User's node id");
    assert_eq!(names(&me["packages"]), ["core-http", "test-kit"]);
    assert!(me["tokens"].as_array().is_some_and(|t| !t.is_empty()), "{res}");
}
