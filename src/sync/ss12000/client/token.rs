//! OAuth2 client credentials (RFC 6749 §4.4) for a register that wants them: fetching a
//! token, caching it until shortly before it expires, and the token endpoint's errors.

use super::{Auth, Client, Run, SourceError, retry_after, retryable, transport};
use base64::Engine as _;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::time::Instant;

/// A cached token is renewed this long before the register says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// Token lifetime assumed when the token endpoint omits `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// A token from the token endpoint and when to stop using it.
pub(super) struct CachedToken {
    value: String,
    renew_at: Instant,
}

impl Client {
    /// The bearer token to send, fetching or renewing a client-credentials token.
    pub(super) async fn bearer(&self, run: &mut Run) -> Result<Option<String>, SourceError> {
        match &self.cfg.auth {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(t.clone())),
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let mut cached = self.token.lock().await;
                if let Some(t) = cached.as_ref()
                    && Instant::now() < t.renew_at
                {
                    return Ok(Some(t.value.clone()));
                }
                let fresh = self
                    .fetch_token(token_url, client_id, client_secret, scope.as_deref(), run)
                    .await?;
                let value = fresh.value.clone();
                *cached = Some(fresh);
                Ok(Some(value))
            }
        }
    }

    /// RFC 6749 §4.4.2 with §2.3.1 client authentication: id and secret are
    /// form-urlencoded, then sent as HTTP Basic.
    async fn fetch_token(
        &self,
        token_url: &url::Url,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
        run: &mut Run,
    ) -> Result<CachedToken, SourceError> {
        let path = token_url.path().to_string();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(client_id),
            enc(client_secret)
        ));
        // Built in a block: the serializer is not Send and must not live across an await.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(s) = scope {
                form.append_pair("scope", s);
            }
            form.finish()
        };
        let mut retries = 0;
        loop {
            run.report.requests += 1;
            let sent = self
                .http
                .post(token_url.clone())
                .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (last, after) = match sent {
                Err(e) => (transport(&e), None),
                Ok(resp) if resp.status().is_success() => {
                    return token_from(resp, &path).await;
                }
                Ok(resp) if retryable(resp.status()) => {
                    (resp.status().to_string(), retry_after(resp.headers()))
                }
                Ok(resp) => {
                    let status = resp.status();
                    let detail = oauth_error(resp).await;
                    let hint = if status == StatusCode::UNAUTHORIZED
                        || detail.contains("invalid_client")
                    {
                        "; check the client id and secret"
                    } else {
                        ""
                    };
                    return Err(SourceError::Token {
                        path,
                        detail: format!("the token request was refused ({status}{detail}){hint}"),
                    });
                }
            };
            if retries >= self.cfg.max_retries {
                return Err(SourceError::GaveUp {
                    method: "POST",
                    path,
                    retries,
                    last,
                });
            }
            tokio::time::sleep(after.unwrap_or_else(|| self.backoff(retries))).await;
            retries += 1;
            run.report.retries += 1;
        }
    }
}

/// `: error: description` from an RFC 6749 §5.2 error body.
async fn oauth_error(resp: reqwest::Response) -> String {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    let Ok(body) = resp.bytes().await else {
        return String::new();
    };
    match serde_json::from_slice::<OAuthError>(&body) {
        Ok(OAuthError {
            error: Some(e),
            error_description,
        }) => match error_description {
            Some(d) => format!(": {e}: {}", d.chars().take(300).collect::<String>()),
            None => format!(": {e}"),
        },
        _ => String::new(),
    }
}

async fn token_from(resp: reqwest::Response, path: &str) -> Result<CachedToken, SourceError> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        access_token: String,
        token_type: Option<String>,
        expires_in: Option<u64>,
    }
    let bad = |detail: &str| SourceError::Token {
        path: path.to_string(),
        detail: detail.to_string(),
    };
    let body = resp
        .bytes()
        .await
        .map_err(|_| bad("the token response broke off"))?;
    let t: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| bad("the token response is not an OAuth2 token (no access_token)"))?;
    if t.token_type
        .as_deref()
        .is_some_and(|k| !k.eq_ignore_ascii_case("bearer"))
    {
        return Err(bad(
            "the token endpoint issued a token that is not a bearer token",
        ));
    }
    let lifetime = t
        .expires_in
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    Ok(CachedToken {
        value: t.access_token,
        renew_at: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
    })
}
