//! GraphQL-specific behaviour: multipart publish, yank and owners through mutations, the transport's
//! refusal of mutations over GET, and the DataLoader guarantee that a page costs a constant number
//! of SQL statements whatever its size.
mod common;

use std::sync::atomic::Ordering;

use common::api::{download, register, sha256_hex};
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
    let app = common::spawn().await;
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
    let (small, body5) = statements_of(&app, &page(5)).await;
    assert_eq!(body5["errors"], Value::Null, "{body5}");
    assert_eq!(body5["data"]["search"]["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(body5["data"]["search"]["totalCount"], 50);
    let (large, body50) = statements_of(&app, &page(50)).await;
    assert_eq!(body50["data"]["search"]["nodes"].as_array().unwrap().len(), 50);
    assert_eq!(body50["data"]["search"]["nodes"][7]["owners"][0]["user"]["username"], "nina");
    eprintln!("statements: first 5 -> {small}, first 50 -> {large}");
    assert_eq!(small, large, "the statement count does not grow with the page");
    // The catalog generation, the search (page and total in one), versions, owners with their
    // users, daily downloads.
    assert_eq!(large, 5, "a page costs 5 statements, took {large}");
    // The same page again comes from the caches: only the generation and the daily downloads
    // (which depend on the day) are read.
    let (cached, again) = statements_of(&app, &page(50)).await;
    assert_eq!(again, body50);
    assert_eq!(cached, 2, "a cached page costs 2 statements, took {cached}");
}

/// The batch queries behind the loaders have a few SQL shapes, not one per batch size: each
/// shape is a prepared statement in every pooled connection's cache (see `service::inlist`).
/// Every lookup is asked for 1..=20 real keys and must answer for each of them.
#[tokio::test]
async fn batch_queries_have_few_shapes_whatever_the_batch_size() {
    use raven_registry::service::{batch, versions};
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
        set("daily_downloads");
        assert_eq!(batch::daily_downloads(&db, ids).await.unwrap().len(), n);
        set("latest_for_packages");
        assert_eq!(versions::latest_for_packages(&db, ids).await.unwrap().len(), n);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 9, "every lookup ran: {:?}", seen.keys());
    for (lookup, shapes) in seen.iter() {
        // 1..=20 keys pad to 1, 2, 4, 8, 16 or 32 keys.
        assert!(shapes.len() <= 6, "{lookup} ran {} SQL shapes for 20 batch sizes", shapes.len());
    }
}
