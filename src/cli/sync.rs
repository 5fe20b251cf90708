//! `sync`: run the metakatalog sync, approve or reject a held plan, list runs, unlock a
//! source. `run` and `approve` stop on Ctrl-C or SIGTERM: the run is recorded `interrupted`
//! and its lease released.

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
        /// A source configured under [sync.sources.NAME]; with --file, the name the file's
        /// people are recorded under (default "file").
        #[arg(long, conflicts_with = "ss12000")]
        source: Option<String>,
        /// An SS 12000 API base URL, read ad hoc (source name "ss12000"); a bearer token
        /// comes from PORTVAKT_SS12000_TOKEN.
        #[arg(long, value_name = "BASE_URL", conflicts_with = "file")]
        ss12000: Option<String>,
        /// An SS 12000 JSON dump, read as the whole truth of its source: a folder of the
        /// API's list responses (organisations*.json, persons*.json, groups*.json,
        /// duties*.json) or one document with those four arrays; or a CSV file (PATH ending
        /// in .csv: one row per person and role, see the README).
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
        /// With --ss12000 or a JSON --file: the externalIdentifiers context whose value is
        /// the username (a CSV file has a username column).
        #[arg(long)]
        username_context: Option<String>,
        /// With --file: apply the good records of a file that has bad ones (each is
        /// reported with its file and line either way).
        #[arg(long, requires = "file")]
        skip_bad_rows: bool,
        /// Read everything, not only what changed since the last run (a file always is).
        #[arg(long)]
        full: bool,
        /// Plan and report without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply a plan the safety guard stopped.
    Approve { run: i64 },
    /// Discard a plan the safety guard stopped (the schedule does not hold the same plan
    /// again).
    Reject { run: i64 },
    /// Release a source's lease and mark its unfinished runs interrupted (a run still
    /// working stops at its next heartbeat).
    Unlock { source: String },
    /// Recent runs: when, what, how many, why held.
    Runs {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn sync_cmd(config: Config, cmd: SyncCommand) -> anyhow::Result<()> {
    use crate::app::load_kek;
    use crate::sync::{self, plan::RunKind, run};
    let clock = crate::clock::Clock::system();
    let db = open_db(&config).await?;
    // Held plans are sealed with the KEK: `run` seals, `approve` opens.
    let kek = match &cmd {
        SyncCommand::Run { .. } | SyncCommand::Approve { .. } => Some(load_kek(&config)?),
        _ => None,
    };
    let env = |kek| sync::Env {
        db: &db,
        config: &config,
        clock: &clock,
        kek,
    };
    match cmd {
        SyncCommand::Run {
            source,
            ss12000,
            file,
            username_context,
            skip_bad_rows,
            full,
            dry_run,
        } => {
            let configured = |name: &str| config.sync.sources.get(name);
            // A CSV file's initial passwords: set after an applied run, never in the plan.
            let mut passwords = sync::csv::InitialPasswords::default();
            let (name, input, context) = match (source, ss12000, file) {
                (source, None, Some(path)) => {
                    let name = source.unwrap_or_else(|| sync::file::FILE_SOURCE.to_string());
                    if configured(&name).is_some() {
                        bail!(
                            "{name} is configured to read the SS 12000 API; give a file import \
                             a source name of its own (--source NAME)"
                        );
                    }
                    let csv = sync::csv::is_csv(&path);
                    if csv && username_context.is_some() {
                        bail!(
                            "--username-context goes with an SS 12000 source; a CSV file's \
                             usernames are its username column"
                        );
                    }
                    let dump = if csv {
                        let read =
                            sync::csv::read(&path, &name, &config.directory, &password_policy)?;
                        passwords = read.passwords;
                        read.dump
                    } else {
                        sync::file::read(&path)?
                    };
                    let s = &dump.snapshot;
                    eprintln!(
                        "{name}: read {} organisations, {} persons, {} groups and {} duties \
                         from {}",
                        s.organisations.len(),
                        s.persons.len(),
                        s.groups.len(),
                        s.duties.len(),
                        path.display()
                    );
                    if !dump.bad.is_empty() {
                        const SHOWN: usize = 20;
                        for bad in dump.bad.iter().take(SHOWN) {
                            eprintln!("{bad}");
                        }
                        if dump.bad.len() > SHOWN {
                            eprintln!("… and {} more", dump.bad.len() - SHOWN);
                        }
                        if !skip_bad_rows {
                            bail!(
                                "{} bad {} in {}; nothing was applied (correct them, or \
                                 apply the rest with --skip-bad-rows)",
                                dump.bad.len(),
                                if csv { "rows" } else { "records" },
                                path.display()
                            );
                        }
                    }
                    let context = if csv {
                        Some(sync::csv::USERNAME_CONTEXT.to_string())
                    } else {
                        username_context
                    };
                    (name, Input::File(dump.snapshot), context)
                }
                (Some(name), None, None) => {
                    let s = configured(&name).ok_or_else(|| {
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
                    if username_context.is_some() {
                        bail!(
                            "--username-context goes with --ss12000 or --file; a configured \
                             source has its own (username_context in [sync.sources.{name}])"
                        );
                    }
                    let client = sync::client_for(&name, s).map_err(anyhow::Error::msg)?;
                    (
                        name,
                        Input::Api(Box::new(client)),
                        s.username_context.clone(),
                    )
                }
                (None, Some(url), None) => {
                    let client =
                        sync::ad_hoc_client(&url, std::env::var("PORTVAKT_SS12000_TOKEN").ok())
                            .map_err(anyhow::Error::msg)?;
                    (
                        sync::AD_HOC_SOURCE.to_string(),
                        Input::Api(Box::new(client)),
                        username_context,
                    )
                }
                _ => bail!("give --source NAME, --ss12000 BASE_URL or --file PATH"),
            };
            let kind = if full {
                RunKind::Full
            } else {
                RunKind::Incremental
            };
            // A bar on a terminal, plain phase lines otherwise (`cli::progress`).
            let shown = super::progress::Progress::start(&name);
            let progress = |m: &str| shown.report(m);
            let Some(kek) = &kek else {
                bail!("no key-encryption key")
            };
            let mut runner = run::Runner::new(env(kek), &name);
            runner.username_context = context.as_deref();
            runner.dry_run = dry_run;
            let stop = super::serve::shutdown_signal();
            let out = match input {
                Input::Api(client) => runner.run_source(&client, kind, &progress, stop).await?,
                Input::File(snapshot) => {
                    let fetch = |_| async move { Ok(run::Fetched::Full(snapshot)) };
                    runner.run(RunKind::Full, fetch, &progress, stop).await?
                }
            };
            let passwords = if passwords.is_empty() {
                None
            } else {
                Some(
                    initial_passwords(&db, &config, &name, passwords, &out.status, &progress).await,
                )
            };
            shown.finish();
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
                    run::Status::Skipped(rejected) =>
                        format!("skipped, the plan rejected in run {rejected}"),
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
            if let Some(line) = passwords {
                println!("{}", line?);
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
            let Some(kek) = &kek else {
                bail!("no key-encryption key")
            };
            let actor = cli_actor();
            let out = run::approve(env(kek), run, &actor, super::serve::shutdown_signal()).await?;
            println!(
                "run {run} approved and applied: {}",
                run::summary(&out.counts)
            );
        }
        SyncCommand::Reject { run } => {
            run::reject(&db, run, &cli_actor(), clock.now()).await?;
            println!(
                "run {run} rejected; nothing was applied, and the schedule will not hold the \
                 same plan again"
            );
        }
        SyncCommand::Unlock { source } => unlock(&db, &source, clock.now()).await?,
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

/// A CSV import's initial passwords: hashed and stored for the people without one once the
/// run is applied; a held run or a dry run sets none (a held plan carries no passwords: the
/// import of the same file after `sync approve` sets them). Returns the line to print.
async fn initial_passwords(
    db: &storage::Db,
    config: &Config,
    source: &str,
    passwords: crate::sync::csv::InitialPasswords,
    status: &crate::sync::run::Status,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> anyhow::Result<String> {
    use crate::sync::run::Status;
    let n = passwords.len();
    match status {
        Status::Applied => {}
        Status::DryRun(_) => {
            return Ok(format!(
                "initial passwords: {n} in the file; none set in a dry run"
            ));
        }
        Status::Held(_) | Status::Skipped(_) => {
            return Ok(format!(
                "initial passwords: {n} in the file; none set while the run is not applied \
                 (import the file again after `sync approve`)"
            ));
        }
    }
    let p = &config.password;
    let workers = config.password_workers();
    // As many hashes in flight as the queue holds, so none is refused as busy.
    let in_flight = 2 * workers;
    let hasher = crate::authn::password::PasswordHasher::new(
        p.memory_kib,
        p.iterations,
        p.parallelism,
        workers,
        in_flight,
    )?;
    let hash = |pw: String| {
        let hasher = hasher.clone();
        async move { hasher.hash(pw).await.map_err(|e| e.to_string()) }
    };
    let now = crate::clock::Clock::system().now();
    // The run's signal handler replaced the default one: without this, Ctrl-C would not
    // stop minutes of hashing. Each stored batch stays; a re-import sets the rest.
    let stop = super::serve::shutdown_signal();
    let done = tokio::select! {
        done = crate::sync::csv::set_initial_passwords(
            db, source, passwords, hash, in_flight, progress, now,
        ) => done?,
        _ = stop => bail!(
            "stopped while setting initial passwords: those stored stay, and importing the \
             file again sets the rest"
        ),
    };
    if done.set > 0 {
        storage::records::audit(
            db,
            "sync.initial_passwords",
            &cli_actor(),
            &format!("{source}: {} initial passwords set", done.set),
            now,
        )
        .await?;
    }
    Ok(format!(
        "initial passwords: {} set, {} kept (people who had a password already)",
        done.set, done.kept
    ))
}

/// The rule for a CSV file's initial passwords: the one people choose theirs by.
fn password_policy(pw: &str) -> Result<(), String> {
    use crate::authn::password::{MAX_NEW_LENGTH, MIN_NEW_LENGTH, check_new};
    check_new(pw).map_err(|_| format!("it must be {MIN_NEW_LENGTH} to {MAX_NEW_LENGTH} characters"))
}

/// Where `sync run` reads the register.
enum Input {
    Api(Box<crate::sync::ss12000::client::Client>),
    /// A dump's good records.
    File(crate::sync::ss12000::types::Snapshot),
}

/// `sync unlock SOURCE`: the operator's way out when a run's process is gone and its lease
/// has not run out yet, or a run must stop now.
async fn unlock(db: &storage::Db, source: &str, now: i64) -> anyhow::Result<()> {
    let actor = cli_actor();
    let reason = format!("interrupted: unlocked by {actor}");
    let Some(done) = storage::sync::unlock(db, source, &reason, now).await? else {
        let known = storage::sync::sources(db).await?;
        bail!(
            "no sync source {source} in this database (known: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let runs = done
        .runs
        .iter()
        .map(|id| format!("run {id}"))
        .collect::<Vec<_>>()
        .join(", ");
    let detail = match (&done.lease_until, runs.is_empty()) {
        (None, true) => "not locked; nothing changed".to_string(),
        (_, true) => "lease released".to_string(),
        (_, false) => format!("lease released; {runs} marked interrupted"),
    };
    storage::records::audit(
        db,
        "sync.unlocked",
        &actor,
        &format!("{source}: {detail}"),
        now,
    )
    .await?;
    println!("{source}: {detail}");
    if done.lease_until.is_some() {
        println!(
            "a run still working on {source} stops within {} s (its next heartbeat)",
            crate::sync::lease::HEARTBEAT.as_secs()
        );
    }
    Ok(())
}
