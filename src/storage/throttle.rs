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

/// Reserves the one attempt in flight for `key`: sets `blocked_until` to `hold_until` in
/// one conditional statement, only if the key is not blocked at `now`. Two instances or two
/// requests racing for the same key cannot both win, so at most one hash runs per key.
/// Returns None when reserved, or the time the key is blocked until.
pub async fn reserve(db: &Db, key: &str, now: i64, hold_until: i64) -> Result<Option<i64>> {
    let won = sqlx::query(
        "INSERT INTO login_throttle (throttle_key, failures, last_failure, blocked_until) \
         VALUES ($1, 0, $2, $3) ON CONFLICT (throttle_key) DO UPDATE SET \
         blocked_until = excluded.blocked_until \
         WHERE login_throttle.blocked_until <= $2 RETURNING blocked_until",
    )
    .bind(key)
    .bind(now)
    .bind(hold_until)
    .fetch_optional(db.writer())
    .await?;
    if won.is_some() {
        return Ok(None);
    }
    // Lost: the winner's hold or a delay; a key deleted meanwhile just asks for a retry soon.
    Ok(Some(
        blocked_until(db, key)
            .await?
            .unwrap_or(now + 1)
            .max(now + 1),
    ))
}

/// Counts one attempt in the fixed window of `window` seconds that `now` falls in and
/// returns (attempts in the window, window start). One statement, so parallel requests
/// each see their own count. `failures` holds the count, `last_failure` the window start.
pub async fn count_in_window(db: &Db, key: &str, now: i64, window: i64) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "INSERT INTO login_throttle (throttle_key, failures, last_failure, blocked_until) \
         VALUES ($1, 1, $2, 0) ON CONFLICT (throttle_key) DO UPDATE SET \
         failures = CASE WHEN login_throttle.last_failure <= $3 THEN 1 \
                    ELSE login_throttle.failures + 1 END, \
         last_failure = CASE WHEN login_throttle.last_failure <= $3 THEN $2 \
                        ELSE login_throttle.last_failure END \
         RETURNING failures, last_failure",
    )
    .bind(key)
    .bind(now)
    .bind(now - window)
    .fetch_one(db.writer())
    .await?;
    Ok((row.try_get("failures")?, row.try_get("last_failure")?))
}

/// The failure count of `key` (0 when none).
pub async fn failures(db: &Db, key: &str) -> Result<i64> {
    let row = sqlx::query("SELECT failures FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get("failures")).transpose()?.unwrap_or(0))
}
