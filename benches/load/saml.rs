//! SAML: SSO round trips with fresh AuthnRequests, and the raw RSA-2048 signature rate
//! of openssl to compare them with.

use super::*;

// ---------------------------------------------------------------------------------------
// SAML
// ---------------------------------------------------------------------------------------

/// AuthnRequest IDs: unique within the run (the server's replay cache refuses a repeat) and
/// across runs on one data directory (a per-process prefix).
pub(crate) static SAML_REQUESTS: AtomicU64 = AtomicU64::new(0);

// A separate program that loads a running server: its wall clock is the server's.
#[allow(clippy::disallowed_methods)]
pub(crate) fn saml_id_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("_bench{nanos:x}{:x}", std::process::id())
    })
}

/// The HTTP-Redirect URL of a fresh, unsigned AuthnRequest from a registered SP: raw
/// DEFLATE, base64, URL-encoded; a new ID and IssueInstant now.
#[allow(clippy::disallowed_methods)] // IssueInstant: the server under test reads its wall clock
pub(crate) fn saml_sso_url(base: &str, entity_id: &str, acs: &str) -> Res<String> {
    let n = SAML_REQUESTS.fetch_add(1, Ordering::Relaxed);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{}_{n}" Version="2.0" IssueInstant="{now}" Destination="{base}{SAML_SSO}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{entity_id}</saml:Issuer></samlp:AuthnRequest>"#,
        saml_id_prefix()
    );
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(xml.as_bytes()).map_err(|e| e.to_string())?;
    let deflated = e.finish().map_err(|e| e.to_string())?;
    let message = base64::engine::general_purpose::STANDARD.encode(deflated);
    Ok(format!("{base}{SAML_SSO}?SAMLRequest={}", enc(&message)))
}

/// One SSO round trip with a live session: GET /saml/sso (Redirect binding) with the SSO
/// cookie → 200 with the auto-submit form holding a successful, signed SAMLResponse.
pub(crate) async fn saml_sso(ctx: &Ctx, cookie: &str) -> Res<()> {
    saml_sso_as(ctx, cookie, SP_ENTITY_ID, SP_ACS).await
}

/// `saml_sso` for another registered SP.
pub(crate) async fn saml_sso_as(ctx: &Ctx, cookie: &str, entity_id: &str, acs: &str) -> Res<()> {
    let url = saml_sso_url(&ctx.base, entity_id, acs)?;
    let res = ctx
        .http
        .get(url)
        .header(COOKIE, format!("{SSO_COOKIE}={cookie}"))
        .send()
        .await
        .map_err(err("SAML SSO"))?;
    let status = res.status();
    let html = res.text().await.map_err(err("SAML SSO body"))?;
    if status != StatusCode::OK || !html.contains("name=\"SAMLResponse\"") {
        let mut start = html.chars().take(200).collect::<String>();
        start.retain(|c| c != '\n');
        return Err(format!(
            "SAML SSO: {status} without a SAMLResponse form: {start}"
        ));
    }
    // A refusal (replay, stale request...) is a signed Response too: read the status.
    let b64 = hidden_input(&html, "SAMLResponse")?;
    let xml = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("SAMLResponse base64: {e}"))?;
    let xml = String::from_utf8_lossy(&xml);
    if !xml.contains(":status:Success\"") || !xml.contains("SignatureValue>") {
        let code = xml
            .find("StatusCode Value=\"")
            .map(|i| xml[i..].chars().take(160).collect::<String>())
            .unwrap_or_default();
        return Err(format!("SAML SSO: not a signed success: {code}"));
    }
    Ok(())
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures/s over `RAW_SIGN_BYTES` bytes on `threads`
/// threads for `dur` (openssl, one Signer per signature). With `reload` the key is decoded
/// from its DER for every signature, as libxmlsec1 does when samael signs (a fresh key object
/// also redoes the RSA blinding and Montgomery set-up); otherwise one key object is reused.
pub(crate) fn rsa_rate(
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    reload: bool,
    threads: usize,
    dur: Duration,
) -> (u64, f64) {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    let data = vec![0x5a_u8; RAW_SIGN_BYTES];
    let der = key.private_key_to_der().unwrap_or_default();
    let t0 = Instant::now();
    let deadline = t0 + dur;
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (data, der) = (&data, &der);
                s.spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < deadline && n < 10_000_000 {
                        let fresh = if reload {
                            PKey::private_key_from_der(der).ok()
                        } else {
                            None
                        };
                        let ok =
                            Signer::new(MessageDigest::sha256(), fresh.as_ref().unwrap_or(key))
                                .and_then(|mut signer| {
                                    signer.update(data)?;
                                    signer.sign_to_vec()
                                })
                                .is_ok_and(|sig| sig.len() == 256);
                        if ok {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    (total, total as f64 / t0.elapsed().as_secs_f64())
}

/// Measures and reports the raw signature rate on 2 threads; returns (signatures/s, CPU µs
/// per signature).
pub(crate) fn raw_rsa(
    server_pid: u32,
    dur: Duration,
    report: &mut Report,
    when: &str,
    reload: bool,
) -> Res<(f64, f64)> {
    use openssl::{pkey::PKey, rsa::Rsa};
    let key = PKey::from_rsa(Rsa::generate(2048).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let cpu = CpuMeter::start(server_pid);
    let (sigs, rate) = rsa_rate(&key, reload, 2, dur);
    let used = cpu.read();
    let elapsed = sigs as f64 / rate.max(1e-9);
    // The bench process did nothing else meanwhile: its CPU is the signing threads'.
    let cpu_us = used.bench * elapsed * 1e6 / (sigs.max(1) as f64);
    let row = Row {
        what: format!(
            "raw RSA-2048 SHA-256 signature, 2 threads{} ({when})",
            if reload {
                ", key decoded per signature"
            } else {
                ""
            }
        ),
        client: "-",
        conc: 2,
        rate,
        ok: sigs,
        errors: 0,
        p50: f64::NAN,
        p99: f64::NAN,
        cpu: Some(Cpu {
            server: f64::NAN,
            ..used
        }),
        target: None,
        peak_rss_kib: None,
    };
    report.print(&row);
    report.rows.push(row);
    report.notes.push(format!(
        "raw RSA-2048{} ({when}): {sigs} signatures of {RAW_SIGN_BYTES} bytes in {:.1} s on 2 \
         threads: {cpu_us:.0} µs CPU per signature",
        if reload {
            ", key decoded from DER per signature"
        } else {
            ""
        },
        dur.as_secs_f64()
    ));
    Ok((rate, cpu_us))
}
