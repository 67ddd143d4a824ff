//! GraphQL-specific behaviour: multipart publish, yank and owners through mutations, the transport's
//! refusal of mutations over GET, and the DataLoader guarantee that a page costs a constant number
//! of SQL statements whatever its size.
use crate::testkit as common;

use std::sync::atomic::Ordering;

use common::api::{download, register, sha256_hex};
use common::documents::{aliases, fan_out};
use common::tarballs;
use common::TestApp;
use serde_json::{json, Value};

/// A GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec).
async fn gql_publish(app: &TestApp, token: &str, tarball: Vec<u8>) -> Value {
    let operations = json!({
        "query": "mutation($t: Upload!) { publish(tarball: $t) { version sha256 yanked package { name } } }",
        "variables": {"t": null}
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.t"]}).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(tarball).file_name("pkg.tar.gz").mime_str("application/gzip").unwrap(),
        );
    let res = app.client.post(app.url("/graphql")).bearer_auth(token).multipart(form).send().await.unwrap();
    res.json().await.unwrap()
}

#[tokio::test]
async fn publish_yank_and_owners_through_graphql() {
    let app = common::spawn().await;
    let token = register(&app, "gwen").await;
    let tarball = tarballs::package("graph-pkg", "0.1.0");
    let sha = sha256_hex(&tarball);
    let body = gql_publish(&app, &token, tarball.clone()).await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    assert_eq!(
        body["data"]["publish"],
        json!({"version": "0.1.0", "sha256": sha, "yanked": false, "package": {"name": "graph-pkg"}})
    );

    // The same bytes come back from the REST download.
    assert_eq!(download(&app, "graph-pkg", "0.1.0").await, tarball);

    let again = gql_publish(&app, &token, tarball).await;
    assert_eq!(again["errors"][0]["extensions"]["code"], "CONFLICT", "{again}");

    let hostile = gql_publish(&app, &token, tarballs::targz(&[tarballs::file("../evil", "x")])).await;
    assert_eq!(hostile["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{hostile}");
    assert_eq!(hostile["errors"][0]["extensions"]["field"], "tarball");

    let anon = gql_publish(&app, "", tarballs::package("anon-pkg", "0.1.0")).await;
    assert!(anon["errors"].is_array(), "{anon}");
    assert_eq!(app.state.storage.list_keys().await.unwrap().len(), 1, "refusals left no blob");

    let y = app
        .gql("mutation { yank(name: \"graph-pkg\", version: \"0.1.0\", reason: \"broken\") { yanked yankReason yankedAt } }", json!({}), Some(&token))
        .await;
    assert_eq!(y["data"]["yank"]["yanked"], true, "{y}");
    assert_eq!(y["data"]["yank"]["yankReason"], "broken");
    let u = app
        .gql(
            "mutation { unyank(name: \"graph-pkg\", version: \"0.1.0\") { yanked yankedAt } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(u["data"]["unyank"], json!({"yanked": false, "yankedAt": null}));

    register(&app, "hank").await;
    let add = app
        .gql("mutation { addOwner(package: \"graph-pkg\", username: \"hank\", role: MAINTAINER) { role user { username } } }", json!({}), Some(&token))
        .await;
    assert_eq!(add["data"]["addOwner"], json!({"role": "maintainer", "user": {"username": "hank"}}), "{add}");
    let last = app
        .gql("mutation { removeOwner(package: \"graph-pkg\", username: \"gwen\") { name } }", json!({}), Some(&token))
        .await;
    assert_eq!(last["errors"][0]["extensions"]["code"], "CONFLICT", "the last owner stays: {last}");
    let rm = app
        .gql("mutation { removeOwner(package: \"graph-pkg\", username: \"hank\") { name owners { user { username } } } }", json!({}), Some(&token))
        .await;
    assert_eq!(rm["data"]["removeOwner"]["owners"], json!([{"user": {"username": "gwen"}}]), "{rm}");
}

#[tokio::test]
async fn mutations_are_refused_over_get() {
    let app = common::spawn().await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { login(email: \"a@b.co\", password: \"xxxxxxxx\") { token } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
}

/// The statements one GraphQL request runs, read from the app's statement counter.
async fn statements_of(app: &TestApp, query: &str) -> (u64, Value) {
    let before = app.state.db_statements.load(Ordering::SeqCst);
    let body = app.gql(query, json!({}), None).await;
    let after = app.state.db_statements.load(Ordering::SeqCst);
    (after - before, body)
}

#[tokio::test]
async fn a_page_costs_a_constant_number_of_statements() {
    // The catalog generation is trusted until this instance writes (as a lone instance may), so
    // the counts below do not depend on timing.
    let app = common::spawn_with(|c| c.generation_max_age_ms = 60_000).await;
    let token = register(&app, "nina").await;
    let mut published = 0;
    for i in 0..50 {
        let manifest = tarballs::manifest_with(
            &format!("pkg-{i:02}"),
            "1.0.0",
            "description = \"a package\"\nkeywords = [\"demo\"]",
            if i > 0 { "base-00 = \"^1\"" } else { "" },
        );
        let manifest = manifest.replace("base-00", "pkg-00");
        let body = gql_publish(&app, &token, tarballs::package_from_manifest(&manifest)).await;
        assert_eq!(body["errors"], Value::Null, "{body}");
        published += 1;
    }
    assert_eq!(published, 50);
    // Let the (empty) download flusher settle; it runs no statement when nothing is pending.
    let page = |n: usize| {
        format!(
            "{{ search(query: \"package\", first: {n}) {{ totalCount nodes {{ name keywords owners {{ role user {{ username }} }} \
             latestVersion {{ version }} downloads {{ total lastMonth }} }} }} }}"
        )
    };
    // The first search after the publishes also catches the search index up (once per catalog
    // change, whatever the page size): that is not what is measured here.
    let (_, warm) = statements_of(&app, &page(1)).await;
    assert_eq!(warm["errors"], Value::Null, "{warm}");
    let (small, body5) = statements_of(&app, &page(5)).await;
    assert_eq!(body5["errors"], Value::Null, "{body5}");
    assert_eq!(body5["data"]["search"]["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(body5["data"]["search"]["totalCount"], 50);
    let (large, body50) = statements_of(&app, &page(50)).await;
    assert_eq!(body50["data"]["search"]["nodes"].as_array().unwrap().len(), 50);
    assert_eq!(body50["data"]["search"]["nodes"][7]["owners"][0]["user"]["username"], "nina");
    eprintln!("statements: first 5 -> {small}, first 50 -> {large}");
    assert_eq!(small, large, "the statement count does not grow with the page");
    // Latest versions (read by the numbers the search index knows: one statement), owners with
    // their users, daily downloads. The search index holds the page's packages, and the
    // generation was read by the first search after the publishes.
    assert_eq!(large, 3, "a page costs 3 statements, took {large}");
    // The same page again comes from the caches: only the daily downloads (which depend on the
    // day) are read.
    let (cached, again) = statements_of(&app, &page(50)).await;
    assert_eq!(again, body50);
    assert_eq!(cached, 1, "a cached page costs 1 statement, took {cached}");
}

/// The batch queries behind the loaders have a few SQL shapes, not one per batch size: each
/// shape is a prepared statement in every pooled connection's cache (see `service::inlist`).
/// Every lookup is asked for 1..=20 real keys and must answer for each of them.
#[tokio::test]
async fn batch_queries_have_few_shapes_whatever_the_batch_size() {
    use raven_registry::service::read::batch;
    use raven_registry::service::versions;
    use std::collections::{HashMap, HashSet};
    use std::sync::{Arc, Mutex};

    let app = common::spawn().await;
    let token = register(&app, "shape").await;
    let mut names = Vec::new();
    for i in 0..20 {
        let name = format!("shape-{i:02}");
        common::api::publish_package(&app, &token, &name, "1.0.0").await;
        names.push(name);
    }
    let seen: Arc<Mutex<HashMap<String, HashSet<String>>>> = Arc::default();
    let mut db = app.state.db.clone();
    let current = Arc::new(Mutex::new(String::new()));
    {
        let (seen, current) = (seen.clone(), current.clone());
        db.set_metric_callback(move |info| {
            let lookup = current.lock().unwrap().clone();
            seen.lock().unwrap().entry(lookup).or_default().insert(info.statement.sql.clone());
        });
    }
    let set = |lookup: &str| *current.lock().unwrap() = lookup.to_owned();
    let packages = batch::packages_by_name(&db, &names).await.unwrap();
    let package_ids: Vec<_> = names.iter().map(|n| packages[n].id).collect();
    let user_id = batch::owners_of(&db, &package_ids[..1]).await.unwrap()[&package_ids[0]][0].user.id;
    seen.lock().unwrap().clear();
    for n in 1..=20 {
        let (names, ids) = (&names[..n], &package_ids[..n]);
        set("packages_by_name");
        assert_eq!(batch::packages_by_name(&db, names).await.unwrap().len(), n);
        set("packages_by_id");
        assert_eq!(batch::packages_by_id(&db, ids).await.unwrap().len(), n);
        set("users_by_id");
        assert_eq!(batch::users_by_id(&db, &[user_id]).await.unwrap().len(), 1);
        set("versions_of");
        let versions_of = batch::versions_of(&db, ids).await.unwrap();
        assert!(ids.iter().all(|id| versions_of[id].len() == 1), "one version each");
        let version_ids: Vec<_> = ids.iter().map(|id| versions_of[id][0].id).collect();
        set("readmes");
        assert_eq!(batch::readmes(&db, &version_ids).await.unwrap().len(), n);
        set("dependencies_of");
        assert_eq!(batch::dependencies_of(&db, &version_ids).await.unwrap().len(), n);
        set("owners_of");
        let owners = batch::owners_of(&db, ids).await.unwrap();
        assert!(ids.iter().all(|id| owners[id].len() == 1), "one owner each, not one per padded key");
        let year_ago = chrono::Utc::now().date_naive() - chrono::Duration::days(364);
        set("daily_downloads");
        assert_eq!(batch::daily_downloads(&db, ids, year_ago).await.unwrap().len(), n);
        set("version_daily_downloads");
        assert_eq!(batch::version_daily_downloads(&db, &version_ids, year_ago).await.unwrap().len(), n);
        set("latest_for_packages");
        let latest = versions::latest_for_packages(&db, ids).await.unwrap();
        assert_eq!(latest.len(), n);
        assert!(
            ids.iter().all(|id| latest[id].package_id == *id),
            "the one latest version each, not one per padded key"
        );
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10, "every lookup ran: {:?}", seen.keys());
    for (lookup, shapes) in seen.iter() {
        // 1..=20 keys pad to 1, 2, 4, 8, 16 or 32 keys, in each statement of the lookup (the
        // latest versions take two: the numbers, then the chosen rows).
        let statements = if lookup == "latest_for_packages" { 2 } else { 1 };
        assert!(shapes.len() <= 6 * statements, "{lookup} ran {} SQL shapes for 20 batch sizes", shapes.len());
    }
}

// ---- Document limits (issue 15): refused before validation or execution, with rate limits on ----

/// Posts a document; returns the status, the body and the statements the server ran meanwhile.
async fn post_document(app: &TestApp, query: &str) -> (u16, Value, u64) {
    let before = app.state.db_statements.load(Ordering::SeqCst);
    let res = app.client.post(app.url("/graphql")).json(&json!({ "query": query })).send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body, app.state.db_statements.load(Ordering::SeqCst) - before)
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn fragment_fan_out_and_alias_floods_are_refused_before_anything_runs() {
    let app = common::spawn_with(|c| c.rate_limits_enabled = true).await;

    // 2^30 __typename fields (0 complexity each): refused on the expanded count.
    let (status, body, statements) = post_document(&app, &fan_out(30, "__typename")).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("2000 fields"), "{body}");
    assert_eq!(statements, 0, "no resolver ran");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");

    // 2^24 counted leaves: the same refusal, not the complexity visitor's seconds of work.
    let (status, body, statements) = post_document(&app, &fan_out(24, "stats { totalPackages }")).await;
    assert_eq!((status, code(&body), statements), (400, "QUERY_TOO_COMPLEX", 0), "{body}");

    // Aliases count, __typename counts: 2,000 pass, 2,001 do not.
    let (status, body, _) = post_document(&app, &aliases(2_000, "__typename")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["a1999"], "Query", "{body}");
    let (status, body, _) = post_document(&app, &aliases(2_001, "__typename")).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");

    // A document over GRAPHQL_MAX_DOCUMENT_BYTES is refused on its size, before it is parsed.
    let big = format!("{{ __typename }} # {}", "x".repeat(70_000));
    let (status, body, _) = post_document(&app, &big).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_LARGE"), "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("GRAPHQL_MAX_DOCUMENT_BYTES"), "{body}");

    // Nesting deep enough to threaten the parser's stack is refused on the text.
    let deep = format!("{}{}", "{ a ".repeat(5_000), "}".repeat(5_000));
    let (status, body, _) = post_document(&app, &deep).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");

    // The same limits hold over GET.
    let res = app.client.get(app.url("/graphql")).query(&[("query", fan_out(30, "__typename"))]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(code(&res.json::<Value>().await.unwrap()), "QUERY_TOO_COMPLEX");

    // The refusals are counted as such, apart from executed operations.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("raven_graphql_refused_total{reason=\"too_complex\"}"), "{metrics}");
}

#[tokio::test]
async fn json_bodies_past_the_graphql_body_limit_are_refused_unread() {
    let app = common::spawn_with(|c| c.graphql_max_body_bytes = 4096).await;
    let query = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(5_000)) }).to_string();
    // Declared length...
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(query.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("GRAPHQL_MAX_BODY_BYTES"), "{body}");
    // ...and a chunked body of unknown length.
    let chunks = futures::stream::iter(
        query.into_bytes().chunks(1000).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(code(&res.json::<Value>().await.unwrap()), "PAYLOAD_TOO_LARGE");
    // Within the limit, the same document runs.
    assert_eq!(app.gql("{ __typename }", json!({}), None).await["data"]["__typename"], "Query");
}

#[tokio::test]
async fn repeated_mistakes_do_not_amplify_the_answer() {
    let app = common::spawn_with(|c| c.graphql_max_document_bytes = 1 << 20).await;
    // 10,000 duplicate directives: one refusal, not 9,999 validation errors.
    let (status, body, _) =
        post_document(&app, &format!("{{ __typename {} }}", "@skip(if: false) ".repeat(10_000))).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    // 5,000 duplicate arguments: validation reports a bounded number of errors.
    let args = (0..5_000).map(|_| "name: \"a\"").collect::<Vec<_>>().join(", ");
    let (_, body, statements) = post_document(&app, &format!("{{ package({args}) {{ name }} }}")).await;
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() <= 20, "{} errors", errors.len());
    assert!(errors.last().unwrap()["message"].as_str().unwrap().contains("more errors omitted"), "{body}");
    assert_eq!(statements, 0);
}

#[tokio::test]
async fn a_multipart_request_without_a_token_needs_a_preflight_header() {
    let app = common::spawn().await;
    let form = || {
        reqwest::multipart::Form::new()
            .text(
                "operations",
                json!({"query": "mutation { register(input: {username: \"csrf\", email: \"c@example.com\", password: \"correct horse\"}) { token } }"}).to_string(),
            )
            .text("map", "{}")
    };
    // A cross-site form post (no token, no preflight-only header) is refused before it runs.
    let res = app.client.post(app.url("/graphql")).multipart(form()).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("Apollo-Require-Preflight"), "{body}");
    assert_eq!(
        app.gql("{ user(username: \"csrf\") { username } }", json!({}), None).await["data"]["user"],
        Value::Null
    );

    // A browser may send the header only after a preflight, which allows it.
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", "https://frontend.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "apollo-require-preflight,x-apollo-operation-name,content-type")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let allowed = res.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("apollo-require-preflight") && allowed.contains("x-apollo-operation-name"), "{allowed}");

    for header in ["apollo-require-preflight", "x-apollo-operation-name"] {
        let res = app.client.post(app.url("/graphql")).header(header, "true").multipart(form()).send().await.unwrap();
        let body: Value = res.json().await.unwrap();
        assert_ne!(code(&body), "BAD_REQUEST", "{header}: {body}");
    }
}

#[tokio::test]
async fn multipart_requests_are_bounded_part_by_part() {
    let app = common::spawn_with(|c| c.graphql_max_body_bytes = 4096).await;
    let token = register(&app, "mallory").await;
    let publish =
        json!({"query": "mutation($t: Upload!) { publish(tarball: $t) { version } }", "variables": {"t": null}});
    let file = || reqwest::multipart::Part::bytes(tarballs::package("parts", "1.0.0")).file_name("p.tar.gz");
    let send = |form: reqwest::multipart::Form| {
        app.client.post(app.url("/graphql")).bearer_auth(&token).multipart(form).send()
    };
    let refused = |status: u16, needle: &'static str| {
        move |res: reqwest::Response| async move {
            assert_eq!(res.status(), status);
            let body: Value = res.json().await.unwrap();
            let message = body["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
            assert!(message.contains(needle), "{needle}: {body}");
        }
    };

    // `operations` larger than GRAPHQL_MAX_BODY_BYTES: 413 while reading it, not after holding 50 MiB.
    let padded = json!({"query": format!("{} # {}", publish["query"].as_str().unwrap(), "x".repeat(8_000)), "variables": {"t": null}});
    let form = reqwest::multipart::Form::new()
        .text("operations", padded.to_string())
        .text("map", json!({"0": ["variables.t"]}).to_string())
        .part("0", file());
    refused(413, "operations")(send(form).await.unwrap()).await;

    // One file at one path: a map listing the file 1,000 times would duplicate its descriptor as
    // often (and a map over 64 KiB is refused on its size).
    let paths: Vec<String> = (0..1_000).map(|_| "variables.t".to_owned()).collect();
    let form = reqwest::multipart::Form::new()
        .text("operations", publish.to_string())
        .text("map", json!({ "0": paths }).to_string())
        .part("0", file());
    refused(400, "one file, at one path")(send(form).await.unwrap()).await;

    // A repeated part does not replace the first one.
    let form = reqwest::multipart::Form::new()
        .text("operations", publish.to_string())
        .text("operations", json!({"query": "{ __typename }"}).to_string())
        .text("map", json!({"0": ["variables.t"]}).to_string())
        .part("0", file());
    refused(400, "more than once")(send(form).await.unwrap()).await;

    // A second file.
    let form = reqwest::multipart::Form::new()
        .text("operations", publish.to_string())
        .text("map", json!({"0": ["variables.t"]}).to_string())
        .part("0", file())
        .part("1", file());
    refused(400, "one file")(send(form).await.unwrap()).await;

    assert_eq!(app.gql("{ package(name: \"parts\") { name } }", json!({}), None).await["data"]["package"], Value::Null);
    assert!(common::api::keys_of(&app, "parts").await.is_empty(), "no blob stored");

    // The well-formed request still publishes.
    let body = gql_publish(&app, &token, tarballs::package("parts", "1.0.0")).await;
    assert_eq!(body["data"]["publish"]["version"], "1.0.0", "{body}");
}
