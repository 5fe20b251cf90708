//! The release policy, its preview and the login policy of a service, over HTTP: a change
//! takes effect at the next real login (OIDC and SAML), the preview equals what that login
//! released, civic numbers are masked and protected identities kept from admins without
//! admin-protected; readonly admins and forged forms change nothing; every change and
//! preview is audited.

use super::{admin_browser, csrf};
use crate::helpers::{Browser, PASSWORD, TestApp, jwt_claims, spawn_app};
use crate::saml_sp::{
    TestSp, attributes, form_response, idp_cert, sso_until_form, verified_assertion,
};
use portvakt::directory::release::{CIVIC_NO_CLAIM, CIVIC_NO_SCOPE, ordinary_claims};
use serde_json::Value;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn release_url(app: &TestApp, protocol: &str, id: &str) -> String {
    app.url(&format!(
        "/admin/services/release?protocol={protocol}&id={}",
        enc(id)
    ))
}

fn preview_url(app: &TestApp, protocol: &str, id: &str, person: &str) -> String {
    app.url(&format!(
        "/admin/services/release/preview?protocol={protocol}&id={}&person={}",
        enc(id),
        enc(person)
    ))
}

fn login_policy_url(app: &TestApp, protocol: &str, id: &str) -> String {
    app.url(&format!(
        "/admin/services/login-policy?protocol={protocol}&id={}",
        enc(id)
    ))
}

/// Saves a release list through the form; returns the status.
async fn save_release(
    app: &TestApp,
    b: &Browser,
    protocol: &str,
    id: &str,
    names: &[&str],
    token: Option<&str>,
) -> u16 {
    let page = b.get(&release_url(app, protocol, id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = token.map(String::from).unwrap_or_else(|| csrf(&page.body));
    let mut form = vec![("csrf", token.as_str()), ("protocol", protocol), ("id", id)];
    for n in names {
        form.push(("release", n));
    }
    let r = b.post(&release_url(app, protocol, id), &form).await;
    r.status
}

async fn audit(app: &TestApp, kind: &str) -> Vec<String> {
    portvakt::storage::records::recent_audit(&app.db, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.1 == kind)
        .map(|e| e.3)
        .collect()
}

async fn client_release(app: &TestApp, id: &str) -> Vec<String> {
    portvakt::storage::clients::get(&app.db, id)
        .await
        .unwrap()
        .unwrap()
        .release
}

/// The claim names of `claims` that are released claims (not the protocol's own).
fn released_names(claims: &Value) -> Vec<String> {
    let known = portvakt::directory::release::known_claims();
    let mut v: Vec<String> = claims
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| known.contains(&k.as_str()))
        .cloned()
        .collect();
    v.sort();
    v
}

/// The claim/attribute names in a preview page's table (`<th scope="row"><code>NAME`).
fn preview_names(body: &str) -> Vec<String> {
    let mut v: Vec<String> = body
        .split("<th scope=\"row\"><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn an_oidc_release_change_takes_effect_at_the_next_login_and_the_preview_matches_it() {
    let app = spawn_app().await;
    app.add_person("elev", &["student@EKS"]).await;
    app.add_client("rp", |_| {}).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;

    let page = b.get(&release_url(&app, "oidc", "rp")).await;
    assert_eq!(page.status, 200);
    // Grouped by what it reveals, the civic number marked sensitive.
    for text in [
        "Identitet",
        "Skola",
        "Kontaktuppgifter",
        "Personnummer",
        "badge sensitive",
    ] {
        assert!(page.body.contains(text), "{text}");
    }

    let without_email: Vec<String> = ordinary_claims()
        .into_iter()
        .filter(|c| c != "email" && c != "email_verified")
        .collect();
    let names: Vec<&str> = without_email.iter().map(String::as_str).collect();
    assert_eq!(
        save_release(&app, &b, "oidc", "rp", &names, None).await,
        303
    );
    assert_eq!(client_release(&app, "rp").await, without_email);

    let (_, tokens) = app.login_tokens("rp", "elev").await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert!(claims.get("email").is_none(), "{claims}");
    assert_eq!(claims["given_name"], "Test");
    let (status, info) = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(info.get("email").is_none(), "{info}");

    // The preview shows exactly what the ID token released.
    let preview = b.get(&preview_url(&app, "oidc", "rp", "elev")).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(preview_names(&preview.body), released_names(&claims));
    assert!(preview.body.contains("<li>Test</li>"));
    assert!(preview.body.contains("<li>EKS</li>"), "{}", preview.body);

    let changed = audit(&app, "service.release_changed").await;
    assert_eq!(changed.len(), 1);
    let d: Value = serde_json::from_str(&changed[0]).unwrap();
    assert_eq!(d["target"], "oidc:rp");
    assert!(
        d["before"]["release"]
            .as_array()
            .unwrap()
            .contains(&"email".into())
    );
    assert!(
        !d["after"]["release"]
            .as_array()
            .unwrap()
            .contains(&"email".into())
    );
    let previewed = audit(&app, "service.release_previewed").await;
    assert_eq!(previewed.len(), 1);
    assert!(previewed[0].contains("oidc:rp person:"), "{}", previewed[0]);
}

async fn saml_assertion(app: &TestApp, sp: &TestSp, user: &str) -> portvakt::saml::xml::Element {
    let b = app.browser();
    let id = format!("_r{}", portvakt::keys::random_token());
    let req = sp.authn_request(app, &id, "", "");
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None);
    let first = b.get(&url).await;
    let page = sso_until_form(&b, app, first, Some((user, PASSWORD))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (_, xml, _) = form_response(&page);
    verified_assertion(&xml, &idp_cert(app).await)
}

#[tokio::test]
async fn a_saml_release_change_takes_effect_at_the_next_login_and_the_preview_matches_it() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student@EKS"]).await;
    let sp = TestSp::new("https://sp.example.se");
    sp.register(
        &app,
        &[
            "--release",
            "givenName",
            "--release",
            "mail",
            "--release",
            "eduPersonAffiliation",
        ],
    );
    let before = attributes(&saml_assertion(&app, &sp, "elev.anna").await);
    assert!(before.contains_key("mail"), "{before:?}");

    let b = admin_browser(&app, "adm", &["admin"]).await;
    let status = save_release(
        &app,
        &b,
        "saml",
        &sp.entity_id,
        &["eduPersonAffiliation", "eduPersonAssurance", "givenName"],
        None,
    )
    .await;
    assert_eq!(status, 303);
    let after = attributes(&saml_assertion(&app, &sp, "elev.anna").await);
    assert!(!after.contains_key("mail"), "{after:?}");
    assert_eq!(after["givenName"], vec!["Test"]);

    let preview = b
        .get(&preview_url(&app, "saml", &sp.entity_id, "elev.anna"))
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let mut names: Vec<String> = after.keys().cloned().collect();
    names.sort();
    assert_eq!(preview_names(&preview.body), names);
    for v in &after["eduPersonAffiliation"] {
        assert!(preview.body.contains(&format!("<li>{v}</li>")), "{v}");
    }
    // The level depends on the session: said, not faked.
    assert!(preview.body.contains("Beror på inloggningen"));

    let changed = audit(&app, "service.release_changed").await;
    assert_eq!(changed.len(), 1);
    assert!(changed[0].contains(&format!("saml:{}", sp.entity_id)));
    let stored = portvakt::storage::saml::get_sp(&app.db, &sp.entity_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.policy.release,
        vec!["eduPersonAffiliation", "eduPersonAssurance", "givenName"]
    );

    // The SP's login policy through its page.
    let url = login_policy_url(&app, "saml", &sp.entity_id);
    let page = b.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let two_fa = "http://id.skolfederation.se/loa/2fa";
    let form = [
        ("csrf", csrf(&page.body)),
        ("protocol", "saml".to_string()),
        ("id", sp.entity_id.clone()),
        ("method", "password".to_string()),
        ("min_level", two_fa.to_string()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(b.post(&url, &form).await.status, 303);
    let stored = portvakt::storage::saml::get_sp(&app.db, &sp.entity_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.policy.login.allowed_methods, vec!["password"]);
    assert_eq!(stored.policy.login.min_level.as_deref(), Some(two_fa));
    // The release list is untouched by the login policy, and the other way round.
    assert_eq!(stored.policy.release.len(), 3);
    assert_eq!(audit(&app, "service.login_policy_changed").await.len(), 1);
}

#[tokio::test]
async fn the_preview_masks_the_civic_number_and_keeps_protected_identities_from_admins_without_the_right()
 {
    let app = spawn_app().await;
    app.add_person("elev", &["student@EKS"]).await;
    crate::upstream::sql(
        &app,
        "UPDATE persons SET civic_no = $1 WHERE username = $2",
        &["201001012380", "elev"],
    )
    .await;
    app.add_client("rp", |s| {
        s.scopes = vec!["openid".into(), "profile".into(), CIVIC_NO_SCOPE.into()];
        s.release = vec!["given_name".into(), CIVIC_NO_CLAIM.into()];
    })
    .await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let preview = b.get(&preview_url(&app, "oidc", "rp", "elev")).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("20100101-XXXX"), "{}", preview.body);
    assert!(!preview.body.contains("201001012380"));
    let previewed = audit(&app, "service.release_previewed").await;
    assert!(!previewed[0].contains("201001012380"));

    crate::upstream::sql(
        &app,
        "UPDATE persons SET protected_identity = 1 WHERE username = $1",
        &["elev"],
    )
    .await;
    let refused = b.get(&preview_url(&app, "oidc", "rp", "elev")).await;
    assert_eq!(refused.status, 404);
    assert!(!refused.body.contains("given_name"));

    let p = admin_browser(&app, "skydd", &["admin", "admin-protected"]).await;
    let shown = p.get(&preview_url(&app, "oidc", "rp", "elev")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("Skyddad identitet"));
    assert!(shown.body.contains("<code>given_name</code>"));
    assert!(
        !shown.body.contains("20100101"),
        "never released for a protected identity"
    );

    let unknown = b.get(&preview_url(&app, "oidc", "rp", "nobody")).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn release_changes_refused_for_readonly_forged_csrf_and_unknown_names() {
    let app = spawn_app().await;
    app.add_client("rp", |_| {}).await;
    let before = client_release(&app, "rp").await;

    let ro = admin_browser(&app, "ro", &["admin-readonly"]).await;
    let page = ro.get(&release_url(&app, "oidc", "rp")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(" disabled"));
    assert_eq!(
        save_release(&app, &ro, "oidc", "rp", &["name"], None).await,
        403
    );

    let b = admin_browser(&app, "adm", &["admin"]).await;
    assert_eq!(
        save_release(&app, &b, "oidc", "rp", &["name"], Some("forged")).await,
        403
    );
    assert_eq!(
        save_release(&app, &b, "oidc", "rp", &["name"], Some("")).await,
        403
    );
    assert_eq!(
        save_release(&app, &b, "oidc", "rp", &["password_hash"], None).await,
        400
    );
    assert_eq!(client_release(&app, "rp").await, before);
    assert!(audit(&app, "service.release_changed").await.is_empty());

    let none = b.get(&release_url(&app, "oidc", "nope")).await;
    assert_eq!(none.status, 404);
}

async fn save_login(
    app: &TestApp,
    b: &Browser,
    id: &str,
    methods: &[&str],
    level: &str,
    token: Option<&str>,
) -> crate::helpers::Resp {
    let page = b.get(&login_policy_url(app, "oidc", id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = token.map(String::from).unwrap_or_else(|| csrf(&page.body));
    let mut form = vec![
        ("csrf", token.as_str()),
        ("protocol", "oidc"),
        ("id", id),
        ("min_level", level),
    ];
    for m in methods {
        form.push(("method", m));
    }
    b.post(&login_policy_url(app, "oidc", id), &form).await
}

#[tokio::test]
async fn a_login_policy_of_only_bankid_refuses_a_password_login_and_a_level_is_saved() {
    let app = crate::helpers::spawn_app_with(crate::bankid::with_bankid).await;
    app.add_person("elev", &["student@EKS"]).await;
    app.add_client("rp", |_| {}).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = b.get(&login_policy_url(&app, "oidc", "rp")).await;
    assert!(page.body.contains("value=\"password\"") && page.body.contains("value=\"bankid\""));

    assert_eq!(
        save_login(&app, &b, "rp", &["bankid"], "", None)
            .await
            .status,
        303
    );
    let stored = portvakt::storage::clients::get(&app.db, "rp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.login.allowed_methods, vec!["bankid"]);

    // A password login at the client is refused.
    let user = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let r = user.get(&url).await;
    let login = user.get(&r.location.unwrap()).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(!login.body.contains("name=\"password\""));
    assert!(login.body.contains("action=\"/login/bankid\""));
    let (tx, token) = (
        crate::helpers::hidden(&login.body, "tx"),
        crate::helpers::hidden(&login.body, "csrf"),
    );
    let r = user.post_login(&app, &tx, &token, "elev", PASSWORD).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!user.has_sso());

    let two_fa = "http://id.skolfederation.se/loa/2fa";
    assert_eq!(
        save_login(&app, &b, "rp", &[], two_fa, None).await.status,
        303
    );
    let stored = portvakt::storage::clients::get(&app.db, "rp")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.login.allowed_methods.is_empty());
    assert_eq!(stored.login.min_level.as_deref(), Some(two_fa));

    // Unknown names are refused with the form again, nothing changed.
    let bad = save_login(&app, &b, "rp", &["upstream:nope"], "", None).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("role=\"alert\""));
    let bad = save_login(&app, &b, "rp", &[], "loa99", None).await;
    assert_eq!(bad.status, 400);
    let after = portvakt::storage::clients::get(&app.db, "rp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.login, stored.login);

    let events = audit(&app, "service.login_policy_changed").await;
    assert_eq!(events.len(), 2);
    let d: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(d["target"], "oidc:rp");
    assert_eq!(d["before"]["allowed_methods"][0], "bankid");
    assert_eq!(d["after"]["min_level"], two_fa);

    // Readonly and forged forms change nothing.
    let ro = admin_browser(&app, "ro", &["admin-readonly"]).await;
    assert_eq!(
        save_login(&app, &ro, "rp", &["password"], "", None)
            .await
            .status,
        403
    );
    assert_eq!(
        save_login(&app, &b, "rp", &["password"], "", Some("x"))
            .await
            .status,
        403
    );
    let after = portvakt::storage::clients::get(&app.db, "rp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.login, stored.login);
    assert_eq!(audit(&app, "service.login_policy_changed").await.len(), 2);
}

#[tokio::test]
async fn a_release_policy_is_changed_and_previewed_in_chromium() {
    let app = spawn_app().await;
    app.add_person("elev", &["student@EKS"]).await;
    app.add_client("rp", |s| s.name = Some("Skolappen".into()))
        .await;
    let (_driver, browser) =
        super::browser::admin_in_chromium(&app, "chrome-adm", &["admin"]).await;
    browser
        .goto(&format!("{}&lang=sv", release_url(&app, "oidc", "rp")))
        .await;
    assert!(browser.source().await.contains("Vad tjänsten får veta"));
    browser.assert_accessible("the release policy page").await;
    browser
        .screenshot(&super::browser::screenshot_path("admin-release"))
        .await;
    for name in ["email", "email_verified"] {
        let b = browser
            .find(&format!("input[name=release][value={name}]"))
            .await;
        browser.click(&b).await;
    }
    let save = browser.find("form.release button[type=submit]").await;
    browser.click(&save).await;
    browser
        .wait_for_url("the saved release page", |u| u.contains("saved=1"))
        .await;
    browser
        .assert_accessible("the saved release policy page")
        .await;
    let release = client_release(&app, "rp").await;
    assert!(!release.iter().any(|c| c == "email"), "{release:?}");
    assert!(release.iter().any(|c| c == "given_name"));

    let person = browser.find("#preview-person").await;
    browser.send_keys(&person, "elev").await;
    let show = browser.find("form.search button[type=submit]").await;
    browser.click(&show).await;
    browser
        .wait_for_url("the preview", |u| u.contains("/release/preview"))
        .await;
    let source = browser.source().await;
    assert!(source.contains("<code>given_name</code>"));
    assert!(!source.contains("<code>email</code>"));
    browser.assert_accessible("the release preview").await;
    browser
        .screenshot(&super::browser::screenshot_path("admin-release-preview"))
        .await;

    browser
        .goto(&format!("{}&lang=sv", login_policy_url(&app, "oidc", "rp")))
        .await;
    assert!(browser.source().await.contains("Inloggningsregler"));
    browser.assert_accessible("the login policy page").await;
}

/// A service whose login policy the config file's `[[login_policy]]` manages: the page says
/// so and refuses the change (it would be undone at the next start).
#[tokio::test]
async fn a_login_policy_managed_by_the_config_file_is_shown_and_not_changed() {
    let first = spawn_app().await;
    first.add_client("rp", |_| {}).await;
    let entry = portvakt::config::LoginPolicyConfig {
        relying_party: "rp".into(),
        allow_methods: vec!["password".into()],
        min_level: None,
    };
    let app =
        crate::helpers::spawn_instance(&first.config.database_url, first.dir.clone(), None, |c| {
            c.login_policies = vec![entry]
        })
        .await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = b.get(&login_policy_url(&app, "oidc", "rp")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("[[login_policy]]"));
    let r = save_login(&app, &b, "rp", &["bankid"], "", None).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let stored = portvakt::storage::clients::get(&app.db, "rp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.login.allowed_methods, vec!["password"]);
    assert!(audit(&app, "service.login_policy_changed").await.is_empty());
}
