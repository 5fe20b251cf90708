//! The login page: the password form and the choice of BankID. Works without JavaScript;
//! 303 after the POST.

use super::cookies::{binding_cookie_name, set_binding_cookie, set_sso_cookie};
use super::{Login, live_transaction, resume_url, rp_name};
use crate::authn::{AuthnError, MethodUse, Protocol, Transaction, policy};
use crate::metrics;
use crate::web::{self, ClientIp, SsoCookie, WebError, csrf, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};

pub(super) fn routes() -> Router<Login> {
    Router::new().route(paths::LOGIN, get(login_get).post(login_post))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    lang: Lang,
    tx: &'a str,
    csrf: &'a str,
    rp_name: &'a str,
    username: &'a str,
    /// Catalogue key of the error, shown above the form and tied to the fields.
    error: Option<&'a str>,
    /// Offer BankID.
    bankid: bool,
    /// Offer the password form (only when the relying party allows it and a password
    /// reaches the level it requires; not for a password reset).
    password: bool,
    /// "Forgot your password?": BankID only, then the new-password page.
    reset: bool,
    /// Offer the "Forgot your password?" link (BankID is enabled).
    reset_link: bool,
    /// Offer BankID on this device first (phones), else the QR code first.
    mobile: bool,
    /// The upstream identity providers offered (federation).
    upstreams: Vec<super::upstream::Choice>,
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    tx: String,
    #[serde(default)]
    reset: Option<String>,
}

#[derive(serde::Deserialize)]
struct LoginForm {
    tx: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// What a login form's CSRF token is bound to: its transaction and the browser.
pub(super) fn login_binding(tx_id: &str, binding: &str) -> String {
    format!("{tx_id}\u{0}{binding}")
}

pub(super) fn login_csrf(login: &Login, tx_id: &str, binding: &str) -> String {
    csrf::token(login.csrf_key(), "login", &login_binding(tx_id, binding))
}

async fn login_get(
    State(login): State<Login>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let tx = live_transaction(&login, &q.tx, login.authn.clock().now()).await?;
    let name = binding_cookie_name(&login.config);
    let (binding, new_binding) = match web::cookie(&headers, name) {
        Some(b) if !b.is_empty() && b.len() <= 64 => (b.to_string(), false),
        _ => (crate::keys::random_token(), true),
    };
    let hint = tx.login_hint.as_deref().unwrap_or("");
    let reset = q.reset.is_some() || tx.protocol == Protocol::PasswordReset;
    let view = LoginView {
        tx: &tx,
        binding: &binding,
        username: hint,
        reset,
        mobile: is_mobile(&headers),
    };
    if !reset {
        let offered = login.authn.offered(&tx).await;
        if offered.is_empty() {
            return Err(WebError::new(
                StatusCode::FORBIDDEN,
                "login.method_unavailable",
            ));
        }
        if let Some(name) = straight_to(&offered, tx.upstream_hint.as_deref()) {
            return Ok(Redirect::to(&upstream_start(name, &tx.id)).into_response());
        }
    }
    let mut res = login_page(&login, lang, &view, None).await?;
    if new_binding {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_binding_cookie(&binding, &login.config),
        );
    }
    Ok(res)
}

async fn login_post(
    State(login): State<Login>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    client_ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let tx = live_transaction(&login, &form.tx, now).await?;
    let binding = super::cookies::binding(&headers, &login.config);
    let bound = login_binding(&tx.id, binding);
    if binding.is_empty() || !csrf::verify(login.csrf_key(), "login", &bound, &form.csrf) {
        return Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"));
    }
    let view = LoginView {
        tx: &tx,
        binding,
        username: &form.username,
        reset: false,
        mobile: is_mobile(&headers),
    };
    let offered = login.authn.offered(&tx).await;
    if tx.protocol == Protocol::PasswordReset || !offered.iter().any(|m| m.name == policy::PASSWORD)
    {
        return rerender_login(
            &login,
            lang,
            &view,
            StatusCode::FORBIDDEN,
            "login.password_not_allowed",
        )
        .await;
    }
    let rerender = async |status: StatusCode, error: &'static str| {
        rerender_login(&login, lang, &view, status, error).await
    };
    let username = form.username.trim();
    if username.is_empty() || form.password.is_empty() {
        return rerender(StatusCode::BAD_REQUEST, "login.error.missing").await;
    }
    let source = client_ip
        .map(|Extension(ClientIp(ip))| ip.to_string())
        .unwrap_or_default();
    let checked = login
        .authn
        .check_password(username, form.password.clone(), &source, now)
        .await;
    if let Err(e) = &checked {
        metrics::login(metrics::method::PASSWORD, login_result(e));
    }
    let person = match checked {
        Ok(p) => p,
        Err(AuthnError::InvalidCredentials) => {
            return rerender(StatusCode::UNAUTHORIZED, "login.error.invalid").await;
        }
        Err(AuthnError::Throttled(secs)) => {
            let res = rerender(StatusCode::TOO_MANY_REQUESTS, "login.error.throttled").await?;
            return Ok(with_retry_after(res, secs));
        }
        Err(AuthnError::Busy(secs)) => {
            let res = rerender(StatusCode::SERVICE_UNAVAILABLE, "login.error.busy").await?;
            return Ok(with_retry_after(res, secs));
        }
        Err(AuthnError::PasswordTooLong) => {
            return rerender(StatusCode::BAD_REQUEST, "login.error.too_long").await;
        }
        Err(e) => return Err(e.into()),
    };
    let Some(level) = offered.iter().find(|m| m.name == policy::PASSWORD) else {
        return Err(WebError::internal("password not offered"));
    };
    let method = MethodUse::new(policy::PASSWORD, &level.level, now);
    let finished = login
        .authn
        .finish_login(&tx, &person.id, method, sso.value(), now)
        .await;
    metrics::login(
        metrics::method::PASSWORD,
        match &finished {
            Ok(_) => metrics::result::SUCCESS,
            Err(e) => login_result(e),
        },
    );
    let cookie = match finished {
        Ok((cookie, _session)) => cookie,
        Err(AuthnError::Refused(r)) => {
            return Err(WebError::new(StatusCode::FORBIDDEN, r.message()));
        }
        Err(e) => return Err(e.into()),
    };
    let mut res = Redirect::to(&resume_url(&tx)).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_sso_cookie(&cookie, &login.config));
    Ok(res)
}

/// A failed login's result label (`portvakt_logins_total`).
pub(super) fn login_result(e: &AuthnError) -> &'static str {
    match e {
        AuthnError::InvalidCredentials | AuthnError::PasswordTooLong => metrics::result::FAILURE,
        AuthnError::Throttled(_) => metrics::result::THROTTLED,
        AuthnError::Busy(_) => metrics::result::BUSY,
        AuthnError::Refused(_) | AuthnError::LinkRefused(_) => metrics::result::REFUSED,
        _ => metrics::result::ERROR,
    }
}

/// Tells the browser (or a script) when to try again.
fn with_retry_after(mut res: Response, secs: i64) -> Response {
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs.max(1)));
    res
}

/// The upstream the login goes straight to: the one chosen in advance when the relying
/// party allows it (a hint naming anything else is ignored), or the only method offered.
fn straight_to<'a>(offered: &'a [policy::Method], hint: Option<&str>) -> Option<&'a str> {
    let hinted = hint.and_then(|h| offered.iter().find(|m| m.upstream() == Some(h)));
    let only = match offered {
        [only] => Some(only),
        _ => None,
    };
    hinted.or(only).and_then(|m| m.upstream())
}

/// The upstream login's start for transaction `tx`.
pub(super) fn upstream_start(name: &str, tx: &str) -> String {
    format!(
        "{}?tx={tx}",
        paths::fill(paths::UPSTREAM_START, "name", name)
    )
}

/// What a login page is drawn for.
pub(super) struct LoginView<'a> {
    pub tx: &'a Transaction,
    /// The browser's login-binding cookie value (the CSRF token is bound to it).
    pub binding: &'a str,
    /// The username to fill in again.
    pub username: &'a str,
    /// "Forgot your password?": BankID only.
    pub reset: bool,
    /// A phone or tablet: BankID on this device comes first, else the QR code does.
    pub mobile: bool,
}

/// Whether the browser is on a phone or tablet (where the BankID app is on the same device).
pub(super) fn is_mobile(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| {
            ["Android", "iPhone", "iPad", "Mobile"]
                .iter()
                .any(|m| ua.contains(m))
        })
}

/// The login page with the methods this transaction may use: for a password reset BankID
/// alone; otherwise the relying party's allowed methods that reach its required level.
async fn login_page(
    login: &Login,
    lang: Lang,
    view: &LoginView<'_>,
    error: Option<&'static str>,
) -> Result<Response, WebError> {
    let tx = view.tx;
    let token = login_csrf(login, &tx.id, view.binding);
    let name = rp_name(tx, lang);
    let enabled = login.authn.bankid_enabled();
    let offered = if view.reset {
        Vec::new()
    } else {
        login.authn.offered(tx).await
    };
    let offers = |n: &str| offered.iter().any(|m| m.name == n);
    let upstreams = super::upstream::choices(login, tx, &offered).await?;
    let csp = super::upstream::logo_csp(&upstreams);
    let mut res = web::render(&LoginPage {
        lang,
        tx: &tx.id,
        csrf: &token,
        rp_name: &name,
        username: view.username,
        error,
        bankid: if view.reset {
            enabled
        } else {
            offers(policy::BANKID)
        },
        password: !view.reset && offers(policy::PASSWORD),
        reset: view.reset && enabled,
        reset_link: enabled,
        mobile: view.mobile,
        upstreams,
    })?;
    if let Some(csp) = csp.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        res.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    Ok(res)
}

/// The login page again, with an error and a status.
pub(super) async fn rerender_login(
    login: &Login,
    lang: Lang,
    view: &LoginView<'_>,
    status: StatusCode,
    error: &'static str,
) -> Result<Response, WebError> {
    let page = login_page(login, lang, view, Some(error)).await?;
    Ok((status, page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::acr;

    fn m(name: &str) -> policy::Method {
        policy::Method {
            name: name.into(),
            level: acr::BAS.into(),
            display_name: None,
            provider_id: None,
        }
    }

    #[test]
    fn straight_to_a_hinted_or_only_upstream() {
        let all = [m("password"), m("bankid"), m("upstream:kommun")];
        assert_eq!(straight_to(&all, Some("kommun")), Some("kommun"));
        assert_eq!(straight_to(&all, None), None);
        // A hint naming an upstream the relying party does not allow is ignored.
        assert_eq!(straight_to(&all, Some("other")), None);
        assert_eq!(straight_to(&all[..2], Some("kommun")), None);
        assert_eq!(straight_to(&all[2..], None), Some("kommun"));
        // A single built-in method is not an upstream: its own page is shown.
        assert_eq!(straight_to(&all[1..2], None), None);
        assert_eq!(
            upstream_start("kommun", "T1"),
            "/upstream/kommun/start?tx=T1"
        );
    }
}
