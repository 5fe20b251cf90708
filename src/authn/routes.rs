//! The login page and the SSO cookie. Works without JavaScript; 303 after the POST.

use super::{Authn, AuthnError, MethodUse, acr};
use crate::config::Config;
use crate::web::{self, ClientIp, SameSite, WebError, csrf, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};

pub fn routes() -> Router<Authn> {
    Router::new()
        .route(paths::LOGIN, get(login_get).post(login_post))
        .merge(super::bankid_routes::routes())
        .merge(super::password_reset::routes())
}

/// Under TLS the cookie is `__Host-` prefixed, Secure and SameSite=None: SAML's POST binding
/// and upstream IdPs come back by cross-site POST. Without TLS (local development) it is
/// SameSite=Lax.
pub fn sso_cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() {
        "__Host-portvakt_sso"
    } else {
        "portvakt_sso"
    }
}

pub fn sso_cookie<'a>(headers: &'a HeaderMap, config: &Config) -> Option<&'a str> {
    web::cookie(headers, sso_cookie_name(config))
}

pub fn set_sso_cookie(value: &str, config: &Config) -> HeaderValue {
    web::set_cookie(
        sso_cookie_name(config),
        value,
        None,
        config.secure_cookies(),
        SameSite::None,
    )
}

pub fn clear_sso_cookie(config: &Config) -> HeaderValue {
    web::set_cookie(
        sso_cookie_name(config),
        "",
        Some(0),
        config.secure_cookies(),
        SameSite::None,
    )
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
    /// Offer the password form (not when the relying party asked for more than a password
    /// gives, nor for a password reset).
    password: bool,
    /// "Forgot your password?": BankID only, then the new-password page.
    reset: bool,
    /// Offer BankID on this device first (phones), else the QR code first.
    mobile: bool,
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

/// The relying party's display name for the login pages.
pub(super) async fn rp_name(authn: &Authn, rp_id: &str, lang: Lang) -> String {
    if rp_id == super::password_reset::RP_ID {
        return lang.t("site.name").to_string();
    }
    let oidc = crate::storage::clients::display_name(&authn.db, rp_id).await;
    let saml = crate::storage::saml::display_name(&authn.db, rp_id).await;
    oidc.ok()
        .flatten()
        .or(saml.ok().flatten())
        .unwrap_or_else(|| rp_id.to_string())
}

/// A random value per browser that the login form's CSRF token is bound to, besides the
/// transaction: a form fetched in one browser cannot be posted from another, so an attacker
/// cannot log a victim's browser into the attacker's account (login CSRF).
pub(super) fn binding_cookie_name(config: &Config) -> &'static str {
    if config.secure_cookies() {
        "__Host-portvakt_login"
    } else {
        "portvakt_login"
    }
}

/// What a login form's CSRF token is bound to: its transaction and the browser.
pub(super) fn login_binding(tx_id: &str, binding: &str) -> String {
    format!("{tx_id}\u{0}{binding}")
}

pub(super) fn login_csrf(authn: &Authn, tx_id: &str, binding: &str) -> String {
    csrf::token(
        &authn.keys.secrets().csrf,
        "login",
        &login_binding(tx_id, binding),
    )
}

async fn login_get(
    State(authn): State<Authn>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let tx = live_transaction(&authn, &q.tx, authn.clock().now()).await?;
    let name = binding_cookie_name(&authn.config);
    let (binding, new_binding) = match web::cookie(&headers, name) {
        Some(b) if !b.is_empty() && b.len() <= 64 => (b.to_string(), false),
        _ => (crate::keys::random_token(), true),
    };
    let hint = tx.login_hint.as_deref().unwrap_or("");
    let reset = q.reset.is_some() || tx.protocol == super::password_reset::PROTOCOL;
    let view = LoginView {
        tx: &tx,
        binding: &binding,
        username: hint,
        reset,
        mobile: is_mobile(&headers),
    };
    let mut res = login_page(&authn, lang, &view, None).await?;
    if new_binding {
        let secure = authn.config.secure_cookies();
        let c = web::set_cookie(name, &binding, None, secure, SameSite::Lax);
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

async fn login_post(
    State(authn): State<Authn>,
    Extension(lang): Extension<Lang>,
    client_ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let now = authn.clock().now();
    let tx = live_transaction(&authn, &form.tx, now).await?;
    let binding = web::cookie(&headers, binding_cookie_name(&authn.config)).unwrap_or_default();
    let bound = login_binding(&tx.id, binding);
    if binding.is_empty() || !csrf::verify(&authn.keys.secrets().csrf, "login", &bound, &form.csrf)
    {
        return Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"));
    }
    let view = LoginView {
        tx: &tx,
        binding,
        username: &form.username,
        reset: false,
        mobile: is_mobile(&headers),
    };
    let rerender = |status: StatusCode, error: &'static str| {
        rerender_login(&authn, lang, &view, status, error)
    };
    if !offers_password(&authn, &tx) {
        return rerender(StatusCode::FORBIDDEN, "login.bankid_required").await;
    }
    let username = form.username.trim();
    if username.is_empty() || form.password.is_empty() {
        return rerender(StatusCode::BAD_REQUEST, "login.error.missing").await;
    }
    let source = client_ip
        .map(|Extension(ClientIp(ip))| ip.to_string())
        .unwrap_or_default();
    let person = match authn
        .check_password(username, form.password.clone(), &source, now)
        .await
    {
        Ok(p) => p,
        Err(AuthnError::InvalidCredentials) => {
            return rerender(StatusCode::UNAUTHORIZED, "login.error.invalid").await;
        }
        Err(AuthnError::Throttled(_)) => {
            return rerender(StatusCode::TOO_MANY_REQUESTS, "login.error.throttled").await;
        }
        Err(e) => return Err(e.into()),
    };
    let method = MethodUse {
        method: "pwd".into(),
        at: now,
        acr: acr::BAS.into(),
    };
    let previous = sso_cookie(&headers, &authn.config);
    let (cookie, session) = authn
        .start_session(&person.id, method, previous, now)
        .await?;
    // Binds this login to its transaction, so resuming needs no clock comparison.
    authn.complete(&tx.id, &session).await?;
    let mut res = Redirect::to(&format!("{}?tx={}", tx.resume_path, tx.id)).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_sso_cookie(&cookie, &authn.config));
    Ok(res)
}

/// Whether the login page offers a password: not for a password reset, and not when the
/// relying party asked only for levels above what a password gives and BankID can give
/// them. (Without BankID there is no other way in: the session's acr then tells the
/// relying party what it got.)
fn offers_password(authn: &Authn, tx: &super::Transaction) -> bool {
    let enough = tx.acr_values.is_empty()
        || tx
            .acr_values
            .iter()
            .any(|a| acr::rank(a) <= acr::rank(acr::BAS));
    tx.protocol != super::password_reset::PROTOCOL && (enough || !authn.bankid_enabled())
}

/// What a login page is drawn for.
pub(super) struct LoginView<'a> {
    pub tx: &'a super::Transaction,
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

async fn login_page(
    authn: &Authn,
    lang: Lang,
    view: &LoginView<'_>,
    error: Option<&'static str>,
) -> Result<Response, WebError> {
    let tx = view.tx;
    let token = login_csrf(authn, &tx.id, view.binding);
    let name = rp_name(authn, &tx.rp_id, lang).await;
    let bankid = authn.bankid_enabled();
    web::render(&LoginPage {
        lang,
        tx: &tx.id,
        csrf: &token,
        rp_name: &name,
        username: view.username,
        error,
        bankid,
        password: !view.reset && offers_password(authn, tx),
        reset: view.reset && bankid,
        mobile: view.mobile,
    })
}

/// The login page again, with an error and a status.
pub(super) async fn rerender_login(
    authn: &Authn,
    lang: Lang,
    view: &LoginView<'_>,
    status: StatusCode,
    error: &'static str,
) -> Result<Response, WebError> {
    let page = login_page(authn, lang, view, Some(error)).await?;
    Ok((status, page).into_response())
}

/// The login transaction, or the "login expired" page.
pub(super) async fn live_transaction(
    authn: &Authn,
    id: &str,
    now: i64,
) -> Result<super::Transaction, WebError> {
    authn
        .transaction(id, now)
        .await?
        .ok_or(WebError::bad_request("login.expired"))
}
