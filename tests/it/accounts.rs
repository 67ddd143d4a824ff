//! Accounts and tokens through REST and GraphQL: registration rules, login, refresh, scoped API
//! tokens, revocation, and every kind of forged or stale token.
use crate::testkit as common;

use common::api::{create_token, register, register_with, rfc3339, PASSWORD};
use common::{spawn, TestApp};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

async fn get_me(app: &TestApp, token: &str) -> reqwest::Response {
    app.client.get(app.url("/api/v1/users/me")).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn register_login_refresh_over_rest() {
    let app = spawn().await;
    let reg = register_with(&app, "Alice", "Alice@Example.com", PASSWORD).await;
    assert_eq!(reg.body["username"], "alice", "usernames are stored lowercase");
    assert_eq!(reg.body["email"], "alice@example.com");
    assert!(reg.user_id.parse::<uuid::Uuid>().is_ok());
    rfc3339(&reg.body["created_at"]);
    rfc3339(&reg.body["expires_at"]);
    let token = reg.token.as_str();

    let me: Value = get_me(&app, token).await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["packages"], json!([]));
    assert_eq!(me["total_downloads"], json!(0));
    assert_eq!(me["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(me["tokens"][0]["name"], "login");

    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "ALICE@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let login: Value = res.json().await.unwrap();
    assert_eq!(login["user"]["username"], "alice");
    assert_eq!(login["user"]["user_id"], reg.body["user_id"]);
    assert_eq!(login["user"]["email"], "alice@example.com");
    rfc3339(&login["expires_at"]);
    let login_token = login["token"].as_str().unwrap().to_owned();

    let res = app.client.post(app.url("/api/v1/auth/refresh")).bearer_auth(&login_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    let new_token = refreshed["token"].as_str().unwrap();
    assert_ne!(new_token, login_token);
    assert_eq!(get_me(&app, new_token).await.status(), 200);
    assert_eq!(get_me(&app, &login_token).await.status(), 401, "a refreshed login token is rotated out");

    let public: Value = app.client.get(app.url("/api/v1/users/ALICE")).send().await.unwrap().json().await.unwrap();
    assert_eq!(public["username"], "alice");
    assert!(public.get("email").is_none(), "the public profile hides the email");
    rfc3339(&public["joined_at"]);
    let res = app.client.get(app.url("/api/v1/users/nobody")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn registration_rules_are_enforced() {
    let app = spawn().await;
    let cases = [
        (json!({"username": "1abc", "email": "a@example.com", "password": "longenough"}), "username"),
        (json!({"username": "a".repeat(33), "email": "a@example.com", "password": "longenough"}), "username"),
        (json!({"username": "bad name", "email": "a@example.com", "password": "longenough"}), "username"),
        (json!({"username": "ok", "email": "not-an-email", "password": "longenough"}), "email"),
        (json!({"username": "ok", "email": "a@example.com", "password": "short"}), "password"),
    ];
    for (body, field) in cases {
        let res = app.client.post(app.url("/api/v1/auth/register")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "invalid_request");
        assert_eq!(err["details"]["field"], field, "{err}");
    }
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request");

    register(&app, "bob").await;
    for body in [
        json!({"username": "BOB", "email": "other@example.com", "password": "longenough"}),
        json!({"username": "bobby", "email": "BOB@EXAMPLE.COM", "password": "longenough"}),
    ] {
        let res = app.client.post(app.url("/api/v1/auth/register")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 409, "{body}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "conflict");
    }
    let stats: Value = app.client.get(app.url("/api/v1/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["total_users"], json!(1), "refusals leave no rows");
}

#[tokio::test]
async fn huge_password_is_refused_fast_without_hashing() {
    let app = spawn().await;
    let big = "x".repeat(100 * 1024);
    let started = std::time::Instant::now();
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"username": "carol", "email": "c@example.com", "password": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["details"]["field"], "password");
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "c@example.com", "password": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Not a timing assertion on the server: just that neither request waited on a hash of 100 KB.
    eprintln!("two 100 KB-password requests took {:?}", started.elapsed());
}

#[tokio::test]
async fn unknown_email_and_wrong_password_answer_alike() {
    let app = spawn().await;
    register(&app, "dave").await;
    let mut bodies = Vec::new();
    for (email, pw) in [
        ("dave@example.com", "wrong password"),
        ("nobody@example.com", "wrong password"),
        ("garbage", "wrong password"),
    ] {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        bodies.push(res.json::<Value>().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    assert_eq!(bodies[0]["error"], "invalid_credentials");
}

fn forge(claims: Value, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn forged_expired_and_revoked_tokens_are_refused() {
    let app = spawn().await;
    let token = &register(&app, "erin").await;
    // Read the real claims back to forge variants of them.
    let claims = app.state.keys.verify(token).unwrap();
    let now = chrono::Utc::now().timestamp();
    let base = json!({"sub": claims.sub, "iat": now, "exp": now + 3600, "jti": claims.jti, "iss": "raven-registry", "aud": "raven-registry-api"});
    let secret = app.state.jwt_secret.to_vec();
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let alg_none = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.", e.encode(r#"{"alg":"none","typ":"JWT"}"#), e.encode(base.to_string()))
    };
    let hs512 = forge(base.clone(), &secret, jsonwebtoken::Algorithm::HS512);
    let bad = vec![
        ("other secret", forge(base.clone(), b"another-secret-another-secret-xx", jsonwebtoken::Algorithm::HS256)),
        ("alg none", alg_none),
        ("HS512", hs512),
        ("expired", forge(with("exp", json!(now - 120)), &secret, jsonwebtoken::Algorithm::HS256)),
        ("wrong iss", forge(with("iss", json!("evil")), &secret, jsonwebtoken::Algorithm::HS256)),
        ("wrong aud", forge(with("aud", json!("evil")), &secret, jsonwebtoken::Algorithm::HS256)),
        ("unknown jti", forge(with("jti", json!(uuid::Uuid::new_v4())), &secret, jsonwebtoken::Algorithm::HS256)),
        ("other sub", forge(with("sub", json!(uuid::Uuid::new_v4())), &secret, jsonwebtoken::Algorithm::HS256)),
        ("garbage", "garbage".to_owned()),
    ];
    // The correctly forged copy is accepted (it is, in effect, the same token): proves the forger is right.
    assert_eq!(get_me(&app, &forge(base.clone(), &secret, jsonwebtoken::Algorithm::HS256)).await.status(), 200);
    for (what, t) in bad {
        let res = get_me(&app, &t).await;
        assert_eq!(res.status(), 401, "{what}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "authentication_required", "{what}");
    }

    // Revocation is effective on the very next request.
    let created = create_token(&app, token, json!({"name": "ci", "expires_in_days": 30})).await;
    assert_eq!(created["name"], "ci");
    rfc3339(&created["created_at"]);
    let api_token = created["token"].as_str().unwrap();
    assert_eq!(get_me(&app, api_token).await.status(), 200);
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/users/me/tokens/{}", created["token_id"].as_str().unwrap())))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"token_id": created["token_id"], "revoked": true}));
    assert_eq!(get_me(&app, api_token).await.status(), 401);
}

#[tokio::test]
async fn api_token_rules() {
    let app = spawn().await;
    let token = &register(&app, "frank").await;
    for (body, field) in [
        (json!({"name": "x", "expires_in_days": 0}), "expires_in_days"),
        (json!({"name": "x", "expires_in_days": 366}), "expires_in_days"),
        (json!({"name": "", "expires_in_days": 5}), "name"),
        (json!({"name": "x", "expires_in_days": 5, "scopes": ["everything"]}), "scopes"),
        (json!({"name": "x", "expires_in_days": 5, "scopes": []}), "scopes"),
    ] {
        let res =
            app.client.post(app.url("/api/v1/users/me/tokens")).bearer_auth(token).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(res.json::<Value>().await.unwrap()["details"]["field"], field);
    }
    let res = app
        .client
        .post(app.url("/api/v1/users/me/tokens"))
        .json(&json!({"name": "x", "expires_in_days": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Someone else's token id is not found, and nothing is revoked.
    let other = register(&app, "grace").await;
    let other_claims = app.state.keys.verify(&other).unwrap();
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/users/me/tokens/{}", other_claims.jti)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(get_me(&app, &other).await.status(), 200);
}

#[tokio::test]
async fn accounts_over_graphql() {
    let app = spawn().await;
    let reg = app
        .gql(
            "mutation($i: RegisterInput!) { register(input: $i) { token expiresAt user { username email } } }",
            json!({"i": {"username": "heidi", "email": "heidi@example.com", "password": "hunter22hunter22"}}),
            None,
        )
        .await;
    assert_eq!(reg["errors"], Value::Null, "{reg}");
    assert_eq!(reg["data"]["register"]["user"]["username"], "heidi");
    let token = reg["data"]["register"]["token"].as_str().unwrap().to_owned();

    let dup = app
        .gql(
            "mutation($i: RegisterInput!) { register(input: $i) { token } }",
            json!({"i": {"username": "HEIDI", "email": "x@example.com", "password": "hunter22hunter22"}}),
            None,
        )
        .await;
    assert_eq!(dup["errors"][0]["extensions"]["code"], "CONFLICT", "{dup}");

    let bad = app
        .gql(
            "mutation($i: RegisterInput!) { register(input: $i) { token } }",
            json!({"i": {"username": "ivan", "email": "nope", "password": "hunter22hunter22"}}),
            None,
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "email");

    let anon = app.gql("{ me { username } }", json!({}), None).await;
    assert_eq!(anon["data"]["me"], Value::Null);
    assert_eq!(anon["errors"], Value::Null);

    let login = app
        .gql("mutation { login(email: \"heidi@example.com\", password: \"hunter22hunter22\") { token user { username } } }", json!({}), None)
        .await;
    assert_eq!(login["data"]["login"]["user"]["username"], "heidi");
    let wrong = app
        .gql("mutation { login(email: \"heidi@example.com\", password: \"wrongwrong\") { token } }", json!({}), None)
        .await;
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let created = app
        .gql(
            "mutation { createApiToken(input: {name: \"yank-only\", expiresInDays: 7, scopes: [YANK]}) { token apiToken { id name scopes } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(created["errors"], Value::Null, "{created}");
    assert_eq!(created["data"]["createApiToken"]["apiToken"]["scopes"], json!(["YANK"]));
    let narrow = created["data"]["createApiToken"]["token"].as_str().unwrap().to_owned();
    let id = created["data"]["createApiToken"]["apiToken"]["id"].as_str().unwrap().to_owned();

    let me = app.gql("{ me { username tokens { name } } }", json!({}), Some(&narrow)).await;
    assert_eq!(me["data"]["me"]["username"], "heidi");
    assert_eq!(me["data"]["me"]["tokens"].as_array().unwrap().len(), 3);

    let unauth = app.gql("mutation { refreshToken { token } }", json!({}), None).await;
    assert_eq!(unauth["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let invalid = app.gql("{ me { username } }", json!({}), Some("garbage")).await;
    assert_eq!(invalid["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let revoked = app
        .gql("mutation($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }", json!({"id": id}), Some(&token))
        .await;
    assert!(revoked["data"]["revokeApiToken"]["revokedAt"].is_string(), "{revoked}");
    let after = app.gql("{ me { username } }", json!({}), Some(&narrow)).await;
    assert_eq!(after["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let user = app
        .gql("{ user(username: \"HEIDI\") { username } nobody: user(username: \"zed\") { username } }", json!({}), None)
        .await;
    assert_eq!(user["data"]["user"]["username"], "heidi");
    assert_eq!(user["data"]["nobody"], Value::Null);
}

#[tokio::test]
async fn api_tokens_cannot_mint_or_manage_tokens() {
    let app = spawn().await;
    let login = &register(&app, "ivy").await;
    let create = |token: &str, body: Value| {
        app.client.post(app.url("/api/v1/users/me/tokens")).bearer_auth(token.to_owned()).json(&body).send()
    };
    let narrow =
        create_token(&app, login, json!({"name": "yank-only", "expires_in_days": 5, "scopes": ["yank"]})).await;
    let narrow_token = narrow["token"].as_str().unwrap();

    let res = create(login, json!({"name": "LOGIN", "expires_in_days": 5})).await.unwrap();
    assert_eq!(res.status(), 400, "the session token name is reserved");

    let res = create(narrow_token, json!({"name": "escalate", "expires_in_days": 365})).await.unwrap();
    assert_eq!(res.status(), 403, "an API token cannot mint tokens");
    let res = app.client.post(app.url("/api/v1/auth/refresh")).bearer_auth(narrow_token).send().await.unwrap();
    assert_eq!(res.status(), 403, "an API token cannot be refreshed into an all-scope token");
    let login_id = app.state.keys.verify(login).unwrap().jti;
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/users/me/tokens/{login_id}")))
        .bearer_auth(narrow_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "an API token cannot revoke the user's other tokens");
    assert_eq!(get_me(&app, login).await.status(), 200);
    let gql = app.gql("mutation { refreshToken { token } }", json!({}), Some(narrow_token)).await;
    assert_eq!(gql["errors"][0]["extensions"]["code"], "FORBIDDEN", "{gql}");

    // A token may always revoke itself.
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/users/me/tokens/{}", narrow["token_id"].as_str().unwrap())))
        .bearer_auth(narrow_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(get_me(&app, narrow_token).await.status(), 401);
}

/// Live API tokens of the user (login tokens aside), counted in the database.
async fn live_tokens(app: &TestApp, user_id: uuid::Uuid, login: bool) -> Vec<entity::api_tokens::Model> {
    use entity::api_tokens::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let rows = Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(chrono::Utc::now()))
        .order_by_asc(Column::CreatedAt)
        .all(&app.state.db)
        .await
        .unwrap();
    rows.into_iter().filter(|t| (t.name == "login") == login).collect()
}

/// Issue 15, item 5: 495 live API tokens and 20 creations at once made 504 (the cap is 500): the
/// count ran under READ COMMITTED without a lock. Several users race at once; each ends with
/// exactly 500, five creations win and the rest are refused with 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_token_creation_stops_at_the_cap() {
    use sea_orm::{EntityTrait, Set};
    const USERS: usize = 4;
    const CAP: usize = raven_registry::service::tokens::MAX_LIVE_TOKENS as usize;
    let app = spawn().await;
    let mut users = Vec::new();
    for u in 0..USERS {
        let reg = register_with(&app, &format!("capped{u}"), &format!("capped{u}@example.com"), PASSWORD).await;
        let user_id: uuid::Uuid = reg.user_id.parse().unwrap();
        let now = chrono::Utc::now();
        let rows = (0..CAP - 5).map(|i| entity::api_tokens::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            user_id: Set(user_id),
            name: Set(format!("bulk-{i}")),
            scopes: Set("yank".into()),
            created_at: Set(now),
            expires_at: Set(now + chrono::Duration::days(30)),
            last_used_at: Set(None),
            revoked_at: Set(None),
        });
        entity::api_tokens::Entity::insert_many(rows).exec(&app.state.db).await.unwrap();
        users.push((reg.token, user_id));
    }
    let app = &app;
    let creations = users.iter().flat_map(|(token, _)| {
        (0..20).map(move |i| {
            app.client
                .post(app.url("/api/v1/users/me/tokens"))
                .bearer_auth(token)
                .json(&json!({"name": format!("race-{i}"), "expires_in_days": 7}))
                .send()
        })
    });
    let answers: Vec<u16> =
        futures::future::join_all(creations).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    for (u, (_, user_id)) in users.iter().enumerate() {
        let mine = &answers[u * 20..(u + 1) * 20];
        assert!(mine.iter().all(|s| *s == 201 || *s == 409), "only created or refused: {mine:?}");
        assert_eq!(live_tokens(app, *user_id, false).await.len(), CAP, "user {u} ends at the cap: {mine:?}");
        assert_eq!(mine.iter().filter(|s| **s == 201).count(), 5, "exactly the room left is used: {mine:?}");
    }
}

/// Issue 15, item 6: login tokens are capped per user (MAX_LOGIN_TOKENS); a sign-in at the cap
/// revokes the oldest login token instead of being refused, also when sign-ins race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_tokens_are_capped_and_the_oldest_revoked() {
    const CAP: usize = 5;
    let app = common::spawn_with(|c| c.max_login_tokens = CAP as u32).await;
    let reg = register_with(&app, "session", "session@example.com", PASSWORD).await;
    let user_id: uuid::Uuid = reg.user_id.parse().unwrap();
    let login = || {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "session@example.com", "password": PASSWORD}))
            .send()
    };
    // One at a time: the registration's token and the first logins go first.
    let mut issued = vec![reg.token.clone()];
    for _ in 0..CAP + 2 {
        let body: Value = login().await.unwrap().json().await.unwrap();
        issued.push(body["token"].as_str().unwrap().to_owned());
    }
    let live = live_tokens(&app, user_id, true).await;
    assert_eq!(live.len(), CAP);
    for (i, token) in issued.iter().enumerate() {
        let expected = if i + CAP >= issued.len() { 200 } else { 401 };
        assert_eq!(get_me(&app, token).await.status(), expected, "token {i} of {}", issued.len());
    }
    // API tokens are not login tokens: neither counted nor revoked by sign-ins.
    let api = create_token(&app, issued.last().unwrap(), json!({"name": "ci", "expires_in_days": 7})).await;
    let api = api["token"].as_str().unwrap().to_owned();

    // Twenty at once.
    let answers = futures::future::join_all((0..20).map(|_| login())).await;
    assert!(answers.iter().all(|r| r.as_ref().unwrap().status() == 200));
    assert_eq!(live_tokens(&app, user_id, true).await.len(), CAP, "racing sign-ins stay within the cap");
    assert_eq!(get_me(&app, &api).await.status(), 200, "the API token survives");

    // A refresh at the cap revokes the presented token and keeps the cap.
    let newest = live_tokens(&app, user_id, true).await;
    let body: Value = login().await.unwrap().json().await.unwrap();
    let current = body["token"].as_str().unwrap().to_owned();
    let res = app.client.post(app.url("/api/v1/auth/refresh")).bearer_auth(&current).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let live = live_tokens(&app, user_id, true).await;
    assert_eq!(live.len(), CAP);
    assert_eq!(get_me(&app, &current).await.status(), 401, "the refreshed token is rotated out");
    // Of the five before, only the oldest went (to make room for the login); the refresh rotated the
    // login's own token out, so it needed no room.
    let survivors: Vec<uuid::Uuid> =
        newest.iter().map(|t| t.id).filter(|id| live.iter().any(|l| l.id == *id)).collect();
    assert_eq!(survivors, newest[1..].iter().map(|t| t.id).collect::<Vec<_>>());
}
