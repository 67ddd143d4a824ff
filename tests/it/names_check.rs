//! `nameCheck` and the NAME_CONFUSABLE refusal of a new package whose name could be mistaken for
//! an existing one (folded separators, case and look-alikes; one edit from a popular package).
use crate::testkit as common;

use common::api::{expect_error, publish, publish_package, register};
use common::tarballs::package;
use common::TestApp;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

const CHECK: &str = "query($n: String!) { nameCheck(name: $n) { available valid reasons similar { name } } }";

async fn name_check(app: &TestApp, name: &str, token: Option<&str>) -> Value {
    let res = app.gql(CHECK, json!({"n": name}), token).await;
    assert_eq!(res["errors"], Value::Null, "{res}");
    res["data"]["nameCheck"].clone()
}

fn similar(check: &Value) -> Vec<String> {
    check["similar"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn name_check_reports_taken_reserved_invalid_and_folded_names() {
    let app = common::spawn().await;
    let token = register(&app, "nina").await;
    publish_package(&app, &token, "my-pkg", "1.0.0").await;
    publish_package(&app, &token, "modem", "1.0.0").await;

    let free = name_check(&app, "fresh-name", None).await;
    assert_eq!(free, json!({"available": true, "valid": true, "reasons": [], "similar": []}));

    let taken = name_check(&app, "my-pkg", None).await;
    assert_eq!((taken["available"].clone(), taken["valid"].clone()), (json!(false), json!(true)), "{taken}");
    assert!(taken["reasons"][0].as_str().unwrap().contains("already exists"), "{taken}");

    let reserved = name_check(&app, "std", None).await;
    assert_eq!((reserved["available"].clone(), reserved["valid"].clone()), (json!(false), json!(false)));
    assert!(reserved["reasons"][0].as_str().unwrap().contains("reserved"), "{reserved}");

    let invalid = name_check(&app, "9lives", None).await;
    assert_eq!(invalid["valid"], false);
    assert!(invalid["reasons"][0].as_str().unwrap().contains("must start with"), "{invalid}");

    // Folded separators and case: `mypkg` and `My_Pkg` are `my-pkg`.
    for input in ["mypkg", "My_Pkg", "my.pkg"] {
        let c = name_check(&app, input, None).await;
        assert_eq!(c["available"], false, "{input}: {c}");
        assert_eq!(similar(&c), ["my-pkg"], "{input}: {c}");
    }
    // Look-alikes: `rn` reads as `m`, `0` as `o`.
    for input in ["rnodem", "rnodern"] {
        let c = name_check(&app, input, None).await;
        assert_eq!(similar(&c), ["modem"], "{input}: {c}");
    }
    let c = name_check(&app, "m0dem", None).await;
    assert_eq!((c["available"].clone(), similar(&c)), (json!(false), vec!["modem".to_owned()]), "{c}");

    // Their owner may take a confusable name: it lists the package but is available to her.
    let mine = name_check(&app, "mypkg", Some(&token)).await;
    assert_eq!((mine["available"].clone(), similar(&mine)), (json!(true), vec!["my-pkg".to_owned()]), "{mine}");

    // One edit away from a package with few downloads is not confusable under the default threshold.
    let c = name_check(&app, "my-pkgs", None).await;
    assert_eq!(c, json!({"available": true, "valid": true, "reasons": [], "similar": []}));
}

#[tokio::test]
async fn one_edit_from_a_popular_package_is_confusable() {
    // Every package counts as popular from 0 downloads.
    let app = common::spawn_with(|c| c.name_confusable_min_downloads = 0).await;
    let token = register(&app, "pop").await;
    publish_package(&app, &token, "requests", "1.0.0").await;
    for typo in ["reqests", "requestz", "request", "xrequests"] {
        let c = name_check(&app, typo, None).await;
        assert_eq!((c["available"].clone(), similar(&c)), (json!(false), vec!["requests".to_owned()]), "{typo}: {c}");
    }
    let c = name_check(&app, "reqest", None).await;
    assert_eq!(c["available"], true, "two edits away: {c}");
}

#[tokio::test]
async fn a_typosquat_publish_is_refused_and_the_owner_is_exempt() {
    let app = common::spawn().await;
    let owner = register(&app, "olive").await;
    let squatter = register(&app, "sam").await;
    publish_package(&app, &owner, "http-client", "1.0.0").await;
    let before = counts(&app).await;

    let res = publish(&app, &squatter, "httpclient", "1.0.0", package("httpclient", "1.0.0")).await;
    let body = expect_error(res, 400, "invalid_request").await;
    assert_eq!(body["details"]["field"], "name", "{body}");
    let problems = body["details"]["problems"].as_array().unwrap();
    assert_eq!(problems[0]["code"], "NAME_CONFUSABLE", "{body}");
    assert!(problems[0]["message"].as_str().unwrap().contains("http-client"), "{body}");
    assert_eq!(counts(&app).await, before, "a refused publish stored something");

    // nameCheck tells the squatter the same.
    let c = name_check(&app, "httpclient", Some(&squatter)).await;
    assert_eq!((c["available"].clone(), similar(&c)), (json!(false), vec!["http-client".to_owned()]), "{c}");

    // The owner of http-client may publish the confusable name.
    let res = publish(&app, &owner, "httpclient", "1.0.0", package("httpclient", "1.0.0")).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// Package rows and blobs.
async fn counts(app: &TestApp) -> (u64, usize) {
    let packages = entity::packages::Entity::find().count(&app.state.db).await.unwrap();
    (packages, app.state.storage.list_keys().await.unwrap().len())
}
