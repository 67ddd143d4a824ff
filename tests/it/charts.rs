//! Download charts over GraphQL: a package's `daily(days:)` and a version's `dailyDownloads(days:)`,
//! up to a year, oldest first with empty days as 0, bounded arguments, and one statement for a
//! page's charts.
use crate::testkit as common;

use std::sync::atomic::Ordering;

use chrono::{Duration, NaiveDate, Utc};
use common::api::{download, publish_package, register};
use common::TestApp;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};

/// The id of `name`'s version `version`, read from the database.
async fn version_id(app: &TestApp, name: &str, version: &str) -> uuid::Uuid {
    let package = entity::packages::Entity::find()
        .filter(entity::packages::Column::Name.eq(name))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    entity::versions::Entity::find()
        .filter(entity::versions::Column::PackageId.eq(package.id))
        .filter(entity::versions::Column::Num.eq(version))
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Writes a past day's count as the download flusher would have on that day. History cannot be
/// made through the API (the counter records today only), so it is written as a row.
async fn history(app: &TestApp, version: uuid::Uuid, days_ago: i64, count: i64) {
    let day = Utc::now().date_naive() - Duration::days(days_ago);
    entity::version_downloads::ActiveModel { version_id: Set(version), day: Set(day), count: Set(count) }
        .insert(&app.state.db)
        .await
        .unwrap();
}

fn days_ago(n: i64) -> String {
    (Utc::now().date_naive() - Duration::days(n)).to_string()
}

/// The chart as (day, count) pairs with a count, and its length.
fn nonzero(chart: &Value) -> (usize, Vec<(String, i64)>) {
    let days = chart.as_array().unwrap_or_else(|| panic!("a chart: {chart}"));
    let mut previous: Option<NaiveDate> = None;
    for d in days {
        let day: NaiveDate = d["day"].as_str().unwrap().parse().unwrap();
        assert!(previous.is_none_or(|p| p + Duration::days(1) == day), "consecutive days, oldest first: {chart}");
        previous = Some(day);
    }
    assert_eq!(previous.map(|d| d.to_string()), Some(days_ago(0)), "the chart ends today: {chart}");
    let counted = days
        .iter()
        .filter(|d| d["count"].as_i64().unwrap() != 0)
        .map(|d| (d["day"].as_str().unwrap().to_owned(), d["count"].as_i64().unwrap()))
        .collect();
    (days.len(), counted)
}

#[tokio::test]
async fn package_and_version_charts_reach_back_a_year() {
    let app = common::spawn().await;
    let token = register(&app, "chartist").await;
    publish_package(&app, &token, "charted", "1.0.0").await;
    publish_package(&app, &token, "charted", "1.1.0").await;
    let (old, new) = (version_id(&app, "charted", "1.0.0").await, version_id(&app, "charted", "1.1.0").await);
    history(&app, old, 364, 5).await;
    history(&app, old, 365, 100).await; // a year and a day ago: outside every chart
    history(&app, old, 200, 3).await;
    history(&app, new, 200, 2).await;
    history(&app, new, 1, 4).await;
    // Today's download goes through the real path: served, counted, flushed.
    download(&app, "charted", "1.1.0").await;
    app.state.downloads.flush(&app.state.db, &app.state.generation).await.expect("flush");

    let q = r#"{ package(name: "charted") {
        downloads { total lastWeek lastMonth year: daily(days: 365) { day count } two: daily(days: 2) { day count } }
        versions(first: 10) { nodes { version dailyDownloads(days: 365) { day count } month: dailyDownloads { day count } } }
    } }"#;
    let body = app.gql(q, json!({}), None).await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    let p = &body["data"]["package"];
    assert_eq!(p["downloads"]["lastWeek"], 5, "yesterday's 4 and today's 1: {p}");
    assert_eq!(p["downloads"]["lastMonth"], 5);
    let (len, counted) = nonzero(&p["downloads"]["year"]);
    assert_eq!(len, 365);
    assert_eq!(
        counted,
        [(days_ago(364), 5), (days_ago(200), 5), (days_ago(1), 4), (days_ago(0), 1)],
        "summed over the versions"
    );
    assert_eq!(nonzero(&p["downloads"]["two"]), (2, vec![(days_ago(1), 4), (days_ago(0), 1)]));

    let versions = p["versions"]["nodes"].as_array().unwrap();
    assert_eq!(versions[0]["version"], "1.1.0");
    assert_eq!(
        nonzero(&versions[0]["dailyDownloads"]),
        (365, vec![(days_ago(200), 2), (days_ago(1), 4), (days_ago(0), 1)])
    );
    assert_eq!(nonzero(&versions[0]["month"]), (30, vec![(days_ago(1), 4), (days_ago(0), 1)]), "30 days by default");
    assert_eq!(versions[1]["version"], "1.0.0");
    assert_eq!(nonzero(&versions[1]["dailyDownloads"]), (365, vec![(days_ago(364), 5), (days_ago(200), 3)]));
    assert_eq!(nonzero(&versions[1]["month"]), (30, vec![]));

    // The same chart from the `version` query, which does not go through a page.
    let one = app
        .gql(
            r#"{ version(name: "charted", version: "1.0.0") { dailyDownloads(days: 365) { day count } } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(nonzero(&one["data"]["version"]["dailyDownloads"]).1, [(days_ago(364), 5), (days_ago(200), 3)], "{one}");
}

#[tokio::test]
async fn chart_lengths_outside_one_to_365_days_are_bad_input() {
    let app = common::spawn().await;
    let token = register(&app, "bounds").await;
    publish_package(&app, &token, "bounded", "1.0.0").await;
    for days in [0, -1, 366, 100_000] {
        for q in [
            format!(r#"{{ package(name: "bounded") {{ downloads {{ daily(days: {days}) {{ count }} }} }} }}"#),
            format!(
                r#"{{ package(name: "bounded") {{ versions {{ nodes {{ dailyDownloads(days: {days}) {{ count }} }} }} }} }}"#
            ),
            format!(
                r#"{{ version(name: "bounded", version: "1.0.0") {{ dailyDownloads(days: {days}) {{ count }} }} }}"#
            ),
        ] {
            let body = app.gql(&q, json!({}), None).await;
            let error = &body["errors"][0];
            assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{q}: {body}");
            assert_eq!(error["extensions"]["field"], "days", "{q}: {body}");
            assert!(error["message"].as_str().unwrap().contains("days must be between 1 and 365"), "{q}: {body}");
        }
    }
    // The bounds themselves are accepted.
    let body = app
        .gql(r#"{ package(name: "bounded") { downloads { a: daily(days: 1) { count } b: daily(days: 365) { count } } } }"#, json!({}), None)
        .await;
    assert_eq!(body["errors"], Value::Null, "{body}");
    assert_eq!(body["data"]["package"]["downloads"]["b"].as_array().unwrap().len(), 365);
}

/// The statements one GraphQL request runs, read from the app's statement counter.
async fn statements_of(app: &TestApp, query: &str) -> (u64, Value) {
    let before = app.state.db_statements.load(Ordering::SeqCst);
    let body = app.gql(query, json!({}), None).await;
    let after = app.state.db_statements.load(Ordering::SeqCst);
    assert_eq!(body["errors"], Value::Null, "{body}");
    (after - before, body)
}

#[tokio::test]
async fn a_page_of_charts_costs_one_statement_whatever_its_size() {
    // The catalog generation is trusted until this instance writes, so the counts below do not
    // depend on timing.
    let app = common::spawn_with(|c| c.generation_max_age_ms = 60_000).await;
    let token = register(&app, "pager").await;
    for minor in 0..12 {
        publish_package(&app, &token, "many-versions", &format!("1.{minor}.0")).await;
    }
    for i in 0..12 {
        publish_package(&app, &token, &format!("paged-{i:02}"), "1.0.0").await;
    }
    let newest = version_id(&app, "many-versions", "1.11.0").await;
    history(&app, newest, 300, 7).await;

    // A page of versions, each with two charts of different lengths.
    let versions = |n: usize| {
        format!(
            r#"{{ package(name: "many-versions") {{ versions(first: {n}) {{ nodes {{ version
               dailyDownloads(days: 365) {{ count }} week: dailyDownloads(days: 7) {{ count }} }} }} }} }}"#
        )
    };
    statements_of(&app, &versions(1)).await; // caches the package and its versions
    let (small, _) = statements_of(&app, &versions(2)).await;
    let (large, body) = statements_of(&app, &versions(12)).await;
    let nodes = body["data"]["package"]["versions"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 12);
    assert_eq!(nodes[0]["dailyDownloads"][64]["count"], 7, "300 days ago is index 64 of 365: {}", nodes[0]);
    assert_eq!((small, large), (1, 1), "the charts of a page of versions are one statement");

    // A page of packages, each with the totals of a week and a month and two charts.
    let packages = |n: usize| {
        format!(
            r#"{{ packages(first: {n}, sort: NAME) {{ nodes {{ name downloads {{ lastWeek lastMonth
               daily(days: 365) {{ count }} d90: daily(days: 90) {{ count }} }} }} }} }}"#
        )
    };
    statements_of(&app, &packages(1)).await; // caches the browse page's generation
    let (small, _) = statements_of(&app, &packages(2)).await;
    let (large, body) = statements_of(&app, &packages(13)).await;
    assert_eq!(body["data"]["packages"]["nodes"].as_array().unwrap().len(), 13);
    assert_eq!(small, large, "the statement count does not grow with the page");
}
