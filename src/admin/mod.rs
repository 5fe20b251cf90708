//! The admin front: the web UI municipal IT staff run Portvakt from, under `/admin`.
//! Services (OIDC clients and SAML SPs) with their release and login policies, people and
//! their sessions, and passwords. Server-rendered, usable without JavaScript.
//!
//! Who gets in is `access.rs`: people with the `admin` role (may change things) or
//! `admin-readonly` (sees everything, changes nothing), logged in through Portvakt itself
//! with a method and level `[admin]` allows, in an admin session of its own with a shorter
//! idle timeout. Every change checks the form's CSRF token and writes an audit event in the
//! same transaction as the change (`audit.rs`).

mod access;
mod audit;
mod home;
mod local;
mod passwords;
mod people;
mod person;
mod services;

pub use access::Access;

use crate::authn::Authn;
use crate::config::Config;
use crate::keys::KeyStore;
use crate::storage::Db;
use crate::web::{i18n::Lang, paths};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// The admin front's state: the core it drives.
#[derive(Clone)]
pub struct Admin {
    pub(crate) authn: Authn,
    pub(crate) config: Arc<Config>,
    pub(crate) keys: KeyStore,
    pub(crate) db: Db,
    /// The application's HTTP client (SP metadata from a URL).
    pub(crate) http: reqwest::Client,
}

impl Admin {
    pub fn new(
        authn: Authn,
        config: Arc<Config>,
        keys: KeyStore,
        db: Db,
        http: reqwest::Client,
    ) -> Self {
        Self {
            authn,
            config,
            keys,
            db,
            http,
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.authn.clock().now()
    }
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .merge(access::routes())
        .merge(home::routes())
        .merge(services::routes())
        .merge(people::routes())
        .merge(person::routes())
        .merge(local::routes())
        .merge(passwords::routes())
        .route(paths::ADMIN_STYLESHEET, get(stylesheet))
        .route(paths::ADMIN_SCRIPT, get(script))
        .layer(axum::middleware::from_fn(headers))
}

/// Scripts only from our origin (they only enhance), forms only to our origin, never
/// framed, never cached: an admin page can show a new client secret or a password.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// The admin stylesheet, compiled in. Not cached either: it is small, and `headers` keeps
/// one rule for every admin path.
async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/admin.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/admin.js"),
    )
        .into_response()
}

/// What every admin page's layout shows besides the page itself: who is logged in, whether
/// they may change things, the CSRF token for the page's forms, which section of the
/// navigation is current, and the link to the page in the other language.
pub struct Frame {
    pub name: String,
    pub can_write: bool,
    pub csrf: String,
    pub section: &'static str,
    pub other_lang: String,
}

impl Frame {
    pub fn new(lang: Lang, access: &Access, section: &'static str) -> Self {
        // The edge reads `lang=` anywhere in the query; an older one in `here` is overridden
        // because the edge takes the first, so drop it.
        let section_page = match section {
            "services" => paths::ADMIN_SERVICES,
            "people" => paths::ADMIN_PEOPLE,
            "passwords" => paths::ADMIN_PASSWORDS,
            _ => paths::ADMIN,
        };
        let here_or_section = if access.here.is_empty() {
            section_page
        } else {
            &access.here
        };
        let here: Vec<&str> = here_or_section.split(['?', '&']).collect();
        let path = here.first().copied().unwrap_or(paths::ADMIN);
        let mut query: Vec<&str> = here[1..]
            .iter()
            .copied()
            .filter(|kv| !kv.starts_with("lang=") && !kv.is_empty())
            .collect();
        let lang_kv = format!("lang={}", lang.other().code());
        query.push(&lang_kv);
        Self {
            name: access.display_name.clone(),
            can_write: access.can_write(),
            csrf: access.csrf.clone(),
            section,
            other_lang: format!("{path}?{}", query.join("&")),
        }
    }
}
