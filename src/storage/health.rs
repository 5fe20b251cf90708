//! What readiness and the metrics read from the database: a ping, the pool's use, and per
//! sync source the last successful run and a held run.

use crate::storage::{Db, Result};
use sqlx::Row;

/// One round trip to the database.
pub async fn ping(db: &Db) -> Result<()> {
    sqlx::query("SELECT 1").execute(db.pool()).await?;
    Ok(())
}

/// The pool's connections now.
#[derive(Debug, Clone, Copy)]
pub struct PoolUse {
    /// Connections open (idle or in use).
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

pub fn pool_use(db: &Db) -> PoolUse {
    let pool = db.pool();
    let open = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(open);
    PoolUse {
        open,
        idle: idle.min(open),
        max: pool.options().get_max_connections(),
    }
}

/// A source's last successful run and its newest run waiting for approval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceHealth {
    /// When the newest applied (or approved) run finished, unix seconds.
    pub last_success: Option<i64>,
    /// The newest held run: its id and when it started.
    pub held: Option<(i64, i64)>,
}

/// Both are the newest matching row by the (source, id) index, so this stays cheap however
/// long the run history is kept.
pub async fn sync_source(db: &Db, source: &str) -> Result<SourceHealth> {
    let ok = sqlx::query(
        "SELECT finished_at FROM sync_runs WHERE source = $1 AND status IN ('applied', 'approved') \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(source)
    .fetch_optional(db.pool())
    .await?;
    let held = sqlx::query(
        "SELECT id, started_at FROM sync_runs WHERE source = $1 AND status = 'held' \
         ORDER BY id DESC LIMIT 1",
    )
    .bind(source)
    .fetch_optional(db.pool())
    .await?;
    Ok(SourceHealth {
        last_success: match ok {
            Some(r) => r.try_get::<Option<i64>, _>("finished_at")?,
            None => None,
        },
        held: match held {
            Some(r) => Some((r.try_get("id")?, r.try_get("started_at")?)),
            None => None,
        },
    })
}
