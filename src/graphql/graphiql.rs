//! GraphiQL, the explorer `GET /graphql` serves to browsers, with every file its page loads embedded
//! in the binary (`assets/graphiql/`, whose README names each file's package, version and licence):
//! the page works offline and behind a network that blocks CDNs, and its version is the one tested.
//!
//! The files are served under `/graphiql/<version>/<file>`, where the version is a digest of their
//! contents, so they can be cached forever (`immutable`): a binary with different files serves
//! them under a different path. The page itself is small and is not cached.
use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Where the assets are routed (`/graphiql/{version}/{file}`).
pub const ASSET_PREFIX: &str = "/graphiql/";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Inline scripts are refused; the page's own script is `start.js`. Styles must allow 'unsafe-inline':
/// GraphiQL's dialogs (react-remove-scroll) add a `<style>` element at run time. Images and fonts
/// are data: URLs inside graphiql.min.css. Nothing may be fetched from, or framed by, another origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr, $path:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/graphiql/", $path)),
        }
    };
}

/// Every file the page loads, in the order it loads them.
const LOADED: &[Asset] = &[
    asset!("graphiql.min.css", CSS, "graphiql-4.1.2/graphiql.min.css"),
    asset!("react.production.min.js", JS, "react-18.3.1/react.production.min.js"),
    asset!("react-dom.production.min.js", JS, "react-dom-18.3.1/react-dom.production.min.js"),
    asset!("graphiql.min.js", JS, "graphiql-4.1.2/graphiql.min.js"),
    asset!("start.js", JS, "start.js"),
];

/// The licences of the vendored code, which travel with it: served next to it, never loaded.
const LICENCES: &[Asset] = &[
    asset!("graphiql.LICENSE.txt", TEXT, "graphiql-4.1.2/LICENSE"),
    asset!("graphiql.THIRD-PARTY-LICENSES.txt", TEXT, "graphiql-4.1.2/THIRD-PARTY-LICENSES.txt"),
    asset!("react.LICENSE.txt", TEXT, "react-18.3.1/LICENSE"),
    asset!("react-dom.LICENSE.txt", TEXT, "react-dom-18.3.1/LICENSE"),
];

fn assets() -> impl Iterator<Item = &'static Asset> {
    LOADED.iter().chain(LICENCES)
}

/// The path segment that versions the assets: the first 16 hex digits of a digest of their names
/// and contents (a new file, or a changed one, moves them all).
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut digest = Sha256::new();
        for asset in assets() {
            digest.update(asset.name.as_bytes());
            digest.update([0]);
            digest.update((asset.bytes.len() as u64).to_be_bytes());
            digest.update(asset.bytes);
        }
        hex::encode(digest.finalize())[..16].to_string()
    });
    &VERSION
}

fn asset_url(name: &str) -> String {
    format!("{ASSET_PREFIX}{}/{name}", version())
}

/// The page: every URL in it is a path on this server.
fn page(endpoint: &str) -> String {
    let tags: String = LOADED
        .iter()
        .map(|a| match a.content_type {
            CSS => format!("    <link rel=\"stylesheet\" href=\"{}\">\n", asset_url(a.name)),
            _ => format!("    <script src=\"{}\" defer></script>\n", asset_url(a.name)),
        })
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="robots" content="noindex">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="origin">
    <title>raven-registry</title>
    <link rel="icon" href="data:,">
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
{tags}  </head>
  <body>
    <div id="graphiql" data-endpoint="{endpoint}">Loading...</div>
  </body>
</html>
"#
    )
}

/// Whether a `GET /graphql` is answered with the page: a browser asking for HTML, with neither a
/// document (`query`) nor `extensions` (a persisted query's hash) to run. The handler and the rate
/// limiter both decide with this, so what is served free is exactly the page.
pub fn serves_page(headers: &HeaderMap, raw_query: &str) -> bool {
    let runs_something = raw_query.split('&').any(|kv| kv.starts_with("query=") || kv.starts_with("extensions="));
    let browser = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    browser && !runs_something
}

/// Requests that are never charged to a rate-limit budget: the page and its assets.
pub fn is_free(method: &Method, path: &str, raw_query: &str, headers: &HeaderMap) -> bool {
    if path.starts_with(ASSET_PREFIX) {
        return true;
    }
    path == "/graphql" && (method == Method::GET || method == Method::HEAD) && serves_page(headers, raw_query)
}

/// The GraphiQL page, talking to `/graphql`.
pub fn page_response() -> Response {
    static PAGE: LazyLock<String> = LazyLock::new(|| page("/graphql"));
    let mut res = Html(PAGE.as_str()).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    // It names the asset version of this binary: revalidate it, so an upgrade is seen at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The same URL answers other clients with a GraphQL error: caches must tell them apart.
    headers.append(header::VARY, HeaderValue::from_static("accept"));
    res
}

/// One asset, or `None` for a path that names none (another version included).
pub fn asset_response(version_segment: &str, name: &str) -> Option<Response> {
    if version_segment != version() {
        return None;
    }
    let asset = assets().find(|a| a.name == name)?;
    let headers = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, IMMUTABLE),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    Some((headers, asset.bytes).into_response())
}

/// The URLs of the files the page loads.
pub fn loaded_urls() -> Vec<String> {
    LOADED.iter().map(|a| asset_url(a.name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_local_assets_in_load_order() {
        let page = page("/graphql");
        assert!(!page.contains("//"), "no absolute or protocol-relative URL: {page}");
        assert!(!page.contains("http"), "{page}");
        let positions: Vec<usize> = loaded_urls().iter().map(|u| page.find(u.as_str()).expect(u)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "React before ReactDOM before GraphiQL before start.js");
    }

    #[test]
    fn only_browsers_without_a_document_get_the_page() {
        let mut html = HeaderMap::new();
        html.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(serves_page(&html, ""));
        assert!(serves_page(&html, "foo=1"));
        assert!(!serves_page(&html, "query=%7B__typename%7D"));
        assert!(!serves_page(&html, "a=1&extensions=%7B%7D"));
        assert!(!serves_page(&HeaderMap::new(), ""));
        assert!(!is_free(&Method::POST, "/graphql", "", &html));
        assert!(is_free(&Method::GET, "/graphiql/x/y", "", &HeaderMap::new()));
    }
}
