//! Building and checking the JWTs: ID tokens (OIDC Core §2), access tokens (RFC 9068) and
//! logout tokens (Back-Channel Logout §2.4). Subjects are pairwise by default.

use super::{GrantData, OidcError, Op, client::Client};
use crate::directory::release;
use crate::keys::{Alg, kek};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

/// The `sub` a client sees for a person: HMAC(salt, sector ‖ person id) unless the client is
/// configured public-subject. Stable per sector, unlinkable across sectors.
pub fn subject(op: &Op, client: &Client, person_id: &str) -> String {
    if client.record.subject_type == "public" {
        return person_id.to_string();
    }
    let msg = format!("{}\u{0}{}", client.sector(), person_id);
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(
        &op.keys.secrets().pairwise,
        msg.as_bytes(),
    ))
}

/// Left half of SHA-256, base64url: at_hash / c_hash for ES256 and RS256 (OIDC Core §3.1.3.6).
pub fn half_hash(value: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

pub struct IssuedAccess {
    pub token: String,
    pub jti: String,
    pub expires_at: i64,
}

/// An access token for a person (`person_id`) or for the client itself (None).
pub fn access_token(
    op: &Op,
    client: &Client,
    person_id: Option<&str>,
    grant: Option<&GrantData>,
    scope: &[String],
    jti: String,
    now: i64,
) -> Result<IssuedAccess, OidcError> {
    let exp = now + op.config.tokens.access_ttl;
    let mut c = json!({
        "iss": op.issuer(),
        "aud": client.id(),
        "client_id": client.id(),
        "iat": now,
        "exp": exp,
        "jti": jti,
        "scope": scope.join(" "),
    });
    match person_id {
        Some(pid) => {
            c["sub"] = json!(subject(op, client, pid));
            // The person id, sealed so the client learns nothing from it; userinfo reads it.
            c["ptv"] = json!(kek::seal_with(
                &op.keys.secrets().token,
                "access",
                pid.as_bytes()
            )?);
        }
        None => c["sub"] = json!(client.id()),
    }
    if let Some(g) = grant {
        c["auth_time"] = json!(g.auth_time);
        c["acr"] = json!(g.acr);
        c["amr"] = json!(g.amr);
        c["sid"] = json!(g.sid);
    }
    let token = op.keys.sign_jwt(Alg::Es256, "at+jwt", &c, now)?;
    Ok(IssuedAccess {
        token,
        jti,
        expires_at: exp,
    })
}

/// A checked access token.
#[derive(Debug)]
pub struct AccessClaims {
    pub jti: String,
    pub client_id: String,
    pub person_id: Option<String>,
    pub sub: String,
    pub scope: Vec<String>,
    pub iat: i64,
    pub exp: i64,
}

/// Verifies signature, type, issuer, expiry and the denylist.
pub async fn check_access_token(op: &Op, token: &str, now: i64) -> Result<AccessClaims, OidcError> {
    op.keys.refresh(now).await;
    let v = op
        .keys
        .verify_jwt_fresh(token, now)
        .await
        .map_err(|_| OidcError::InvalidToken)?;
    let c = &v.claims;
    if v.header["typ"] != "at+jwt" || c["iss"] != op.issuer() {
        return Err(OidcError::InvalidToken);
    }
    let exp = c["exp"].as_i64().ok_or(OidcError::InvalidToken)?;
    if exp <= now {
        return Err(OidcError::InvalidToken);
    }
    let jti = c["jti"]
        .as_str()
        .ok_or(OidcError::InvalidToken)?
        .to_string();
    if crate::storage::tokens::is_denied(&op.db, &jti).await? {
        return Err(OidcError::InvalidToken);
    }
    let person_id = match c["ptv"].as_str() {
        Some(sealed) => Some(
            kek::open_with(&op.keys.secrets().token, "access", sealed)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(OidcError::InvalidToken)?,
        ),
        None => None,
    };
    Ok(AccessClaims {
        jti,
        client_id: c["client_id"].as_str().unwrap_or_default().to_string(),
        person_id,
        sub: c["sub"].as_str().unwrap_or_default().to_string(),
        scope: super::split_spaces(c["scope"].as_str()),
        iat: c["iat"].as_i64().unwrap_or_default(),
        exp,
    })
}

/// Claims released to `client` for `scope`, per its release policy.
pub async fn released_claims(
    op: &Op,
    client: &Client,
    person_id: &str,
    scope: &[String],
    now: i64,
) -> Result<Map<String, Value>, OidcError> {
    release::released_now_by_id(
        &op.db,
        &op.config.directory,
        person_id,
        scope,
        &client.record.release,
        now,
    )
    .await?
    .ok_or_else(|| OidcError::InvalidGrant("the person is no longer active".into()))
}

/// Builds and signs an ID token, and writes the release record. The nonce is the grant's
/// (present for a code, absent after a refresh).
pub async fn id_token(
    op: &Op,
    client: &Client,
    person_id: &str,
    grant: &GrantData,
    access_token: &str,
    now: i64,
) -> Result<String, OidcError> {
    let (token, names) = signed_id_token(op, client, person_id, grant, access_token, now).await?;
    crate::storage::records::insert_release(
        &op.db,
        person_id,
        client.id(),
        "oidc",
        "id_token",
        &names,
        now,
    )
    .await?;
    Ok(token)
}

/// `id_token` without its release record: the token and the names of the released claims,
/// for a caller that writes the record together with its other rows.
pub async fn signed_id_token(
    op: &Op,
    client: &Client,
    person_id: &str,
    grant: &GrantData,
    access_token: &str,
    now: i64,
) -> Result<(String, Vec<String>), OidcError> {
    let released = released_claims(op, client, person_id, &grant.scope, now).await?;
    let names: Vec<String> = released.keys().cloned().collect();
    let mut c = Map::new();
    c.insert("iss".into(), json!(op.issuer()));
    c.insert("sub".into(), json!(subject(op, client, person_id)));
    c.insert("aud".into(), json!(client.id()));
    c.insert("exp".into(), json!(now + op.config.tokens.id_ttl));
    c.insert("iat".into(), json!(now));
    c.insert("auth_time".into(), json!(grant.auth_time));
    if let Some(n) = &grant.nonce {
        c.insert("nonce".into(), json!(n));
    }
    c.insert("acr".into(), json!(grant.acr));
    c.insert("amr".into(), json!(grant.amr));
    c.insert("at_hash".into(), json!(half_hash(access_token)));
    c.insert("sid".into(), json!(grant.sid));
    c.extend(released);
    let token = op.keys.sign_jwt(client.alg, "JWT", &c, now)?;
    Ok((token, names))
}

/// A logout token (Back-Channel Logout 1.0 §2.4).
pub fn logout_token(
    op: &Op,
    client: &Client,
    person_id: &str,
    sid: &str,
    now: i64,
) -> Result<String, OidcError> {
    let c = json!({
        "iss": op.issuer(),
        "aud": client.id(),
        "iat": now,
        "exp": now + 120,
        "jti": crate::keys::random_token(),
        "sub": subject(op, client, person_id),
        "sid": sid,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    Ok(op.keys.sign_jwt(client.alg, "logout+jwt", &c, now)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn half_hash_matches_the_spec_example() {
        // OIDC Core examples use SHA-256 left half; check length and alphabet.
        let h = super::half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y");
        assert_eq!(h.len(), 22);
        assert!(!h.contains('=') && !h.contains('+') && !h.contains('/'));
    }
}
