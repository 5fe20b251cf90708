//! The SSO cookie (which session this browser has) and the login-binding cookie (which
//! browser a login form belongs to). Under TLS both are `__Host-` prefixed and Secure.
//! Protocol fronts never see the SSO cookie's name: `layer` hands them its value as
//! `web::SsoCookie` and clears it when a response carries `web::ClearSsoCookie`.

use crate::config::Config;
use crate::web::{self, ClearSsoCookie, SameSite, SsoCookie};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

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

pub(super) fn sso_cookie<'a>(headers: &'a HeaderMap, config: &Config) -> Option<&'a str> {
    web::cookie(headers, sso_cookie_name(config))
}

pub(super) fn set_sso_cookie(value: &str, config: &Config) -> HeaderValue {
    web::set_cookie(
        sso_cookie_name(config),
        value,
        None,
        config.secure_cookies(),
        SameSite::None,
    )
}

fn clear_sso_cookie(config: &Config) -> HeaderValue {
    web::set_cookie(
        sso_cookie_name(config),
        "",
        Some(0),
        config.secure_cookies(),
        SameSite::None,
    )
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

/// SameSite=Lax: the login form is always posted from our own pages.
pub(super) fn set_binding_cookie(value: &str, config: &Config) -> HeaderValue {
    let secure = config.secure_cookies();
    web::set_cookie(
        binding_cookie_name(config),
        value,
        None,
        secure,
        SameSite::Lax,
    )
}

/// The browser's login-binding cookie value, or "" when it has none.
pub(super) fn binding<'a>(headers: &'a HeaderMap, config: &Config) -> &'a str {
    web::cookie(headers, binding_cookie_name(config)).unwrap_or_default()
}

/// Around every route: the SSO cookie's value in, its removal out.
pub async fn layer(State(config): State<Arc<Config>>, mut req: Request, next: Next) -> Response {
    let value = sso_cookie(req.headers(), &config).map(str::to_string);
    req.extensions_mut().insert(SsoCookie(value));
    let mut res = next.run(req).await;
    if res.extensions_mut().remove::<ClearSsoCookie>().is_some() {
        res.headers_mut()
            .append(header::SET_COOKIE, clear_sso_cookie(&config));
    }
    res
}
