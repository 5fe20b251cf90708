//! What an operator's tools read: `/healthz` (the process answers), `/readyz` (this instance
//! can serve logins: the database answers within a second, the signing keys are loaded, it
//! is not shutting down; plus warnings about the sync), `/metrics` (Prometheus text, only to
//! `[metrics] allow`), and the middleware that counts requests by matched route.

use super::AppState;
use crate::config::Config;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const HEALTH: &str = crate::web::paths::HEALTH;
pub const READY: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// How long the database may take to answer readiness's ping.
const DB_DEADLINE: Duration = Duration::from_secs(1);

/// The operational state of one server, in `AppState`.
#[derive(Clone)]
pub struct Ops {
    /// Set when shutdown begins: readiness then says so while requests drain.
    pub draining: Arc<AtomicBool>,
    /// The supervised background tasks.
    pub tasks: super::supervise::Tasks,
    /// The separate metrics listener's address, when `[metrics] listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// The bound address of each push source's own listener (`[sync.sources.NAME] listen`),
    /// by source name.
    pub push_addrs: Arc<std::collections::BTreeMap<String, SocketAddr>>,
    /// Certificates read from files at start: (name, notAfter in unix seconds).
    certificates: Arc<Vec<(String, i64)>>,
}

impl Ops {
    pub(super) fn new(
        config: &Config,
        metrics_addr: Option<SocketAddr>,
        push_addrs: std::collections::BTreeMap<String, SocketAddr>,
    ) -> Self {
        Self {
            draining: Arc::new(AtomicBool::new(false)),
            tasks: Default::default(),
            metrics_addr,
            push_addrs: Arc::new(push_addrs),
            certificates: Arc::new(certificates(config)),
        }
    }
}

/// notAfter of the first certificate in a PEM file.
fn pem_not_after(pem: &[u8]) -> Option<i64> {
    let cert = openssl::x509::X509::from_pem(pem).ok()?;
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(cert.not_after()).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// The certificates the configuration names whose expiry stops something: the TLS
/// certificate, BankID's RP certificate, the sync sources' client certificates. Read once:
/// they are loaded at start, so a renewed file takes effect (and is seen here) on restart.
fn certificates(config: &Config) -> Vec<(String, i64)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let read = |p: &std::path::Path| std::fs::read(p).ok();
    if let Some(tls) = &config.tls
        && let Some(pem) = read(&tls.cert)
    {
        files.push(("tls".into(), pem));
    }
    let b = &config.bankid;
    if b.enabled {
        let pem = match (&b.client_cert, &b.pkcs12) {
            (Some(c), _) => read(c),
            (None, Some(p12)) => {
                let password = b
                    .pkcs12_password_file
                    .as_deref()
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                    .unwrap_or_default();
                read(p12).and_then(|der| crate::bankid::client::pkcs12_to_pem(&der, &password).ok())
            }
            (None, None) => None,
        };
        if let Some(pem) = pem {
            files.push(("bankid_client".into(), pem));
        }
    }
    for (name, s) in &config.sync.sources {
        if let Some(pem) = s.client_cert.as_deref().and_then(read) {
            files.push((format!("sync_client:{name}"), pem));
        }
    }
    files
        .into_iter()
        .filter_map(|(name, pem)| Some((name, pem_not_after(&pem)?)))
        .collect()
}

/// `/healthz` and `/readyz`, served to everyone; `/metrics` too when it has no listener of
/// its own (then only to `[metrics] allow`).
pub(super) fn routes(state: &AppState) -> Router {
    let mut r = Router::new()
        .route(HEALTH, get(health))
        .route(READY, get(ready));
    if state.config.metrics.listen.is_none() {
        r = r.route(METRICS, get(metrics));
    }
    r.with_state(state.clone())
}

/// The separate metrics listener's router (`[metrics] listen`): the same three endpoints.
pub(super) fn metrics_router(state: &AppState) -> Router {
    Router::new()
        .route(HEALTH, get(health))
        .route(READY, get(ready))
        .route(METRICS, get(metrics))
        .layer(axum::middleware::from_fn(track))
        .with_state(state.clone())
}

async fn health() -> &'static str {
    "ok"
}

/// 200 when this instance can serve, else 503; the body says what was checked and why not.
async fn ready(State(state): State<AppState>) -> Response {
    let now = state.clock.now();
    let mut problems: Vec<String> = Vec::new();
    let draining = state.ops.draining.load(Ordering::Relaxed);
    if draining {
        problems.push("shutting down: draining requests".into());
    }
    let database =
        match tokio::time::timeout(DB_DEADLINE, crate::storage::health::ping(&state.db)).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => {
                tracing::warn!("readiness: database: {}", crate::error_chain(&e));
                problems.push("the database does not answer".into());
                "error".to_string()
            }
            Err(_) => {
                problems.push(format!(
                    "the database did not answer within {} s",
                    DB_DEADLINE.as_secs()
                ));
                "timeout".to_string()
            }
        };
    let keys = state.keys.active_since(now);
    let keys_ok = keys.len() == 2;
    if !keys_ok {
        problems.push("no active signing key for every algorithm".into());
    }
    let (sync, warnings) = if database == "ok" {
        sync_report(&state, now).await
    } else {
        (Vec::new(), Vec::new())
    };
    let ready = problems.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "problems": problems,
        "checks": {
            "database": database,
            "keys": if keys_ok { "ok" } else { "missing" },
            "draining": draining,
        },
        "sync": sync,
        "warnings": warnings,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Per configured source: the age of its last successful run and a held run. A held run
/// is a warning, not unreadiness: logins go on while an administrator decides. Not logged
/// here (probes come every few seconds); the sync logs its own held and paused runs.
async fn sync_report(state: &AppState, now: i64) -> (Vec<serde_json::Value>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for name in state.config.sync.sources.keys() {
        let health = match tokio::time::timeout(
            DB_DEADLINE,
            crate::storage::health::sync_source(&state.db, name),
        )
        .await
        {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                warnings.push(format!(
                    "sync source {name}: cannot read its runs: {}",
                    crate::error_chain(&e)
                ));
                continue;
            }
            Err(_) => {
                warnings.push(format!("sync source {name}: reading its runs timed out"));
                continue;
            }
        };
        if let Some((run, _)) = health.held {
            warnings.push(format!(
                "sync source {name}: run {run} is held for approval and the source's schedule \
                 waits; see `portvakt sync runs`, then `portvakt sync approve {run}` or \
                 `portvakt sync reject {run}`"
            ));
        }
        if health.last_success.is_none() {
            warnings.push(format!("sync source {name}: no successful run yet"));
        }
        out.push(json!({
            "source": name,
            "last_success": health.last_success,
            "last_success_age_seconds": health.last_success.map(|t| (now - t).max(0)),
            "held_run": health.held.map(|(id, _)| id),
            "held_since": health.held.map(|(_, at)| at),
        }));
    }
    (out, warnings)
}

/// `/metrics`: only to peers in `[metrics] allow`, by the connection's own address (a
/// forwarded-for header is the client's claim, not a proof). A request a proxy forwarded is
/// refused whatever its peer: a reverse proxy on the same host connects from loopback, and
/// would otherwise publish the metrics to everyone it serves.
async fn metrics(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    let allowed = !proxied && peer.is_some_and(|p| state.config.metrics.allows(p.0.0.ip()));
    if !allowed {
        return (
            StatusCode::FORBIDDEN,
            "metrics are served only to the addresses in [metrics] allow, never through a proxy\n",
        )
            .into_response();
    }
    let text = render(&state).await;
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Label {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlgLabel {
    alg: &'static str,
}

fn gauge(value: i64) -> Gauge {
    let g = Gauge::default();
    g.set(value);
    g
}

/// The process's counters, then gauges read now from this server's state.
async fn render(state: &AppState) -> String {
    let now = state.clock.now();
    let (queued, running) = state.authn.hasher().load();
    let pool = crate::storage::health::pool_use(&state.db);
    let pool_family = Family::<PoolLabel, Gauge>::default();
    pool_family
        .get_or_create(&PoolLabel { state: "idle" })
        .set(i64::from(pool.idle));
    pool_family
        .get_or_create(&PoolLabel { state: "in_use" })
        .set(i64::from(pool.open - pool.idle));
    let certs = Family::<Label, Gauge>::default();
    for (name, not_after) in state.ops.certificates.iter() {
        certs
            .get_or_create(&Label { name: name.clone() })
            .set(*not_after);
    }
    let keys = Family::<AlgLabel, Gauge>::default();
    for (alg, since) in state.keys.active_since(now) {
        keys.get_or_create(&AlgLabel { alg }).set(since);
    }
    let last_ok = Family::<SourceLabel, Gauge>::default();
    let held = Family::<SourceLabel, Gauge>::default();
    for name in state.config.sync.sources.keys() {
        let read = tokio::time::timeout(
            DB_DEADLINE,
            crate::storage::health::sync_source(&state.db, name),
        )
        .await;
        if let Ok(Ok(h)) = read {
            let label = SourceLabel {
                source: name.clone(),
            };
            if let Some(t) = h.last_success {
                last_ok.get_or_create(&label).set(t);
            }
            held.get_or_create(&label).set(i64::from(h.held.is_some()));
        }
    }
    let draining = state.ops.draining.load(Ordering::Relaxed);
    crate::metrics::render(move |r: &mut Registry| {
        r.register(
            "password_hash_queue_depth",
            "Password hashes waiting for a hashing thread",
            gauge(i64::try_from(queued).unwrap_or(i64::MAX)),
        );
        r.register(
            "password_hash_running",
            "Password hashes being computed now",
            gauge(i64::try_from(running).unwrap_or(i64::MAX)),
        );
        r.register(
            "db_pool_connections",
            "Database pool connections, idle or in use",
            pool_family,
        );
        r.register(
            "db_pool_max_connections",
            "The database pool's size limit ([database] max_connections)",
            gauge(i64::from(pool.max)),
        );
        r.register(
            "certificate_expiry_timestamp_seconds",
            "When a configured certificate expires (notAfter), unix seconds",
            certs,
        );
        r.register(
            "signing_key_activated_timestamp_seconds",
            "When the signing key in use for an algorithm was activated, unix seconds",
            keys,
        );
        r.register(
            "sync_last_success_timestamp_seconds",
            "When a sync source's last applied run finished, unix seconds",
            last_ok,
        );
        r.register(
            "sync_held",
            "1 while a sync source has a run held for approval (its schedule waits)",
            held,
        );
        r.register(
            "draining",
            "1 while this instance shuts down",
            gauge(i64::from(draining)),
        );
    })
}

/// Middleware: counts each request with its matched route pattern (never the raw path, which
/// carries ids and would grow without bound), method and status, and its duration.
pub(super) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    use axum::http::Method;
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        // Methods are the client's choice: bounded here so labels cannot grow.
        _ => "other",
    };
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    crate::metrics::http_request(
        &route,
        method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}
