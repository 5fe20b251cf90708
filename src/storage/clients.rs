//! relying_parties rows for OpenID Connect clients. SAML SPs share the table later
//! (protocol = 'saml').

use super::{Db, LoginPolicy, Result, Tx, affected, json_list, on_conflict, parse_list};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

/// A registered OIDC client as stored. `secret_hash` is HMAC-SHA-256 of the secret under the
/// server's client-secret key (hex), `None` for public clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub public_client: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub scopes: Vec<String>,
    pub grants: Vec<String>,
    pub subject_type: String,
    pub sector: Option<String>,
    pub id_token_alg: String,
    pub release: Vec<String>,
    pub login: LoginPolicy,
    /// Logins and token requests refused; the registration is kept.
    pub disabled: bool,
}

macro_rules! client_columns {
    () => {
        "id, name, secret_hash, public_client, redirect_uris, \
    post_logout_redirect_uris, backchannel_logout_uri, scopes, grants, subject_type, sector, \
    id_token_alg, release_claims, allowed_methods, min_level, disabled"
    };
}

fn from_row(r: &AnyRow) -> Result<ClientRecord> {
    Ok(ClientRecord {
        client_id: r.try_get("id")?,
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        public_client: r.try_get::<i64, _>("public_client")? != 0,
        redirect_uris: parse_list(&r.try_get::<String, _>("redirect_uris")?)?,
        post_logout_redirect_uris: parse_list(
            &r.try_get::<String, _>("post_logout_redirect_uris")?,
        )?,
        backchannel_logout_uri: r.try_get("backchannel_logout_uri")?,
        scopes: parse_list(&r.try_get::<String, _>("scopes")?)?,
        grants: parse_list(&r.try_get::<String, _>("grants")?)?,
        subject_type: r.try_get("subject_type")?,
        sector: r.try_get("sector")?,
        id_token_alg: r.try_get("id_token_alg")?,
        release: parse_list(&r.try_get::<String, _>("release_claims")?)?,
        login: LoginPolicy::from_row(r)?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}

pub async fn insert(db: &Db, c: &ClientRecord, now: i64) -> Result<()> {
    insert_with(db.writer(), c, now).await
}

/// `insert` inside the caller's transaction (a change with its audit event).
pub async fn insert_in(tx: &mut Tx, c: &ClientRecord, now: i64) -> Result<()> {
    insert_with(tx.conn(), c, now).await
}

async fn insert_with<'e>(
    e: impl Executor<'e, Database = Any>,
    c: &ClientRecord,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO relying_parties (id, protocol, name, secret_hash, public_client, redirect_uris, \
         post_logout_redirect_uris, backchannel_logout_uri, scopes, grants, subject_type, sector, \
         id_token_alg, release_claims, allowed_methods, min_level, disabled, created_at, \
         updated_at) \
         VALUES ($1, 'oidc', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $16, \
         $17, $14, $14)",
    )
    .bind(&c.client_id)
    .bind(&c.name)
    .bind(&c.secret_hash)
    .bind(i64::from(c.public_client))
    .bind(json_list(&c.redirect_uris))
    .bind(json_list(&c.post_logout_redirect_uris))
    .bind(&c.backchannel_logout_uri)
    .bind(json_list(&c.scopes))
    .bind(json_list(&c.grants))
    .bind(&c.subject_type)
    .bind(&c.sector)
    .bind(&c.id_token_alg)
    .bind(json_list(&c.release))
    .bind(now)
    .bind(json_list(&c.login.allowed_methods))
    .bind(&c.login.min_level)
    .bind(i64::from(c.disabled))
    .execute(e)
    .await
    .map_err(on_conflict("a relying party with that id"))?;
    Ok(())
}

/// Replaces every field of an existing client. Returns false if there is no such client.
pub async fn update(db: &Db, c: &ClientRecord, now: i64) -> Result<bool> {
    update_with(db.writer(), c, now).await
}

/// `update` inside the caller's transaction.
pub async fn update_in(tx: &mut Tx, c: &ClientRecord, now: i64) -> Result<bool> {
    update_with(tx.conn(), c, now).await
}

async fn update_with<'e>(
    e: impl Executor<'e, Database = Any>,
    c: &ClientRecord,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE relying_parties SET name = $2, secret_hash = $3, public_client = $4, \
         redirect_uris = $5, post_logout_redirect_uris = $6, backchannel_logout_uri = $7, \
         scopes = $8, grants = $9, subject_type = $10, sector = $11, id_token_alg = $12, \
         release_claims = $13, updated_at = $14, allowed_methods = $15, min_level = $16, \
         disabled = $17 WHERE id = $1 AND protocol = 'oidc'",
    )
    .bind(&c.client_id)
    .bind(&c.name)
    .bind(&c.secret_hash)
    .bind(i64::from(c.public_client))
    .bind(json_list(&c.redirect_uris))
    .bind(json_list(&c.post_logout_redirect_uris))
    .bind(&c.backchannel_logout_uri)
    .bind(json_list(&c.scopes))
    .bind(json_list(&c.grants))
    .bind(&c.subject_type)
    .bind(&c.sector)
    .bind(&c.id_token_alg)
    .bind(json_list(&c.release))
    .bind(now)
    .bind(json_list(&c.login.allowed_methods))
    .bind(&c.login.min_level)
    .bind(i64::from(c.disabled))
    .execute(e)
    .await?;
    Ok(affected(r) == 1)
}

pub async fn get(db: &Db, client_id: &str) -> Result<Option<ClientRecord>> {
    get_with(db.pool(), client_id).await
}

/// `get` inside the caller's transaction: what a change starts from.
pub async fn get_in(tx: &mut Tx, client_id: &str) -> Result<Option<ClientRecord>> {
    get_with(tx.conn(), client_id).await
}

async fn get_with<'e>(
    e: impl Executor<'e, Database = Any>,
    client_id: &str,
) -> Result<Option<ClientRecord>> {
    let sql = concat!(
        "SELECT ",
        client_columns!(),
        " FROM relying_parties WHERE id = $1 AND protocol = 'oidc'"
    );
    let row = sqlx::query(sql).bind(client_id).fetch_optional(e).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> Result<Vec<ClientRecord>> {
    let sql = concat!(
        "SELECT ",
        client_columns!(),
        " FROM relying_parties WHERE protocol = 'oidc' ORDER BY id"
    );
    let rows = sqlx::query(sql).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

pub async fn remove(db: &Db, client_id: &str) -> Result<bool> {
    remove_with(db.writer(), client_id).await
}

/// `remove` inside the caller's transaction. Release records and audit events name the
/// client by id and stay.
pub async fn remove_in(tx: &mut Tx, client_id: &str) -> Result<bool> {
    remove_with(tx.conn(), client_id).await
}

async fn remove_with<'e>(e: impl Executor<'e, Database = Any>, client_id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM relying_parties WHERE id = $1 AND protocol = 'oidc'")
        .bind(client_id)
        .execute(e)
        .await?;
    Ok(affected(r) == 1)
}

const SET_LOGIN: &str = "UPDATE relying_parties SET allowed_methods = $2, min_level = $3, \
                         updated_at = $4 WHERE id = $1 AND protocol = 'oidc'";

/// One service in the admin list: an OIDC client or a SAML SP, with its newest login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    /// `oidc` or `saml`.
    pub protocol: String,
    /// The client id or the SP's entity ID.
    pub id: String,
    pub name: String,
    pub disabled: bool,
    /// When an SP's metadata stops being valid (None for OIDC clients).
    pub valid_until: Option<i64>,
    /// The newest release record for the service: its last login.
    pub last_login: Option<i64>,
}

/// Every OIDC client and SAML SP with its last login, by name. One query: the newest
/// release per relying party comes from a GROUP BY on the (rp_id, created_at) index.
pub async fn list_services(db: &Db) -> Result<Vec<ServiceRow>> {
    let rows = sqlx::query(
        "SELECT s.protocol, s.id, s.name, s.disabled, s.valid_until, l.last_login FROM ( \
           SELECT 'oidc' AS protocol, id, name, disabled, CAST(NULL AS BIGINT) AS valid_until \
             FROM relying_parties WHERE protocol = 'oidc' \
           UNION ALL \
           SELECT 'saml' AS protocol, entity_id AS id, name, disabled, valid_until \
             FROM saml_sps \
         ) s LEFT JOIN ( \
           SELECT rp_id, protocol, MAX(created_at) AS last_login FROM release_records \
           GROUP BY rp_id, protocol \
         ) l ON l.rp_id = s.id AND l.protocol = s.protocol \
         ORDER BY LOWER(CASE WHEN s.name = '' THEN s.id ELSE s.name END), s.id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ServiceRow {
                protocol: r.try_get("protocol")?,
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
                valid_until: r.try_get("valid_until")?,
                last_login: r.try_get("last_login")?,
            })
        })
        .collect()
}

/// Sets an OIDC client's login policy alone; false when there is no such client.
pub async fn set_login(db: &Db, client_id: &str, login: &LoginPolicy, now: i64) -> Result<bool> {
    let r = sqlx::query(SET_LOGIN)
        .bind(client_id)
        .bind(json_list(&login.allowed_methods))
        .bind(&login.min_level)
        .bind(now)
        .execute(db.writer())
        .await?;
    Ok(r.rows_affected() > 0)
}

/// `set_login` inside a caller's transaction (an admin change with its audit event).
pub async fn set_login_in(
    tx: &mut Tx,
    client_id: &str,
    login: &LoginPolicy,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(SET_LOGIN)
        .bind(client_id)
        .bind(json_list(&login.allowed_methods))
        .bind(&login.min_level)
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Sets an OIDC client's release list alone, inside a caller's transaction; false when there
/// is no such client.
pub async fn set_release_in(
    tx: &mut Tx,
    client_id: &str,
    release: &[String],
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE relying_parties SET release_claims = $2, updated_at = $3 \
         WHERE id = $1 AND protocol = 'oidc'",
    )
    .bind(client_id)
    .bind(json_list(release))
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(r.rows_affected() > 0)
}
