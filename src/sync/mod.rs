//! The metakatalog sync: sources (the SS 12000 API), the plan against the directory, the
//! safety guard, the chunked apply and the run records.
//!
//! A source manages only the people it created (`persons.source` is its name): local people
//! and every local role (the admin role among them) are never touched by a sync.

pub mod plan;
pub mod run;
pub mod ss12000;

use crate::config::{Config, SourceConfig};
use plan::RunKind;
use run::{Fetched, Outcome, Runner, SyncError};
use ss12000::client::{Auth, Client, ClientConfig, Progress};

/// The name `sync run --ss12000 URL` records its people under.
pub const AD_HOC_SOURCE: &str = "ss12000";

fn read_secret(path: &std::path::Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))
}

/// The SS 12000 client for a configured source.
pub fn client_for(name: &str, s: &SourceConfig) -> Result<Client, String> {
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

/// One run of `source` through `client`.
#[allow(clippy::too_many_arguments)] // each is one of a run's independent inputs
pub async fn run_once(
    db: &crate::storage::Db,
    config: &Config,
    clock: &crate::clock::Clock,
    source: &str,
    username_context: Option<&str>,
    client: &Client,
    kind: RunKind,
    dry_run: bool,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Outcome, SyncError> {
    let runner = Runner {
        db,
        config,
        clock,
        source,
        username_context,
        dry_run,
    };
    let page = |p: &Progress| {
        if p.pages == 1 || p.pages.is_multiple_of(50) {
            progress(&format!(
                "read {} {} ({} pages)",
                p.records, p.entity, p.pages
            ));
        }
    };
    runner
        .run(
            kind,
            |watermark| async move {
                match watermark {
                    Some(since) => client
                        .changes(since, &page)
                        .await
                        .map(Fetched::Incremental)
                        .map_err(|e| e.to_string()),
                    None => client
                        .snapshot(&page)
                        .await
                        .map(Fetched::Full)
                        .map_err(|e| e.to_string()),
                }
            },
            progress,
        )
        .await
}

/// `serve`: runs each configured source on its schedule (checked every minute; the lease
/// keeps two instances from running the same source at once). The server supervises the
/// future (restarted after a panic); None when no source is configured.
pub fn schedule(
    db: crate::storage::Db,
    config: std::sync::Arc<Config>,
    clock: crate::clock::Clock,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    if config.sync.sources.is_empty() {
        return None;
    }
    Some(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            for (name, s) in &config.sync.sources {
                if let Err(e) = scheduled(&db, &config, &clock, name, s).await {
                    tracing::warn!(source = %name, "scheduled sync failed: {e}");
                }
            }
        }
    })
}

async fn scheduled(
    db: &crate::storage::Db,
    config: &Config,
    clock: &crate::clock::Clock,
    name: &str,
    s: &SourceConfig,
) -> Result<(), String> {
    let now = clock.now();
    let (watermark, last_full) = crate::storage::sync::state(db, name)
        .await
        .map_err(|e| e.to_string())?;
    let due = |every: u64, last: Option<i64>| {
        every > 0 && last.is_none_or(|t| now - t >= i64::try_from(every).unwrap_or(i64::MAX))
    };
    let kind = if due(s.full_every, last_full) {
        RunKind::Full
    } else if due(s.incremental_every, watermark) {
        RunKind::Incremental
    } else {
        return Ok(());
    };
    let client = client_for(name, s)?;
    let outcome = run_once(
        db,
        config,
        clock,
        name,
        s.username_context.as_deref(),
        &client,
        kind,
        false,
        &|_| {},
    )
    .await
    .map_err(|e| e.to_string())?;
    tracing::info!(
        source = %name,
        run = outcome.run_id,
        "sync {}: {:?}: {}",
        outcome.kind.as_str(),
        outcome.status,
        run::summary(&outcome.counts)
    );
    Ok(())
}
