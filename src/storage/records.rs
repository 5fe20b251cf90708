//! release_records and audit_events: append-only history.

use super::{Db, Result};
use sqlx::Row;

/// One issuance: which claims went to which relying party about whom.
pub async fn insert_release(
    db: &Db,
    person_id: &str,
    rp_id: &str,
    protocol: &str,
    artifact: &str,
    claims: &[String],
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO release_records (person_id, rp_id, protocol, artifact, claims, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(person_id)
    .bind(rp_id)
    .bind(protocol)
    .bind(artifact)
    .bind(super::json_list(claims))
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ReleaseRecord {
    pub rp_id: String,
    pub artifact: String,
    pub claims: Vec<String>,
    pub created_at: i64,
}

pub async fn releases_for_person(db: &Db, person_id: &str) -> Result<Vec<ReleaseRecord>> {
    let rows = sqlx::query(
        "SELECT rp_id, artifact, claims, created_at FROM release_records WHERE person_id = $1 \
         ORDER BY id",
    )
    .bind(person_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReleaseRecord {
                rp_id: r.try_get("rp_id")?,
                artifact: r.try_get("artifact")?,
                claims: super::parse_list(&r.try_get::<String, _>("claims")?)?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// One release as the admin UI lists it.
#[derive(Debug, Clone)]
pub struct RecentRelease {
    pub rp_id: String,
    pub protocol: String,
    pub claims: Vec<String>,
    pub created_at: i64,
}

/// A person's newest releases, newest first: the `release_records_person` index finds the
/// person's rows, so only those are sorted.
pub async fn recent_releases(db: &Db, person_id: &str, limit: i64) -> Result<Vec<RecentRelease>> {
    let rows = sqlx::query(
        "SELECT rp_id, protocol, claims, created_at FROM release_records WHERE person_id = $1 \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(person_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RecentRelease {
                rp_id: r.try_get("rp_id")?,
                protocol: r.try_get("protocol")?,
                claims: super::parse_list(&r.try_get::<String, _>("claims")?)?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn audit(db: &Db, kind: &str, actor: &str, detail: &str, now: i64) -> Result<()> {
    let mut conn = db.writer().acquire().await?;
    audit_on(&mut conn, kind, actor, detail, now).await
}

/// An audit event on `conn`, inside the caller's transaction (written with the change).
pub async fn audit_on(
    conn: &mut sqlx::AnyConnection,
    kind: &str,
    actor: &str,
    detail: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_events (at, kind, actor, detail) VALUES ($1, $2, $3, $4)")
        .bind(now)
        .bind(kind)
        .bind(actor)
        .bind(detail)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// An audit event in the caller's transaction `tx`.
pub async fn audit_in(
    tx: &mut super::Tx,
    kind: &str,
    actor: &str,
    detail: &str,
    now: i64,
) -> Result<()> {
    audit_on(tx.conn(), kind, actor, detail, now).await
}

/// The newest audit event of `kind` whose detail starts with `prefix`: (at, detail).
pub async fn last_audit(db: &Db, kind: &str, prefix: &str) -> Result<Option<(i64, String)>> {
    let row = sqlx::query(
        "SELECT at, detail FROM audit_events WHERE kind = $1 \
         AND substr(detail, 1, CAST($2 AS INTEGER)) = $3 \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(kind)
    .bind(prefix.chars().count() as i64)
    .bind(prefix)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| Ok((r.try_get("at")?, r.try_get("detail")?)))
        .transpose()
}

/// The most recent audit events, newest first: (at, kind, actor, detail).
pub async fn recent_audit(db: &Db, limit: i64) -> Result<Vec<(i64, String, String, String)>> {
    recent(
        "SELECT at, kind, actor, detail FROM audit_events ORDER BY id DESC LIMIT $1",
        db,
        limit,
    )
    .await
}

/// The most recent audit events but the login feed (`login.*`, one or more per login), for
/// the admin's start page: (at, kind, actor, detail).
pub async fn recent_changes(db: &Db, limit: i64) -> Result<Vec<(i64, String, String, String)>> {
    let sql = "SELECT at, kind, actor, detail FROM audit_events WHERE kind NOT LIKE 'login.%' \
               ORDER BY id DESC LIMIT $1";
    recent(sql, db, limit).await
}

async fn recent(
    sql: &'static str,
    db: &Db,
    limit: i64,
) -> Result<Vec<(i64, String, String, String)>> {
    let rows = sqlx::query(sql).bind(limit).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("at")?,
                r.try_get("kind")?,
                r.try_get("actor")?,
                r.try_get("detail")?,
            ))
        })
        .collect()
}
