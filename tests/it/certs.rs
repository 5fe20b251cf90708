//! A private test CA and certificates it signs (openssl), for the tests that serve or call
//! mutual TLS: the SS 12000 register (`sync_tls`) and the BankID stub (`bankid_stub`).

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};
use std::path::{Path, PathBuf};

/// What a certificate is for.
#[derive(Clone, Copy)]
pub enum Role {
    Ca,
    Server,
    Client,
}

/// A fresh RSA key and a certificate for it, valid from today for one day: self-signed
/// when `issuer` is None, otherwise signed by the issuer's key.
pub fn certificate(
    cn: &str,
    role: Role,
    serial: u32,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> (X509, PKey<Private>) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&*name, |(ca, _)| ca.subject_name()))
        .unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    match role {
        Role::Ca => {
            let bc = BasicConstraints::new().critical().ca().build().unwrap();
            b.append_extension(bc).unwrap();
            let ku = KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap();
            b.append_extension(ku).unwrap();
        }
        Role::Server | Role::Client => {
            let bc = BasicConstraints::new().critical().build().unwrap();
            b.append_extension(bc).unwrap();
            let ku = KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap();
            b.append_extension(ku).unwrap();
            let mut eku = ExtendedKeyUsage::new();
            if matches!(role, Role::Server) {
                eku.server_auth();
                let san = SubjectAlternativeName::new()
                    .ip("127.0.0.1")
                    .build(&b.x509v3_context(issuer.map(|(ca, _)| &**ca), None))
                    .unwrap();
                b.append_extension(san).unwrap();
            } else {
                eku.client_auth();
            }
            b.append_extension(eku.build().unwrap()).unwrap();
        }
    }
    b.sign(issuer.map_or(&key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    (b.build(), key)
}

/// Writes `pem` to `dir/name`; its path.
pub fn write(dir: &Path, name: &str, pem: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}
