//! Portvakt federating with a second Portvakt over SAML, both running, over real HTTP with
//! real signatures: the first (the broker) registers the second's IdP metadata as upstream
//! "kommun"; the second registers the broker's SP metadata from `/upstream/kommun/metadata`.
//! A relying party's login at the broker goes to the upstream, comes back by HTTP-POST to
//! `/upstream/kommun/acs`, is linked by email to the broker's person and resumes. Tampered,
//! replayed and cross-browser Responses POSTed to the running ACS are refused.

use crate::helpers::*;
use crate::saml_sp::{form_response, sso_until_form};

pub(crate) const EVA: &str = "personal.eva";

pub(crate) struct Pair {
    pub(crate) broker: TestApp,
    pub(crate) upstream: TestApp,
}

pub(crate) async fn pair() -> Pair {
    pair_with(false).await
}

/// `by_url`: the broker registers the upstream by its metadata URL instead of a file.
async fn pair_with(by_url: bool) -> Pair {
    pair_opts(by_url, false).await
}

/// `unsigned_requests`: the upstream registers the broker's SP metadata saying its
/// AuthnRequests are not signed, so a test can play an IdP that reads them altered.
async fn pair_opts(by_url: bool, unsigned_requests: bool) -> Pair {
    let broker = spawn_app().await;
    let upstream = spawn_app().await;
    broker.add_person(EVA, &["staff@EKS"]).await;
    upstream.add_person(EVA, &["staff@EKS"]).await;
    broker.add_client("rp", |_| {}).await;
    // The broker trusts the upstream's IdP metadata.
    let md = upstream
        .client()
        .get(upstream.url("/saml/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let md_path = broker.dir.path().join("upstream-idp.xml");
    std::fs::write(&md_path, md).unwrap();
    let md_url = upstream.url("/saml/metadata");
    let source = if by_url {
        md_url.as_str()
    } else {
        md_path.to_str().unwrap()
    };
    let out = cli(
        &broker,
        &[
            "upstream",
            "add",
            "kommun",
            "--saml-metadata",
            source,
            "--link-on",
            "email=email",
            "--require-claim",
            "schacHomeOrganization=127.0.0.1",
            "--display-name",
            "Kommunens konto",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "upstream add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The upstream registers the broker's SP metadata, served by the broker.
    let res = broker
        .client()
        .get(broker.url("/upstream/kommun/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sp_md = res.text().await.unwrap();
    assert!(
        sp_md.contains(&broker.url("/upstream/kommun/acs")),
        "{sp_md}"
    );
    let sp_md = if unsigned_requests {
        sp_md.replace(
            r#"AuthnRequestsSigned="true""#,
            r#"AuthnRequestsSigned="false""#,
        )
    } else {
        sp_md
    };
    let sp_path = upstream.dir.path().join("broker-sp.xml");
    std::fs::write(&sp_path, sp_md).unwrap();
    let out = cli(
        &upstream,
        &[
            "sp",
            "add",
            "--metadata",
            sp_path.to_str().unwrap(),
            "--nameid",
            "persistent",
            "--release",
            "mail",
            "--release",
            "schacHomeOrganization",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "sp add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Pair { broker, upstream }
}

/// From the relying party's authorize to the upstream's POST form (logged in there):
/// (broker browser, ACS URL, SAMLResponse base64, RelayState).
async fn to_the_acs(p: &Pair) -> (Browser, String, String, String) {
    let b = p.broker.browser();
    let (authorize, _, _, _) = p.broker.authorize_url("rp", &[]);
    let (tx, _, _) = b.open_login(&authorize).await;
    let r = b
        .get(&p.broker.url(&format!("/upstream/kommun/start?tx={tx}")))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to_idp = r.location.unwrap();
    assert!(
        to_idp.starts_with(&p.upstream.url("/saml/sso?SAMLRequest=")),
        "{to_idp}"
    );
    let cookie = b
        .set_cookies
        .lock()
        .unwrap()
        .iter()
        .find(|c| c.starts_with("portvakt_upstream_saml="))
        .cloned()
        .expect("the start sets the ACS binding cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    // The upstream is another site: its own browser state.
    let ub = p.upstream.browser();
    let first = ub.get(&to_idp).await;
    let page = sso_until_form(&ub, &p.upstream, first, Some((EVA, PASSWORD))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (action, _, relay) = form_response(&page);
    let raw = crate::saml_sp::html_unescape(&hidden(&page.body, "SAMLResponse"));
    (b, action, raw, relay.expect("RelayState comes back"))
}

/// The error page says the Response was refused (Swedish or English, by the browser's language).
/// With a way back to the login page.
fn refused_page(r: &Resp) -> bool {
    (r.body.contains("kunde inte godtas") || r.body.contains("could not be accepted"))
        && r.body.contains("/login?tx=")
}

/// The login behind the RelayState is not this browser's or was already used.
fn expired_page(r: &Resp) -> bool {
    r.body.contains("kunde inte kopplas") || r.body.contains("could not be matched")
}

#[tokio::test]
async fn a_login_through_a_second_portvakt_over_saml_links_and_resumes() {
    let p = pair().await;
    let (b, action, response, relay) = to_the_acs(&p).await;
    assert_eq!(action, p.broker.url("/upstream/kommun/acs"));
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &response), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let resume = r.location.unwrap();
    assert!(resume.contains("/oidc/authorize/resume"), "{resume}");
    assert!(b.has_sso(), "the broker's session starts");
    let r = b.get(&resume).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.location.unwrap();
    assert!(
        back.starts_with(RP_REDIRECT) && back.contains("code="),
        "{back}"
    );
    // The link is stored: (upstream, subject) → the broker's person.
    let counts = portvakt::storage::upstream::link_counts(&p.broker.db)
        .await
        .unwrap();
    assert_eq!(counts, vec![("kommun".to_string(), 1)]);

    // The same Response and RelayState again: the login was taken once; refused.
    let again = b
        .post(
            &action,
            &[("SAMLResponse", &response), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(expired_page(&again), "{}", again.body);
}

#[tokio::test]
async fn tampered_and_cross_browser_responses_to_the_running_acs_are_refused() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let p = pair().await;
    // Another browser (no binding cookie) posting a genuine Response: refused, and the
    // login stays with its own browser, which then completes.
    let (b, action, response, relay) = to_the_acs(&p).await;
    let stranger = p.broker.browser();
    let r = stranger
        .post(
            &action,
            &[("SAMLResponse", &response), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(expired_page(&r), "{}", r.body);
    assert!(!stranger.has_sso());
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &response), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    // A Response whose encrypted assertion was altered: refused, no session.
    let (b, action, response, relay) = to_the_acs(&p).await;
    let xml = String::from_utf8(STANDARD.decode(&response).unwrap()).unwrap();
    let cipher = xml.split("<xenc:CipherValue>").nth(2).unwrap();
    let cipher = cipher.split('<').next().unwrap();
    let mut raw = STANDARD.decode(cipher).unwrap();
    raw[40] ^= 1;
    let tampered = STANDARD.encode(xml.replace(cipher, &STANDARD.encode(raw)));
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &tampered), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(refused_page(&r), "{}", r.body);
    assert!(!b.has_sso());

    // An unsigned assertion in front of the encrypted one (XSW): refused.
    let (b, action, response, relay) = to_the_acs(&p).await;
    let xml = String::from_utf8(STANDARD.decode(&response).unwrap()).unwrap();
    let evil = r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_evil" Version="2.0"><saml:Issuer>x</saml:Issuer></saml:Assertion>"#;
    let wrapped = xml.replacen(
        "<saml:EncryptedAssertion",
        &format!("{evil}<saml:EncryptedAssertion"),
        1,
    );
    assert_ne!(wrapped, xml);
    let r = b
        .post(
            &action,
            &[
                ("SAMLResponse", &STANDARD.encode(wrapped)),
                ("RelayState", &relay),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(refused_page(&r), "{}", r.body);
    assert!(!b.has_sso());
}

/// The upstream's LogoutRequest ends the broker's session that came from it and gets our
/// signed LogoutResponse; one signed by another key is refused and ends nothing.
#[tokio::test]
async fn a_logout_request_from_the_upstream_ends_the_brokers_session() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use portvakt::upstream::saml::metadata::{Endpoint, IdpMetadata};
    use portvakt::upstream::saml::{PERSISTENT, REDIRECT, SpEndpoints, SpKeys, decrypt, logout};
    use portvakt::xmlsec::xml::{self, SAML};
    let p = pair().await;
    let (b, action, response, relay) = to_the_acs(&p).await;
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &response), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(b.has_sso());
    // The NameID the upstream gave, read as the broker reads it.
    let now = p.broker.clock.now();
    let keys = SpKeys::load(&p.broker.state.keys, &p.broker.config.saml_scope(), now)
        .await
        .unwrap();
    let doc = xml::parse(&String::from_utf8(STANDARD.decode(&response).unwrap()).unwrap()).unwrap();
    let plain = decrypt::decrypt(
        doc.child(SAML, "EncryptedAssertion").unwrap(),
        &keys.encryption_key,
    )
    .unwrap();
    let assertion = xml::parse(&plain).unwrap();
    let name_id = assertion
        .child(SAML, "Subject")
        .and_then(|s| s.child(SAML, "NameID"))
        .unwrap()
        .text
        .clone();
    // The upstream's LogoutRequest, signed with its IdP key (our builder, roles swapped).
    let to_broker = IdpMetadata {
        entity_id: String::new(),
        display_name: None,
        sso: String::new(),
        slo: vec![Endpoint {
            binding: REDIRECT.into(),
            location: p.broker.url("/upstream/kommun/slo"),
            response_location: None,
        }],
        signing_certs: vec![],
        want_authn_requests_signed: false,
        valid_until: None,
    };
    let from = SpEndpoints {
        entity_id: p.upstream.state.idp.entity_id().to_string(),
        acs: String::new(),
        slo: String::new(),
    };
    let idp_key = p.upstream.state.idp.credential(now).await.unwrap().key_der;
    let stranger = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap())
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap();
    let forged = logout::request(
        &to_broker,
        &from,
        (&name_id, PERSISTENT),
        None,
        &stranger,
        now,
    )
    .unwrap()
    .unwrap();
    let r = b.get(&forged.url).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(b.has_sso(), "a forged LogoutRequest ends nothing");
    let genuine = logout::request(
        &to_broker,
        &from,
        (&name_id, PERSISTENT),
        None,
        &idp_key,
        now,
    )
    .unwrap()
    .unwrap();
    let r = b.get(&genuine.url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.location.unwrap();
    assert!(
        back.starts_with(&p.upstream.url("/saml/slo?SAMLResponse=")),
        "{back}"
    );
    assert!(!b.has_sso(), "the broker's SSO cookie is cleared");
    // The session is over: the relying party's next login asks again.
    let (authorize, _, _, _) = p.broker.authorize_url("rp", &[]);
    let r = b.get(&authorize).await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().contains("/login?tx="));
}

/// IdP metadata without a signing certificate is refused when the upstream is added, with a
/// one-line reason.
#[tokio::test]
async fn idp_metadata_without_a_signing_certificate_is_refused_at_registration() {
    let broker = spawn_app().await;
    let md = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.se"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.se/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
    let path = broker.dir.path().join("unsigned-idp.xml");
    std::fs::write(&path, md).unwrap();
    let out = cli(
        &broker,
        &[
            "upstream",
            "add",
            "nokey",
            "--saml-metadata",
            path.to_str().unwrap(),
            "--link-on",
            "eppn=eppn",
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no signing certificate"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Under TLS the cookie that carries the login across the upstream's cross-site POST is
/// `__Host-`, Secure, HttpOnly and SameSite=None (the Lax login-binding cookie would not come
/// with that POST), and lives only as long as a login.
#[tokio::test]
async fn under_tls_the_acs_binding_cookie_is_secure_and_same_site_none() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let broker = spawn_tls_app().await;
    broker.add_client("rp", |_| {}).await;
    let key = openssl::rsa::Rsa::generate(2048)
        .and_then(openssl::pkey::PKey::from_rsa)
        .and_then(|k| k.private_key_to_pkcs8())
        .unwrap();
    let cert = STANDARD.encode(portvakt::upstream::saml::certificate(&key, "idp").unwrap());
    let md = format!(
        r#"<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.se"><IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor><SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.se/sso"/></IDPSSODescriptor></EntityDescriptor>"#
    );
    let path = broker.dir.path().join("idp.xml");
    std::fs::write(&path, md).unwrap();
    let out = cli(
        &broker,
        &[
            "upstream",
            "add",
            "kommun",
            "--saml-metadata",
            path.to_str().unwrap(),
            "--link-on",
            "eppn=eppn",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = broker.browser();
    let (authorize, _, _, _) = broker.authorize_url("rp", &[]);
    let (tx, _, _) = b.open_login(&authorize).await;
    let r = b
        .get(&broker.url(&format!("/upstream/kommun/start?tx={tx}")))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(
        to.starts_with("https://idp.example.se/sso?SAMLRequest="),
        "{to}"
    );
    assert!(
        to.contains("&RelayState=") && to.contains("&Signature="),
        "{to}"
    );
    let set = b.set_cookies.lock().unwrap().clone();
    let cookie = set
        .iter()
        .find(|c| c.starts_with("__Host-portvakt_upstream_saml="))
        .unwrap_or_else(|| panic!("no ACS binding cookie: {set:?}"));
    for attr in ["HttpOnly", "Secure", "SameSite=None", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    // An unknown upstream name: not found.
    let r = b
        .get(&broker.url(&format!("/upstream/nosuch/start?tx={tx}")))
        .await;
    assert_eq!(r.status, 404);
}

/// Registered by its metadata URL: the broker fetches the document when it needs it.
#[tokio::test]
async fn an_upstream_registered_by_metadata_url_works_the_same() {
    let p = pair_with(true).await;
    let (b, action, response, relay) = to_the_acs(&p).await;
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &response), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(b.has_sso());
}

/// The AuthnRequest XML and RelayState of a Redirect-binding URL.
pub(crate) fn redirect_request(url: &str) -> (String, String) {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use std::io::Read;
    let u = url::Url::parse(url).unwrap();
    let get = |k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let raw = STANDARD.decode(get("SAMLRequest")).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .read_to_string(&mut xml)
        .unwrap();
    (xml, get("RelayState"))
}

/// The same request unsigned, with `xml` instead: what an IdP that drops ForceAuthn reads.
fn unsigned_url(url: &str, xml: &str, relay: &str) -> String {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes()).unwrap();
    let mut u = url::Url::parse(url).unwrap();
    u.query_pairs_mut()
        .clear()
        .append_pair("SAMLRequest", &STANDARD.encode(e.finish().unwrap()))
        .append_pair("RelayState", relay);
    u.into()
}

/// A relying party's prompt=login reaches the upstream as ForceAuthn="true"; a Response
/// whose AuthnInstant is from the upstream's old session (an IdP that ignored it) is
/// refused; one from a new login there is accepted.
#[tokio::test]
async fn a_forced_login_is_forced_upstream_and_an_old_authn_instant_refused() {
    let p = pair_opts(false, true).await;
    let (b, ub) = (p.broker.browser(), p.upstream.browser());
    let start = |tx: &str| p.broker.url(&format!("/upstream/kommun/start?tx={tx}"));
    // Logged in at both, ten minutes ago.
    let (authorize, _, _, _) = p.broker.authorize_url("rp", &[]);
    let (tx, _, _) = b.open_login(&authorize).await;
    let to_idp = b.get(&start(&tx)).await.location.unwrap();
    assert!(!redirect_request(&to_idp).0.contains("ForceAuthn"));
    let first = ub.get(&to_idp).await;
    let page = sso_until_form(&ub, &p.upstream, first, Some((EVA, PASSWORD))).await;
    let (action, _, relay) = form_response(&page);
    let raw = crate::saml_sp::html_unescape(&hidden(&page.body, "SAMLResponse"));
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &raw), ("RelayState", &relay.unwrap())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    p.broker.clock.advance(600);
    p.upstream.clock.advance(600);

    // prompt=login: ForceAuthn upstream. An IdP that drops it answers from its session.
    let (authorize, _, _, _) = p.broker.authorize_url("rp", &[("prompt", "login")]);
    let (tx, _, _) = b.open_login(&authorize).await;
    let to_idp = b.get(&start(&tx)).await.location.unwrap();
    let (xml, relay) = redirect_request(&to_idp);
    assert!(xml.contains(r#"ForceAuthn="true""#), "{xml}");
    let lax = unsigned_url(&to_idp, &xml.replace(r#" ForceAuthn="true""#, ""), &relay);
    let first = ub.get(&lax).await;
    let page = sso_until_form(&ub, &p.upstream, first, None).await;
    let (action, _, relay) = form_response(&page);
    let raw = crate::saml_sp::html_unescape(&hidden(&page.body, "SAMLResponse"));
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &raw), ("RelayState", &relay.unwrap())],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(refused_page(&r), "{}", r.body);

    // An IdP that honours it asks for the password again: accepted.
    let (authorize, _, _, _) = p.broker.authorize_url("rp", &[("prompt", "login")]);
    let (tx, _, _) = b.open_login(&authorize).await;
    let to_idp = b.get(&start(&tx)).await.location.unwrap();
    let first = ub.get(&to_idp).await;
    assert!(
        first
            .location
            .as_deref()
            .unwrap_or_default()
            .contains("/login?tx="),
        "the upstream asks for the password again"
    );
    let page = sso_until_form(&ub, &p.upstream, first, Some((EVA, PASSWORD))).await;
    let (action, _, relay) = form_response(&page);
    let raw = crate::saml_sp::html_unescape(&hidden(&page.body, "SAMLResponse"));
    let r = b
        .post(
            &action,
            &[("SAMLResponse", &raw), ("RelayState", &relay.unwrap())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location.unwrap()).await;
    assert!(r.location.unwrap().contains("code="));
    // The same person logs in again with a password (the session is replaced): the new
    // session still knows the upstream, so logging out goes there and its session ends.
    let (authorize, _, _, _) = p.broker.authorize_url("rp", &[("prompt", "login")]);
    b.login(&p.broker, &authorize, EVA, PASSWORD).await;
    let page = b.get(&p.broker.url("/oidc/logout")).await;
    let r = b
        .post(
            &p.broker.url("/oidc/logout"),
            &[("csrf", &hidden(&page.body, "csrf"))],
        )
        .await;
    let at_upstream = r.location.unwrap();
    assert!(
        at_upstream.starts_with(&p.upstream.url("/saml/slo?SAMLRequest=")),
        "{at_upstream}"
    );
    let mut r = ub.get(&at_upstream).await;
    while r.status == 303
        && r.location
            .as_deref()
            .is_some_and(|l| l.starts_with(&p.upstream.base))
    {
        r = ub.get(&r.location.unwrap()).await;
    }
    assert!(!ub.has_sso(), "the upstream's session ended");
    let r = b.get(&r.location.unwrap()).await;
    assert_eq!(r.location.unwrap(), p.broker.url("/logged-out"));
}
