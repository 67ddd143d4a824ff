//! Input hygiene at every edge: a NUL byte, another control character or (in display text) a bidi
//! override in any client-supplied string is refused as bad input — 400 `invalid_request` naming
//! the field over REST, `BAD_USER_INPUT` with `extensions.field` over GraphQL — before any SQL runs,
//! on both databases. PostgreSQL refuses NUL in text (`invalid byte sequence for encoding "UTF8":
//! 0x00`), so a value that reached a statement there answered 500.
use crate::testkit as common;

use common::api::{expect_error, meta, publish_form, register_user, Meta};
use common::tarballs::{manifest_with, package_from_manifest, package_with_readme};
use common::TestApp;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

/// The bad values: (label, value, refused in every field). Bidi overrides are refused in display
/// text and identifiers only; a search, a password, a token name or a README may carry them.
const VALUES: &[(&str, &str, bool)] = &[("NUL", "\0", true), ("ESC", "\u{1b}", true), ("RLO", "\u{202E}", false)];

/// What a refused request must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 400 invalid_request / BAD_USER_INPUT naming this field.
    Field(&'static str),
    /// Login answers every malformed or wrong credential alike: 401 invalid_credentials / UNAUTHENTICATED.
    Credentials,
}

struct RestCase {
    what: String,
    expect: Expect,
    /// false: a bidi override is accepted here.
    bidi: bool,
    req: RequestBuilder,
}

/// Percent-encodes a value for a path segment or query string.
fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A TOML basic string holding `s`, every non-ASCII or control character escaped.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04X}", c as u32));
        }
    }
    out.push('"');
    out
}

/// Every REST request that carries `v` somewhere a client string reaches the database or storage.
fn rest_cases(app: &TestApp, token: &str, v: &str) -> Vec<RestCase> {
    let e = enc(v);
    let api = |method: Method, path: String| app.client.request(method, app.url(&format!("/api/v1{path}")));
    let authed = |method: Method, path: String| api(method, path).bearer_auth(token);
    let mut cases = Vec::new();
    let mut case = |what: String, expect: Expect, bidi: bool, req: RequestBuilder| {
        cases.push(RestCase { what, expect, bidi, req });
    };
    use Expect::*;
    // Path parameters.
    for (suffix, method, auth) in [
        ("", Method::GET, false),
        ("/stats", Method::GET, false),
        ("/owners", Method::GET, false),
        ("/owners/bob", Method::DELETE, true),
        ("/1.0.0", Method::GET, false),
        ("/1.0.0", Method::DELETE, true),
        ("/1.0.0/download", Method::GET, false),
        ("/1.0.0/unyank", Method::PUT, true),
    ] {
        let path = format!("/packages/wid{e}get{suffix}");
        let req = if auth { authed(method.clone(), path.clone()) } else { api(method.clone(), path.clone()) };
        case(format!("{method} {path}"), Field("name"), true, req);
    }
    case(
        "PUT /packages/NAME/owners".into(),
        Field("name"),
        true,
        authed(Method::PUT, format!("/packages/wid{e}get/owners")).json(&json!({"username": "bob"})),
    );
    for (suffix, method, auth) in [
        ("", Method::GET, false),
        ("", Method::DELETE, true),
        ("/download", Method::GET, false),
        ("/unyank", Method::PUT, true),
    ] {
        let path = format!("/packages/widget/1.0.0{e}{suffix}");
        let req = if auth { authed(method.clone(), path.clone()) } else { api(method.clone(), path.clone()) };
        case(format!("{method} {path}"), Field("version"), true, req);
    }
    case(
        "DELETE /packages/widget/owners/USERNAME".into(),
        Field("username"),
        true,
        authed(Method::DELETE, format!("/packages/widget/owners/bo{e}b")),
    );
    case("GET /users/USERNAME".into(), Field("username"), true, api(Method::GET, format!("/users/al{e}ice")));
    case(
        "DELETE /users/me/tokens/ID".into(),
        Field("token_id"),
        true,
        authed(Method::DELETE, format!("/users/me/tokens/00000000-0000-4000-8000-{e}00000000000")),
    );
    // Query strings.
    case("GET /search?q=".into(), Field("q"), false, api(Method::GET, format!("/search?q=wid{e}get")));
    case("GET /search?limit=".into(), Field("limit"), true, api(Method::GET, format!("/search?q=a&limit=1{e}")));
    case("GET /search?offset=".into(), Field("offset"), true, api(Method::GET, format!("/search?q=a&offset=1{e}")));
    // JSON bodies.
    let register = |u: &str, m: &str, p: &str| {
        api(Method::POST, "/auth/register".into()).json(&json!({"username": u, "email": m, "password": p}))
    };
    case(
        "register username".into(),
        Field("username"),
        true,
        register(&format!("ne{v}wbie"), "newbie@example.com", "correct horse battery"),
    );
    case(
        "register email".into(),
        Field("email"),
        true,
        register("newbie", &format!("new{v}bie@example.com"), "correct horse battery"),
    );
    case(
        "register password".into(),
        Field("password"),
        false,
        register("newbie", "newbie@example.com", &format!("correct horse{v}battery")),
    );
    let login = |m: &str, p: &str| api(Method::POST, "/auth/login".into()).json(&json!({"email": m, "password": p}));
    case("login email".into(), Credentials, true, login(&format!("al{v}ice@example.com"), "correct horse battery"));
    case("login password".into(), Credentials, true, login("alice@example.com", &format!("correct horse{v}battery")));
    case(
        "PUT /packages/widget/owners username".into(),
        Field("username"),
        true,
        authed(Method::PUT, "/packages/widget/owners".into()).json(&json!({"username": format!("bo{v}b")})),
    );
    case(
        "POST /users/me/tokens name".into(),
        Field("name"),
        false,
        authed(Method::POST, "/users/me/tokens".into())
            .json(&json!({"name": format!("ci{v}token"), "expires_in_days": 30})),
    );
    // Publishing: the metadata part, then every manifest field and the README inside the tarball.
    let publish = |meta: Meta, tarball: Vec<u8>| {
        authed(Method::POST, "/packages/publish".into()).multipart(publish_form(meta, Some(tarball)))
    };
    let good = package_from_manifest(&manifest_with("bad-pub", "1.0.0", "", ""));
    let meta_part =
        |name: &str, version: &str| Meta::Part("metadata", json!({"name": name, "version": version}).to_string());
    case(
        "publish metadata name".into(),
        Field("name"),
        true,
        publish(meta_part(&format!("bad{v}-pub"), "1.0.0"), good.clone()),
    );
    case(
        "publish metadata version".into(),
        Field("version"),
        true,
        publish(meta_part("bad-pub", &format!("1.0.0{v}")), good),
    );
    let q = toml_str;
    let manifests: Vec<(&'static str, bool, String)> = vec![
        (
            "name",
            true,
            manifest_with(&format!("bad{v}-pub"), "1.0.0", "", "")
                .replace(&format!("\"bad{v}-pub\""), &q(&format!("bad{v}-pub"))),
        ),
        ("version", true, manifest_with("bad-pub", "1.0.0", "", "").replace("\"1.0.0\"", &q(&format!("1.0.0{v}")))),
        (
            "description",
            true,
            manifest_with("bad-pub", "1.0.0", &format!("description = {}", q(&format!("A {v} widget"))), ""),
        ),
        ("license", true, manifest_with("bad-pub", "1.0.0", &format!("license = {}", q(&format!("MIT{v}"))), "")),
        (
            "authors",
            true,
            manifest_with("bad-pub", "1.0.0", "", "")
                .replace("[\"Ada <ada@example.com>\"]", &format!("[{}]", q(&format!("Ada{v} <ada@example.com>")))),
        ),
        ("keywords", true, manifest_with("bad-pub", "1.0.0", &format!("keywords = [{}]", q(&format!("ui{v}"))), "")),
        (
            "repository",
            true,
            manifest_with(
                "bad-pub",
                "1.0.0",
                &format!("repository = {}", q(&format!("https://example.com/a{v}b"))),
                "",
            ),
        ),
        (
            "homepage",
            true,
            manifest_with("bad-pub", "1.0.0", &format!("homepage = {}", q(&format!("https://exa{v}mple.com/"))), ""),
        ),
        ("dependencies", true, manifest_with("bad-pub", "1.0.0", "", &format!("{} = \"1\"", q(&format!("wid{v}get"))))),
        ("dependencies", true, manifest_with("bad-pub", "1.0.0", "", &format!("widget = {}", q(&format!("^1.0{v}"))))),
    ];
    for (field, bidi, manifest) in manifests {
        case(
            format!("publish raven.toml {field}"),
            Field(field),
            bidi,
            publish(Meta::None, package_from_manifest(&manifest)),
        );
    }
    let readme = package_with_readme(&manifest_with("bad-pub", "1.0.0", "", ""), &format!("# Hi{v}\n\ntext\n"));
    case("publish README.md".into(), Field("readme"), false, publish(Meta::None, readme));
    cases
}

/// Every GraphQL argument that carries a client string to the database or storage: (document,
/// variables, expected, refused for a bidi override too).
fn graphql_cases(v: &str) -> Vec<(&'static str, Value, Expect, bool)> {
    use Expect::*;
    let w = |s: &str| s.replace('~', v);
    vec![
        ("query($v: String!) { package(name: $v) { name } }", json!({"v": w("wid~get")}), Field("name"), true),
        ("query($v: String!) { version(name: $v, version: \"1.0.0\") { version } }", json!({"v": w("wid~get")}), Field("name"), true),
        ("query($v: String!) { version(name: \"widget\", version: $v) { version } }", json!({"v": w("1.0.0~")}), Field("version"), true),
        ("query($v: String!) { search(query: $v) { totalCount } }", json!({"v": w("wid~get")}), Field("query"), false),
        ("query($v: String!) { user(username: $v) { username } }", json!({"v": w("al~ice")}), Field("username"), true),
        (
            "mutation($v: String!) { register(input: {username: $v, email: \"n@example.com\", password: \"correct horse battery\"}) { token } }",
            json!({"v": w("ne~wbie")}),
            Field("username"),
            true,
        ),
        (
            "mutation($v: String!) { register(input: {username: \"newbie\", email: $v, password: \"correct horse battery\"}) { token } }",
            json!({"v": w("n~@example.com")}),
            Field("email"),
            true,
        ),
        (
            "mutation($v: String!) { register(input: {username: \"newbie\", email: \"n@example.com\", password: $v}) { token } }",
            json!({"v": w("correct horse~battery")}),
            Field("password"),
            false,
        ),
        ("mutation($v: String!) { login(email: $v, password: \"correct horse battery\") { token } }", json!({"v": w("al~ice@example.com")}), Credentials, true),
        ("mutation($v: String!) { createApiToken(input: {name: $v}) { token } }", json!({"v": w("ci~token")}), Field("name"), false),
        ("mutation($v: ID!) { revokeApiToken(id: $v) { id } }", json!({"v": w("00000000-0000-4000-8000-~00000000000")}), Field("id"), true),
        ("mutation($v: String!) { yank(name: $v, version: \"1.0.0\") { version } }", json!({"v": w("wid~get")}), Field("name"), true),
        ("mutation($v: String!) { yank(name: \"widget\", version: $v) { version } }", json!({"v": w("1.0.0~")}), Field("version"), true),
        ("mutation($v: String!) { yank(name: \"widget\", version: \"1.0.0\", reason: $v) { version } }", json!({"v": w("broken ~ build")}), Field("reason"), true),
        ("mutation($v: String!) { unyank(name: $v, version: \"1.0.0\") { version } }", json!({"v": w("wid~get")}), Field("name"), true),
        ("mutation($v: String!) { unyank(name: \"widget\", version: $v) { version } }", json!({"v": w("1.0.0~")}), Field("version"), true),
        ("mutation($v: String!) { addOwner(package: $v, username: \"bob\") { role } }", json!({"v": w("wid~get")}), Field("package"), true),
        ("mutation($v: String!) { addOwner(package: \"widget\", username: $v) { role } }", json!({"v": w("bo~b")}), Field("username"), true),
        ("mutation($v: String!) { removeOwner(package: $v, username: \"bob\") { name } }", json!({"v": w("wid~get")}), Field("package"), true),
        ("mutation($v: String!) { removeOwner(package: \"widget\", username: $v) { name } }", json!({"v": w("bo~b")}), Field("username"), true),
    ]
}

#[tokio::test]
async fn control_characters_and_bidi_overrides_are_refused_at_every_edge() {
    let app = common::spawn().await;
    let alice = register_user(&app, "alice").await;
    register_user(&app, "bob").await;
    common::api::publish_package(&app, &alice.token, "widget", "1.0.0").await;

    let mut checked = 0;
    let mut wrong = Vec::new();
    for &(label, v, everywhere) in VALUES {
        for c in rest_cases(&app, &alice.token, v) {
            if !everywhere && !c.bidi {
                continue;
            }
            let res = c.req.send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let ok = match c.expect {
                Expect::Field(field) => {
                    status == 400 && body["error"] == "invalid_request" && body["details"]["field"] == field
                }
                Expect::Credentials => status == 401 && body["error"] == "invalid_credentials",
            };
            if !ok {
                wrong.push(format!("{label} in {}: expected {:?}, got {status} {body}", c.what, c.expect));
            }
            checked += 1;
        }
        // HEAD has no body: the status alone.
        for path in ["/api/v1/packages/wid{}get/1.0.0/download", "/api/v1/packages/widget/1.0.0{}/download"] {
            let res = app.client.head(app.url(&path.replace("{}", &enc(v)))).send().await.unwrap();
            if res.status() != 400 {
                wrong.push(format!("{label} in HEAD {path}: got {}", res.status()));
            }
        }
        for (query, variables, expect, bidi) in graphql_cases(v) {
            if !everywhere && !bidi {
                continue;
            }
            let res = app.gql(query, variables.clone(), Some(&alice.token)).await;
            let ext = &res["errors"][0]["extensions"];
            let ok = match expect {
                Expect::Field(field) => ext["code"] == "BAD_USER_INPUT" && ext["field"] == field,
                Expect::Credentials => ext["code"] == "UNAUTHENTICATED",
            };
            if !ok {
                wrong.push(format!("{label} in {query} {variables}: expected {expect:?}, got {res}"));
            }
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "{} of {checked} refusals wrong:\n{}", wrong.len(), wrong.join("\n"));
    assert!(checked > 100, "{checked} requests checked");

    // Nothing was written by any of them.
    let widget: Value = app.client.get(app.url("/api/v1/packages/widget")).send().await.unwrap().json().await.unwrap();
    assert_eq!(widget["versions"], json!(["1.0.0"]), "{widget}");
    let owners: Value =
        app.client.get(app.url("/api/v1/packages/widget/owners")).send().await.unwrap().json().await.unwrap();
    assert_eq!(owners["owners"].as_array().unwrap().len(), 1, "{owners}");
    let res = app.client.get(app.url("/api/v1/packages/bad-pub")).send().await.unwrap();
    expect_error(res, 404, "not_found").await;
    let me: Value = app
        .client
        .get(app.url("/api/v1/users/me"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tokens: Vec<&str> = me["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tokens, ["login"], "no API token was created: {me}");
    let stats: Value = app.client.get(app.url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["total_users"], 2, "{stats}");
}

/// With rate limits on, the publish budget looks the metadata's package name up before the tarball
/// is read: that lookup must parse the name too.
#[tokio::test]
async fn the_publish_budget_lookup_refuses_a_malformed_metadata_name() {
    let app = common::spawn_with(|c| c.rate_limits_enabled = true).await;
    let alice = register_user(&app, "alice").await;
    for &(label, v, _) in VALUES {
        let form =
            publish_form(meta(&format!("wid{v}get"), "1.0.0"), Some(common::tarballs::package("widget", "1.0.0")));
        let res = app
            .client
            .post(app.url("/api/v1/packages/publish"))
            .bearer_auth(&alice.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let body = expect_error(res, 400, "invalid_request").await;
        assert_eq!(body["details"]["field"], "name", "{label}: {body}");
    }
}
