//! `sync`: run the metakatalog sync, approve or reject a held plan, list runs.

use super::cli_actor;
use crate::app::open_db;
use crate::config::Config;
use crate::storage;
use anyhow::bail;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Read a source, plan, check and apply; prints progress and the plan summary.
    Run {
        /// A source configured under [sync.sources.NAME].
        #[arg(long, conflicts_with = "ss12000")]
        source: Option<String>,
        /// An SS 12000 API base URL, read ad hoc (source name "ss12000"); a bearer token
        /// comes from PORTVAKT_SS12000_TOKEN.
        #[arg(long, value_name = "BASE_URL")]
        ss12000: Option<String>,
        /// With --ss12000: the externalIdentifiers context whose value is the username.
        #[arg(long, requires = "ss12000")]
        username_context: Option<String>,
        /// Read everything, not only what changed since the last run.
        #[arg(long)]
        full: bool,
        /// Plan and report without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply a plan the safety guard stopped.
    Approve { run: i64 },
    /// Discard a plan the safety guard stopped.
    Reject { run: i64 },
    /// Recent runs: when, what, how many, why held.
    Runs {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn sync_cmd(config: Config, cmd: SyncCommand) -> anyhow::Result<()> {
    use crate::sync::{self, plan::RunKind, run};
    let clock = crate::clock::Clock::system();
    let db = open_db(&config).await?;
    match cmd {
        SyncCommand::Run {
            source,
            ss12000,
            username_context,
            full,
            dry_run,
        } => {
            let (name, client, context) = match (source, ss12000) {
                (Some(name), None) => {
                    let s = config.sync.sources.get(&name).ok_or_else(|| {
                        anyhow::anyhow!(
                            "no source {name} in [sync.sources] (configured: {})",
                            config
                                .sync
                                .sources
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                    let client = sync::client_for(&name, s).map_err(anyhow::Error::msg)?;
                    (name, client, s.username_context.clone())
                }
                (None, Some(url)) => {
                    let client =
                        sync::ad_hoc_client(&url, std::env::var("PORTVAKT_SS12000_TOKEN").ok())
                            .map_err(anyhow::Error::msg)?;
                    (sync::AD_HOC_SOURCE.to_string(), client, username_context)
                }
                _ => bail!("give --source NAME or --ss12000 BASE_URL"),
            };
            let kind = if full {
                RunKind::Full
            } else {
                RunKind::Incremental
            };
            let started = std::time::Instant::now();
            let progress =
                |m: &str| eprintln!("{name}: [{:>6.1} s] {m}", started.elapsed().as_secs_f64());
            let out = sync::run_once(
                &db,
                &config,
                &clock,
                &name,
                context.as_deref(),
                &client,
                kind,
                dry_run,
                &progress,
            )
            .await?;
            let c = &out.counts;
            println!(
                "run {} ({}, {}): {}",
                out.run_id,
                out.kind.as_str(),
                match &out.status {
                    run::Status::Applied => "applied".to_string(),
                    run::Status::Held(_) => "HELD".to_string(),
                    run::Status::DryRun(None) => "dry run".to_string(),
                    run::Status::DryRun(Some(_)) => "dry run, would be held".to_string(),
                },
                run::summary(c)
            );
            if c.purged > 0 {
                println!(
                    "purged {} people deactivated beyond the retention period",
                    c.purged
                );
            }
            for (what, n) in c
                .unresolved
                .iter()
                .chain(out.report.skipped.iter())
                .chain(out.report.unknown_values.iter())
                .chain(out.report.unknown_fields.iter())
            {
                println!("  {n:>8}  {what}");
            }
            match out.status {
                run::Status::Held(reason) => {
                    bail!(
                        "run {} stopped before applying: {reason}; check it, then `portvakt sync approve {}` or `portvakt sync reject {}`",
                        out.run_id,
                        out.run_id,
                        out.run_id
                    )
                }
                run::Status::DryRun(Some(reason)) => println!("would be held: {reason}"),
                _ => {}
            }
        }
        SyncCommand::Approve { run } => {
            let actor = cli_actor();
            let out = run::approve(&db, &config, &clock, run, &actor).await?;
            println!(
                "run {run} approved and applied: {}",
                run::summary(&out.counts)
            );
        }
        SyncCommand::Reject { run } => {
            run::reject(&db, run, &cli_actor(), clock.now()).await?;
            println!("run {run} rejected; nothing was applied");
        }
        SyncCommand::Runs { limit, json } => {
            let runs = storage::sync::runs(&db, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                for r in runs {
                    println!(
                        "{:>5}  {:<12} {:<11} {:<9} started {}  {}",
                        r.id,
                        r.source,
                        r.kind,
                        r.status,
                        r.started_at,
                        r.reason.unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
