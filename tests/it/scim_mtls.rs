//! A push source's own listener with mutual TLS (`[sync.sources.NAME] listen`): the client's
//! key pinned (base64 SHA-256 of its SubjectPublicKeyInfo), a key that is not pinned or no
//! certificate at all refused in the TLS handshake, the source's identity on every change,
//! and the main listener still asking for the bearer token.

use crate::certs::{Role, certificate, write};
use crate::helpers::{TestApp, database_url, spawn_tls_app_with};
use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use portvakt::app::App;
use portvakt::config::{Config, SourceConfig, TlsConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};
use std::sync::Arc;

const SOURCE: &str = "egil";
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";
const MEDIA_TYPE: &str = "application/scim+json";

/// A client key with a self-signed certificate: the PEM identity for reqwest, and its pin
/// computed as the README's openssl command does (`openssl x509 -pubkey | openssl pkey
/// -pubin -outform der | openssl dgst -sha256 -binary | base64`).
struct ClientKey {
    cert: X509,
    key: PKey<Private>,
    identity_pem: Vec<u8>,
    pin: String,
}

fn client_key(cn: &str, serial: u32) -> ClientKey {
    let (cert, key) = certificate(cn, Role::Client, serial, None);
    let spki = cert.public_key().unwrap().public_key_to_der().unwrap();
    let digest = openssl::sha::sha256(&spki);
    let mut identity_pem = cert.to_pem().unwrap();
    identity_pem.extend(key.private_key_to_pem_pkcs8().unwrap());
    ClientKey {
        cert,
        key,
        identity_pem,
        pin: base64::engine::general_purpose::STANDARD.encode(digest),
    }
}

/// A push source that may use its bearer token on the main listener and its pinned keys on
/// a listener of its own (port 0: the test reads the bound address).
fn source(dir: &std::path::Path, pins: &[&str]) -> SourceConfig {
    let token = write(dir, "egil-token", TOKEN.as_bytes());
    let pins: Vec<String> = pins.iter().map(|p| format!("{p:?}")).collect();
    toml::from_str(&format!(
        "kind = \"scim\"\ntoken_file = {:?}\nlisten = \"127.0.0.1:0\"\nclient_pins = [{}]\n",
        token.display().to_string(),
        pins.join(", ")
    ))
    .unwrap()
}

async fn spawn_with_pins(pins: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let s = source(dir.path(), pins);
    let app = spawn_tls_app_with(|c| {
        c.sync.sources.insert(SOURCE.into(), s);
    })
    .await;
    // The token was read at start (kept as its digest).
    drop(dir);
    app
}

/// The base URL of the source's own listener.
fn push_base(app: &TestApp) -> String {
    let addr = app.state.ops.push_addrs[SOURCE];
    format!("https://{addr}/scim/v2")
}

/// An HTTPS client that trusts the app's certificate, with a client identity or none.
fn https(app: &TestApp, identity: Option<&ClientKey>, tls12: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(app.ca_pem.as_ref().unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(std::time::Duration::from_secs(10));
    if let Some(k) = identity {
        b = b.identity(reqwest::Identity::from_pem(&k.identity_pem).unwrap());
    }
    if tls12 {
        b = b.max_tls_version(reqwest::tls::Version::TLS_1_2);
    }
    b.build().unwrap()
}

fn organisation(id: &str) -> String {
    json!({
        "schemas": ["urn:scim:schemas:extension:sis:school:1.0:Organisation"],
        "externalId": id,
        "displayName": "Kommun",
    })
    .to_string()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
        .body(body)
        .send()
        .await
}

/// The error and its sources, for the message a refusal carries.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// A request the TLS layer refused: no HTTP status; the client saw the server's alert (its
/// text returned). In TLS 1.2 the client waits for the server's Finished, so the refusal is
/// a connect error carrying the alert. In TLS 1.3 the client's handshake is done once it sent
/// its certificate, so the alert ends the connection under the request, and the client may
/// see the connection close before it reads the alert (None then).
fn refused_in_handshake(
    r: reqwest::Result<reqwest::Response>,
    tls12: bool,
    what: &str,
) -> Option<String> {
    let e = match r {
        Ok(res) => panic!("{what}: expected a TLS refusal, got HTTP {}", res.status()),
        Err(e) => e,
    };
    let text = chain(&e);
    assert!(e.status().is_none(), "{what}: {text}");
    let alert = text.contains("received fatal alert");
    if tls12 {
        assert!(alert, "{what}: expected a TLS alert, got: {text}");
        assert!(
            e.is_connect(),
            "{what}: expected a connect error, got: {text}"
        );
    } else {
        assert!(
            alert
                || text.contains("connection was not ready")
                || text.contains("connection closed"),
            "{what}: expected a TLS alert or the connection closed by it, got: {text}"
        );
    }
    alert.then_some(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_client_key_pushes_as_its_source() {
    let a = client_key("egil-client-a", 11);
    let app = spawn_with_pins(&[&a.pin]).await;
    let base = push_base(&app);
    let client = https(&app, Some(&a), false);
    let id = uuid::Uuid::new_v4().to_string();

    // Created over the source's own listener: no bearer token, the pinned key is the source.
    let res = post(&client, &format!("{base}/Organisations"), organisation(&id))
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    let stored_id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["displayName"], "Kommun");

    let url = format!("{base}/Organisations/{stored_id}");
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["externalId"], id.as_str());

    // TLS 1.2 too (the other signature check).
    let res = https(&app, Some(&a), true).get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Stored under the source, and its change recorded in a push run of the source.
    let stored = portvakt::storage::scim::get(&app.db, SOURCE, "Organisation", &stored_id)
        .await
        .unwrap();
    assert!(stored.is_some(), "stored under {SOURCE}");
    let runs = portvakt::storage::sync::runs(&app.db, 10).await.unwrap();
    assert!(
        runs.iter().any(|r| r.source == SOURCE && r.kind == "push"),
        "a push run of {SOURCE}: {:?}",
        runs.iter()
            .map(|r| (&r.source, &r.kind))
            .collect::<Vec<_>>()
    );

    // The main listener: the pinned identity is only for the source's own listener.
    let main = app.client();
    let main_url = format!("{}/scim/v2/Organisations/{stored_id}", app.base);
    let res = main.get(&main_url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let other = uuid::Uuid::new_v4().to_string();
    let res = post(
        &main,
        &format!("{}/scim/v2/Organisations", app.base),
        organisation(&other),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 401);
    // There the source's bearer token names the same source.
    let res = main.get(&main_url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_not_pinned_or_no_certificate_is_refused_in_the_handshake() {
    let a = client_key("egil-client-a", 21);
    let b = client_key("egil-client-b", 22);
    assert_ne!(a.pin, b.pin);
    let app = spawn_with_pins(&[&a.pin]).await;
    let base = push_base(&app);
    let url = format!("{base}/Organisations");

    let id = uuid::Uuid::new_v4().to_string();
    for tls12 in [false, true] {
        let r = post(&https(&app, Some(&b), tls12), &url, organisation(&id)).await;
        // access_denied: the certificate was read, its key is not pinned.
        if let Some(text) = refused_in_handshake(r, tls12, &format!("key B, TLS 1.2: {tls12}")) {
            assert!(text.contains("AccessDenied"), "{text}");
        }
        let r = post(&https(&app, None, tls12), &url, organisation(&id)).await;
        let what = format!("no certificate, TLS 1.2: {tls12}");
        if let Some(text) = refused_in_handshake(r, tls12, &what) {
            assert!(text.contains("CertificateRequired"), "{text}");
        }
    }

    // Nothing was stored, under any source.
    let stored = portvakt::storage::scim::get(&app.db, SOURCE, "Organisation", &id)
        .await
        .unwrap();
    assert!(stored.is_none());
    let runs = portvakt::storage::sync::runs(&app.db, 10).await.unwrap();
    assert!(runs.is_empty(), "{} runs", runs.len());

    // Key A still gets in.
    let res = post(&https(&app, Some(&a), false), &url, organisation(&id))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// Presents one certificate with whatever key it is given, as a client would that copied a
/// pinned client's certificate (it is public) without its key.
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_certificate_without_its_key_is_refused_in_the_handshake() {
    let a = client_key("egil-client-a", 41);
    let b = client_key("egil-client-b", 42);
    let app = spawn_with_pins(&[&a.pin]).await;
    let url = format!("{}/Organisations", push_base(&app));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // A's certificate, signed for with B's key.
    let b_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        b.key.private_key_to_pkcs8().unwrap(),
    ));
    let forged = Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(a.cert.to_der().unwrap())],
        provider.key_provider.load_private_key(b_key).unwrap(),
    ));
    assert!(forged.keys_match().is_err());
    let server_cert = X509::from_pem(app.ca_pem.as_ref().unwrap()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(server_cert.to_der().unwrap()))
        .unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    for tls12 in [false, true] {
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_client_cert_resolver(Arc::new(Presents(forged.clone())));
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        let r = post(&client, &url, organisation(&id)).await;
        let what = format!("A's certificate, B's key, TLS 1.2: {tls12}");
        // decrypt_error: the handshake's signature is not A's key's (always seen in TLS 1.2).
        if let Some(text) = refused_in_handshake(r, tls12, &what) {
            assert!(text.contains("DecryptError"), "{text}");
        }
    }
    let stored = portvakt::storage::scim::get(&app.db, SOURCE, "Organisation", &id)
        .await
        .unwrap();
    assert!(stored.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_fails_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(&dir).await;
    let mut config = Config::for_tests(&url, dir.path().to_path_buf());
    let (cert, key) = certificate("127.0.0.1", Role::Server, 1, None);
    config.tls = Some(TlsConfig {
        cert: write(dir.path(), "tls.crt", &cert.to_pem().unwrap()),
        key: write(
            dir.path(),
            "tls.key",
            &key.private_key_to_pem_pkcs8().unwrap(),
        ),
    });
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let pin = client_key("egil-client-a", 31).pin;
    let mut s = source(dir.path(), &[&pin]);
    s.listen = Some(taken.local_addr().unwrap());
    config.sync.sources.insert(SOURCE.into(), s);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = match App::build_on(config, false, listener).await {
        Ok(_) => panic!("the start should fail on a taken port"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("[sync.sources.egil] listen") && err.contains("is the port free"),
        "{err}"
    );
}
