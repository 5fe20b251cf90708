//! The animated QR code (specs/bankid.md §6): every second a new text from the order's
//! qrStartToken, the whole seconds since the order started, and HMAC-SHA256 keyed with the
//! qrStartSecret, which never leaves the server.

use ring::hmac;

/// `bankid.<qrStartToken>.<qrTime>.<qrAuthCode>` for `seconds` after the order started.
pub fn qr_data(qr_start_token: &str, qr_start_secret: &str, seconds: u64) -> String {
    let time = seconds.to_string();
    format!(
        "bankid.{qr_start_token}.{time}.{}",
        auth_code(qr_start_secret, &time)
    )
}

/// Lower-case hex of HMAC-SHA256(key = secret, message = time), both as ASCII.
pub fn auth_code(qr_start_secret: &str, time: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, qr_start_secret.as_bytes());
    hex(hmac::sign(&key, time.as_bytes()).as_ref())
}

/// Splits QR text into (qrStartToken, qrTime, qrAuthCode); None when it is not BankID's.
pub fn parse(data: &str) -> Option<(&str, u64, &str)> {
    let rest = data.trim().strip_prefix("bankid.")?;
    let mut parts = rest.split('.');
    let (token, time, code) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || token.is_empty() || code.len() != 64 {
        return None;
    }
    let time = time
        .parse()
        .ok()
        .filter(|_| time.bytes().all(|b| b.is_ascii_digit()))?;
    Some((token, time, code))
}

/// Whether `code` is the auth code for `time` under `secret`, compared in constant time.
pub fn verify(qr_start_secret: &str, time: u64, code: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, qr_start_secret.as_bytes());
    let Some(tag) = unhex(code) else {
        return false;
    };
    hmac::verify(&key, time.to_string().as_bytes(), &tag).is_ok()
}

/// The QR code as an SVG document (black modules on white, with the quiet zone). BankID's
/// texts are about 120 bytes; only absurd input is too long for a QR code.
pub fn svg(data: &str) -> Result<String, qrcode::types::QrError> {
    use qrcode::render::svg;
    // Medium error correction, as BankID's own samples use.
    let code = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M)?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "67df3917-fa0d-44e5-b327-edcc928297f8";
    const SECRET: &str = "d28db9a7-4cde-429e-a983-359be676944c";

    /// BankID's official test vectors (specs/bankid.md §6).
    #[test]
    fn official_test_vectors() {
        let expected = [
            "dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8",
            "949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2",
            "a9e5ec59cb4eee4ef4117150abc58fad7a85439a6a96ccbecc3668b41795b3f3",
        ];
        for (t, code) in expected.iter().enumerate() {
            assert_eq!(auth_code(SECRET, &t.to_string()), *code);
            assert!(verify(SECRET, t as u64, code));
        }
        assert_eq!(
            qr_data(TOKEN, SECRET, 0),
            "bankid.67df3917-fa0d-44e5-b327-edcc928297f8.0.\
             dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8"
        );
    }

    #[test]
    fn parse_and_verify_refuse_what_is_not_exact() {
        let data = qr_data(TOKEN, SECRET, 7);
        let (token, time, code) = parse(&data).unwrap();
        assert_eq!((token, time), (TOKEN, 7));
        assert!(verify(SECRET, time, code));
        assert!(!verify(SECRET, 8, code));
        assert!(!verify("another-secret", 7, code));
        assert!(!verify(SECRET, 7, "zz"));
        assert_eq!(parse("bankid.x.1"), None);
        assert_eq!(
            parse(&format!("bankid.{TOKEN}.-1.{}", "0".repeat(64))),
            None
        );
        assert_eq!(parse(&format!("other.{TOKEN}.1.{}", "0".repeat(64))), None);
    }

    #[test]
    fn svg_is_a_standalone_document() {
        let s = svg(&qr_data(TOKEN, SECRET, 0)).unwrap();
        assert!(s.starts_with("<?xml") || s.starts_with("<svg"), "{s:.40}");
        assert!(s.contains("viewBox") || s.contains("width"));
    }
}
