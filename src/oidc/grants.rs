//! The token endpoint's grants (RFC 6749 §4.1.3, §6, §4.4; RFC 7636 §4.6), introspection
//! (RFC 7662) and revocation (RFC 7009). Codes and refresh tokens are consumed by one
//! conditional UPDATE; a replay revokes everything issued from the same grant.

use super::authorize::Params;
use super::{GrantData, OidcError, Op, client::Client, split_spaces, tokens};
use crate::storage::{
    self,
    tokens::{Consumed, GrantRecord},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// Client credentials as presented: from HTTP Basic or the form body.
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
}

/// Reads client authentication (RFC 6749 §2.3.1): `client_secret_basic` or
/// `client_secret_post`, or a bare client_id for public clients. Using both is an error.
pub fn presented(authorization: Option<&str>, p: &Params) -> Result<Presented, OidcError> {
    let basic = match authorization {
        Some(h) => {
            let (scheme, rest) = h.split_once(' ').ok_or(OidcError::InvalidClient)?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OidcError::InvalidClient);
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| OidcError::InvalidClient)?;
            let raw = String::from_utf8(raw).map_err(|_| OidcError::InvalidClient)?;
            let (id, secret) = raw.split_once(':').ok_or(OidcError::InvalidClient)?;
            // The parts are form-urlencoded before base64 (RFC 6749 §2.3.1).
            let dec = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Some(Presented {
                client_id: dec(id),
                secret: Some(dec(secret)),
            })
        }
        None => None,
    };
    let body_secret = p.get("client_secret");
    match basic {
        Some(b) => {
            if body_secret.is_some() {
                return Err(OidcError::InvalidRequest(
                    "use one client authentication method".into(),
                ));
            }
            if p.get("client_id").is_some_and(|id| id != b.client_id) {
                return Err(OidcError::InvalidClient);
            }
            Ok(b)
        }
        None => Ok(Presented {
            client_id: p
                .get("client_id")
                .ok_or(OidcError::InvalidClient)?
                .to_string(),
            secret: body_secret.map(String::from),
        }),
    }
}

pub async fn authenticate(
    op: &Op,
    authorization: Option<&str>,
    p: &Params,
    now: i64,
) -> Result<Client, OidcError> {
    if let Some(why) = p.malformed() {
        return Err(OidcError::InvalidRequest(why));
    }
    let pr = presented(authorization, p)?;
    super::client::authenticate(op, &pr.client_id, pr.secret.as_deref(), now).await
}

/// POST /token after client authentication.
pub async fn token(op: &Op, client: &Client, p: &Params, now: i64) -> Result<Value, OidcError> {
    let grant_type = p
        .get("grant_type")
        .ok_or_else(|| OidcError::InvalidRequest("grant_type is required".into()))?;
    if !super::client::GRANTS.contains(&grant_type) {
        return Err(OidcError::UnsupportedGrantType);
    }
    if !client.allows_grant(grant_type) {
        return Err(OidcError::UnauthorizedClient);
    }
    op.keys.refresh(now).await;
    let issued = match grant_type {
        "authorization_code" => authorization_code(op, client, p, now).await,
        "refresh_token" => refresh_token(op, client, p, now).await,
        _ => client_credentials(op, client, p, now),
    }?;
    crate::metrics::tokens_issued(client.id(), grant_type);
    Ok(issued)
}

async fn authorization_code(
    op: &Op,
    client: &Client,
    p: &Params,
    now: i64,
) -> Result<Value, OidcError> {
    let code = p
        .get("code")
        .ok_or_else(|| OidcError::InvalidRequest("code is required".into()))?;
    let hash = crate::keys::hash_token(code);
    // The access token's id is chosen before the code is consumed, so the consuming UPDATE
    // can record it for revocation on replay.
    let jti = crate::keys::random_token();
    let access_exp = now + op.config.tokens.access_ttl;
    let consumed =
        storage::tokens::consume_code(&op.db, &hash, client.id(), &jti, access_exp, now).await?;
    let rec = match consumed {
        Consumed::Now(rec) => rec,
        Consumed::Before {
            record,
            access_jti,
            access_expires_at,
        } => {
            // RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it.
            if let (Some(jti), Some(exp)) = (access_jti, access_expires_at) {
                storage::tokens::deny_jti(&op.db, &jti, exp).await?;
            }
            storage::tokens::revoke_family(&op.db, &record.family_id).await?;
            tracing::warn!(client_id = %client.id(), "authorization code replayed; issued tokens revoked");
            let event = crate::authn::Event::CodeReplay {
                person_id: &record.person_id,
                client_id: client.id(),
            };
            op.authn.audit(event, now).await;
            return Err(OidcError::InvalidGrant("the code was already used".into()));
        }
        Consumed::Missing => return Err(OidcError::InvalidGrant("unknown or expired code".into())),
        Consumed::OtherClient => {
            return Err(OidcError::InvalidGrant(
                "the code was issued to another client".into(),
            ));
        }
    };
    let grant: GrantData =
        serde_json::from_str(&rec.grant_data).map_err(|e| OidcError::Server(e.to_string()))?;
    if p.get("redirect_uri") != grant.redirect_uri.as_deref() {
        return Err(OidcError::InvalidGrant(
            "redirect_uri does not match the authorization request".into(),
        ));
    }
    match (&grant.code_challenge, p.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !pkce_ok(challenge, verifier) {
                return Err(OidcError::InvalidGrant(
                    "code_verifier does not match".into(),
                ));
            }
        }
        (Some(_), None) => return Err(OidcError::InvalidGrant("code_verifier is required".into())),
        // No PKCE downgrade: a code issued without a challenge refuses a verifier.
        (None, Some(_)) => {
            return Err(OidcError::InvalidGrant(
                "the code was issued without a code_challenge".into(),
            ));
        }
        (None, None) => {}
    }
    issue(op, client, &rec, &grant, jti, now).await
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, verifier 43-128 unreserved chars.
pub fn pkce_ok(challenge: &str, verifier: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    valid && subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// Issues access + ID token (+ a refresh token of the grant's family when the client may
/// refresh). The nonce comes from the grant: codes carry it, refresh tokens do not.
async fn issue(
    op: &Op,
    client: &Client,
    rec: &GrantRecord,
    grant: &GrantData,
    jti: String,
    now: i64,
) -> Result<Value, OidcError> {
    let access = tokens::access_token(
        op,
        client,
        Some(&rec.person_id),
        Some(grant),
        &grant.scope,
        jti,
        now,
    )?;
    let (id_token, released) =
        tokens::signed_id_token(op, client, &rec.person_id, grant, &access.token, now).await?;
    let mut body = json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": op.config.tokens.access_ttl,
        "id_token": id_token,
        "scope": grant.scope.join(" "),
    });
    let mut refresh_row = None;
    if client.allows_grant("refresh_token") {
        let refresh = crate::keys::random_token();
        let stored = GrantData {
            redirect_uri: None,
            nonce: None,
            code_challenge: None,
            ..grant.clone()
        };
        refresh_row = Some(GrantRecord {
            token_hash: crate::keys::hash_token(&refresh),
            family_id: rec.family_id.clone(),
            client_id: client.id().to_string(),
            person_id: rec.person_id.clone(),
            session_id: rec.session_id.clone(),
            grant_data: serde_json::to_string(&stored)
                .map_err(|e| OidcError::Server(e.to_string()))?,
            created_at: now,
            expires_at: now + op.config.tokens.refresh_ttl,
        });
        body["refresh_token"] = json!(refresh);
    }
    // The ID token's release record and the new refresh token in one round trip.
    let release = storage::tokens::Release {
        person_id: &rec.person_id,
        rp_id: client.id(),
        protocol: "oidc",
        artifact: "id_token",
        claims: &released,
        at: now,
    };
    storage::tokens::record_issue(&op.db, &release, refresh_row.as_ref()).await?;
    Ok(body)
}

async fn refresh_token(op: &Op, client: &Client, p: &Params, now: i64) -> Result<Value, OidcError> {
    let token = p
        .get("refresh_token")
        .ok_or_else(|| OidcError::InvalidRequest("refresh_token is required".into()))?;
    let hash = crate::keys::hash_token(token);
    let rec = match storage::tokens::consume_refresh(&op.db, &hash, client.id(), now).await? {
        Consumed::Now(rec) => rec,
        Consumed::Before { record, .. } => {
            // Rotation with reuse detection (RFC 9700 §4.14.2): a used token presented again
            // means it leaked; end the whole family.
            storage::tokens::revoke_family(&op.db, &record.family_id).await?;
            tracing::warn!(client_id = %client.id(), "refresh token reused; token family revoked");
            let event = crate::authn::Event::RefreshReplay {
                person_id: &record.person_id,
                client_id: client.id(),
            };
            op.authn.audit(event, now).await;
            return Err(OidcError::InvalidGrant(
                "the refresh token was already used".into(),
            ));
        }
        Consumed::Missing | Consumed::OtherClient => {
            return Err(OidcError::InvalidGrant(
                "unknown, expired or revoked refresh token".into(),
            ));
        }
    };
    let mut grant: GrantData =
        serde_json::from_str(&rec.grant_data).map_err(|e| OidcError::Server(e.to_string()))?;
    if let Some(asked) = p.get("scope") {
        let asked = split_spaces(Some(asked));
        if asked.iter().any(|s| !grant.scope.contains(s)) {
            return Err(OidcError::InvalidScope(
                "a refresh cannot widen the scope".into(),
            ));
        }
        grant.scope = asked;
    }
    issue(op, client, &rec, &grant, crate::keys::random_token(), now).await
}

fn client_credentials(op: &Op, client: &Client, p: &Params, now: i64) -> Result<Value, OidcError> {
    if client.record.public_client {
        return Err(OidcError::UnauthorizedClient);
    }
    // Person scopes make no sense without a person.
    let scope: Vec<String> = split_spaces(p.get("scope"))
        .into_iter()
        .filter(|s| s != "openid" && s != "offline_access" && client.allows_scope(s))
        .collect();
    let access = tokens::access_token(
        op,
        client,
        None,
        None,
        &scope,
        crate::keys::random_token(),
        now,
    )?;
    Ok(json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": op.config.tokens.access_ttl,
        "scope": scope.join(" "),
    }))
}

/// RFC 7662. Answers only about tokens issued to the calling client; anything else is
/// `{"active": false}`, so a client cannot probe another client's tokens.
pub async fn introspect(
    op: &Op,
    client: &Client,
    p: &Params,
    now: i64,
) -> Result<Value, OidcError> {
    let token = p
        .get("token")
        .ok_or_else(|| OidcError::InvalidRequest("token is required".into()))?;
    if let Ok(at) = tokens::check_access_token(op, token, now).await {
        // A person deactivated since (the register sync) makes their tokens inactive.
        let person_active = match &at.person_id {
            Some(id) => storage::persons::by_id(&op.db, id)
                .await?
                .is_some_and(|p| p.active),
            None => true,
        };
        if at.client_id == client.id() && person_active {
            return Ok(json!({
                "active": true,
                "scope": at.scope.join(" "),
                "client_id": at.client_id,
                "sub": at.sub,
                "exp": at.exp,
                "iat": at.iat,
                "iss": op.issuer(),
                "aud": client.id(),
                "jti": at.jti,
                "token_type": "Bearer",
            }));
        }
        return Ok(json!({ "active": false }));
    }
    let hash = crate::keys::hash_token(token);
    if let Some(rec) = storage::tokens::live_refresh(&op.db, &hash, now).await?
        && rec.client_id == client.id()
    {
        let grant: GrantData =
            serde_json::from_str(&rec.grant_data).map_err(|e| OidcError::Server(e.to_string()))?;
        return Ok(json!({
            "active": true,
            "scope": grant.scope.join(" "),
            "client_id": rec.client_id,
            "sub": tokens::subject(op, client, &rec.person_id),
            "exp": rec.expires_at,
            "iat": rec.created_at,
            "iss": op.issuer(),
            "token_type": "refresh_token",
        }));
    }
    Ok(json!({ "active": false }))
}

/// RFC 7009. Revokes an access token (denylist until expiry) or a refresh token (its
/// whole family) of the calling client. Unknown tokens are not an error (§2.2).
pub async fn revoke(op: &Op, client: &Client, p: &Params, now: i64) -> Result<(), OidcError> {
    let token = p
        .get("token")
        .ok_or_else(|| OidcError::InvalidRequest("token is required".into()))?;
    if let Ok(at) = tokens::check_access_token(op, token, now).await {
        // A person deactivated since (the register sync) makes their tokens inactive.
        let person_active = match &at.person_id {
            Some(id) => storage::persons::by_id(&op.db, id)
                .await?
                .is_some_and(|p| p.active),
            None => true,
        };
        if at.client_id == client.id() && person_active {
            storage::tokens::deny_jti(&op.db, &at.jti, at.exp).await?;
        }
        return Ok(());
    }
    let hash = crate::keys::hash_token(token);
    if let Some(rec) = storage::tokens::live_refresh(&op.db, &hash, now).await?
        && rec.client_id == client.id()
    {
        storage::tokens::revoke_family(&op.db, &rec.family_id).await?;
    }
    Ok(())
}

/// The userinfo answer (OIDC Core §5.3): `sub` plus the released claims for the token's scope.
pub async fn userinfo(op: &Op, access_token: &str, now: i64) -> Result<Value, OidcError> {
    let at = tokens::check_access_token(op, access_token, now).await?;
    let person_id = at.person_id.ok_or(OidcError::InvalidToken)?;
    if !at.scope.iter().any(|s| s == "openid") {
        return Err(OidcError::InsufficientScope);
    }
    let client = op
        .client(&at.client_id, now)
        .await?
        .filter(|c| !c.record.disabled)
        .ok_or(OidcError::InvalidToken)?;
    let claims = tokens::released_claims(op, &client, &person_id, &at.scope, now)
        .await
        .map_err(|_| OidcError::InvalidToken)?;
    let names: Vec<String> = claims.keys().cloned().collect();
    storage::records::insert_release(
        &op.db,
        &person_id,
        client.id(),
        "oidc",
        "userinfo",
        &names,
        now,
    )
    .await?;
    let mut out = serde_json::Map::new();
    out.insert(
        "sub".into(),
        json!(tokens::subject(op, &client, &person_id)),
    );
    out.extend(claims);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_rfc7636_appendix_b() {
        assert!(pkce_ok(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_ok(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"
        ));
    }

    #[test]
    fn basic_auth_is_form_decoded() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%3Aclient:s%2Bcret")
        );
        let p = presented(Some(&h), &Params::parse("")).unwrap();
        assert_eq!(p.client_id, "my:client");
        assert_eq!(p.secret.as_deref(), Some("s+cret"));
        assert!(presented(Some(&h), &Params::parse("client_secret=x")).is_err());
    }
}
