//! Public profiles: GET /users/{username} lists the packages a user owns or maintains, by name,
//! each with its highest non-yanked version and its downloads.
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
