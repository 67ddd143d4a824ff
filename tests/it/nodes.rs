//! Global object identification (issue 17): Package, Version and User implement `Node` with
//! opaque ids that `node` and `nodes` resolve; every type, field, argument and enum value of the
//! schema carries a description for the people who read it in GraphiQL.
use crate::testkit as common;

use common::api::{publish_ok, register};
use common::tarballs::package;
use serde_json::{json, Value};

fn errors_code(res: &Value) -> &str {
    res["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("an error: {res}"))
}

#[tokio::test]
async fn node_and_nodes_resolve_the_ids_that_objects_carry() {
    let app = common::spawn().await;
    let ada = register(&app, "ada").await;
    publish_ok(&app, &ada, "node-kit", "1.2.0", package("node-kit", "1.2.0")).await;

    let ids = app
        .gql(
            r#"{ package(name: "node-kit") { id name latestVersion { id version } owners { user { id username } } }
                 me { id username } }"#,
            json!({}),
            Some(&ada),
        )
        .await;
    let pkg = &ids["data"]["package"];
    let (package_id, version_id) = (pkg["id"].as_str().unwrap(), pkg["latestVersion"]["id"].as_str().unwrap());
    let user_id = pkg["owners"][0]["user"]["id"].as_str().unwrap();
    // Viewer and User name one person with one id; ids are opaque, not the database's UUIDs.
    assert_eq!(ids["data"]["me"]["id"].as_str().unwrap(), user_id, "{ids}");
    for id in [package_id, version_id, user_id] {
        assert!(uuid::Uuid::parse_str(id).is_err(), "{id} is opaque");
    }
    assert_eq!([package_id, version_id, user_id].iter().collect::<std::collections::HashSet<_>>().len(), 3);

    let doc = r#"query($id: ID!) { node(id: $id) { __typename id
        ... on Package { name } ... on Version { version } ... on User { username } } }"#;
    for (id, typename, field, value) in [
        (package_id, "Package", "name", "node-kit"),
        (version_id, "Version", "version", "1.2.0"),
        (user_id, "User", "username", "ada"),
    ] {
        let res = app.gql(doc, json!({"id": id}), None).await;
        let node = &res["data"]["node"];
        assert_eq!(node["__typename"], typename, "{res}");
        assert_eq!(node["id"], id, "{res}");
        assert_eq!(node[field], value, "{res}");
    }

    // A well-formed id of nothing is null; an id that is not ours is BAD_USER_INPUT.
    let gone =
        raven_registry::graphql::node::encode(raven_registry::graphql::node::Kind::Package, uuid::Uuid::new_v4());
    let res = app.gql(doc, json!({"id": gone.as_str()}), None).await;
    assert_eq!(res["data"]["node"], Value::Null, "{res}");
    for bad in ["not-an-id", "", "UGFja2FnZTpub3QtYS11dWlk", &"A".repeat(10_000)] {
        let res = app.gql(doc, json!({"id": bad}), None).await;
        assert_eq!(errors_code(&res), "BAD_USER_INPUT", "{bad}: {res}");
    }

    // `nodes` keeps the order asked, with null where nothing is found; each type asked is one
    // statement, however many ids of it there are.
    let before = app.state.db_statements.load(std::sync::atomic::Ordering::SeqCst);
    let res = app
        .gql(
            r#"query($ids: [ID!]!) { nodes(ids: $ids) { id __typename } }"#,
            json!({"ids": [user_id, gone.as_str(), version_id, package_id]}),
            None,
        )
        .await;
    let nodes = res["data"]["nodes"].as_array().unwrap_or_else(|| panic!("{res}"));
    let got: Vec<Value> = nodes.iter().map(|n| n["__typename"].clone()).collect();
    assert_eq!(got, vec![json!("User"), Value::Null, json!("Version"), json!("Package")], "{res}");
    assert_eq!(nodes[0]["id"], user_id);
    let statements = app.state.db_statements.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(statements <= 3, "three kinds of id, {statements} statements");
}

#[tokio::test]
async fn nodes_refuses_more_than_a_page_of_ids() {
    let app = common::spawn().await;
    let id = raven_registry::graphql::node::encode(raven_registry::graphql::node::Kind::User, uuid::Uuid::new_v4());
    let ids = vec![id.as_str(); 101];
    let res = app.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": ids}), None).await;
    assert_eq!(errors_code(&res), "BAD_USER_INPUT", "{res}");
    assert!(res["errors"][0]["message"].as_str().unwrap().contains("100"), "{res}");
    let res = app.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({"ids": &ids[..100]}), None).await;
    assert_eq!(res["data"]["nodes"].as_array().map(Vec::len), Some(100), "{res}");
}

const INTROSPECTION: &str = r#"{ __schema { types { name kind description
    fields(includeDeprecated: true) { name description args { name description } }
    inputFields { name description }
    enumValues(includeDeprecated: true) { name description } } } }"#;

fn undocumented(v: &Value) -> bool {
    v["description"].as_str().is_none_or(|d| d.trim().is_empty())
}

/// Walks the introspection result (as GraphiQL's docs pane does) and names everything without a
/// description; GraphQL's own `__` types are the only ones not ours.
#[tokio::test]
async fn every_type_field_argument_and_enum_value_is_described() {
    let app = common::spawn().await;
    let res = app.gql(INTROSPECTION, json!({}), None).await;
    let types = res["data"]["__schema"]["types"].as_array().unwrap_or_else(|| panic!("{res}"));
    assert!(types.len() > 30, "the whole schema: {res}");
    let mut missing = Vec::new();
    for t in types.iter().filter(|t| !t["name"].as_str().unwrap().starts_with("__")) {
        let name = t["name"].as_str().unwrap();
        if undocumented(t) {
            missing.push(format!("type {name}"));
        }
        for f in t["fields"].as_array().into_iter().flatten().chain(t["inputFields"].as_array().into_iter().flatten()) {
            let field = f["name"].as_str().unwrap();
            if undocumented(f) {
                missing.push(format!("{name}.{field}"));
            }
            for a in f["args"].as_array().into_iter().flatten().filter(|a| undocumented(a)) {
                missing.push(format!("{name}.{field}({})", a["name"].as_str().unwrap()));
            }
        }
        for e in t["enumValues"].as_array().into_iter().flatten().filter(|e| undocumented(e)) {
            missing.push(format!("{name}.{}", e["name"].as_str().unwrap()));
        }
    }
    assert!(missing.is_empty(), "{} without a description:\n{}", missing.len(), missing.join("\n"));
}
