//! The SAML front's tables: registered SPs, the request-ID replay cache, what each SP was
//! told about a session's subject (for single logout), certificates and logouts in progress.

use super::{Db, LoginPolicy, Result, StorageError, Tx, affected, json_list, on_conflict};
use sqlx::Row;

/// How NameIDs are made for an SP when the request does not say: the format and, for
/// formats other than transient and persistent, the person's field that supplies the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NameIdRule {
    pub format: String,
    pub source: Option<String>,
}

/// The administrator's policy for an SP.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// Attribute FriendlyNames that may be released; none by default.
    #[serde(default)]
    pub release: Vec<String>,
    #[serde(default)]
    pub name_id: Option<NameIdRule>,
    #[serde(default)]
    pub sign_response: bool,
    #[serde(default)]
    pub idp_initiated: bool,
    #[serde(default)]
    pub require_signed_requests: bool,
    /// base64 DER of the certificate that must have signed metadata fetched for this SP
    /// (pinned with `sp add --metadata-signing-cert`); None: metadata is taken unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_signing_cert: Option<String>,
    /// The login policy: stored in columns of its own (as for OIDC clients), not in the
    /// policy JSON.
    #[serde(skip)]
    pub login: LoginPolicy,
}

/// A stored SP row.
#[derive(Debug, Clone)]
pub struct SpRecord {
    pub entity_id: String,
    pub name: String,
    pub metadata: String,
    pub metadata_url: Option<String>,
    pub valid_until: Option<i64>,
    pub fetched_at: i64,
    pub policy: Policy,
    /// Registered but refused at login (the admin UI's "disable"): data kept.
    pub disabled: bool,
}

fn policy_json(p: &Policy) -> String {
    serde_json::to_string(p).unwrap_or_else(|_| "{}".into())
}

const SP_COLUMNS: &str = "entity_id, name, metadata, metadata_url, valid_until, fetched_at, \
                          policy, allowed_methods, min_level, disabled";

fn sp_row(r: &sqlx::any::AnyRow) -> Result<SpRecord> {
    let policy: String = r.try_get("policy")?;
    let disabled: i64 = r.try_get("disabled")?;
    Ok(SpRecord {
        disabled: disabled != 0,
        entity_id: r.try_get("entity_id")?,
        name: r.try_get("name")?,
        metadata: r.try_get("metadata")?,
        metadata_url: r.try_get("metadata_url")?,
        valid_until: r.try_get("valid_until")?,
        fetched_at: r.try_get("fetched_at")?,
        policy: Policy {
            login: LoginPolicy::from_row(r)?,
            ..serde_json::from_str(&policy).map_err(|e| StorageError::Corrupt(e.to_string()))?
        },
    })
}

pub async fn insert_sp(db: &Db, sp: &SpRecord, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    insert_sp_in(&mut tx, sp, now).await?;
    tx.commit().await
}

/// Registers an SP inside the caller's transaction.
pub async fn insert_sp_in(tx: &mut Tx, sp: &SpRecord, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO saml_sps (entity_id, metadata, metadata_url, valid_until, fetched_at, \
         policy, created_at, updated_at, name, allowed_methods, min_level, disabled) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11)",
    )
    .bind(&sp.entity_id)
    .bind(&sp.metadata)
    .bind(&sp.metadata_url)
    .bind(sp.valid_until)
    .bind(sp.fetched_at)
    .bind(policy_json(&sp.policy))
    .bind(now)
    .bind(&sp.name)
    .bind(json_list(&sp.policy.login.allowed_methods))
    .bind(&sp.policy.login.min_level)
    .bind(i64::from(sp.disabled))
    .execute(tx.conn())
    .await
    .map_err(on_conflict("SP entityID"))?;
    Ok(())
}

/// Replaces an SP's metadata and policy; false if it is not registered.
pub async fn update_sp(db: &Db, sp: &SpRecord, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let found = update_sp_in(&mut tx, sp, now).await?;
    tx.commit().await?;
    Ok(found)
}

/// `update_sp` inside the caller's transaction (disabled is not changed here: `set_disabled_in`).
pub async fn update_sp_in(tx: &mut Tx, sp: &SpRecord, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE saml_sps SET metadata = $2, metadata_url = $3, valid_until = $4, fetched_at = $5, \
         policy = $6, updated_at = $7, name = $8, allowed_methods = $9, min_level = $10 \
         WHERE entity_id = $1",
    )
    .bind(&sp.entity_id)
    .bind(&sp.metadata)
    .bind(&sp.metadata_url)
    .bind(sp.valid_until)
    .bind(sp.fetched_at)
    .bind(policy_json(&sp.policy))
    .bind(now)
    .bind(&sp.name)
    .bind(json_list(&sp.policy.login.allowed_methods))
    .bind(&sp.policy.login.min_level)
    .execute(tx.conn())
    .await?;
    Ok(affected(r) == 1)
}

/// Disables or enables an SP; false if it is not registered.
pub async fn set_disabled_in(
    tx: &mut Tx,
    entity_id: &str,
    disabled: bool,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query("UPDATE saml_sps SET disabled = $2, updated_at = $3 WHERE entity_id = $1")
        .bind(entity_id)
        .bind(i64::from(disabled))
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(affected(r) == 1)
}

/// An SP read inside the caller's transaction (what a change starts from).
pub async fn get_sp_in(tx: &mut Tx, entity_id: &str) -> Result<Option<SpRecord>> {
    let q = format!("SELECT {SP_COLUMNS} FROM saml_sps WHERE entity_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(entity_id)
        .fetch_optional(tx.conn())
        .await?
        .as_ref()
        .map(sp_row)
        .transpose()
}

pub async fn get_sp(db: &Db, entity_id: &str) -> Result<Option<SpRecord>> {
    let q = format!("SELECT {SP_COLUMNS} FROM saml_sps WHERE entity_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(entity_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(sp_row)
        .transpose()
}

pub async fn list_sps(db: &Db) -> Result<Vec<SpRecord>> {
    let q = format!("SELECT {SP_COLUMNS} FROM saml_sps ORDER BY entity_id");
    sqlx::query(sqlx::AssertSqlSafe(q))
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(sp_row)
        .collect()
}

pub async fn delete_sp(db: &Db, entity_id: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    let found = delete_sp_in(&mut tx, entity_id).await?;
    tx.commit().await?;
    Ok(found)
}

pub async fn delete_sp_in(tx: &mut Tx, entity_id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM saml_sps WHERE entity_id = $1")
        .bind(entity_id)
        .execute(tx.conn())
        .await?;
    Ok(affected(r) == 1)
}

/// Records a request ID; false when it was already seen (a replay), on any instance.
pub async fn remember_request_id(db: &Db, issuer: &str, id: &str, expires_at: i64) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO saml_request_ids (issuer, request_id, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(issuer)
    .bind(id)
    .bind(expires_at)
    .execute(db.writer())
    .await?;
    Ok(affected(r) == 1)
}

/// What an SP was told about a session's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub session_id: String,
    pub sp: String,
    pub name_id: String,
    pub name_id_format: String,
    pub session_index: String,
}

const SUBJECT_COLUMNS: &str = "session_id, sp, name_id, name_id_format, session_index";

async fn subjects_where(
    db: &Db,
    condition: &str,
    a: &str,
    b: Option<&str>,
) -> Result<Vec<Subject>> {
    let q = format!("SELECT {SUBJECT_COLUMNS} FROM saml_subjects WHERE {condition} ORDER BY sp");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(q)).bind(a.to_string());
    if let Some(b) = b {
        query = query.bind(b.to_string());
    }
    query
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(subject_row)
        .collect()
}

pub async fn upsert_subject(db: &Db, s: &Subject) -> Result<()> {
    sqlx::query(
        "INSERT INTO saml_subjects (session_id, sp, name_id, name_id_format, session_index) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, sp) DO UPDATE SET \
         name_id = excluded.name_id, name_id_format = excluded.name_id_format, \
         session_index = excluded.session_index",
    )
    .bind(&s.session_id)
    .bind(&s.sp)
    .bind(&s.name_id)
    .bind(&s.name_id_format)
    .bind(&s.session_index)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// A new session of the same person takes over what the SPs were told about the old one:
/// they still name it by the NameID and SessionIndex they got.
/// Moves a session's SAML subjects to the session that replaces it, on `conn` (inside the
/// transaction that replaces the session).
pub async fn move_subjects(conn: &mut sqlx::AnyConnection, from: &str, to: &str) -> Result<()> {
    sqlx::query("UPDATE saml_subjects SET session_id = $2 WHERE session_id = $1")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn subject_row(r: &sqlx::any::AnyRow) -> Result<Subject> {
    Ok(Subject {
        session_id: r.try_get("session_id")?,
        sp: r.try_get("sp")?,
        name_id: r.try_get("name_id")?,
        name_id_format: r.try_get("name_id_format")?,
        session_index: r.try_get("session_index")?,
    })
}

pub async fn subjects_of_session(db: &Db, session_id: &str) -> Result<Vec<Subject>> {
    subjects_where(db, "session_id = $1", session_id, None).await
}

pub async fn subject(db: &Db, session_id: &str, sp: &str) -> Result<Option<Subject>> {
    Ok(
        subjects_where(db, "session_id = $1 AND sp = $2", session_id, Some(sp))
            .await?
            .into_iter()
            .next(),
    )
}

/// The subject an SP names by SessionIndex, if it is the one it was told.
pub async fn subject_by_index(db: &Db, sp: &str, session_index: &str) -> Result<Option<Subject>> {
    Ok(subjects_where(
        db,
        "sp = $1 AND session_index = $2",
        sp,
        Some(session_index),
    )
    .await?
    .into_iter()
    .next())
}

pub async fn certificate(db: &Db, kid: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query("SELECT cert_der FROM saml_certificates WHERE kid = $1")
            .bind(kid)
            .fetch_optional(db.pool())
            .await?
            .map(|r| r.try_get("cert_der"))
            .transpose()?,
    )
}

/// Stores a certificate unless another instance stored one first.
pub async fn insert_certificate(db: &Db, kid: &str, cert_b64: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO saml_certificates (kid, cert_der, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(kid)
    .bind(cert_b64)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// A logout in progress as stored: its id, state and the browser it is bound to.
pub struct LogoutRow {
    pub id: String,
    pub state: String,
    pub browser_hash: Option<String>,
}

pub async fn put_logout(
    db: &Db,
    id: &str,
    hop_hash: &str,
    browser_hash: Option<&str>,
    state: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO saml_logouts (id, hop_hash, browser_hash, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(hop_hash)
    .bind(browser_hash)
    .bind(state)
    .bind(expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The live logout whose current step value hashes to `hop_hash`.
pub async fn logout_by_hop(db: &Db, hop_hash: &str, now: i64) -> Result<Option<LogoutRow>> {
    let Some(r) = sqlx::query(
        "SELECT id, state, browser_hash FROM saml_logouts \
         WHERE hop_hash = $1 AND expires_at > $2",
    )
    .bind(hop_hash)
    .bind(now)
    .fetch_optional(db.writer())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(LogoutRow {
        id: r.try_get("id")?,
        state: r.try_get("state")?,
        browser_hash: r.try_get("browser_hash")?,
    }))
}

/// Uses up the step value `hop_hash` of logout `id` (binding it to `browser_hash` when it is
/// not bound yet); false when another request used it first.
pub async fn take_logout_hop(
    db: &Db,
    id: &str,
    hop_hash: &str,
    browser_hash: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE saml_logouts SET hop_hash = NULL, \
         browser_hash = COALESCE(browser_hash, $3) \
         WHERE id = $1 AND hop_hash = $2",
    )
    .bind(id)
    .bind(hop_hash)
    .bind(browser_hash)
    .execute(db.writer())
    .await?;
    Ok(affected(r) == 1)
}

/// Saves the state of logout `id` and the hash of the step value now handed out.
pub async fn update_logout(db: &Db, id: &str, hop_hash: &str, state: &str) -> Result<()> {
    sqlx::query("UPDATE saml_logouts SET hop_hash = $2, state = $3 WHERE id = $1")
        .bind(id)
        .bind(hop_hash)
        .bind(state)
        .execute(db.writer())
        .await?;
    Ok(())
}

pub async fn delete_logout(db: &Db, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM saml_logouts WHERE id = $1")
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let mut n = 0;
    for table in ["saml_request_ids", "saml_logouts"] {
        let q = format!("DELETE FROM {table} WHERE expires_at <= $1");
        n += affected(
            sqlx::query(sqlx::AssertSqlSafe(q))
                .bind(now)
                .execute(db.writer())
                .await?,
        );
    }
    Ok(n)
}

/// Sets a SAML SP's login policy alone; false when there is no such SP.
pub async fn set_login(db: &Db, entity_id: &str, login: &LoginPolicy, now: i64) -> Result<bool> {
    let r = sqlx::query(SET_LOGIN)
        .bind(entity_id)
        .bind(json_list(&login.allowed_methods))
        .bind(&login.min_level)
        .bind(now)
        .execute(db.writer())
        .await?;
    Ok(r.rows_affected() > 0)
}

const SET_LOGIN: &str = "UPDATE saml_sps SET allowed_methods = $2, min_level = $3, updated_at = $4 \
                         WHERE entity_id = $1";

/// `set_login` inside a caller's transaction (an admin change with its audit event).
pub async fn set_login_in(
    tx: &mut super::Tx,
    entity_id: &str,
    login: &LoginPolicy,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(SET_LOGIN)
        .bind(entity_id)
        .bind(json_list(&login.allowed_methods))
        .bind(&login.min_level)
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Replaces an SP's policy (the JSON; not its login policy, which has columns of its own)
/// inside a caller's transaction; false if it is not registered.
pub async fn set_policy_in(
    tx: &mut super::Tx,
    entity_id: &str,
    policy: &Policy,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query("UPDATE saml_sps SET policy = $2, updated_at = $3 WHERE entity_id = $1")
        .bind(entity_id)
        .bind(policy_json(policy))
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(affected(r) == 1)
}
