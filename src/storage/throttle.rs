//! login_throttle: failed-attempt counters per (account, source address), shared by all
//! instances. The key is a hash, so the table names no account.

use super::{Db, Result};
use sqlx::Row;

/// The time before which another attempt is refused; None when no failure is counted.
pub async fn blocked_until(db: &Db, key: &str) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT blocked_until FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get("blocked_until")).transpose()?)
}

/// Counts one failure and returns the new failure count.
pub async fn record_failure(db: &Db, key: &str, now: i64) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO login_throttle (throttle_key, failures, last_failure, blocked_until) \
         VALUES ($1, 1, $2, 0) ON CONFLICT (throttle_key) DO UPDATE SET \
         failures = login_throttle.failures + 1, last_failure = excluded.last_failure \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .fetch_one(db.writer())
    .await?;
    Ok(row.try_get("failures")?)
}

pub async fn set_blocked_until(db: &Db, key: &str, until: i64) -> Result<()> {
    sqlx::query("UPDATE login_throttle SET blocked_until = $2 WHERE throttle_key = $1")
        .bind(key)
        .bind(until)
        .execute(db.writer())
        .await?;
    Ok(())
}

pub async fn clear(db: &Db, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Forgets counters whose last failure is older than `before`.
pub async fn purge(db: &Db, before: i64) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE last_failure < $1")
        .bind(before)
        .execute(db.writer())
        .await?;
    Ok(())
}
