//! auth_codes, refresh_tokens, revoked_tokens. Codes and refresh tokens are stored only as
//! SHA-256 hashes. Each is consumed by one conditional UPDATE, so two instances on one
//! database can never both redeem it.

use super::{Db, Result, affected};
use sqlx::Row;
use sqlx::any::AnyRow;

/// What a code or refresh token stands for. `grant_data` is JSON owned by `oidc`.
#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub person_id: String,
    pub session_id: String,
    pub grant_data: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The result of trying to consume a single-use token.
#[derive(Debug)]
pub enum Consumed {
    /// This call consumed it.
    Now(GrantRecord),
    /// It had been consumed (or revoked) before: a replay. Carries what to revoke.
    Before {
        record: GrantRecord,
        access_jti: Option<String>,
        access_expires_at: Option<i64>,
    },
    /// Unknown or expired.
    Missing,
    /// Issued to another client: not consumed, so the client it was issued to can still
    /// redeem it.
    OtherClient,
}

pub async fn insert_code(db: &Db, c: &GrantRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, client_id, person_id, session_id, grant_data, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.token_hash)
    .bind(&c.client_id)
    .bind(&c.person_id)
    .bind(&c.session_id)
    .bind(&c.grant_data)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// `insert_code` and `sessions::add_participant` (the session was used for `c.client_id`
/// over `protocol`) in one round trip: an SSO authorization writes both, and every
/// statement is a hand-off to sqlx's connection thread (docs/benchmarks.md, issue 16).
/// On SQLite two statements in one call (two autocommits, as before); on PostgreSQL one
/// statement with a data-modifying CTE.
pub async fn insert_code_for_session(db: &Db, c: &GrantRecord, protocol: &str) -> Result<()> {
    const CODE: &str = "INSERT INTO auth_codes (code_hash, client_id, person_id, session_id, \
         grant_data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    const PARTICIPANT: &str = "INSERT INTO session_participants (session_id, rp_id, protocol, \
         first_at) VALUES ($4, $2, $8, $6) ON CONFLICT DO NOTHING";
    static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        [
            format!("{CODE}; {PARTICIPANT}"),
            format!("WITH code AS ({CODE}) {PARTICIPANT}"),
        ]
    });
    sqlx::query(sqlx::AssertSqlSafe(both(db, &SQL)))
        .bind(&c.token_hash)
        .bind(&c.client_id)
        .bind(&c.person_id)
        .bind(&c.session_id)
        .bind(&c.grant_data)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(protocol)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// A release record (`records::insert_release`'s row).
pub struct Release<'a> {
    pub person_id: &'a str,
    pub rp_id: &'a str,
    pub protocol: &'a str,
    pub artifact: &'a str,
    pub claims: &'a [String],
    pub at: i64,
}

/// What a token response writes, in one round trip: its release record and, when the
/// client may refresh, the new refresh token (`insert_refresh`). As in
/// `insert_code_for_session`, two statements on SQLite and a CTE on PostgreSQL.
pub async fn record_issue(
    db: &Db,
    release: &Release<'_>,
    refresh: Option<&GrantRecord>,
) -> Result<()> {
    let Some(t) = refresh else {
        return super::records::insert_release(
            db,
            release.person_id,
            release.rp_id,
            release.protocol,
            release.artifact,
            release.claims,
            release.at,
        )
        .await;
    };
    const RELEASE: &str = "INSERT INTO release_records (person_id, rp_id, protocol, artifact, \
         claims, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    const REFRESH: &str = "INSERT INTO refresh_tokens (token_hash, family_id, client_id, \
         person_id, session_id, grant_data, created_at, expires_at) \
         VALUES ($7, $8, $9, $10, $11, $12, $13, $14)";
    static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        [
            format!("{RELEASE}; {REFRESH}"),
            format!("WITH release AS ({RELEASE}) {REFRESH}"),
        ]
    });
    let q = sqlx::query(sqlx::AssertSqlSafe(both(db, &SQL)))
        .bind(release.person_id)
        .bind(release.rp_id)
        .bind(release.protocol)
        .bind(release.artifact)
        .bind(super::json_list(release.claims))
        .bind(release.at);
    bind_refresh(q, t).execute(db.writer()).await?;
    Ok(())
}

/// The SQLite (first) or PostgreSQL (second) form of a statement.
fn both<'a>(db: &Db, sql: &'a [String; 2]) -> &'a str {
    match db.backend() {
        super::Backend::Sqlite => &sql[0],
        super::Backend::Postgres => &sql[1],
    }
}

fn code_from_row(r: &AnyRow) -> Result<GrantRecord> {
    let hash: String = r.try_get("code_hash")?;
    Ok(GrantRecord {
        family_id: hash.clone(),
        token_hash: hash,
        client_id: r.try_get("client_id")?,
        person_id: r.try_get("person_id")?,
        session_id: r.try_get("session_id")?,
        grant_data: r.try_get("grant_data")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Consumes a code in one conditional UPDATE. The id and expiry of the access token about to
/// be issued are recorded in the same statement, so a later replay can revoke that token.
/// Consumes a code for `client_id`, the authenticated client. A code of another client is
/// left as it is: whoever holds a stolen code cannot burn it (or, by a replay, revoke what the
/// right client was issued).
pub async fn consume_code(
    db: &Db,
    code_hash: &str,
    client_id: &str,
    access_jti: &str,
    access_expires_at: i64,
    now: i64,
) -> Result<Consumed> {
    let won = sqlx::query(
        "UPDATE auth_codes SET consumed_at = $2, access_jti = $3, access_expires_at = $4 \
         WHERE code_hash = $1 AND client_id = $5 AND consumed_at IS NULL \
         RETURNING code_hash, client_id, person_id, session_id, grant_data, created_at, expires_at",
    )
    .bind(code_hash)
    .bind(now)
    .bind(access_jti)
    .bind(access_expires_at)
    .bind(client_id)
    .fetch_optional(db.writer())
    .await?;
    if let Some(row) = won {
        let record = code_from_row(&row)?;
        if record.expires_at <= now {
            return Ok(Consumed::Missing);
        }
        return Ok(Consumed::Now(record));
    }
    // The rare path: tell a replay from an unknown code or another client's.
    let row = sqlx::query(
        "SELECT code_hash, client_id, person_id, session_id, grant_data, created_at, expires_at, \
         access_jti, access_expires_at FROM auth_codes WHERE code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(db.writer())
    .await?;
    match row {
        None => Ok(Consumed::Missing),
        Some(row) if row.try_get::<String, _>("client_id")? != client_id => {
            Ok(Consumed::OtherClient)
        }
        Some(row) => Ok(Consumed::Before {
            record: code_from_row(&row)?,
            access_jti: row.try_get("access_jti")?,
            access_expires_at: row.try_get("access_expires_at")?,
        }),
    }
}

pub async fn insert_refresh(db: &Db, t: &GrantRecord) -> Result<()> {
    let q = sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, person_id, session_id, \
         grant_data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    );
    bind_refresh(q, t).execute(db.writer()).await?;
    Ok(())
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a refresh token's eight columns, in `refresh_tokens`' order, after `q`'s others.
fn bind_refresh<'q>(q: AnyQuery<'q>, t: &'q GrantRecord) -> AnyQuery<'q> {
    q.bind(&t.token_hash)
        .bind(&t.family_id)
        .bind(&t.client_id)
        .bind(&t.person_id)
        .bind(&t.session_id)
        .bind(&t.grant_data)
        .bind(t.created_at)
        .bind(t.expires_at)
}

fn refresh_from_row(r: &AnyRow) -> Result<GrantRecord> {
    Ok(GrantRecord {
        token_hash: r.try_get("token_hash")?,
        family_id: r.try_get("family_id")?,
        client_id: r.try_get("client_id")?,
        person_id: r.try_get("person_id")?,
        session_id: r.try_get("session_id")?,
        grant_data: r.try_get("grant_data")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

macro_rules! refresh_columns {
    () => {
        "token_hash, family_id, client_id, person_id, session_id, \
    grant_data, created_at, expires_at, consumed_at, revoked"
    };
}

/// Consumes a refresh token of `client_id`; another client's token is never consumed. The
/// family ends with its SSO session: a token whose session has ended or passed its absolute
/// lifetime (`[session] absolute_ttl`) is not consumed (and is answered as unknown), which
/// also refuses a token issued by a refresh that raced the logout.
pub async fn consume_refresh(
    db: &Db,
    token_hash: &str,
    client_id: &str,
    now: i64,
) -> Result<Consumed> {
    let won = sqlx::query(
        "UPDATE refresh_tokens SET consumed_at = $2 WHERE token_hash = $1 AND client_id = $3 \
         AND consumed_at IS NULL AND revoked = 0 AND expires_at > $2 \
         AND EXISTS (SELECT 1 FROM sso_sessions s WHERE s.id = refresh_tokens.session_id \
         AND s.ended_at IS NULL AND s.expires_at > $2) \
         RETURNING token_hash, family_id, client_id, person_id, session_id, grant_data, \
         created_at, expires_at",
    )
    .bind(token_hash)
    .bind(now)
    .bind(client_id)
    .fetch_optional(db.writer())
    .await?;
    if let Some(row) = won {
        return Ok(Consumed::Now(refresh_from_row(&row)?));
    }
    let sql = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE token_hash = $1"
    );
    let Some(row) = sqlx::query(sql)
        .bind(token_hash)
        .fetch_optional(db.writer())
        .await?
    else {
        return Ok(Consumed::Missing);
    };
    let record = refresh_from_row(&row)?;
    let consumed: Option<i64> = row.try_get("consumed_at")?;
    let revoked: i64 = row.try_get("revoked")?;
    if consumed.is_some() || revoked != 0 {
        Ok(Consumed::Before {
            record,
            access_jti: None,
            access_expires_at: None,
        })
    } else {
        Ok(Consumed::Missing)
    }
}

/// A live refresh token (not consumed, not revoked, not expired, its session live), for
/// introspection.
pub async fn live_refresh(db: &Db, token_hash: &str, now: i64) -> Result<Option<GrantRecord>> {
    let sql = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE token_hash = $1 \
         AND consumed_at IS NULL AND revoked = 0 AND expires_at > $2 \
         AND EXISTS (SELECT 1 FROM sso_sessions s WHERE s.id = refresh_tokens.session_id \
         AND s.ended_at IS NULL AND s.expires_at > $2)"
    );
    let row = sqlx::query(sql)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(refresh_from_row).transpose()
}

pub async fn revoke_family(db: &Db, family_id: &str) -> Result<u64> {
    let r = sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1")
        .bind(family_id)
        .execute(db.writer())
        .await?;
    Ok(affected(r))
}

/// Revokes every refresh token of a session, on `conn` (inside the transaction that ends the
/// session, so no refresh succeeds once the session is ended).
pub async fn revoke_session_refresh(
    conn: &mut sqlx::AnyConnection,
    session_id: &str,
) -> Result<u64> {
    let r =
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE session_id = $1 AND revoked = 0")
            .bind(session_id)
            .execute(&mut *conn)
            .await?;
    Ok(affected(r))
}

/// Moves a session's refresh tokens to the session that replaces it (the same person logged
/// in again), on `conn`, so ending the new session reaches them.
pub async fn move_session_refresh(
    conn: &mut sqlx::AnyConnection,
    from: &str,
    to: &str,
) -> Result<u64> {
    let r = sqlx::query("UPDATE refresh_tokens SET session_id = $2 WHERE session_id = $1")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    Ok(affected(r))
}

/// Puts an access token id on the denylist until it would have expired anyway.
pub async fn deny_jti(db: &Db, jti: &str, expires_at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn is_denied(db: &Db, jti: &str) -> Result<bool> {
    let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
        .bind(jti)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.is_some())
}

/// Drops rows that can no longer matter: expired codes, refresh tokens and denylist entries.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let mut n = 0;
    for sql in [
        "DELETE FROM auth_codes WHERE expires_at <= $1 - 3600",
        "DELETE FROM refresh_tokens WHERE expires_at <= $1",
        "DELETE FROM revoked_tokens WHERE expires_at <= $1",
    ] {
        n += affected(sqlx::query(sql).bind(now).execute(db.writer()).await?);
    }
    Ok(n)
}

/// Revokes every refresh token of these people, on `conn` (inside the caller's
/// transaction: the sync revokes them with the deactivation that causes it).
pub async fn revoke_for_persons(conn: &mut sqlx::AnyConnection, person_ids: &[&str]) -> Result<()> {
    for chunk in person_ids.chunks(super::IN_LIST) {
        let sql = format!(
            "UPDATE refresh_tokens SET revoked = 1 WHERE revoked = 0 AND person_id IN ({})",
            super::in_list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
