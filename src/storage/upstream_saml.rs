//! Sessions that came from an upstream SAML IdP (`upstream_saml_sessions`), for its single
//! logout.

use super::{Db, Result};
use sqlx::Row;

/// Records what the upstream called the person of `session_id` (a newer login through the
/// same upstream replaces what a session took over from its predecessor).
pub async fn insert(
    db: &Db,
    session_id: &str,
    upstream: &str,
    name_id: &str,
    session_index: Option<&str>,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstream_saml_sessions (session_id, upstream, name_id, session_index, \
         expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, upstream) DO UPDATE \
         SET name_id = excluded.name_id, session_index = excluded.session_index, \
         expires_at = excluded.expires_at",
    )
    .bind(session_id)
    .bind(upstream)
    .bind(name_id)
    .bind(session_index)
    .bind(expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The sessions the upstream knows by `name_id`, with their SessionIndex: (session id, index).
pub async fn by_name_id(
    db: &Db,
    upstream: &str,
    name_id: &str,
    now: i64,
) -> Result<Vec<(String, Option<String>)>> {
    let rows = sqlx::query(
        "SELECT session_id, session_index FROM upstream_saml_sessions \
         WHERE upstream = $1 AND name_id = $2 AND expires_at > $3",
    )
    .bind(upstream)
    .bind(name_id)
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("session_id")?, r.try_get("session_index")?)))
        .collect()
}

/// What the upstream called the person of `session_id`: (upstream, NameID, SessionIndex).
pub async fn by_session(
    db: &Db,
    session_id: &str,
) -> Result<Option<(String, String, Option<String>)>> {
    let row = sqlx::query(
        "SELECT upstream, name_id, session_index FROM upstream_saml_sessions \
         WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok((
            r.try_get("upstream")?,
            r.try_get("name_id")?,
            r.try_get("session_index")?,
        ))
    })
    .transpose()
}

/// The same person logged in again (`sessions::replace_session`): the new session keeps what
/// the upstream called them, so the upstream's logout and ours still reach each other.
pub async fn move_sessions(
    conn: &mut sqlx::AnyConnection,
    from: &str,
    to: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE upstream_saml_sessions SET session_id = $2, expires_at = $3 WHERE session_id = $1",
    )
    .bind(from)
    .bind(to)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets what an upstream called the person of `session_id`: the upstream itself is ending
/// that session, so no LogoutRequest is to go back to it.
pub async fn forget(db: &Db, session_id: &str, upstream: &str) -> Result<()> {
    sqlx::query("DELETE FROM upstream_saml_sessions WHERE session_id = $1 AND upstream = $2")
        .bind(session_id)
        .bind(upstream)
        .execute(db.writer())
        .await?;
    Ok(())
}
