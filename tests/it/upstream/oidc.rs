//! Portvakt federating with a second Portvakt over OpenID Connect: real HTTP, real
//! signatures (ES256 and RS256 ID tokens), driven by a browser with one cookie jar per site.

use super::{last_audit, person_with_email, sql};
use crate::helpers::*;

/// The two sites a person's browser talks to. Both run on 127.0.0.1 and their cookies have
/// the same names, so each keeps its own jar (as a browser would for two hosts).
struct Fed {
    /// Portvakt the relying party logs in at: it federates.
    rp: TestApp,
    /// The upstream: the municipality's staff IdP.
    up: TestApp,
}

const NAME: &str = "personal";

fn ok(out: std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Fed {
    /// Two instances; the upstream knows Portvakt as an OIDC client, and Portvakt knows the
    /// upstream (registered with the CLI) linked by email, pinned to the upstream's issuer.
    async fn new(alg: &str) -> Self {
        let rp = spawn_app().await;
        let up = spawn_app().await;
        let callback = rp.url(&format!("/upstream/{NAME}/callback"));
        let alg = alg.to_string();
        let logged_out = rp.url(&format!("/upstream/{NAME}/logged-out"));
        up.add_client("portvakt", |c| {
            c.redirect_uris = vec![callback.clone()];
            c.post_logout_redirect_uris = vec![logged_out];
            c.id_token_alg = Some(alg);
        })
        .await;
        rp.add_client("lms", |_| {}).await;
        ok(cli(
            &rp,
            &[
                "upstream",
                "add",
                NAME,
                "--oidc",
                &up.base,
                "--client-id",
                "portvakt",
                "--client-secret-stdin",
                "--link-on",
                "email=email",
                "--require-claim",
                &format!("iss={}", up.base),
                "--display-name",
                "Kommunens personalkonto",
            ],
            Some(SECRET),
        ));
        Fed { rp, up }
    }

    /// From the relying party's authorize request to the upstream's authorization request:
    /// returns (the login transaction at Portvakt, the URL at the upstream).
    async fn go_upstream(&self, a: &Browser) -> (String, String) {
        let (url, _, _, _) = self.rp.authorize_url("lms", &[]);
        let (tx, _, page) = a.open_login(&url).await;
        assert!(
            page.body.contains("Kommunens personalkonto"),
            "{}",
            page.body
        );
        let start = format!("/upstream/{NAME}/start?tx={tx}");
        assert!(page.body.contains(&start.replace('&', "&amp;")));
        let r = a.get(&self.rp.url(&start)).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let at_upstream = r.location.unwrap();
        assert!(
            at_upstream.starts_with(&self.up.url("/oidc/authorize?")),
            "{at_upstream}"
        );
        for p in ["state", "nonce", "code_challenge"] {
            assert!(query_param(&at_upstream, p).is_some(), "{p}");
        }
        assert_eq!(
            query_param(&at_upstream, "code_challenge_method").as_deref(),
            Some("S256")
        );
        (tx, at_upstream)
    }

    /// The person logs in at the upstream; returns the callback URL it sends the browser to.
    async fn log_in_upstream(&self, b: &Browser, at_upstream: &str, username: &str) -> String {
        let back = b.login(&self.up, at_upstream, username, PASSWORD).await;
        assert!(
            back.starts_with(&self.rp.url(&format!("/upstream/{NAME}/callback?"))),
            "{back}"
        );
        back
    }

    /// A whole login of `username` through the upstream; returns the response of the
    /// callback at Portvakt.
    async fn login(&self, a: &Browser, b: &Browser, username: &str) -> Resp {
        let (_, at_upstream) = self.go_upstream(a).await;
        let callback = self.log_in_upstream(b, &at_upstream, username).await;
        a.get(&callback).await
    }

    /// After a successful callback: resumes the relying party's request (a code for it)
    /// and returns what Portvakt's session says: person, amr, acr.
    async fn tokens(&self, a: &Browser, callback: Resp) -> serde_json::Value {
        assert_eq!(callback.status, 303, "{}", callback.body);
        let resume = callback.location.unwrap();
        assert!(resume.contains("/oidc/authorize/resume?tx="), "{resume}");
        let r = a.get(&resume).await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert!(
            query_param(&r.location.unwrap(), "code").is_some(),
            "a code for the RP"
        );
        let cookie = a.cookies.lock().unwrap().get("portvakt_sso").cloned();
        let session = self
            .rp
            .state
            .authn
            .session(cookie.as_deref(), self.rp.clock.now())
            .await
            .unwrap()
            .expect("a session at Portvakt");
        serde_json::json!({
            "person_id": session.person_id,
            "amr": session.amr(),
            "acr": session.acr,
        })
    }
}

fn page_says(r: &Resp, status: u16, sv: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.body.contains(sv), "expected {sv:?} in {}", r.body);
}

#[tokio::test]
async fn login_through_an_upstream_portvakt_links_and_the_link_outlives_an_email_change() {
    for alg in ["ES256", "RS256"] {
        let f = Fed::new(alg).await;
        let anna = person_with_email(&f.rp, "anna", "anna@kommun.se").await;
        let anna_up = person_with_email(&f.up, "anna.a", "anna@kommun.se").await;
        let (a, b) = (f.rp.browser(), f.up.browser());
        let cb = f.login(&a, &b, "anna.a").await;
        let s = f.tokens(&a, cb).await;
        assert_eq!(s["person_id"], anna.id.as_str());
        assert_eq!(s["amr"], serde_json::json!(["fed"]));
        assert_eq!(s["acr"], portvakt::authn::acr::BAS);
        let links = portvakt::storage::upstream::link_counts(&f.rp.db)
            .await
            .unwrap();
        assert_eq!(links, vec![(NAME.to_string(), 1)]);
        assert!(
            last_audit(&f.rp, "upstream.link")
                .await
                .unwrap()
                .contains(&anna.id)
        );

        // The email changes upstream; a new browser logs in again: the link decides.
        sql(
            &f.up,
            "UPDATE persons SET email = $1 WHERE id = $2",
            &["anna.ny@kommun.se", &anna_up.id],
        )
        .await;
        let (a, b) = (f.rp.browser(), f.up.browser());
        let cb = f.login(&a, &b, "anna.a").await;
        assert_eq!(f.tokens(&a, cb).await["person_id"], anna.id.as_str());
    }
}

#[tokio::test]
async fn the_relying_party_gets_tokens_that_say_fed() {
    let f = Fed::new("ES256").await;
    person_with_email(&f.rp, "bo", "bo@kommun.se").await;
    person_with_email(&f.up, "bo.b", "bo@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    let (url, state, nonce, verifier) = f.rp.authorize_url("lms", &[]);
    let (tx, _, _) = a.open_login(&url).await;
    let r = a
        .get(&f.rp.url(&format!("/upstream/{NAME}/start?tx={tx}")))
        .await;
    let callback = f.log_in_upstream(&b, &r.location.unwrap(), "bo.b").await;
    let r = a.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = a.get(&r.location.unwrap()).await;
    let back = r.location.unwrap();
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.as_str()));
    let code = query_param(&back, "code").unwrap();
    let (status, body) =
        f.rp.token(
            "lms",
            SECRET,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", RP_REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], nonce.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["fed"]));
    assert_eq!(claims["acr"], portvakt::authn::acr::BAS);
}

#[tokio::test]
async fn unknown_and_ambiguous_people_are_refused_with_their_pages() {
    let f = Fed::new("ES256").await;
    person_with_email(&f.up, "okand", "okand@kommun.se").await;
    person_with_email(&f.up, "delad", "delad@kommun.se").await;
    person_with_email(&f.rp, "d1", "delad@kommun.se").await;
    person_with_email(&f.rp, "d2", "delad@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    let r = f.login(&a, &b, "okand").await;
    page_says(&r, 403, "Vi hittade inget konto här");
    assert!(r.body.contains("/login?tx="), "a way back: {}", r.body);
    assert!(!a.has_sso());
    assert!(
        last_audit(&f.rp, "upstream.refused")
            .await
            .unwrap()
            .contains("reason=unknown")
    );
    let (a, b) = (f.rp.browser(), f.up.browser());
    let r = f.login(&a, &b, "delad").await;
    page_says(&r, 403, "passar in på flera konton");
    assert!(
        last_audit(&f.rp, "upstream.refused")
            .await
            .unwrap()
            .contains("reason=ambiguous")
    );
    assert!(!a.has_sso());
}

#[tokio::test]
async fn a_pinned_claim_that_differs_is_refused() {
    let f = Fed::new("ES256").await;
    person_with_email(&f.rp, "cia", "cia@kommun.se").await;
    person_with_email(&f.up, "cia.c", "cia@kommun.se").await;
    ok(cli(
        &f.rp,
        &[
            "upstream",
            "update",
            NAME,
            "--require-claim",
            "iss=https://annan-kommun.example",
        ],
        None,
    ));
    let (a, b) = (f.rp.browser(), f.up.browser());
    let r = f.login(&a, &b, "cia.c").await;
    page_says(&r, 403, "hör inte till den organisation");
    assert!(
        last_audit(&f.rp, "upstream.refused")
            .await
            .unwrap()
            .contains("pin_mismatch claims=iss")
    );
    assert!(!a.has_sso());
}

#[tokio::test]
async fn a_deactivated_person_cannot_log_in_even_when_linked() {
    let f = Fed::new("ES256").await;
    let eva = person_with_email(&f.rp, "eva", "eva@kommun.se").await;
    person_with_email(&f.up, "eva.e", "eva@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    let cb = f.login(&a, &b, "eva.e").await;
    assert_eq!(cb.status, 303, "{}", cb.body);
    sql(
        &f.rp,
        "UPDATE persons SET status = 'deactivated' WHERE id = $1",
        &[&eva.id],
    )
    .await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    page_says(&f.login(&a, &b, "eva.e").await, 403, "inte längre aktivt");
}

#[tokio::test]
async fn an_upstream_that_is_down_gives_its_page() {
    let rp = spawn_app().await;
    rp.add_client("lms", |_| {}).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    ok(cli(
        &rp,
        &[
            "upstream",
            "add",
            NAME,
            "--oidc",
            &format!("http://127.0.0.1:{closed}"),
            "--client-id",
            "portvakt",
            "--client-secret-stdin",
            "--link-on",
            "preferred_username=username",
        ],
        Some(SECRET),
    ));
    let a = rp.browser();
    let (url, _, _, _) = rp.authorize_url("lms", &[]);
    let (tx, _, _) = a.open_login(&url).await;
    let started = std::time::Instant::now();
    let r = a
        .get(&rp.url(&format!("/upstream/{NAME}/start?tx={tx}")))
        .await;
    page_says(&r, 502, "svarar inte just nu");
    assert!(
        r.body.contains(&format!("/login?tx={tx}")),
        "a way back: {}",
        r.body
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

#[tokio::test]
async fn cancelling_at_the_upstream_gives_its_page_with_a_way_back() {
    let f = Fed::new("ES256").await;
    let a = f.rp.browser();
    let (tx, at_upstream) = f.go_upstream(&a).await;
    let state = query_param(&at_upstream, "state").unwrap();
    let cb = f.rp.url(&format!(
        "/upstream/{NAME}/callback?error=access_denied&state={state}&iss={}",
        f.up.base
    ));
    let r = a.get(&cb).await;
    page_says(&r, 403, "avbröts eller nekades");
    assert!(r.body.contains(&format!("/login?tx={tx}")), "{}", r.body);
    // The login page is still there to choose again.
    assert_eq!(
        a.get(&f.rp.url(&format!("/login?tx={tx}"))).await.status,
        200
    );
}

#[tokio::test]
async fn forged_replayed_and_foreign_browser_states_are_refused() {
    let f = Fed::new("ES256").await;
    let fia = person_with_email(&f.rp, "fia", "fia@kommun.se").await;
    person_with_email(&f.up, "fia.f", "fia@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    let (_, at_upstream) = f.go_upstream(&a).await;
    let callback = f.log_in_upstream(&b, &at_upstream, "fia.f").await;

    // A forged state.
    let state = query_param(&callback, "state").unwrap();
    let forged = callback.replace(&state, "forged-state");
    page_says(
        &a.get(&forged).await,
        400,
        "kunde inte kopplas till den här webbläsaren",
    );
    // Another browser (no login-binding cookie, or another one) with the real callback.
    let other = f.rp.browser();
    page_says(&other.get(&callback).await, 400, "kunde inte kopplas");
    let (url, _, _, _) = f.rp.authorize_url("lms", &[]);
    other.open_login(&url).await; // now it has a binding cookie of its own
    page_says(&other.get(&callback).await, 400, "kunde inte kopplas");
    assert!(!other.has_sso());
    // The browser that started it still can, once.
    let r = a.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(f.tokens(&a, r).await["person_id"], fia.id.as_str());
    page_says(&a.get(&callback).await, 400, "redan använts");
}

#[tokio::test]
async fn the_issuer_in_the_authorization_response_is_checked() {
    let f = Fed::new("ES256").await;
    person_with_email(&f.rp, "gun", "gun@kommun.se").await;
    person_with_email(&f.up, "gun.g", "gun@kommun.se").await;
    // Sent but different: refused (mix-up).
    let (a, b) = (f.rp.browser(), f.up.browser());
    let (_, at_upstream) = f.go_upstream(&a).await;
    let callback = f.log_in_upstream(&b, &at_upstream, "gun.g").await;
    let iss = query_param(&callback, "iss").expect("the upstream sends iss (RFC 9207)");
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let other = callback.replace(
        &format!("iss={}", enc(&iss)),
        &format!("iss={}", enc("https://evil.example")),
    );
    assert_ne!(other, callback);
    page_says(&a.get(&other).await, 502, "kunde inte godtas");
    // Advertised but missing: refused too.
    let (a, b) = (f.rp.browser(), f.up.browser());
    let (_, at_upstream) = f.go_upstream(&a).await;
    let callback = f.log_in_upstream(&b, &at_upstream, "gun.g").await;
    let without = callback.replace(&format!("&iss={}", enc(&iss)), "");
    assert_ne!(without, callback);
    page_says(&a.get(&without).await, 502, "kunde inte godtas");
    assert!(!a.has_sso());
}

#[tokio::test]
async fn a_rotated_upstream_key_is_fetched_on_its_unknown_key_id() {
    let f = Fed::new("ES256").await;
    let hugo = person_with_email(&f.rp, "hugo", "hugo@kommun.se").await;
    person_with_email(&f.up, "hugo.h", "hugo@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    let cb = f.login(&a, &b, "hugo.h").await;
    assert_eq!(cb.status, 303, "{}", cb.body);
    let keys_before = f.up.state.keys.jwks(f.up.clock.now())["keys"]
        .as_array()
        .unwrap()
        .len();
    ok(cli(&f.up, &["keys", "rotate", "--activate"], None));
    f.up.state.keys.refresh(f.up.clock.now()).await;
    assert!(
        f.up.state.keys.jwks(f.up.clock.now())["keys"]
            .as_array()
            .unwrap()
            .len()
            > keys_before
    );
    let (a, b) = (f.rp.browser(), f.up.browser());
    let cb = f.login(&a, &b, "hugo.h").await;
    assert_eq!(f.tokens(&a, cb).await["person_id"], hugo.id.as_str());
}

#[tokio::test]
async fn logging_out_of_portvakt_logs_out_at_the_upstream_too() {
    let f = Fed::new("ES256").await;
    person_with_email(&f.rp, "ivar", "ivar@kommun.se").await;
    person_with_email(&f.up, "ivar.i", "ivar@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    let cb = f.login(&a, &b, "ivar.i").await;
    f.tokens(&a, cb).await;
    assert!(a.has_sso() && b.has_sso());
    let page = a.get(&f.rp.url("/oidc/logout")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = a
        .post(
            &f.rp.url("/oidc/logout"),
            &[("csrf", &hidden(&page.body, "csrf"))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let at_upstream = r.location.unwrap();
    assert!(
        at_upstream.starts_with(&f.up.url("/oidc/logout?")),
        "{at_upstream}"
    );
    assert!(query_param(&at_upstream, "id_token_hint").is_some());
    let r = b.get(&at_upstream).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!b.has_sso(), "the upstream's session ended");
    let back = r.location.unwrap();
    assert!(
        back.starts_with(&f.rp.url(&format!("/upstream/{NAME}/logged-out?"))),
        "{back}"
    );
    let r = a.get(&back).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.unwrap(), f.rp.url("/logged-out"));
    assert!(!a.has_sso());
    // The page back redirects only where Portvakt signed for.
    use base64::Engine;
    let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("https://evil.example/");
    let r = a
        .get(
            &f.rp
                .url(&format!("/upstream/{NAME}/logged-out?state={evil}.forged")),
        )
        .await;
    assert_eq!(r.location.unwrap(), f.rp.url("/logged-out"));
}

#[tokio::test]
async fn the_login_page_lists_enabled_upstreams_with_their_logos() {
    let f = Fed::new("ES256").await;
    ok(cli(
        &f.rp,
        &[
            "upstream",
            "update",
            NAME,
            "--logo",
            "https://cdn.kommun.example/logo.svg",
        ],
        None,
    ));
    let a = f.rp.browser();
    let (url, _, _, _) = f.rp.authorize_url("lms", &[]);
    let (tx, _, page) = a.open_login(&url).await;
    assert!(page.body.contains("Med ett annat konto"), "{}", page.body);
    assert!(
        page.body
            .contains("<img src=\"https://cdn.kommun.example/logo.svg\" alt=\"\"")
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("img-src 'self' https://cdn.kommun.example;"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    // English too.
    let en = a.get(&f.rp.url(&format!("/login?tx={tx}&lang=en"))).await;
    assert!(en.body.contains("With another account"));
    // A disabled upstream is neither listed nor started.
    ok(cli(&f.rp, &["upstream", "update", NAME, "--disable"], None));
    let page = a.get(&f.rp.url(&format!("/login?tx={tx}"))).await;
    assert!(!page.body.contains("Kommunens personalkonto"));
    assert!(
        !page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("cdn.kommun")
    );
    let r = a
        .get(&f.rp.url(&format!("/upstream/{NAME}/start?tx={tx}")))
        .await;
    page_says(&r, 404, "not available for this service"); // (English was chosen above)
}

/// `url` without the query parameter `name`: an upstream that ignores it.
fn without_param(url: &str, name: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut().clear().extend_pairs(kept);
    u.into()
}

/// A relying party's prompt=login and max_age reach the upstream; an upstream that answers
/// from its old session anyway (an ID token with an old auth_time) is refused, and one that
/// honours them is accepted.
#[tokio::test]
async fn a_fresh_login_is_asked_of_the_upstream_and_an_old_auth_time_refused() {
    let f = Fed::new("ES256").await;
    person_with_email(&f.rp, "cilla", "cilla@kommun.se").await;
    person_with_email(&f.up, "cilla.c", "cilla@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    // Logged in at both, ten minutes ago.
    let cb = f.login(&a, &b, "cilla.c").await;
    f.tokens(&a, cb).await;
    f.rp.clock.advance(600);
    f.up.clock.advance(600);

    for extra in [("prompt", "login"), ("max_age", "60")] {
        let (url, _, _, _) = f.rp.authorize_url("lms", &[extra]);
        let (tx, _, _) = a.open_login(&url).await;
        let r = a
            .get(&f.rp.url(&format!("/upstream/{NAME}/start?tx={tx}")))
            .await;
        let at_upstream = r.location.unwrap();
        assert_eq!(
            query_param(&at_upstream, extra.0).as_deref(),
            Some(extra.1),
            "{at_upstream}"
        );
        // An upstream that ignores it answers from its ten-minute-old session.
        let r = b.get(&without_param(&at_upstream, extra.0)).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let callback = r.location.unwrap();
        assert!(callback.contains("/callback?"), "{callback}");
        page_says(&a.get(&callback).await, 502, "kunde inte godtas");
    }

    // An upstream that honours prompt=login logs the person in again: accepted.
    let (url, _, _, _) = f.rp.authorize_url("lms", &[("prompt", "login")]);
    let (tx, _, _) = a.open_login(&url).await;
    let r = a
        .get(&f.rp.url(&format!("/upstream/{NAME}/start?tx={tx}")))
        .await;
    let at_upstream = r.location.unwrap();
    let first = b.get(&at_upstream).await;
    assert_eq!(first.status, 303);
    assert!(
        first
            .location
            .as_deref()
            .unwrap_or_default()
            .contains("/login?tx="),
        "the upstream asks for the password again"
    );
    let callback = f.log_in_upstream(&b, &at_upstream, "cilla.c").await;
    let s = f.tokens(&a, a.get(&callback).await).await;
    assert_eq!(s["amr"], serde_json::json!(["fed"]));
}

/// The same person logs in again with a password after a login through the upstream (the
/// session is replaced): logging out still goes to the upstream's end_session endpoint.
#[tokio::test]
async fn after_a_new_password_login_logout_still_reaches_the_upstream() {
    let f = Fed::new("ES256").await;
    person_with_email(&f.rp, "jan", "jan@kommun.se").await;
    person_with_email(&f.up, "jan.j", "jan@kommun.se").await;
    let (a, b) = (f.rp.browser(), f.up.browser());
    let cb = f.login(&a, &b, "jan.j").await;
    f.tokens(&a, cb).await;
    let (url, _, _, _) = f.rp.authorize_url("lms", &[("prompt", "login")]);
    a.login(&f.rp, &url, "jan", PASSWORD).await;
    let page = a.get(&f.rp.url("/oidc/logout")).await;
    let r = a
        .post(
            &f.rp.url("/oidc/logout"),
            &[("csrf", &hidden(&page.body, "csrf"))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let at_upstream = r.location.unwrap();
    assert!(
        at_upstream.starts_with(&f.up.url("/oidc/logout?")),
        "{at_upstream}"
    );
}
