//! sso_sessions, session_participants, authn_transactions.

use super::{Db, Result, affected};
use sqlx::Row;
use sqlx::any::AnyRow;

/// An SSO session as stored. `id` is the SHA-256 of the cookie value; `methods` is JSON
/// owned by `authn::session`.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: String,
    pub sid: String,
    pub person_id: String,
    pub methods: String,
    pub acr: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
}

fn session_from_row(r: &AnyRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.try_get("id")?,
        sid: r.try_get("sid")?,
        person_id: r.try_get("person_id")?,
        methods: r.try_get("methods")?,
        acr: r.try_get("acr")?,
        auth_time: r.try_get("auth_time")?,
        created_at: r.try_get("created_at")?,
        last_seen: r.try_get("last_seen")?,
        expires_at: r.try_get("expires_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

macro_rules! session_columns {
    () => {
        "id, sid, person_id, methods, acr, auth_time, created_at, last_seen, expires_at, ended_at"
    };
}

pub async fn insert_session(db: &Db, s: &SessionRecord) -> Result<()> {
    let mut conn = db.writer().acquire().await?;
    insert_session_on(&mut conn, s).await
}

async fn insert_session_on(conn: &mut sqlx::AnyConnection, s: &SessionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO sso_sessions (id, sid, person_id, methods, acr, auth_time, created_at, \
         last_seen, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.id)
    .bind(&s.sid)
    .bind(&s.person_id)
    .bind(&s.methods)
    .bind(&s.acr)
    .bind(s.auth_time)
    .bind(s.created_at)
    .bind(s.last_seen)
    .bind(s.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_session(db: &Db, id: &str) -> Result<Option<SessionRecord>> {
    let sql = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sso_sessions WHERE id = $1"
    );
    let row = sqlx::query(sql).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(session_from_row).transpose()
}

pub async fn get_session_by_sid(db: &Db, sid: &str) -> Result<Option<SessionRecord>> {
    let sql = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sso_sessions WHERE sid = $1"
    );
    let row = sqlx::query(sql).bind(sid).fetch_optional(db.pool()).await?;
    row.as_ref().map(session_from_row).transpose()
}

pub async fn touch_session(db: &Db, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE sso_sessions SET last_seen = $2 WHERE id = $1 AND ended_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Ends a session and revokes its refresh tokens in one transaction; true if this call ended
/// it (false if it was already ended or unknown).
pub async fn end_session(db: &Db, id: &str, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let ended = end_session_in(&mut tx, id, now).await?;
    tx.commit().await?;
    Ok(ended)
}

/// `end_session` in the caller's transaction (the admin UI's audit event shares it).
pub async fn end_session_in(tx: &mut super::Tx, id: &str, now: i64) -> Result<bool> {
    let conn = tx.conn();
    let ended = end_session_on(conn, id, now).await?;
    if ended {
        super::tokens::revoke_session_refresh(conn, id).await?;
    }
    Ok(ended)
}

async fn end_session_on(conn: &mut sqlx::AnyConnection, id: &str, now: i64) -> Result<bool> {
    let r = sqlx::query("UPDATE sso_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(affected(r) == 1)
}

/// The same person logged in again: in one transaction, inserts the new session, gives it the
/// previous one's relying parties, SAML subjects, upstream sessions and refresh tokens,
/// and ends the previous one.
/// False (and nothing written) if the previous session had already ended meanwhile.
pub async fn replace_session(
    db: &Db,
    new: &SessionRecord,
    previous: &str,
    now: i64,
) -> Result<bool> {
    let mut tx = db.begin().await?;
    let conn = tx.conn();
    if !end_session_on(conn, previous, now).await? {
        return Ok(false);
    }
    insert_session_on(conn, new).await?;
    sqlx::query(
        "INSERT INTO session_participants (session_id, rp_id, protocol, first_at) \
         SELECT $2, rp_id, protocol, first_at FROM session_participants WHERE session_id = $1 \
         ON CONFLICT DO NOTHING",
    )
    .bind(previous)
    .bind(&new.id)
    .execute(&mut *conn)
    .await?;
    super::saml::move_subjects(conn, previous, &new.id).await?;
    super::upstream_saml::move_sessions(conn, previous, &new.id, new.expires_at).await?;
    super::upstream::move_session_token(conn, previous, &new.id).await?;
    super::tokens::move_session_refresh(conn, previous, &new.id).await?;
    tx.commit().await?;
    Ok(true)
}

/// The live sessions of a person other than `keep`.
pub async fn live_for_person(
    db: &Db,
    person_id: &str,
    keep: &str,
    now: i64,
) -> Result<Vec<SessionRecord>> {
    let sql = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sso_sessions WHERE person_id = $1 AND id <> $2 AND ended_at IS NULL \
         AND expires_at > $3"
    );
    let rows = sqlx::query(sql)
        .bind(person_id)
        .bind(keep)
        .bind(now)
        .fetch_all(db.writer())
        .await?;
    rows.iter().map(session_from_row).collect()
}

pub async fn add_participant(
    db: &Db,
    session_id: &str,
    rp_id: &str,
    protocol: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO session_participants (session_id, rp_id, protocol, first_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(session_id)
    .bind(rp_id)
    .bind(protocol)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The relying parties a session was used for: (rp_id, protocol).
pub async fn participants(db: &Db, session_id: &str) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT rp_id, protocol FROM session_participants WHERE session_id = $1 ORDER BY first_at",
    )
    .bind(session_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("rp_id")?, r.try_get("protocol")?)))
        .collect()
}

#[derive(Debug, Clone)]
pub struct TransactionRecord {
    pub id: String,
    pub protocol: String,
    pub rp_id: String,
    pub request: String,
    pub session_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_transaction(db: &Db, t: &TransactionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO authn_transactions (id, protocol, rp_id, request, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&t.id)
    .bind(&t.protocol)
    .bind(&t.rp_id)
    .bind(&t.request)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn get_transaction(db: &Db, id: &str, now: i64) -> Result<Option<TransactionRecord>> {
    let row = sqlx::query(
        "SELECT id, protocol, rp_id, request, session_id, created_at, expires_at \
         FROM authn_transactions \
         WHERE id = $1 AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(TransactionRecord {
            id: r.try_get("id")?,
            protocol: r.try_get("protocol")?,
            rp_id: r.try_get("rp_id")?,
            request: r.try_get("request")?,
            session_id: r.try_get("session_id")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Records that a login for this transaction created `session_id`.
pub async fn complete_transaction(db: &Db, id: &str, session_id: &str) -> Result<()> {
    sqlx::query("UPDATE authn_transactions SET session_id = $2 WHERE id = $1")
        .bind(id)
        .bind(session_id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Deletes a transaction; true if this call removed it (so only one resume can win).
pub async fn take_transaction(db: &Db, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM authn_transactions WHERE id = $1")
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(affected(r) == 1)
}

/// Removes expired login transactions. Sessions that ended or expired are kept for
/// `[retention] ended_sessions_days` and purged by `retention::purge`.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let a = sqlx::query("DELETE FROM authn_transactions WHERE expires_at <= $1")
        .bind(now)
        .execute(db.writer())
        .await?;
    Ok(affected(a))
}

/// Ends the live SSO sessions of these people at `now`, on `conn` (inside the caller's
/// transaction: the sync ends them with the deactivation that causes it).
pub async fn end_for_persons(
    conn: &mut sqlx::AnyConnection,
    person_ids: &[&str],
    now: i64,
) -> Result<()> {
    for chunk in person_ids.chunks(super::IN_LIST) {
        let sql = format!(
            "UPDATE sso_sessions SET ended_at = $1 WHERE ended_at IS NULL AND person_id IN ({})",
            super::in_list(2, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A person's newest sessions, live or ended (their recent logins), newest first, through
/// the `sso_sessions_person` index.
pub async fn recent_for_person(db: &Db, person_id: &str, limit: i64) -> Result<Vec<SessionRecord>> {
    let sql = concat!(
        "SELECT ",
        session_columns!(),
        " FROM sso_sessions WHERE person_id = $1 ORDER BY created_at DESC, id LIMIT $2"
    );
    let rows = sqlx::query(sql)
        .bind(person_id)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(session_from_row).collect()
}
