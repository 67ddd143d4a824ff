//! Accounts and tokens through REST and GraphQL: registration rules, login, refresh, scoped API
//! tokens, revocation, and every kind of forged or stale token.
mod common;

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
