//! The SS 12000 client against a register that requires mutual TLS: a private test CA
//! signs the register's certificate (IP 127.0.0.1) and the client's certificate, and the
//! register refuses any connection without a client certificate from that CA.

use crate::certs::{Role, certificate, write};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use portvakt::sim::ss12000::generate::generate;
use portvakt::sim::ss12000::mock::{Kind, Mock};
use portvakt::sync::ss12000::client::{Client, ClientConfig, Progress, SourceError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Serves `router` over HTTPS on a loopback port with a certificate `cert`, requiring a
/// client certificate that chains to `ca`.
fn serve_mtls(ca: &X509, cert: &X509, key: &PKey<Private>, router: Router) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.to_der().unwrap()))
        .unwrap();
    // Without `allow_unauthenticated`, the verifier requires a client certificate.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert.to_der().unwrap())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key.private_key_to_pkcs8().unwrap(),
            )),
        )
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(tls))).unwrap();
    tokio::spawn(server.serve(router.into_make_service()));
    addr
}

/// A client of the register at `addr` that fails at the first refusal.
fn client(
    addr: SocketAddr,
    client_cert: Option<(PathBuf, PathBuf)>,
    ca_cert: Option<PathBuf>,
) -> Client {
    let mut cfg = ClientConfig::new(url::Url::parse(&format!("https://{addr}/v2.0/")).unwrap());
    cfg.page_size = 50;
    cfg.max_retries = 0;
    cfg.retry_base = Duration::from_millis(1);
    cfg.timeout = Duration::from_secs(20);
    cfg.client_cert = client_cert;
    cfg.ca_cert = ca_cert;
    Client::new(cfg).expect("the client builds")
}

fn quiet(_: &Progress) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_tls_client_certificate_and_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, ca_key) = certificate("Portvakt test CA", Role::Ca, 1, None);
    let (server, server_key) = certificate("127.0.0.1", Role::Server, 2, Some((&ca, &ca_key)));
    let (client_crt, client_key) =
        certificate("portvakt-sync", Role::Client, 3, Some((&ca, &ca_key)));
    let ca_pem = write(dir.path(), "ca.pem", &ca.to_pem().unwrap());
    let cert_pem = write(dir.path(), "client.pem", &client_crt.to_pem().unwrap());
    let key_pem = write(
        dir.path(),
        "client.key",
        &client_key.private_key_to_pem_pkcs8().unwrap(),
    );

    let data = generate(
        1,
        100,
        portvakt::directory::roles::day_of(portvakt::clock::Clock::system().now()),
    );
    let (persons, organisations) = (data.len(Kind::Person), data.len(Kind::Organisation));
    assert!((90..=110).contains(&persons), "{persons} persons generated");
    assert!(organisations > 0);
    let mock = Mock::new(data);
    let router = Router::new().nest("/v2.0", mock.clone().router());
    let addr = serve_mtls(&ca, &server, &server_key, router);
    let identity = Some((cert_pem.clone(), key_pem.clone()));

    // (1) Client certificate and the private CA: the whole register.
    let snapshot = client(addr, identity.clone(), Some(ca_pem.clone()))
        .snapshot(&quiet)
        .await
        .expect("the snapshot over mutual TLS");
    assert_eq!(snapshot.persons.len(), persons);
    assert_eq!(snapshot.organisations.len(), organisations);
    assert!(!snapshot.duties.is_empty());

    let served = mock.requests();
    assert!(served > 0);

    // (2) No client certificate: the register refuses the TLS session, and no request
    // reaches it. With TLS 1.3 the register rejects the client's (empty) certificate only
    // after the client has finished its side of the handshake, so the refusal arrives while
    // the request is under way: depending on timing the message ends in "received fatal
    // alert: CertificateRequired" or in "connection was not ready" (hyper drops the
    // connection before the request is sent). Both name the path and a transport failure.
    let err = client(addr, None, Some(ca_pem.clone()))
        .snapshot(&quiet)
        .await
        .expect_err("the register requires a client certificate");
    let msg = err.to_string();
    assert!(matches!(err, SourceError::GaveUp { .. }), "{err:?}");
    assert!(
        msg.starts_with("GET /v2.0/organisations: still failing after 0 retries: "),
        "{msg}"
    );
    assert!(
        msg.contains("CertificateRequired") || msg.contains("connection was not ready"),
        "{msg}"
    );
    assert_eq!(
        mock.requests(),
        served,
        "a request got through without a certificate"
    );

    // (3) No private CA: the register's certificate is not trusted; the handshake fails
    // on the client's side, before any request.
    let err = client(addr, identity, None)
        .snapshot(&quiet)
        .await
        .expect_err("the register's certificate is not from a public CA");
    let msg = err.to_string();
    assert!(matches!(err, SourceError::GaveUp { .. }), "{err:?}");
    assert!(
        msg.starts_with("GET /v2.0/organisations: still failing after 0 retries: cannot connect"),
        "{msg}"
    );
    assert!(
        msg.contains("invalid peer certificate: UnknownIssuer"),
        "{msg}"
    );
    assert_eq!(mock.requests(), served);
}
