//! signing_keys and server_secrets: key material, always encrypted under the KEK by `keys`.

use super::{Db, Result, on_conflict};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    /// base64(nonce ‖ AES-256-GCM ciphertext) of the PKCS#8 private key.
    pub private_key: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub activate_at: i64,
}

pub async fn insert_key(db: &Db, k: &KeyRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, activate_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.private_key)
    .bind(&k.public_jwk)
    .bind(k.created_at)
    .bind(k.activate_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn keys(db: &Db) -> Result<Vec<KeyRecord>> {
    let rows = sqlx::query(
        "SELECT kid, alg, private_key, public_jwk, created_at, activate_at FROM signing_keys \
         ORDER BY activate_at, created_at",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(KeyRecord {
                kid: r.try_get("kid")?,
                alg: r.try_get("alg")?,
                private_key: r.try_get("private_key")?,
                public_jwk: r.try_get("public_jwk")?,
                created_at: r.try_get("created_at")?,
                activate_at: r.try_get("activate_at")?,
            })
        })
        .collect()
}

/// Makes every key of `alg` that is not yet active become active at `at` at the latest.
pub async fn activate_pending(db: &Db, alg: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE signing_keys SET activate_at = $2 WHERE alg = $1 AND activate_at > $2")
        .bind(alg)
        .bind(at)
        .execute(db.writer())
        .await?;
    Ok(())
}

pub async fn delete_keys(db: &Db, kids: &[String]) -> Result<()> {
    for kid in kids {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(db.writer())
            .await?;
    }
    Ok(())
}

pub async fn secret(db: &Db, name: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get("value")).transpose()?)
}

/// Stores a secret unless one exists; two instances starting at once both end up with the
/// first one written (callers re-read after this).
pub async fn insert_secret_if_absent(db: &Db, name: &str, value: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(value)
    .bind(now)
    .execute(db.writer())
    .await
    .map_err(on_conflict("server secret"))?;
    Ok(())
}

/// Where a value sealed under the KEK is kept: `keys::kek::rewrap` re-seals them all.
/// A new column sealed under the KEK must be added here, or a rewrap would leave it
/// unreadable (the rewrap test seals one of each kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// `signing_keys.private_key`, by kid.
    SigningKey,
    /// `server_secrets.value`, by name.
    ServerSecret,
    /// `upstreams.client_secret`, by upstream name.
    UpstreamSecret,
}

/// One sealed value: its kind, its row's id and the sealed text.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub kind: SealedKind,
    pub id: String,
    pub value: String,
}

/// Every value sealed under the KEK, read in the caller's transaction.
pub async fn sealed_in(tx: &mut super::Tx) -> Result<Vec<Sealed>> {
    let queries = [
        (
            SealedKind::SigningKey,
            "SELECT kid AS id, private_key AS value FROM signing_keys ORDER BY kid",
        ),
        (
            SealedKind::ServerSecret,
            "SELECT name AS id, value FROM server_secrets ORDER BY name",
        ),
        (
            SealedKind::UpstreamSecret,
            "SELECT name AS id, client_secret AS value FROM upstreams \
             WHERE client_secret IS NOT NULL ORDER BY name",
        ),
    ];
    let mut out = Vec::new();
    for (kind, sql) in queries {
        for r in sqlx::query(sql).fetch_all(&mut *tx.conn()).await? {
            out.push(Sealed {
                kind,
                id: r.try_get("id")?,
                value: r.try_get("value")?,
            });
        }
    }
    Ok(out)
}

/// Replaces one sealed value in the caller's transaction.
pub async fn reseal_in(tx: &mut super::Tx, s: &Sealed) -> Result<()> {
    let sql = match s.kind {
        SealedKind::SigningKey => "UPDATE signing_keys SET private_key = $2 WHERE kid = $1",
        SealedKind::ServerSecret => "UPDATE server_secrets SET value = $2 WHERE name = $1",
        SealedKind::UpstreamSecret => "UPDATE upstreams SET client_secret = $2 WHERE name = $1",
    };
    let done = sqlx::query(sql)
        .bind(&s.id)
        .bind(&s.value)
        .execute(&mut *tx.conn())
        .await?;
    if done.rows_affected() != 1 {
        return Err(super::StorageError::Corrupt(format!(
            "sealed value {} vanished during the rewrap",
            s.id
        )));
    }
    Ok(())
}
