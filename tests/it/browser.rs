//! Logins in a real browser (headless Chromium through chromedriver). The reqwest-based
//! `Browser` in helpers cannot tell whether a browser would send the SSO cookie; Chromium
//! applies SameSite, Secure and `__Host-` rules itself.
//!
//! The relying parties here are served by the test on `http://localhost:PORT`, while the IdP
//! is `https://127.0.0.1:PORT`: different sites, so the SAML POST binding's form post to the
//! IdP is a cross-site request, as it is in production.

use crate::helpers::*;
use crate::saml_sp::{SAML, TestSp, idp_cert, status_of, verified_assertion};
use crate::webdriver::{Driver, Session};
use axum::extract::{Form, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use portvakt::saml::xml;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The browser's first SSO and a second one that must ride on the session; the relying party
/// uses the OIDC code flow.
#[tokio::test]
async fn oidc_login_in_chromium_sets_the_sso_cookie_and_the_next_authorize_needs_no_password() {
    let app = spawn_tls_app().await;
    app.add_person("elev.anna", &["student"]).await;
    let rp = TestRp::start(&app).await;
    app.add_client("browser-rp", |s| s.redirect_uris = vec![rp.url("/cb")])
        .await;
    let driver = Driver::start().await;
    let browser = driver.session().await;

    browser.goto(&authorize_url(&app, &rp, "state-1")).await;
    browser
        .wait_for_url("the login page", |u| u.starts_with(&app.url("/login?tx=")))
        .await;
    log_in(&browser, "elev.anna").await;
    let cb = browser
        .wait_for_url("the callback", |u| u.starts_with(&rp.url("/cb")))
        .await;
    assert_eq!(query_param(&cb, "state").as_deref(), Some("state-1"));
    assert!(query_param(&cb, "code").is_some(), "{cb}");

    assert_sso_cookie(&browser, &app).await;

    // The session answers the next authorize at once: no login page in between.
    browser.goto(&authorize_url(&app, &rp, "state-2")).await;
    let cb = browser
        .wait_for_url("the callback", |u| {
            u.starts_with(&rp.url("/cb")) || u.contains("/login?")
        })
        .await;
    assert_eq!(
        query_param(&cb, "state").as_deref(),
        Some("state-2"),
        "{cb}"
    );
    assert_eq!(rp.log.lock().unwrap().callbacks.len(), 2);
    browser.quit().await;
}

/// SP-initiated SSO with the POST binding. The first AuthnRequest meets no session and gets
/// the login page; the second is a cross-site POST that must carry the SSO cookie, so the
/// browser goes straight back to the SP with a new response from the same login.
#[tokio::test]
async fn saml_post_binding_reuses_the_sso_session_across_sites() {
    let app = spawn_tls_app().await;
    app.add_person("elev.anna", &["student"]).await;
    let rp = TestRp::start(&app).await;
    // Unsigned requests: the SP's certificate in its metadata is not used.
    rp.sp.register(&app, &[]);
    let driver = Driver::start().await;
    let browser = driver.session().await;

    // (a) No session yet: the IdP asks for a password, then posts a response to the ACS.
    rp.queue_authn_request(&app, "_first", "relay-1");
    browser.goto(&rp.url("/start")).await;
    browser
        .wait_for_url("the login page", |u| u.starts_with(&app.url("/login?tx=")))
        .await;
    log_in(&browser, "elev.anna").await;
    browser.wait_for_url("the ACS", |u| u == rp.sp.acs).await;
    assert!(browser.source().await.contains("received"));
    assert_sso_cookie(&browser, &app).await;

    // A fresh login from here on would carry a later AuthnInstant.
    app.clock.advance(1);

    // (b) The session exists: the cross-site POST carries the cookie and no page stops the
    // browser on its way back to the ACS.
    rp.queue_authn_request(&app, "_second", "relay-2");
    browser.goto(&rp.url("/start")).await;
    let at = browser
        .wait_for_url("the ACS", |u| u == rp.sp.acs || u.contains("/login?"))
        .await;
    assert_eq!(
        at, rp.sp.acs,
        "the IdP asked for a password again: the SSO cookie did not come along on the \
         cross-site POST"
    );
    assert!(browser.source().await.contains("received"));
    browser.quit().await;

    let responses = std::mem::take(&mut rp.log.lock().unwrap().responses);
    assert_eq!(responses.len(), 2, "two responses at the ACS");
    let cert = idp_cert(&app).await;
    let mut answered = Vec::new();
    for (post, (request_id, relay)) in responses
        .iter()
        .zip([("_first", "relay-1"), ("_second", "relay-2")])
    {
        let (status, _) = status_of(&post.xml);
        assert_eq!(status, SUCCESS, "{}", post.xml);
        let root = xml::parse(&post.xml).unwrap();
        assert_eq!(root.attr("InResponseTo"), Some(request_id), "{}", post.xml);
        assert_eq!(root.attr("Destination"), Some(rp.sp.acs.as_str()));
        assert_eq!(post.relay_state.as_deref(), Some(relay));
        let assertion = verified_assertion(&post.xml, &cert);
        let authn_instant = assertion
            .child(SAML, "AuthnStatement")
            .and_then(|a| a.attr("AuthnInstant"))
            .expect("an AuthnStatement with an AuthnInstant")
            .to_string();
        let issued = root.attr("IssueInstant").and_then(xml::parse_instant);
        answered.push((issued.expect("an IssueInstant"), authn_instant));
    }
    assert!(
        answered[1].0 > answered[0].0,
        "the second response is a new one"
    );
    assert_eq!(
        answered[1].1, answered[0].1,
        "the second response rides on the first login"
    );
}

/// Logs in through the login page the browser is on.
/// BankID on another device in Chromium: the wait page's script renews the QR code under
/// the page's CSP, polls, and on completion carries the browser on to the relying party.
#[tokio::test]
async fn bankid_qr_login_in_chromium_is_carried_by_the_page_script() {
    use crate::bankid::{ERIK, app_api};
    let (app, rp, _driver, browser) = bankid_login_page("bankid-qr").await;
    let other = browser.find("button[value=other]").await;
    browser.click(&other).await;
    let wait = browser
        .wait_for_url("the wait page", |u| {
            u.starts_with(&app.url("/login/bankid?o="))
        })
        .await;
    let order = query_param(&wait, "o").unwrap();
    // The script has taken over: the no-JavaScript Refresh button is hidden and the QR
    // image's address carries the script's timestamp.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let source = browser.source().await;
    assert!(
        source.contains("&amp;t=") || source.contains("&t="),
        "{source}"
    );
    assert!(source.contains("id=\"bankid-refresh\" hidden"), "{source}");

    // The phone scans the code on the screen (through the stub's scan link, with this
    // browser's cookies) and approves.
    let cookies = browser.cookies().await;
    let header: Vec<String> = cookies
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["name"].as_str().unwrap(),
                c["value"].as_str().unwrap()
            )
        })
        .collect();
    let r = app
        .client()
        .get(app.url(&format!("/login/bankid/stub-scan?o={order}")))
        .header("cookie", header.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let text = query_param(&app.url(&to), "qr").unwrap();
    let (s, v) = app_api(
        &app,
        "approve",
        serde_json::json!({"qrData": text, "personalNumber": ERIK}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let cb = browser
        .wait_for_url("the callback", |u| u.starts_with(&rp.url("/cb")))
        .await;
    assert_eq!(query_param(&cb, "state").as_deref(), Some("bankid-qr"));
    assert_sso_cookie(&browser, &app).await;
    browser.quit().await;
}

/// BankID on this device in Chromium, all by clicks: the app link opens the stub's app
/// page, which identifies and returns to the browser through the returnUrl.
#[tokio::test]
async fn bankid_same_device_login_in_chromium_by_clicks_alone() {
    use crate::bankid::ERIK;
    let (app, rp, _driver, browser) = bankid_login_page("bankid-here").await;
    let this = browser.find("button[value=this]").await;
    browser.click(&this).await;
    browser
        .wait_for_url("the wait page", |u| {
            u.starts_with(&app.url("/login/bankid?o="))
        })
        .await;
    let open = browser.find("#bankid-open").await;
    browser.click(&open).await;
    browser
        .wait_for_url("the stub app", |u| {
            u.starts_with(&app.url("/bankid-stub/app"))
        })
        .await;
    let pn = browser.find("#personal_number").await;
    browser.send_keys(&pn, ERIK).await;
    let approve = browser.find("button[value=approve]").await;
    browser.click(&approve).await;
    let cb = browser
        .wait_for_url("the callback", |u| u.starts_with(&rp.url("/cb")))
        .await;
    assert_eq!(query_param(&cb, "state").as_deref(), Some("bankid-here"));
    browser.quit().await;
}

/// Federation in Chromium: the login page lists the methods the relying party allows (the
/// password and the upstream, not BankID, which this Portvakt has but the relying party does
/// not allow), and a click on the upstream logs in at a second Portvakt the test starts and
/// comes back; the relying party's code buys tokens that say `fed`.
#[tokio::test]
async fn upstream_login_in_chromium_through_a_second_portvakt() {
    use crate::upstream::person_with_email;
    // Portvakt the relying party logs in at, on http://127.0.0.1:PORT.
    let app = spawn_app_with(crate::bankid::with_bankid).await;
    // The upstream, on http://localhost:PORT. Chromium keeps cookies per host whatever the
    // port, and both instances use the same cookie names (`portvakt_sso`, `portvakt_login`):
    // on one host the upstream's would overwrite Portvakt's login binding and session. A
    // second host name keeps them apart, as two real IdPs on two hosts are.
    let up = spawn_app_with(|c| c.issuer = c.issuer.replace("127.0.0.1", "localhost")).await;
    let up_issuer = up.config.issuer.clone();
    assert!(up_issuer.starts_with("http://localhost:"), "{up_issuer}");
    let anna = person_with_email(&app, "anna", "anna@kommun.se").await;
    person_with_email(&up, "anna.a", "anna@kommun.se").await;
    up.add_client("portvakt", |c| {
        c.redirect_uris = vec![app.url("/upstream/kommun/callback")];
    })
    .await;
    let out = cli(
        &app,
        &[
            "upstream",
            "add",
            "kommun",
            "--oidc",
            &up_issuer,
            "--client-id",
            "portvakt",
            "--client-secret-stdin",
            "--link-on",
            "email=email",
            "--require-claim",
            &format!("iss={up_issuer}"),
            "--display-name",
            "Logga in med kommunens konto",
        ],
        Some(SECRET),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rp = TestRp::start(&app).await;
    app.add_client("browser-rp", |s| {
        s.redirect_uris = vec![rp.url("/cb")];
        s.allowed_methods = vec!["password".into(), "upstream:kommun".into()];
    })
    .await;
    let driver = Driver::start().await;
    let browser = driver.session().await;

    let verifier = portvakt::keys::random_token();
    let mut u = url::Url::parse(&app.url("/oidc/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", "browser-rp")
        .append_pair("redirect_uri", &rp.url("/cb"))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", "fed-1")
        .append_pair("nonce", "nonce-fed-1")
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    browser.goto(u.as_str()).await;
    browser
        .wait_for_url("the login page", |u| u.starts_with(&app.url("/login?tx=")))
        .await;
    let page = browser.source().await;
    assert!(page.contains("Logga in med kommunens konto"), "{page}");
    assert!(page.contains("id=\"password\""), "{page}");
    assert!(
        !page.contains("/login/bankid"),
        "BankID is not allowed: {page}"
    );

    let kommun = browser.find("a[href^='/upstream/kommun/start']").await;
    browser.click(&kommun).await;
    browser
        .wait_for_url("the upstream's login page", |u| {
            u.starts_with(&format!("{up_issuer}/login?tx="))
        })
        .await;
    log_in(&browser, "anna.a").await;
    let cb = browser
        .wait_for_url("the callback", |u| u.starts_with(&rp.url("/cb")))
        .await;
    assert_eq!(query_param(&cb, "state").as_deref(), Some("fed-1"), "{cb}");
    let code = query_param(&cb, "code").expect("a code");
    // Portvakt's own SSO cookie on its host: anna's session from the upstream login.
    browser.goto(&app.url("/healthz")).await;
    let cookies = browser.cookies().await;
    let sso = cookies
        .iter()
        .find(|c| c["name"] == "portvakt_sso")
        .and_then(|c| c["value"].as_str())
        .unwrap_or_else(|| panic!("no SSO cookie at Portvakt: {cookies:?}"))
        .to_string();
    browser.quit().await;
    let session = app
        .state
        .authn
        .session(Some(&sso), app.clock.now())
        .await
        .unwrap()
        .expect("a session at Portvakt");
    assert_eq!(session.person_id, anna.id, "linked by email");

    let (status, body) = app
        .token(
            "browser-rp",
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &rp.url("/cb")),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "nonce-fed-1");
    assert_eq!(claims["amr"], serde_json::json!(["fed"]));
    assert_eq!(claims["acr"], portvakt::authn::acr::BAS);
    let (status, info) = app.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], claims["sub"]);
}

/// A TLS app with BankID (the stub) and erik, a relying party, and Chromium at the login
/// page of an authorize request with `state`.
async fn bankid_login_page(state: &str) -> (TestApp, TestRp, Driver, Session) {
    use crate::bankid::{ERIK, person, with_bankid};
    let app = spawn_tls_app_with(with_bankid).await;
    person(&app, "erik", ERIK).await;
    let rp = TestRp::start(&app).await;
    app.add_client("browser-rp", |s| s.redirect_uris = vec![rp.url("/cb")])
        .await;
    let driver = Driver::start().await;
    let browser = driver.session().await;
    browser.goto(&authorize_url(&app, &rp, state)).await;
    browser
        .wait_for_url("the login page", |u| u.starts_with(&app.url("/login?tx=")))
        .await;
    (app, rp, driver, browser)
}

async fn log_in(browser: &Session, username: &str) {
    let user = browser.find("#username").await;
    browser.send_keys(&user, username).await;
    let password = browser.find("#password").await;
    browser.send_keys(&password, PASSWORD).await;
    let submit = browser.find("form button[type=submit]").await;
    browser.click(&submit).await;
}

/// Chromium holds the SSO cookie for the IdP with the attributes a cross-site POST needs:
/// `__Host-` (so Secure, Path=/ and no Domain), SameSite=None, and HttpOnly.
async fn assert_sso_cookie(browser: &Session, app: &TestApp) {
    // WebDriver only shows the cookies of the page's own origin.
    browser.goto(&app.url("/healthz")).await;
    let cookies = browser.cookies().await;
    let sso = cookies
        .iter()
        .find(|c| c["name"] == "__Host-portvakt_sso")
        .unwrap_or_else(|| panic!("no SSO cookie in Chromium: {cookies:?}"));
    assert_eq!(sso["secure"], true, "{sso}");
    assert_eq!(sso["httpOnly"], true, "{sso}");
    assert_eq!(sso["sameSite"], "None", "{sso}");
    assert_eq!(sso["path"], "/", "{sso}");
}

fn authorize_url(app: &TestApp, rp: &TestRp, state: &str) -> String {
    let verifier = portvakt::keys::random_token();
    let mut u = url::Url::parse(&app.url("/oidc/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", "browser-rp")
        .append_pair("redirect_uri", &rp.url("/cb"))
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("state", state)
        .append_pair("nonce", &portvakt::keys::random_token())
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    u.to_string()
}

/// A relying party on another site than the IdP, served by the test: an OIDC callback and a
/// SAML SP (`/start` posts the next queued AuthnRequest, `/acs` receives the response).
struct TestRp {
    base: String,
    /// The SAML side: entity ID `{base}/sp`, ACS `{base}/acs`.
    sp: TestSp,
    log: Arc<Mutex<RpLog>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestRp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the relying party saw and what it is about to send.
#[derive(Default)]
struct RpLog {
    /// The query string of every OIDC callback.
    callbacks: Vec<String>,
    /// AuthnRequests for `/start` to send, in order: (base64 of the XML, RelayState).
    authn_requests: VecDeque<(String, String)>,
    /// Every SAML response posted to `/acs`.
    responses: Vec<SamlPost>,
}

struct SamlPost {
    /// The decoded SAMLResponse.
    xml: String,
    relay_state: Option<String>,
}

#[derive(Clone)]
struct RpState {
    idp_sso: String,
    log: Arc<Mutex<RpLog>>,
}

impl TestRp {
    async fn start(app: &TestApp) -> TestRp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // `localhost`, not 127.0.0.1: another site than the IdP.
        let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let log = Arc::new(Mutex::new(RpLog::default()));
        let state = RpState {
            idp_sso: app.url("/saml/sso"),
            log: log.clone(),
        };
        let router = axum::Router::new()
            .route("/cb", get(oidc_callback))
            .route("/start", get(saml_start))
            .route("/acs", post(saml_acs))
            .with_state(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        TestRp {
            sp: TestSp::new(&base),
            base,
            log,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Makes the next visit to `/start` post this AuthnRequest.
    fn queue_authn_request(&self, app: &TestApp, id: &str, relay_state: &str) {
        use base64::Engine;
        let xml = self.sp.authn_request(app, id, "", "");
        let request = base64::engine::general_purpose::STANDARD.encode(xml);
        let mut log = self.log.lock().unwrap();
        log.authn_requests
            .push_back((request, relay_state.to_string()));
    }
}

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// A page that posts the next queued AuthnRequest to the IdP by itself (and by a click
/// without JavaScript), like an SP's HTTP-POST binding.
async fn saml_start(State(rp): State<RpState>) -> Result<Html<String>, StatusCode> {
    let next = rp.log.lock().unwrap().authn_requests.pop_front();
    let (request, relay) = next.ok_or(StatusCode::NOT_FOUND)?;
    // Base64 and the tests' own RelayStates need no HTML escaping.
    Ok(Html(format!(
        r#"<!doctype html><title>Test SP</title>
<form method="post" action="{sso}">
<input type="hidden" name="SAMLRequest" value="{request}">
<input type="hidden" name="RelayState" value="{relay}">
<button type="submit">Continue</button>
</form>
<script>document.forms[0].submit()</script>"#,
        sso = rp.idp_sso,
    )))
}

async fn saml_acs(
    State(rp): State<RpState>,
    Form(form): Form<HashMap<String, String>>,
) -> Html<&'static str> {
    use base64::Engine;
    let response = form.get("SAMLResponse").expect("a SAMLResponse field");
    let xml = base64::engine::general_purpose::STANDARD
        .decode(response)
        .expect("SAMLResponse is base64");
    rp.log.lock().unwrap().responses.push(SamlPost {
        xml: String::from_utf8(xml).expect("SAMLResponse is UTF-8"),
        relay_state: form.get("RelayState").cloned(),
    });
    Html(RECEIVED)
}

async fn oidc_callback(State(rp): State<RpState>, RawQuery(q): RawQuery) -> Html<&'static str> {
    rp.log.lock().unwrap().callbacks.push(q.unwrap_or_default());
    Html(RECEIVED)
}

const RECEIVED: &str = "<!doctype html><title>Test RP</title><p>received</p>";
