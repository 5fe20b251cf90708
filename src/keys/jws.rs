//! JWS compact serialisation (RFC 7515) over ring. The envelope is a few lines; the crypto
//! is ring's. Only the algorithms we publish are accepted: `alg` must match the key that
//! `kid` names, so `none` and algorithm confusion are impossible.

use super::{KeyError, SigningKey};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
}

/// A token whose signature verified.
#[derive(Debug)]
pub struct Verified {
    pub header: Value,
    pub claims: Value,
}

pub(super) fn sign(
    key: &SigningKey,
    typ: &str,
    claims: &impl serde::Serialize,
) -> Result<String, KeyError> {
    let header = json!({"alg": key.alg.as_str(), "kid": key.kid, "typ": typ});
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    let body = serde_json::to_vec(claims).map_err(|e| KeyError::Generate(e.to_string()))?;
    out.push_str(&URL_SAFE_NO_PAD.encode(body));
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(out)
}

pub(super) fn verify(keys: &[Arc<SigningKey>], token: &str) -> Result<Verified, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| JwsError::Malformed);
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| JwsError::Malformed)?;
    let kid = header["kid"].as_str().ok_or(JwsError::UnknownKey)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(JwsError::UnknownKey)?;
    if header["alg"].as_str() != Some(key.alg.as_str()) {
        return Err(JwsError::BadSignature);
    }
    let signing_input = &token[..h.len() + 1 + c.len()];
    if !key.verify(signing_input.as_bytes(), &decode(s)?) {
        return Err(JwsError::BadSignature);
    }
    let claims: Value = serde_json::from_slice(&decode(c)?).map_err(|_| JwsError::Malformed)?;
    Ok(Verified { header, claims })
}
