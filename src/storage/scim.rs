//! scim_resources and scim_refs: what each EGIL push source sent, as it sent it, with the
//! server's version of each resource, and the references between them.

use crate::storage::{Db, Result, StorageError};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A stored resource.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub version: i64,
    pub body: serde_json::Map<String, serde_json::Value>,
    pub created_at: i64,
    pub modified_at: i64,
    /// The sync run holding this resource's delete, if one does.
    pub held_run: Option<i64>,
}

/// A write a push applied: a resource as it is now, or its removal.
pub enum Write<'a> {
    Put {
        kind: &'a str,
        id: &'a str,
        unique_key: Option<&'a str>,
        body: &'a serde_json::Map<String, serde_json::Value>,
        /// (kind, id) of each resource it refers to.
        refs: Vec<(&'a str, &'a str)>,
    },
    Delete {
        kind: &'a str,
        id: &'a str,
    },
}

fn stored(r: &AnyRow) -> Result<Stored> {
    let body: String = r.try_get("body")?;
    Ok(Stored {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        body: serde_json::from_str(&body).map_err(|e| StorageError::Corrupt(e.to_string()))?,
        created_at: r.try_get("created_at")?,
        modified_at: r.try_get("modified_at")?,
        held_run: r.try_get("held_run")?,
    })
}

pub async fn get(db: &Db, source: &str, kind: &str, id: &str) -> Result<Option<Stored>> {
    let row = sqlx::query(
        "SELECT id, version, body, created_at, modified_at, held_run FROM scim_resources \
         WHERE source = $1 AND kind = $2 AND id = $3",
    )
    .bind(source)
    .bind(kind)
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(stored).transpose()
}

/// Several resources of one kind by id (those that exist).
pub async fn get_many(db: &Db, source: &str, kind: &str, ids: &[String]) -> Result<Vec<Stored>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(200) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        // Only placeholders are formatted in.
        let sql = format!(
            "SELECT id, version, body, created_at, modified_at, held_run FROM scim_resources \
             WHERE source = $1 AND kind = $2 AND id IN ({list})"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(source)
            .bind(kind);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(db.pool()).await? {
            out.push(stored(&r)?);
        }
    }
    Ok(out)
}

/// Whether another source than `source` has a resource of this kind and id.
pub async fn of_another_source(db: &Db, source: &str, kind: &str, id: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT 1 AS one FROM scim_resources WHERE kind = $1 AND id = $2 AND source <> $3 LIMIT 1",
    )
    .bind(kind)
    .bind(id)
    .bind(source)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.is_some())
}

/// The id of the resource of this kind whose unique key is `key`.
pub async fn by_unique_key(db: &Db, source: &str, kind: &str, key: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM scim_resources WHERE source = $1 AND kind = $2 AND unique_key = $3",
    )
    .bind(source)
    .bind(kind)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

/// The ids of the resources of `from_kind` that refer to (`to_kind`, `to_id`).
pub async fn referrers(
    db: &Db,
    source: &str,
    from_kind: &str,
    to_kind: &str,
    to_id: &str,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT from_id FROM scim_refs WHERE source = $1 AND to_kind = $2 AND to_id = $3 \
         AND from_kind = $4 ORDER BY from_id",
    )
    .bind(source)
    .bind(to_kind)
    .bind(to_id)
    .bind(from_kind)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get("from_id")?))
        .collect::<Result<_>>()
}

/// A page of a kind's resources in id order, and how many there are.
pub async fn list(
    db: &Db,
    source: &str,
    kind: &str,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<Stored>)> {
    let total: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM scim_resources WHERE source = $1 AND kind = $2")
            .bind(source)
            .bind(kind)
            .fetch_one(db.pool())
            .await?
            .try_get("n")?;
    if limit <= 0 {
        return Ok((total, Vec::new()));
    }
    let rows = sqlx::query(
        "SELECT id, version, body, created_at, modified_at, held_run FROM scim_resources \
         WHERE source = $1 AND kind = $2 ORDER BY id LIMIT $3 OFFSET $4",
    )
    .bind(source)
    .bind(kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.pool())
    .await?;
    Ok((total, rows.iter().map(stored).collect::<Result<_>>()?))
}

/// Writes what a push applied, in one transaction: each put's body replaces the stored
/// one with the next version (or creates it at version 1) and its references; a delete
/// removes the resource and its references.
pub async fn write(db: &Db, source: &str, writes: &[Write<'_>], now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    for w in writes {
        let (kind, id) = match w {
            Write::Put { kind, id, .. } | Write::Delete { kind, id } => (*kind, *id),
        };
        sqlx::query("DELETE FROM scim_refs WHERE source = $1 AND from_kind = $2 AND from_id = $3")
            .bind(source)
            .bind(kind)
            .bind(id)
            .execute(tx.conn())
            .await?;
        match w {
            Write::Put {
                unique_key,
                body,
                refs,
                ..
            } => {
                let body = serde_json::to_string(body)
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO scim_resources (source, kind, id, unique_key, version, body, \
                     created_at, modified_at) VALUES ($1, $2, $3, $4, 1, $5, $6, $6) \
                     ON CONFLICT (source, kind, id) DO UPDATE SET unique_key = excluded.unique_key, \
                     version = scim_resources.version + 1, body = excluded.body, \
                     modified_at = excluded.modified_at, held_run = NULL",
                )
                .bind(source)
                .bind(kind)
                .bind(id)
                .bind(*unique_key)
                .bind(body)
                .bind(now)
                .execute(tx.conn())
                .await?;
                for (to_kind, to_id) in refs {
                    sqlx::query(
                        "INSERT INTO scim_refs (source, from_kind, from_id, to_kind, to_id) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(source)
                    .bind(kind)
                    .bind(id)
                    .bind(*to_kind)
                    .bind(*to_id)
                    .execute(tx.conn())
                    .await?;
                }
            }
            Write::Delete { .. } => {
                sqlx::query(
                    "DELETE FROM scim_resources WHERE source = $1 AND kind = $2 AND id = $3",
                )
                .bind(source)
                .bind(kind)
                .bind(id)
                .execute(tx.conn())
                .await?;
            }
        }
    }
    tx.commit().await
}

/// Marks the deletes of these resources as held by sync run `run`.
pub async fn hold(db: &Db, source: &str, kind: &str, ids: &[&str], run: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    for id in ids {
        sqlx::query(
            "UPDATE scim_resources SET held_run = $4 WHERE source = $1 AND kind = $2 AND id = $3",
        )
        .bind(source)
        .bind(kind)
        .bind(*id)
        .bind(run)
        .execute(tx.conn())
        .await?;
    }
    tx.commit().await
}

/// An administrator approved run `run`: the resources whose delete it held are gone (with
/// their references).
pub async fn release_held(db: &Db, run: i64) -> Result<u64> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "DELETE FROM scim_refs WHERE EXISTS (SELECT 1 FROM scim_resources r \
         WHERE r.held_run = $1 AND r.source = scim_refs.source AND r.kind = scim_refs.from_kind \
         AND r.id = scim_refs.from_id)",
    )
    .bind(run)
    .execute(tx.conn())
    .await?;
    let gone = sqlx::query("DELETE FROM scim_resources WHERE held_run = $1")
        .bind(run)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone)
}

/// An administrator rejected run `run`: the resources it held stay, no longer held.
pub async fn forget_held(db: &Db, run: i64) -> Result<()> {
    sqlx::query("UPDATE scim_resources SET held_run = NULL WHERE held_run = $1")
        .bind(run)
        .execute(db.writer())
        .await?;
    Ok(())
}
