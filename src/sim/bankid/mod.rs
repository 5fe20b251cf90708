//! A fake BankID inside Portvakt for the demo and tests. It speaks the RP API v6.0 exactly
//! like BankID (specs/bankid.md §2–§8, our design in §10), so `bankid::Client` runs unchanged
//! against it, and it has a "stub app" that plays the BankID app on the phone: a page (and a
//! small JSON API for tests) that opens an order by its autostart link or its QR text,
//! verifies the QR code like the real app, and approves or cancels.
//!
//! - `orders`: the state machine, pure, with the clock as a parameter;
//! - `rp`: the RP API under `/rp/v6.0/` (validation, BankID's error codes);
//! - `app`: the stub app under `/app` and `/app/api/{open,approve,cancel}`;
//! - `serve`: `portvakt bankid-stub`, alone, with optional mutual TLS.
//!
//! Never in production mode (config validation and the command refuse it). The personal
//! number and the qrStartSecret never reach a log line.

mod app;
mod orders;
mod rp;
pub mod serve;
#[cfg(test)]
mod tests;

use crate::config::Config;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use orders::{ApiError, Orders};
use ring::hmac;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where the RP API lives below the stub's mount point.
pub const RP_API: &str = "/rp/v6.0/";
/// The stub app's page, below the mount point.
pub const APP: &str = "/app";
/// Request bodies the stub reads at most (BankID's own limit is not published; orders are
/// small).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The stub's settings.
#[derive(Debug, Clone)]
pub struct StubConfig {
    /// An order nobody picks up fails with `startFailed` after this (BankID: 30 s).
    pub start_timeout: Duration,
    /// An order still pending after this fails with `expiredTransaction` (about 3 min).
    pub order_lifetime: Duration,
    /// The URL path prefix where the router is nested ("" at the root), for the page's
    /// links and forms.
    pub mount: String,
    /// (personal number, label) offered in the app's personal number field.
    pub suggestions: Vec<(String, String)>,
}

impl Default for StubConfig {
    fn default() -> Self {
        Self {
            start_timeout: Duration::from_secs(30),
            order_lifetime: Duration::from_secs(180),
            mount: String::new(),
            suggestions: Vec::new(),
        }
    }
}

impl StubConfig {
    /// The stub mounted in Portvakt (`[bankid] environment = "stub"`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            start_timeout: Duration::from_secs(config.bankid.stub_start_timeout),
            order_lifetime: Duration::from_secs(config.bankid.stub_order_lifetime),
            mount: crate::web::paths::BANKID_STUB.to_string(),
            suggestions: Vec::new(),
        }
    }
}

/// The clock the stub reads; tests give one they can move.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The stub: cheap to clone, all clones share the orders.
#[derive(Clone)]
pub struct Stub {
    inner: Arc<Inner>,
}

struct Inner {
    config: StubConfig,
    clock: Clock,
    /// The day of `bankIdIssueDate`.
    wall: crate::clock::Clock,
    /// Held only for short, synchronous work; never across an await.
    orders: Mutex<Orders>,
    /// Signs the app page's CSRF tokens; made at start, so a restart voids open forms.
    csrf_key: hmac::Key,
}

impl std::fmt::Debug for Stub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stub")
            .field("mount", &self.inner.config.mount)
            .finish_non_exhaustive()
    }
}

impl Stub {
    /// A stub whose timers and dates follow `clock` (moving it moves them).
    pub fn new(config: StubConfig, clock: crate::clock::Clock) -> Self {
        let instants = clock.clone();
        Self::with_clock(config, clock, Arc::new(move || instants.instant()))
    }

    /// The stub mounted in Portvakt, with these suggestions for the app, on the app's clock.
    pub fn from_config(
        config: &Config,
        suggestions: Vec<(String, String)>,
        clock: crate::clock::Clock,
    ) -> Self {
        Self::new(
            StubConfig {
                suggestions,
                ..StubConfig::from_config(config)
            },
            clock,
        )
    }

    /// A stub with its dates from `wall` and its timers from `clock`.
    pub fn with_clock(config: StubConfig, wall: crate::clock::Clock, clock: Clock) -> Self {
        let orders = Orders::new(config.start_timeout, config.order_lifetime);
        let key = crate::keys::random_bytes::<32>();
        Self {
            inner: Arc::new(Inner {
                config,
                clock,
                wall,
                orders: Mutex::new(orders),
                csrf_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            }),
        }
    }

    pub fn config(&self) -> &StubConfig {
        &self.inner.config
    }

    /// The RP API under `/rp/v6.0/` and the app under `/app`, state applied, to be nested
    /// at `config().mount`. Security headers, request ids and error pages come from the
    /// router it is nested in (`web::edge`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/rp/v6.0", any(rp::not_found))
            .route(RP_API, any(rp::not_found))
            .route("/rp/v6.0/{*method}", any(rp::dispatch))
            .route(APP, get(app::page_get).post(app::page_post))
            .route("/app/api/{action}", post(app::api_post))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.clone())
    }

    /// The app URL an autostart link would open (`bankid:///?autostarttoken=…&redirect=…`
    /// for the real app, specs/bankid.md §7): `base` is the stub's origin and mount, e.g.
    /// `https://idp.example.se/bankid-stub`.
    pub fn autostart_url(base: &str, auto_start_token: &str, redirect: Option<&str>) -> String {
        let mut url = format!(
            "{}{APP}?autostarttoken={}",
            base.trim_end_matches('/'),
            urlencode(auto_start_token)
        );
        if let Some(r) = redirect {
            url.push_str("&redirect=");
            url.push_str(&urlencode(r));
        }
        url
    }

    fn now(&self) -> Instant {
        (self.inner.clock)()
    }

    /// Today (UTC) for `bankIdIssueDate`.
    fn today(&self) -> chrono::NaiveDate {
        crate::directory::roles::day_of(self.inner.wall.now())
    }

    /// The orders, even after a panic elsewhere poisoned the lock: each operation leaves
    /// them consistent before it could panic.
    fn orders(&self) -> MutexGuard<'_, Orders> {
        self.inner
            .orders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many orders the stub holds (pending, or finished and still collectable).
    pub fn order_count(&self) -> usize {
        let now = self.now();
        self.orders().count(now)
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// BankID's error answer: the status of the code and `{"errorCode", "details"}`.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = axum::http::StatusCode::from_u16(self.code.http_status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = crate::bankid::api::ErrorBody {
            error_code: self.code,
            details: self.details,
        };
        (status, axum::Json(body)).into_response()
    }
}
