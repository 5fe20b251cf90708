//! SAML SPs in the admin UI: registering from metadata with a preview (pasted, uploaded, from
//! a URL), an SP's settings taking effect at the next login, refresh, disable/enable, remove;
//! readonly admins and forged CSRF tokens refused; every change audited. One Chromium test.

use super::{admin_browser, csrf};
use crate::helpers::{Browser, PASSWORD, Resp, TestApp, hidden, spawn_app};
use crate::saml_sp::*;
use portvakt::storage;

mod chromium;
mod metadata;

const NEW: &str = "/admin/services/saml/new";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The TestSp's metadata with a requested attribute (mail, required) and one optional.
fn metadata_with_requests(sp: &TestSp) -> String {
    sp.metadata().replace(
        "</md:SPSSODescriptor>",
        r#"<md:AttributeConsumingService index="0"><md:ServiceName xml:lang="sv">Testtjänst</md:ServiceName><md:RequestedAttribute FriendlyName="mail" Name="urn:oid:0.9.2342.19200300.100.1.3" isRequired="true"/><md:RequestedAttribute FriendlyName="givenName" Name="urn:oid:2.5.4.42"/></md:AttributeConsumingService></md:SPSSODescriptor>"#,
    )
}

/// An attribute value as the browser reads it (askama writes numeric character references).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').unwrap_or(0);
        let entity = &tail[1..end.max(1)];
        let ch = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) if end > 0 => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

async fn csrf_of(app: &TestApp, b: &Browser) -> String {
    csrf(&b.get(&app.url("/admin")).await.body)
}

fn sp_page(app: &TestApp, entity_id: &str) -> String {
    app.url(&format!("/admin/services/saml?id={}", enc(entity_id)))
}

async fn registered(app: &TestApp, entity_id: &str) -> Option<storage::saml::SpRecord> {
    storage::saml::get_sp(&app.db, entity_id).await.unwrap()
}

/// The newest audit event of `kind`: its detail, which holds no certificate or metadata.
async fn audited(app: &TestApp, kind: &str) -> serde_json::Value {
    let events = storage::records::recent_audit(&app.db, 50).await.unwrap();
    let (_, _, actor, detail) = events
        .into_iter()
        .find(|(_, k, _, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind} event"));
    assert!(actor.starts_with("admin:"), "{actor}");
    assert!(
        !detail.contains("X509") && !detail.contains("MII") && !detail.contains("EntityDescriptor"),
        "no metadata or certificate in the audit detail: {detail}"
    );
    serde_json::from_str(&detail).unwrap()
}

/// Preview of pasted metadata.
async fn preview(app: &TestApp, b: &Browser, md: &str) -> Resp {
    let c = csrf_of(app, b).await;
    b.post(
        &app.url(NEW),
        &[("csrf", &c), ("step", "preview"), ("metadata", md)],
    )
    .await
}

/// Registers `sp` through the form (preview, then save) with extra policy fields.
async fn register_via_form(app: &TestApp, b: &Browser, md: &str, policy: &[(&str, &str)]) -> Resp {
    let p = preview(app, b, md).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let doc = unescape(&hidden(&p.body, "document"));
    let c = csrf(&p.body);
    let mut form = vec![("csrf", c.as_str()), ("step", "save"), ("document", &doc)];
    form.extend_from_slice(policy);
    b.post(&app.url(NEW), &form).await
}

#[tokio::test]
async fn the_preview_shows_the_metadata_and_saves_nothing_then_save_registers_and_logins_work() {
    let app = spawn_app().await;
    app.add_person("elev.saml", &["student"]).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let sp = TestSp::new("https://sp.example.se");
    let md = metadata_with_requests(&sp);
    let form = b.get(&app.url(NEW)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("enctype=\"multipart/form-data\""));

    let p = preview(&app, &b, &md).await;
    assert_eq!(p.status, 200, "{}", p.body);
    for shown in [
        sp.entity_id.as_str(),
        sp.acs.as_str(),
        "HTTP-POST",
        sp.slo.as_str(),
        "CN=test-sp",
        "urn:oid:0.9.2342.19200300.100.1.3",
        "Krävs",
        "Valfritt",
        "nameid-format:persistent",
    ] {
        assert!(
            p.body.contains(shown),
            "the preview shows {shown}: {}",
            p.body
        );
    }
    // The TestSp's certificate expires in 30 days: flagged.
    assert!(p.body.contains("Går snart ut"), "{}", p.body);
    assert!(
        registered(&app, &sp.entity_id).await.is_none(),
        "nothing saved by the preview"
    );

    let r = register_via_form(
        &app,
        &b,
        &md,
        &[
            ("name_id_format", "persistent"),
            ("name_id_source", ""),
            ("sign_response", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(
        to.contains("/admin/services/saml?id=") && to.contains("done=added"),
        "{to}"
    );
    let rec = registered(&app, &sp.entity_id).await.expect("registered");
    assert!(rec.policy.sign_response && !rec.policy.idp_initiated);
    assert!(rec.policy.release.is_empty(), "releases nothing by default");
    assert_eq!(
        rec.policy.name_id.as_ref().map(|n| n.format.as_str()),
        Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
    );
    let event = audited(&app, "service.saml.added").await;
    assert_eq!(event["target"], sp.entity_id.as_str());
    assert_eq!(event["after"]["sign_response"], true);
    let page = b
        .get(&if to.starts_with("http") {
            to.clone()
        } else {
            app.url(&to)
        })
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Tjänsten är registrerad"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!(
        "/admin/services/release?protocol=saml&amp;id={}",
        enc(&sp.entity_id)
    )));

    // Registered once only.
    let again = preview(&app, &b, &md).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("finns redan"), "{}", again.body);

    // A login at the new SP.
    let subject = sp
        .log_in(&app, &app.browser(), Some(("elev.saml", PASSWORD)))
        .await;
    assert_eq!(
        subject.format,
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
}

#[tokio::test]
async fn bad_metadata_is_refused_on_the_form_with_a_message() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let r = preview(&app, &b, "<x/>").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("inte giltig SAML-metadata"), "{}", r.body);
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(
        unescape(&r.body).contains("><x/></textarea>"),
        "what was pasted is kept"
    );
    let sp = TestSp::new("https://bad.example.se");
    let no_post = sp.metadata().replace("bindings:HTTP-POST", "bindings:PAOS");
    let r = preview(&app, &b, &no_post).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("HTTP-POST"),
        "the parser's reason: {}",
        r.body
    );
    // Larger than the app's 64 KiB body limit is fine on this form, up to `sp add`'s 1 MiB.
    let padded = |kib: usize| {
        sp.metadata().replace(
            "<md:SPSSODescriptor",
            &format!("<!--{}--><md:SPSSODescriptor", "x".repeat(kib * 1024)),
        )
    };
    assert_eq!(preview(&app, &b, &padded(200)).await.status, 200);
    let r = preview(&app, &b, &padded(1100)).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("större än 1 MiB"), "{}", r.body);
    // Nothing, or two sources at once.
    let c = csrf_of(&app, &b).await;
    let r = b
        .post(&app.url(NEW), &[("csrf", &c), ("step", "preview")])
        .await;
    assert_eq!(r.status, 400);
    let r = b
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("metadata", &sp.metadata()),
                ("url", "https://x.example.se/md"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    // A URL must be http(s): the server's files are not metadata.
    let r = b
        .post(&app.url(NEW), &[("csrf", &c), ("url", "/etc/passwd")])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("https://"), "{}", r.body);
    // The save re-validates what the browser sends back.
    let r = b
        .post(
            &app.url(NEW),
            &[("csrf", &c), ("step", "save"), ("document", &no_post)],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = b
        .post(
            &app.url(NEW),
            &[
                ("csrf", &c),
                ("step", "save"),
                ("document", &sp.metadata()),
                ("name_id_format", "emailAddress"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "emailAddress needs a source");
    assert!(registered(&app, &sp.entity_id).await.is_none());
}

/// Serves `doc` (changeable) at http://127.0.0.1:PORT/md.
async fn metadata_server(doc: String) -> (String, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::sync::{Arc, Mutex};
    let shared = Arc::new(Mutex::new(doc));
    let state = shared.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/md", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/md",
        axum::routing::get(move || {
            let s = state.clone();
            async move { s.lock().unwrap().clone() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, shared)
}

#[tokio::test]
async fn an_sp_from_a_url_is_fetched_previewed_saved_and_refreshed() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let sp = TestSp::new("https://url.example.se");
    let (url, served) = metadata_server(sp.metadata()).await;
    let c = csrf_of(&app, &b).await;
    let p = b
        .post(
            &app.url(NEW),
            &[("csrf", &c), ("step", "preview"), ("url", &url)],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains(&sp.entity_id));
    assert!(registered(&app, &sp.entity_id).await.is_none());
    let r = b
        .post(
            &app.url(NEW),
            &[("csrf", &c), ("step", "save"), ("url", &url)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let rec = registered(&app, &sp.entity_id).await.unwrap();
    assert_eq!(rec.metadata_url.as_deref(), Some(url.as_str()));
    let page = b.get(&sp_page(&app, &sp.entity_id)).await;
    assert!(
        page.body.contains(&url) && page.body.contains("Ingen ändring registrerad"),
        "{}",
        page.body
    );

    // The SP moves its ACS; "fetch now" takes it and records the change.
    *served.lock().unwrap() = sp
        .metadata()
        .replace(&format!("{}/second", sp.acs), "https://url.example.se/acs3");
    app.clock.advance(60);
    let r = b
        .post(
            &app.url("/admin/services/saml/refresh"),
            &[("csrf", &c), ("id", &sp.entity_id)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let rec = registered(&app, &sp.entity_id).await.unwrap();
    assert!(rec.metadata.contains("/acs3"));
    let event = audited(&app, "service.saml.refreshed").await;
    assert_eq!(event["after"]["changed"][0], "ACS URLs");
    let page = b.get(&sp_page(&app, &sp.entity_id)).await;
    assert!(page.body.contains("ACS URLs"), "{}", page.body);
    // A refresh that fails keeps the metadata and says why.
    *served.lock().unwrap() = "<broken".into();
    let r = b
        .post(
            &app.url("/admin/services/saml/refresh"),
            &[("csrf", &c), ("id", &sp.entity_id)],
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("inte giltig SAML-metadata"), "{}", r.body);
    assert!(
        registered(&app, &sp.entity_id)
            .await
            .unwrap()
            .metadata
            .contains("/acs3")
    );
}

#[tokio::test]
async fn metadata_can_be_uploaded_as_a_file() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let sp = TestSp::new("https://upload.example.se");
    let c = csrf_of(&app, &b).await;
    let boundary = "----portvakt-test-boundary";
    let part = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let body = format!(
        "{}{}{}--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"sp.xml\"\r\nContent-Type: text/xml\r\n\r\n{}\r\n{}{}--{boundary}--\r\n",
        part("csrf", &c),
        part("step", "preview"),
        part("metadata", ""),
        sp.metadata(),
        part("url", ""),
        part("name_id_format", ""),
    );
    let cookies = b
        .cookies
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let res = app
        .client()
        .post(app.url(NEW))
        .header("cookie", cookies)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(&sp.entity_id) && text.contains(&sp.acs),
        "{text}"
    );
}

#[tokio::test]
async fn settings_take_effect_at_the_next_login() {
    let app = spawn_app().await;
    app.add_person("elev.init", &["student"]).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let sp = TestSp::new("https://init.example.se");
    sp.register(&app, &["--idp-initiated"]);
    let init = app.url(&format!("/saml/idp-init?sp={}", enc(&sp.entity_id)));
    let r = app.browser().get(&init).await;
    assert_eq!(r.status, 303, "IdP-initiated goes to login: {}", r.body);
    let page = b.get(&sp_page(&app, &sp.entity_id)).await;
    assert!(
        page.body
            .contains("id=\"idp_initiated\" name=\"idp_initiated\" value=\"on\" checked")
    );
    let c = csrf(&page.body);
    // Turned off (the checkbox not sent), NameID persistent.
    let r = b
        .post(
            &app.url("/admin/services/saml"),
            &[
                ("csrf", &c),
                ("id", &sp.entity_id),
                ("name_id_format", "persistent"),
                ("name_id_source", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_error_page(&app.browser().get(&init).await);
    let event = audited(&app, "service.saml.updated").await;
    assert_eq!(event["before"]["idp_initiated"], true);
    assert_eq!(event["after"]["idp_initiated"], false);
    assert_eq!(event["after"]["entity_id"], sp.entity_id.as_str());
    // A NameID format that needs a source, without one: the form again, nothing changed.
    let r = b
        .post(
            &app.url("/admin/services/saml"),
            &[
                ("csrf", &c),
                ("id", &sp.entity_id),
                ("name_id_format", "emailAddress"),
                ("idp_initiated", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(
        !registered(&app, &sp.entity_id)
            .await
            .unwrap()
            .policy
            .idp_initiated
    );
    let r = b
        .post(
            &app.url("/admin/services/saml"),
            &[
                ("csrf", &c),
                ("id", &sp.entity_id),
                ("name_id_format", "emailAddress"),
                ("name_id_source", "mail"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let rec = registered(&app, &sp.entity_id).await.unwrap();
    assert_eq!(rec.policy.name_id.unwrap().source.as_deref(), Some("mail"));
}

#[tokio::test]
async fn a_disabled_sp_gets_a_page_not_a_response_until_it_is_enabled() {
    let app = spawn_app().await;
    app.add_person("elev.off", &["student"]).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let sp = TestSp::new("https://off.example.se");
    sp.register(&app, &["--idp-initiated"]);
    let c = csrf_of(&app, &b).await;
    // A login already under way when the SP is disabled ends on the page too.
    let midway = app.browser();
    let req = sp.authn_request(&app, &fresh_id(), "", "");
    let first = midway
        .get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    assert_eq!(first.status, 303, "{}", first.body);
    let r = b
        .post(
            &app.url("/admin/services/saml/disable"),
            &[("csrf", &c), ("id", &sp.entity_id)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(registered(&app, &sp.entity_id).await.unwrap().disabled);
    let event = audited(&app, "service.saml.disabled").await;
    assert_eq!(
        (
            event["before"]["disabled"].clone(),
            event["after"]["disabled"].clone()
        ),
        (false.into(), true.into())
    );
    let page = b.get(&sp_page(&app, &sp.entity_id)).await;
    assert!(page.body.contains("Avstängd"), "{}", page.body);
    let after_login = sso_until_form(&midway, &app, first, Some(("elev.off", PASSWORD))).await;
    assert_eq!(after_login.status, 403, "{}", after_login.body);
    assert!(!after_login.body.contains("SAMLResponse"));

    let refused = |r: &Resp| {
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("tillfälligt avstängd"), "{}", r.body);
        assert!(!r.body.contains("SAMLResponse"));
    };
    let fresh = app.browser();
    let req = sp.authn_request(&app, &fresh_id(), "", "");
    refused(
        &fresh
            .get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
            .await,
    );
    refused(
        &post_request(
            &fresh,
            &app,
            &sp.authn_request(&app, &fresh_id(), "", ""),
            None,
        )
        .await,
    );
    refused(
        &fresh
            .get(&app.url(&format!("/saml/idp-init?sp={}", enc(&sp.entity_id))))
            .await,
    );
    // English too.
    let en = fresh
        .get(&format!(
            "{}&lang=en",
            sp.redirect_url(
                &app.url("/saml/sso"),
                "SAMLRequest",
                &sp.authn_request(&app, &fresh_id(), "", ""),
                None
            )
        ))
        .await;
    assert!(en.body.contains("temporarily disabled"), "{}", en.body);

    let r = b
        .post(
            &app.url("/admin/services/saml/enable"),
            &[("csrf", &c), ("id", &sp.entity_id)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    audited(&app, "service.saml.enabled").await;
    sp.log_in(&app, &app.browser(), Some(("elev.off", PASSWORD)))
        .await;
}

#[tokio::test]
async fn removing_asks_first_then_removes_and_audits() {
    let app = spawn_app().await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let sp = TestSp::new("https://gone.example.se");
    sp.register(&app, &[]);
    let page = b.get(&sp_page(&app, &sp.entity_id)).await;
    assert!(page.body.contains(&format!(
        "/admin/services/saml/remove?id={}",
        enc(&sp.entity_id)
    )));
    let confirm = b
        .get(&app.url(&format!(
            "/admin/services/saml/remove?id={}",
            enc(&sp.entity_id)
        )))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains(&sp.entity_id));
    assert!(
        registered(&app, &sp.entity_id).await.is_some(),
        "the GET removes nothing"
    );
    let r = b
        .post(
            &app.url("/admin/services/saml/remove"),
            &[("csrf", &csrf(&confirm.body)), ("id", &sp.entity_id)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().contains("/admin/services?removed="));
    assert!(registered(&app, &sp.entity_id).await.is_none());
    let event = audited(&app, "service.saml.removed").await;
    assert!(event["after"].is_null() && event["before"]["entity_id"] == sp.entity_id.as_str());
    assert_eq!(b.get(&sp_page(&app, &sp.entity_id)).await.status, 404);
}

/// Every POST of the area, for an SP registered from a URL: (path, form).
fn every_post<'a>(
    entity_id: &'a str,
    md: &'a str,
    csrf: &'a str,
) -> Vec<(&'static str, Vec<(&'static str, &'a str)>)> {
    vec![
        (
            NEW,
            vec![("csrf", csrf), ("step", "preview"), ("metadata", md)],
        ),
        (
            NEW,
            vec![("csrf", csrf), ("step", "save"), ("document", md)],
        ),
        (
            "/admin/services/saml",
            vec![("csrf", csrf), ("id", entity_id), ("idp_initiated", "on")],
        ),
        (
            "/admin/services/saml/refresh",
            vec![("csrf", csrf), ("id", entity_id)],
        ),
        (
            "/admin/services/saml/disable",
            vec![("csrf", csrf), ("id", entity_id)],
        ),
        (
            "/admin/services/saml/enable",
            vec![("csrf", csrf), ("id", entity_id)],
        ),
        (
            "/admin/services/saml/remove",
            vec![("csrf", csrf), ("id", entity_id)],
        ),
    ]
}

async fn unchanged(app: &TestApp, sp: &TestSp, other: &TestSp, events: usize) {
    let rec = registered(app, &sp.entity_id)
        .await
        .expect("still registered");
    assert!(!rec.disabled && !rec.policy.idp_initiated);
    assert!(registered(app, &other.entity_id).await.is_none());
    let n = storage::records::recent_audit(&app.db, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|(_, k, _, _)| k.starts_with("service.saml."))
        .count();
    assert_eq!(n, events, "no service.saml event");
}

#[tokio::test]
async fn a_readonly_admin_and_a_forged_csrf_token_change_nothing() {
    let app = spawn_app().await;
    let sp = TestSp::new("https://kept.example.se");
    let (url, _served) = metadata_server(sp.metadata()).await;
    let b = admin_browser(&app, "adm", &["admin"]).await;
    let c = csrf_of(&app, &b).await;
    let r = b
        .post(
            &app.url(NEW),
            &[("csrf", &c), ("step", "save"), ("url", &url)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let other = TestSp::new("https://new.example.se");
    let other_md = other.metadata();

    let reader = admin_browser(&app, "reader", &["admin-readonly"]).await;
    let page = reader.get(&sp_page(&app, &sp.entity_id)).await;
    assert_eq!(page.status, 200, "a reader sees the SP: {}", page.body);
    assert!(
        !page.body.contains("/admin/services/saml/disable"),
        "no buttons for a reader"
    );
    let reader_csrf = csrf(&page.body);
    for (path, form) in every_post(&sp.entity_id, &other_md, &reader_csrf) {
        let r = reader.post(&app.url(path), &form).await;
        assert_eq!(r.status, 403, "{path} for a reader: {}", r.body);
    }
    unchanged(&app, &sp, &other, 1).await;
    for (path, form) in every_post(&sp.entity_id, &other_md, "forged") {
        let r = b.post(&app.url(path), &form).await;
        assert_eq!(r.status, 403, "{path} with a forged token: {}", r.body);
    }
    let no_token = b
        .post(
            &app.url("/admin/services/saml/disable"),
            &[("id", sp.entity_id.as_str())],
        )
        .await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    unchanged(&app, &sp, &other, 1).await;
}
