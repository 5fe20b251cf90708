//! Web Browser SSO: checking an AuthnRequest (HTTP-Redirect or HTTP-POST, `check`), the
//! decision to reuse the session, answer passively or begin a login (`decide`, as OIDC's is
//! in `oidc::authorize`), resuming after the login (`resume`), the Response that answers it
//! (`answer`) and the NameIDs in it (`name_id`).
//!
//! A request that cannot be answered safely (unknown SP, bad signature, an ACS not in the
//! metadata, unreadable XML) gets an error page and nothing is sent anywhere. Once the SP and
//! its ACS are known, every other failure is answered with a SAML status at that ACS.

mod answer;
mod check;
mod name_id;

pub use answer::{answer, status_response};
pub use check::{check, decode, issuer_of, verified_root};

use super::response::{self, Status};
use super::sp::Sp;
use super::{Idp, SamlError};
use crate::authn::{Begin, Protocol, Requirement, Resumed, Session};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Redirect,
    Post,
}

/// A SAML message as it arrived.
pub struct Inbound<'a> {
    pub binding: Binding,
    /// The SAMLRequest/SAMLResponse value (form-decoded, still base64).
    pub message: &'a str,
    pub relay_state: Option<&'a str>,
    /// Redirect binding: the query as received, parsed once (the message, RelayState and
    /// the signature all come from it).
    pub query: Option<&'a super::dsig::RedirectQuery>,
}

/// Why a message gets an error page (a catalogue key) instead of a SAML answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fatal(pub &'static str);

impl Fatal {
    /// The page for a failure of our own, logged: "temporarily unavailable" (503) when the
    /// database cannot be reached, else the internal-error page.
    pub fn internal(what: &str, e: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!("{what}: {}", crate::error_chain(e));
        if crate::web::unavailable(e) {
            Fatal(UNAVAILABLE)
        } else {
            Fatal(INTERNAL)
        }
    }

    /// The status of its error page.
    pub fn status(self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self.0 {
            SP_DISABLED => StatusCode::FORBIDDEN,
            // Every verification slot and queue place taken: load, not the request's fault.
            UNAVAILABLE | BUSY => StatusCode::SERVICE_UNAVAILABLE,
            INTERNAL => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The catalogue key of the web layer's 503 page.
const UNAVAILABLE: &str = "error.unavailable";
/// Signature verification is saturated.
const BUSY: &str = "saml.busy";
/// A failure of our own, not of the request.
const INTERNAL: &str = "error.internal";

/// What the login transaction carries for the SAML front (stored as JSON).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub sp: String,
    pub acs: String,
    pub request_id: Option<String>,
    pub relay_state: Option<String>,
    pub requirement: Requirement,
    pub passive: bool,
    /// The NameID format asked for in NameIDPolicy (None: the SP's default).
    pub name_id_format: Option<String>,
    /// The upstream NAME that Scoping's IDPList chose in advance, if it names one.
    #[serde(default)]
    pub idp_hint: Option<String>,
}

/// A checked request: either answerable (`Ok`) or to be answered with a status at a known
/// ACS (`Err((pending, status))`).
pub type Checked = Result<Pending, (Pending, Status)>;

/// What `verified_root` needs from an Inbound, owned so it can move to a blocking thread.
pub(crate) struct OwnedInbound {
    pub binding: Binding,
    pub query: Option<super::dsig::RedirectQuery>,
}

impl OwnedInbound {
    pub fn view(&self) -> Inbound<'_> {
        Inbound {
            binding: self.binding,
            message: "",
            relay_state: None,
            query: self.query.as_ref(),
        }
    }
}

/// What goes back to the browser: an auto-submitting form to the SP.
pub struct PostForm {
    pub action: String,
    pub field: &'static str,
    pub value: String,
    pub relay_state: Option<String>,
}

/// What a checked request leads to.
pub enum Next {
    /// Answer at once: the form that carries the Response to the SP.
    Answer(PostForm),
    /// A login first, in this transaction.
    Login(String),
}

/// Reuse the session when it satisfies the request, answer a passive request with
/// NoPassive, or begin a login.
pub async fn decide(
    idp: &Idp,
    sp: &Sp,
    pending: Pending,
    session: Option<Session>,
    now: i64,
) -> Result<Next, SamlError> {
    match session
        .as_ref()
        .filter(|s| pending.requirement.reusable(s, now))
    {
        Some(s) => Ok(Next::Answer(answer(idp, sp, &pending, s, now).await?)),
        None if pending.passive => {
            let status = Status::requester(
                response::NO_PASSIVE,
                "no session and the request is passive",
            );
            Ok(Next::Answer(
                status_response(idp, &pending, status, now).await?,
            ))
        }
        None => {
            let request = serde_json::to_string(&pending)
                .map_err(|e| crate::storage::StorageError::Corrupt(e.to_string()))?;
            let tx = idp
                .authn
                .begin(
                    Begin {
                        protocol: Protocol::Saml,
                        rp_id: sp.entity_id(),
                        rp_name: sp.name(),
                        request,
                        login_hint: None,
                        upstream_hint: pending.idp_hint.clone(),
                        requirement: &pending.requirement,
                        session: session.as_ref(),
                    },
                    now,
                )
                .await?;
            Ok(Next::Login(tx))
        }
    }
}

/// The page of a login to a disabled SP (403, not 400: the request was fine).
pub const SP_DISABLED: &str = "error.service_disabled";

/// After the login: the transaction's request answered with the browser's session, once
/// the SP is still registered. `Err(key)` is a page (expired login, removed SP).
pub async fn resume(
    idp: &Idp,
    tx_id: &str,
    cookie: Option<&str>,
    now: i64,
) -> Result<Result<Next, &'static str>, SamlError> {
    let resumed = idp
        .authn
        .resume(
            Protocol::Saml,
            tx_id,
            cookie,
            |p: &Pending| &p.requirement,
            now,
        )
        .await?;
    let (tx, pending, session) = match resumed {
        Resumed::Expired => return Ok(Err("login.expired")),
        Resumed::Login(tx) => return Ok(Ok(Next::Login(tx))),
        Resumed::Ready {
            tx,
            request,
            session,
        } => (tx, request, session),
    };
    // The SP may have been removed while the person logged in.
    let Some(sp) = idp.sp(&pending.sp, now).await? else {
        return Ok(Err("saml.unknown_sp"));
    };
    // Or disabled.
    if sp.disabled {
        return Ok(Err(SP_DISABLED));
    }
    if !idp.authn.finish(&tx.id).await? {
        return Ok(Err("login.expired"));
    }
    Ok(Ok(Next::Answer(
        answer(idp, &sp, &pending, &session, now).await?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn an_error_page_says_whose_fault_it_is() {
        assert_eq!(Fatal("saml.malformed").status(), StatusCode::BAD_REQUEST);
        assert_eq!(Fatal(SP_DISABLED).status(), StatusCode::FORBIDDEN);
        assert_eq!(Fatal(BUSY).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Fatal(UNAVAILABLE).status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Fatal(INTERNAL).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
