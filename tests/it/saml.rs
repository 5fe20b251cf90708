//! The SAML2 IdP, driven like an SP and a browser would.

use crate::helpers::{PASSWORD, spawn_app};
use crate::saml_sp::*;

#[tokio::test]
async fn sp_initiated_redirect_login_gives_a_signed_assertion() {
    let app = spawn_app().await;
    app.add_person("elev.anna", &["student@EKS"]).await;
    let sp = TestSp::new("https://sp.example.se");
    sp.register(
        &app,
        &[
            "--release",
            "givenName",
            "--release",
            "eduPersonAffiliation",
            "--nameid",
            "persistent",
        ],
    );
    let b = app.browser();
    let req = sp.authn_request(&app, "_req1", "", "");
    let url = sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, Some("rs-1"));
    let first = b.get(&url).await;
    let page = sso_until_form(&b, &app, first, Some(("elev.anna", PASSWORD))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (action, xml, relay) = form_response(&page);
    assert_eq!(action, sp.acs);
    assert_eq!(relay.as_deref(), Some("rs-1"));
    assert_eq!(
        status_of(&xml).0,
        "urn:oasis:names:tc:SAML:2.0:status:Success"
    );
    let a = verified_assertion(&xml, &idp_cert(&app).await);
    let attrs = attributes(&a);
    assert_eq!(attrs["givenName"], vec!["Test"]);
    assert_eq!(attrs["eduPersonAffiliation"], vec!["member", "student"]);
    assert_eq!(attrs.len(), 2, "only released attributes: {attrs:?}");
}
