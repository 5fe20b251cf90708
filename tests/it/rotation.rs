//! `portvakt keys rotate` while relying parties hold tokens signed with the old key.

use crate::helpers::*;

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(app.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn rotation_publishes_first_and_old_tokens_stay_valid() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student"]).await;
    app.add_client("one", |_| {}).await;
    let (_, old) = app.login_tokens("one", "elev.anna").await;
    let old_kid = jwt_header(old["id_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let before = jwks_kids(&app).await;
    assert_eq!(before.len(), 2, "one ES256 and one RS256 key");

    // Without --activate: published at once, not yet signing.
    let out = cli(&app, &["keys", "rotate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = jwks_kids(&app).await;
    assert_eq!(published.len(), 4);
    let (_, t) = app.login_tokens("one", "elev.anna").await;
    assert_eq!(
        jwt_header(t["id_token"].as_str().unwrap())["kid"],
        old_kid.as_str()
    );

    // With --activate: new tokens use a new key; old ones still verify.
    let out = cli(&app, &["keys", "rotate", "--activate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, new) = app.login_tokens("one", "elev.anna").await;
    let new_kid = jwt_header(new["id_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_kid, old_kid);
    let now = jwks_kids(&app).await;
    assert!(now.contains(&old_kid) && now.contains(&new_kid));
    assert_eq!(
        app.userinfo(old["access_token"].as_str().unwrap()).await.0,
        200,
        "old access token still valid"
    );
    assert_eq!(
        app.userinfo(new["access_token"].as_str().unwrap()).await.0,
        200
    );
    // The old ID token still verifies as an id_token_hint.
    let b = Browser::new();
    let r = b
        .get(&app.url(&format!(
            "/oidc/logout?id_token_hint={}",
            old["id_token"].as_str().unwrap()
        )))
        .await;
    assert_eq!(r.status, 303);
}
