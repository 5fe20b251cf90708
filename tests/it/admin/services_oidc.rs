//! The services list and the OIDC client pages of the admin UI: register, edit, rotate the
//! secret, disable, enable and remove, each refused to readonly admins and forged forms, each
//! audited without the secret; and the OIDC front's answer to a disabled client.

mod chromium;

use super::{admin_browser, csrf};
use crate::helpers::{Browser, PASSWORD, RP_REDIRECT, SECRET, TestApp, query_param, spawn_app};
use portvakt::storage;

/// The admin UI's time format for `at`.
fn shown(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// The text between `start` and the next `<` in `html`.
fn text_after(html: &str, start: &str) -> String {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    html[i..].split('<').next().unwrap().to_string()
}

/// The secret shown on a secret page.
fn secret_on(page: &str) -> String {
    text_after(page, "id=\"client-secret\">")
}

/// The new-client form as a browser posts it, with `changes` replacing or adding fields.
fn new_form<'a>(
    csrf: &'a str,
    id: &'a str,
    changes: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("csrf", csrf),
        ("client_id", id),
        ("name", "Skolportalen"),
        ("kind", "confidential"),
        ("redirect_uris", RP_REDIRECT),
        ("post_logout_redirect_uris", ""),
        ("backchannel_logout_uri", ""),
        ("grant", "authorization_code"),
        ("grant", "refresh_token"),
        ("scope", "openid"),
        ("scope", "profile"),
        ("scope", "email"),
        ("scope", "school"),
        ("subject", "pairwise"),
        ("sector", ""),
        ("alg", "ES256"),
    ];
    for (k, v) in changes {
        if let Some(slot) = f.iter_mut().find(|(fk, _)| fk == k) {
            slot.1 = v;
        } else {
            f.push((k, v));
        }
    }
    f
}

/// A login at `client_id` in a fresh browser; returns (code, verifier).
async fn code_for(app: &TestApp, client_id: &str, username: &str) -> (String, String) {
    let (url, _, _, verifier) = app.authorize_url(client_id, &[]);
    let cb = Browser::new().login(app, &url, username, PASSWORD).await;
    assert!(cb.starts_with(RP_REDIRECT), "{cb}");
    (query_param(&cb, "code").unwrap(), verifier)
}

async fn exchange(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    code: &str,
    verifier: &str,
) -> (u16, serde_json::Value) {
    app.token(
        client_id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The audit events of one kind, newest first, as (actor, detail).
async fn events(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    storage::records::recent_audit(&app.db, 200)
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, k, _, _)| k == kind)
        .map(|(_, _, actor, detail)| (actor, detail))
        .collect()
}

async fn client(app: &TestApp, id: &str) -> Option<storage::clients::ClientRecord> {
    storage::clients::get(&app.db, id).await.unwrap()
}

#[tokio::test]
async fn the_list_shows_both_protocols_with_their_last_login_and_searches_and_filters() {
    let app = spawn_app().await;
    app.add_person("pupil", &["student"]).await;
    app.add_client("lms", |s| s.name = Some("Lärplattformen".into()))
        .await;
    app.add_client("unused", |s| s.name = Some("Oanvänd".into()))
        .await;
    let sp = crate::saml_sp::TestSp::new("https://bibliotek.example");
    portvakt::services::saml_sp::add(
        &app.db,
        &sp.metadata(),
        None,
        &Default::default(),
        app.clock.now(),
    )
    .await
    .unwrap();
    app.login_tokens("lms", "pupil").await;
    let oidc_login = app.clock.now();
    app.clock.advance(3600);
    sp.log_in(&app, &Browser::new(), Some(("pupil", PASSWORD)))
        .await;
    let saml_login = app.clock.now();

    let b = admin_browser(&app, "adm", &["admin"]).await;
    let r = b.get(&app.url("/admin/services?lang=sv")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let row = |id: &str| {
        let at = r.body.find(&format!("<code>{id}</code>")).unwrap();
        let start = r.body[..at].rfind("<tr>").unwrap();
        r.body[start..].split("</tr>").next().unwrap().to_string()
    };
    let lms = row("lms");
    assert!(lms.contains("OIDC") && lms.contains("Aktiv"), "{lms}");
    assert!(lms.contains(&shown(oidc_login)), "{lms}");
    let saml = row(&sp.entity_id);
    assert!(
        saml.contains("SAML") && saml.contains(&shown(saml_login)),
        "{saml}"
    );
    assert!(row("unused").contains("Aldrig"));
    assert!(r.body.contains("Lärplattformen") && r.body.contains("Oanvänd"));
    assert!(lms.contains("/admin/services/oidc?id=lms"), "{lms}");
    assert!(
        lms.contains("/admin/services/release?protocol=oidc&#38;id=lms"),
        "{lms}"
    );
    assert!(
        lms.contains("/admin/services/login-policy?protocol=oidc&#38;id=lms"),
        "{lms}"
    );
    assert!(
        saml.contains("/admin/services/saml?id=https%3A%2F%2Fbibliotek.example%2Fsp"),
        "{saml}"
    );
    assert!(
        r.body.contains("/admin/services/oidc/new") && r.body.contains("/admin/services/saml/new")
    );

    // Search: a substring of the name or the id, any case; the filter: one protocol.
    let r = b
        .get(&app.url("/admin/services?q=L%C3%84RPLATT&protocol=all"))
        .await;
    assert!(r.body.contains("<code>lms</code>"));
    assert!(!r.body.contains("<code>unused</code>") && !r.body.contains("bibliotek.example"));
    let r = b.get(&app.url("/admin/services?q=BIBLIOTEK")).await;
    assert!(r.body.contains("bibliotek.example") && !r.body.contains("<code>lms</code>"));
    let r = b.get(&app.url("/admin/services?q=&protocol=saml")).await;
    assert!(r.body.contains("bibliotek.example") && !r.body.contains("<code>lms</code>"));
    let r = b.get(&app.url("/admin/services?protocol=oidc")).await;
    assert!(!r.body.contains("bibliotek.example") && r.body.contains("<code>unused</code>"));
    let r = b
        .get(&app.url("/admin/services?q=nothing-like-it&lang=sv"))
        .await;
    assert!(r.body.contains("Ingen tjänst matchar"), "{}", r.body);
    assert!(!b.get(&app.url("/admin/services")).await.body.contains("??"));
}

#[tokio::test]
async fn an_admin_registers_a_confidential_client_sees_its_secret_once_and_a_login_works_with_it() {
    let app = spawn_app().await;
    app.add_person("pupil", &["student"]).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = b.get(&app.url("/admin/services/oidc/new?lang=sv")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("name=\"scope\" value=\"offline_access\"")
    );
    let token = csrf(&page.body);
    let r = b
        .post(
            &app.url("/admin/services/oidc/new"),
            &new_form(
                &token,
                "portal",
                &[("scope", "https://id.oidc.se/scope/naturalPersonNumber")],
            ),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "the secret is in the answer, not behind a redirect: {}",
        r.body
    );
    assert!(r.location.is_none());
    let secret = secret_on(&r.body);
    assert!(secret.len() >= 40, "{secret}");
    assert!(r.body.contains("visas bara den här gången"), "{}", r.body);
    assert!(!r.body.contains("??") && !page.body.contains("??"));
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");

    let stored = client(&app, "portal").await.unwrap();
    assert_eq!(stored.name, "Skolportalen");
    assert!(!stored.public_client && !stored.disabled);
    assert_eq!(stored.redirect_uris, [RP_REDIRECT]);
    assert_eq!(stored.grants, ["authorization_code", "refresh_token"]);
    assert!(
        stored
            .scopes
            .iter()
            .any(|s| s.contains("naturalPersonNumber"))
    );
    assert!(
        stored.release.is_empty(),
        "as with `client add`: nothing released by default"
    );
    let hash = stored.secret_hash.clone().unwrap();
    assert_ne!(hash, secret, "only a hash is stored");

    // Never again: the client's page and the list do not have it.
    let again = b.get(&app.url("/admin/services/oidc?id=portal")).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("Skolportalen"));
    assert!(!again.body.contains(&secret));
    assert!(
        !b.get(&app.url("/admin/services"))
            .await
            .body
            .contains(&secret)
    );

    // The audit event, without the secret or its hash.
    let ev = events(&app, "service.oidc.added").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, "admin:adm");
    assert!(ev[0].1.contains("\"portal\"") && ev[0].1.contains(RP_REDIRECT));
    assert!(
        !ev[0].1.contains(&secret) && !ev[0].1.contains(&hash),
        "{}",
        ev[0].1
    );

    // A whole code flow with the secret shown.
    let (code, verifier) = code_for(&app, "portal", "pupil").await;
    let (status, body) = exchange(&app, "portal", &secret, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string() && body["refresh_token"].is_string());
}

#[tokio::test]
async fn a_public_client_needs_no_secret_and_a_refused_registration_comes_back_with_400() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let token = csrf(&b.get(&app.url("/admin/services/oidc/new")).await.body);
    let url = app.url("/admin/services/oidc/new");

    // The registry's check: the message, the field marked, what was typed kept.
    let r = b
        .post(
            &url,
            &new_form(
                &token,
                "bad",
                &[
                    ("redirect_uris", "http://skola.example/cb"),
                    ("name", "Min tjänst"),
                ],
            ),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Swedish first, what to check in the field; then the registry's sentence naming the value.
    assert!(
        r.body.contains("Kontrollera omdirigeringsadresserna"),
        "{}",
        r.body
    );
    assert!(r.body.contains("must use https"), "{}", r.body);
    assert!(r.body.contains("id=\"form-error\""));
    let field = &r.body[r.body.find("id=\"redirect_uris\"").unwrap()..];
    assert!(field[..300].contains("aria-invalid=\"true\""), "{field}");
    assert!(r.body.contains("http://skola.example/cb") && r.body.contains("value=\"Min tjänst\""));
    // The form's own check: no grant chosen.
    let mut no_grant = new_form(&token, "bad", &[]);
    no_grant.retain(|(k, _)| *k != "grant");
    let r = b.post(&url, &no_grant).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("Välj minst ett flöde") || r.body.contains("Choose at least one grant"),
        "{}",
        r.body
    );
    // A public client with client_credentials is refused by the registry.
    let r = b
        .post(
            &url,
            &new_form(
                &token,
                "bad",
                &[("kind", "public"), ("grant", "client_credentials")],
            ),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("client_credentials"), "{}", r.body);
    assert!(client(&app, "bad").await.is_none());

    // A public client: no secret page, straight to its page.
    let r = b
        .post(&url, &new_form(&token, "app", &[("kind", "public")]))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location
            .as_deref()
            .unwrap()
            .ends_with("/admin/services/oidc?id=app&done=added")
    );
    let app_client = client(&app, "app").await.unwrap();
    assert!(app_client.public_client && app_client.secret_hash.is_none());
    // The same id twice.
    let r = b.post(&url, &new_form(&token, "app", &[])).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("finns redan") || r.body.contains("already exists"),
        "{}",
        r.body
    );
    assert_eq!(events(&app, "service.oidc.added").await.len(), 1);
}

#[tokio::test]
async fn an_admin_edits_a_client_and_the_event_holds_before_and_after_without_the_secret() {
    let app = spawn_app().await;
    app.add_client("edu", |s| {
        s.name = Some("Gammalt namn".into());
        s.backchannel_logout_uri = Some("https://edu.example/bcl".into());
    })
    .await;
    let hash = client(&app, "edu").await.unwrap().secret_hash;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = b.get(&app.url("/admin/services/oidc?id=edu")).await;
    assert!(page.body.contains("value=\"Gammalt namn\""));
    let token = csrf(&page.body);
    let uris = format!("{RP_REDIRECT}\nhttps://edu.example/cb");
    let form = new_form(
        &token,
        "edu",
        &[
            ("name", "Nytt namn"),
            ("redirect_uris", &uris),
            ("subject", "public"),
            ("alg", "RS256"),
            ("sector", "edu.example"),
        ],
    );
    let r = b.post(&app.url("/admin/services/oidc"), &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location
            .unwrap()
            .ends_with("/admin/services/oidc?id=edu&done=saved")
    );
    let c = client(&app, "edu").await.unwrap();
    assert_eq!(c.name, "Nytt namn");
    assert_eq!(c.redirect_uris, [RP_REDIRECT, "https://edu.example/cb"]);
    assert_eq!(c.subject_type, "public");
    assert_eq!(c.id_token_alg, "RS256");
    assert_eq!(c.sector.as_deref(), Some("edu.example"));
    assert!(
        c.post_logout_redirect_uris.is_empty() && c.backchannel_logout_uri.is_none(),
        "emptied fields clear"
    );
    assert_eq!(c.secret_hash, hash, "the secret is kept");
    assert!(!c.release.is_empty(), "the release list is kept");
    let ev = events(&app, "service.oidc.updated").await;
    assert_eq!(ev.len(), 1);
    assert!(ev[0].1.contains("Gammalt namn") && ev[0].1.contains("Nytt namn"));
    assert!(
        !ev[0].1.contains(hash.as_deref().unwrap()) && !ev[0].1.contains("secret"),
        "{}",
        ev[0].1
    );
    // An invalid edit changes nothing and shows the form again.
    let r = b
        .post(
            &app.url("/admin/services/oidc"),
            &new_form(&token, "edu", &[("redirect_uris", "not a uri")]),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not a uri"));
    assert_eq!(client(&app, "edu").await.unwrap(), c);
}

#[tokio::test]
async fn a_new_secret_refuses_the_old_one_and_the_new_one_works() {
    let app = spawn_app().await;
    app.add_person("pupil", &["student"]).await;
    app.add_client("rot", |_| {}).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let token = csrf(&b.get(&app.url("/admin/services/oidc?id=rot")).await.body);
    let r = b
        .post(
            &app.url("/admin/services/oidc/secret"),
            &[("csrf", &token), ("id", "rot")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = secret_on(&r.body);
    assert_ne!(secret, SECRET);
    assert!(
        !b.get(&app.url("/admin/services/oidc?id=rot"))
            .await
            .body
            .contains(&secret)
    );
    let (code, verifier) = code_for(&app, "rot", "pupil").await;
    let (status, body) = exchange(&app, "rot", SECRET, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    let (status, body) = exchange(&app, "rot", &secret, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let ev = events(&app, "service.oidc.secret_rotated").await;
    assert_eq!(ev.len(), 1);
    assert!(
        !ev[0].1.contains(&secret) && !ev[0].1.contains("secret_hash"),
        "{}",
        ev[0].1
    );
}

#[tokio::test]
async fn a_disabled_client_gets_a_page_at_authorize_and_no_tokens_until_it_is_enabled() {
    let app = spawn_app().await;
    app.add_person("pupil", &["student"]).await;
    app.add_client("dis", |_| {}).await;
    let (_, tokens) = app.login_tokens("dis", "pupil").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let token = csrf(&b.get(&app.url("/admin/services/oidc?id=dis")).await.body);
    let r = b
        .post(
            &app.url("/admin/services/oidc/disable"),
            &[("csrf", &token), ("id", "dis")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().ends_with("?id=dis&done=disabled"));
    assert!(client(&app, "dis").await.unwrap().disabled);
    let list = b.get(&app.url("/admin/services?lang=sv")).await.body;
    assert!(list.contains("Avstängd"));

    // A page, never a redirect to the client.
    let (url, _, _, _) = app.authorize_url("dis", &[]);
    let r = Browser::new().get(&format!("{url}&lang=sv")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.location.is_none());
    assert!(
        r.body.contains("Tjänsten är tillfälligt avstängd"),
        "{}",
        r.body
    );
    // Its refresh token stops working with it.
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, body) = app.token("dis", SECRET, &refresh_form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );

    let r = b
        .post(
            &app.url("/admin/services/oidc/enable"),
            &[("csrf", &token), ("id", "dis")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(!client(&app, "dis").await.unwrap().disabled);
    let (status, body) = app.token("dis", SECRET, &refresh_form).await;
    assert_eq!(status, 200, "registration and tokens were kept: {body}");
    app.login_tokens("dis", "pupil").await;
    assert_eq!(events(&app, "service.oidc.disabled").await.len(), 1);
    assert_eq!(events(&app, "service.oidc.enabled").await.len(), 1);
}

#[tokio::test]
async fn removing_asks_first_and_keeps_the_release_history() {
    let app = spawn_app().await;
    let pupil = app.add_person("pupil", &["student"]).await;
    app.add_client("gone", |_| {}).await;
    app.login_tokens("gone", "pupil").await;
    let releases = storage::records::releases_for_person(&app.db, &pupil.id)
        .await
        .unwrap()
        .len();
    assert!(releases > 0);
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let page = b
        .get(&app.url("/admin/services/oidc/remove?id=gone&lang=sv"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Vill du ta bort"), "{}", page.body);
    assert!(!page.body.contains("??"));
    assert!(
        client(&app, "gone").await.is_some(),
        "asking removes nothing"
    );
    let r = b
        .post(
            &app.url("/admin/services/oidc/remove"),
            &[("csrf", &csrf(&page.body)), ("id", "gone")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        r.location
            .unwrap()
            .ends_with("/admin/services?removed=gone")
    );
    assert!(client(&app, "gone").await.is_none());
    assert_eq!(
        storage::records::releases_for_person(&app.db, &pupil.id)
            .await
            .unwrap()
            .len(),
        releases
    );
    let ev = events(&app, "service.oidc.removed").await;
    assert_eq!(ev.len(), 1);
    assert!(
        ev[0].1.contains("\"after\":null") && !ev[0].1.contains("secret"),
        "{}",
        ev[0].1
    );
    assert_eq!(
        b.get(&app.url("/admin/services/oidc?id=gone")).await.status,
        404
    );
}

/// Every POST of the OIDC pages, for a client `id`.
fn posts<'a>(token: &'a str, id: &'a str) -> Vec<(&'static str, Vec<(&'a str, &'a str)>)> {
    vec![
        ("/admin/services/oidc/new", new_form(token, "intruder", &[])),
        (
            "/admin/services/oidc",
            new_form(token, id, &[("name", "Ändrad")]),
        ),
        (
            "/admin/services/oidc/secret",
            vec![("csrf", token), ("id", id)],
        ),
        (
            "/admin/services/oidc/disable",
            vec![("csrf", token), ("id", id)],
        ),
        (
            "/admin/services/oidc/enable",
            vec![("csrf", token), ("id", id)],
        ),
        (
            "/admin/services/oidc/remove",
            vec![("csrf", token), ("id", id)],
        ),
    ]
}

#[tokio::test]
async fn a_readonly_admin_and_a_forged_or_missing_csrf_token_change_nothing() {
    let app = spawn_app().await;
    app.add_client("kept", |_| {}).await;
    let before = client(&app, "kept").await.unwrap();
    let reader = admin_browser(&app, "reader", &["admin-readonly"]).await;
    let page = reader.get(&app.url("/admin/services/oidc?id=kept")).await;
    assert_eq!(page.status, 200, "readonly admins see the client");
    assert!(
        !page.body.contains("/admin/services/oidc/disable"),
        "but get no forms"
    );
    assert!(page.body.contains("<fieldset disabled") && page.body.contains(RP_REDIRECT));
    assert!(!page.body.contains("??"), "every text is in the catalogue");
    let token = csrf(&page.body);
    for (path, form) in posts(&token, "kept") {
        let r = reader.post(&app.url(path), &form).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let admin = admin_browser(&app, "adm", &["admin"]).await;
    for (path, form) in posts("forged-token", "kept") {
        let r = admin.post(&app.url(path), &form).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        let without: Vec<_> = form.into_iter().filter(|(k, _)| *k != "csrf").collect();
        let r = admin.post(&app.url(path), &without).await;
        assert_eq!(r.status, 403, "{path} without a token: {}", r.body);
    }
    assert_eq!(client(&app, "kept").await.unwrap(), before);
    assert!(client(&app, "intruder").await.is_none());
    let changes = storage::records::recent_audit(&app.db, 200).await.unwrap();
    assert!(
        !changes.iter().any(|(_, k, _, _)| k.starts_with("service.")),
        "{changes:?}"
    );
}
