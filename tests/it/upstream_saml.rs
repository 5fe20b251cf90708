//! Portvakt's SAML SP role (`upstream::saml`) at the function level: genuinely signed
//! Responses from pysaml2 as the upstream IdP (tests/interop/saml_idp.py; a library we did
//! not write) are accepted, and the classic signature-wrapping variants built from them are
//! refused; so are wrong Audience/Recipient/Destination/InResponseTo, expired and replayed
//! ones. Cases pysaml2 cannot produce (a signed Response around an unsigned Assertion, an
//! AES-GCM encrypted assertion) are signed with Portvakt's own IdP code and a test key.
//!
//! The Python comes from `interop_python()`; when it is missing the tests fail, never skip.

use crate::helpers::*;
use base64::{Engine, engine::general_purpose::STANDARD};
use portvakt::upstream::saml::metadata::{self, IdpMetadata};
use portvakt::upstream::saml::response::{self, Expect, Refusal};
use portvakt::upstream::saml::{SpEndpoints, SpKeys, certificate};
use std::path::Path;

const IDP: &str = "https://idp.pysaml2.example/idp";
const ISSUER: &str = "https://portvakt.example.se";

struct Fixture {
    sp: SpEndpoints,
    keys: SpKeys,
    idp: IdpMetadata,
    dir: tempfile::TempDir,
    now: i64,
}

fn rsa() -> Vec<u8> {
    let k = openssl::rsa::Rsa::generate(2048).unwrap();
    openssl::pkey::PKey::from_rsa(k)
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap()
}

fn now() -> i64 {
    portvakt::clock::Clock::system().now()
}

/// Runs saml_idp.py; returns the decoded Response XML and fills `idp` from its metadata.
fn pysaml2(fx: &mut Fixture, irt: &str, name_id: &str, extra: &[&str]) -> String {
    let dir = fx.dir.path();
    let sp_md = dir.join("sp.xml");
    std::fs::write(&sp_md, metadata::sp_metadata(&fx.sp, &fx.keys, "Portvakt")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/saml_idp.py");
    let out = std::process::Command::new(interop_python())
        .arg(script)
        .args(["response", "--work"])
        .arg(dir.join("idp"))
        .args(["--entity-id", IDP, "--sp-metadata"])
        .arg(&sp_md)
        .args(["--in-response-to", irt, "--name-id", name_id])
        .args([
            "--attr",
            "mail=asa@skola.example.se",
            "--attr",
            "givenName=Åsa",
        ])
        .args(extra)
        .output()
        .expect("run saml_idp.py");
    assert!(
        out.status.success(),
        "saml_idp.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let md = std::fs::read_to_string(json["metadata"].as_str().unwrap()).unwrap();
    fx.idp = metadata::parse(&md, fx.now).expect("pysaml2's IdP metadata is accepted");
    String::from_utf8(STANDARD.decode(json["response"].as_str().unwrap()).unwrap()).unwrap()
}

fn fixture() -> Fixture {
    Fixture {
        sp: SpEndpoints::new(ISSUER, "kommun"),
        keys: SpKeys::from_keys(rsa(), rsa(), "portvakt").unwrap(),
        idp: IdpMetadata {
            entity_id: IDP.into(),
            display_name: None,
            sso: format!("{IDP}/sso"),
            slo: vec![],
            signing_certs: vec![],
            want_authn_requests_signed: false,
            valid_until: None,
        },
        dir: tempfile::tempdir().unwrap(),
        now: now(),
    }
}

fn expect(fx: &Fixture, irt: &str) -> Expect {
    Expect {
        idp: fx.idp.clone(),
        sp: fx.sp.clone(),
        in_response_to: irt.into(),
        now: fx.now,
        skew: 60,
        forced_since: None,
    }
}

fn check(fx: &Fixture, xml: &str, e: &Expect) -> Result<response::Accepted, Refusal> {
    response::validate(&STANDARD.encode(xml), e, &fx.keys.encryption_key)
}

/// The Assertion element of a pysaml2 Response (prefix ns1), as text.
fn assertion_of(xml: &str) -> &str {
    let start = xml.find("<ns1:Assertion ").unwrap();
    let end = xml.find("</ns1:Assertion>").unwrap() + "</ns1:Assertion>".len();
    &xml[start..end]
}

/// An unsigned copy of the assertion with another ID and subject: what an attacker writes.
fn evil(signed: &str, id: &str) -> String {
    let sig_start = signed.find("<ns2:Signature").unwrap();
    let sig_end = signed.find("</ns2:Signature>").unwrap() + "</ns2:Signature>".len();
    let old_id = signed
        .split("ID=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    format!("{}{}", &signed[..sig_start], &signed[sig_end..])
        .replace(old_id, id)
        .replace(">pers-asa<", ">pers-admin<")
}

#[test]
fn a_pysaml2_response_is_accepted_and_read_in_full() {
    let mut fx = fixture();
    let xml = pysaml2(&mut fx, "_req1", "pers-asa", &[]);
    let ok = check(&fx, &xml, &expect(&fx, "_req1")).expect("accepted");
    assert_eq!(ok.subject, "pers-asa");
    assert_eq!(ok.claims["mail"], "asa@skola.example.se");
    assert_eq!(ok.claims["email"], "asa@skola.example.se");
    assert_eq!(ok.claims["email_verified"], "true");
    assert_eq!(ok.claims["givenName"], "Åsa");
    assert_eq!(ok.claims["urn:oid:2.5.4.42"], "Åsa");
    assert_eq!(
        ok.level.as_deref(),
        Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
    );
    assert!(ok.replay_until > fx.now);
    let id = ok.into_identity("kommun");
    assert_eq!(
        (id.upstream.as_str(), id.subject.as_str()),
        ("kommun", "pers-asa")
    );

    // Signed Response and signed Assertion (two signatures) are accepted too.
    let both = pysaml2(&mut fx, "_req2", "pers-asa", &["--sign-response"]);
    assert_eq!(both.matches("SignatureValue>").count(), 4, "{both}");
    assert!(check(&fx, &both, &expect(&fx, "_req2")).is_ok());
    // Tampering inside the Response's signed part breaks it.
    let tampered = both.replace("asa@skola", "eva@skola");
    assert_eq!(
        check(&fx, &tampered, &expect(&fx, "_req2")).unwrap_err(),
        Refusal::Signature
    );
}

#[test]
fn signature_wrapping_variants_are_refused() {
    let mut fx = fixture();
    let xml = pysaml2(&mut fx, "_req", "pers-asa", &[]);
    let e = expect(&fx, "_req");
    assert!(check(&fx, &xml, &e).is_ok());
    let signed = assertion_of(&xml);
    let signed_id = signed
        .split("ID=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let bad = evil(signed, "_evil");
    let refused = |doc: String, what: &str| {
        let r = check(&fx, &doc, &e);
        assert!(r.is_err(), "{what} was accepted: {doc}");
        let reason = r.unwrap_err();
        eprintln!("{what}: {reason}");
        // Refused for what it is, not because the test wrote broken XML.
        assert_ne!(reason, Refusal::Encoding, "{what}: {doc}");
        reason
    };
    // An unsigned assertion beside the signed one, before and after it (the latter is also
    // "a second assertion after the signed one").
    refused(
        xml.replace(signed, &format!("{bad}{signed}")),
        "unsigned before",
    );
    refused(
        xml.replace(signed, &format!("{signed}{bad}")),
        "unsigned after",
    );
    // An unsigned assertion around the signed one.
    let around = bad.replace("<ns1:Subject>", &format!("{signed}<ns1:Subject>"));
    refused(xml.replace(signed, &around), "unsigned around");
    // The signed assertion moved under Extensions, an unsigned one in its place, with its
    // own ID and with the signed one's ID (duplicate IDs).
    for id in ["_evil", signed_id] {
        let moved = xml.replace(
            signed,
            &format!(
                "<ns0:Extensions>{signed}</ns0:Extensions>{}",
                evil(signed, id)
            ),
        );
        refused(moved, "moved under Extensions");
    }
    // The signed assertion moved into a ds:Object of a copied Signature on an unsigned one
    // carrying the same ID (XSW7/8 shape).
    let sig_start = signed.find("<ns2:Signature").unwrap();
    let sig_end = signed.find("</ns2:Signature>").unwrap();
    let with_object = format!(
        "{}<ns2:Object>{signed}</ns2:Object></ns2:Signature>",
        &signed[sig_start..sig_end]
    );
    let xsw8 =
        evil(signed, signed_id).replace("</ns1:Issuer>", &format!("</ns1:Issuer>{with_object}"));
    refused(xml.replace(signed, &xsw8), "moved under ds:Object");
    // The same ID twice elsewhere in the document.
    refused(
        xml.replace(
            "<ns0:Status>",
            &format!(r#"<ns0:Extensions><x ID="{signed_id}"/></ns0:Extensions><ns0:Status>"#),
        ),
        "duplicate ID",
    );
    // A DOCTYPE (entity expansion, XXE) is refused before anything else.
    let doctype = xml.replacen(
        "<ns0:Response",
        "<!DOCTYPE r [<!ENTITY e \"x\">]><ns0:Response",
        1,
    );
    assert_eq!(check(&fx, &doctype, &e).unwrap_err(), Refusal::Encoding);
    // A Response that is only the evil assertion with the signed one's signature.
    let transplanted = evil(signed, signed_id).replace(
        "</ns1:Issuer>",
        &format!("</ns1:Issuer>{}", &signed[sig_start..sig_end + 16]),
    );
    assert_eq!(
        refused(xml.replace(signed, &transplanted), "transplanted signature"),
        Refusal::Signature
    );
}

/// XSW1/XSW2 shapes: a genuinely signed Response (and Assertion) kept inside an attacker's
/// Response, under Extensions or as a child, beside the attacker's unsigned assertion.
#[test]
fn a_signed_response_wrapped_in_another_is_refused() {
    let mut fx = fixture();
    let xml = pysaml2(&mut fx, "_req", "pers-asa", &["--sign-response"]);
    let e = expect(&fx, "_req");
    assert!(check(&fx, &xml, &e).is_ok());
    let body = xml.trim_start_matches("<?xml version=\"1.0\"?>").trim();
    let root_end = body.find('>').unwrap() + 1;
    let old_id = body
        .split("ID=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let evil_open = body[..root_end].replace(old_id, "_evil-response");
    let bad = evil(assertion_of(body), "_evil");
    let issuer_end = body.find("</ns1:Issuer>").unwrap() + "</ns1:Issuer>".len();
    let issuer = &body[root_end..issuer_end];
    for inner in [
        format!("<ns0:Extensions>{body}</ns0:Extensions>"),
        body.to_string(),
    ] {
        let status = r#"<ns0:Status><ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></ns0:Status>"#;
        let doc = format!("{evil_open}{issuer}{inner}{status}{bad}</ns0:Response>");
        let r = check(&fx, &doc, &e);
        assert!(
            matches!(r, Err(Refusal::Shape(_)) | Err(Refusal::Signature)),
            "{r:?}: {doc}"
        );
    }
}

#[test]
fn a_comment_inside_the_name_id_is_read_in_full_or_refused() {
    let mut fx = fixture();
    let xml = pysaml2(&mut fx, "_req", "asa@skola.se.evil.example", &[]);
    // Canonicalization drops comments, so the signature still verifies with one inserted.
    let commented = xml.replace(
        ">asa@skola.se.evil.example<",
        ">asa@skola.se<!---->.evil.example<",
    );
    assert_ne!(commented, xml);
    let result = check(&fx, &commented, &expect(&fx, "_req"));
    eprintln!("comment in NameID: {result:?}");
    match result {
        Ok(ok) => assert_eq!(ok.subject, "asa@skola.se.evil.example"),
        Err(r) => assert_eq!(r, Refusal::Signature),
    }
}

#[test]
fn wrong_audience_recipient_destination_in_response_to_and_time_are_refused() {
    let mut fx = fixture();
    let xml = pysaml2(&mut fx, "_req", "pers-asa", &[]);
    let e = expect(&fx, "_req");
    let mismatch = |e: &Expect| check(&fx, &xml, e).unwrap_err();
    // InResponseTo bound to another transaction.
    let mut other = e.clone();
    other.in_response_to = "_other".into();
    assert!(matches!(mismatch(&other), Refusal::Mismatch(_)));
    // Another upstream's endpoints: Destination first.
    let mut elsewhere = e.clone();
    elsewhere.sp = SpEndpoints::new(ISSUER, "annan");
    assert_eq!(
        mismatch(&elsewhere),
        Refusal::Mismatch("the Response's Destination")
    );
    // Our ACS but another entity id: the Audience.
    let mut audience = e.clone();
    audience.sp.entity_id = format!("{ISSUER}/upstream/annan/metadata");
    assert_eq!(mismatch(&audience), Refusal::Mismatch("the Audience"));
    // The (unsigned) Response's Destination moved to another ACS: the signed Recipient.
    let moved = xml.replace(
        &format!("Destination=\"{}\"", fx.sp.acs),
        "Destination=\"https://portvakt.example.se/upstream/annan/acs\"",
    );
    let mut acs = e.clone();
    acs.sp.acs = "https://portvakt.example.se/upstream/annan/acs".into();
    assert_eq!(
        check(&fx, &moved, &acs).unwrap_err(),
        Refusal::Mismatch("the SubjectConfirmationData's Recipient")
    );
    // Another IdP's entity id expected.
    let mut issuer = e.clone();
    issuer.idp.entity_id = "https://other.example".into();
    assert!(matches!(mismatch(&issuer), Refusal::Mismatch(_)));
    // Expired (pysaml2 gives 15 minutes) and not yet valid.
    let mut later = e.clone();
    later.now += 3600;
    assert_eq!(mismatch(&later), Refusal::Expired);
    let mut earlier = e.clone();
    earlier.now -= 3600;
    assert_eq!(mismatch(&earlier), Refusal::Expired);
    // ForceAuthn sent after the IdP's AuthnInstant.
    let mut forced = e.clone();
    forced.forced_since = Some(fx.now + 600);
    assert_eq!(mismatch(&forced), Refusal::Expired);
    // A key that is not in the IdP's metadata.
    let mut stranger = e.clone();
    stranger.idp.signing_certs = vec![certificate(&rsa(), "x").unwrap()];
    assert_eq!(mismatch(&stranger), Refusal::Signature);
    // A failure status.
    let failed = xml.replace(
        "urn:oasis:names:tc:SAML:2.0:status:Success",
        "urn:oasis:names:tc:SAML:2.0:status:Responder",
    );
    assert!(matches!(
        check(&fx, &failed, &e).unwrap_err(),
        Refusal::Status(_)
    ));
    // Still fine with the real expectations.
    assert!(check(&fx, &xml, &e).is_ok());
}

#[test]
fn pysaml2s_default_triple_des_encryption_is_refused_like_a_bad_signature() {
    let mut fx = fixture();
    let xml = pysaml2(&mut fx, "_req", "pers-asa", &["--encrypt"]);
    assert!(xml.contains("EncryptedAssertion"), "{xml}");
    assert!(xml.contains("tripledes-cbc"), "{xml}");
    assert_eq!(
        check(&fx, &xml, &expect(&fx, "_req")).unwrap_err(),
        Refusal::Signature
    );
}

struct DbReplay(portvakt::storage::Db);

impl response::ReplayCache for DbReplay {
    async fn first_use(&self, ns: &str, id: &str, until: i64) -> Result<bool, String> {
        portvakt::storage::saml::remember_request_id(&self.0, ns, id, until)
            .await
            .map_err(|e| e.to_string())
    }
}

#[tokio::test]
async fn a_replayed_response_is_refused_across_instances() {
    let app = spawn_app().await;
    let mut fx = fixture();
    let xml = pysaml2(&mut fx, "_req", "pers-asa", &[]);
    let gate = portvakt::xmlsec::dsig::Gate::new(1, 4);
    let replay = DbReplay(app.db.clone());
    let run = || {
        response::accept(
            &gate,
            STANDARD.encode(&xml),
            expect(&fx, "_req"),
            fx.keys.encryption_key.clone(),
            &replay,
        )
    };
    assert!(run().await.is_ok());
    assert_eq!(run().await.unwrap_err(), Refusal::Replayed);
}

#[tokio::test]
async fn the_sp_keys_are_made_once_and_shared() {
    let app = spawn_app().await;
    let n = app.clock.now();
    let a = SpKeys::load(&app.state.keys, "portvakt", n).await.unwrap();
    let b = SpKeys::load(&app.state.keys, "portvakt", n).await.unwrap();
    assert_eq!(a.signing_cert, b.signing_cert);
    assert_eq!(a.encryption_cert, b.encryption_cert);
    assert_ne!(a.signing_cert, a.encryption_cert);
}

/// Portvakt's own IdP code as the upstream, with a test key: the cases pysaml2 does not
/// produce.
mod own_signer {
    use super::*;
    use portvakt::saml::{Credential, encrypt, response as idp};

    fn signer() -> (Credential, Vec<u8>) {
        let key = rsa();
        let der = certificate(&key, "upstream idp").unwrap();
        (
            Credential {
                key_der: std::sync::Arc::new(key),
                cert_b64: STANDARD.encode(&der).into(),
            },
            der,
        )
    }

    fn parts<'a>(fx: &'a Fixture, irt: &'a str) -> idp::AssertionParts<'a> {
        idp::AssertionParts {
            idp: IDP,
            sp: &fx.sp.entity_id,
            acs: &fx.sp.acs,
            in_response_to: Some(irt),
            name_id: "pers-1",
            name_id_format: portvakt::upstream::saml::PERSISTENT,
            session_index: "_s",
            auth_time: fx.now,
            authn_context: "http://id.skolfederation.se/loa/2fa",
            attributes: "",
            now: fx.now,
            ttl: 300,
            skew: 60,
        }
    }

    #[test]
    fn a_gcm_encrypted_assertion_is_decrypted_and_its_inner_signature_verified() {
        let mut fx = fixture();
        let (cred, der) = signer();
        fx.idp.signing_certs = vec![der];
        let assertion = idp::signed_assertion(&parts(&fx, "_r"), &cred).unwrap();
        let enc = |a: &str| {
            encrypt::encrypt_assertion(
                a,
                &fx.keys.encryption_cert,
                encrypt::DataAlg::Aes256Gcm,
                encrypt::KeyTransport::RsaOaepMgf1p,
            )
            .unwrap()
        };
        let wrap = |a: &str| {
            idp::response(
                IDP,
                &fx.sp.acs,
                Some("_r"),
                idp::Status::OK,
                a,
                None,
                fx.now,
            )
            .unwrap()
        };
        let ok = check(&fx, &wrap(&enc(&assertion)), &expect(&fx, "_r")).expect("accepted");
        assert_eq!(ok.subject, "pers-1");
        assert_eq!(
            ok.level.as_deref(),
            Some("http://id.skolfederation.se/loa/2fa")
        );
        // The inner assertion altered before encryption: the same refusal as a ciphertext
        // that does not decrypt, or one encrypted for another key.
        let altered = assertion.replace("pers-1", "pers-2");
        let e = expect(&fx, "_r");
        assert_eq!(
            check(&fx, &wrap(&enc(&altered)), &e).unwrap_err(),
            Refusal::Signature
        );
        let other = SpKeys::from_keys(rsa(), rsa(), "x").unwrap();
        let foreign = encrypt::encrypt_assertion(
            &assertion,
            &other.encryption_cert,
            encrypt::DataAlg::Aes256Gcm,
            encrypt::KeyTransport::RsaOaep11,
        )
        .unwrap();
        assert_eq!(
            check(&fx, &wrap(&foreign), &e).unwrap_err(),
            Refusal::Signature
        );
        // CBC, even correctly encrypted for us and signed: refused the same way.
        let cbc = encrypt::encrypt_assertion(
            &assertion,
            &fx.keys.encryption_cert,
            encrypt::DataAlg::Aes256Cbc,
            encrypt::KeyTransport::RsaOaepMgf1p,
        )
        .unwrap();
        assert_eq!(check(&fx, &wrap(&cbc), &e).unwrap_err(), Refusal::Signature);
    }

    #[test]
    fn a_signed_response_wrapping_an_unsigned_assertion_is_refused() {
        let mut fx = fixture();
        let (cred, der) = signer();
        fx.idp.signing_certs = vec![der];
        let signed = idp::signed_assertion(&parts(&fx, "_r"), &cred).unwrap();
        let e = expect(&fx, "_r");
        let resp = |a: &str| {
            idp::response(
                IDP,
                &fx.sp.acs,
                Some("_r"),
                idp::Status::OK,
                a,
                Some(&cred),
                fx.now,
            )
            .unwrap()
        };
        // Both signed: accepted.
        assert!(check(&fx, &resp(&signed), &e).is_ok());
        // The Response signed, the Assertion inside it not: refused though every signature
        // in the document verifies.
        let start = signed.find("<ds:Signature").unwrap();
        let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        let unsigned = format!("{}{}", &signed[..start], &signed[end..]);
        let doc = resp(&unsigned);
        assert!(portvakt::xmlsec::dsig::verify_and_reduce(&doc, &fx.idp.signing_certs).is_ok());
        assert_eq!(check(&fx, &doc, &e).unwrap_err(), Refusal::Signature);
        // A transient NameID and no subject-id: no usable subject.
        let mut p = parts(&fx, "_r");
        p.name_id_format = portvakt::upstream::saml::TRANSIENT;
        let transient = idp::signed_assertion(&p, &cred).unwrap();
        assert_eq!(
            check(&fx, &resp(&transient), &e).unwrap_err(),
            Refusal::NoSubject
        );
    }
}

/// A second Portvakt as the upstream IdP, over real HTTP with real signatures: it registers
/// our SP metadata, takes our signed AuthnRequest, logs the person in, and answers with an
/// assertion it signs and encrypts (AES-GCM, RSA-OAEP) for our SP key; our validation accepts
/// it and reads the persistent NameID and the mail. The same Response again is a replay.
#[tokio::test]
async fn a_second_portvakt_is_the_upstream_idp_over_real_http() {
    use crate::saml_sp::{form_response, sso_until_form};
    use portvakt::upstream::saml::request;
    let upstream = spawn_app().await;
    upstream.add_person("personal.eva", &["staff@EKS"]).await;
    let mut fx = fixture();
    fx.now = upstream.clock.now();
    let sp_md = fx.dir.path().join("sp.xml");
    std::fs::write(&sp_md, metadata::sp_metadata(&fx.sp, &fx.keys, "Portvakt")).unwrap();
    let out = cli(
        &upstream,
        &[
            "sp",
            "add",
            "--metadata",
            sp_md.to_str().unwrap(),
            "--nameid",
            "persistent",
            "--release",
            "mail",
            "--release",
            "eduPersonPrincipalName",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = upstream
        .client()
        .get(upstream.url("/saml/metadata"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    fx.idp = metadata::parse(&md, fx.now).expect("Portvakt's IdP metadata is accepted");

    let options = request::Options {
        relay_state: Some("h-1"),
        ..Default::default()
    };
    let sent =
        request::authn_request(&fx.idp, &fx.sp, &fx.keys.signing_key, &options, fx.now).unwrap();
    assert!(
        sent.url
            .starts_with(&upstream.url("/saml/sso?SAMLRequest="))
    );
    let b = upstream.browser();
    let first = b.get(&sent.url).await;
    let page = sso_until_form(&b, &upstream, first, Some(("personal.eva", PASSWORD))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (action, xml, relay) = form_response(&page);
    assert_eq!(action, fx.sp.acs);
    assert_eq!(relay.as_deref(), Some("h-1"));
    assert!(xml.contains("EncryptedAssertion"), "{xml}");
    assert!(xml.contains("aes256-gcm"), "{xml}");
    let ok = check(&fx, &xml, &expect(&fx, &sent.id)).expect("accepted");
    assert_eq!(ok.claims["mail"], "personal.eva@example.se");
    assert_eq!(ok.claims["email_verified"], "true");
    assert_eq!(
        ok.name_id.as_ref().map(|(_, f)| f.as_str()),
        Some(portvakt::upstream::saml::PERSISTENT)
    );
    assert_eq!(ok.subject, ok.name_id.clone().unwrap().0);
    // Bound to its request: another transaction's ID is refused.
    assert!(check(&fx, &xml, &expect(&fx, "_another")).is_err());
    // Replayed through the shared cache: refused.
    let gate = portvakt::xmlsec::dsig::Gate::new(1, 4);
    let replay = DbReplay(upstream.db.clone());
    for first_time in [true, false] {
        let r = response::accept(
            &gate,
            STANDARD.encode(&xml),
            expect(&fx, &sent.id),
            fx.keys.encryption_key.clone(),
            &replay,
        )
        .await;
        assert_eq!(r.is_ok(), first_time, "{r:?}");
    }
}
