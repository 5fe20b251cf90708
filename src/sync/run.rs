//! One sync run: read everything first, plan, check, apply in chunks, record.
//!
//! A source that fails at any page changes nothing (the read finishes before the plan). A
//! plan the guard stops is kept (sealed) in the run record until an administrator approves
//! or rejects it (`held`). The incremental watermark moves only after a complete apply, so an
//! interrupted run is completed by the next one (every write is an idempotent upsert or a
//! replacement of an entity's own rows, and a person's `sync_hash`, the mark that makes the
//! next plan skip it, is written last, with its guardianships). The run works under the
//! source's lease (`lease`): a signal or a lost lease stops it, recorded `interrupted`.

use super::Env;
use super::lease::{HEARTBEAT, Lease};
use super::plan::{self, Existing, Plan, RunKind, Settings};
use super::ss12000::client::{Client, Progress};
use super::ss12000::types::{ChangeSet, ParseReport, Snapshot};
use crate::config::Config;
use crate::storage::{self, Db, sync as store};
use serde_json::{Value, json};
use std::future::Future;

pub use super::held::{approve, reject};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "another sync of {0} is running (or ended without releasing its lease); try again later"
    )]
    Busy(String),
    #[error("reading the source failed, nothing was changed: {0}")]
    Source(String),
    #[error("no sync run {0}")]
    NoRun(i64),
    #[error("run {0} is {1}, not held: only a held run can be approved or rejected")]
    NotHeld(i64, String),
    #[error("run {0} was {1}; what it applied stays, and the next run completes it")]
    Interrupted(i64, String),
    #[error("the held plan of run {0} cannot be opened ({1})")]
    Sealed(i64, String),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// What a source read.
pub enum Fetched {
    Full(Snapshot),
    Incremental(ChangeSet),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Applied,
    /// Stopped by the guard: the reason.
    Held(String),
    /// Nothing written; the plan would have been held if the reason is set.
    DryRun(Option<String>),
    /// A scheduled run whose plan equals that of the rejected run (nothing written, no
    /// run record kept).
    Skipped(i64),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: i64,
    pub kind: RunKind,
    pub status: Status,
    pub counts: plan::Counts,
    pub report: ParseReport,
    pub purged: u64,
}

/// The incremental window starts this long before the last run started: registers differ on
/// whether `meta.modified.after` is exclusive, and long transactions commit late.
const WATERMARK_OVERLAP: i64 = 300;

/// One run of one source; [`Runner::new`] gives the defaults.
pub struct Runner<'a> {
    pub db: &'a Db,
    pub config: &'a Config,
    pub clock: &'a crate::clock::Clock,
    /// Seals a held plan (it carries civic numbers).
    pub kek: &'a crate::keys::Kek,
    pub source: &'a str,
    pub username_context: Option<&'a str>,
    pub dry_run: bool,
    /// A run of the schedule: a plan equal to a rejected one is skipped, not held again
    /// (a run by hand holds it again, for an administrator to look at once more).
    pub scheduled: bool,
    /// How often the lease is renewed while the run works.
    pub heartbeat: std::time::Duration,
}

fn report_json(r: &ParseReport) -> Value {
    json!({
        "unknown_values": r.unknown_values,
        "unknown_fields": r.unknown_fields,
        "skipped": r.skipped,
        "requests": r.requests,
        "retries": r.retries,
    })
}

impl<'a> Runner<'a> {
    /// A run by hand of `source`: not a dry run, no username context, the usual heartbeat.
    pub fn new(env: Env<'a>, source: &'a str) -> Self {
        Runner {
            db: env.db,
            config: env.config,
            clock: env.clock,
            kek: env.kek,
            source,
            username_context: None,
            dry_run: false,
            scheduled: false,
            heartbeat: HEARTBEAT,
        }
    }

    /// Whether the next scheduled or requested run can be incremental: there is a watermark.
    pub async fn watermark(&self) -> Result<Option<i64>, SyncError> {
        Ok(store::state(self.db, self.source).await?.0)
    }

    /// Runs once, reading the source through `client`; `cancel` stops the run (a signal).
    pub async fn run_source(
        &self,
        client: &Client,
        kind: RunKind,
        progress: &(dyn Fn(&str) + Send + Sync),
        cancel: impl Future<Output = ()>,
    ) -> Result<Outcome, SyncError> {
        let page = |p: &Progress| {
            if p.pages == 1 || p.pages.is_multiple_of(50) {
                progress(&format!(
                    "read {} {} ({} pages)",
                    p.records, p.entity, p.pages
                ));
            }
        };
        self.run(
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
            cancel,
        )
        .await
    }

    /// Runs once. `fetch` reads the source (given the watermark for an incremental read);
    /// nothing is written before it has returned everything. The run works under the
    /// source's lease, renewed by a heartbeat; when `cancel` completes or the lease is lost
    /// the run stops at its next await and is recorded `interrupted`.
    pub async fn run<F, Fut>(
        &self,
        kind: RunKind,
        fetch: F,
        progress: &(dyn Fn(&str) + Send + Sync),
        cancel: impl Future<Output = ()>,
    ) -> Result<Outcome, SyncError>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<Fetched, String>>,
    {
        let started = std::time::Instant::now();
        let result = match Lease::take(self.db, self.clock, self.source, self.heartbeat).await {
            Ok(lease) => {
                let result = self.run_leased(&lease, kind, fetch, progress, cancel).await;
                lease.release().await;
                result
            }
            Err(e) => Err(e),
        };
        record_metrics(self.source, &result, started.elapsed().as_secs_f64());
        result
    }

    async fn run_leased<F, Fut>(
        &self,
        lease: &Lease<'_>,
        kind: RunKind,
        fetch: F,
        progress: &(dyn Fn(&str) + Send + Sync),
        cancel: impl Future<Output = ()>,
    ) -> Result<Outcome, SyncError>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<Fetched, String>>,
    {
        let now = self.clock.now();
        let watermark = match kind {
            RunKind::Full => None,
            RunKind::Incremental | RunKind::Push => store::state(self.db, self.source).await?.0,
        };
        // Without a watermark there is nothing to be incremental from.
        let kind = if watermark.is_none() {
            RunKind::Full
        } else {
            kind
        };
        let run_id = store::start_run(self.db, self.source, kind.as_str(), now).await?;
        // A first run stopped between its bulk load and its index builds left them out.
        store::ensure_deferred_indexes(self.db).await?;
        let work = self.run_started(run_id, kind, watermark, fetch, progress, now);
        let result = match lease.guard(work, cancel).await {
            Ok(r) => r,
            Err(stop) => Err(SyncError::Interrupted(run_id, stop.reason().into())),
        };
        if let Err(e) = &result {
            // Every way out of a started run leaves a record. The paths that know more (a
            // failed read, a failed apply) have written theirs already, and this touches only
            // a run still `running`; any other failure is recorded here with its reason.
            let (to, reason) = match e {
                SyncError::Interrupted(_, why) => ("interrupted", why.clone()),
                e => ("failed", crate::error_chain(e)),
            };
            if let Err(record) = store::set_run_status(
                self.db,
                run_id,
                "running",
                to,
                Some(&reason),
                self.clock.now(),
            )
            .await
            {
                tracing::warn!(
                    source = %self.source,
                    "recording run {run_id} as {to} failed too: {}",
                    crate::error_chain(&record)
                );
            }
        }
        result
    }

    /// The run after its record was written: fetch, plan, guard, apply, record.
    async fn run_started<F, Fut>(
        &self,
        run_id: i64,
        kind: RunKind,
        watermark: Option<i64>,
        fetch: F,
        progress: &(dyn Fn(&str) + Send + Sync),
        now: i64,
    ) -> Result<Outcome, SyncError>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<Fetched, String>>,
    {
        let next_watermark = now - WATERMARK_OVERLAP;
        let today = crate::directory::roles::day_of(now);
        let today_s = crate::directory::roles::format_date(today);
        // A full run reads the directory's state while the register is read: the two wait
        // on different things (the database, the register's pages) and use both cores.
        let (fetched, existing) = if kind == RunKind::Full {
            let (fetched, existing) = tokio::join!(
                fetch(watermark),
                store::load_full(self.db, self.source, &today_s)
            );
            (fetched, Some(existing))
        } else {
            (fetch(watermark).await, None)
        };
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                self.finish(
                    run_id,
                    "failed",
                    &plan::Counts::default(),
                    &ParseReport::default(),
                    &[],
                    Some(&e),
                    None,
                    None,
                )
                .await?;
                return Err(SyncError::Source(e));
            }
        };
        let scope = self.config.saml_scope();
        let settings = Settings {
            source: self.source,
            directory: &self.config.directory,
            eppn_scope: &scope,
            username_context: self.username_context,
            today,
        };
        progress("planning");
        let (plan, report) = match fetched {
            Fetched::Full(snapshot) => {
                let mut existing = match existing {
                    Some(loaded) => loaded?,
                    None => store::load_full(self.db, self.source, &today_s).await?,
                };
                existing.taken = self.taken(&snapshot.persons, &existing, &settings).await?;
                let report = snapshot.report.clone();
                (plan::full(snapshot, &existing, &settings), report)
            }
            Fetched::Incremental(changes) => {
                let plan = self.plan_changes(&changes, &settings, &today_s).await?;
                (plan, changes.changed.report)
            }
        };
        let report = &report;
        let recent = self.recently_lost(now).await?;
        let mut plan = plan;
        if kind == RunKind::Incremental {
            let share = self.config.sync.max_deactivation_share;
            let cap = plan::active_count_cap(&plan, share, recent);
            plan.counts.active_before = store::active_count_upto(self.db, self.source, cap).await?;
        }
        progress("planned");
        let hold = plan::guard(&plan, recent, &plan::Limits::of(&self.config.sync));
        if self.dry_run {
            self.finish(
                run_id,
                "dry-run",
                &plan.counts,
                report,
                &plan.diff,
                hold.as_deref(),
                None,
                None,
            )
            .await?;
            return Ok(self.outcome(run_id, &plan, report, Status::DryRun(hold), 0));
        }
        if let Some(reason) = hold {
            let hash = super::held::plan_hash(&plan);
            if self.scheduled
                && let Some(rejected) =
                    store::rejected_with_hash(self.db, self.source, &hash).await?
            {
                // Told no already: no new record, no new hold; the schedule waits for the
                // register to change.
                store::forget_run(self.db, run_id).await?;
                store::set_skipped(self.db, self.source, kind == RunKind::Full, now).await?;
                return Ok(self.outcome(run_id, &plan, report, Status::Skipped(rejected), 0));
            }
            let stored = super::held::seal(self.kek, run_id, &plan, next_watermark)?;
            self.finish(
                run_id,
                "held",
                &plan.counts,
                report,
                &plan.diff,
                Some(&reason),
                Some((&stored, &hash)),
                Some(next_watermark),
            )
            .await?;
            storage::records::audit(
                self.db,
                "sync.held",
                self.source,
                &format!("run {run_id}: {reason}"),
                now,
            )
            .await?;
            return Ok(self.outcome(run_id, &plan, report, Status::Held(reason), 0));
        }
        if let Err(e) = apply(self.db, self.config, &mut plan, progress, self.clock.now()).await {
            // What was written stays (every write is idempotent); the watermark does not
            // move, so the next run completes it.
            let reason = format!("applying stopped: {}", crate::error_chain(&e));
            self.finish(
                run_id,
                "failed",
                &plan.counts,
                report,
                &plan.diff,
                Some(&reason),
                None,
                None,
            )
            .await?;
            return Err(e);
        }
        store::set_state(
            self.db,
            self.source,
            next_watermark,
            (kind == RunKind::Full).then_some(now),
        )
        .await?;
        let purged = self.purge(now).await?;
        let mut counts = plan.counts.clone();
        counts.purged = purged;
        self.finish(
            run_id,
            "applied",
            &counts,
            report,
            &plan.diff,
            None,
            None,
            Some(next_watermark),
        )
        .await?;
        storage::records::audit(
            self.db,
            "sync.applied",
            self.source,
            &format!("run {run_id}: {}", summary(&plan.counts)),
            self.clock.now(),
        )
        .await?;
        Ok(self.outcome(run_id, &plan, report, Status::Applied, purged))
    }

    /// The incremental plan of `changes` against what the directory holds of them.
    pub(super) async fn plan_changes(
        &self,
        changes: &ChangeSet,
        settings: &Settings<'_>,
        today: &str,
    ) -> Result<Plan, SyncError> {
        let c = &changes.changed;
        let refs = plan::incremental_person_refs(changes);
        // Changed and deleted people: their stored guardians may change status.
        let children: Vec<String> = c
            .persons
            .iter()
            .map(|p| p.id.as_str())
            .chain(changes.deleted.persons.iter().map(String::as_str))
            .map(|id| crate::directory::ident::person_id(self.source, id))
            .collect();
        let groups: Vec<String> = c
            .groups
            .iter()
            .map(|g| g.id.clone())
            .chain(changes.deleted.groups.iter().cloned())
            .collect();
        let duties: Vec<String> = c
            .duties
            .iter()
            .map(|d| d.id.clone())
            .chain(changes.deleted.duties.iter().cloned())
            .collect();
        let mut existing = store::load_incremental(
            self.db,
            self.source,
            today,
            &refs,
            &children,
            &groups,
            &duties,
        )
        .await?;
        existing.taken = self.taken(&c.persons, &existing, settings).await?;
        Ok(plan::incremental(changes, &existing, settings))
    }

    /// People this source deactivated or re-bound in the guard's window
    /// (`sync.guard_window_hours`).
    pub(super) async fn recently_lost(&self, now: i64) -> Result<u64, SyncError> {
        let window = i64::try_from(self.config.sync.guard_window_hours.saturating_mul(3600))
            .unwrap_or(i64::MAX);
        let runs =
            store::changed_counts_since(self.db, self.source, now.saturating_sub(window)).await?;
        Ok(runs
            .iter()
            .filter_map(|c| serde_json::from_value::<plan::Counts>(c.clone()).ok())
            .map(|c| c.deactivations + c.civic_changes)
            .sum())
    }

    pub(super) async fn taken(
        &self,
        people: &[super::ss12000::types::Person],
        existing: &Existing,
        settings: &Settings<'_>,
    ) -> Result<std::collections::HashSet<String>, SyncError> {
        let candidates = plan::identity_candidates(people, existing, settings);
        Ok(store::taken(self.db, &candidates).await?)
    }

    async fn purge(&self, now: i64) -> Result<u64, SyncError> {
        let before = now - self.config.sync.retention_days * 86_400;
        Ok(store::purge(self.db, self.source, before, now).await?)
    }

    fn outcome(
        &self,
        run_id: i64,
        plan: &Plan,
        report: &ParseReport,
        status: Status,
        purged: u64,
    ) -> Outcome {
        Outcome {
            run_id,
            kind: plan.kind,
            status,
            counts: plan.counts.clone(),
            report: report.clone(),
            purged,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish(
        &self,
        run_id: i64,
        status: &str,
        counts: &plan::Counts,
        report: &ParseReport,
        diff: &[plan::DiffEntry],
        reason: Option<&str>,
        held_plan: Option<(&str, &str)>,
        watermark: Option<i64>,
    ) -> Result<(), SyncError> {
        let counts = serde_json::to_value(counts).unwrap_or_default();
        let diff = serde_json::to_value(diff).unwrap_or_default();
        store::update_run(
            self.db,
            run_id,
            &store::RunUpdate {
                status,
                counts: &counts,
                report: &report_json(report),
                diff: &diff,
                reason,
                plan: held_plan.map(|(sealed, _)| sealed),
                plan_hash: held_plan.map(|(_, hash)| hash),
                watermark,
                finished: status != "held",
            },
            self.clock.now(),
        )
        .await?;
        Ok(())
    }
}

/// One line: what a plan does.
pub fn summary(c: &plan::Counts) -> String {
    format!(
        "{} created, {} updated, {} unchanged, {} deactivated, {} reactivated; \
         groups {} changed, {} removed; duties {} changed, {} removed; organisations {} changed",
        c.persons_created,
        c.persons_updated,
        c.persons_unchanged,
        c.deactivations,
        c.reactivations,
        c.groups_changed,
        c.groups_removed,
        c.duties_changed,
        c.duties_removed,
        c.organisations_changed
    )
}

/// Writes a plan in chunks of `sync.chunk_size` people, in dependency order, on one
/// connection. People go in id order, so the primary-key index grows at its end.
pub async fn apply(
    db: &Db,
    config: &Config,
    plan: &mut Plan,
    progress: &(dyn Fn(&str) + Send + Sync),
    now: i64,
) -> Result<(), SyncError> {
    let mut conn = store::ApplyConnection::acquire(db).await?;
    let result = apply_on(conn.conn(), config, plan, progress, now).await;
    conn.release().await?;
    result
}

async fn apply_on(
    conn: &mut sqlx::AnyConnection,
    config: &Config,
    plan: &mut Plan,
    progress: &(dyn Fn(&str) + Send + Sync),
    now: i64,
) -> Result<(), SyncError> {
    plan.persons.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    plan.groups.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    // Groups are written in multi-row upserts, which PostgreSQL refuses for an id listed
    // twice; one listing of a group stands for it, as when each was written in turn.
    plan.groups.dedup_by(|a, b| a.id == b.id);
    plan.duties.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let source = plan.source.as_str();
    let chunk = config.sync.chunk_size;
    store::apply_organisations(
        conn,
        source,
        &plan.organisations,
        &plan.remove_organisations,
    )
    .await?;
    // A bulk load (a first run): the secondary indexes on random keys are built after it.
    let bulk = plan.counts.persons_created >= BULK_LOAD_PEOPLE
        && plan.counts.persons_created >= 4 * plan.counts.persons_updated;
    if bulk {
        store::defer_indexes(conn, &store::DEFERRABLE_PERSON_INDEXES).await?;
    }
    let mut done = 0;
    let rebound: std::collections::HashSet<&str> =
        plan.rebound.iter().map(String::as_str).collect();
    for rows in plan.persons.chunks(chunk) {
        let search_names: Vec<String> = rows
            .iter()
            .map(|r| crate::directory::ident::search_name(&r.given_name, &r.family_name))
            .collect();
        let rebound_here: Vec<&str> = rows
            .iter()
            .map(|r| r.id.as_str())
            .filter(|id| rebound.contains(id))
            .collect();
        store::apply_persons(conn, source, rows, &search_names, &rebound_here, now).await?;
        done += rows.len();
        if done % (chunk * 20) < chunk || done == plan.persons.len() {
            progress(&format!("applied {done} of {} people", plan.persons.len()));
        }
    }
    for rows in plan.persons.chunks(chunk) {
        store::apply_guardianships(conn, source, rows).await?;
    }
    progress("applied guardianships");
    if bulk {
        store::build_indexes(conn, &store::DEFERRABLE_PERSON_INDEXES).await?;
        store::defer_indexes(conn, &store::DEFERRABLE_GROUP_INDEXES).await?;
    }
    // Groups carry their members: fewer per transaction.
    for rows in plan.groups.chunks((chunk / 20).max(1)) {
        store::apply_groups(conn, source, rows, &[]).await?;
    }
    store::apply_groups(conn, source, &[], &plan.remove_groups).await?;
    if bulk {
        store::build_indexes(conn, &store::DEFERRABLE_GROUP_INDEXES).await?;
    }
    progress("applied groups");
    for rows in plan.duties.chunks(chunk) {
        store::apply_duties(conn, source, rows, &[]).await?;
    }
    store::apply_duties(conn, source, &[], &plan.remove_duties).await?;
    for rows in plan.status.chunks(chunk) {
        store::apply_status(conn, source, rows, now).await?;
    }
    progress("applied duties and status changes");
    let written = plan.counts.persons_created + plan.counts.persons_updated;
    if written >= BULK_LOAD_PEOPLE {
        store::refresh_statistics(conn).await?;
    }
    Ok(())
}

/// A plan creating at least this many people (and few updates) is a bulk load: on SQLite
/// the secondary indexes on random keys are dropped for it and built after it. An apply
/// writing this many people refreshes PostgreSQL's statistics at its end.
const BULK_LOAD_PEOPLE: u64 = 5_000;

/// The run's result, duration and changes in the process's metrics.
fn record_metrics(source: &str, result: &Result<Outcome, SyncError>, seconds: f64) {
    let (label, counts) = match result {
        Ok(o) => (
            match o.status {
                Status::Applied => "applied",
                Status::Held(_) => "held",
                Status::DryRun(_) => "dry_run",
                Status::Skipped(_) => "skipped",
            },
            Some(&o.counts),
        ),
        Err(SyncError::Busy(_)) => ("busy", None),
        Err(SyncError::Interrupted(..)) => ("interrupted", None),
        Err(_) => ("failed", None),
    };
    let changes = match counts {
        Some(c) if label == "applied" => vec![
            ("created", c.persons_created),
            ("updated", c.persons_updated),
            ("deactivated", c.deactivations),
            ("reactivated", c.reactivations),
        ],
        _ => Vec::new(),
    };
    crate::metrics::sync_run(source, label, seconds, &changes);
}
