//! Purges by age: the history tables (release records, audit events, sync runs) and SSO
//! sessions after they ended. Each statement deletes at most `BATCH` rows found through an
//! index on the age column (migration 0012), so a purge never holds the database for long
//! and other writers (logins, a sync) get their turn between statements.

use super::{Db, Result, affected};
use sqlx::Row;

/// Rows per statement.
pub const BATCH: i64 = 1000;
/// Statements per table in one purge; what is left waits for the next housekeeping round,
/// so a first purge of years of records cannot occupy one round for long.
const MAX_BATCHES: usize = 500;

/// The oldest time (unix seconds) kept of each kind: rows before it go.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub release_records: i64,
    /// Audit events of kind `login.*`.
    pub login_events: i64,
    /// Every other audit event.
    pub audit_events: i64,
    pub sync_runs: i64,
    /// Diffs and plans of finished sync runs.
    pub sync_details: i64,
    /// SSO sessions, counted from their end (logout) or expiry.
    pub ended_sessions: i64,
}

/// What a purge removed (sync details: runs whose diff and plan were cleared).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub release_records: u64,
    pub login_events: u64,
    pub audit_events: u64,
    pub sync_runs: u64,
    pub sync_details: u64,
    pub sessions: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.release_records
            + self.login_events
            + self.audit_events
            + self.sync_runs
            + self.sync_details
            + self.sessions
    }
}

/// Runs whose row is not history yet: still working, or waiting for an administrator.
const UNFINISHED: &str = "('running', 'held', 'approving')";

/// Purges everything older than its cutoff.
pub async fn purge(db: &Db, c: &Cutoffs) -> Result<Purged> {
    const LOGIN: &str = " AND kind LIKE 'login.%'";
    const OTHER: &str = " AND kind NOT LIKE 'login.%'";
    let release_records = delete_sql("release_records", "created_at", "");
    let details = format!(
        "UPDATE sync_runs SET diff = '[]', plan = NULL WHERE id IN (SELECT id FROM sync_runs \
         WHERE (diff <> '[]' OR plan IS NOT NULL) AND finished_at < $1 \
         AND status NOT IN {UNFINISHED} LIMIT $2)"
    );
    // Sessions in two statements, each finding its rows through its own index. A session's
    // participants, refresh tokens and SAML subjects go with it (ON DELETE CASCADE).
    let ended = delete_sql("sso_sessions", "ended_at", "");
    let expired = delete_sql("sso_sessions", "expires_at", "");
    Ok(Purged {
        release_records: batches(db, &release_records, c.release_records).await?,
        login_events: batches(db, &delete_sql("audit_events", "at", LOGIN), c.login_events).await?,
        audit_events: batches(db, &delete_sql("audit_events", "at", OTHER), c.audit_events).await?,
        sync_details: batches(db, &details, c.sync_details).await?,
        sync_runs: purge_sync_runs(db, c.sync_runs).await?,
        sessions: batches(db, &ended, c.ended_sessions).await?
            + batches(db, &expired, c.ended_sessions).await?,
    })
}

/// A `DELETE` of at most `$2` rows of `table` whose `column` is before `$1` and that match
/// `filter` (`""` or ` AND …`).
fn delete_sql(table: &str, column: &str, filter: &str) -> String {
    format!(
        "DELETE FROM {table} WHERE id IN \
         (SELECT id FROM {table} WHERE {column} < $1{filter} LIMIT $2)"
    )
}

/// Finished runs before `before`, except each source's newest successful run: how long ago
/// a source last synced stays known however long it has been.
async fn purge_sync_runs(db: &Db, before: i64) -> Result<u64> {
    let keep: Vec<i64> = sqlx::query(
        "SELECT MAX(id) AS id FROM sync_runs WHERE status IN ('applied', 'approved') \
         GROUP BY source",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| r.try_get::<i64, _>("id"))
    .collect::<std::result::Result<_, _>>()?;
    let kept = if keep.is_empty() {
        String::new()
    } else {
        format!(" AND id NOT IN ({})", super::in_list(3, keep.len()))
    };
    let sql = format!(
        "DELETE FROM sync_runs WHERE id IN (SELECT id FROM sync_runs WHERE finished_at < $1 \
         AND status NOT IN {UNFINISHED}{kept} LIMIT $2)"
    );
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(before)
            .bind(BATCH);
        for id in &keep {
            q = q.bind(*id);
        }
        let n = affected(q.execute(db.writer()).await?);
        total += n;
        if n < BATCH as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}

/// Runs `sql` (binding the cutoff as $1 and `BATCH` as $2) until a statement touches fewer
/// than `BATCH` rows.
async fn batches(db: &Db, sql: &str, before: i64) -> Result<u64> {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let n = affected(
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(before)
                .bind(BATCH)
                .execute(db.writer())
                .await?,
        );
        total += n;
        if n < BATCH as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}
