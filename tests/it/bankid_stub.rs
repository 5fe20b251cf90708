//! Portvakt's real BankID client against the stub, as it talks to BankID: `portvakt
//! bankid-stub` as a subprocess serving HTTPS that requires a client certificate, both
//! certificates from a test CA made here, and the client trusting only that CA. The stub
//! app's JSON API plays the phone; the qrStartSecret stays in the test, as it stays on
//! Portvakt's server. Also: the stub mounted in Portvakt, and the command's refusals.
//! `pki()` and `spawn_stub()` serve `bankid_interop` too.

use crate::certs::{Role, certificate, write};
use crate::helpers::spawn_app_with;
use base64::{Engine, engine::general_purpose::STANDARD};
use portvakt::bankid::api::{
    AuthRequest, ErrorCode, HintCode, PhoneAuthRequest, Requirement, Status,
};
use portvakt::bankid::client::{Transport, pkcs12_to_pem};
use portvakt::bankid::{BankIdError, Client, qr};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A fictional personal number (specs/bankid.md §11).
pub(crate) const PN: &str = "198003021238";

/// A test CA, the stub's server certificate (127.0.0.1) and an RP client certificate.
pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
    ca_pem: Vec<u8>,
    /// The RP's certificate and key as one PEM.
    identity_pem: Vec<u8>,
    /// The same as PKCS#12 with the password "qwerty123", like FP Testcert.
    p12: Vec<u8>,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// The test CA (PEM).
    pub(crate) ca_file: PathBuf,
    /// The RP's certificate and its key, each a PEM file.
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
}

pub(crate) fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_key) = certificate("Portvakt test BankID CA", Role::Ca, 1, None);
    let (server, server_key) = certificate("127.0.0.1", Role::Server, 2, Some((&ca, &ca_key)));
    let (rp, rp_key) = certificate(
        "FP Testcert Portvakt",
        Role::Client,
        3,
        Some((&ca, &ca_key)),
    );
    let ca_pem = ca.to_pem().unwrap();
    let mut identity_pem = rp.to_pem().unwrap();
    identity_pem.extend(rp_key.private_key_to_pem_pkcs8().unwrap());
    let p12 = openssl::pkcs12::Pkcs12::builder()
        .name("rp")
        .pkey(&rp_key)
        .cert(&rp)
        .build2("qwerty123")
        .unwrap()
        .to_der()
        .unwrap();
    Pki {
        server_cert: write(dir.path(), "server.pem", &server.to_pem().unwrap()),
        server_key: write(
            dir.path(),
            "server.key",
            &server_key.private_key_to_pem_pkcs8().unwrap(),
        ),
        ca_file: write(dir.path(), "ca.pem", &ca_pem),
        client_cert: write(dir.path(), "rp.pem", &rp.to_pem().unwrap()),
        client_key: write(
            dir.path(),
            "rp.key",
            &rp_key.private_key_to_pem_pkcs8().unwrap(),
        ),
        ca_pem,
        identity_pem,
        p12,
        dir,
    }
}

/// `portvakt bankid-stub` running; killed when dropped.
pub(crate) struct StubProcess {
    child: Child,
    /// e.g. `https://127.0.0.1:PORT`
    pub(crate) base: String,
    /// What the stub logged so far.
    pub(crate) stderr: Arc<Mutex<String>>,
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn portvakt(args: &[&str], dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portvakt"));
    cmd.args(args)
        .env_remove("PORTVAKT_CONFIG")
        .env_remove("PORTVAKT_MODE")
        .env("PORTVAKT_DATA_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the stub with mutual TLS on a free loopback port and reads the address it prints.
pub(crate) fn spawn_stub(pki: &Pki, extra: &[&str]) -> StubProcess {
    let mut args = vec![
        "bankid-stub",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        pki.server_cert.to_str().unwrap(),
        "--tls-key",
        pki.server_key.to_str().unwrap(),
        "--client-ca",
        pki.ca_file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut child = portvakt(&args, pki.dir.path()).spawn().unwrap();
    // Drained so the stub never blocks on a full pipe; shown when a test fails.
    let stderr = Arc::new(Mutex::new(String::new()));
    let (mut pipe, sink) = (child.stderr.take().unwrap(), stderr.clone());
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("BankID stub listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}: {}", stderr.lock().unwrap()))
        .to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    StubProcess {
        child,
        base,
        stderr,
    }
}

/// The standalone stub with `--tls-cert`, `--tls-key` and `--client-ca` from `pki`, served
/// in this process on `clock`; its base URL.
fn serve_stub_in_process(
    pki: &Pki,
    start_timeout: u64,
    order_lifetime: u64,
    clock: portvakt::clock::Clock,
) -> String {
    use portvakt::sim::bankid::{Stub, StubConfig, serve};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = serve::tls_config(&serve::TlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: pki.ca_file.clone(),
    })
    .unwrap();
    let stub = Stub::new(
        StubConfig {
            start_timeout: std::time::Duration::from_secs(start_timeout),
            order_lifetime: std::time::Duration::from_secs(order_lifetime),
            mount: String::new(),
            suggestions: Vec::new(),
        },
        clock,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let service = serve::standalone_router(&stub, true)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .unwrap();
    tokio::spawn(server.serve(service));
    base
}

fn client(stub: &StubProcess, roots_pem: &[u8], identity_pem: Option<Vec<u8>>) -> Client {
    Client::new(Transport {
        base: url::Url::parse(&format!("{}/rp/v6.0/", stub.base)).unwrap(),
        roots_pem: roots_pem.to_vec(),
        identity_pem,
    })
    .unwrap()
}

/// A plain HTTPS client with the RP certificate: the stub requires one on every connection,
/// the app's too.
fn https(pki: &Pki) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pki.ca_pem).unwrap())
        .identity(reqwest::Identity::from_pem(&pki.identity_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Calls the stub app's JSON API; (status, body).
async fn app(
    http: &reqwest::Client,
    stub: &StubProcess,
    action: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = http
        .post(format!("{}/app/api/{action}", stub.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn auth_request(required: Option<&str>) -> AuthRequest {
    AuthRequest {
        end_user_ip: "127.0.0.1".into(),
        requirement: required.map(|pn| Requirement {
            personal_number: Some(pn.into()),
            ..Default::default()
        }),
        user_visible_data: Some(STANDARD.encode("Logga in i Portvakts test")),
        user_visible_data_format: Some("simpleMarkdownV1".into()),
        ..Default::default()
    }
}

fn api_error(e: BankIdError) -> (u16, ErrorCode) {
    match e {
        BankIdError::Api { status, code, .. } => (status, code),
        other => panic!("expected an error answer, got {other:?}"),
    }
}

#[tokio::test]
async fn bankid_stub_identifies_over_mutual_tls_by_qr_code() {
    let pki = pki();
    let stub = spawn_stub(&pki, &[]);
    let rp = client(&stub, &pki.ca_pem, Some(pki.identity_pem.clone()));
    let http = https(&pki);

    let order = rp.auth(&auth_request(None)).await.unwrap();
    // The QR code counts from when the answer arrived (specs/bankid.md §6).
    let started = Instant::now();
    let qr_now = || {
        qr::qr_data(
            &order.qr_start_token,
            &order.qr_start_secret,
            started.elapsed().as_secs(),
        )
    };
    let c = rp.collect(&order.order_ref).await.unwrap();
    assert_eq!(
        (c.status, c.hint_code),
        (Status::Pending, Some(HintCode::OutstandingTransaction))
    );

    // The phone scans the code and chooses who identifies.
    let (s, body) = app(
        &http,
        &stub,
        "open",
        serde_json::json!({"qrData": qr_now(), "personalNumber": PN}),
    )
    .await;
    assert_eq!(
        (s, body),
        (
            200,
            serde_json::json!({"status": "pending", "hintCode": "userSign"})
        )
    );
    let c = rp.collect(&order.order_ref).await.unwrap();
    assert_eq!(
        (c.status, c.hint_code),
        (Status::Pending, Some(HintCode::UserSign))
    );

    let (s, body) = app(
        &http,
        &stub,
        "approve",
        serde_json::json!({"qrData": qr_now(), "personalNumber": PN,
            "givenName": "Erik", "surname": "Sandberg"}),
    )
    .await;
    assert_eq!((s, body), (200, serde_json::json!({"status": "complete"})));
    let c = rp.collect(&order.order_ref).await.unwrap();
    assert_eq!((c.status, c.hint_code.clone()), (Status::Complete, None));
    let data = c.completion_data.unwrap();
    assert_eq!(data.user.personal_number, PN);
    assert_eq!(data.user.name, "Erik Sandberg");
    assert_eq!(data.device.unwrap().ip_address, "127.0.0.1");
    let xml = String::from_utf8(STANDARD.decode(&data.signature).unwrap()).unwrap();
    assert!(xml.contains("Logga in i Portvakts test"), "{xml}");
    // Still collectable after completion.
    assert_eq!(
        rp.collect(&order.order_ref).await.unwrap().status,
        Status::Complete
    );

    // The RP cancels an order: it is gone.
    let order = rp.auth(&auth_request(None)).await.unwrap();
    rp.cancel(&order.order_ref).await.unwrap();
    let e = rp.collect(&order.order_ref).await.unwrap_err();
    assert_eq!(api_error(e), (400, ErrorCode::InvalidParameters));
    let e = rp.cancel(&order.order_ref).await.unwrap_err();
    assert_eq!(api_error(e), (400, ErrorCode::InvalidParameters));

    // Phone orders answer only the orderRef and wait for the call to be confirmed.
    let phone = rp
        .phone_auth(&PhoneAuthRequest {
            personal_number: "191212121212".into(),
            call_initiator: "RP".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(phone.auto_start_token.is_empty() && phone.qr_start_secret.is_empty());
    let c = rp.collect(&phone.order_ref).await.unwrap();
    assert_eq!(c.hint_code, Some(HintCode::UserCallConfirm));

    // The stub logs requests, never a personal number or a secret.
    drop(rp);
    let log = stub.stderr.lock().unwrap().clone();
    assert!(
        !log.contains(PN) && !log.contains(&order.qr_start_secret),
        "{log}"
    );
}

#[tokio::test]
async fn bankid_stub_refuses_like_bankid() {
    let pki = pki();
    let stub = spawn_stub(&pki, &[]);
    let rp = client(&stub, &pki.ca_pem, Some(pki.identity_pem.clone()));
    let http = https(&pki);

    // A second order for the same required personal number: alreadyInProgress, and the
    // first order is cancelled.
    let first = rp.auth(&auth_request(Some(PN))).await.unwrap();
    let e = rp.auth(&auth_request(Some(PN))).await.unwrap_err();
    assert_eq!(api_error(e), (400, ErrorCode::AlreadyInProgress));
    let c = rp.collect(&first.order_ref).await.unwrap();
    assert_eq!(
        (c.status, c.hint_code),
        (Status::Failed, Some(HintCode::Cancelled))
    );

    let mut bad = auth_request(None);
    bad.end_user_ip = "127.0.0.1.5".into();
    let e = rp.auth(&bad).await.unwrap_err();
    assert_eq!(api_error(e), (400, ErrorCode::InvalidParameters));

    let r = http
        .post(format!("{}/rp/v6.0/no-such-method", stub.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "notFound");

    // A QR code made with the wrong secret: the app refuses it; the order is untouched.
    let order = rp.auth(&auth_request(None)).await.unwrap();
    let forged = qr::qr_data(&order.qr_start_token, &first.qr_start_secret, 0);
    let (s, body) = app(&http, &stub, "open", serde_json::json!({"qrData": forged})).await;
    assert_eq!(
        (s, &body["errorCode"]),
        (400, &serde_json::json!("invalidParameters"))
    );
    let c = rp.collect(&order.order_ref).await.unwrap();
    assert_eq!(c.hint_code, Some(HintCode::OutstandingTransaction));

    // Without the RP certificate the stub refuses the TLS session.
    let anonymous = client(&stub, &pki.ca_pem, None);
    let e = anonymous.auth(&auth_request(None)).await.unwrap_err();
    assert!(matches!(e, BankIdError::Transport(_)), "{e:?}");
    // Trusting another CA (BankID's own test root), the client refuses the stub.
    let e = client(
        &stub,
        include_bytes!("../../src/bankid/roots/bankid-root-test.pem"),
        Some(pki.identity_pem.clone()),
    )
    .auth(&auth_request(None))
    .await
    .unwrap_err();
    assert!(
        matches!(e, BankIdError::Transport(ref m) if m.contains("UnknownIssuer")),
        "{e:?}"
    );
}

#[tokio::test]
async fn bankid_stub_accepts_an_rp_certificate_from_pkcs12() {
    let pki = pki();
    // The stub as `bankid-stub --start-timeout 1 --order-lifetime 5` serves it (same TLS,
    // same router), in-process on a clock the test moves.
    let clock = portvakt::clock::Clock::movable();
    let base = serve_stub_in_process(&pki, 1, 5, clock.clone());
    let identity = pkcs12_to_pem(&pki.p12, "qwerty123").unwrap();
    let rp = Client::new(Transport {
        base: url::Url::parse(&format!("{base}/rp/v6.0/")).unwrap(),
        roots_pem: pki.ca_pem.clone(),
        identity_pem: Some(identity),
    })
    .unwrap();
    let order = rp.auth(&auth_request(None)).await.unwrap();
    assert_eq!(
        rp.collect(&order.order_ref).await.unwrap().hint_code,
        Some(HintCode::OutstandingTransaction)
    );
    // The start timeout reached the stub: nobody scanned within a second.
    clock.advance(1);
    let c = rp.collect(&order.order_ref).await.unwrap();
    assert_eq!(
        (c.status, c.hint_code),
        (Status::Failed, Some(HintCode::StartFailed))
    );
}

#[tokio::test]
async fn bankid_stub_command_stops_on_sigterm_and_refuses_production() {
    let pki = pki();
    let mut stub = spawn_stub(&pki, &[]);
    let pid = stub.child.id() as libc::pid_t;
    // SAFETY: signals only the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = stub.child.wait().unwrap();
    assert!(
        status.success(),
        "{status:?}: {}",
        stub.stderr.lock().unwrap()
    );

    let out = portvakt(&["bankid-stub", "--listen", "127.0.0.1:0"], pki.dir.path())
        .env("PORTVAKT_MODE", "production")
        .env("PORTVAKT_ISSUER", "https://idp.example.se")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("refused in production mode"), "{err}");

    let out = portvakt(
        &[
            "bankid-stub",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "x.pem",
        ],
        pki.dir.path(),
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `[bankid] environment = "stub"`: the stub is mounted at /bankid-stub and the client
/// built from the configuration reaches it.
#[tokio::test]
async fn bankid_stub_is_mounted_in_portvakt_when_configured() {
    let app = spawn_app_with(|c| {
        c.bankid.enabled = true;
        c.bankid.environment = portvakt::config::BankIdEnvironment::Stub;
    })
    .await;
    assert!(app.state.bankid_stub.is_some());
    let rp = Client::from_config(&app.config).unwrap();
    assert_eq!(
        rp.base().as_str(),
        format!("{}/bankid-stub/rp/v6.0/", app.base)
    );
    let mut req = auth_request(None);
    req.return_url = Some(format!("{}/login?tx=abc", app.base));
    let order = rp.auth(&req).await.unwrap();

    // The page, under Portvakt's security headers, opened by the autostart link.
    let http = app.client();
    let link = portvakt::sim::bankid::Stub::autostart_url(
        &app.url("/bankid-stub"),
        &order.auto_start_token,
        None,
    );
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let page = r.headers()["location"].to_str().unwrap().to_string();
    let r = http.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("content-security-policy"));
    let html = r.text().await.unwrap();
    assert!(html.contains("Logga in i Portvakts test"));
    assert!(html.contains(r#"action="/bankid-stub/app""#));
    assert_eq!(
        rp.collect(&order.order_ref).await.unwrap().hint_code,
        Some(HintCode::Started)
    );

    let r = http
        .post(app.url("/bankid-stub/app/api/approve"))
        .json(&serde_json::json!({"autoStartToken": order.auto_start_token, "personalNumber": PN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = rp.collect(&order.order_ref).await.unwrap();
    assert_eq!(c.completion_data.unwrap().user.personal_number, PN);

    // Outside the RP API, Portvakt's own 404 page.
    let r = http
        .get(app.url("/bankid-stub/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("<html"));
}
