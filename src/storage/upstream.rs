//! upstreams, federated_links, upstream_logins: federation's configuration, its links from an
//! upstream subject to a person, and the state of logins out at an upstream.

use super::{Db, Result, StorageError, on_conflict};
use sqlx::Row;
use sqlx::any::AnyRow;

/// An upstream as stored. `authn::upstream` turns it into an `upstream::Upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRecord {
    pub name: String,
    /// "oidc" or "saml".
    pub kind: String,
    pub display_name: String,
    pub logo: Option<String>,
    pub level: String,
    pub link_claim: String,
    pub link_field: String,
    pub require_claims: Vec<(String, String)>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Sealed under the KEK (`KeyStore::seal`); never the plain secret.
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub metadata_url: Option<String>,
    pub metadata: Option<String>,
    pub enabled: bool,
}

macro_rules! columns {
    () => {
        "name, kind, display_name, logo, level, link_claim, link_field, require_claims, \
         issuer, client_id, client_secret, scopes, metadata_url, metadata, enabled"
    };
}

fn json_of<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn from_row(r: &AnyRow) -> Result<UpstreamRecord> {
    Ok(UpstreamRecord {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        display_name: r.try_get("display_name")?,
        logo: r.try_get("logo")?,
        level: r.try_get("level")?,
        link_claim: r.try_get("link_claim")?,
        link_field: r.try_get("link_field")?,
        require_claims: from_json(&r.try_get::<String, _>("require_claims")?)?,
        issuer: r.try_get("issuer")?,
        client_id: r.try_get("client_id")?,
        client_secret: r.try_get("client_secret")?,
        scopes: from_json(&r.try_get::<String, _>("scopes")?)?,
        metadata_url: r.try_get("metadata_url")?,
        metadata: r.try_get("metadata")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
    })
}

pub async fn insert(db: &Db, u: &UpstreamRecord, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstreams (name, kind, display_name, logo, level, link_claim, link_field, \
         require_claims, issuer, client_id, client_secret, scopes, metadata_url, metadata, \
         enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
    )
    .bind(&u.name)
    .bind(&u.kind)
    .bind(&u.display_name)
    .bind(&u.logo)
    .bind(&u.level)
    .bind(&u.link_claim)
    .bind(&u.link_field)
    .bind(json_of(&u.require_claims)?)
    .bind(&u.issuer)
    .bind(&u.client_id)
    .bind(&u.client_secret)
    .bind(json_of(&u.scopes)?)
    .bind(&u.metadata_url)
    .bind(&u.metadata)
    .bind(i64::from(u.enabled))
    .bind(now)
    .execute(db.writer())
    .await
    .map_err(on_conflict("an upstream with that name"))?;
    Ok(())
}

/// Replaces every stored value of the upstream `u.name`; false when there is none.
pub async fn update(db: &Db, u: &UpstreamRecord, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE upstreams SET kind = $2, display_name = $3, logo = $4, level = $5, \
         link_claim = $6, link_field = $7, require_claims = $8, issuer = $9, client_id = $10, \
         client_secret = $11, scopes = $12, metadata_url = $13, metadata = $14, enabled = $15, \
         updated_at = $16 WHERE name = $1",
    )
    .bind(&u.name)
    .bind(&u.kind)
    .bind(&u.display_name)
    .bind(&u.logo)
    .bind(&u.level)
    .bind(&u.link_claim)
    .bind(&u.link_field)
    .bind(json_of(&u.require_claims)?)
    .bind(&u.issuer)
    .bind(&u.client_id)
    .bind(&u.client_secret)
    .bind(json_of(&u.scopes)?)
    .bind(&u.metadata_url)
    .bind(&u.metadata)
    .bind(i64::from(u.enabled))
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get(db: &Db, name: &str) -> Result<Option<UpstreamRecord>> {
    let sql = concat!("SELECT ", columns!(), " FROM upstreams WHERE name = $1");
    let row = sqlx::query(sql)
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every upstream, by name.
pub async fn list(db: &Db) -> Result<Vec<UpstreamRecord>> {
    let sql = concat!("SELECT ", columns!(), " FROM upstreams ORDER BY name");
    let rows = sqlx::query(sql).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Removes an upstream with its links and pending logins; false when there is none.
pub async fn remove(db: &Db, name: &str) -> Result<bool> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM federated_links WHERE upstream = $1")
        .bind(name)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM upstream_logins WHERE upstream = $1")
        .bind(name)
        .execute(tx.conn())
        .await?;
    let r = sqlx::query("DELETE FROM upstreams WHERE name = $1")
        .bind(name)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

/// The person linked to (upstream, subject), if any.
pub async fn linked_person(db: &Db, upstream: &str, subject: &str) -> Result<Option<String>> {
    let row =
        sqlx::query("SELECT person_id FROM federated_links WHERE upstream = $1 AND subject = $2")
            .bind(upstream)
            .bind(subject)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|r| r.try_get("person_id")).transpose()?)
}

/// The subject a person is linked to at an upstream, if any.
pub async fn link_of_person(db: &Db, upstream: &str, person_id: &str) -> Result<Option<String>> {
    let row =
        sqlx::query("SELECT subject FROM federated_links WHERE upstream = $1 AND person_id = $2")
            .bind(upstream)
            .bind(person_id)
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|r| r.try_get("subject")).transpose()?)
}

/// Stores a new link. A subject or person already linked at this upstream is a `Conflict`
/// (two first logins at once: one wins).
pub async fn insert_link(
    db: &Db,
    upstream: &str,
    subject: &str,
    person_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO federated_links (upstream, subject, person_id, created_at, last_login_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(upstream)
    .bind(subject)
    .bind(person_id)
    .bind(now)
    .execute(db.writer())
    .await
    .map_err(on_conflict("a link for that upstream subject or person"))?;
    Ok(())
}

pub async fn touch_link(db: &Db, upstream: &str, subject: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE federated_links SET last_login_at = $3 WHERE upstream = $1 AND subject = $2",
    )
    .bind(upstream)
    .bind(subject)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Removes a person's link at an upstream (an admin's relink); false when there was none.
pub async fn remove_link(db: &Db, upstream: &str, person_id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM federated_links WHERE upstream = $1 AND person_id = $2")
        .bind(upstream)
        .bind(person_id)
        .execute(db.writer())
        .await?;
    Ok(r.rows_affected() > 0)
}

/// A person's links to upstream accounts: (upstream, subject, created_at, last_login_at).
pub async fn links_of_person(db: &Db, person_id: &str) -> Result<Vec<(String, String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT upstream, subject, created_at, last_login_at FROM federated_links \
         WHERE person_id = $1 ORDER BY upstream",
    )
    .bind(person_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("upstream")?,
                r.try_get("subject")?,
                r.try_get("created_at")?,
                r.try_get("last_login_at")?,
            ))
        })
        .collect()
}

/// How many people are linked through each upstream: (upstream, count).
pub async fn link_counts(db: &Db) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT upstream, COUNT(*) AS n FROM federated_links GROUP BY upstream ORDER BY upstream",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("upstream")?, r.try_get("n")?)))
        .collect()
}

/// A login out at an upstream, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    /// SHA-256 of the handle the upstream echoes (OIDC state, SAML RelayState).
    pub id: String,
    pub upstream: String,
    pub tx_id: String,
    /// SHA-256 of the browser's login-binding cookie.
    pub binding: String,
    pub nonce: Option<String>,
    pub pkce_verifier: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_login(db: &Db, l: &LoginRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstream_logins (id, upstream, tx_id, binding, nonce, pkce_verifier, \
         request_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&l.id)
    .bind(&l.upstream)
    .bind(&l.tx_id)
    .bind(&l.binding)
    .bind(&l.nonce)
    .bind(&l.pkce_verifier)
    .bind(&l.request_id)
    .bind(l.created_at)
    .bind(l.expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Takes a login once: one DELETE that matches the handle, the upstream, the browser's
/// binding and the expiry, so a replay, another upstream's callback or another browser gets
/// nothing (and, for the last two, leaves the login to its own browser).
pub async fn take_login(
    db: &Db,
    id: &str,
    upstream: &str,
    binding: &str,
    now: i64,
) -> Result<Option<LoginRecord>> {
    let row = sqlx::query(
        "DELETE FROM upstream_logins WHERE id = $1 AND upstream = $2 AND binding = $3 \
         AND expires_at > $4 RETURNING id, upstream, tx_id, binding, nonce, pkce_verifier, \
         request_id, created_at, expires_at",
    )
    .bind(id)
    .bind(upstream)
    .bind(binding)
    .bind(now)
    .fetch_optional(db.writer())
    .await?;
    row.map(|r| {
        Ok(LoginRecord {
            id: r.try_get("id")?,
            upstream: r.try_get("upstream")?,
            tx_id: r.try_get("tx_id")?,
            binding: r.try_get("binding")?,
            nonce: r.try_get("nonce")?,
            pkce_verifier: r.try_get("pkce_verifier")?,
            request_id: r.try_get("request_id")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM upstream_logins WHERE expires_at <= $1")
        .bind(now)
        .execute(db.writer())
        .await?;
    // Sessions are purged on their own schedule; their upstream ID tokens follow.
    let s = sqlx::query(
        "DELETE FROM upstream_sessions WHERE session_id NOT IN (SELECT id FROM sso_sessions)",
    )
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() + s.rows_affected())
}

/// Keeps a session's upstream ID token (sealed) for logout at the upstream.
pub async fn insert_session_token(
    db: &Db,
    session_id: &str,
    upstream: &str,
    sealed_id_token: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO upstream_sessions (session_id, upstream, id_token, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE SET upstream = $2, \
         id_token = $3, created_at = $4",
    )
    .bind(session_id)
    .bind(upstream)
    .bind(sealed_id_token)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The same person logged in again (`sessions::replace_session`): the new session keeps
/// the upstream ID token, so logging out still reaches the upstream.
pub async fn move_session_token(
    conn: &mut sqlx::AnyConnection,
    from: &str,
    to: &str,
) -> Result<()> {
    sqlx::query("UPDATE upstream_sessions SET session_id = $2 WHERE session_id = $1")
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes a session's upstream ID token once: (upstream, sealed ID token).
pub async fn take_session_token(db: &Db, session_id: &str) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "DELETE FROM upstream_sessions WHERE session_id = $1 RETURNING upstream, id_token",
    )
    .bind(session_id)
    .fetch_optional(db.writer())
    .await?;
    row.map(|r| Ok((r.try_get("upstream")?, r.try_get("id_token")?)))
        .transpose()
}
