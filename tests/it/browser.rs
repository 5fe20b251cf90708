//! Logins in a real browser (headless Chromium through chromedriver). The reqwest-based
//! `Browser` in helpers cannot tell whether a browser would send the SSO cookie; Chromium
//! applies SameSite, Secure and `__Host-` rules itself.
//!
//! The relying parties here are served by the test on `http://localhost:PORT`, while the IdP
//! is `https://127.0.0.1:PORT`: different sites, so the SAML POST binding's form post to the
//! IdP is a cross-site request, as it is in production.

use crate::helpers::*;
use crate::webdriver::{Driver, Session};
use axum::extract::{Form, RawQuery, State};
use axum::response::Html;
use axum::routing::{get, post};
use std::collections::HashMap;
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
    let sp = TestRp::start(&app).await;
    let metadata = app.dir.path().join("sp-metadata.xml");
    std::fs::write(&metadata, sp.saml_metadata()).unwrap();
    let out = cli(
        &app,
        &["sp", "add", "--metadata", metadata.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "sp add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let driver = Driver::start().await;
    let browser = driver.session().await;
    let acs = sp.url("/acs");

    // (a) No session yet: the IdP asks for a password, then posts a response to the ACS.
    browser.goto(&sp.url("/start")).await;
    browser
        .wait_for_url("the login page", |u| u.starts_with(&app.url("/login?tx=")))
        .await;
    log_in(&browser, "elev.anna").await;
    browser.wait_for_url("the ACS", |u| u == acs).await;
    assert!(browser.source().await.contains("received"));
    assert_sso_cookie(&browser, &app).await;

    // A fresh login from here on would carry a later AuthnInstant.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // (b) The session exists: the cross-site POST carries the cookie and no page stops the
    // browser on its way back to the ACS.
    browser.goto(&sp.url("/start")).await;
    let at = browser
        .wait_for_url("the ACS", |u| u == acs || u.contains("/login?"))
        .await;
    assert_eq!(
        at, acs,
        "the IdP asked for a password again: the SSO cookie did not come along on the \
         cross-site POST"
    );
    assert!(browser.source().await.contains("received"));
    browser.quit().await;

    let log = sp.log.lock().unwrap();
    assert_eq!(log.request_ids.len(), 2, "two AuthnRequests sent");
    assert_eq!(log.responses.len(), 2, "two responses received");
    let (first, second) = (&log.responses[0], &log.responses[1]);
    for (i, r) in log.responses.iter().enumerate() {
        assert!(
            r.xml.contains(SUCCESS),
            "response {i} is not a Success:\n{}",
            r.xml
        );
        assert_eq!(
            xml_attr(&r.xml, "InResponseTo"),
            Some(log.request_ids[i].clone()),
            "{}",
            r.xml
        );
        assert_eq!(
            xml_attr(&r.xml, "Destination"),
            Some(acs.clone()),
            "{}",
            r.xml
        );
        assert_eq!(r.relay_state.as_deref(), Some(relay_state(i).as_str()));
    }
    assert!(
        xml_attr(&second.xml, "IssueInstant") > xml_attr(&first.xml, "IssueInstant"),
        "the second response is a new one"
    );
    let authn_instant = xml_attr(&first.xml, "AuthnInstant");
    assert!(authn_instant.is_some(), "an AuthnStatement:\n{}", first.xml);
    assert_eq!(
        xml_attr(&second.xml, "AuthnInstant"),
        authn_instant,
        "the second response rides on the first login"
    );
}

/// Logs in through the login page the browser is on.
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
/// SAML SP (`/start` sends an AuthnRequest by POST binding, `/acs` receives the response).
struct TestRp {
    base: String,
    log: Arc<Mutex<RpLog>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestRp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the relying party saw, in order.
#[derive(Default)]
struct RpLog {
    /// The query string of every OIDC callback.
    callbacks: Vec<String>,
    /// The ID of every AuthnRequest `/start` sent.
    request_ids: Vec<String>,
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
    base: String,
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
            base: base.clone(),
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
        TestRp { base, log, server }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SP metadata: one POST-binding ACS, no certificate (the requests are unsigned).
    fn saml_metadata(&self) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="{POST_BINDING}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#,
            entity = sp_entity_id(&self.base),
            acs = self.url("/acs"),
        )
    }
}

const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

fn sp_entity_id(base: &str) -> String {
    format!("{base}/sp")
}

/// The RelayState of the i-th AuthnRequest (from 0), so each response can be matched.
fn relay_state(i: usize) -> String {
    format!("relay-{i}")
}

/// A page that posts a fresh AuthnRequest to the IdP by itself (and by a click without
/// JavaScript), like an SP's HTTP-POST binding.
async fn saml_start(State(rp): State<RpState>) -> Html<String> {
    use base64::Engine;
    let id = format!("_{}", uuid::Uuid::new_v4().simple());
    let relay = {
        let mut log = rp.log.lock().unwrap();
        log.request_ids.push(id.clone());
        relay_state(log.request_ids.len() - 1)
    };
    let request = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{sso}" AssertionConsumerServiceURL="{base}/acs" ProtocolBinding="{POST_BINDING}"><saml:Issuer>{entity}</saml:Issuer></samlp:AuthnRequest>"#,
        now = saml_instant(portvakt::unix_now()),
        sso = rp.idp_sso,
        base = rp.base,
        entity = sp_entity_id(&rp.base),
    );
    // Standard base64 and our own ASCII RelayState need no HTML escaping.
    let request = base64::engine::general_purpose::STANDARD.encode(request);
    Html(format!(
        r#"<!doctype html><title>Test SP</title>
<form method="post" action="{sso}">
<input type="hidden" name="SAMLRequest" value="{request}">
<input type="hidden" name="RelayState" value="{relay}">
<button type="submit">Continue</button>
</form>
<script>document.forms[0].submit()</script>"#,
        sso = rp.idp_sso,
    ))
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

/// The value of the first `name="..."` attribute in an XML document: enough for a test that
/// knows the first one belongs to the element it wants (samlp:Response before its Assertion).
fn xml_attr(xml: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = xml.find(&marker)? + marker.len();
    Some(xml[start..].split('"').next()?.to_string())
}

/// A SAML instant (xs:dateTime in UTC, whole seconds) from unix seconds. The days-to-date
/// step is Howard Hinnant's `civil_from_days`; no date crate for one timestamp.
fn saml_instant(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (secs / 3_600, secs % 3_600 / 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[test]
fn saml_instants_are_utc_dates() {
    assert_eq!(saml_instant(0), "1970-01-01T00:00:00Z");
    assert_eq!(saml_instant(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(saml_instant(1_767_225_599), "2025-12-31T23:59:59Z");
}

async fn oidc_callback(State(rp): State<RpState>, RawQuery(q): RawQuery) -> Html<&'static str> {
    rp.log.lock().unwrap().callbacks.push(q.unwrap_or_default());
    Html(RECEIVED)
}

const RECEIVED: &str = "<!doctype html><title>Test RP</title><p>received</p>";
