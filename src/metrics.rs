//! The process's counters and histograms (Prometheus, via prometheus-client), recorded where
//! things happen: requests (`app::ops`), logins (the login front), tokens and assertions
//! (the protocol fronts), sync runs (`sync::run`), task restarts (`app::supervise`).
//!
//! One set per process: everything a handler or task records goes here, whichever server of
//! the process recorded it. What is read from a server's state when scraped (the hashing
//! queue, the pool, readiness of sync sources, certificate expiry) is added by
//! `app::ops` into the same exposition (`render`). Label values are bounded: routes are
//! matched route patterns, relying parties are registered ones, sources are configured ones.
//! This module names nothing of the crate, so the core may record into it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

/// The content type of `render`'s text (OpenMetrics, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Login {
    method: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tokens {
    client_id: String,
    grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Sp {
    sp: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncRun {
    source: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncChange {
    source: String,
    change: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Task {
    task: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_seconds() -> Histogram {
    // 1 ms … 33 s: a page, a token, an argon2 login, up to the request timeout.
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

fn sync_seconds() -> Histogram {
    // A small incremental run to a full run of a large municipality.
    Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0])
}

struct Metrics {
    requests: Family<Request, Counter>,
    request_seconds: Histograms<Route>,
    logins: Family<Login, Counter>,
    throttled: Family<Method, Counter>,
    tokens: Family<Tokens, Counter>,
    assertions: Family<Sp, Counter>,
    sync_runs: Family<SyncRun, Counter>,
    sync_seconds: Histograms<Source>,
    sync_changes: Family<SyncChange, Counter>,
    task_restarts: Family<Task, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    requests: Family::default(),
    request_seconds: Family::new_with_constructor(request_seconds),
    logins: Family::default(),
    throttled: Family::default(),
    tokens: Family::default(),
    assertions: Family::default(),
    sync_runs: Family::default(),
    sync_seconds: Family::new_with_constructor(sync_seconds),
    sync_changes: Family::default(),
    task_restarts: Family::default(),
});

/// A finished HTTP request: `route` is the matched route pattern (never a raw path, which
/// could carry an id and would grow without bound), "unmatched" for the fallback.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let m = &*METRICS;
    m.requests
        .get_or_create(&Request {
            route: route.to_string(),
            method: method.to_string(),
            status,
        })
        .inc();
    m.request_seconds
        .get_or_create(&Route {
            route: route.to_string(),
            method: method.to_string(),
        })
        .observe(seconds);
}

/// Login methods as labels.
pub mod method {
    pub const PASSWORD: &str = "password";
    pub const BANKID: &str = "bankid";
    pub const UPSTREAM_OIDC: &str = "upstream_oidc";
    pub const UPSTREAM_SAML: &str = "upstream_saml";
}

/// Login results as labels.
pub mod result {
    /// The person is known and the login may finish: a session started.
    pub const SUCCESS: &str = "success";
    /// Wrong password, a failed or cancelled BankID order, an upstream that said no.
    pub const FAILURE: &str = "failure";
    /// Refused by the throttle before anything was checked.
    pub const THROTTLED: &str = "throttled";
    /// The hashing queue was full (503).
    pub const BUSY: &str = "busy";
    /// The person was proved but may not log in here: no matching person, a method the
    /// relying party does not allow, a step-up by another person.
    pub const REFUSED: &str = "refused";
    /// Something broke (a database or transport error).
    pub const ERROR: &str = "error";
}

/// A login attempt's outcome. A throttled attempt is also counted in
/// `portvakt_login_throttled_total`.
pub fn login(method: &'static str, result: &'static str) {
    let m = &*METRICS;
    m.logins.get_or_create(&Login { method, result }).inc();
    if result == result::THROTTLED {
        m.throttled.get_or_create(&Method { method }).inc();
    }
}

/// Tokens issued at the token endpoint to `client_id` by one grant.
pub fn tokens_issued(client_id: &str, grant_type: &str) {
    METRICS
        .tokens
        .get_or_create(&Tokens {
            client_id: client_id.to_string(),
            grant_type: grant_type.to_string(),
        })
        .inc();
}

/// A SAML assertion issued to the SP `sp` (its entity ID).
pub fn assertion_issued(sp: &str) {
    METRICS
        .assertions
        .get_or_create(&Sp { sp: sp.to_string() })
        .inc();
}

/// The end of a sync run: its result ("applied", "held", "dry_run", "failed", …), how long
/// it took, and the changes it made (name, count).
pub fn sync_run(source: &str, result: &'static str, seconds: f64, changes: &[(&'static str, u64)]) {
    let m = &*METRICS;
    let source = source.to_string();
    m.sync_runs
        .get_or_create(&SyncRun {
            source: source.clone(),
            result,
        })
        .inc();
    m.sync_seconds
        .get_or_create(&Source {
            source: source.clone(),
        })
        .observe(seconds);
    for (change, n) in changes {
        m.sync_changes
            .get_or_create(&SyncChange {
                source: source.clone(),
                change,
            })
            .inc_by(*n);
    }
}

/// A supervised background task panicked and was restarted.
pub fn task_restarted(task: &'static str) {
    METRICS.task_restarts.get_or_create(&Task { task }).inc();
}

/// The exposition: the process's metrics, then what `scraped` adds (gauges read now from one
/// server's state), ending with `# EOF`.
pub fn render(scraped: impl FnOnce(&mut Registry)) -> String {
    let m = &*METRICS;
    let mut r = Registry::with_prefix("portvakt");
    r.register(
        "http_requests",
        "HTTP requests answered, by matched route, method and status",
        m.requests.clone(),
    );
    r.register(
        "http_request_duration_seconds",
        "Time from a request's headers to its response, by matched route and method",
        m.request_seconds.clone(),
    );
    r.register(
        "logins",
        "Login attempts by method and result",
        m.logins.clone(),
    );
    r.register(
        "login_throttled",
        "Login attempts refused by the throttle, by method",
        m.throttled.clone(),
    );
    r.register(
        "tokens_issued",
        "Token responses issued by the token endpoint, by client and grant type",
        m.tokens.clone(),
    );
    r.register(
        "saml_assertions_issued",
        "SAML assertions issued, by service provider",
        m.assertions.clone(),
    );
    r.register(
        "sync_runs",
        "Sync runs finished in this process, by source and result",
        m.sync_runs.clone(),
    );
    r.register(
        "sync_run_duration_seconds",
        "How long sync runs took, by source",
        m.sync_seconds.clone(),
    );
    r.register(
        "sync_changes",
        "People created, updated, deactivated and reactivated by sync runs",
        m.sync_changes.clone(),
    );
    r.register(
        "task_restarts",
        "Background tasks restarted after a panic",
        m.task_restarts.clone(),
    );
    scraped(&mut r);
    let mut out = String::new();
    // Writing into a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        http_request("/unit-test/{id}", "GET", 200, 0.003);
        login(method::PASSWORD, result::THROTTLED);
        tokens_issued("unit-test-client", "client_credentials");
        let text = render(|_| {});
        assert!(text.contains(
            r#"portvakt_http_requests_total{route="/unit-test/{id}",method="GET",status="200"} 1"#
        ));
        assert!(text.contains(
            r#"portvakt_http_request_duration_seconds_bucket{le="0.005",route="/unit-test/{id}",method="GET"} 1"#
        ), "{text}");
        assert!(text.contains(r#"portvakt_login_throttled_total{method="password"}"#));
        assert!(text.contains(
            r#"portvakt_tokens_issued_total{client_id="unit-test-client",grant_type="client_credentials"} 1"#
        ));
        assert!(text.ends_with("# EOF\n"));
    }
}
