//! The login pages' side of an upstream SAML IdP: our SP metadata, the start of a login (a
//! signed AuthnRequest over HTTP-Redirect), the ACS that takes the IdP's HTTP-POST Response.
//! The protocol is `upstream::saml`'s; linking and the session are `authn`'s.
//!
//! Surviving the cross-site POST: the IdP's POST to the ACS is cross-site, so the Lax
//! login-binding cookie is not sent with it. The start stores the login (transaction,
//! AuthnRequest ID) in `upstream_logins` through `Authn::begin_upstream_login`, bound to a
//! fresh random value that goes into a dedicated cookie of its own, HttpOnly, `__Host-`,
//! Secure and SameSite=None under TLS (Lax without TLS, local development only), living as
//! long as a login. RelayState is the opaque handle of that row. The ACS takes the row once
//! by handle, upstream and this cookie together, and the Response's InResponseTo must be the
//! row's AuthnRequest ID: a Response for another browser's or another upstream's login, or one
//! posted twice, finds nothing. Failures get the federation's error page with a way back
//! to the login page when the transaction is known.

use super::cookies::set_sso_cookie;
use super::upstream::error_page;
use super::{Login, live_transaction, resume_url};
use crate::authn::AuthnError;
use crate::authn::upstream::UpstreamLogin;
use crate::upstream::saml::{SpEndpoints, SpKeys, logout, metadata, request, response};
use crate::upstream::{Kind, Upstream};
use crate::web::i18n::Lang;
use crate::web::{self, SameSite, SsoCookie, WebError, paths};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub(super) fn routes() -> Router<Login> {
    Router::new()
        .route(paths::UPSTREAM_METADATA, get(sp_metadata))
        .route(paths::UPSTREAM_ACS, post(acs))
        .route(paths::UPSTREAM_SLO, get(slo))
}

fn cookie_name(login: &Login) -> &'static str {
    if login.config.secure_cookies() {
        "__Host-portvakt_upstream_saml"
    } else {
        "portvakt_upstream_saml"
    }
}

fn endpoints(login: &Login, name: &str) -> SpEndpoints {
    SpEndpoints::new(&login.config.issuer, name)
}

async fn sp_keys(login: &Login, now: i64) -> Result<SpKeys, WebError> {
    login
        .sp_keys
        .get_or_try_init(|| async {
            SpKeys::load(&login.keys, &login.config.saml_scope(), now).await
        })
        .await
        .cloned()
        .map_err(WebError::from)
}

/// The enabled SAML upstream of this name and its parsed metadata.
async fn saml_upstream(
    login: &Login,
    name: &str,
    now: i64,
) -> Result<(Upstream, metadata::IdpMetadata), WebError> {
    let up = login
        .authn
        .upstream(name)
        .await?
        .ok_or(WebError::new(StatusCode::NOT_FOUND, "error.not_found"))?;
    let doc = match &up.kind {
        Kind::Saml {
            metadata: Some(doc),
            ..
        } => Ok(doc.clone()),
        Kind::Saml {
            metadata_url: Some(url),
            ..
        } => login.saml_metadata.get(&login.http, url, now).await,
        _ => return Err(WebError::new(StatusCode::NOT_FOUND, "error.not_found")),
    };
    let md = doc
        .and_then(|doc| metadata::parse(&doc, now))
        .map_err(|e| {
            tracing::warn!("upstream {name}: {e}");
            WebError::new(StatusCode::SERVICE_UNAVAILABLE, "upstream.unavailable")
        })?;
    Ok((up, md))
}

async fn sp_metadata(
    State(login): State<Login>,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let (up, _) = saml_upstream(&login, &name, now).await?;
    let keys = sp_keys(&login, now).await?;
    let body = metadata::sp_metadata(&endpoints(&login, &up.name), &keys, "Portvakt");
    Ok((
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        body,
    )
        .into_response())
}

/// The SAML branch of `/upstream/NAME/start` (`login::upstream::start` has checked the
/// transaction and that the relying party allows this upstream).
pub(super) async fn start(
    login: &Login,
    up: &Upstream,
    tx: &crate::authn::Transaction,
    now: i64,
) -> Result<Response, WebError> {
    let (up, md) = saml_upstream(login, &up.name, now).await?;
    start_saml(login, &up, &md, tx, now).await
}

/// Sends the browser to the upstream with a signed AuthnRequest, the login stored.
pub(super) async fn start_saml(
    login: &Login,
    up: &Upstream,
    md: &metadata::IdpMetadata,
    tx: &crate::authn::Transaction,
    now: i64,
) -> Result<Response, WebError> {
    let keys = sp_keys(login, now).await?;
    let sp = endpoints(login, &up.name);
    // The request's ID is stored with the login first; the handle the store returns is the
    // RelayState the query signature then covers.
    let binding = crate::keys::random_token();
    // A fresh login the relying party demanded (prompt=login, max_age, ForceAuthn) is one
    // at the upstream too; SAML has no max_age, so that asks for ForceAuthn as well.
    let options = request::Options {
        force_authn: tx.freshness().required(),
        ..Default::default()
    };
    let draft = request::draft(md, &sp, &options, now);
    let handle = login
        .authn
        .begin_upstream_login(
            &UpstreamLogin {
                upstream: up.name.clone(),
                tx_id: tx.id.clone(),
                nonce: None,
                pkce_verifier: None,
                request_id: Some(draft.id.clone()),
                created_at: now,
            },
            &binding,
            now,
        )
        .await?;
    let url = request::signed_url(md, &draft, &keys.signing_key, Some(&handle))
        .map_err(WebError::internal)?;
    let mut res = Redirect::to(&url).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        web::set_cookie(
            cookie_name(login),
            &binding,
            Some(login.config.session.login_ttl),
            login.config.secure_cookies(),
            SameSite::None,
        ),
    );
    Ok(res)
}

#[derive(serde::Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState", default)]
    relay_state: String,
}

async fn acs(
    State(login): State<Login>,
    axum::Extension(lang): axum::Extension<Lang>,
    axum::Extension(sso): axum::Extension<SsoCookie>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AcsForm>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let binding = web::cookie(&headers, cookie_name(&login)).unwrap_or_default();
    let taken = login
        .authn
        .take_upstream_login(&name, &form.relay_state, binding, now)
        .await?;
    let Some(out) = taken else {
        return error_page(
            lang,
            StatusCode::BAD_REQUEST,
            "upstream.state_invalid",
            None,
        );
    };
    let tx = live_transaction(&login, &out.tx_id, now).await?;
    if !super::upstream::offered(&login, &tx, &name).await {
        return error_page(
            lang,
            StatusCode::NOT_FOUND,
            "upstream.not_offered",
            Some(&tx.id),
        );
    }
    let (up, md) = saml_upstream(&login, &name, now).await?;
    let keys = sp_keys(&login, now).await?;
    let expect = response::Expect {
        idp: md,
        sp: endpoints(&login, &up.name),
        in_response_to: out.request_id.clone().unwrap_or_default(),
        now,
        skew: login.config.tokens.clock_skew,
        // The Response's AuthnInstant must be no older than the login's start when the
        // upstream was asked for ForceAuthn (an IdP that ignored it is refused).
        forced_since: {
            let fresh = tx.freshness();
            fresh.required().then_some(fresh.since)
        },
    };
    let accepted = match response::accept(
        &login.saml_gate,
        form.saml_response,
        expect,
        keys.encryption_key.clone(),
        &login.authn,
    )
    .await
    {
        Ok(a) => a,
        Err(refusal) => {
            crate::metrics::login(
                crate::metrics::method::UPSTREAM_SAML,
                crate::metrics::result::FAILURE,
            );
            tracing::warn!("upstream {name}: Response refused: {refusal}");
            return error_page(
                lang,
                StatusCode::BAD_REQUEST,
                "upstream.saml.refused",
                Some(&tx.id),
            );
        }
    };
    let (name_id, session_index) = (accepted.name_id.clone(), accepted.session_index.clone());
    let identity = accepted.into_identity(&up.name);
    let finished = login
        .authn
        .finish_upstream(&tx, &up, &identity, sso.value(), now)
        .await;
    crate::metrics::login(
        crate::metrics::method::UPSTREAM_SAML,
        match &finished {
            Ok(_) => crate::metrics::result::SUCCESS,
            Err(e) => super::page::login_result(e),
        },
    );
    let (cookie, session) = match finished {
        Ok(s) => s,
        Err(AuthnError::LinkRefused(r)) => {
            return error_page(lang, StatusCode::FORBIDDEN, r.message(), Some(&tx.id));
        }
        Err(AuthnError::Refused(r)) => {
            return error_page(lang, StatusCode::FORBIDDEN, r.message(), Some(&tx.id));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some((value, _)) = &name_id {
        login
            .authn
            .remember_upstream_saml_session(&session, &up.name, value, session_index.as_deref())
            .await?;
    }
    let mut res = Redirect::to(&resume_url(&tx)).into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, set_sso_cookie(&cookie, &login.config));
    h.append(
        header::SET_COOKIE,
        web::set_cookie(
            cookie_name(&login),
            "",
            Some(0),
            login.config.secure_cookies(),
            SameSite::None,
        ),
    );
    Ok(res)
}

const LOGOUT_PURPOSE: &str = "upstream-saml-logout";

/// The RelayState of our LogoutRequest: where Portvakt's logout was going, with a MAC over
/// it and the request's ID, so the LogoutResponse continues only there and only for the
/// request we sent. (Longer than the 80 bytes SAML Bindings §3.4.3 recommends when `then`
/// is long; IdPs that enforce that limit would need a server-side store instead.)
fn logout_state(login: &Login, request_id: &str, then: &str) -> String {
    use base64::Engine;
    let token = web::csrf::token(
        login.csrf_key(),
        LOGOUT_PURPOSE,
        &format!("{request_id}\n{then}"),
    );
    let then = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(then);
    format!("{then}.{token}")
}

fn logout_target(login: &Login, request_id: &str, state: &str) -> Option<String> {
    use base64::Engine;
    let (then, token) = state.split_once('.')?;
    let then = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(then)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())?;
    let binding = format!("{request_id}\n{then}");
    web::csrf::verify(login.csrf_key(), LOGOUT_PURPOSE, &binding, token).then_some(then)
}

/// Where to send the browser when a session that came from an upstream SAML IdP ends with
/// the browser present: the IdP's SingleLogoutService with our signed LogoutRequest (its
/// NameID and SessionIndex), whose LogoutResponse at `/upstream/NAME/slo` goes on to
/// `then`. None when the session did not come from a SAML upstream or it has no Redirect
/// SLO endpoint. (Called by `UpstreamLogout`, the last of the logout notifiers.)
pub(super) async fn logout_hop(
    login: &Login,
    session_id: &str,
    then: &str,
    now: i64,
) -> Option<String> {
    let (name, name_id, index) = match login.authn.upstream_saml_session(session_id).await {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!("upstream logout: {}", crate::error_chain(&e));
            return None;
        }
    };
    let (up, md) = saml_upstream(login, &name, now).await.ok()?;
    let keys = sp_keys(login, now).await.ok()?;
    // An NCName that never starts with a digit.
    let id = format!("_{}", crate::keys::random_token());
    let relay = logout_state(login, &id, then);
    match logout::request_with(
        &md,
        &endpoints(login, &up.name),
        (&name_id, ""),
        index.as_deref(),
        &id,
        Some(&relay),
        &keys.signing_key,
        now,
    ) {
        Ok(out) => out.map(|o| o.url),
        Err(e) => {
            tracing::warn!("upstream {name}: LogoutRequest not signed: {e}");
            None
        }
    }
}

/// The upstream's LogoutResponse to our LogoutRequest (HTTP-Redirect, signed by its metadata
/// keys): on to where Portvakt's logout was going, as our RelayState says for that request.
async fn slo_response(
    login: &Login,
    md: &metadata::IdpMetadata,
    name: &str,
    query: &str,
    now: i64,
) -> Result<Response, WebError> {
    let sp = endpoints(login, name);
    let response = match logout::read_response(query, md, &sp, now, login.config.tokens.clock_skew)
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("upstream {name}: LogoutResponse refused: {e}");
            return Err(WebError::bad_request("upstream.saml.refused"));
        }
    };
    let Some(then) = response
        .relay_state
        .as_deref()
        .and_then(|s| logout_target(login, &response.in_response_to, s))
    else {
        tracing::warn!("upstream {name}: LogoutResponse for no request of ours");
        return Err(WebError::bad_request("upstream.saml.refused"));
    };
    if !response.success {
        tracing::warn!("upstream {name}: the logout there was not confirmed");
    }
    Ok(Redirect::to(&then).into_response())
}

/// A LogoutRequest from the upstream (HTTP-Redirect, signed by its metadata keys): the
/// sessions that came from its assertions about that NameID end (relying parties are told
/// through the usual notifiers), then the browser goes back with our signed LogoutResponse.
/// A LogoutResponse to our own LogoutRequest goes to `slo_response`.
async fn slo(
    State(login): State<Login>,
    axum::Extension(sso): axum::Extension<SsoCookie>,
    Path(name): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let (up, md) = saml_upstream(&login, &name, now).await?;
    let raw = query.as_deref().unwrap_or_default();
    if raw.starts_with("SAMLResponse=") || raw.contains("&SAMLResponse=") {
        return slo_response(&login, &md, &up.name, raw, now).await;
    }
    let sp = endpoints(&login, &up.name);
    let request = match logout::read_request(
        query.as_deref().unwrap_or_default(),
        &md,
        &sp,
        now,
        login.config.tokens.clock_skew,
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("upstream {name}: LogoutRequest refused: {e}");
            return Err(WebError::bad_request("upstream.saml.refused"));
        }
    };
    let keys = sp_keys(&login, now).await?;
    let url = logout::response_url(&md, &sp, &request, true, &keys.signing_key, now)
        .map_err(WebError::internal)?;
    let answer = url.as_deref().unwrap_or(paths::LOGGED_OUT);
    // This browser's session ends in the browser: Portvakt's own single logout first, then
    // the answer to the upstream.
    let (ended, next) = login
        .authn
        .end_upstream_saml_sessions(
            &up.name,
            &request.name_id,
            &request.session_indexes,
            sso.value(),
            answer,
            now,
        )
        .await?;
    let mut res = Redirect::to(&next).into_response();
    let mine = match sso.value() {
        Some(c) => login.authn.session(Some(c), now).await?.is_none(),
        None => false,
    };
    if mine && !ended.is_empty() {
        res.extensions_mut().insert(web::ClearSsoCookie);
    }
    Ok(res)
}
