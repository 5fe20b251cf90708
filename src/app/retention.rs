//! Retention: housekeeping purges what is past `[retention]` (README.md, "Retention", says
//! why each default), in batches (`storage::retention`).

use crate::config::RetentionConfig;
use crate::storage::retention::{self, Cutoffs, Purged};
use crate::storage::{Db, StorageError};

const DAY: i64 = 86_400;

/// Purges every kind of record older than its retention at `now`. Idempotent, so every
/// instance may run it; housekeeping does every ten minutes.
pub async fn purge(db: &Db, r: &RetentionConfig, now: i64) -> Result<Purged, StorageError> {
    let before = |days: i64| now - days * DAY;
    let purged = retention::purge(
        db,
        &Cutoffs {
            release_records: before(r.release_records_days),
            login_events: before(r.login_events_days),
            audit_events: before(r.audit_events_days),
            sync_runs: before(r.sync_runs_days),
            sync_details: before(r.sync_details_days),
            ended_sessions: before(r.ended_sessions_days),
        },
    )
    .await?;
    if purged.total() > 0 {
        tracing::info!(
            release_records = purged.release_records,
            login_events = purged.login_events,
            audit_events = purged.audit_events,
            sync_runs = purged.sync_runs,
            sync_details = purged.sync_details,
            sessions = purged.sessions,
            "records past their retention purged"
        );
    }
    Ok(purged)
}
