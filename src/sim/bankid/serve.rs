//! `portvakt bankid-stub`: the stub alone, with the RP API under `/rp/v6.0/` and the app
//! under `/app`. Plain HTTP, or HTTPS that requires a client certificate from a given CA,
//! as BankID requires the RP certificate (specs/bankid.md §1), so the client's whole
//! transport (trust anchor, client certificate) is exercised.

use super::{Stub, StubConfig};
use crate::web;
use anyhow::{Context, bail};
use axum::routing::get;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The server certificate and key, and the CA that client certificates must chain to.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// An address, e.g. `127.0.0.1:8901`; port 0 picks a free port (printed).
    pub listen: String,
    pub tls: Option<TlsFiles>,
    pub start_timeout: Duration,
    pub order_lifetime: Duration,
}

/// A rustls server configuration that refuses any client without a certificate issued by
/// `client_ca`.
pub fn tls_config(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = pem_certs(&files.cert)?;
    if certs.is_empty() {
        bail!("no certificate in --tls-cert {}", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        anyhow::anyhow!(
            "cannot read a key from --tls-key {}: {e}",
            files.key.display()
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in pem_certs(&files.client_ca)? {
        roots
            .add(ca)
            .with_context(|| format!("--client-ca {}", files.client_ca.display()))?;
    }
    if roots.is_empty() {
        bail!(
            "no certificate in --client-ca {}",
            files.client_ca.display()
        );
    }
    // Without `allow_unauthenticated` the verifier requires a client certificate.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .context("the client CA")?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("the server certificate and key do not go together")?;
    Ok(Arc::new(config))
}

fn pem_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read certificates from {}: {e}", path.display()))
}

/// The stub's router with what Portvakt's router would add around it: the stylesheet, the
/// 404 page and the edge middleware (security headers, language, access log without query
/// strings).
pub fn standalone_router(stub: &Stub, tls: bool) -> axum::Router {
    let edge = web::EdgeConfig {
        trusted_proxies: Arc::new(Vec::new()),
        tls,
    };
    stub.router()
        .route(web::paths::STYLESHEET, get(web::stylesheet))
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn_with_state(edge, web::edge))
}

/// Serves until `shutdown` completes; prints the address it listens on first.
pub async fn run(
    opts: Options,
    clock: crate::clock::Clock,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if opts.start_timeout.is_zero() || opts.order_lifetime.is_zero() {
        bail!("--start-timeout and --order-lifetime must be positive");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = opts.tls.as_ref().map(tls_config).transpose()?;
    let addr = tokio::net::lookup_host(&opts.listen)
        .await
        .with_context(|| {
            format!(
                "--listen {} is not an address (e.g. 127.0.0.1:8901)",
                opts.listen
            )
        })?
        .next()
        .with_context(|| format!("--listen {} resolves to no address", opts.listen))?;
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let stub = Stub::new(
        StubConfig {
            start_timeout: opts.start_timeout,
            order_lifetime: opts.order_lifetime,
            mount: String::new(),
            suggestions: Vec::new(),
        },
        clock,
    );
    let service =
        standalone_router(&stub, tls.is_some()).into_make_service_with_connect_info::<SocketAddr>();
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("BankID stub listening on {scheme}://{bound}");
    match tls {
        Some(config) => {
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                h.graceful_shutdown(Some(Duration::from_secs(5)));
            });
            let rustls = axum_server::tls_rustls::RustlsConfig::from_config(config);
            axum_server::from_tcp_rustls(listener, rustls)?
                .handle(handle)
                .serve(service)
                .await?;
        }
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
    }
    Ok(())
}
