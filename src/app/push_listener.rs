//! `[sync.sources.NAME] listen`: a push source's listener of its own. rustls cannot ask for a
//! client certificate on one path only, so a source that proves itself by mutual TLS gets an
//! address of its own, served by the same accept loop (`serve`) as the other listeners: the
//! server certificate of `[tls]`, a client certificate required and accepted only when the
//! SHA-256 of its SubjectPublicKeyInfo is one of the source's `client_pins` (as fed-TLS
//! metadata pins keys: the pin replaces chain validation), and only the SCIM routes, each
//! request marked as the source's (`scim::TlsSource`).

use super::{AppState, ops, serve};
use crate::config::{Config, SourceKind};
use crate::scim::{Scim, TlsSource};
use crate::web;
use anyhow::Context;
use axum::Router;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// One push source's listener, bound at start.
pub(super) struct PushListener {
    pub(super) source: String,
    pub(super) listener: std::net::TcpListener,
    pub(super) tls: Arc<rustls::ServerConfig>,
}

/// Binds the listener of every push source with `listen`, each with its TLS configuration.
/// A taken port, a missing `[tls]` or a bad pin fails the start, naming the setting.
pub(super) fn bind(config: &Config) -> anyhow::Result<Vec<PushListener>> {
    let mut bound = Vec::new();
    for (name, s) in &config.sync.sources {
        let (SourceKind::Scim, Some(addr)) = (s.kind, s.listen) else {
            continue;
        };
        let setting = format!("[sync.sources.{name}] listen");
        let server = config.tls.as_ref().with_context(|| {
            format!("{setting}: mutual TLS needs the server certificate of [tls]")
        })?;
        let pins = s
            .client_pins
            .iter()
            .map(|p| {
                decode_pin(p).with_context(|| {
                    format!(
                        "[sync.sources.{name}] client_pins: {p:?} is not a base64 SHA-256 digest"
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !pins.is_empty(),
            "[sync.sources.{name}] client_pins: listen needs the pinned client keys"
        );
        let verifier = Arc::new(PinnedClientKeys::new(pins));
        let mut tls = serve::tls_config(&server.cert, &server.key, Some(verifier))?;
        // Every connection proves its key: no session is resumed (a resumption is not shown
        // to the verifier again; a pushing register makes few connections).
        tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        tls.send_tls13_tickets = 0;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} ({setting}): is the port free?"))?;
        listener.set_nonblocking(true)?;
        bound.push(PushListener {
            source: name.clone(),
            listener,
            tls: Arc::new(tls),
        });
    }
    Ok(bound)
}

fn decode_pin(pin: &str) -> anyhow::Result<[u8; 32]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(pin)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("not 32 bytes"))
}

/// The router of `source`'s listener: the SCIM routes alone, every request the source's,
/// with the main router's edge (access log, metrics, deadlines) and the push body limit.
pub(super) fn router(state: &AppState, scim: &Scim, source: &str) -> Router {
    let edge = web::EdgeConfig {
        // Mutual TLS ends here, so no proxy in front can have added a forwarded address:
        // the client is the TCP peer.
        trusted_proxies: Arc::new(Vec::new()),
        tls: true,
    };
    crate::scim::routes()
        .with_state(scim.clone())
        // The verifier admitted only this source's keys.
        .layer(axum::Extension(TlsSource(source.to_string())))
        .layer(axum::middleware::from_fn_with_state(
            serve::Deadlines::new(&state.config.server),
            serve::deadlines,
        ))
        .layer(axum::middleware::from_fn(ops::track))
        .layer(axum::middleware::from_fn_with_state(edge, web::edge))
        // A StudentGroup lists its members: larger bodies than a form's (as on the main
        // listener).
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.sync.push_body_limit,
        ))
}

/// Requires a client certificate and accepts it when the SHA-256 of its SubjectPublicKeyInfo
/// is pinned. No chain, name or validity period is checked: the pinned key is the trust, as
/// in fed-TLS (a new key is a new pin). The handshake's signature is still verified against
/// that key, so the client holds it.
#[derive(Debug)]
struct PinnedClientKeys {
    pins: Vec<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientKeys {
    fn new(pins: Vec<[u8; 32]>) -> Self {
        Self {
            pins,
            // One provider: ring (DEPENDENCIES.md §8).
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn pinned(&self, cert: &CertificateDer<'_>) -> Result<bool, rustls::Error> {
        // rustls's own certificate parser (webpki), the one its signature check uses.
        let spki = rustls::server::ParsedCertificate::try_from(cert)?.subject_public_key_info();
        let digest = ring::digest::digest(&ring::digest::SHA256, spki.as_ref());
        // Every pin is compared, so the time does not tell which one came close.
        let mut found = subtle::Choice::from(0);
        for pin in &self.pins {
            found |= digest.as_ref().ct_eq(pin.as_slice());
        }
        Ok(bool::from(found))
    }
}

impl ClientCertVerifier for PinnedClientKeys {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No CA names: the client sends the one certificate it has.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.pinned(end_entity)? {
            Ok(ClientCertVerified::assertion())
        } else {
            // The alert access_denied: the certificate was read, its key is not let in.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
