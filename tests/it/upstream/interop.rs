//! Federation with an OpenID provider we did not write: panva's oidc-provider (npm), run by
//! node on loopback (tests/interop/oidc_provider.mjs, installed by scripts/interop-setup.sh).
//! ES256 ID tokens, client_secret_post from its discovery document, RFC 9207 `iss`.

use super::person_with_email;
use crate::helpers::*;
use std::io::BufRead;

const NAME: &str = "panva";

/// The provider process; killed when dropped.
struct Op {
    child: std::process::Child,
    base: String,
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_modules() -> String {
    let dir = std::env::var("PORTVAKT_NODE_MODULES")
        .unwrap_or_else(|_| "/var/tmp/portvakt-node/node_modules".into());
    assert!(
        std::path::Path::new(&dir).join("oidc-provider").exists(),
        "the OIDC interop test needs oidc-provider in {dir}: run scripts/interop-setup.sh \
         (or set PORTVAKT_NODE_MODULES)"
    );
    dir
}

/// `conform`: the provider keeps scope claims (the email) out of the ID token, at userinfo.
fn start_op(redirect_uri: &str, conform: bool) -> Op {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/oidc_provider.mjs"
    );
    let mut child = std::process::Command::new("node")
        .arg(script)
        .env("PORTVAKT_NODE_MODULES", node_modules())
        .env("CLIENT_ID", "portvakt")
        .env("CLIENT_SECRET", SECRET)
        .env("REDIRECT_URI", redirect_uri)
        .env("CONFORM", if conform { "1" } else { "0" })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node runs");
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let mut port = None;
    for line in lines.by_ref() {
        if let Some(p) = line.unwrap().strip_prefix("listening ") {
            port = Some(p.trim().to_string());
            break;
        }
    }
    // The provider prints notices later; a closed pipe would end it.
    std::thread::spawn(move || lines.for_each(drop));
    let port = port.expect("the provider says where it listens");
    Op {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// A form's action, as an absolute URL at the provider.
fn form_action(op: &Op, html: &str) -> String {
    let start = html.find("action=\"").expect("a form") + 8;
    let action = html[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    if action.starts_with("http") {
        action
    } else {
        format!("{}{action}", op.base)
    }
}

/// Follows the provider's redirects until one leads back to Portvakt.
async fn back_to(rp: &TestApp, b: &Browser, mut r: Resp) -> String {
    loop {
        let next = r
            .location
            .clone()
            .unwrap_or_else(|| panic!("{} {}", r.status, r.body));
        if next.starts_with(&rp.url("/upstream/")) {
            return next;
        }
        r = b.get(&next).await;
    }
}

async fn setup(conform: bool) -> (TestApp, Op) {
    let rp = spawn_app().await;
    rp.add_client("lms", |_| {}).await;
    let op = start_op(&rp.url(&format!("/upstream/{NAME}/callback")), conform);
    let out = cli(
        &rp,
        &[
            "upstream",
            "add",
            NAME,
            "--oidc",
            &op.base,
            "--client-id",
            "portvakt",
            "--client-secret-stdin",
            "--scope",
            "openid",
            "--scope",
            "email",
            "--link-on",
            "email=email",
            "--require-claim",
            &format!("iss={}", op.base),
            "--display-name",
            "Panva",
        ],
        Some(SECRET),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (rp, op)
}

/// From the relying party to the provider's login form: (the provider's login page URL,
/// its HTML).
async fn to_provider(rp: &TestApp, op: &Op, a: &Browser, b: &Browser) -> (String, String) {
    let (url, _, _, _) = rp.authorize_url("lms", &[]);
    let (tx, _, page) = a.open_login(&url).await;
    assert!(page.body.contains("Panva"));
    let r = a
        .get(&rp.url(&format!("/upstream/{NAME}/start?tx={tx}")))
        .await;
    let mut next = r.location.expect("to the provider");
    assert!(next.starts_with(&op.base), "{next}");
    loop {
        let r = b.get(&next).await;
        match r.location {
            Some(l) => next = l,
            None => {
                assert_eq!(r.status, 200, "{}", r.body);
                return (next, r.body);
            }
        }
    }
}

#[tokio::test]
async fn a_third_party_openid_provider_logs_a_person_in() {
    // The email in the ID token, then only at userinfo.
    for conform in [false, true] {
        third_party_login(conform).await;
    }
}

async fn third_party_login(conform: bool) {
    let (rp, op) = setup(conform).await;
    let anna = person_with_email(&rp, "anna", "anna@kommun.se").await;
    let (a, b) = (rp.browser(), Browser::new());
    let (_, login_page) = to_provider(&rp, &op, &a, &b).await;
    assert!(
        login_page.contains("name=\"prompt\" value=\"login\""),
        "{login_page}"
    );
    let mut r = b
        .post(
            &form_action(&op, &login_page),
            &[("prompt", "login"), ("login", "anna"), ("password", "x")],
        )
        .await;
    // Through the provider's consent page to the callback.
    let callback = loop {
        let next = r.location.clone().unwrap_or_default();
        if next.starts_with(&rp.url("/upstream/")) {
            break next;
        }
        if r.status == 200 {
            assert!(r.body.contains("value=\"consent\""), "{}", r.body);
            r = b
                .post(&form_action(&op, &r.body), &[("prompt", "consent")])
                .await;
        } else {
            assert_eq!(r.status, 303, "{}", r.body);
            r = b.get(&next).await;
        }
    };
    assert!(
        query_param(&callback, "iss").is_some(),
        "RFC 9207 iss: {callback}"
    );
    let r = a.get(&callback).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = a.get(&r.location.unwrap()).await;
    assert!(query_param(&r.location.unwrap(), "code").is_some());
    let cookie = a.cookies.lock().unwrap().get("portvakt_sso").cloned();
    let s = rp
        .state
        .authn
        .session(cookie.as_deref(), rp.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.person_id, anna.id);
    assert_eq!(s.amr(), vec!["fed".to_string()]);
    let links = portvakt::storage::upstream::link_counts(&rp.db)
        .await
        .unwrap();
    assert_eq!(links, vec![(NAME.to_string(), 1)]);
}

#[tokio::test]
async fn cancelling_at_a_third_party_provider_gives_the_cancel_page() {
    let (rp, op) = setup(false).await;
    let (a, b) = (rp.browser(), Browser::new());
    let (login_url, _) = to_provider(&rp, &op, &a, &b).await;
    // The provider's own "abort" link: it answers error=access_denied.
    let r = b.get(&format!("{login_url}/abort")).await;
    let callback = back_to(&rp, &b, r).await;
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("access_denied")
    );
    let r = a.get(&callback).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("avbröts eller nekades"), "{}", r.body);
    assert!(!a.has_sso());
}
