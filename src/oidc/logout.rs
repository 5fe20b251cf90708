//! Logout: RP-Initiated Logout 1.0 (the end_session endpoint) and Back-Channel Logout 1.0
//! (logout tokens to clients that registered a URI, when any SSO session ends).
//!
//! No open redirect: we redirect only to a post_logout_redirect_uri registered for the
//! client named by a valid id_token_hint (an expired one is accepted) or by client_id.
//! No logout CSRF: without a valid id_token_hint the person confirms in a POST form.

use super::authorize::{Params, redirect_with};
use super::{Op, client::Client, tokens};
use crate::authn::{EndedSession, LogoutNotifier, Session};
use std::time::Duration;

/// A checked logout request.
#[derive(Debug)]
pub struct Checked {
    /// Where to send the browser afterwards (registered, with `state`).
    pub redirect: Option<String>,
    /// The id_token_hint verified and names the current session (or there is none).
    pub hint_matches: bool,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// Checks an end_session request. Err carries a catalogue key for the error page.
pub async fn check(
    op: &Op,
    p: &Params,
    session: Option<&Session>,
    now: i64,
) -> Result<Checked, &'static str> {
    let mut hint_client = None;
    let mut hint_matches = false;
    if let Some(hint) = p.get("id_token_hint") {
        op.keys.refresh(now).await;
        let v = op
            .keys
            .verify_jwt_fresh(hint, now)
            .await
            .map_err(|_| "error.bad_id_token_hint")?;
        // Only an ID token will do: an access or logout token of ours must not skip the
        // confirmation.
        if v.claims["iss"] != op.issuer() || v.header["typ"] != "JWT" {
            return Err("error.bad_id_token_hint");
        }
        let aud = match &v.claims["aud"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) if a.len() == 1 => {
                a[0].as_str().unwrap_or_default().to_string()
            }
            _ => return Err("error.bad_id_token_hint"),
        };
        hint_client = Some(aud);
        let sid = v.claims["sid"].as_str().unwrap_or_default();
        hint_matches = session.is_none_or(|s| s.sid == sid);
    }
    let client_id = match (hint_client, p.get("client_id")) {
        (Some(h), Some(c)) if h != c => return Err("error.bad_id_token_hint"),
        (Some(h), _) => Some(h),
        (None, c) => c.map(String::from),
    };
    let client: Option<Client> = match &client_id {
        Some(id) => op.client(id, now).await.map_err(|_| "error.internal")?,
        None => None,
    };
    let state = p.get("state").map(String::from);
    let redirect = match p.get("post_logout_redirect_uri") {
        Some(uri) => match &client {
            Some(c) if c.post_logout_uri_registered(uri) => {
                Some(redirect_with(uri, &[("state", state.as_deref())]))
            }
            _ => return Err("error.bad_logout_redirect"),
        },
        None => None,
    };
    Ok(Checked {
        redirect,
        hint_matches,
        client_id: client.map(|c| c.id().to_string()),
        post_logout_redirect_uri: p.get("post_logout_redirect_uri").map(String::from),
        state,
    })
}

/// Ends an OIDC session's part when an SSO session ends: sends logout tokens (in the
/// background) to the participants that registered a back-channel URI. The session's refresh
/// tokens are already revoked, in the transaction that ended it.
pub struct BackChannel {
    pub op: Op,
    pub http: reqwest::Client,
}

impl LogoutNotifier for BackChannel {
    fn session_ended(&self, ended: &EndedSession, now: i64) {
        let op = self.op.clone();
        let http = self.http.clone();
        let ended = ended.clone();
        tokio::spawn(async move {
            for (rp_id, protocol) in ended.participants.iter().filter(|(_, p)| p == "oidc") {
                let client = match op.client(rp_id, now).await {
                    Ok(Some(c)) => c,
                    _ => continue,
                };
                let Some(uri) = client.record.backchannel_logout_uri.clone() else {
                    continue;
                };
                let token =
                    match tokens::logout_token(&op, &client, &ended.person_id, &ended.sid, now) {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::error!("logout token for {rp_id} failed: {e}");
                            continue;
                        }
                    };
                let sent = http
                    .post(&uri)
                    .form(&[("logout_token", token)])
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        tracing::info!(client_id = %rp_id, %protocol, "back-channel logout delivered")
                    }
                    Ok(r) => {
                        tracing::warn!(client_id = %rp_id, status = r.status().as_u16(), "back-channel logout refused")
                    }
                    Err(_) => {
                        tracing::warn!(client_id = %rp_id, "back-channel logout could not be delivered")
                    }
                }
            }
        });
    }
}
