//! admin_sessions: an administrator's session at /admin, on top of an SSO session.

use super::{Db, Result};
use sqlx::Row;

/// Who an admin session belongs to.
#[derive(Debug, Clone)]
pub struct AdminSessionRow {
    pub person_id: String,
    pub sso_session_id: String,
}

pub async fn insert_session(
    db: &Db,
    id: &str,
    sso_session_id: &str,
    person_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_sessions (id, sso_session_id, person_id, created_at, last_seen) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id)
    .bind(sso_session_id)
    .bind(person_id)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The session `id` if it was used within `idle` seconds and its SSO session is live (not
/// ended, not past its lifetime); it is then marked used at `now`. One statement, so two
/// instances agree.
pub async fn touch_session(
    db: &Db,
    id: &str,
    idle: i64,
    now: i64,
) -> Result<Option<AdminSessionRow>> {
    let row = sqlx::query(
        "UPDATE admin_sessions SET last_seen = $2 WHERE id = $1 AND last_seen > $3 \
         AND EXISTS (SELECT 1 FROM sso_sessions s WHERE s.id = admin_sessions.sso_session_id \
                     AND s.ended_at IS NULL AND s.expires_at > $2) \
         RETURNING person_id, sso_session_id",
    )
    .bind(id)
    .bind(now)
    .bind(now - idle)
    .fetch_optional(db.writer())
    .await?;
    row.map(|r| {
        Ok(AdminSessionRow {
            person_id: r.try_get("person_id")?,
            sso_session_id: r.try_get("sso_session_id")?,
        })
    })
    .transpose()
}

pub async fn end_session(db: &Db, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM admin_sessions WHERE id = $1")
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Drops sessions unused since `before` (housekeeping).
pub async fn purge_idle(db: &Db, before: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM admin_sessions WHERE last_seen < $1")
        .bind(before)
        .execute(db.writer())
        .await?;
    Ok(super::affected(r))
}
