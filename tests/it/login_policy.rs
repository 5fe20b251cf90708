//! Per-service login policy: the methods a relying party allows and its minimum level,
//! step-up of an SSO session to BankID (proved by the same person, or refused), requests
//! raising the level (OIDC acr_values, SAML RequestedAuthnContext), discovery, and the
//! command line that sets the policy.

use crate::bankid::{ERIK, app_api, by_qr, done, person, poll_until, scan, start, with_bankid};
use crate::helpers::{
    Browser, PASSWORD, RP_REDIRECT, Resp, SECRET, TestApp, cli, hidden, jwt_claims, query_param,
    spawn_app_with,
};
use crate::saml_sp::{
    self, BAS, SUCCESS, TWO_FACTOR, TestSp, attributes, form_response, idp_cert, status_of,
    verified_assertion,
};
use portvakt::saml::xml;
use serde_json::{Value, json};

const TOLVAN: &str = "191212121212";

async fn app_with_bankid() -> TestApp {
    let app = spawn_app_with(with_bankid).await;
    app.add_client("rp", |_| {}).await;
    app
}

/// Runs the CLI and insists on success.
fn run(app: &TestApp, args: &[&str]) {
    let out = cli(app, args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// From an authorize URL to the login page (through the redirect).
async fn login_page_for(b: &Browser, url: &str) -> Resp {
    let r = b.get(url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(to.contains("/login?tx="), "expected the login page: {to}");
    b.get(&to).await
}

/// Exchanges the code in `cb` at `client` for tokens; returns the ID token's claims.
async fn id_token_claims(app: &TestApp, client: &str, cb: &str, verifier: &str) -> Value {
    let code = query_param(cb, "code").unwrap_or_else(|| panic!("no code in {cb}"));
    let (status, body) = app
        .token(
            client,
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    jwt_claims(body["id_token"].as_str().unwrap())
}

fn amr(claims: &Value) -> Vec<String> {
    claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_client_that_allows_only_bankid_goes_straight_to_bankid() {
    let app = app_with_bankid().await;
    person(&app, "erik", ERIK).await;
    run(
        &app,
        &["client", "update", "rp", "--allow-method", "bankid"],
    );
    let b = app.browser();
    let (url, _, _, verifier) = app.authorize_url("rp", &[]);
    let page = login_page_for(&b, &url).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    assert!(page.body.contains("action=\"/login/bankid\""));
    // The password form cannot be posted around the page either.
    let (tx, csrf) = (hidden(&page.body, "tx"), hidden(&page.body, "csrf"));
    let r = b.post_login(&app, &tx, &csrf, "erik", PASSWORD).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!b.has_sso());
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    assert_eq!(v["state"], "complete", "{v}");
    let r = b.get(&app.url(v["next"].as_str().unwrap())).await;
    let claims = id_token_claims(&app, "rp", &r.location.unwrap(), &verifier).await;
    assert_eq!(claims["acr"], TWO_FACTOR);
    assert_eq!(amr(&claims), vec!["bankid"]);

    // Without BankID enabled nothing the client allows is available: a page that says so.
    let plain = spawn_app_with(|_| {}).await;
    plain.add_client("rp", |_| {}).await;
    run(
        &plain,
        &["client", "update", "rp", "--allow-method", "bankid"],
    );
    let b = plain.browser();
    let (url, _, _, _) = plain.authorize_url("rp", &[]);
    let page = login_page_for(&b, &url).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body
            .contains("kräver ett sätt att logga in som inte finns här"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_password_session_is_stepped_up_to_bankid_for_a_2fa_client() {
    let app = app_with_bankid().await;
    app.add_client("strong", |_| {}).await;
    run(
        &app,
        &["client", "update", "strong", "--min-level", TWO_FACTOR],
    );
    person(&app, "erik", ERIK).await;
    person(&app, "tolvan", TOLVAN).await;
    let b = app.browser();
    let (url, _, _, verifier) = app.authorize_url("rp", &[]);
    let cb = b.login(&app, &url, "erik", PASSWORD).await;
    let first = id_token_claims(&app, "rp", &cb, &verifier).await;
    assert_eq!(first["acr"], BAS);

    // The 2fa client does not take the password session: BankID only, for erik.
    let (url, _, _, verifier) = app.authorize_url("strong", &[]);
    let page = login_page_for(&b, &url).await;
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    let (s, _) = app_api(
        &app,
        "approve",
        json!({"qrData": scan(&b, &app, &order).await, "personalNumber": TOLVAN}),
    )
    .await;
    assert_eq!(s, 400, "the order names erik's personal number");
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    assert_eq!(v["state"], "complete", "{v}");
    let r = b.get(&app.url(v["next"].as_str().unwrap())).await;
    let claims = id_token_claims(&app, "strong", &r.location.unwrap(), &verifier).await;
    assert_eq!(claims["acr"], TWO_FACTOR);
    let methods = amr(&claims);
    assert!(
        methods.contains(&"pwd".to_string()) && methods.contains(&"bankid".to_string()),
        "{methods:?}"
    );

    // The raised session still answers the ordinary client, now at 2fa, as the same person.
    let (url, _, _, verifier) = app.authorize_url("rp", &[("prompt", "none")]);
    let r = b.get(&url).await;
    let again = id_token_claims(&app, "rp", &r.location.unwrap(), &verifier).await;
    assert_eq!(again["sub"], first["sub"]);
    assert_eq!(again["acr"], TWO_FACTOR);
}

#[tokio::test]
async fn acr_values_raise_the_requirement_and_never_lower_it() {
    let app = app_with_bankid().await;
    app.add_client("strong", |_| {}).await;
    run(
        &app,
        &["client", "update", "strong", "--min-level", TWO_FACTOR],
    );
    person(&app, "erik", ERIK).await;
    let b = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    b.login(&app, &url, "erik", PASSWORD).await;
    // A bas client asking for 2fa: no silent reuse of the password session.
    let (url, _, _, _) = app.authorize_url("rp", &[("acr_values", TWO_FACTOR)]);
    let page = login_page_for(&b, &url).await;
    assert!(!page.body.contains("name=\"password\""));
    let (url, _, _, _) = app.authorize_url("rp", &[("acr_values", TWO_FACTOR), ("prompt", "none")]);
    let r = b.get(&url).await;
    let to = r.location.unwrap();
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("login_required"),
        "{to}"
    );
    // A 2fa client asking for bas still gets 2fa: a request cannot lower the minimum.
    let (url, _, _, _) = app.authorize_url("strong", &[("acr_values", BAS), ("prompt", "none")]);
    let r = b.get(&url).await;
    let to = r.location.unwrap();
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("login_required"),
        "{to}"
    );
}

#[tokio::test]
async fn a_step_up_by_another_person_is_refused_and_the_session_stays() {
    let app = app_with_bankid().await;
    app.add_client("strong", |_| {}).await;
    run(
        &app,
        &["client", "update", "strong", "--min-level", TWO_FACTOR],
    );
    // erik has no personal number, so the order cannot name him: BankID lets anyone
    // answer it, and Portvakt's own check must refuse tolvan.
    saml_sp::add_person_as(&app, saml_sp::new_person("erik")).await;
    person(&app, "tolvan", TOLVAN).await;
    let b = app.browser();
    let (url, _, _, verifier) = app.authorize_url("rp", &[]);
    let cb = b.login(&app, &url, "erik", PASSWORD).await;
    let first = id_token_claims(&app, "rp", &cb, &verifier).await;

    let (url, _, _, _) = app.authorize_url("strong", &[]);
    let page = login_page_for(&b, &url).await;
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    let text = scan(&b, &app, &order).await;
    let (s, v) = app_api(
        &app,
        "approve",
        json!({"qrData": text, "personalNumber": TOLVAN}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let v = poll_until(&b, &app, &order, done).await;
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("en annan person"),
        "{v}"
    );
    let audit = portvakt::storage::records::recent_audit(&app.db, 10)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|a| a.1 == "login.step_up_refused"),
        "{audit:?}"
    );

    // erik's session is as it was: the bas client gets erik at bas without a login.
    let (url, _, _, verifier) = app.authorize_url("rp", &[("prompt", "none")]);
    let r = b.get(&url).await;
    let again = id_token_claims(&app, "rp", &r.location.unwrap(), &verifier).await;
    assert_eq!(again["sub"], first["sub"]);
    assert_eq!(again["acr"], BAS);
    assert_eq!(amr(&again), vec!["pwd"]);
}

#[tokio::test]
async fn discovery_lists_the_levels_the_enabled_methods_reach() {
    let discovery = |app: &TestApp| {
        let (client, url) = (app.client(), app.url("/.well-known/openid-configuration"));
        async move {
            let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            v["acr_values_supported"].clone()
        }
    };
    let plain = spawn_app_with(|_| {}).await;
    assert_eq!(discovery(&plain).await, json!([BAS]));
    let with = spawn_app_with(with_bankid).await;
    assert_eq!(discovery(&with).await, json!([BAS, TWO_FACTOR]));
}

/// SP-initiated SSO up to the login page or the answer.
async fn saml_sso(app: &TestApp, b: &Browser, sp: &TestSp, extra: &str) -> Resp {
    let id = format!("_authn-{}", portvakt::keys::random_token());
    let req = sp.authn_request(app, &id, "", extra);
    b.get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await
}

#[tokio::test]
async fn saml_step_up_for_a_2fa_sp_and_requested_authn_context_raising() {
    let app = app_with_bankid().await;
    person(&app, "erik", ERIK).await;
    let bas_sp = TestSp::new("http://127.0.0.1:9/bas");
    bas_sp.register(&app, &["--release", "eduPersonAssurance"]);
    let strong = TestSp::new("http://127.0.0.1:9/strong");
    strong.register(
        &app,
        &["--release", "eduPersonAssurance", "--min-level", TWO_FACTOR],
    );
    let b = app.browser();
    let subject = bas_sp.log_in(&app, &b, Some(("erik", PASSWORD))).await;
    assert!(!subject.name_id.is_empty());

    // The bas SP asking for 2fa in RequestedAuthnContext: a login, not the password session.
    let rac = format!(
        r#"<samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>{TWO_FACTOR}</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>"#
    );
    let r = saml_sso(&app, &b, &bas_sp, &rac).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().contains("/login?tx="));

    // The 2fa SP: step-up with BankID, then AuthnContextClassRef and eduPersonAssurance 2fa.
    let r = saml_sso(&app, &b, &strong, "").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get(&r.location.unwrap()).await;
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    let (order, _) = start(&b, &app, &page, "other", "login").await;
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    assert_eq!(v["state"], "complete", "{v}");
    let form = b.get(&app.url(v["next"].as_str().unwrap())).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let (action, response, _) = form_response(&form);
    assert_eq!(action, strong.acs);
    assert_eq!(status_of(&response).0, SUCCESS);
    let assertion = verified_assertion(&response, &idp_cert(&app).await);
    let mut refs = Vec::new();
    assertion.descendants(xml::SAML, "AuthnContextClassRef", &mut refs);
    assert_eq!(refs[0].trimmed_text(), TWO_FACTOR);
    assert_eq!(
        attributes(&assertion)["eduPersonAssurance"],
        vec![TWO_FACTOR.to_string()]
    );
}

#[tokio::test]
async fn the_command_line_refuses_unknown_methods_and_levels() {
    let app = spawn_app_with(|_| {}).await;
    app.add_client("rp", |_| {}).await;
    for (args, says) in [
        (
            vec!["client", "update", "rp", "--allow-method", "sms"],
            "unknown login method",
        ),
        (
            vec![
                "client",
                "update",
                "rp",
                "--allow-method",
                "upstream:Bad/Name",
            ],
            "invalid upstream name",
        ),
        (
            vec!["client", "update", "rp", "--min-level", "urn:x"],
            "unknown level of assurance",
        ),
        (
            vec!["sp", "update", "http://x/sp", "--allow-method", "sms"],
            "unknown login method",
        ),
        (
            vec!["sp", "update", "http://x/sp", "--min-level", "loa3"],
            "unknown level of assurance",
        ),
    ] {
        let out = cli(&app, &args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
    // upstream:NAME must name a registered upstream: exit code 2, one line naming the
    // known ones.
    for args in [
        vec![
            "client",
            "update",
            "rp",
            "--allow-method",
            "upstream:kommun",
        ],
        vec![
            "sp",
            "update",
            "http://x/sp",
            "--allow-method",
            "upstream:kommun",
        ],
    ] {
        let out = cli(&app, &args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("no upstream kommun") && err.contains("known upstreams: none"),
            "{err}"
        );
    }
    register_kommun(&app);
    register_upstream(&app, "skolfed");
    let out = cli(
        &app,
        &[
            "client",
            "update",
            "rp",
            "--allow-method",
            "upstream:kommunn",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("known upstreams: kommun, skolfed"), "{err}");
    // A registered upstream is taken; list shows the policy (text and JSON).
    run(
        &app,
        &[
            "client",
            "update",
            "rp",
            "--allow-method",
            "password",
            "--allow-method",
            "upstream:kommun",
            "--min-level",
            BAS,
        ],
    );
    let out = cli(&app, &["client", "list", "--json"], None);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v[0]["allowed_methods"],
        json!(["password", "upstream:kommun"])
    );
    assert_eq!(v[0]["min_level"], BAS);
    let text = String::from_utf8_lossy(&cli(&app, &["client", "list"], None).stdout).to_string();
    assert!(text.contains("methods: password,upstream:kommun"), "{text}");
    // Removing an upstream a policy allows is refused, naming who allows it.
    let out = cli(&app, &["upstream", "remove", "kommun"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("upstream kommun is still allowed by client rp"),
        "{err}"
    );
    assert!(
        portvakt::authn::upstream::get(&app.db, "kommun")
            .await
            .unwrap()
            .is_some(),
        "the upstream stays"
    );
    // One that no policy names goes.
    run(&app, &["upstream", "remove", "skolfed"]);
    run(
        &app,
        &[
            "client",
            "update",
            "rp",
            "--allow-any-method",
            "--no-min-level",
        ],
    );
    let out = cli(&app, &["client", "list", "--json"], None);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["allowed_methods"], json!([]));
    assert_eq!(v[0]["min_level"], Value::Null);
}

/// Registers an OpenID provider upstream `name` (never contacted by these tests), so the
/// command line takes `--allow-method upstream:NAME`.
fn register_upstream(app: &TestApp, name: &str) {
    let out = cli(
        app,
        &[
            "upstream",
            "add",
            name,
            "--oidc",
            "https://idp.kommun.example",
            "--client-id",
            "portvakt",
            "--client-secret-stdin",
            "--link-on",
            "email=email",
            "--require-claim",
            "tid=t1",
        ],
        Some("hemligt-hemligt\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn register_kommun(app: &TestApp) {
    register_upstream(app, "kommun");
}

/// An upstream "kommun" at level loa3, as the upstream registry would name it.
fn kommun_upstream(app: &TestApp) {
    register_kommun(app);
    use portvakt::authn::policy::UpstreamMethod;
    app.state
        .authn
        .set_upstreams(std::sync::Arc::new(vec![UpstreamMethod {
            name: "kommun".into(),
            level: LOA3.into(),
            display_name: "Kommunens konto".into(),
            provider_id: "https://idp.kommun.example".into(),
        }]));
}

const LOA3: &str = "http://id.elegnamnden.se/loa/1.0/loa3";

#[tokio::test]
async fn upstreams_are_offered_chosen_in_advance_and_gone_to_directly() {
    let app = app_with_bankid().await;
    kommun_upstream(&app);
    app.add_client("only-kommun", |_| {}).await;
    run(
        &app,
        &[
            "client",
            "update",
            "only-kommun",
            "--allow-method",
            "upstream:kommun",
        ],
    );
    let b = app.browser();
    // Every method allowed: the page links the upstream by its display name.
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let page = login_page_for(&b, &url).await;
    assert!(page.body.contains("Kommunens konto"), "{}", page.body);
    assert!(page.body.contains("href=\"/upstream/kommun/start?tx="));
    assert!(page.body.contains("name=\"password\""));
    // idp_hint naming it: straight there; naming something else: ignored.
    let (url, _, _, _) = app.authorize_url("rp", &[("idp_hint", "kommun")]);
    let r = b.get(&login_page_url(&b, &url).await).await;
    assert_eq!(r.status, 303);
    let to = r.location.unwrap();
    assert!(to.contains("/upstream/kommun/start?tx="), "{to}");
    let (url, _, _, _) = app.authorize_url("rp", &[("idp_hint", "elsewhere")]);
    let page = login_page_for(&b, &url).await;
    assert_eq!(page.status, 200);
    // A client that allows only the upstream goes straight there.
    let (url, _, _, _) = app.authorize_url("only-kommun", &[]);
    let r = b.get(&login_page_url(&b, &url).await).await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().contains("/upstream/kommun/start?tx="));
    // A 2fa requirement: BankID and the loa3 upstream reach it, the password does not.
    let (url, _, _, _) = app.authorize_url("rp", &[("acr_values", TWO_FACTOR)]);
    let page = login_page_for(&b, &url).await;
    assert!(!page.body.contains("name=\"password\""));
    assert!(page.body.contains("/upstream/kommun/start?tx="));
    // Discovery lists the upstream's level too.
    let d: Value = app
        .client()
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["acr_values_supported"], json!([BAS, TWO_FACTOR, LOA3]));

    // SAML Scoping's IDPList names the upstream by its entityID: straight there.
    let sp = TestSp::new("http://127.0.0.1:9/scoped");
    sp.register(&app, &[]);
    let scoping = r#"<samlp:Scoping><samlp:IDPList><samlp:IDPEntry ProviderID="https://unknown.example"/><samlp:IDPEntry ProviderID="https://idp.kommun.example"/></samlp:IDPList></samlp:Scoping>"#;
    let r = saml_sso(&app, &b, &sp, scoping).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location.unwrap()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().contains("/upstream/kommun/start?tx="));
}

/// The login page URL an authorize request is sent to.
async fn login_page_url(b: &Browser, url: &str) -> String {
    let r = b.get(url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    r.location.unwrap()
}

/// The one finish-login check, as the upstream login calls it: a step-up through an
/// upstream that resolves to another person is refused; the session's own person passes
/// and the session says `fed` at the upstream's level.
#[tokio::test]
async fn finish_login_refuses_an_upstream_step_up_by_another_person() {
    use portvakt::authn::{AuthnError, LoginRefused, MethodUse};
    let app = app_with_bankid().await;
    kommun_upstream(&app);
    app.add_client("strong", |_| {}).await;
    run(
        &app,
        &["client", "update", "strong", "--min-level", TWO_FACTOR],
    );
    let erik = person(&app, "erik", ERIK).await;
    let tolvan = person(&app, "tolvan", TOLVAN).await;
    let b = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    b.login(&app, &url, "erik", PASSWORD).await;
    let (url, _, _, _) = app.authorize_url("strong", &[]);
    let page = login_page_for(&b, &url).await;
    let authn = &app.state.authn;
    let now = app.clock.now();
    let tx = authn
        .transaction(&hidden(&page.body, "tx"), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.step_up_person.as_deref(), Some(erik.id.as_str()));
    let fed = || MethodUse::new("upstream:kommun", LOA3, now);
    let refused = authn.finish_login(&tx, &tolvan.id, fed(), None, now).await;
    assert!(
        matches!(refused, Err(AuthnError::Refused(LoginRefused::OtherPerson))),
        "{refused:?}"
    );
    // A method the client does not allow is refused too.
    run(
        &app,
        &["client", "update", "strong", "--allow-method", "bankid"],
    );
    let (url, _, _, _) = app.authorize_url("strong", &[]);
    let page = login_page_for(&b, &url).await;
    let strict = authn
        .transaction(&hidden(&page.body, "tx"), now)
        .await
        .unwrap()
        .unwrap();
    let refused = authn
        .finish_login(&strict, &erik.id, fed(), None, now)
        .await;
    assert!(
        matches!(refused, Err(AuthnError::Refused(LoginRefused::NotAllowed))),
        "{refused:?}"
    );
    let (_, session) = authn
        .finish_login(&tx, &erik.id, fed(), None, now)
        .await
        .unwrap();
    assert_eq!(session.person_id, erik.id);
    assert_eq!(session.acr, LOA3);
    assert_eq!(session.amr(), vec!["fed"]);
}

/// A password reset (a BankID login for the person's own password) inside the login of a
/// client that allows only passwords does not answer that client: after the new password
/// the person logs in with it.
#[tokio::test]
async fn a_password_reset_does_not_answer_a_password_only_client() {
    let app = app_with_bankid().await;
    person(&app, "erik", ERIK).await;
    run(
        &app,
        &["client", "update", "rp", "--allow-method", "password"],
    );
    let b = app.browser();
    let (url, _, _, _) = app.authorize_url("rp", &[]);
    let page = login_page_for(&b, &url).await;
    assert!(page.body.contains("name=\"password\""));
    assert!(
        !page.body.contains("name=\"device\""),
        "no BankID login offered"
    );
    let tx = hidden(&page.body, "tx");
    let reset = b.get(&app.url(&format!("/login?tx={tx}&reset=1"))).await;
    let (order, _) = start(&b, &app, &reset, "other", "password").await;
    let v = by_qr(&b, &app, &order, "approve", ERIK).await;
    assert_eq!(v["state"], "complete", "{v}");
    let form = b.get(&app.url(v["next"].as_str().unwrap())).await;
    let csrf = hidden(&form.body, "csrf");
    let new = "ett helt nytt lösenord";
    let r = b
        .post(
            &app.url("/password"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("password", new),
                ("repeat", new),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location.unwrap()).await;
    let to = r.location.unwrap();
    assert!(
        to.contains("/login?tx="),
        "the BankID session must not answer: {to}"
    );
    let page = b.get(&to).await;
    let csrf = hidden(&page.body, "csrf");
    let r = b.post_login(&app, &tx, &csrf, "erik", new).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location.unwrap()).await;
    assert!(query_param(&r.location.unwrap(), "code").is_some());
}

/// `[[login_policy]]` in the config file sets a registered relying party's policy at start,
/// as `client update --allow-method --min-level` would; an entry naming no relying party, an
/// unknown method, an unregistered upstream or an unknown level stops the start with a line
/// naming the entry.
#[tokio::test]
async fn login_policies_in_the_config_file_are_applied_at_start() {
    use portvakt::config::LoginPolicyConfig;
    let app = crate::helpers::spawn_app().await;
    app.add_client("one", |_| {}).await;
    let entry = LoginPolicyConfig {
        relying_party: "one".into(),
        allow_methods: vec!["bankid".into()],
        min_level: Some(TWO_FACTOR.into()),
    };
    let start = |entry: LoginPolicyConfig| {
        let mut config = app.config.clone();
        config.login_policies = vec![entry];
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        portvakt::app::App::build_on(config, false, listener)
    };
    start(entry.clone()).await.expect("applied");
    let rec = portvakt::storage::clients::get(&app.state.db, "one")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.login.allowed_methods, vec!["bankid".to_string()]);
    assert_eq!(rec.login.min_level.as_deref(), Some(TWO_FACTOR));

    let with = |f: &dyn Fn(&mut LoginPolicyConfig)| {
        let mut e = entry.clone();
        f(&mut e);
        e
    };
    for (bad, why) in [
        (
            with(&|e| e.relying_party = "nobody".into()),
            "no OIDC client or SAML SP",
        ),
        (
            with(&|e| e.allow_methods = vec!["sms".into()]),
            "unknown login method",
        ),
        (
            with(&|e| e.allow_methods = vec!["upstream:ghost".into()]),
            "no upstream \"ghost\" is registered",
        ),
        (
            with(&|e| e.min_level = Some("urn:x".into())),
            "unknown level",
        ),
    ] {
        let err = start(bad).await.err().expect("refused").to_string();
        assert!(
            err.contains("[[login_policy]]") && err.contains(why),
            "{why}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // `client add` of a relying party the file names applies its policy at once.
    let file = app.dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[[login_policy]]\nrelying_party = \"two\"\nallow_methods = [\"bankid\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args([
            "client",
            "add",
            "--client-id",
            "two",
            "--public",
            "--redirect-uri",
            RP_REDIRECT,
        ])
        .env("PORTVAKT_DATABASE_URL", &app.config.database_url)
        .env("PORTVAKT_DATA_DIR", &app.config.data_dir)
        .env("PORTVAKT_ISSUER", &app.config.issuer)
        .env("PORTVAKT_CONFIG", &file)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = portvakt::storage::clients::get(&app.state.db, "two")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.login.allowed_methods, vec!["bankid".to_string()]);
}
