//! Keywords: the `keyword` filter of `search` and `packages` (exact totals, stable pages, an empty
//! query listing a keyword, unknown keywords), and the `keywords` list (counts of packages, most
//! used first, prefix filter, pages), both following publishes that drop a keyword.
use crate::testkit as common;

use common::api::*;
use common::tarballs;
use common::TestApp;
use serde_json::{json, Value};

async fn publish_kw(app: &TestApp, token: &str, name: &str, version: &str, keywords: &[&str], description: &str) {
    let list = keywords.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
    let extra = format!("description = \"{description}\"\nkeywords = [{list}]");
    let manifest = tarballs::manifest_with(name, version, &extra, "");
    publish_ok(app, token, name, version, tarballs::package_from_manifest(&manifest)).await;
}

fn ok(res: &Value) -> &Value {
    assert!(res.get("errors").is_none(), "unexpected errors: {res}");
    &res["data"]
}

fn names(connection: &Value) -> Vec<String> {
    connection["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_owned()).collect()
}

/// A connection field `field(args)` with `totalCount`, `pageInfo` and node names.
async fn list(app: &TestApp, field: &str, args: &str) -> Value {
    let q = format!(
        "{{ {field}({args}) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage endCursor }} nodes {{ name }} }} }}"
    );
    ok(&app.gql(&q, json!({}), None).await)[field].clone()
}

/// Every page of `field(args)`, `first` at a time: the names in order, and each page's totalCount.
async fn all_pages(app: &TestApp, field: &str, args: &str, first: u32) -> (Vec<String>, Vec<u64>) {
    let (mut seen, mut totals, mut after) = (Vec::new(), Vec::new(), None::<String>);
    for _ in 0..50 {
        let cursor = after.as_ref().map(|c| format!(", after: \"{c}\"")).unwrap_or_default();
        let page = list(app, field, &format!("{args}, first: {first}{cursor}")).await;
        seen.extend(names(&page));
        totals.push(page["totalCount"].as_u64().unwrap());
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return (seen, totals);
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    panic!("{field}({args}) never ended");
}

async fn error_of(app: &TestApp, q: &str) -> Value {
    let res = app.gql(q, json!({}), None).await;
    assert!(res["data"].is_null() || res["errors"].is_array(), "{res}");
    res["errors"][0]["extensions"].clone()
}

#[tokio::test]
async fn search_and_packages_filter_by_keyword_with_exact_totals_and_stable_pages() {
    let app = common::spawn().await;
    let t = register(&app, "kwuser").await;
    publish_kw(&app, &t, "web-a", "1.0.0", &["web", "http"], "a server").await;
    publish_kw(&app, &t, "web-b", "1.0.0", &["WEB"], "a server").await;
    publish_kw(&app, &t, "web-c", "1.0.0", &["web"], "a client").await;
    publish_kw(&app, &t, "other-server", "1.0.0", &["cli"], "a server").await;
    // A fully yanked package is listed nowhere, keyword or not.
    publish_kw(&app, &t, "web-gone", "1.0.0", &["web"], "a server").await;
    yank_ok(&app, &t, "web-gone", "1.0.0").await;
    for (name, n) in [("web-c", 2), ("web-a", 1)] {
        for _ in 0..n {
            download(&app, name, "1.0.0").await;
        }
    }
    raven_registry::service::fetch::flush_counts(&app.state).await.expect("flush");

    // Browsing: the keyword is normalised as stored ("Web" is "web"); pages are stable and exact.
    assert_eq!(list(&app, "packages", "first: 100").await["totalCount"], 4);
    let (seen, totals) = all_pages(&app, "packages", "keyword: \"Web\"", 2).await;
    assert_eq!(seen, ["web-c", "web-a", "web-b"], "downloads order");
    assert_eq!(totals, [3, 3]);
    let (seen, _) = all_pages(&app, "packages", "keyword: \"web\", sort: NAME", 1).await;
    assert_eq!(seen, ["web-a", "web-b", "web-c"]);
    let (seen, totals) = all_pages(&app, "packages", "keyword: \"http\"", 5).await;
    assert_eq!((seen, totals), (vec!["web-a".to_owned()], vec![1]));

    // Search by relevance (the index) and by another order (SQL) narrowed to the keyword.
    assert_eq!(list(&app, "search", "query: \"server\"").await["totalCount"], 3);
    let (seen, totals) = all_pages(&app, "search", "query: \"server\", keyword: \"web\"", 1).await;
    assert_eq!(seen, ["web-a", "web-b"], "relevance ties by downloads");
    assert_eq!(totals, [2, 2]);
    let (seen, totals) = all_pages(&app, "search", "query: \"server\", keyword: \"web\", sort: NAME", 1).await;
    assert_eq!((seen, totals), (vec!["web-a".to_owned(), "web-b".to_owned()], vec![2, 2]));
    let (seen, _) = all_pages(&app, "search", "query: \"server\", keyword: \"cli\", sort: DOWNLOADS", 5).await;
    assert_eq!(seen, ["other-server"]);

    // An empty query with a keyword lists the keyword: RELEVANCE falls back to downloads.
    let (seen, totals) = all_pages(&app, "search", "query: \"\", keyword: \"web\"", 2).await;
    assert_eq!((seen, totals), (vec!["web-c".into(), "web-a".into(), "web-b".into()], vec![3, 3]));
    let (seen, _) = all_pages(&app, "search", "query: \"  \", keyword: \"web\", sort: NAME", 2).await;
    assert_eq!(seen, ["web-a", "web-b", "web-c"]);
    assert_eq!(list(&app, "search", "query: \"\"").await["totalCount"], 0, "no query, no keyword: nothing");

    // Unknown keywords find nothing; malformed ones are refused, naming the argument.
    for args in ["query: \"server\", keyword: \"nope\"", "query: \"\", keyword: \"nope\""] {
        let page = list(&app, "search", args).await;
        assert_eq!((&page["totalCount"], &page["nodes"]), (&json!(0), &json!([])), "{args}");
    }
    assert_eq!(list(&app, "packages", "keyword: \"nope\"").await["totalCount"], 0);
    for q in [
        "{ packages(keyword: \"a b\") { totalCount } }",
        "{ search(query: \"x\", keyword: \"\") { totalCount } }",
        "{ search(query: \"x\", keyword: \"waytoolongforakeyword1\") { totalCount } }",
    ] {
        let e = error_of(&app, q).await;
        assert_eq!((&e["code"], &e["field"]), (&json!("BAD_USER_INPUT"), &json!("keyword")), "{q}: {e}");
    }

    // A new version that drops the keyword takes the package out of the filtered lists at once.
    publish_kw(&app, &t, "web-a", "1.1.0", &["http"], "a server").await;
    let (seen, totals) = all_pages(&app, "search", "query: \"server\", keyword: \"web\"", 5).await;
    assert_eq!((seen, totals), (vec!["web-b".to_owned()], vec![1]));
    let (seen, totals) = all_pages(&app, "packages", "keyword: \"web\"", 5).await;
    assert_eq!((seen, totals), (vec!["web-c".to_owned(), "web-b".to_owned()], vec![2]));
    // REST search is unchanged: no keyword filter, the same JSON.
    let rest = get_ok(&app, "/api/v1/search?q=server").await;
    assert_eq!(rest["total"], 3, "{rest}");
    let web_a = rest["results"].as_array().unwrap().iter().find(|r| r["name"] == "web-a").cloned();
    assert_eq!(web_a.map(|r| r["keywords"].clone()), Some(json!(["http"])), "{rest}");
}

#[tokio::test]
async fn keywords_list_counts_packages_most_used_first_with_prefix_and_pages() {
    let app = common::spawn().await;
    let t = register(&app, "kwlister").await;
    publish_kw(&app, &t, "p-one", "1.0.0", &["web", "http"], "one").await;
    publish_kw(&app, &t, "p-two", "1.0.0", &["web", "http"], "two").await;
    publish_kw(&app, &t, "p-three", "1.0.0", &["web", "cli", "myxkw"], "three").await;
    publish_kw(&app, &t, "p-four", "1.0.0", &["wasm", "my_kw"], "four").await;
    // Versions are not packages: a second version with the same keywords counts once.
    publish_kw(&app, &t, "p-two", "1.1.0", &["web", "http"], "two").await;
    // A fully yanked package counts nowhere.
    publish_kw(&app, &t, "p-gone", "1.0.0", &["web", "gone"], "gone").await;
    yank_ok(&app, &t, "p-gone", "1.0.0").await;

    let q = "{ keywords(first: 100) { totalCount nodes { name packageCount } } }";
    let all = ok(&app.gql(q, json!({}), None).await)["keywords"].clone();
    assert_eq!(all["totalCount"], 6, "{all}");
    assert_eq!(
        all["nodes"],
        json!([
            {"name": "web", "packageCount": 3},
            {"name": "http", "packageCount": 2},
            {"name": "cli", "packageCount": 1},
            {"name": "my_kw", "packageCount": 1},
            {"name": "myxkw", "packageCount": 1},
            {"name": "wasm", "packageCount": 1},
        ]),
        "most used first, ties by name"
    );
    // A keyword's count is what filtering by it finds.
    assert_eq!(list(&app, "packages", "keyword: \"web\"").await["totalCount"], 3);

    let (seen, totals) = all_pages(&app, "keywords", "query: \"\"", 4).await;
    assert_eq!(seen, ["web", "http", "cli", "my_kw", "myxkw", "wasm"]);
    assert_eq!(totals, [6, 6]);
    // The prefix is case-insensitive, and `_` in it is a character, not a wildcard.
    let (seen, totals) = all_pages(&app, "keywords", "query: \"W\"", 1).await;
    assert_eq!((seen, totals), (vec!["web".to_owned(), "wasm".to_owned()], vec![2, 2]));
    let (seen, _) = all_pages(&app, "keywords", "query: \"my_\"", 10).await;
    assert_eq!(seen, ["my_kw"]);
    let none = list(&app, "keywords", "query: \"zzz\"").await;
    assert_eq!((&none["totalCount"], &none["nodes"]), (&json!(0), &json!([])));
    // Past the last page: no nodes, the total still exact.
    let cursor = list(&app, "keywords", "first: 6").await["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let past = list(&app, "keywords", &format!("first: 3, after: \"{cursor}\"")).await;
    assert_eq!((&past["totalCount"], &past["nodes"]), (&json!(6), &json!([])));

    // Bounds and malformed prefixes are refused, naming the argument.
    for (q, field) in [
        ("{ keywords(first: 0) { totalCount } }", "first"),
        ("{ keywords(first: 101) { totalCount } }", "first"),
        ("{ keywords(query: \"a b\") { totalCount } }", "query"),
        ("{ keywords(query: \"%\") { totalCount } }", "query"),
    ] {
        let e = error_of(&app, q).await;
        assert_eq!((&e["code"], &e["field"]), (&json!("BAD_USER_INPUT"), &json!(field)), "{q}: {e}");
    }

    // New versions that drop keywords change the counts (the list is cached per catalog
    // generation, which every publish raises).
    publish_kw(&app, &t, "p-one", "1.1.0", &["http"], "one").await;
    publish_kw(&app, &t, "p-three", "2.0.0", &[], "three").await;
    let all = ok(&app.gql(q, json!({}), None).await)["keywords"].clone();
    assert_eq!(
        all,
        json!({"totalCount": 4, "nodes": [
            {"name": "http", "packageCount": 2},
            {"name": "my_kw", "packageCount": 1},
            {"name": "wasm", "packageCount": 1},
            {"name": "web", "packageCount": 1},
        ]})
    );
}
