//! The metakatalog sync: sources (the SS 12000 API, an SS 12000 JSON dump, a CSV file,
//! EGIL SCIM pushes), the plan against the directory, the safety guard, the chunked apply
//! and the run records.
//!
//! A source manages only the people it created (`persons.source` is its name): local people
//! and every local role (the admin role among them) are never touched by a sync.

pub mod csv;
pub mod egil;
pub mod file;
pub mod held;
pub mod lease;
pub mod plan;
pub mod push;
pub mod run;
pub mod ss12000;

use crate::config::{Config, SourceConfig, SourceKind};
use plan::RunKind;
use run::{Outcome, Runner, Status, SyncError};
use ss12000::client::{Auth, Client, ClientConfig};

/// What every run and every decision on a held run needs from the application.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub db: &'a crate::storage::Db,
    pub config: &'a Config,
    pub clock: &'a crate::clock::Clock,
    /// Seals held plans (they carry civic numbers).
    pub kek: &'a crate::keys::Kek,
}

/// The name `sync run --ss12000 URL` records its people under.
pub const AD_HOC_SOURCE: &str = "ss12000";

fn read_secret(path: &std::path::Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))
}

/// The SS 12000 client for a configured source.
pub fn client_for(name: &str, s: &SourceConfig) -> Result<Client, String> {
    if s.kind == SourceKind::Scim {
        return Err(format!(
            "sync.sources.{name} is a scim source: its register pushes to /scim/v2/, it is \
             not read"
        ));
    }
    let base = url::Url::parse(&s.base_url)
        .map_err(|e| format!("sync.sources.{name}.base_url {}: {e}", s.base_url))?;
    let mut cfg = ClientConfig::new(base);
    cfg.page_size = s.page_size.max(1);
    cfg.auth = match (&s.token_file, &s.token_url) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "sync.sources.{name}: set token_file or token_url, not both"
            ));
        }
        (Some(file), None) => Auth::Bearer(read_secret(file, "token")?),
        (None, Some(url)) => Auth::ClientCredentials {
            token_url: url::Url::parse(url)
                .map_err(|e| format!("sync.sources.{name}.token_url {url}: {e}"))?,
            client_id: s
                .client_id
                .clone()
                .ok_or_else(|| format!("sync.sources.{name}: token_url needs client_id"))?,
            client_secret: read_secret(
                s.client_secret_file.as_deref().ok_or_else(|| {
                    format!("sync.sources.{name}: token_url needs client_secret_file")
                })?,
                "client secret",
            )?,
            scope: s.scope.clone(),
        },
        (None, None) => Auth::None,
    };
    cfg.client_cert = match (&s.client_cert, &s.client_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => {
            return Err(format!(
                "sync.sources.{name}: client_cert and client_key go together"
            ));
        }
    };
    cfg.ca_cert = s.ca_cert.clone();
    Client::new(cfg).map_err(|e| e.to_string())
}

/// The client for `sync run --ss12000 URL`: a bearer token from `PORTVAKT_SS12000_TOKEN`
/// if set.
pub fn ad_hoc_client(base_url: &str, token: Option<String>) -> Result<Client, String> {
    let mut url = url::Url::parse(base_url).map_err(|e| format!("--ss12000 {base_url}: {e}"))?;
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    let mut cfg = ClientConfig::new(url);
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        cfg.auth = Auth::Bearer(t);
    }
    Client::new(cfg).map_err(|e| e.to_string())
}

/// `serve`: runs each configured source on its schedule, checked every minute (the lease
/// keeps two instances from running the same source at once). A source with a held run is
/// paused until the run is approved or rejected; that is a warning in the log when the pause
/// begins and every hour while it lasts. The server supervises the future (restarted after a
/// panic); None when no source is configured.
pub fn schedule(
    db: crate::storage::Db,
    config: std::sync::Arc<Config>,
    clock: crate::clock::Clock,
    keys: crate::keys::KeyStore,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    if !config
        .sync
        .sources
        .values()
        .any(|s| s.kind == SourceKind::Ss12000)
    {
        return None;
    }
    Some(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        // Per source: when the pause was last logged.
        let mut warned: std::collections::HashMap<String, i64> = Default::default();
        loop {
            tick.tick().await;
            let env = Env {
                db: &db,
                config: &config,
                clock: &clock,
                kek: keys.kek(),
            };
            // A push source is not read: it pushes (`push`).
            let pulled = config
                .sync
                .sources
                .iter()
                .filter(|(_, s)| s.kind == SourceKind::Ss12000);
            for (name, s) in pulled {
                match scheduled(env, name, s).await {
                    Ok(Scheduled::Paused { run, since }) => {
                        let now = clock.now();
                        if warned
                            .get(name)
                            .is_none_or(|at| now - at >= PAUSE_WARNING_EVERY)
                        {
                            warned.insert(name.clone(), now);
                            tracing::warn!(
                                source = %name,
                                run,
                                held_for_minutes = (now - since) / 60,
                                "sync paused: run {run} is held; `portvakt sync approve {run}` \
                                 or `portvakt sync reject {run}` resumes the schedule"
                            );
                        }
                    }
                    Ok(_) => {
                        warned.remove(name);
                    }
                    Err(e) => {
                        tracing::warn!(source = %name, "scheduled sync failed: {}", crate::error_chain(&e));
                    }
                }
            }
        }
    })
}

/// How often the log repeats that a source is paused.
const PAUSE_WARNING_EVERY: i64 = 3600;

/// What one look of the schedule at a source did.
#[derive(Debug)]
pub enum Scheduled {
    /// Neither kind of run is due.
    NotDue,
    /// Run `run`, started at `since`, waits for an administrator: nothing is read.
    Paused { run: i64, since: i64 },
    /// A run (applied, held, or skipped as a rejected plan).
    Ran(Box<Outcome>),
}

/// One look of the schedule at source `name`: paused by a held run, not due, or a run of the
/// kind that is due. A scheduled run whose plan equals a rejected one is skipped (see
/// [`run::Runner::scheduled`]), and that kind is not read again before its interval.
pub async fn scheduled(env: Env<'_>, name: &str, s: &SourceConfig) -> Result<Scheduled, SyncError> {
    let db = env.db;
    if let Some((run, since)) = crate::storage::sync::held_run(db, name).await? {
        return Ok(Scheduled::Paused { run, since });
    }
    let now = env.clock.now();
    let (watermark, last_full) = crate::storage::sync::state(db, name).await?;
    let skipped = crate::storage::sync::skipped(db, name).await?;
    let due = |every: u64, last: Option<i64>| {
        every > 0 && last.is_none_or(|t| now - t >= i64::try_from(every).unwrap_or(i64::MAX))
    };
    // `Option`'s order puts `None` first: the later of the two times, if any.
    let kind = if due(s.full_every, last_full.max(skipped.full)) {
        RunKind::Full
    } else if due(s.incremental_every, watermark.max(skipped.any)) {
        RunKind::Incremental
    } else {
        return Ok(Scheduled::NotDue);
    };
    let client = client_for(name, s).map_err(SyncError::Source)?;
    let mut runner = Runner::new(env, name);
    runner.username_context = s.username_context.as_deref();
    runner.scheduled = true;
    let outcome = runner
        .run_source(&client, kind, &|_| {}, std::future::pending())
        .await?;
    let (run, what) = (outcome.run_id, outcome.kind.as_str());
    match &outcome.status {
        Status::Held(reason) => tracing::warn!(
            source = %name,
            run,
            "sync {what} held: {reason}; the schedule of this source is paused until \
             `portvakt sync approve {run}` or `portvakt sync reject {run}`"
        ),
        Status::Skipped(rejected) => tracing::warn!(
            source = %name,
            "sync {what} skipped: the plan is the one rejected in run {rejected}; the \
             schedule tries again when the register has changed"
        ),
        _ => tracing::info!(
            source = %name,
            run,
            "sync {what}: {:?}: {}",
            outcome.status,
            run::summary(&outcome.counts)
        ),
    }
    Ok(Scheduled::Ran(Box::new(outcome)))
}
