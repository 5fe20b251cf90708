//! Single Logout (SAML Profiles §4.4) across SAML SPs, and from OIDC logout to them.
//!
//! An SP's LogoutRequest ends the SSO session only when it verifies (signed whenever the SP's
//! metadata has a signing key) and its NameID and SessionIndex name a live session as we told
//! them to that SP. Ending it reaches OIDC clients by back-channel (the OIDC front's
//! notifier); the other SAML SPs are visited in turn through the browser, one LogoutRequest
//! each, and a failing SP is skipped, not waited for. The initiator gets a LogoutResponse at
//! the end. Every message we send is signed.

use super::response::{self, Status};
use super::sp::{self, Sp};
use super::sso::{self, Fatal, Inbound};
use super::xml::{self, SAML, SAMLP};
use super::{Credential, Idp, SamlError, dsig};
use crate::authn::{EndedSession, LogoutNotifier};
use crate::storage::saml as store;
use crate::web::paths;
use base64::{Engine, engine::general_purpose::STANDARD};
use std::future::Future;
use std::io::Write;
use std::pin::Pin;

/// How long a logout in progress may take.
const CHAIN_TTL: i64 = 600;

/// A logout in progress.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Chain {
    pub pending: Vec<Visit>,
    /// The SP we sent a LogoutRequest to and its ID.
    pub awaiting: Option<(String, String)>,
    pub failed: Vec<String>,
    pub finish: Finish,
    /// The ended session (its database id): the last browser hops of other fronts (an
    /// upstream's logout) come before answering the SP that asked.
    #[serde(default)]
    pub session: Option<String>,
}

/// One SP to log out of.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Visit {
    pub sp: String,
    pub name_id: String,
    pub name_id_format: String,
    pub session_index: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Finish {
    /// Send the browser here (a path or a registered OIDC post-logout URI, already checked).
    Redirect(String),
    /// Answer the SP that asked.
    Respond {
        sp: String,
        in_response_to: String,
        relay_state: Option<String>,
    },
}

/// What the browser is sent next.
pub enum Step {
    Redirect(String),
    Post(sso::PostForm),
    Page(&'static str),
}

/// The SLO cookie: the browser a logout in progress belongs to. Under TLS it is `__Host-`
/// prefixed, Secure and SameSite=None (SPs send the browser back by cross-site redirect or
/// POST); without TLS it is SameSite=Lax, as the SSO cookie.
pub fn cookie_name(config: &crate::config::Config) -> &'static str {
    if config.secure_cookies() {
        "__Host-portvakt_slo"
    } else {
        "portvakt_slo"
    }
}

/// The `Set-Cookie` binding this browser to a logout in progress.
pub fn set_cookie(value: &str, config: &crate::config::Config) -> axum::http::HeaderValue {
    crate::web::set_cookie(
        cookie_name(config),
        value,
        Some(CHAIN_TTL),
        config.secure_cookies(),
        crate::web::SameSite::None,
    )
}

/// Starts a chain over the SAML SPs of an ended session except `except`, bound to the
/// browser whose SLO cookie is `browser` (or to the first browser that takes a step, when
/// none); returns the single-use value of its first step.
pub async fn start(
    idp: &Idp,
    session_id: &str,
    except: Option<&str>,
    finish: Finish,
    browser: Option<&str>,
    now: i64,
) -> Result<String, SamlError> {
    let pending = store::subjects_of_session(&idp.db, session_id)
        .await?
        .into_iter()
        .filter(|s| Some(s.sp.as_str()) != except)
        .map(|s| Visit {
            sp: s.sp,
            name_id: s.name_id,
            name_id_format: s.name_id_format,
            session_index: s.session_index,
        })
        .collect();
    let chain = Chain {
        pending,
        awaiting: None,
        failed: Vec::new(),
        finish,
        session: Some(session_id.to_string()),
    };
    let id = crate::keys::random_token();
    let hop = crate::keys::random_token();
    let browser_hash = browser.map(crate::keys::hash_token);
    store::put_logout(
        &idp.db,
        &id,
        &crate::keys::hash_token(&hop),
        browser_hash.as_deref(),
        &encode(&chain)?,
        now + CHAIN_TTL,
    )
    .await?;
    Ok(hop)
}

fn encode(chain: &Chain) -> Result<String, SamlError> {
    Ok(serde_json::to_string(chain)
        .map_err(|e| crate::storage::StorageError::Corrupt(e.to_string()))?)
}

/// A step taken: the chain's id and state, and a new SLO cookie value when this step bound
/// the browser.
struct Taken {
    id: String,
    chain: Chain,
    bind: Option<String>,
}

/// Takes the step whose single-use value is `hop`, in the browser whose SLO cookie is
/// `cookie`. None (and nothing used up) when no live chain has that value out or the chain
/// belongs to another browser; None as well when another request took the step first.
async fn take(
    idp: &Idp,
    hop: &str,
    cookie: Option<&str>,
    now: i64,
) -> Result<Option<Taken>, SamlError> {
    if hop.is_empty() || hop.len() > 128 {
        return Ok(None);
    }
    let hop_hash = crate::keys::hash_token(hop);
    let Some(row) = store::logout_by_hop(&idp.db, &hop_hash, now).await? else {
        return Ok(None);
    };
    let (browser_hash, bind) = match &row.browser_hash {
        Some(h) => {
            let theirs = cookie
                .filter(|c| !c.is_empty() && c.len() <= 128)
                .map(crate::keys::hash_token);
            if !theirs.is_some_and(|t| crate::keys::constant_time_eq(&t, h)) {
                return Ok(None);
            }
            (h.clone(), None)
        }
        None => {
            let value = crate::keys::random_token();
            (crate::keys::hash_token(&value), Some(value))
        }
    };
    if !store::take_logout_hop(&idp.db, &row.id, &hop_hash, &browser_hash).await? {
        return Ok(None);
    }
    let Ok(chain) = serde_json::from_str(&row.state) else {
        return Ok(None);
    };
    Ok(Some(Taken {
        id: row.id,
        chain,
        bind,
    }))
}

/// Moves a chain on at `/saml/slo/next`: the browser came back without an answer (or is
/// starting a chain begun by an OIDC logout). A value that is not the chain's current step,
/// or a browser that is not the chain's, gets an error page and moves nothing.
pub async fn next(
    idp: &Idp,
    hop: &str,
    cookie: Option<&str>,
    now: i64,
) -> Result<Handled, SamlError> {
    let Some(taken) = take(idp, hop, cookie, now).await? else {
        return Ok(Handled {
            step: Step::Page("saml.logout_refused"),
            ended: false,
            bind: None,
        });
    };
    let step = advance(idp, &taken.id, taken.chain, now).await?;
    Ok(Handled {
        step,
        ended: false,
        bind: taken.bind,
    })
}

/// The next SP that can be sent a LogoutRequest (with a new single-use step value as
/// RelayState), or the finish.
async fn advance(idp: &Idp, id: &str, mut chain: Chain, now: i64) -> Result<Step, SamlError> {
    if let Some((sp, _)) = chain.awaiting.take() {
        // Came back here without an answer from that SP.
        chain.failed.push(sp);
    }
    while let Some(visit) = chain.pending.pop() {
        let sp = match idp.sp(&visit.sp, now).await {
            Ok(Some(sp)) if sp.slo().is_some() => sp,
            _ => {
                chain.failed.push(visit.sp);
                continue;
            }
        };
        let cred = idp.credential(now).await?;
        let hop = crate::keys::random_token();
        match send_request(idp, &sp, &visit, &cred, &hop, now).await {
            Ok((request_id, step)) => {
                chain.awaiting = Some((visit.sp.clone(), request_id));
                store::update_logout(
                    &idp.db,
                    id,
                    &crate::keys::hash_token(&hop),
                    &encode(&chain)?,
                )
                .await?;
                return Ok(step);
            }
            Err(e) => {
                tracing::warn!(
                    "logout request to {} failed: {}",
                    visit.sp,
                    crate::error_chain(&e)
                );
                chain.failed.push(visit.sp);
            }
        }
    }
    store::delete_logout(&idp.db, id).await?;
    match chain.finish {
        Finish::Redirect(to) => Ok(Step::Redirect(to)),
        Finish::Respond {
            sp,
            in_response_to,
            relay_state,
        } => {
            let Some(sp) = idp.sp(&sp, now).await? else {
                return Ok(Step::Redirect(paths::LOGGED_OUT.to_string()));
            };
            let step = send_response(
                idp,
                &sp,
                &in_response_to,
                relay_state.as_deref(),
                outcome(chain.failed.is_empty()),
                now,
            )
            .await?;
            // The session may have come from an upstream IdP: the browser logs out there
            // too, then goes on to our answer. (An answer over HTTP-POST cannot wait.)
            match (step, &chain.session) {
                (Step::Redirect(to), Some(session)) => Ok(Step::Redirect(
                    idp.authn.last_browser_hops(session, &to, now).await,
                )),
                (step, _) => Ok(step),
            }
        }
    }
}

/// Success when every other SP confirmed, else Success/PartialLogout.
fn outcome(all_confirmed: bool) -> Status {
    if all_confirmed {
        Status::OK
    } else {
        Status {
            code: response::SUCCESS,
            sub: Some(response::PARTIAL_LOGOUT),
            message: Some("not every service confirmed the logout"),
        }
    }
}

fn deflate_b64(xml: &str) -> Result<String, SamlError> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes())
        .and_then(|_| e.finish())
        .map(|b| STANDARD.encode(b))
        .map_err(|e| SamlError::Certificate(format!("deflate: {e}")))
}

/// Sends a message by the endpoint's binding, signed either way.
async fn send(
    endpoint: &sp::Endpoint,
    location: &str,
    param: &'static str,
    build: impl FnOnce(bool) -> Result<String, SamlError> + Send + 'static,
    relay_state: Option<String>,
    cred: &Credential,
) -> Result<Step, SamlError> {
    if endpoint.binding == sp::REDIRECT {
        let xml = build(false)?;
        let encoded = deflate_b64(&xml)?;
        let query = dsig::sign_redirect(param, &encoded, relay_state.as_deref(), &cred.key_der)?;
        let sep = if location.contains('?') { '&' } else { '?' };
        Ok(Step::Redirect(format!("{location}{sep}{query}")))
    } else {
        let xml = build(true)?;
        Ok(Step::Post(sso::PostForm {
            action: location.to_string(),
            field: param,
            value: STANDARD.encode(xml),
            relay_state,
        }))
    }
}

async fn send_request(
    idp: &Idp,
    sp: &Sp,
    visit: &Visit,
    cred: &Credential,
    chain_id: &str,
    now: i64,
) -> Result<(String, Step), SamlError> {
    let endpoint = sp
        .slo()
        .cloned()
        .ok_or_else(|| SamlError::Certificate("no SLO".into()))?;
    let location = endpoint.location.clone();
    let (idp_id, v, c) = (idp.entity_id().to_string(), visit.clone(), cred.clone());
    let id_slot = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let slot = id_slot.clone();
    let loc = location.clone();
    let step = send(
        &endpoint,
        &location,
        "SAMLRequest",
        move |sign_xml| {
            let subject = response::LogoutSubject {
                sp: &v.sp,
                name_id: &v.name_id,
                name_id_format: &v.name_id_format,
                session_index: &v.session_index,
            };
            let (id, xml) = response::logout_request(&idp_id, &loc, &subject, &c, sign_xml, now)?;
            if let Ok(mut s) = slot.lock() {
                *s = id;
            }
            Ok(xml)
        },
        Some(chain_id.to_string()),
        cred,
    )
    .await?;
    let id = id_slot.lock().map(|s| s.clone()).unwrap_or_default();
    Ok((id, step))
}

async fn send_response(
    idp: &Idp,
    sp: &Sp,
    in_response_to: &str,
    relay_state: Option<&str>,
    status: Status,
    now: i64,
) -> Result<Step, SamlError> {
    let Some(endpoint) = sp.slo().cloned() else {
        return Ok(Step::Redirect(paths::LOGGED_OUT.to_string()));
    };
    let location = endpoint
        .response_location
        .clone()
        .unwrap_or_else(|| endpoint.location.clone());
    let cred = idp.credential(now).await?;
    let (idp_id, irt, loc, c) = (
        idp.entity_id().to_string(),
        in_response_to.to_string(),
        location.clone(),
        cred.clone(),
    );
    send(
        &endpoint,
        &location,
        "SAMLResponse",
        move |sign_xml| response::logout_response(&idp_id, &loc, &irt, status, &c, sign_xml, now),
        relay_state.map(String::from),
        &cred,
    )
    .await
}

/// The outcome of a message at the SLO endpoint.
pub struct Handled {
    pub step: Step,
    /// The browser's SSO session ended here: clear its cookie.
    pub ended: bool,
    /// This browser was bound to a logout in progress: set its SLO cookie to this value.
    pub bind: Option<String>,
}

/// The browser's cookies as the SLO endpoint sees them.
#[derive(Clone, Copy, Default)]
pub struct BrowserCookies<'a> {
    /// The SSO cookie's value (which session this browser has).
    pub sso: Option<&'a str>,
    /// The SLO cookie's value (which logout in progress this browser drives).
    pub slo: Option<&'a str>,
}

/// Handles a LogoutRequest or LogoutResponse from an SP.
pub async fn handle(
    idp: &Idp,
    inbound: &Inbound<'_>,
    is_response: bool,
    cookies: BrowserCookies<'_>,
    now: i64,
) -> Result<Handled, Fatal> {
    let text = sso::decode(
        inbound.binding,
        inbound.message,
        idp.config.saml.max_message_bytes,
    )?;
    let issuer = sso::issuer_of(&text)?;
    let sp = match idp.sp(&issuer, now).await {
        Ok(Some(sp)) => sp,
        Ok(None) => return Err(Fatal("saml.unknown_sp")),
        Err(e) => return Err(Fatal::internal("loading SP failed", &e)),
    };
    let certs = sp.meta.signing_certs.clone();
    // Whoever can sign must: an unsigned logout message from such an SP could be forged.
    let must_sign = !certs.is_empty();
    let owned = sso::OwnedInbound {
        binding: inbound.binding,
        query: inbound.query.cloned(),
    };
    let verified = idp
        .verifications()
        .run(move || sso::verified_root(&owned.view(), &text, &certs, must_sign))
        .await
        .map_err(|_| Fatal("saml.busy"))?;
    let internal = |e: SamlError| Fatal::internal("single logout failed", &e);
    if is_response {
        let hop = inbound.relay_state.unwrap_or_default();
        let Some(Taken {
            id,
            mut chain,
            bind,
        }) = take(idp, hop, cookies.slo, now).await.map_err(internal)?
        else {
            return Err(Fatal("saml.logout_refused"));
        };
        let ok = match (&verified, &chain.awaiting) {
            (Ok((root, _)), Some((awaited_sp, request_id))) => {
                root.is(SAMLP, "LogoutResponse")
                    && awaited_sp == sp.entity_id()
                    && root.attr("InResponseTo") == Some(request_id.as_str())
                    && root
                        .child(SAMLP, "Status")
                        .and_then(|s| s.child(SAMLP, "StatusCode"))
                        .and_then(|c| c.attr("Value"))
                        == Some(response::SUCCESS)
            }
            _ => false,
        };
        if chain
            .awaiting
            .as_ref()
            .is_some_and(|(s, _)| s == sp.entity_id())
        {
            if !ok {
                chain.failed.push(sp.entity_id().to_string());
            }
            chain.awaiting = None;
        }
        let step = advance(idp, &id, chain, now).await.map_err(internal)?;
        return Ok(Handled {
            step,
            ended: false,
            bind,
        });
    }
    let (root, _) = verified.map_err(|_| Fatal("saml.logout_refused"))?;
    if !root.is(SAMLP, "LogoutRequest")
        || root.child(SAML, "Issuer").map(|i| i.trimmed_text()) != Some(sp.entity_id())
    {
        return Err(Fatal("saml.logout_refused"));
    }
    let request_id = root.attr("ID").unwrap_or_default().to_string();
    if request_id.is_empty() || request_id.len() > 256 {
        return Err(Fatal("saml.malformed"));
    }
    let relay = inbound.relay_state.map(String::from);
    let reply = |status: Status| {
        let (sp, request_id, relay) = (sp.clone(), request_id.clone(), relay.clone());
        async move {
            send_response(idp, &sp, &request_id, relay.as_deref(), status, now)
                .await
                .map(|step| Handled {
                    step,
                    ended: false,
                    bind: None,
                })
                .map_err(internal)
        }
    };
    let skew = idp.config.tokens.clock_skew;
    let fresh = root
        .attr("IssueInstant")
        .and_then(xml::parse_instant)
        .is_some_and(|t| t <= now + skew && t >= now - idp.config.saml.request_max_age - skew);
    let destination_ok = root
        .attr("Destination")
        .is_none_or(|d| d == idp.url(paths::SAML_SLO));
    if !fresh || !destination_ok {
        return reply(Status::requester(
            response::REQUEST_DENIED,
            "stale or misdirected request",
        ))
        .await;
    }
    match store::remember_request_id(
        &idp.db,
        sp.entity_id(),
        &request_id,
        now + idp.config.saml.request_max_age + 2 * skew,
    )
    .await
    {
        Ok(true) => {}
        Ok(false) => {
            return reply(Status::requester(
                response::REQUEST_DENIED,
                "the request was replayed",
            ))
            .await;
        }
        Err(e) => return Err(internal(e.into())),
    }
    let name_id = root
        .child(SAML, "NameID")
        .map(|n| n.trimmed_text().to_string());
    let indexes: Vec<String> = root
        .children(SAMLP, "SessionIndex")
        .map(|i| i.trimmed_text().to_string())
        .collect();
    // The session named: by SessionIndex, and the NameID must be the one we told this SP.
    let mut target = None;
    for idx in &indexes {
        if let Some(s) = store::subject_by_index(&idp.db, sp.entity_id(), idx)
            .await
            .map_err(|e| internal(e.into()))?
            && Some(&s.name_id) == name_id.as_ref()
        {
            target = Some(s);
            break;
        }
    }
    let Some(subject) = target else {
        return reply(Status::requester(
            response::UNKNOWN_PRINCIPAL,
            "no matching session",
        ))
        .await;
    };
    let Some(session) = idp
        .authn
        .session_by_id(&subject.session_id, now)
        .await
        .map_err(|e| internal(e.into()))?
    else {
        return reply(Status::requester(
            response::UNKNOWN_PRINCIPAL,
            "the session has ended",
        ))
        .await;
    };
    // Only the session's own browser (its SSO cookie) is walked through the other SPs; a
    // request without it (an SP's server, another browser) is answered towards its SP alone,
    // so the LogoutRequests for the other SPs are never shown to anyone but that browser.
    let own_browser = idp
        .authn
        .session(cookies.sso, now)
        .await
        .map_err(|e| internal(e.into()))?
        .is_some_and(|s| s.id == session.id);
    idp.authn
        .end_session(&session, now)
        .await
        .map_err(|e| internal(e.into()))?;
    if !own_browser {
        let others = store::subjects_of_session(&idp.db, &session.id)
            .await
            .map_err(|e| internal(e.into()))?
            .iter()
            .any(|s| s.sp != sp.entity_id());
        return reply(outcome(!others)).await;
    }
    let bind = crate::keys::random_token();
    let hop = start(
        idp,
        &session.id,
        Some(sp.entity_id()),
        Finish::Respond {
            sp: sp.entity_id().to_string(),
            in_response_to: request_id.clone(),
            relay_state: relay.clone(),
        },
        Some(&bind),
        now,
    )
    .await
    .map_err(internal)?;
    let Some(Taken { id, chain, .. }) =
        take(idp, &hop, Some(&bind), now).await.map_err(internal)?
    else {
        return Err(Fatal("error.internal"));
    };
    let step = advance(idp, &id, chain, now).await.map_err(internal)?;
    Ok(Handled {
        step,
        ended: true,
        bind: Some(bind),
    })
}

/// The SAML front's part when a session ends elsewhere (OIDC logout): nothing in the
/// background (SAML SPs are reached through the browser), and a chain through the SAML SPs
/// when the browser is there to be sent.
pub struct FrontChannel {
    pub idp: Idp,
}

impl LogoutNotifier for FrontChannel {
    fn session_ended(&self, _ended: &EndedSession, _now: i64) {}

    fn front_channel<'a>(
        &'a self,
        ended: &'a EndedSession,
        then: &'a str,
        now: i64,
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(async move {
            if !ended.participants.iter().any(|(_, p)| p == "saml") {
                return None;
            }
            match start(
                &self.idp,
                &ended.id,
                None,
                Finish::Redirect(then.to_string()),
                None,
                now,
            )
            .await
            {
                Ok(hop) => Some(format!("{}?id={hop}", paths::SAML_SLO_NEXT)),
                Err(e) => {
                    tracing::error!("starting SAML logout failed: {}", crate::error_chain(&e));
                    None
                }
            }
        })
    }
}
