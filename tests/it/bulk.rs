//! The bulk publish path (`service::bulk`, what `seed` loads through): the rows and blobs of a
//! batch are those of single publishes, a re-run adds nothing, and a batch refused or failing at
//! any step leaves no row and no blob.
use raven_registry::auth::{Scopes, Viewer};
use raven_registry::config::SeedArgs;
use raven_registry::domain::Username;
use raven_registry::error::AppError;
use raven_registry::service::bulk::{publish_many, BulkItem};
use raven_registry::service::packages::Role;
use raven_registry::service::publish::Tarball;
use raven_registry::state::AppState;
use reqwest::StatusCode;
use serde_json::Value;

use crate::testkit as common;
use common::api::*;
use common::tarballs;

/// The viewer a login token of `username` (registered with the test password) acts as.
async fn viewer(state: &AppState, username: &str) -> Viewer {
    let s = raven_registry::service::accounts::login(state, &format!("{username}@example.com"), PASSWORD)
        .await
        .unwrap_or_else(|e| panic!("login {username}: {e}"));
    Viewer { user_id: s.user.id, token_id: s.token.row.id, token_name: "login".into(), scopes: Scopes::all() }
}

fn item(viewer: &Viewer, bytes: Vec<u8>) -> BulkItem {
    BulkItem { viewer: viewer.clone(), tarball: Tarball::Bytes(bytes.into()), owners: Vec::new() }
}

async fn status_of(app: &common::TestApp, path: &str) -> StatusCode {
    get(app, path).await.status()
}

async fn owners_of(app: &common::TestApp, name: &str) -> Vec<(String, String)> {
    let body = get_ok(app, &format!("/api/v1/packages/{name}/owners")).await;
    let mut out: Vec<(String, String)> = body["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["username"].as_str().unwrap().to_owned(), o["role"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_batch_writes_what_single_publishes_write_and_counts_one_generation() {
    let app = common::spawn().await;
    register(&app, "alice").await;
    register(&app, "bob").await;
    let alice = viewer(&app.state, "alice").await;
    let mut with_owner = item(&alice, tarballs::package("bulk-one", "1.0.0"));
    with_owner.owners = vec![(Username::parse("bob").unwrap(), Role::Maintainer)];
    let manifest = tarballs::manifest_with("bulk-two", "0.3.0", "", "bulk-old = \"^1\"");
    let token = register(&app, "carol").await;
    publish_package(&app, &token, "bulk-old", "1.0.0").await;
    let carol = viewer(&app.state, "carol").await;
    let items = vec![with_owner, item(&carol, tarballs::package_from_manifest(&manifest))];
    let before = raven_registry::service::generation::current(&app.state.db).await.unwrap();
    let published = publish_many(&app.state, items, 2).await.expect("the batch publishes");
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].package.name, "bulk-one", "results keep the items' order");
    assert_eq!(published[1].version.num, "0.3.0");

    // One transaction, one raise of the generation for the whole batch.
    let after = raven_registry::service::generation::current(&app.state.db).await.unwrap();
    assert_eq!(after, before + 1, "a batch raises the generation once");

    let one = get_ok(&app, "/api/v1/packages/bulk-one").await;
    assert_eq!(one["latest_version"], "1.0.0");
    assert_eq!(one["owner"]["username"], "alice", "{one}");
    assert_eq!(
        owners_of(&app, "bulk-one").await,
        vec![("alice".into(), "owner".into()), ("bob".into(), "maintainer".into())]
    );
    let two = get_ok(&app, "/api/v1/packages/bulk-two/0.3.0").await;
    assert_eq!(two["dependencies"]["bulk-old"], "^1", "{two}");
    // The blob is served and is the uploaded bytes.
    assert_eq!(download(&app, "bulk-one", "1.0.0").await, tarballs::package("bulk-one", "1.0.0"));
    // Search sees the batch at once on this instance.
    let found = get_ok(&app, "/api/v1/search?q=bulk-two").await;
    assert_eq!(found["results"][0]["name"], "bulk-two", "{found}");
}

#[tokio::test]
async fn a_refused_item_refuses_the_whole_batch_and_leaves_nothing() {
    let app = common::spawn().await;
    register(&app, "alice").await;
    let alice = viewer(&app.state, "alice").await;
    let unknown_dependency = tarballs::manifest_with("bulk-bad", "1.0.0", "", "no-such-thing = \"^1\"");
    let items = vec![
        item(&alice, tarballs::package("bulk-good", "1.0.0")),
        item(&alice, tarballs::package_from_manifest(&unknown_dependency)),
    ];
    let err = publish_many(&app.state, items, 2).await.err().expect("the batch is refused");
    assert!(err.to_string().contains("no-such-thing"), "the refusal names the problem: {err}");
    for name in ["bulk-good", "bulk-bad"] {
        assert_eq!(status_of(&app, &format!("/api/v1/packages/{name}")).await, StatusCode::NOT_FOUND);
        assert!(keys_of(&app, name).await.is_empty(), "no blob of {name}");
    }

    // The same package twice in one batch is refused before anything is stored.
    let twice = vec![
        item(&alice, tarballs::package("bulk-twice", "1.0.0")),
        item(&alice, tarballs::package("bulk-twice", "1.0.1")),
    ];
    let err = publish_many(&app.state, twice, 2).await.err().expect("a package twice is refused");
    assert!(matches!(err, AppError::BadRequest(ref m) if m.contains("bulk-twice")), "{err:?}");
    assert_eq!(status_of(&app, "/api/v1/packages/bulk-twice").await, StatusCode::NOT_FOUND);
    assert!(keys_of(&app, "bulk-twice").await.is_empty());
}

#[tokio::test]
async fn a_batch_failing_inside_its_transaction_rolls_back_and_removes_its_blobs() {
    let app = common::spawn().await;
    let owner = register(&app, "alice").await;
    register(&app, "bob").await;
    register(&app, "carol").await;
    publish_package(&app, &owner, "bulk-shared", "1.0.0").await;
    assert_eq!(add_owner(&app, &owner, "bulk-shared", "bob", "maintainer").await.status(), StatusCode::OK);
    let bob = viewer(&app.state, "bob").await;
    // Bob may publish bulk-shared 1.1.0 (every check before the write passes) but not give carol a
    // role on it: that is refused inside the transaction, after the batch's blobs are stored.
    let mut adds_owner = item(&bob, tarballs::package("bulk-shared", "1.1.0"));
    adds_owner.owners = vec![(Username::parse("carol").unwrap(), Role::Maintainer)];
    let items = vec![item(&bob, tarballs::package("bulk-fresh", "1.0.0")), adds_owner];
    let err = publish_many(&app.state, items, 2).await.err().expect("the batch fails");
    assert!(matches!(err.inner(), AppError::Forbidden(_)), "{err:?}");

    assert_eq!(status_of(&app, "/api/v1/packages/bulk-fresh").await, StatusCode::NOT_FOUND);
    assert!(keys_of(&app, "bulk-fresh").await.is_empty(), "the new package's blob is removed");
    let shared = get_ok(&app, "/api/v1/packages/bulk-shared").await;
    assert_eq!(shared["versions"], serde_json::json!(["1.0.0"]), "{shared}");
    assert_eq!(keys_of(&app, "bulk-shared").await.len(), 1, "only 1.0.0's blob remains");
    assert_eq!(owners_of(&app, "bulk-shared").await.len(), 2, "carol was not added");
}

#[tokio::test]
async fn seed_loads_the_plan_through_batches_and_a_rerun_adds_nothing() {
    let app = common::spawn().await;
    let args = SeedArgs { packages: 60, versions: 2, jobs: 4 };
    raven_registry::seed::run(&app.state, &args).await.expect("seed");
    let plan = raven_registry::seed::plan(60);
    let stats: Value = get_ok(&app, "/api/v1/stats").await;
    assert_eq!(stats["total_packages"], 60, "{stats}");
    assert_eq!(stats["total_versions"], 120, "{stats}");
    // Dependencies were published before their dependents, and maintainers were added.
    let with_maintainer = plan.iter().find(|p| p.maintainer.is_some()).expect("the plan has a maintainer");
    let m = raven_registry::seed::USERS[with_maintainer.maintainer.unwrap()].0;
    assert!(owners_of(&app, &with_maintainer.name).await.contains(&(m.to_owned(), "maintainer".to_owned())));
    let dependent = plan.iter().find(|p| !p.dependencies.is_empty()).expect("the plan has dependencies");
    let v = get_ok(&app, &format!("/api/v1/packages/{}/{}", dependent.name, dependent.version(1))).await;
    assert_eq!(v["dependencies"].as_object().unwrap().len(), dependent.dependencies.len(), "{v}");

    let generation = raven_registry::service::generation::current(&app.state.db).await.unwrap();
    raven_registry::seed::run(&app.state, &args).await.expect("seed again");
    let again = get_ok(&app, "/api/v1/stats").await;
    assert_eq!(again["total_versions"], 120);
    // Users sign in again (no write to the catalogue); no batch ran.
    assert_eq!(raven_registry::service::generation::current(&app.state.db).await.unwrap(), generation);
}
