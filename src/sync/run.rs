//! One sync run: read everything first, plan, check, apply in chunks, record.
//!
//! A source that fails at any page changes nothing (the read finishes before the plan). A
//! plan the guard stops is kept in the run record until an administrator approves or
//! rejects it. The incremental watermark moves only after a complete apply, so an
//! interrupted run is completed by the next one (every write is an idempotent upsert or a
//! replacement of an entity's own rows).

use super::plan::{self, Existing, Plan, RunKind, Settings};
use super::ss12000::types::{ChangeSet, ParseReport, Snapshot};
use crate::config::Config;
use crate::storage::{self, Db, sync as store};
use serde_json::{Value, json};
use std::future::Future;

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

/// How long a run may hold the source's lease before another instance may start one.
const LEASE_SECONDS: i64 = 3 * 3600;
/// The incremental window starts this long before the last run started: registers differ on
/// whether `meta.modified.after` is exclusive, and long transactions commit late.
const WATERMARK_OVERLAP: i64 = 300;

pub struct Runner<'a> {
    pub db: &'a Db,
    pub config: &'a Config,
    pub clock: &'a crate::clock::Clock,
    pub source: &'a str,
    pub username_context: Option<&'a str>,
    pub dry_run: bool,
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

impl Runner<'_> {
    /// Whether the next scheduled or requested run can be incremental: there is a watermark.
    pub async fn watermark(&self) -> Result<Option<i64>, SyncError> {
        Ok(store::state(self.db, self.source).await?.0)
    }

    /// Runs once. `fetch` reads the source (given the watermark for an incremental read);
    /// nothing is written before it has returned everything.
    pub async fn run<F, Fut>(
        &self,
        kind: RunKind,
        fetch: F,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Outcome, SyncError>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<Fetched, String>>,
    {
        let now = self.clock.now();
        if !store::take_lease(self.db, self.source, now, now + LEASE_SECONDS).await? {
            return Err(SyncError::Busy(self.source.to_string()));
        }
        let started = std::time::Instant::now();
        let result = self.run_leased(kind, fetch, progress, now).await;
        record_metrics(self.source, &result, started.elapsed().as_secs_f64());
        store::release_lease(self.db, self.source).await?;
        result
    }

    async fn run_leased<F, Fut>(
        &self,
        kind: RunKind,
        fetch: F,
        progress: &(dyn Fn(&str) + Send + Sync),
        now: i64,
    ) -> Result<Outcome, SyncError>
    where
        F: FnOnce(Option<i64>) -> Fut,
        Fut: Future<Output = Result<Fetched, String>>,
    {
        let watermark = match kind {
            RunKind::Full => None,
            RunKind::Incremental => store::state(self.db, self.source).await?.0,
        };
        // Without a watermark there is nothing to be incremental from.
        let kind = if watermark.is_none() {
            RunKind::Full
        } else {
            kind
        };
        let run_id = store::start_run(self.db, self.source, kind.as_str(), now).await?;
        let result = self
            .run_started(run_id, kind, watermark, fetch, progress, now)
            .await;
        if let Err(e) = &result {
            // Every way out of a started run leaves a record. The paths that know more (a
            // failed read, a failed apply) have written theirs already, and this touches only
            // a run still `running`; any other failure is recorded here with its reason.
            let reason = crate::error_chain(e);
            if let Err(record) = store::set_run_status(
                self.db,
                run_id,
                "running",
                "failed",
                Some(&reason),
                self.clock.now(),
            )
            .await
            {
                tracing::warn!(
                    source = %self.source,
                    "recording run {run_id} as failed failed too: {}",
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
        let fetched = match fetch(watermark).await {
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
        let today = crate::directory::roles::day_of(now);
        let scope = self.config.saml_scope();
        let settings = Settings {
            source: self.source,
            directory: &self.config.directory,
            eppn_scope: &scope,
            username_context: self.username_context,
            today,
        };
        let today_s = crate::directory::roles::format_date(today);
        progress("planning");
        let (plan, report) = match fetched {
            Fetched::Full(snapshot) => {
                let mut existing = store::load_full(self.db, self.source, &today_s).await?;
                existing.taken = self.taken(&snapshot.persons, &existing, &settings).await?;
                let report = snapshot.report.clone();
                (plan::full(snapshot, &existing, &settings), report)
            }
            Fetched::Incremental(changes) => {
                let c = &changes.changed;
                let refs = plan::incremental_person_refs(&changes);
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
                    &today_s,
                    &refs,
                    &children,
                    &groups,
                    &duties,
                )
                .await?;
                existing.taken = self.taken(&c.persons, &existing, &settings).await?;
                (
                    plan::incremental(&changes, &existing, &settings),
                    c.report.clone(),
                )
            }
        };
        progress("planned");
        let report = &report;
        let recent = self.recently_lost(now).await?;
        let hold = plan::guard(&plan, self.config.sync.max_deactivation_share, recent);
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
            let stored = serde_json::to_string(&HeldPlan {
                plan: &plan,
                watermark: next_watermark,
            })
            .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
            self.finish(
                run_id,
                "held",
                &plan.counts,
                report,
                &plan.diff,
                Some(&reason),
                Some(&stored),
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
        let mut plan = plan;
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

    /// People this source deactivated or re-bound in the last 24 hours (the guard's window).
    async fn recently_lost(&self, now: i64) -> Result<u64, SyncError> {
        let runs = store::changed_counts_since(self.db, self.source, now - GUARD_WINDOW).await?;
        Ok(runs
            .iter()
            .filter_map(|c| serde_json::from_value::<plan::Counts>(c.clone()).ok())
            .map(|c| c.deactivations + c.civic_changes)
            .sum())
    }

    async fn taken(
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
    async fn finish(
        &self,
        run_id: i64,
        status: &str,
        counts: &plan::Counts,
        report: &ParseReport,
        diff: &[plan::DiffEntry],
        reason: Option<&str>,
        held_plan: Option<&str>,
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
                plan: held_plan,
                watermark,
                finished: status != "held",
            },
            self.clock.now(),
        )
        .await?;
        Ok(())
    }
}

#[derive(serde::Serialize)]
struct HeldPlan<'a> {
    plan: &'a Plan,
    watermark: i64,
}

#[derive(serde::Deserialize)]
struct StoredPlan {
    plan: Plan,
    watermark: i64,
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
    // Groups carry their members: fewer per transaction.
    for rows in plan.groups.chunks((chunk / 20).max(1)) {
        store::apply_groups(conn, source, rows, &[]).await?;
    }
    store::apply_groups(conn, source, &[], &plan.remove_groups).await?;
    progress("applied groups");
    for rows in plan.duties.chunks(chunk) {
        store::apply_duties(conn, source, rows, &[]).await?;
    }
    store::apply_duties(conn, source, &[], &plan.remove_duties).await?;
    for rows in plan.status.chunks(chunk) {
        store::apply_status(conn, source, rows, now).await?;
    }
    progress("applied duties and status changes");
    Ok(())
}

/// The guard's rolling window: what several runs may deactivate together.
const GUARD_WINDOW: i64 = 24 * 3600;

/// Applies a held run's plan: the administrator has looked at it and said yes.
pub async fn approve(
    db: &Db,
    config: &Config,
    clock: &crate::clock::Clock,
    run_id: i64,
    actor: &str,
) -> Result<Outcome, SyncError> {
    let now = clock.now();
    let (run, stored) = store::run(db, run_id)
        .await?
        .ok_or(SyncError::NoRun(run_id))?;
    let Some(stored) = stored.filter(|_| run.status == "held") else {
        return Err(SyncError::NotHeld(run_id, run.status));
    };
    let StoredPlan {
        mut plan,
        watermark,
    } = serde_json::from_str(&stored).map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
    if !store::take_lease(db, &run.source, now, now + LEASE_SECONDS).await? {
        return Err(SyncError::Busy(run.source));
    }
    let result = async {
        if !store::set_run_status(db, run_id, "held", "approving", None, now).await? {
            return Err(SyncError::NotHeld(run_id, "no longer held".into()));
        }
        apply(db, config, &mut plan, &|_| {}, clock.now()).await?;
        store::set_state(
            db,
            &run.source,
            watermark,
            (plan.kind == RunKind::Full).then_some(now),
        )
        .await?;
        store::set_run_status(db, run_id, "approving", "approved", None, clock.now()).await?;
        storage::records::audit(
            db,
            "sync.approved",
            actor,
            &format!("run {run_id}"),
            clock.now(),
        )
        .await?;
        Ok(())
    }
    .await;
    if let Err(e) = &result {
        // An approval that stops part-way is recorded like a run whose apply stopped: the
        // next run plans again from what was applied. Only a run still `approving` is
        // touched, so a refusal before the apply began leaves the held run as it was.
        let reason = format!("applying stopped: {}", crate::error_chain(e));
        store::set_run_status(
            db,
            run_id,
            "approving",
            "failed",
            Some(&reason),
            clock.now(),
        )
        .await?;
    }
    store::release_lease(db, &run.source).await?;
    result?;
    Ok(Outcome {
        run_id,
        kind: plan.kind,
        status: Status::Applied,
        counts: plan.counts,
        report: ParseReport::default(),
        purged: 0,
    })
}

/// Discards a held run's plan; the watermark stays, so the next run reads the changes again.
pub async fn reject(db: &Db, run_id: i64, actor: &str, now: i64) -> Result<(), SyncError> {
    let (run, _) = store::run(db, run_id)
        .await?
        .ok_or(SyncError::NoRun(run_id))?;
    if !store::set_run_status(db, run_id, "held", "rejected", None, now).await? {
        return Err(SyncError::NotHeld(run_id, run.status));
    }
    storage::records::audit(db, "sync.rejected", actor, &format!("run {run_id}"), now).await?;
    Ok(())
}
/// The run's result, duration and changes in the process's metrics.
fn record_metrics(source: &str, result: &Result<Outcome, SyncError>, seconds: f64) {
    let (label, counts) = match result {
        Ok(o) => (
            match o.status {
                Status::Applied => "applied",
                Status::Held(_) => "held",
                Status::DryRun(_) => "dry_run",
            },
            Some(&o.counts),
        ),
        Err(SyncError::Busy(_)) => ("busy", None),
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
