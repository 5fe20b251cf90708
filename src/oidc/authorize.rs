//! The authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636, RFC 9207).
//!
//! An unknown client or an unregistered redirect_uri gets an error page, never a redirect
//! (RFC 6749 §4.1.2.1). Every other error goes back to the redirect_uri with `iss`.

use super::{GrantData, OidcError, Op, client::Client, split_spaces};
use crate::authn::{Begin, Protocol, Requirement, Resumed, Session};
use crate::storage::{self, tokens::GrantRecord};

/// At most this many parameters are read from one request. The endpoints define about a
/// dozen; the cap keeps the duplicate check and every lookup cheap for a hostile body.
pub const MAX_PARAMS: usize = 100;

/// Request parameters as received, from the query (GET) or the form body (POST).
pub struct Params {
    pairs: Vec<(String, String)>,
    /// More than `MAX_PARAMS` were sent; the rest were not read.
    overflow: bool,
}

impl Params {
    pub fn parse(raw: &str) -> Self {
        let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
            .take(MAX_PARAMS + 1)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let overflow = pairs.len() > MAX_PARAMS;
        pairs.truncate(MAX_PARAMS);
        Params { pairs, overflow }
    }
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Params {
            pairs,
            overflow: false,
        }
    }
    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
    /// Why the request as a whole is malformed: too many parameters, or one given more than
    /// once (RFC 6749 §3.1: parameters MUST NOT be included more than once).
    pub fn malformed(&self) -> Option<String> {
        if self.overflow {
            return Some(format!("more than {MAX_PARAMS} parameters"));
        }
        let mut seen = std::collections::HashSet::with_capacity(self.pairs.len());
        self.pairs
            .iter()
            .find(|(k, _)| !seen.insert(k.as_str()))
            .map(|(k, _)| format!("parameter {k} given more than once"))
    }
}

/// Why an authorization request cannot proceed.
#[derive(Debug)]
pub enum Rejection {
    /// Shown as an error page: the redirect_uri cannot be trusted. The string is a catalogue key.
    Page(&'static str),
    /// Sent back to the client's redirect_uri.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
    /// Shown as an error page with 403: the client is registered but disabled (a catalogue key).
    Disabled(&'static str),
    Server(OidcError),
}

impl From<OidcError> for Rejection {
    fn from(e: OidcError) -> Self {
        Rejection::Server(e)
    }
}
impl From<storage::StorageError> for Rejection {
    fn from(e: storage::StorageError) -> Self {
        Rejection::Server(e.into())
    }
}
impl From<crate::authn::AuthnError> for Rejection {
    fn from(e: crate::authn::AuthnError) -> Self {
        Rejection::Server(e.into())
    }
}

/// A validated authorization request, stored in the login transaction while the person logs in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub requirement: Requirement,
    pub prompt_none: bool,
    pub login_hint: Option<String>,
    /// An upstream chosen in advance (`idp_hint`); the login page follows it only when
    /// it names an upstream the client allows.
    #[serde(default)]
    pub idp_hint: Option<String>,
}

/// What the handler does next.
pub enum Next {
    /// Redirect the browser here (a code or an error for the client).
    Redirect(String),
    /// The person must log in: send them to the login page with this transaction.
    Login(String),
}

/// Validates the request against the registered client.
pub async fn validate(op: &Op, p: &Params, now: i64) -> Result<(Client, AuthRequest), Rejection> {
    let client_id = p
        .get("client_id")
        .ok_or(Rejection::Page("error.unknown_client"))?;
    let client = op
        .client(client_id, now)
        .await?
        .filter(|c| c.allows_grant("authorization_code"))
        .ok_or(Rejection::Page("error.unknown_client"))?;
    refuse_disabled(&client)?;
    let redirect_uri = p
        .get("redirect_uri")
        .ok_or(Rejection::Page("error.bad_redirect_uri"))?;
    if !client.redirect_uri_registered(redirect_uri) {
        return Err(Rejection::Page("error.bad_redirect_uri"));
    }
    let req = read(&client, redirect_uri, p)?;
    Ok((client, req))
}

/// A disabled client gets a page, never a redirect: its registration is kept but nobody
/// logs in to it (a change takes effect within the client cache's `[cache] client_ttl`).
fn refuse_disabled(client: &Client) -> Result<(), Rejection> {
    if client.record.disabled {
        Err(Rejection::Disabled("error.service_disabled"))
    } else {
        Ok(())
    }
}

/// Reads the rest of a request whose client and redirect_uri are known and registered.
/// Pure: no storage, no clock (the fuzz target `oidc_params` drives it).
pub fn read(client: &Client, redirect_uri: &str, p: &Params) -> Result<AuthRequest, Rejection> {
    // From here on the redirect_uri is trusted: errors go back to the client.
    let state = p.get("state").map(String::from);
    let fail = |error: &'static str, description: &str| Rejection::Redirect {
        redirect_uri: redirect_uri.to_string(),
        state: state.clone(),
        error,
        description: description.to_string(),
    };
    if let Some(why) = p.malformed() {
        return Err(fail("invalid_request", &why));
    }
    if p.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if p.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match p.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        None => return Err(fail("invalid_request", "response_type is required")),
    }
    if p.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let requested = split_spaces(p.get("scope"));
    if !requested.iter().any(|s| s == "openid") {
        return Err(fail("invalid_scope", "the openid scope is required"));
    }
    // RFC 6749 §3.3: the server may grant less than asked; scopes the client is not
    // registered for are dropped, not refused.
    let mut scope: Vec<String> = requested
        .into_iter()
        .filter(|s| s == "openid" || client.allows_scope(s))
        .collect();
    let mut seen = std::collections::HashSet::new();
    scope.retain(|s| seen.insert(s.clone()));

    let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (Some(c), Some("S256")) => Some(c),
        (Some(_), Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        // RFC 7636 §4.3: absent means plain, which we do not accept.
        (Some(_), None) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (None, Some(_)) => return Err(fail("invalid_request", "code_challenge is missing")),
        (None, None) => None,
    };
    if let Some(c) = code_challenge
        && (c.len() != 43
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256",
        ));
    }
    if client.record.public_client && code_challenge.is_none() {
        return Err(fail(
            "invalid_request",
            "PKCE (S256) is required for public clients",
        ));
    }
    let prompt = split_spaces(p.get("prompt"));
    let prompt_none = prompt.iter().any(|x| x == "none");
    if prompt_none && prompt.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age =
        match p.get("max_age") {
            Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                fail("invalid_request", "max_age must be a non-negative integer")
            })?),
            None => None,
        };
    Ok(AuthRequest {
        client_id: client.id().to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope,
        state: state.clone(),
        nonce: p.get("nonce").map(String::from),
        code_challenge: code_challenge.map(String::from),
        requirement: Requirement {
            force: prompt.iter().any(|x| x == "login"),
            max_age,
            // Voluntary acr values we do not know cannot be compared: they are dropped
            // rather than making the request unanswerable. Known ones raise the client's
            // minimum level.
            acr_values: split_spaces(p.get("acr_values"))
                .into_iter()
                .filter(|a| crate::authn::acr::known(a))
                .collect(),
            acr_voluntary: true,
            ..Default::default()
        }
        .with_policy(&client.record.login),
        prompt_none,
        login_hint: p.get("login_hint").map(String::from),
        idp_hint: p
            .get("idp_hint")
            .filter(|h| crate::authn::policy::valid_upstream_name(h))
            .map(String::from),
    })
}

/// Decides an authorization request: a code at once when the SSO session satisfies it,
/// `login_required` for prompt=none, else a login transaction.
pub async fn decide(
    op: &Op,
    client: &Client,
    req: AuthRequest,
    session: Option<Session>,
    now: i64,
) -> Result<Next, Rejection> {
    if let Some(s) = session
        .as_ref()
        .filter(|s| req.requirement.reusable(s, now))
    {
        return Ok(Next::Redirect(issue_code(op, client, &req, s, now).await?));
    }
    if req.prompt_none {
        return Err(Rejection::Redirect {
            redirect_uri: req.redirect_uri,
            state: req.state,
            error: "login_required",
            description: "the person must log in".into(),
        });
    }
    let stored = serde_json::to_string(&req).map_err(|e| OidcError::Server(e.to_string()))?;
    let tx = op
        .authn
        .begin(
            Begin {
                protocol: Protocol::Oidc,
                rp_id: client.id(),
                rp_name: &client.record.name,
                request: stored,
                login_hint: req.login_hint.clone(),
                upstream_hint: req.idp_hint.clone(),
                requirement: &req.requirement,
                session: session.as_ref(),
            },
            now,
        )
        .await?;
    Ok(Next::Login(tx))
}

/// After login: the transaction's request, re-checked against the client as it is now.
pub async fn resume(
    op: &Op,
    tx_id: &str,
    cookie: Option<&str>,
    now: i64,
) -> Result<Next, Rejection> {
    let resumed = op
        .authn
        .resume(
            Protocol::Oidc,
            tx_id,
            cookie,
            |r: &AuthRequest| &r.requirement,
            now,
        )
        .await?;
    let (tx, req, session) = match resumed {
        Resumed::Expired => return Err(Rejection::Page("login.expired")),
        Resumed::Login(tx) => return Ok(Next::Login(tx)),
        Resumed::Ready {
            tx,
            request,
            session,
        } => (tx, request, session),
    };
    // The client may have been changed or removed while the person logged in.
    let client = op
        .client(&req.client_id, now)
        .await?
        .filter(|c| c.redirect_uri_registered(&req.redirect_uri))
        .ok_or(Rejection::Page("error.unknown_client"))?;
    refuse_disabled(&client)?;
    if !op.authn.finish(&tx.id).await? {
        return Err(Rejection::Page("login.expired"));
    }
    Ok(Next::Redirect(
        issue_code(op, &client, &req, &session, now).await?,
    ))
}

async fn issue_code(
    op: &Op,
    client: &Client,
    req: &AuthRequest,
    s: &Session,
    now: i64,
) -> Result<String, Rejection> {
    let code = crate::keys::random_token();
    let grant = GrantData {
        redirect_uri: Some(req.redirect_uri.clone()),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: s.auth_time,
        acr: s.acr.clone(),
        amr: s.amr(),
        sid: s.sid.clone(),
    };
    let hash = crate::keys::hash_token(&code);
    // The code and the session's participant row (for single logout) in one round trip.
    storage::tokens::insert_code_for_session(
        &op.db,
        &GrantRecord {
            family_id: hash.clone(),
            token_hash: hash,
            client_id: client.id().to_string(),
            person_id: s.person_id.clone(),
            session_id: s.id.clone(),
            grant_data: serde_json::to_string(&grant)
                .map_err(|e| OidcError::Server(e.to_string()))?,
            created_at: now,
            expires_at: now + op.config.tokens.code_ttl,
        },
        "oidc",
    )
    .await?;
    Ok(redirect_with(
        &req.redirect_uri,
        &[
            ("code", Some(code.as_str())),
            ("state", req.state.as_deref()),
            ("iss", Some(op.issuer())),
        ],
    ))
}

/// An error redirect per RFC 6749 §4.1.2.1, with `iss` (RFC 9207).
pub fn error_redirect(
    op: &Op,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> String {
    redirect_with(
        redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", state),
            ("iss", Some(op.issuer())),
        ],
    )
}

/// Appends parameters to a registered redirect URI, keeping its own query.
pub fn redirect_with(uri: &str, params: &[(&str, Option<&str>)]) -> String {
    // Nothing to add: the registered URI as it is (no stray `?`).
    if params.iter().all(|(_, v)| v.is_none()) {
        return uri.to_string();
    }
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            u.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_add_leaves_the_uri_alone() {
        assert_eq!(
            redirect_with("https://rp.example/bye", &[("state", None)]),
            "https://rp.example/bye"
        );
        assert_eq!(
            redirect_with("https://rp.example/bye?a=1", &[("state", Some("x y"))]),
            "https://rp.example/bye?a=1&state=x+y"
        );
    }

    #[test]
    fn duplicates_and_floods_are_found() {
        assert_eq!(
            Params::parse("a=1&b=2&a=3").malformed().as_deref(),
            Some("parameter a given more than once")
        );
        assert_eq!(Params::parse("a=1&b=2").malformed(), None);
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            Params::parse(&many[..MAX_PARAMS].join("&")).malformed(),
            None
        );
        assert_eq!(
            Params::parse(&many.join("&")).malformed().as_deref(),
            Some("more than 100 parameters")
        );
    }

    #[test]
    fn redirect_keeps_existing_query() {
        let r = redirect_with(
            "https://rp.example/cb?x=1",
            &[("code", Some("a b")), ("state", None)],
        );
        assert_eq!(r, "https://rp.example/cb?x=1&code=a+b");
    }
}
