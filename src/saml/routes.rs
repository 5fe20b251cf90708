//! Thin HTTP handlers for the SAML front.

use super::slo::{self, Step};
use super::sso::{self, Binding, Fatal, Inbound, Pending};
use super::{Idp, metadata};
use crate::authn::{Authn, routes::clear_sso_cookie, routes::sso_cookie};
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use std::sync::LazyLock;

pub fn routes() -> Router<Idp> {
    Router::new()
        .route(paths::SAML_METADATA, get(metadata_get))
        .route(paths::SAML_SSO, get(sso_get).post(sso_post))
        .route(paths::SAML_SSO_RESUME, get(resume_get))
        .route(paths::SAML_IDP_INIT, get(idp_init_get))
        .route(paths::SAML_SLO, get(slo_get).post(slo_post))
        .route(paths::SAML_SLO_NEXT, get(slo_next_get))
}

#[derive(Template)]
#[template(path = "saml_post.html")]
struct PostPage<'a> {
    lang: Lang,
    action: &'a str,
    field: &'a str,
    value: &'a str,
    relay_state: Option<&'a str>,
}

/// The one inline script (auto-submit), allowed by its hash; the page works without it.
const AUTOSUBMIT: &str = "document.forms[0].submit();";

static POST_CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    use base64::Engine;
    let hash = ring::digest::digest(&ring::digest::SHA256, AUTOSUBMIT.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(hash.as_ref());
    HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'sha256-{b64}'; style-src 'self'; img-src 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    ))
    .unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

fn post_page(lang: Lang, form: &sso::PostForm) -> Response {
    match web::render(&PostPage {
        lang,
        action: &form.action,
        field: form.field,
        value: &form.value,
        relay_state: form.relay_state.as_deref(),
    }) {
        Ok(mut res) => {
            let h = res.headers_mut();
            h.insert(header::CONTENT_SECURITY_POLICY, POST_CSP.clone());
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // The Referer must not carry our URL (with a transaction id) to the SP.
            h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
            res
        }
        Err(e) => e.into_response(),
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    WebError::internal(e.to_string()).into_response()
}

async fn metadata_get(State(idp): State<Idp>) -> Response {
    match metadata::document(&idp, idp.clock().now()).await {
        Ok(xml) => (
            [
                (header::CONTENT_TYPE, "application/samlmetadata+xml"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            xml,
        )
            .into_response(),
        Err(e) => internal(crate::error_chain(&e)),
    }
}

#[derive(serde::Deserialize)]
struct MessageForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn sso_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(q): Query<MessageForm>,
) -> Response {
    let Some(message) = q.saml_request.as_deref() else {
        return WebError::bad_request("saml.malformed").into_response();
    };
    let inbound = Inbound {
        binding: Binding::Redirect,
        message,
        relay_state: q.relay_state.as_deref(),
        raw_query: raw.as_deref(),
    };
    sso_flow(&idp, lang, &headers, &inbound).await
}

async fn sso_post(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Form(f): Form<MessageForm>,
) -> Response {
    let Some(message) = f.saml_request.as_deref() else {
        return WebError::bad_request("saml.malformed").into_response();
    };
    let inbound = Inbound {
        binding: Binding::Post,
        message,
        relay_state: f.relay_state.as_deref(),
        raw_query: None,
    };
    sso_flow(&idp, lang, &headers, &inbound).await
}

async fn sso_flow(idp: &Idp, lang: Lang, headers: &HeaderMap, inbound: &Inbound<'_>) -> Response {
    let now = idp.clock().now();
    let (sp, checked) = match sso::check(idp, inbound, now).await {
        Ok(c) => c,
        Err(Fatal(key)) => return WebError::bad_request(key).into_response(),
    };
    let pending = match checked {
        Ok(p) => p,
        Err((p, status)) => {
            return match sso::status_response(idp, &p, status, now).await {
                Ok(form) => post_page(lang, &form),
                Err(e) => internal(crate::error_chain(&e)),
            };
        }
    };
    continue_with(idp, lang, headers, &sp, pending, now).await
}

/// Answers at once from a live session that satisfies the request, else starts a login.
async fn continue_with(
    idp: &Idp,
    lang: Lang,
    headers: &HeaderMap,
    sp: &super::sp::Sp,
    pending: Pending,
    now: i64,
) -> Response {
    let session = match idp
        .authn
        .session(sso_cookie(headers, &idp.config), now)
        .await
    {
        Ok(s) => s,
        Err(e) => return internal(crate::error_chain(&e)),
    };
    let form = match session.filter(|s| pending.requirement.reusable(s, now)) {
        Some(s) => sso::answer(idp, sp, &pending, &s, now).await,
        None if pending.passive => {
            let status = super::response::Status::requester(
                super::response::NO_PASSIVE,
                "no session and the request is passive",
            );
            sso::status_response(idp, &pending, status, now).await
        }
        None => {
            let request = match serde_json::to_string(&pending) {
                Ok(r) => r,
                Err(e) => return internal(e),
            };
            return match idp
                .authn
                .begin(
                    "saml",
                    sp.entity_id(),
                    request,
                    None,
                    &pending.requirement.acr_values,
                    now,
                )
                .await
            {
                Ok(tx) => Redirect::to(&format!("{}?tx={tx}", paths::LOGIN)).into_response(),
                Err(e) => internal(crate::error_chain(&e)),
            };
        }
    };
    match form {
        Ok(form) => post_page(lang, &form),
        Err(e) => internal(crate::error_chain(&e)),
    }
}

#[derive(serde::Deserialize)]
struct TxQuery {
    tx: String,
}

async fn resume_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<TxQuery>,
) -> Response {
    let now = idp.clock().now();
    let outcome = async {
        let Some(tx) = idp
            .authn
            .transaction(&q.tx, now)
            .await?
            .filter(|t| t.protocol == "saml")
        else {
            return Ok(Err("login.expired"));
        };
        let pending: Pending = serde_json::from_str(&tx.request)
            .map_err(|e| crate::storage::StorageError::Corrupt(e.to_string()))?;
        let session = idp
            .authn
            .session(sso_cookie(&headers, &idp.config), now)
            .await?;
        let Some(session) = session.filter(|s| Authn::answers(&tx, &pending.requirement, s, now))
        else {
            return Ok(Ok(
                Redirect::to(&format!("{}?tx={}", paths::LOGIN, tx.id)).into_response()
            ));
        };
        // The SP may have been removed while the person logged in.
        let Some(sp) = idp.sp(&pending.sp, now).await? else {
            return Ok(Err("saml.unknown_sp"));
        };
        if !idp.authn.finish(&tx.id).await? {
            return Ok(Err("login.expired"));
        }
        let form = sso::answer(&idp, &sp, &pending, &session, now).await?;
        Ok::<_, super::SamlError>(Ok(post_page(lang, &form)))
    }
    .await;
    match outcome {
        Ok(Ok(res)) => res,
        Ok(Err(key)) => WebError::bad_request(key).into_response(),
        Err(e) => internal(crate::error_chain(&e)),
    }
}

#[derive(serde::Deserialize)]
struct IdpInitQuery {
    sp: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// Unsolicited SSO: only for SPs registered with `--idp-initiated`, to their default ACS.
async fn idp_init_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<IdpInitQuery>,
) -> Response {
    let now = idp.clock().now();
    let sp = match idp.sp(&q.sp, now).await {
        Ok(Some(sp)) => sp,
        Ok(None) => return WebError::bad_request("saml.unknown_sp").into_response(),
        Err(e) => return internal(crate::error_chain(&e)),
    };
    if !sp.policy.idp_initiated {
        return WebError::bad_request("saml.idp_init_disabled").into_response();
    }
    if sp.expired(now) {
        return WebError::bad_request("saml.metadata_expired").into_response();
    }
    if q.relay_state.as_ref().is_some_and(|r| r.len() > 1024) {
        return WebError::bad_request("saml.too_large").into_response();
    }
    let Some(acs) = sp.acs(None, None) else {
        return WebError::bad_request("saml.bad_acs").into_response();
    };
    let pending = Pending {
        sp: sp.entity_id().to_string(),
        acs: acs.location.clone(),
        request_id: None,
        relay_state: q.relay_state,
        requirement: Default::default(),
        passive: false,
        name_id_format: None,
    };
    continue_with(&idp, lang, &headers, &sp, pending, now).await
}

async fn slo_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    RawQuery(raw): RawQuery,
    Query(q): Query<MessageForm>,
) -> Response {
    slo_flow(&idp, lang, Binding::Redirect, q, raw.as_deref()).await
}

async fn slo_post(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Form(f): Form<MessageForm>,
) -> Response {
    slo_flow(&idp, lang, Binding::Post, f, None).await
}

async fn slo_flow(
    idp: &Idp,
    lang: Lang,
    binding: Binding,
    m: MessageForm,
    raw: Option<&str>,
) -> Response {
    let (message, is_response) = match (&m.saml_request, &m.saml_response) {
        (Some(r), None) => (r.as_str(), false),
        (None, Some(r)) => (r.as_str(), true),
        _ => return WebError::bad_request("saml.malformed").into_response(),
    };
    let inbound = Inbound {
        binding,
        message,
        relay_state: m.relay_state.as_deref(),
        raw_query: raw,
    };
    match slo::handle(idp, &inbound, is_response, idp.clock().now()).await {
        Ok(h) => {
            let mut res = step(lang, h.step);
            if h.ended {
                res.headers_mut()
                    .append(header::SET_COOKIE, clear_sso_cookie(&idp.config));
            }
            res
        }
        Err(Fatal(key)) => WebError::bad_request(key).into_response(),
    }
}

fn step(lang: Lang, s: Step) -> Response {
    match s {
        Step::Redirect(to) => Redirect::to(&to).into_response(),
        Step::Post(form) => post_page(lang, &form),
        Step::Page(key) => WebError::bad_request(key).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ChainQuery {
    id: String,
}

async fn slo_next_get(
    State(idp): State<Idp>,
    Extension(lang): Extension<Lang>,
    Query(q): Query<ChainQuery>,
) -> Response {
    match slo::next(&idp, &q.id, idp.clock().now()).await {
        Ok(s) => step(lang, s),
        Err(e) => internal(crate::error_chain(&e)),
    }
}
