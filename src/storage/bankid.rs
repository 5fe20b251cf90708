//! bankid_orders: the open BankID orders of login transactions.

use super::{Db, Result, affected};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Clone)]
pub struct OrderRecord {
    pub id: String,
    pub tx_id: String,
    pub binding: String,
    pub purpose: String,
    pub device: String,
    pub order_ref: String,
    pub auto_start_token: String,
    pub qr_start_token: String,
    /// Sealed with the token key (`keys::kek::seal_with`).
    pub qr_start_secret: String,
    pub return_nonce: Option<String>,
    pub started_at: i64,
    pub status: String,
    pub hint: Option<String>,
    pub person_id: Option<String>,
    pub collected_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for OrderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderRecord")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

fn from_row(r: &AnyRow) -> Result<OrderRecord> {
    Ok(OrderRecord {
        id: r.try_get("id")?,
        tx_id: r.try_get("tx_id")?,
        binding: r.try_get("binding")?,
        purpose: r.try_get("purpose")?,
        device: r.try_get("device")?,
        order_ref: r.try_get("order_ref")?,
        auto_start_token: r.try_get("auto_start_token")?,
        qr_start_token: r.try_get("qr_start_token")?,
        qr_start_secret: r.try_get("qr_start_secret")?,
        return_nonce: r.try_get("return_nonce")?,
        started_at: r.try_get("started_at")?,
        status: r.try_get("status")?,
        hint: r.try_get("hint")?,
        person_id: r.try_get("person_id")?,
        collected_at: r.try_get("collected_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

pub async fn insert(db: &Db, o: &OrderRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO bankid_orders (id, tx_id, binding, purpose, device, order_ref, \
         auto_start_token, qr_start_token, qr_start_secret, return_nonce, started_at, status, \
         hint, person_id, collected_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&o.id)
    .bind(&o.tx_id)
    .bind(&o.binding)
    .bind(&o.purpose)
    .bind(&o.device)
    .bind(&o.order_ref)
    .bind(&o.auto_start_token)
    .bind(&o.qr_start_token)
    .bind(&o.qr_start_secret)
    .bind(&o.return_nonce)
    .bind(o.started_at)
    .bind(&o.status)
    .bind(&o.hint)
    .bind(&o.person_id)
    .bind(o.collected_at)
    .bind(o.expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// A live order by id.
pub async fn get(db: &Db, id: &str, now: i64) -> Result<Option<OrderRecord>> {
    let row = sqlx::query("SELECT * FROM bankid_orders WHERE id = $1 AND expires_at > $2")
        .bind(id)
        .bind(now)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Claims the right to collect a pending order now: true for the one caller (of any
/// instance) that moved `collected_at`, so BankID is asked at most every `every` seconds.
pub async fn claim_collect(db: &Db, id: &str, every: i64, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE bankid_orders SET collected_at = $1 \
         WHERE id = $2 AND status = 'pending' AND collected_at <= $3",
    )
    .bind(now)
    .bind(id)
    .bind(now - every)
    .execute(db.writer())
    .await?;
    Ok(affected(r) == 1)
}

/// Records what a collect said. Only a pending order changes, so a late answer never
/// overwrites an outcome.
pub async fn set_status(
    db: &Db,
    id: &str,
    status: &str,
    hint: Option<&str>,
    person_id: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE bankid_orders SET status = $1, hint = $2, person_id = $3 \
         WHERE id = $4 AND status = 'pending'",
    )
    .bind(status)
    .bind(hint)
    .bind(person_id)
    .bind(id)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Removes an order; true for the one caller that removed it (one finish wins).
pub async fn take(db: &Db, id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM bankid_orders WHERE id = $1")
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(affected(r) == 1)
}

pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM bankid_orders WHERE expires_at <= $1")
        .bind(now)
        .execute(db.writer())
        .await?;
    Ok(affected(r))
}
