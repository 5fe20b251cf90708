//! Audit events of the admin UI. A change writes its event in the change's own transaction
//! (`change`), so there is never a change without its event or an event without its change.
//! Details are JSON: the target, and for a change what it was before and after. Callers
//! build before/after from views that hold no secret (client secrets, passwords, password
//! hashes) and no civic number.

use super::Access;
use crate::storage::{self, Db, Tx};
use serde::Serialize;
use serde_json::json;

/// An event that changes nothing (a login, a logout, a refused entry).
pub(crate) async fn event(
    db: &Db,
    kind: &str,
    actor: &str,
    now: i64,
) -> Result<(), storage::StorageError> {
    storage::records::audit(db, kind, actor, "{}", now).await
}

/// An event about one target that changes nothing in the database itself (a civic number
/// revealed, a protected person shown).
pub(crate) async fn viewed(
    db: &Db,
    access: &Access,
    kind: &str,
    target: &str,
    now: i64,
) -> Result<(), storage::StorageError> {
    let detail = json!({ "target": target }).to_string();
    storage::records::audit(db, kind, &access.actor(), &detail, now).await
}

/// A change to `target`, inside its transaction. `before` is None for something new,
/// `after` None for something removed.
pub(crate) async fn change<B: Serialize, A: Serialize>(
    tx: &mut Tx,
    access: &Access,
    kind: &str,
    target: &str,
    before: Option<&B>,
    after: Option<&A>,
    now: i64,
) -> Result<(), storage::StorageError> {
    let detail = json!({ "target": target, "before": before, "after": after }).to_string();
    storage::records::audit_in(tx, kind, &access.actor(), &detail, now).await
}
