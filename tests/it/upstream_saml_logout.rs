//! Single logout between the broker and an upstream SAML IdP (a second Portvakt, the
//! setup of `upstream_saml_flow`), in the direction the broker starts: its logout (OIDC
//! end_session, or a SAML SP's LogoutRequest) sends the browser to the upstream's
//! SingleLogoutService, whose LogoutResponse continues the broker's logout.

use crate::helpers::*;
use crate::saml_sp::{form_response, sso_until_form};
use crate::upstream_saml_flow::{EVA, Pair, pair, redirect_request};

/// Eva logs in at the broker's relying party through the upstream IdP: (the broker's
/// browser, the upstream's browser), both with a session.
async fn logged_in_through_the_upstream(p: &Pair) -> (Browser, Browser) {
    let (b, ub) = (p.broker.browser(), p.upstream.browser());
    let (authorize, _, _, _) = p.broker.authorize_url("rp", &[]);
    let (tx, _, _) = b.open_login(&authorize).await;
    let to_idp = b
        .get(&p.broker.url(&format!("/upstream/kommun/start?tx={tx}")))
        .await
        .location
        .unwrap();
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
    (b, ub)
}

/// Logging out of the broker (OIDC end_session) sends the browser to the upstream's
/// SingleLogoutService with a signed LogoutRequest: the upstream's session ends too, and its
/// LogoutResponse at `/upstream/kommun/slo` continues to where the broker's logout was
/// going. A LogoutResponse signed by another key, or for a request we never sent, is refused.
#[tokio::test]
async fn logging_out_of_the_broker_logs_out_at_the_upstream_saml_idp_too() {
    use portvakt::upstream::saml::logout::{self, LogoutRequest};
    use portvakt::upstream::saml::metadata::{self, Endpoint, IdpMetadata};
    use portvakt::upstream::saml::{REDIRECT, SpEndpoints};
    let p = pair().await;
    let (b, ub) = logged_in_through_the_upstream(&p).await;
    assert!(b.has_sso() && ub.has_sso());

    let page = b.get(&p.broker.url("/oidc/logout")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = b
        .post(
            &p.broker.url("/oidc/logout"),
            &[("csrf", &hidden(&page.body, "csrf"))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!b.has_sso(), "the broker's session ended");
    let at_upstream = r.location.unwrap();
    assert!(
        at_upstream.starts_with(&p.upstream.url("/saml/slo?SAMLRequest=")),
        "{at_upstream}"
    );
    let (request_xml, relay) = redirect_request(&at_upstream);
    assert!(request_xml.contains("LogoutRequest"), "{request_xml}");
    assert!(at_upstream.contains("&Signature="), "signed: {at_upstream}");

    // A LogoutResponse to that request signed by someone else: refused, goes nowhere.
    let now = p.broker.clock.now();
    let md_text = p
        .upstream
        .client()
        .get(p.upstream.url("/saml/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let upstream_md = metadata::parse(&md_text, now).unwrap();
    let request_id = portvakt::xmlsec::xml::parse(&request_xml)
        .unwrap()
        .attr("ID")
        .unwrap()
        .to_string();
    let broker_slo = p.broker.url("/upstream/kommun/slo");
    let forge = |id: &str, relay: &str| {
        let key = openssl::rsa::Rsa::generate(2048)
            .and_then(openssl::pkey::PKey::from_rsa)
            .and_then(|k| k.private_key_to_pkcs8())
            .unwrap();
        let as_idp = IdpMetadata {
            entity_id: "x".into(),
            display_name: None,
            sso: String::new(),
            slo: vec![Endpoint {
                binding: REDIRECT.into(),
                location: broker_slo.clone(),
                response_location: None,
            }],
            signing_certs: vec![],
            want_authn_requests_signed: false,
            valid_until: None,
        };
        let as_sp = SpEndpoints {
            entity_id: upstream_md.entity_id.clone(),
            ..SpEndpoints::new(&p.broker.base, "kommun")
        };
        let request = LogoutRequest {
            id: id.into(),
            name_id: "x".into(),
            session_indexes: vec![],
            relay_state: Some(relay.into()),
        };
        logout::response_url(&as_idp, &as_sp, &request, true, &key, now)
            .unwrap()
            .unwrap()
    };
    let forged = b.get(&forge(&request_id, &relay)).await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.location.is_none());

    // The upstream ends its session and answers, signed, at the broker's SLO.
    let mut r = ub.get(&at_upstream).await;
    while r.status == 303
        && r.location
            .as_deref()
            .is_some_and(|l| l.starts_with(&p.upstream.base))
    {
        r = ub.get(&r.location.unwrap()).await;
    }
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!ub.has_sso(), "the upstream's session ended");
    let back = r.location.unwrap();
    assert!(
        back.starts_with(&format!("{broker_slo}?SAMLResponse=")),
        "{back}"
    );
    let r = b.get(&back).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.unwrap(), p.broker.url("/logged-out"));
    // The genuine answer with its RelayState swapped for another request's: the signature
    // covers the RelayState, and the MAC binds it to our request's ID.
    let swapped = back.replace(
        &format!(
            "RelayState={}",
            url::form_urlencoded::byte_serialize(relay.as_bytes()).collect::<String>()
        ),
        "RelayState=elsewhere.x",
    );
    assert_ne!(swapped, back);
    assert_eq!(b.get(&swapped).await.status, 400);
}

/// A SAML SP's LogoutRequest to the broker, for a session that came from the upstream: the
/// broker's session ends, the browser logs out at the upstream too, and then the SP gets
/// the broker's signed LogoutResponse with its RelayState.
#[tokio::test]
async fn an_sps_logout_at_the_broker_logs_out_at_the_upstream_too() {
    use crate::saml_sp::TestSp;
    let p = pair().await;
    let sp = TestSp::new("https://sp-a.example.se").signing();
    sp.register(&p.broker, &[]);
    let (b, ub) = logged_in_through_the_upstream(&p).await;
    let told = sp.log_in(&p.broker, &b, None).await;

    let request = sp.logout_request(&p.broker, "_slo-sp-1", &told);
    let r = b
        .get(&sp.redirect_url(
            &p.broker.url("/saml/slo"),
            "SAMLRequest",
            &request,
            Some("sp-relay"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
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
    let back = r.location.unwrap();
    assert!(
        back.starts_with(&p.broker.url("/upstream/kommun/slo?")),
        "{back}"
    );
    let r = b.get(&back).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to_sp = r.location.unwrap();
    assert!(
        to_sp.starts_with(&format!("{}?SAMLResponse=", sp.slo))
            && to_sp.contains("RelayState=sp-relay"),
        "{to_sp}"
    );
}

/// The upstream starts the logout (its own OIDC logout runs its single logout, which sends
/// the browser to the broker with a LogoutRequest): the broker's session ends in that
/// browser, so the broker's own single logout runs first (the SAML SP the session served gets
/// its LogoutRequest through the browser), and only then does the upstream get the broker's
/// LogoutResponse. No LogoutRequest goes back to the upstream that asked.
#[tokio::test]
async fn a_logout_from_the_upstream_runs_the_brokers_own_single_logout_first() {
    use crate::saml_sp::{SUCCESS, TestSp};
    let p = pair().await;
    let (b, ub) = logged_in_through_the_upstream(&p).await;
    // The broker's session also serves a SAML SP.
    let sp = TestSp::new("https://skolwebb.example.se");
    sp.register(&p.broker, &[]);
    sp.log_in(&p.broker, &b, None).await;

    // The upstream's own logout sends its browser to the broker's SLO.
    let page = ub.get(&p.upstream.url("/oidc/logout")).await;
    let mut r = ub
        .post(
            &p.upstream.url("/oidc/logout"),
            &[("csrf", &hidden(&page.body, "csrf"))],
        )
        .await;
    while r.status == 303
        && r.location
            .as_deref()
            .is_some_and(|l| l.starts_with(&p.upstream.base))
    {
        r = ub.get(&r.location.unwrap()).await;
    }
    let to_broker = r.location.expect("on to the broker");
    assert!(
        to_broker.starts_with(&p.broker.url("/upstream/kommun/slo?SAMLRequest=")),
        "{to_broker}"
    );
    // At the broker: its session ends, and the browser goes to the SP first.
    let mut r = b.get(&to_broker).await;
    while r.status == 303
        && r.location
            .as_deref()
            .is_some_and(|l| l.starts_with(&p.broker.base))
    {
        r = b.get(&r.location.unwrap()).await;
    }
    assert!(!b.has_sso(), "the broker's session ended");
    let at_sp = r.location.expect("a LogoutRequest to the SP");
    assert!(
        at_sp.starts_with(&format!("{}?SAMLRequest=", sp.slo)),
        "{at_sp}"
    );
    let (request_xml, relay) = redirect_request(&at_sp);
    let request = portvakt::xmlsec::xml::parse(&request_xml).unwrap();
    assert!(request.is(portvakt::xmlsec::xml::SAMLP, "LogoutRequest"));
    // The SP answers; the broker's chain ends at its LogoutResponse to the upstream.
    let answer = sp.logout_response(&p.broker, request.attr("ID").unwrap(), SUCCESS);
    let mut r = b
        .get(&sp.redirect_url(
            &p.broker.url("/saml/slo"),
            "SAMLResponse",
            &answer,
            Some(&relay),
        ))
        .await;
    while r.status == 303
        && r.location
            .as_deref()
            .is_some_and(|l| l.starts_with(&p.broker.base))
    {
        r = b.get(&r.location.unwrap()).await;
    }
    let back = r.location.expect("on to the upstream");
    assert!(
        back.starts_with(&p.upstream.url("/saml/slo?SAMLResponse=")),
        "{back}"
    );
}
