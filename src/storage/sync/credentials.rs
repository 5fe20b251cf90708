//! Initial passwords from a CSV import (`sync::csv::set_initial_passwords`): set only for a
//! person of the source who has none, so a re-import never replaces a password the person
//! or an administrator has changed since.

use crate::storage::{Db, Result};
use sqlx::Row;
use std::collections::HashSet;

/// The internal ids of the people of `source` who have a password.
pub async fn people_with_password(db: &Db, source: &str) -> Result<HashSet<String>> {
    let rows = sqlx::query(
        "SELECT c.person_id FROM credentials c JOIN persons p ON p.id = c.person_id \
         WHERE p.source = $1",
    )
    .bind(source)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("person_id")?))
        .collect()
}

/// Stores `(person id, argon2 PHC string)` pairs in one transaction, each only if the
/// person is of `source` and has no password yet; returns how many were stored.
pub async fn set_initial_passwords(
    db: &Db,
    source: &str,
    hashes: &[(String, String)],
    now: i64,
) -> Result<u64> {
    let mut tx = db.begin().await?;
    let mut stored = 0;
    for (person, hash) in hashes {
        stored += sqlx::query(
            "INSERT INTO credentials (person_id, password_hash, updated_at) \
             SELECT id, $2, $3 FROM persons WHERE id = $1 AND source = $4 \
             ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(person)
        .bind(hash)
        .bind(now)
        .bind(source)
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(stored)
}
