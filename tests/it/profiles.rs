//! Public profiles: GET /users/{username} lists the packages a user owns or maintains, by name,
//! each with its highest non-yanked version and its downloads; GraphQL `User.packages` and
//! `Viewer.packages` page through the same list.
use crate::testkit as common;

use common::api::{add_owner, download, get_json, publish_ok, register};
use common::tarballs::package;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_profile_lists_owned_and_maintained_packages_with_their_latest_versions() {
    let app = common::spawn().await;
    let ada = register(&app, "ada").await;
    let bob = register(&app, "bob").await;
    publish_ok(&app, &ada, "zeta-lib", "1.0.0", package("zeta-lib", "1.0.0")).await;
    publish_ok(&app, &ada, "zeta-lib", "1.10.0", package("zeta-lib", "1.10.0")).await;
    publish_ok(&app, &ada, "zeta-lib", "1.9.0", package("zeta-lib", "1.9.0")).await;
    publish_ok(&app, &ada, "alpha-kit", "0.1.0", package("alpha-kit", "0.1.0")).await;
    publish_ok(&app, &bob, "bobs-own", "2.0.0", package("bobs-own", "2.0.0")).await;
    // Bob makes Ada a maintainer of his package; she lists it too.
    let res = add_owner(&app, &bob, "bobs-own", "ada", "maintainer").await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    // Yanking the highest version leaves 1.9.0 as the latest (SemVer order, not text order).
    let res = app.client.delete(app.url("/api/v1/packages/zeta-lib/1.10.0")).bearer_auth(&ada).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    download(&app, "zeta-lib", "1.9.0").await;
    download(&app, "zeta-lib", "1.0.0").await;
    download(&app, "bobs-own", "2.0.0").await;
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush download counts");

    let (status, profile) = get_json(&app, "/api/v1/users/ada", None).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(
        profile["packages"],
        json!([
            {"name": "alpha-kit", "version": "0.1.0", "downloads": 0},
            {"name": "bobs-own", "version": "2.0.0", "downloads": 1},
            {"name": "zeta-lib", "version": "1.9.0", "downloads": 2},
        ]),
        "{profile}"
    );
    assert_eq!(profile["total_downloads"], json!(3));
    let (_, bobs) = get_json(&app, "/api/v1/users/bob", None).await;
    assert_eq!(bobs["packages"], json!([{"name": "bobs-own", "version": "2.0.0", "downloads": 1}]), "{bobs}");
    let (status, _) = get_json(&app, "/api/v1/users/nobody", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---- GraphQL: User.packages and Viewer.packages (issue 17) ----

/// The names of a connection's nodes.
fn names(connection: &serde_json::Value) -> Vec<String> {
    let nodes = connection["nodes"].as_array().unwrap_or_else(|| panic!("a connection: {connection}"));
    nodes.iter().map(|n| n["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn graphql_user_and_viewer_packages_page_through_owned_and_maintained_packages() {
    let app = common::spawn().await;
    let ada = register(&app, "ada").await;
    let bob = register(&app, "bob").await;
    register(&app, "cyd").await;
    for v in ["1.0.0", "1.10.0", "1.9.0"] {
        publish_ok(&app, &ada, "zeta-lib", v, package("zeta-lib", v)).await;
    }
    publish_ok(&app, &ada, "alpha-kit", "0.1.0", package("alpha-kit", "0.1.0")).await;
    publish_ok(&app, &ada, "gone-pkg", "1.0.0", package("gone-pkg", "1.0.0")).await;
    publish_ok(&app, &bob, "bobs-own", "2.0.0", package("bobs-own", "2.0.0")).await;
    publish_ok(&app, &bob, "bob-only", "1.0.0", package("bob-only", "1.0.0")).await;
    let res = add_owner(&app, &bob, "bobs-own", "ada", "maintainer").await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    // Every version of gone-pkg yanked: it leaves browsing, not its owner's list.
    let res = app.client.delete(app.url("/api/v1/packages/gone-pkg/1.0.0")).bearer_auth(&ada).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    download(&app, "zeta-lib", "1.9.0").await;
    download(&app, "zeta-lib", "1.0.0").await;
    download(&app, "bobs-own", "2.0.0").await;
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush download counts");

    let q = r#"query($user: String!, $after: String, $sort: PackageSort! = DOWNLOADS) {
        user(username: $user) { packages(first: 2, after: $after, sort: $sort) {
            totalCount pageInfo { hasNextPage endCursor }
            nodes { name latestVersion { version } downloads { total } owners { role user { username } } }
        } } }"#;
    // By downloads (the default), ties by name.
    let first = app.gql(q, json!({"user": "ada"}), None).await;
    let page1 = &first["data"]["user"]["packages"];
    assert_eq!(names(page1), ["zeta-lib", "bobs-own"], "{first}");
    assert_eq!(page1["totalCount"], 4);
    assert_eq!(page1["pageInfo"]["hasNextPage"], true);
    assert_eq!(page1["nodes"][0]["latestVersion"]["version"], "1.10.0", "SemVer order, not text order");
    assert_eq!(page1["nodes"][0]["downloads"]["total"], 2);
    assert_eq!(
        page1["nodes"][1]["owners"],
        json!([{"role": "owner", "user": {"username": "bob"}}, {"role": "maintainer", "user": {"username": "ada"}}])
    );
    let second = app.gql(q, json!({"user": "ada", "after": page1["pageInfo"]["endCursor"]}), None).await;
    let page2 = &second["data"]["user"]["packages"];
    assert_eq!(names(page2), ["alpha-kit", "gone-pkg"], "{second}");
    assert_eq!(page2["pageInfo"]["hasNextPage"], false);
    assert_eq!(page2["nodes"][1]["latestVersion"], serde_json::Value::Null, "every version is yanked");
    assert_eq!(page2["totalCount"], 4);
    // Past the end: no nodes, the count still known.
    let past = app.gql(q, json!({"user": "ada", "after": page2["pageInfo"]["endCursor"]}), None).await;
    assert_eq!(past["data"]["user"]["packages"]["nodes"], json!([]), "{past}");
    assert_eq!(past["data"]["user"]["packages"]["totalCount"], 4);

    let by_name = app.gql(q, json!({"user": "ada", "sort": "NAME"}), None).await;
    assert_eq!(names(&by_name["data"]["user"]["packages"]), ["alpha-kit", "bobs-own"], "{by_name}");
    let newest = app.gql(q, json!({"user": "bob", "sort": "NEWEST"}), None).await;
    assert_eq!(names(&newest["data"]["user"]["packages"]), ["bob-only", "bobs-own"], "{newest}");
    let recent = app.gql(q, json!({"user": "ada", "sort": "RECENT_DOWNLOADS"}), None).await;
    assert_eq!(names(&recent["data"]["user"]["packages"]), ["zeta-lib", "bobs-own"], "{recent}");
    let none = app.gql(q, json!({"user": "cyd"}), None).await;
    assert_eq!(
        none["data"]["user"]["packages"],
        json!({"totalCount": 0, "pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": []})
    );

    // "My packages": the same list for the signed-in user; null when anonymous.
    let mine = "{ me { username packages(first: 10, sort: NAME) { totalCount nodes { name } } } }";
    let me = app.gql(mine, json!({}), Some(&ada)).await;
    assert_eq!(names(&me["data"]["me"]["packages"]), ["alpha-kit", "bobs-own", "gone-pkg", "zeta-lib"], "{me}");
    let me = app.gql(mine, json!({}), Some(&bob)).await;
    assert_eq!(names(&me["data"]["me"]["packages"]), ["bob-only", "bobs-own"], "{me}");
    assert_eq!(app.gql(mine, json!({}), None).await["data"]["me"], serde_json::Value::Null);

    // Bad page arguments name themselves.
    for (args, field) in [("first: 0", "first"), ("first: 101", "first"), ("after: \"garbage\"", "after")] {
        for doc in [
            format!("{{ user(username: \"ada\") {{ packages({args}) {{ totalCount }} }} }}"),
            format!("{{ me {{ packages({args}) {{ totalCount }} }} }}"),
        ] {
            let body = app.gql(&doc, json!({}), Some(&ada)).await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{doc}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{doc}: {body}");
        }
    }
}

#[tokio::test]
async fn a_page_of_user_packages_costs_a_constant_number_of_statements() {
    use std::sync::atomic::Ordering;
    // The catalog generation is trusted until this instance writes, so the counts below do not
    // depend on timing.
    let app = common::spawn_with(|c| c.generation_max_age_ms = 60_000).await;
    let token = register(&app, "prolific").await;
    for i in 0..12 {
        let name = format!("prolific-{i:02}");
        publish_ok(&app, &token, &name, "1.0.0", package(&name, "1.0.0")).await;
    }
    let statements = |n: usize| {
        let app = &app;
        async move {
            let q = format!(
                "{{ user(username: \"prolific\") {{ packages(first: {n}) {{ totalCount nodes {{ name \
                 latestVersion {{ version }} owners {{ role user {{ username }} }} downloads {{ total lastMonth }} }} }} }} }}"
            );
            let before = app.state.db_statements.load(Ordering::SeqCst);
            let body = app.gql(&q, json!({}), None).await;
            let after = app.state.db_statements.load(Ordering::SeqCst);
            assert_eq!(body["errors"], serde_json::Value::Null, "{body}");
            assert_eq!(body["data"]["user"]["packages"]["nodes"].as_array().unwrap().len(), n, "{body}");
            assert_eq!(body["data"]["user"]["packages"]["totalCount"], 12);
            after - before
        }
    };
    statements(1).await; // reads the generation the publishes moved
    let small = statements(2).await;
    let large = statements(12).await;
    assert_eq!(small, large, "the statement count does not grow with the page");
    // The user, the page (with its count), latest versions (the numbers of every version, then
    // the chosen rows), owners with their users, daily downloads.
    assert_eq!(large, 6, "a page costs 6 statements, took {large}");
}
