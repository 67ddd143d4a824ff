//! README HTML over GraphQL (`Version.readmeHtml`): relative links and images resolved against the
//! package's repository, prefixed heading ids that fragment links reach, code languages kept, and
//! everything sanitised.
use crate::testkit as common;

use common::api::{publish_ok, register};
use common::tarballs::{manifest_with, package_with_readme};
use serde_json::{json, Value};

const README: &str = "# Widget\n\n![Logo](./assets/logo.png)\n\nRead [the guide](docs/guide.md) or jump to \
                      [installing](#install-section).\n\n## Install section\n\n```rust\nlet w = widget::new();\n```\n\n\
                      <img src=x onerror=alert(1)> [x](javascript:alert(2))\n";

async fn readme_html(app: &common::TestApp, name: &str) -> String {
    let body = app
        .gql("query($n: String!) { package(name: $n) { latestVersion { readmeHtml } } }", json!({"n": name}), None)
        .await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    body["data"]["package"]["latestVersion"]["readmeHtml"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

#[tokio::test]
async fn readme_html_resolves_against_the_repository_and_keeps_anchors_and_languages() {
    let app = common::spawn().await;
    let token = register(&app, "writer").await;
    let on_github = manifest_with("gh-widget", "1.0.0", "repository = \"https://github.com/ada/widget\"", "");
    publish_ok(&app, &token, "gh-widget", "1.0.0", package_with_readme(&on_github, README)).await;
    let elsewhere = manifest_with("own-widget", "1.0.0", "repository = \"https://git.example.com/ada/widget\"", "");
    publish_ok(&app, &token, "own-widget", "1.0.0", package_with_readme(&elsewhere, README)).await;

    let html = readme_html(&app, "gh-widget").await;
    for expected in [
        "<h1 id=\"user-content-widget\">Widget</h1>",
        "<img src=\"https://github.com/ada/widget/raw/HEAD/assets/logo.png\" alt=\"Logo\">",
        "<a href=\"https://github.com/ada/widget/blob/HEAD/docs/guide.md\" rel=\"nofollow noopener noreferrer\">the guide</a>",
        "<a href=\"#user-content-install-section\" rel=\"nofollow noopener noreferrer\">installing</a>",
        "<h2 id=\"user-content-install-section\">Install section</h2>",
        "<pre><code class=\"language-rust\">let w = widget::new();",
    ] {
        assert!(html.contains(expected), "{expected}\nin {html}");
    }
    for hostile in ["onerror", "javascript:", "<script"] {
        assert!(!html.contains(hostile), "{hostile} in {html}");
    }

    // A repository on no known forge: the relative targets go, their text stays.
    let html = readme_html(&app, "own-widget").await;
    assert!(html.contains("<p>Logo</p>"), "the image leaves its alt text: {html}");
    assert!(html.contains("Read the guide or jump to"), "the link leaves its text: {html}");
    assert!(!html.contains("docs/guide.md") && !html.contains("assets/logo.png"), "{html}");
    assert!(html.contains("href=\"#user-content-install-section\""), "fragments still work: {html}");
}
