//! GraphiQL at `GET /graphql`: the page loads only files the registry serves itself (embedded,
//! immutable, under a versioned path), neither the page nor its files are charged to a budget, and
//! in a real headless Chromium that can reach nothing but the registry the editor renders and runs
//! a query.
use crate::testkit as common;

use std::time::Duration;

use common::browser::{binaries, Browser};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, VARY};
use serde_json::{json, Value};

/// What a browser sends when it navigates to a page.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The served file names and the vendored files they must be, byte for byte.
const FILES: &[(&str, &str, &str)] = &[
    ("graphiql.min.css", "graphiql-4.1.2/graphiql.min.css", "text/css; charset=utf-8"),
    ("react.production.min.js", "react-18.3.1/react.production.min.js", "text/javascript; charset=utf-8"),
    ("react-dom.production.min.js", "react-dom-18.3.1/react-dom.production.min.js", "text/javascript; charset=utf-8"),
    ("graphiql.min.js", "graphiql-4.1.2/graphiql.min.js", "text/javascript; charset=utf-8"),
    ("start.js", "start.js", "text/javascript; charset=utf-8"),
];

/// The licences, served next to the code they cover (the page does not load them).
const LICENCES: &[(&str, &str, &str)] = &[
    ("graphiql.LICENSE.txt", "graphiql-4.1.2/LICENSE", "text/plain; charset=utf-8"),
    ("graphiql.THIRD-PARTY-LICENSES.txt", "graphiql-4.1.2/THIRD-PARTY-LICENSES.txt", "text/plain; charset=utf-8"),
    ("react.LICENSE.txt", "react-18.3.1/LICENSE", "text/plain; charset=utf-8"),
    ("react-dom.LICENSE.txt", "react-dom-18.3.1/LICENSE", "text/plain; charset=utf-8"),
];

async fn page(app: &common::TestApp) -> reqwest::Response {
    app.client.get(app.url("/graphql")).header(ACCEPT, BROWSER_ACCEPT).send().await.unwrap()
}

/// The values of every `src="..."` and `href="..."` in the page, in document order.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    loop {
        let next = ["src=\"", "href=\""].iter().filter_map(|a| rest.find(a).map(|i| i + a.len())).min();
        let Some(start) = next else { return out };
        rest = &rest[start..];
        let end = rest.find('"').expect("a closing quote");
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
}

/// The asset paths the page references (all but its `data:` icon).
async fn asset_paths(app: &common::TestApp) -> Vec<String> {
    let html = page(app).await.text().await.unwrap();
    references(&html).into_iter().filter(|r| r != "data:,").collect()
}

#[tokio::test]
async fn the_page_references_only_assets_the_registry_serves() {
    let app = common::spawn().await;
    let res = page(&app).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(res.headers()[CACHE_CONTROL], "no-cache", "the page names this binary's assets: always revalidated");
    let vary: Vec<&str> = res.headers().get_all(VARY).iter().map(|v| v.to_str().unwrap()).collect();
    let varies_on_accept = vary.iter().flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case("accept"));
    assert!(varies_on_accept, "HTML or a GraphQL error, by Accept: {vary:?}");
    let csp = res.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self';"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(!html.contains("http"), "no URL with a scheme in the page: {html}");
    assert!(!html.contains("//"), "no protocol-relative URL either: {html}");
    assert!(!html.contains("<script>"), "no inline script (the CSP forbids them): {html}");
    assert!(html.contains("data-endpoint=\"/graphql\""), "GraphiQL talks to /graphql: {html}");

    let refs = references(&html);
    assert!(refs.contains(&"data:,".to_owned()), "the icon is inline, so the browser asks for no /favicon.ico");
    let assets: Vec<&String> = refs.iter().filter(|r| *r != "data:,").collect();
    let names: Vec<&str> = assets.iter().map(|p| p.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, FILES.iter().map(|f| f.0).collect::<Vec<_>>(), "every asset, in load order");
    let version = assets[0].split('/').nth(2).unwrap().to_owned();
    assert_eq!(version.len(), 16);
    for path in &assets {
        assert_eq!(**path, format!("/graphiql/{version}/{}", path.rsplit('/').next().unwrap()), "one version: {path}");
    }
}

#[tokio::test]
async fn each_asset_is_served_with_its_type_and_immutable_caching() {
    let app = common::spawn().await;
    let mut paths = asset_paths(&app).await;
    assert_eq!(paths.len(), FILES.len());
    let version = paths[0].split('/').nth(2).unwrap().to_owned();
    paths.extend(LICENCES.iter().map(|(name, ..)| format!("/graphiql/{version}/{name}")));
    for (path, (name, file, content_type)) in paths.iter().zip(FILES.iter().chain(LICENCES)) {
        assert!(path.ends_with(&format!("/{name}")), "{path}");
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()[CONTENT_TYPE], *content_type, "{path}");
        assert_eq!(res.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable", "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
        let body = res.bytes().await.unwrap();
        let vendored = std::fs::read(format!("{}/assets/graphiql/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(!vendored.is_empty() && body[..] == vendored[..], "{path} is the vendored {file}");
    }
    // Every vendored package directory has its licence, and the licence is served.
    for dir in ["graphiql-4.1.2", "react-18.3.1", "react-dom-18.3.1"] {
        assert!(LICENCES.iter().any(|(_, file, _)| *file == format!("{dir}/LICENSE")), "{dir}");
    }
}

#[tokio::test]
async fn unknown_assets_answer_404() {
    let app = common::spawn().await;
    let real = asset_paths(&app).await.remove(0);
    let version = real.split('/').nth(2).unwrap().to_owned();
    for path in [
        format!("/graphiql/{version}/nope.js"),
        format!("/graphiql/{version}/GRAPHIQL.MIN.CSS"),
        format!("/graphiql/{version}/%2e%2e%2fstart.js"),
        format!("/graphiql/{version}/graphiql-4.1.2/graphiql.min.js"),
        "/graphiql/0000000000000000/graphiql.min.css".to_owned(),
        format!("/graphiql/{version}"),
        "/graphiql/".to_owned(),
    ] {
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn the_page_and_its_assets_are_not_charged_to_a_budget() {
    let app = common::spawn_with(|c| {
        c.rate_limits_enabled = true;
        c.rate_limit_unauthenticated = 2;
        c.rate_limit_browse = 1;
    })
    .await;
    let paths = asset_paths(&app).await;
    for _ in 0..10 {
        let res = page(&app).await;
        assert_eq!(res.status(), 200);
        assert!(!res.headers().contains_key("x-ratelimit-limit"), "the page is not limited");
        for path in &paths {
            let res = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            assert!(!res.headers().contains_key("x-ratelimit-limit"), "{path} is not limited");
        }
        let res = app.client.get(app.url("/graphiql/0000000000000000/start.js")).send().await.unwrap();
        assert_eq!(res.status(), 404);
    }
    // The whole budget is left for the API...
    let res = app.client.get(app.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-remaining"], "1");
    // ...and a browser that runs a query through GET /graphql is charged like any client (to the
    // browse budget of anonymous queries).
    let query = app.url("/graphql?query=%7B__typename%7D");
    let res = app.client.get(&query).header(ACCEPT, BROWSER_ACCEPT).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
    let res = app.client.get(&query).header(ACCEPT, BROWSER_ACCEPT).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(page(&app).await.status(), 200, "the page still loads with the budget spent");
}

/// The acceptance test: a real browser, offline but for the registry, renders the editor,
/// runs `{ stats { totalPackages } }` from it and shows the answer; then a query signed in through
/// the headers editor.
#[tokio::test]
async fn graphiql_runs_a_query_in_headless_chromium_offline() {
    const TEST: &str = "graphiql::graphiql_runs_a_query_in_headless_chromium_offline";
    let (chromium, chromedriver) = match binaries() {
        Ok(found) => found,
        Err(needs) => return common::skipped(TEST, &needs),
    };
    let app = common::spawn().await;
    let token = common::api::register(&app, "gina").await;
    common::api::publish_package(&app, &token, "offline-one", "1.0.0").await;
    common::api::publish_package(&app, &token, "offline-two", "1.0.0").await;

    let browser = Browser::start(&chromium, &chromedriver).await;
    browser.goto(&app.url("/graphql")).await;
    let long = Duration::from_secs(60);
    browser
        .wait_for(
            "the query editor",
            "return document.querySelector('.graphiql-query-editor .CodeMirror') !== null",
            long,
        )
        .await;

    // Everything the page loaded came from the registry.
    let loaded = browser.script("return performance.getEntriesByType('resource').map(e => e.name)", json!([])).await;
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    assert!(loaded.iter().any(|u| u.ends_with("/graphiql.min.js")), "{loaded:?}");
    for url in &loaded {
        assert!(url.starts_with(&format!("{}/", app.base)), "{url} is not the registry's");
    }

    let shown = run_query(&browser, "{ stats { totalPackages } }", "totalPackages").await;
    assert_eq!(shown, json!({ "data": { "stats": { "totalPackages": 2 } } }));

    // The headers editor sends what is typed in it: a signed-in query.
    browser
        .click_by("xpath", "//*[contains(@class, 'graphiql-editor-tools')]//button[normalize-space() = 'Headers']")
        .await;
    browser
        .script(
            "document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')\
             .CodeMirror.setValue(arguments[0])",
            json!([json!({ "Authorization": format!("Bearer {token}") }).to_string()]),
        )
        .await;
    let shown = run_query(&browser, "{ me { username } }", "username").await;
    assert_eq!(shown, json!({ "data": { "me": { "username": "gina" } } }));

    // No failed load, uncaught error or Content-Security-Policy violation on the way.
    let severe = browser.severe_logs().await;
    assert!(severe.is_empty(), "browser errors: {severe:#?}");
}

/// Puts `query` in the query editor, presses the run button and returns the JSON the response pane
/// shows once it mentions `expect`.
async fn run_query(browser: &Browser, query: &str, expect: &str) -> Value {
    browser
        .script(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(arguments[0])",
            json!([query]),
        )
        .await;
    browser.click(".graphiql-execute-button").await;
    let shown = browser
        .wait_for(
            "the response",
            &format!(
                "const cm = document.querySelector('.graphiql-response .CodeMirror'); \
                 const text = cm && cm.CodeMirror.getValue(); \
                 return text && text.includes({expect:?}) ? text : null"
            ),
            Duration::from_secs(60),
        )
        .await;
    serde_json::from_str(shown.as_str().unwrap()).expect("the response pane holds JSON")
}
