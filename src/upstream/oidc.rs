//! The client of upstream OpenID providers: discovery (cached), the authorization request
//! (code flow, PKCE S256, state, nonce), the callback (RFC 9207 `iss`, the code exchange with
//! client_secret_basic or client_secret_post as the provider allows) and the ID token,
//! validated by the `openidconnect` crate with RS256 and ES256 allowed, a small leeway on our
//! clock, and the JWKS fetched again on an unknown key id at most once a second.

use super::{Freshness, Identity, UpstreamError};
use crate::clock::Clock;
use openidconnect::core::{
    CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, SignatureVerificationError, TokenResponse,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// How long discovery is trusted before it is fetched again, and how long the last good copy
/// serves when the provider cannot be reached.
const DISCOVERY_TTL: i64 = 3600;
const DISCOVERY_STALE_MAX: i64 = 86_400;
/// Leeway for the ID token's `exp` and `iat` against our clock.
pub const LEEWAY: i64 = 90;
/// An ID token issued longer ago than this (plus the leeway) is refused.
const MAX_ID_TOKEN_AGE: i64 = 600;

/// One upstream's settings, as `authn` hands them over.
#[derive(Clone)]
pub struct Settings {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    /// `{our issuer}/upstream/NAME/callback`.
    pub redirect_uri: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// What the provider sent back to the callback.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    /// RFC 9207.
    pub iss: Option<String>,
}

/// What a login needs to remember between going out and coming back.
pub struct Secrets {
    pub nonce: String,
    pub pkce_verifier: String,
}

impl Secrets {
    pub fn new() -> Self {
        Self {
            nonce: crate::keys::random_token(),
            pkce_verifier: crate::keys::random_token(),
        }
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new()
    }
}

/// A provider as discovered.
struct Provider {
    metadata: CoreProviderMetadata,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    iss_parameter: bool,
    /// `end_session_endpoint` (RP-initiated logout).
    end_session: Option<String>,
    basic_auth: bool,
    jwks: Mutex<CoreJsonWebKeySet>,
    fetched_at: i64,
    /// When the JWKS was last fetched because of an unknown key id; the lock makes that
    /// fetch single-flight.
    jwks_forced_at: tokio::sync::Mutex<i64>,
}

/// The upstream OpenID provider client: one per application, with the discovery cache.
#[derive(Clone)]
pub struct OidcClient {
    http: reqwest::Client,
    clock: Clock,
    cache: Arc<Mutex<HashMap<String, Arc<Provider>>>>,
    /// Keeps two logins from fetching one provider's documents at once.
    fetch: Arc<tokio::sync::Mutex<()>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unavailable(format!("{what}: {e}"))
}

fn refused(e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Refused(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl OidcClient {
    /// `http` must not follow redirects and must have a timeout (the app's client has both).
    pub fn new(http: reqwest::Client, clock: Clock) -> Self {
        Self {
            http,
            clock,
            cache: Arc::new(Mutex::new(HashMap::new())),
            fetch: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<serde_json::Value, UpstreamError> {
        let res = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(what, crate::error_chain(&e)))?;
        if !res.status().is_success() {
            return Err(unavailable(what, format!("HTTP {}", res.status())));
        }
        res.json()
            .await
            .map_err(|e| unavailable(what, crate::error_chain(&e)))
    }

    async fn fetch_jwks(&self, url: &str) -> Result<CoreJsonWebKeySet, UpstreamError> {
        let v = self.get_json(url, "JWKS").await?;
        serde_json::from_value(v).map_err(|e| unavailable("JWKS", e))
    }

    /// The provider behind `issuer`, from the cache or discovered now.
    async fn provider(&self, issuer: &str) -> Result<Arc<Provider>, UpstreamError> {
        let now = self.clock.now();
        let cached = lock(&self.cache).get(issuer).cloned();
        if let Some(p) = &cached
            && now - p.fetched_at < DISCOVERY_TTL
        {
            return Ok(p.clone());
        }
        let _one = self.fetch.lock().await;
        if let Some(p) = lock(&self.cache).get(issuer).cloned()
            && now - p.fetched_at < DISCOVERY_TTL
        {
            return Ok(p);
        }
        match self.discover(issuer, now).await {
            Ok(p) => {
                let p = Arc::new(p);
                lock(&self.cache).insert(issuer.to_string(), p.clone());
                Ok(p)
            }
            Err(e) => match cached {
                Some(p) if now - p.fetched_at < DISCOVERY_STALE_MAX => {
                    tracing::warn!(issuer, "discovery failed, using the last good copy: {e}");
                    Ok(p)
                }
                _ => Err(e),
            },
        }
    }

    async fn discover(&self, issuer: &str, now: i64) -> Result<Provider, UpstreamError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let raw = self.get_json(&url, "discovery").await?;
        let metadata: CoreProviderMetadata = serde_json::from_value(raw.clone())
            .map_err(|e| unavailable("discovery document", e))?;
        // OpenID Connect Discovery §4.3: the issuer must be exactly the one asked for.
        if metadata.issuer().as_str() != issuer {
            return Err(refused(format!(
                "discovery names issuer {} instead of {issuer}",
                metadata.issuer().as_str()
            )));
        }
        if metadata.token_endpoint().is_none() {
            return Err(unavailable("discovery document", "no token_endpoint"));
        }
        let methods: Vec<String> = raw["token_endpoint_auth_methods_supported"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(String::from))
                    .collect()
            })
            // RFC 8414 §2: absent means client_secret_basic.
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        let basic_auth = if methods.iter().any(|m| m == "client_secret_basic") {
            true
        } else if methods.iter().any(|m| m == "client_secret_post") {
            false
        } else {
            return Err(refused(
                "the provider offers neither client_secret_basic nor client_secret_post",
            ));
        };
        let jwks = self.fetch_jwks(metadata.jwks_uri().url().as_str()).await?;
        Ok(Provider {
            iss_parameter: raw["authorization_response_iss_parameter_supported"] == true,
            end_session: raw["end_session_endpoint"].as_str().map(String::from),
            basic_auth,
            metadata,
            jwks: Mutex::new(jwks),
            fetched_at: now,
            jwks_forced_at: tokio::sync::Mutex::new(0),
        })
    }

    /// The authorization request to send the browser to; `state` is the handle of the
    /// stored login, `secrets` its nonce and PKCE verifier; a fresh login the relying party
    /// demanded is passed on (`prompt=login`, `max_age`).
    pub async fn authorization_url(
        &self,
        s: &Settings,
        state: &str,
        secrets: &Secrets,
        fresh: &Freshness,
    ) -> Result<String, UpstreamError> {
        let p = self.provider(&s.issuer).await?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            secrets.pkce_verifier.clone(),
        ));
        let mut url = p.metadata.authorization_endpoint().url().clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &s.client_id)
            .append_pair("redirect_uri", &s.redirect_uri)
            .append_pair("scope", &s.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", &secrets.nonce)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        if fresh.force {
            url.query_pairs_mut().append_pair("prompt", "login");
        }
        if let Some(max_age) = fresh.max_age {
            url.query_pairs_mut()
                .append_pair("max_age", &max_age.to_string());
        }
        Ok(url.into())
    }

    /// The provider's `end_session_endpoint`, when it has one (from the cache; discovery is
    /// fetched if needed).
    pub async fn end_session_endpoint(&self, issuer: &str) -> Option<String> {
        self.provider(issuer).await.ok()?.end_session.clone()
    }

    /// Finishes a login at the callback: checks the response, exchanges the code and
    /// validates the ID token. Returns what the provider proved and the raw ID token (kept
    /// for RP-initiated logout).
    pub async fn finish(
        &self,
        s: &Settings,
        params: &CallbackParams,
        secrets: &Secrets,
        fresh: &Freshness,
    ) -> Result<(Identity, String), UpstreamError> {
        if let Some(error) = &params.error {
            return Err(if error == "access_denied" {
                UpstreamError::Denied
            } else {
                refused(format!("the provider answered error={error}"))
            });
        }
        let p = self.provider(&s.issuer).await?;
        // RFC 9207: a mix-up defence. Checked whenever sent, required when advertised.
        match &params.iss {
            Some(iss) if iss != p.metadata.issuer().as_str() => {
                return Err(refused("the authorization response names another issuer"));
            }
            None if p.iss_parameter => {
                return Err(refused(
                    "the authorization response lacks the iss the provider advertises",
                ));
            }
            _ => {}
        }
        let code = params
            .code
            .clone()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| refused("the authorization response has no code"))?;
        let redirect = RedirectUrl::new(s.redirect_uri.clone()).map_err(refused)?;
        let client = CoreClient::from_provider_metadata(
            p.metadata.clone(),
            ClientId::new(s.client_id.clone()),
            Some(ClientSecret::new(s.client_secret.clone())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(if p.basic_auth {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        });
        let tokens: CoreTokenResponse = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| unavailable("token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(secrets.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    refused(format!("the token endpoint answered {}", r.error()))
                }
                other => unavailable("token endpoint", crate::error_chain(&other)),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| refused("the token response has no ID token"))?;
        let mut claims = self
            .verify_id_token(&p, s, id_token, tokens.access_token(), &secrets.nonce)
            .await?;
        check_auth_time(&claims, fresh, self.clock.now())?;
        // Providers that keep scope claims out of the ID token (OIDC Core §5.4) give the
        // email at userinfo.
        if !claims.contains_key("email")
            && s.scopes.iter().any(|x| x == "email")
            && let Some(url) = p.metadata.userinfo_endpoint()
        {
            let info = self
                .userinfo(url.url().as_str(), tokens.access_token())
                .await?;
            merge_userinfo(&mut claims, info)?;
        }
        let identity = to_identity(&s.name, claims)?;
        Ok((identity, id_token.to_string()))
    }

    async fn userinfo(
        &self,
        url: &str,
        access_token: &openidconnect::AccessToken,
    ) -> Result<serde_json::Map<String, serde_json::Value>, UpstreamError> {
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token.secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable("userinfo", crate::error_chain(&e)))?;
        if !res.status().is_success() {
            return Err(unavailable("userinfo", format!("HTTP {}", res.status())));
        }
        res.json()
            .await
            .map_err(|e| unavailable("userinfo (JSON expected)", crate::error_chain(&e)))
    }

    fn verifier<'a>(&self, p: &Provider, s: &'a Settings) -> CoreIdTokenVerifier<'a> {
        let clock = self.clock.clone();
        let clock2 = self.clock.clone();
        let jwks = lock(&p.jwks).clone();
        CoreIdTokenVerifier::new_confidential_client(
            ClientId::new(s.client_id.clone()),
            ClientSecret::new(s.client_secret.clone()),
            p.metadata.issuer().clone(),
            jwks,
        )
        // Its default is RS256 only.
        .set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ])
        // `exp` is compared with this: our clock, less the leeway.
        .set_time_fn(move || to_datetime(clock.now() - LEEWAY))
        .set_issue_time_verifier_fn(move |iat| {
            let now = clock2.now();
            let iat = iat.timestamp();
            if iat > now + LEEWAY {
                Err(format!("issued in the future ({iat})"))
            } else if iat < now - MAX_ID_TOKEN_AGE - LEEWAY {
                Err(format!("issued too long ago ({iat})"))
            } else {
                Ok(())
            }
        })
    }

    /// Validates the ID token and returns its claims as JSON; on an unknown key id the JWKS
    /// is fetched again (at most once a second per provider) and the check repeated.
    async fn verify_id_token(
        &self,
        p: &Provider,
        s: &Settings,
        id_token: &CoreIdToken,
        access_token: &openidconnect::AccessToken,
        nonce: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, UpstreamError> {
        let nonce = Nonce::new(nonce.to_string());
        let first = {
            let verifier = self.verifier(p, s);
            check_id_token(id_token, &verifier, access_token, &nonce)
        };
        match first {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let mut at = p.jwks_forced_at.lock().await;
                // Another login may have fetched the new keys while this one waited.
                let again = {
                    let verifier = self.verifier(p, s);
                    check_id_token(id_token, &verifier, access_token, &nonce)
                };
                if again.is_ok() {
                    return payload(&id_token.to_string());
                }
                let now = self.clock.now();
                if now.saturating_sub(*at) < 1 {
                    return Err(refused("the ID token's signing key is unknown"));
                }
                *at = now;
                let jwks = self
                    .fetch_jwks(p.metadata.jwks_uri().url().as_str())
                    .await?;
                *lock(&p.jwks) = jwks;
                drop(at);
                let verifier = self.verifier(p, s);
                check_id_token(id_token, &verifier, access_token, &nonce)
                    .map_err(|e| refused(crate::error_chain(&e)))?;
            }
            Err(e) => return Err(refused(crate::error_chain(&e))),
            Ok(()) => {}
        }
        // The claims are read from the same bytes whose signature was just checked.
        payload(&id_token.to_string())
    }
}

/// The crate's checks (signature, alg, iss, aud, exp, iat, nonce) and `at_hash` when present.
fn check_id_token(
    id_token: &CoreIdToken,
    verifier: &CoreIdTokenVerifier<'_>,
    access_token: &openidconnect::AccessToken,
    nonce: &Nonce,
) -> Result<(), ClaimsVerificationError> {
    let claims = id_token.claims(verifier, nonce)?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(ClaimsVerificationError::SignatureVerification)?;
        let key = id_token
            .signing_key(verifier)
            .map_err(ClaimsVerificationError::SignatureVerification)?;
        let actual = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|e| ClaimsVerificationError::Other(e.to_string()))?;
        if actual != *expected {
            return Err(ClaimsVerificationError::Other(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    Ok(())
}

/// A fresh login asked for must be one: the ID token's `auth_time` (required then, OIDC
/// Core §3.1.2.1 for max_age) no older than the login's start or the max_age allows. An
/// upstream that ignored `prompt=login` and answered from an old session is refused.
fn check_auth_time(
    claims: &serde_json::Map<String, serde_json::Value>,
    fresh: &Freshness,
    now: i64,
) -> Result<(), UpstreamError> {
    let Some(oldest) = fresh.oldest(now) else {
        return Ok(());
    };
    let auth_time = claims
        .get("auth_time")
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        .ok_or_else(|| refused("the ID token lacks the auth_time a fresh login needs"))?;
    if auth_time + LEEWAY < oldest {
        return Err(refused(format!(
            "the provider's login ({auth_time}) is older than the relying party allows ({oldest})"
        )));
    }
    Ok(())
}

fn to_datetime(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// The JSON payload of a compact JWS.
fn payload(jws: &str) -> Result<serde_json::Map<String, serde_json::Value>, UpstreamError> {
    use base64::Engine;
    let part = jws
        .split('.')
        .nth(1)
        .ok_or_else(|| refused("the ID token is not a JWS"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(refused)?;
    serde_json::from_slice(&bytes).map_err(refused)
}

/// Flattens an ID token's claims: strings as they are, booleans "true"/"false", numbers in
/// decimal, arrays of strings joined by spaces; objects are left out.
pub fn flatten(claims: &serde_json::Map<String, serde_json::Value>) -> BTreeMap<String, String> {
    use serde_json::Value;
    claims
        .iter()
        .filter_map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Array(a) if a.iter().all(Value::is_string) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => return None,
            };
            Some((k.clone(), s))
        })
        .collect()
}

/// Adds userinfo's claims to the ID token's. Userinfo must be about the same `sub` (OIDC Core
/// §5.3.4); the ID token's claims win, except that `email` and `email_verified` are taken
/// together from userinfo, so a verified flag is never applied to another address.
fn merge_userinfo(
    claims: &mut serde_json::Map<String, serde_json::Value>,
    mut info: serde_json::Map<String, serde_json::Value>,
) -> Result<(), UpstreamError> {
    if info.get("sub").is_none() || info.get("sub") != claims.get("sub") {
        return Err(refused("userinfo is about another subject"));
    }
    if let Some(email) = info.remove("email") {
        claims.insert("email".into(), email);
        match info.remove("email_verified") {
            Some(v) => claims.insert("email_verified".into(), v),
            None => claims.remove("email_verified"),
        };
    }
    for (k, v) in info {
        claims.entry(k).or_insert(v);
    }
    Ok(())
}

fn to_identity(
    name: &str,
    claims: serde_json::Map<String, serde_json::Value>,
) -> Result<Identity, UpstreamError> {
    let flat = flatten(&claims);
    let iss = flat.get("iss").cloned().unwrap_or_default();
    let sub = flat
        .get("sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refused("the ID token has no sub"))?;
    Ok(Identity {
        upstream: name.to_string(),
        // OIDC Core §5.7: only (iss, sub) is a stable identifier.
        subject: format!("{iss}#{sub}"),
        level: flat.get("acr").cloned(),
        claims: flat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_flatten_to_strings() {
        let v = serde_json::json!({
            "iss": "https://idp", "sub": "abc", "email_verified": true, "exp": 12,
            "amr": ["pwd", "mfa"], "address": {"country": "SE"}, "mixed": [1, "a"],
        });
        let flat = flatten(v.as_object().unwrap());
        assert_eq!(flat["email_verified"], "true");
        assert_eq!(flat["exp"], "12");
        assert_eq!(flat["amr"], "pwd mfa");
        assert!(!flat.contains_key("address") && !flat.contains_key("mixed"));
        let id = to_identity("up", v.as_object().unwrap().clone()).unwrap();
        assert_eq!(id.subject, "https://idp#abc");
        let mut no_sub = v.as_object().unwrap().clone();
        no_sub.remove("sub");
        assert!(to_identity("up", no_sub).is_err());
    }

    #[test]
    fn userinfo_email_comes_with_its_own_verified_flag() {
        let obj = |v: serde_json::Value| v.as_object().unwrap().clone();
        let mut claims = obj(serde_json::json!({"sub": "a", "email_verified": true, "tid": "t"}));
        merge_userinfo(
            &mut claims,
            obj(serde_json::json!({"sub": "a", "email": "x@y", "tid": "other", "name": "X"})),
        )
        .unwrap();
        assert_eq!(claims["email"], "x@y");
        assert!(!claims.contains_key("email_verified"), "not carried over");
        assert_eq!(claims["tid"], "t", "the ID token's claims win");
        assert_eq!(claims["name"], "X");
        let mut claims = obj(serde_json::json!({"sub": "a"}));
        let other = obj(serde_json::json!({"sub": "b", "email": "x@y", "email_verified": true}));
        assert!(merge_userinfo(&mut claims, other).is_err());
        let no_sub = obj(serde_json::json!({"email": "x@y"}));
        assert!(merge_userinfo(&mut claims, no_sub).is_err());
    }

    #[test]
    fn settings_do_not_print_the_secret() {
        let s = Settings {
            name: "n".into(),
            issuer: "https://i".into(),
            client_id: "c".into(),
            client_secret: "hemlig".into(),
            scopes: vec![],
            redirect_uri: "https://r".into(),
        };
        assert!(!format!("{s:?}").contains("hemlig"));
    }
}
