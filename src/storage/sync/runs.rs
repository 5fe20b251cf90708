//! sync_runs and sync_state: the record of each run (a held plan among it), the
//! incremental watermark, the time of the last full run and the lease of a source.

use crate::storage::{Db, Result, StorageError};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub counts: serde_json::Value,
    pub report: serde_json::Value,
    pub diff: serde_json::Value,
    pub reason: Option<String>,
    pub watermark: Option<i64>,
}

fn json_col(r: &AnyRow, col: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&r.try_get::<String, _>(col)?)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn run_from_row(r: &AnyRow) -> Result<RunRecord> {
    Ok(RunRecord {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        counts: json_col(r, "counts")?,
        report: json_col(r, "report")?,
        diff: json_col(r, "diff")?,
        reason: r.try_get("reason")?,
        watermark: r.try_get("watermark")?,
    })
}

pub async fn start_run(db: &Db, source: &str, kind: &str, now: i64) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO sync_runs (source, kind, status, started_at) VALUES ($1, $2, 'running', $3) \
         RETURNING id",
    )
    .bind(source)
    .bind(kind)
    .bind(now)
    .fetch_one(db.writer())
    .await?;
    Ok(row.try_get("id")?)
}

pub struct RunUpdate<'a> {
    pub status: &'a str,
    pub counts: &'a serde_json::Value,
    pub report: &'a serde_json::Value,
    pub diff: &'a serde_json::Value,
    pub reason: Option<&'a str>,
    /// A held plan, sealed (`sync::held`), and the digest of its changes.
    pub plan: Option<&'a str>,
    pub plan_hash: Option<&'a str>,
    pub watermark: Option<i64>,
    pub finished: bool,
}

pub async fn update_run(db: &Db, id: i64, u: &RunUpdate<'_>, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE sync_runs SET status = $2, counts = $3, report = $4, diff = $5, reason = $6, \
         plan = $7, watermark = $8, finished_at = CASE WHEN $9 = 1 THEN $10 ELSE NULL END, \
         plan_hash = $11 WHERE id = $1",
    )
    .bind(id)
    .bind(u.status)
    .bind(u.counts.to_string())
    .bind(u.report.to_string())
    .bind(u.diff.to_string())
    .bind(u.reason)
    .bind(u.plan)
    .bind(u.watermark)
    .bind(i64::from(u.finished))
    .bind(now)
    .bind(u.plan_hash)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Sets only the status (and the finish time), keeping the rest; `from` guards against two
/// administrators deciding the same run.
pub async fn set_run_status(
    db: &Db,
    id: i64,
    from: &str,
    to: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE sync_runs SET status = $3, reason = COALESCE($4, reason), finished_at = $5, \
         plan = CASE WHEN $3 = 'approving' THEN plan ELSE NULL END \
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(reason)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn run(db: &Db, id: i64) -> Result<Option<(RunRecord, Option<String>)>> {
    let row = sqlx::query("SELECT * FROM sync_runs WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| Ok((run_from_row(&r)?, r.try_get("plan")?)))
        .transpose()
}

pub async fn runs(db: &Db, limit: i64) -> Result<Vec<RunRecord>> {
    let rows = sqlx::query(
        "SELECT id, source, kind, status, started_at, finished_at, counts, report, diff, reason, \
         watermark FROM sync_runs ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(run_from_row).collect()
}

/// The counts of the runs of `source` that changed the directory (applied, or approved
/// after a hold) and finished at or after `since`: the guard's rolling window.
pub async fn changed_counts_since(
    db: &Db,
    source: &str,
    since: i64,
) -> Result<Vec<serde_json::Value>> {
    let rows = sqlx::query(
        "SELECT counts FROM sync_runs WHERE source = $1 AND status IN ('applied', 'approved') \
         AND finished_at >= $2",
    )
    .bind(source)
    .bind(since)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| json_col(r, "counts")).collect()
}

/// The source's incremental watermark and the time of its last full run.
pub async fn state(db: &Db, source: &str) -> Result<(Option<i64>, Option<i64>)> {
    let row = sqlx::query("SELECT watermark, last_full FROM sync_state WHERE source = $1")
        .bind(source)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => (r.try_get("watermark")?, r.try_get("last_full")?),
        None => (None, None),
    })
}

/// After an applied run: the new watermark (and the time of a full run); skips are over.
pub async fn set_state(db: &Db, source: &str, watermark: i64, full_at: Option<i64>) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_state (source, watermark, last_full) VALUES ($1, $2, $3) \
         ON CONFLICT (source) DO UPDATE SET watermark = excluded.watermark, \
         last_full = COALESCE(excluded.last_full, sync_state.last_full), \
         skipped_at = NULL, full_skipped_at = NULL",
    )
    .bind(source)
    .bind(watermark)
    .bind(full_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Takes the source's lease for `holder` until `until`, unless another holder's lease is
/// still running at `now`.
pub async fn take_lease(db: &Db, source: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
    sqlx::query(
        "INSERT INTO sync_state (source, lease_until) VALUES ($1, 0) ON CONFLICT (source) DO NOTHING",
    )
    .bind(source)
    .execute(db.writer())
    .await?;
    let r = sqlx::query(
        "UPDATE sync_state SET lease_until = $2, lease_holder = $4 \
         WHERE source = $1 AND lease_until < $3",
    )
    .bind(source)
    .bind(until)
    .bind(now)
    .bind(holder)
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The heartbeat: moves the end of `holder`'s lease to `until`. False when the lease is no
/// longer `holder`'s (unlocked by an operator, or taken over after it expired).
pub async fn renew_lease(db: &Db, source: &str, holder: &str, until: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE sync_state SET lease_until = $3 WHERE source = $1 AND lease_holder = $2 \
         AND lease_until > 0",
    )
    .bind(source)
    .bind(holder)
    .bind(until)
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Releases `holder`'s lease (a lease already taken by another holder stays theirs).
pub async fn release_lease(db: &Db, source: &str, holder: &str) -> Result<()> {
    sqlx::query(
        "UPDATE sync_state SET lease_until = 0, lease_holder = NULL \
         WHERE source = $1 AND lease_holder = $2",
    )
    .bind(source)
    .bind(holder)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Marks the runs of `source` still `running` or `approving` as `interrupted` with `reason`
/// (the caller holds the lease, so none of them is working any more); their ids.
pub async fn interrupt_runs(db: &Db, source: &str, reason: &str, now: i64) -> Result<Vec<i64>> {
    let rows = sqlx::query(
        "UPDATE sync_runs SET status = 'interrupted', reason = $2, finished_at = $3, plan = NULL \
         WHERE source = $1 AND status IN ('running', 'approving') RETURNING id",
    )
    .bind(source)
    .bind(reason)
    .bind(now)
    .fetch_all(db.writer())
    .await?;
    let mut ids = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<std::result::Result<Vec<i64>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// What `sync unlock` found and did.
#[derive(Debug, Clone)]
pub struct Unlocked {
    /// The end of the lease it released, if one was running at `now`.
    pub lease_until: Option<i64>,
    /// The runs it marked `interrupted`.
    pub runs: Vec<i64>,
}

/// Releases the lease of `source` whoever holds it and marks its unfinished runs
/// `interrupted`. `None` when the source has never run here.
pub async fn unlock(db: &Db, source: &str, reason: &str, now: i64) -> Result<Option<Unlocked>> {
    let row = sqlx::query("SELECT lease_until FROM sync_state WHERE source = $1")
        .bind(source)
        .fetch_optional(db.pool())
        .await?;
    let known_run = sqlx::query("SELECT id FROM sync_runs WHERE source = $1 LIMIT 1")
        .bind(source)
        .fetch_optional(db.pool())
        .await?
        .is_some();
    if row.is_none() && !known_run {
        return Ok(None);
    }
    let until: i64 = match &row {
        Some(r) => r.try_get("lease_until")?,
        None => 0,
    };
    // The runs first, then the lease: a run whose heartbeat sees its lease gone records
    // itself interrupted, and released first, it could do so before this did, so the
    // report missed the run it had stopped (seen once in CI on PostgreSQL).
    let runs = interrupt_runs(db, source, reason, now).await?;
    sqlx::query("UPDATE sync_state SET lease_until = 0, lease_holder = NULL WHERE source = $1")
        .bind(source)
        .execute(db.writer())
        .await?;
    Ok(Some(Unlocked {
        lease_until: (until >= now).then_some(until),
        runs,
    }))
}

/// The sources this database has state or runs for (for a message naming them).
pub async fn sources(db: &Db) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT source FROM sync_state UNION SELECT source FROM sync_runs ORDER BY source",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| Ok(r.try_get("source")?)).collect()
}

/// The oldest run of `source` waiting for an administrator: (id, started_at).
pub async fn held_run(db: &Db, source: &str) -> Result<Option<(i64, i64)>> {
    let row = sqlx::query(
        "SELECT id, started_at FROM sync_runs WHERE source = $1 AND status = 'held' \
         ORDER BY id LIMIT 1",
    )
    .bind(source)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("started_at")?)))
        .transpose()
}

/// The newest rejected run of `source` whose plan had digest `hash`.
pub async fn rejected_with_hash(db: &Db, source: &str, hash: &str) -> Result<Option<i64>> {
    run_with_hash(db, source, "rejected", hash).await
}

/// The source's held run whose plan has this digest (a client retrying a held change).
pub async fn held_with_hash(db: &Db, source: &str, hash: &str) -> Result<Option<i64>> {
    run_with_hash(db, source, "held", hash).await
}

async fn run_with_hash(db: &Db, source: &str, status: &str, hash: &str) -> Result<Option<i64>> {
    let row = sqlx::query(
        "SELECT id FROM sync_runs WHERE source = $1 AND status = $2 AND plan_hash = $3 \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(source)
    .bind(status)
    .bind(hash)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

/// Removes a run record still `running`: a scheduled run that found only a rejected plan
/// leaves no row (the log says so), so a paused source does not grow the history.
pub async fn forget_run(db: &Db, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM sync_runs WHERE id = $1 AND status = 'running'")
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// What the schedule decides by, besides the watermark and the last full run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// The last scheduled run (of any kind) that found only a rejected plan.
    pub any: Option<i64>,
    /// The last such full run.
    pub full: Option<i64>,
}

pub async fn skipped(db: &Db, source: &str) -> Result<Skipped> {
    let row = sqlx::query("SELECT skipped_at, full_skipped_at FROM sync_state WHERE source = $1")
        .bind(source)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => Skipped {
            any: r.try_get("skipped_at")?,
            full: r.try_get("full_skipped_at")?,
        },
        None => Skipped::default(),
    })
}

/// Records that a scheduled run of `source` found only a rejected plan at `now`.
pub async fn set_skipped(db: &Db, source: &str, full: bool, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE sync_state SET skipped_at = $2, \
         full_skipped_at = CASE WHEN $3 = 1 THEN $2 ELSE full_skipped_at END WHERE source = $1",
    )
    .bind(source)
    .bind(now)
    .bind(i64::from(full))
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The username of the first active person of `source` with a duty of `role` (the demo's
/// teacher and principal).
pub async fn first_with_duty(db: &Db, source: &str, role: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT p.username FROM duties d JOIN persons p ON p.id = d.person_id \
         WHERE d.source = $1 AND d.duty_role = $2 AND p.status = 'active' \
         ORDER BY p.username LIMIT 1",
    )
    .bind(source)
    .bind(role)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| r.try_get("username")).transpose()?)
}

/// The push source's applied run started at or after `since`, with its counts and diff:
/// a push's changes join it, so one run per time window records them.
pub async fn open_push_run(
    db: &Db,
    source: &str,
    since: i64,
) -> Result<Option<(i64, serde_json::Value, serde_json::Value)>> {
    let row = sqlx::query(
        "SELECT id, counts, diff FROM sync_runs WHERE source = $1 AND kind = 'push' \
         AND status = 'applied' AND started_at >= $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(source)
    .bind(since)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok((
            r.try_get("id")?,
            json_col(&r, "counts")?,
            json_col(&r, "diff")?,
        ))
    })
    .transpose()
}
