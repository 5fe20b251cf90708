//! The BankID RP API v6.0 client: `auth`, `phone/auth`, `collect`, `cancel`, each one POST
//! and never retried (a retried `auth` could start a second order and cancel the first).
//! Transport: rustls with the RP client certificate (PEM, or PKCS#12 converted with openssl
//! at load) and only BankID's own root CA for the environment as trust anchor.

use super::api::{
    AuthRequest, CollectResponse, ErrorBody, ErrorCode, OrderRef, OrderResponse, PhoneAuthRequest,
};
use crate::config::{BankIdConfig, BankIdEnvironment, Config};
use std::path::Path;
use std::time::Duration;

const PRODUCTION_URL: &str = "https://appapi2.bankid.com/rp/v6.0/";
const TEST_URL: &str = "https://appapi2.test.bankid.com/rp/v6.0/";
/// BankID's server roots (specs/bankid.md §1; SHA-256 fingerprints checked in a test).
const PRODUCTION_ROOT: &[u8] = include_bytes!("roots/bankid-root-prod.pem");
const TEST_ROOT: &[u8] = include_bytes!("roots/bankid-root-test.pem");

/// `requirement.certificatePolicies` for Mobile BankID and BankID on file (§1).
pub fn default_policies(env: BankIdEnvironment) -> Vec<String> {
    match env {
        BankIdEnvironment::Production => vec!["1.2.752.78.1.5".into(), "1.2.752.78.1.1".into()],
        // The stub follows the test environment.
        BankIdEnvironment::Test | BankIdEnvironment::Stub => {
            vec!["1.2.3.4.25".into(), "1.2.3.4.5".into()]
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BankIdError {
    /// BankID answered with an error code (§5).
    #[error("BankID answered {status} {code}")]
    Api {
        status: u16,
        code: ErrorCode,
        /// BankID's free text; may echo request fields, so it is not part of Display.
        details: String,
    },
    #[error("BankID could not be reached: {0}")]
    Transport(String),
    #[error("BankID answered something unexpected: {0}")]
    Protocol(String),
    #[error("BankID client configuration: {0}")]
    Config(String),
}

impl BankIdError {
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How the client reaches the RP API.
pub struct Transport {
    /// Ends with `/rp/v6.0/`.
    pub base: url::Url,
    /// Trust anchors (PEM). Empty only for plain HTTP (the stub on loopback).
    pub roots_pem: Vec<u8>,
    /// The RP certificate chain and key, as one PEM.
    pub identity_pem: Option<Vec<u8>>,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish()
    }
}

impl Client {
    pub fn new(t: Transport) -> Result<Self, BankIdError> {
        if !t.base.path().ends_with('/') {
            return Err(BankIdError::Config(format!(
                "the RP API URL {} must end with / (…/rp/v6.0/)",
                t.base
            )));
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            // Only the roots given here: BankID's own, never the web PKI.
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        if t.base.scheme() == "https" {
            let roots = reqwest::Certificate::from_pem_bundle(&t.roots_pem)
                .map_err(|e| BankIdError::Config(format!("trust anchor: {e}")))?;
            if roots.is_empty() {
                return Err(BankIdError::Config("no trust anchor for HTTPS".into()));
            }
            for r in roots {
                b = b.add_root_certificate(r);
            }
        }
        if let Some(pem) = &t.identity_pem {
            let id = reqwest::Identity::from_pem(pem)
                .map_err(|e| BankIdError::Config(format!("RP certificate: {e}")))?;
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| BankIdError::Config(e.to_string()))?;
        Ok(Self { http, base: t.base })
    }

    /// The client `[bankid]` describes.
    pub fn from_config(config: &Config) -> Result<Self, BankIdError> {
        Self::new(transport(config)?)
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    pub async fn auth(&self, req: &AuthRequest) -> Result<OrderResponse, BankIdError> {
        self.call("auth", req).await
    }

    pub async fn phone_auth(&self, req: &PhoneAuthRequest) -> Result<OrderResponse, BankIdError> {
        self.call("phone/auth", req).await
    }

    pub async fn collect(&self, order_ref: &str) -> Result<CollectResponse, BankIdError> {
        self.call(
            "collect",
            &OrderRef {
                order_ref: order_ref.into(),
            },
        )
        .await
    }

    pub async fn cancel(&self, order_ref: &str) -> Result<(), BankIdError> {
        let _: serde_json::Value = self
            .call(
                "cancel",
                &OrderRef {
                    order_ref: order_ref.into(),
                },
            )
            .await?;
        Ok(())
    }

    async fn call<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        body: &B,
    ) -> Result<R, BankIdError> {
        let url = self
            .base
            .join(method)
            .map_err(|e| BankIdError::Config(e.to_string()))?;
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| BankIdError::Transport(crate::error_chain(&e)))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| BankIdError::Transport(crate::error_chain(&e)))?;
        if status == 200 {
            return serde_json::from_slice(&bytes)
                .map_err(|e| BankIdError::Protocol(format!("{method}: {e}")));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(BankIdError::Api {
                status,
                code: e.error_code,
                details: e.details,
            }),
            Err(_) => Err(BankIdError::Protocol(format!(
                "{method}: HTTP {status} without an error body"
            ))),
        }
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, BankIdError> {
    std::fs::read(path)
        .map_err(|e| BankIdError::Config(format!("{what}: cannot read {}: {e}", path.display())))
}

/// The transport `[bankid]` describes: URL, trust anchor and RP certificate.
pub fn transport(config: &Config) -> Result<Transport, BankIdError> {
    let b: &BankIdConfig = &config.bankid;
    let url = match (b.url.as_str(), b.environment) {
        ("", BankIdEnvironment::Production) => PRODUCTION_URL.to_string(),
        ("", BankIdEnvironment::Test) => TEST_URL.to_string(),
        ("", BankIdEnvironment::Stub) => format!("{}/bankid-stub/rp/v6.0/", config.issuer),
        (u, _) => u.to_string(),
    };
    let base = url::Url::parse(&url).map_err(|e| {
        BankIdError::Config(format!(
            "[bankid] url {url:?}: {e}; set the RP API base ending in /rp/v6.0/, or leave it empty"
        ))
    })?;
    let roots_pem = match (&b.ca_cert, b.environment) {
        (Some(p), _) => read(p, "[bankid] ca_cert")?,
        (None, BankIdEnvironment::Production) => PRODUCTION_ROOT.to_vec(),
        (None, BankIdEnvironment::Test) => TEST_ROOT.to_vec(),
        // The mounted stub answers with the server's own certificate.
        (None, BankIdEnvironment::Stub) => match &config.tls {
            Some(tls) => read(&tls.cert, "[tls] cert")?,
            None => Vec::new(),
        },
    };
    let identity_pem = match (&b.client_cert, &b.client_key, &b.pkcs12) {
        (Some(cert), Some(key), _) => {
            let mut pem = read(cert, "[bankid] client_cert")?;
            pem.push(b'\n');
            pem.extend(read(key, "[bankid] client_key")?);
            Some(pem)
        }
        (_, _, Some(p12)) => {
            let password = match &b.pkcs12_password_file {
                Some(f) => String::from_utf8(read(f, "[bankid] pkcs12_password_file")?)
                    .map_err(|_| BankIdError::Config("the PKCS#12 password is not UTF-8".into()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                None => String::new(),
            };
            Some(pkcs12_to_pem(&read(p12, "[bankid] pkcs12")?, &password)?)
        }
        _ => None,
    };
    Ok(Transport {
        base,
        roots_pem,
        identity_pem,
    })
}

/// A PKCS#12 file as one PEM (certificate, its chain, PKCS#8 key): rustls reads no PKCS#12.
pub fn pkcs12_to_pem(der: &[u8], password: &str) -> Result<Vec<u8>, BankIdError> {
    let bad = |e: openssl::error::ErrorStack| BankIdError::Config(format!("PKCS#12: {e}"));
    let parsed = openssl::pkcs12::Pkcs12::from_der(der)
        .map_err(bad)?
        .parse2(password)
        .map_err(|_| BankIdError::Config("PKCS#12: wrong password or unreadable file".into()))?;
    let (Some(cert), Some(key)) = (parsed.cert, parsed.pkey) else {
        return Err(BankIdError::Config(
            "PKCS#12 holds no certificate with its key".into(),
        ));
    };
    let mut pem = cert.to_pem().map_err(bad)?;
    for c in parsed.ca.into_iter().flatten() {
        pem.extend(c.to_pem().map_err(bad)?);
    }
    pem.extend(key.private_key_to_pem_pkcs8().map_err(bad)?);
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(pem: &[u8]) -> String {
        let cert = openssl::x509::X509::from_pem(pem).unwrap();
        let d = cert.digest(openssl::hash::MessageDigest::sha256()).unwrap();
        d.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The bundled roots are BankID's (fingerprints from specs/bankid.md §1).
    #[test]
    fn bundled_roots_are_bankids_own() {
        assert_eq!(
            fingerprint(PRODUCTION_ROOT),
            "E6:A2:D4:5C:0A:10:51:C9:59:42:86:49:F8:6A:09:A9:B2:15:2C:D5:51:99:3C:C2:EB:4C:F0:94:BD:AC:BE:CB"
        );
        assert_eq!(
            fingerprint(TEST_ROOT),
            "F3:D0:74:0E:BF:B3:70:0E:3B:81:AA:79:1F:EE:45:14:72:69:8C:84:E1:99:C2:EB:48:A4:43:FF:1D:5B:40:5C"
        );
    }

    #[test]
    fn environments_choose_url_and_root() {
        let mut c = Config::default();
        c.bankid.environment = BankIdEnvironment::Test;
        let t = transport(&c).unwrap();
        assert_eq!(t.base.as_str(), TEST_URL);
        assert_eq!(t.roots_pem, TEST_ROOT);
        c.bankid.environment = BankIdEnvironment::Production;
        let t = transport(&c).unwrap();
        assert_eq!(t.base.as_str(), PRODUCTION_URL);
        c.bankid.environment = BankIdEnvironment::Stub;
        let t = transport(&c).unwrap();
        assert_eq!(
            t.base.as_str(),
            "http://localhost:8080/bankid-stub/rp/v6.0/"
        );
        Client::new(t).unwrap();
    }

    #[test]
    fn pkcs12_converts_to_a_pem_identity() {
        use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "FP Testcert").unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        let p12 = openssl::pkcs12::Pkcs12::builder()
            .name("rp")
            .pkey(&key)
            .cert(&cert)
            .build2("qwerty123")
            .unwrap()
            .to_der()
            .unwrap();
        let pem = pkcs12_to_pem(&p12, "qwerty123").unwrap();
        reqwest::Identity::from_pem(&pem).unwrap();
        assert!(matches!(
            pkcs12_to_pem(&p12, "wrong"),
            Err(BankIdError::Config(m)) if m.contains("wrong password")
        ));
    }
}
