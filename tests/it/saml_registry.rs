//! The IdP's metadata and the SP registry: the metadata document (signed once per key set),
//! and registering, listing, changing and removing SPs with the CLI, from files and URLs.

use crate::helpers::{TestApp, cli, spawn_app};
use crate::saml::{ANNA, app_and_sp, login_assertion, request};
use crate::saml_sp::*;
use portvakt::saml::xml;

// 14. Metadata.

async fn idp_metadata(app: &TestApp) -> xml::Element {
    let r = app
        .client()
        .get(app.url("/saml/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    xml::parse(&r.text().await.unwrap()).unwrap()
}

fn signing_keys(md: &xml::Element) -> usize {
    let mut kds = Vec::new();
    md.descendants(xml::MD, "KeyDescriptor", &mut kds);
    kds.iter()
        .filter(|k| k.attr("use") == Some("signing"))
        .count()
}

#[tokio::test]
async fn metadata_describes_the_idp_and_lists_the_next_key_after_rotation() {
    let app = spawn_app().await;
    let md = idp_metadata(&app).await;
    assert_eq!(
        md.attr("entityID"),
        Some(app.url("/saml/metadata").as_str())
    );
    assert_eq!(signing_keys(&md), 1);
    let idp = md.child(xml::MD, "IDPSSODescriptor").unwrap();
    let bindings: Vec<&str> = idp
        .children(xml::MD, "SingleSignOnService")
        .map(|s| s.attr("Binding").unwrap())
        .collect();
    assert!(bindings.iter().any(|b| b.ends_with("HTTP-Redirect")));
    assert!(bindings.iter().any(|b| b.ends_with("HTTP-POST")));
    assert!(idp.child(xml::MD, "SingleLogoutService").is_some());
    assert!(idp.children(xml::MD, "NameIDFormat").count() >= 2);
    let mut found = Vec::new();
    idp.descendants("urn:mace:shibboleth:metadata:1.0", "Scope", &mut found);
    assert_eq!(found.len(), 1);
    let mut names = Vec::new();
    idp.descendants(xml::MDUI, "DisplayName", &mut names);
    let langs: Vec<&str> = names.iter().filter_map(|n| n.attr("xml:lang")).collect();
    assert_eq!(langs, vec!["sv", "en"]);
    let out = cli(&app, &["keys", "rotate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(signing_keys(&idp_metadata(&app).await), 2);
}

/// Signed metadata is signed once per key set: every request gets the same bytes (so no
/// one can make the IdP sign at will), until a rotation publishes another key.
#[tokio::test]
async fn signed_metadata_is_signed_once_per_key_set() {
    let app = crate::helpers::spawn_app_with(|c| c.saml.sign_metadata = true).await;
    let fetch = || async {
        let r = app
            .client()
            .get(app.url("/saml/metadata"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let first = fetch().await;
    assert!(first.contains("SignatureValue"), "{first}");
    assert_eq!(fetch().await, first, "the same signed bytes");
    let out = cli(&app, &["keys", "rotate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = fetch().await;
    assert_ne!(rotated, first, "a new key set, a new document");
    assert_eq!(signing_keys(&xml::parse(&rotated).unwrap()), 2);
    assert_eq!(fetch().await, rotated);
}

// 15. The CLI.

fn stderr_line(out: &std::process::Output) -> String {
    let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

fn write_metadata(app: &TestApp, doc: &str) -> String {
    let path = app
        .dir
        .path()
        .join(format!("md-{}.xml", portvakt::keys::random_token()));
    std::fs::write(&path, doc).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn sp_add_refuses_bad_or_expired_metadata_with_one_line() {
    let app = spawn_app().await;
    let bad = write_metadata(&app, "<x/>");
    let out = cli(&app, &["sp", "add", "--metadata", &bad], None);
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("metadata"));
    let sp = TestSp::new("https://old.example.se");
    let expired = sp.metadata().replacen(
        " entityID=",
        r#" validUntil="2001-01-01T00:00:00Z" entityID="#,
        1,
    );
    let out = cli(
        &app,
        &["sp", "add", "--metadata", &write_metadata(&app, &expired)],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("validUntil"));
    let list = cli(&app, &["sp", "list", "--json"], None);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn sp_list_update_and_remove_take_effect_at_the_next_login() {
    let (app, sp) = app_and_sp(&["--release", "givenName", "--release", "sn"]).await;
    let list = cli(&app, &["sp", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["entity_id"], sp.entity_id.as_str());
    assert_eq!(v[0]["release"], serde_json::json!(["givenName", "sn"]));
    let attrs = attributes(&login_assertion(&app, &sp, ANNA, "").await);
    assert_eq!(attrs.len(), 2);

    let out = cli(
        &app,
        &["sp", "update", &sp.entity_id, "--release", "mail"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attrs = attributes(&login_assertion(&app, &sp, ANNA, "").await);
    assert_eq!(attrs.keys().collect::<Vec<_>>(), vec!["mail"]);

    let out = cli(&app, &["sp", "remove", &sp.entity_id], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, req) = request(&app, &sp, "", "");
    let b = app.browser();
    let r = b
        .get(&sp.redirect_url(&app.url("/saml/sso"), "SAMLRequest", &req, None))
        .await;
    assert_error_page(&r);
    assert!(r.body.contains("registrerad") || r.body.contains("registered"));
}

/// Serves `doc` at http://127.0.0.1:PORT/md.xml from a thread of its own (the CLI call blocks
/// the test's runtime).
fn serve_metadata(doc: String) -> String {
    serve_changing_metadata(std::sync::Arc::new(std::sync::Mutex::new(doc)))
}

#[tokio::test]
async fn sp_add_takes_metadata_from_a_url() {
    let app = spawn_app().await;
    app.add_person(ANNA, &["student"]).await;
    let sp = TestSp::new("https://fetched.example.se");
    let doc = sp.metadata();
    let url = serve_metadata(doc);
    let out = cli(&app, &["sp", "add", "--metadata", &url], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = cli(&app, &["sp", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["metadata_url"], url.as_str());
    assert_eq!(
        login_assertion(&app, &sp, ANNA, "").await.attr("Version"),
        Some("2.0")
    );
}

/// Serves whatever `doc` holds at the time of each request at http://127.0.0.1:PORT/md.xml,
/// from a thread of its own (a metadata URL that changes).
fn serve_changing_metadata(doc: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/md.xml", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let router = axum::Router::new().route(
                "/md.xml",
                axum::routing::get(move || async move { doc.lock().unwrap().clone() }),
            );
            axum::serve(listener, router).await
        })
    });
    url
}

/// `doc` with an ID on its root, signed (enveloped, as a federation signs) by `signer`.
pub(crate) fn signed_metadata(doc: &str, signer: &TestSp) -> String {
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD.encode(&signer.cert_der);
    let root_end = doc.find('>').unwrap();
    let xml = format!(
        "{} ID=\"_md1\">{}{}",
        &doc[..root_end],
        portvakt::saml::dsig::template("_md1", &cert),
        &doc[root_end + 1..]
    );
    portvakt::saml::dsig::sign(&xml, &signer.key_pkcs8).unwrap()
}

/// Metadata from a URL: plain http only in development, the body bounded while it streams,
/// a pinned signing certificate enforced, and a refresh that changes the ACS URLs or the
/// certificates audited and shown by `sp list`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_metadata_from_a_url_is_bounded_pinned_and_its_changes_are_audited() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let refused = portvakt::saml::sp::load_source(&http, "http://127.0.0.1:9/md.xml", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("https"), "{refused}");

    // 2 MiB of metadata: refused while it streams.
    let huge = format!(
        "{}{}",
        TestSp::new("https://huge.example.se").metadata(),
        " ".repeat(2 << 20)
    );
    let url = serve_metadata(huge);
    let out = tokio::task::block_in_place(|| cli(&app, &["sp", "add", "--metadata", &url], None));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 1 MiB"));

    // A pinned federation certificate: unsigned and foreign-signed metadata are refused.
    let federation = TestSp::new("https://federation.example.se");
    let stranger = TestSp::new("https://stranger.example.se");
    let pem = openssl::x509::X509::from_der(&federation.cert_der)
        .unwrap()
        .to_pem()
        .unwrap();
    let pem_path = app.dir.path().join("federation.pem");
    std::fs::write(&pem_path, pem).unwrap();
    let pin = ["--metadata-signing-cert", pem_path.to_str().unwrap()];
    let sp = TestSp::new("https://pinned.example.se");
    let doc = std::sync::Arc::new(std::sync::Mutex::new(sp.metadata()));
    let url = serve_changing_metadata(doc.clone());
    let add = |extra: &[&str]| {
        let mut args = vec!["sp", "add", "--metadata", url.as_str()];
        args.extend_from_slice(extra);
        tokio::task::block_in_place(|| cli(&app, &args, None))
    };
    for served in [sp.metadata(), signed_metadata(&sp.metadata(), &stranger)] {
        *doc.lock().unwrap() = served;
        let out = add(&pin);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not signed by the pinned certificate"),
            "{err}"
        );
    }
    *doc.lock().unwrap() = signed_metadata(&sp.metadata(), &federation);
    let out = add(&pin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The SP moves its ACS: the refresh takes it, audits it and `sp list` shows it.
    let mut moved = TestSp::new("https://pinned.example.se");
    moved.cert_der = sp.cert_der.clone();
    moved.acs = format!("{}/moved", sp.acs);
    *doc.lock().unwrap() = signed_metadata(&moved.metadata(), &federation);
    let now = app.clock.now();
    let n = portvakt::saml::sp::refresh_due(&app.db, &http, 0, true, now)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let list = tokio::task::block_in_place(|| cli(&app, &["sp", "list", "--json"], None));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["metadata_changed"]["what"], "ACS URLs", "{v}");
    assert_eq!(v[0]["metadata_signing_cert_pinned"], true);
    let text = tokio::task::block_in_place(|| cli(&app, &["sp", "list"], None));
    assert!(String::from_utf8_lossy(&text.stdout).contains("metadata changed at"));
    // Unsigned metadata at the next refresh is not taken: the moved ACS stays.
    *doc.lock().unwrap() = sp.metadata();
    let n = portvakt::saml::sp::refresh_due(&app.db, &http, 0, true, now)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let list = tokio::task::block_in_place(|| cli(&app, &["sp", "list", "--json"], None));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(v[0]["acs"].to_string().contains("/moved"), "{v}");
}
