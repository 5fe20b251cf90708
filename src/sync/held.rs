//! Held plans: sealed in the run record until an administrator approves or rejects them,
//! and the digest that lets the schedule recognise a plan it was told no to.
//!
//! A held plan holds the rows it would write, civic numbers among them, so it is stored
//! sealed under the KEK (AES-GCM, the run's id as associated data); the run's diff names
//! only internal ids.

use super::Env;
use super::lease::Lease;
use super::plan::{Plan, RunKind};
use super::run::{Outcome, Status, SyncError, apply};
use super::ss12000::types::ParseReport;
use crate::keys::Kek;
use crate::storage::{self, sync as store};
use serde::Serialize;
use std::future::Future;

#[derive(Serialize)]
struct HeldPlan<'a> {
    plan: &'a Plan,
    watermark: i64,
}

#[derive(serde::Deserialize)]
struct StoredPlan {
    plan: Plan,
    watermark: i64,
}

fn label(run_id: i64) -> String {
    crate::keys::kek::held_plan_label(&run_id.to_string())
}

/// The plan of run `run_id` and the watermark it moves to, sealed for the run record.
pub(super) fn seal(
    kek: &Kek,
    run_id: i64,
    plan: &Plan,
    watermark: i64,
) -> Result<String, SyncError> {
    let json = serde_json::to_vec(&HeldPlan { plan, watermark })
        .map_err(|e| storage::StorageError::Corrupt(e.to_string()))?;
    kek.seal(&label(run_id), &json)
        .map_err(|e| SyncError::Sealed(run_id, e.to_string()))
}

fn open(kek: &Kek, run_id: i64, sealed: &str) -> Result<StoredPlan, SyncError> {
    let json = kek
        .open(&label(run_id), sealed)
        .map_err(|e| SyncError::Sealed(run_id, e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| storage::StorageError::Corrupt(e.to_string()).into())
}

/// A digest of what a plan changes, the same for the same changes whenever and however
/// (full or incremental) they were planned: each list's entries are serialised and sorted,
/// and the day of planning, the counts and the diff sample are left out.
pub fn plan_hash(plan: &Plan) -> String {
    fn part<T: Serialize>(ctx: &mut ring::digest::Context, name: &str, items: &[T]) {
        let mut entries: Vec<Vec<u8>> = items
            .iter()
            .map(|i| serde_json::to_vec(i).unwrap_or_default())
            .collect();
        entries.sort_unstable();
        ctx.update(name.as_bytes());
        ctx.update(&(entries.len() as u64).to_be_bytes());
        for e in entries {
            ctx.update(&(e.len() as u64).to_be_bytes());
            ctx.update(&e);
        }
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(plan.source.as_bytes());
    part(&mut ctx, "organisations", &plan.organisations);
    part(&mut ctx, "persons", &plan.persons);
    part(&mut ctx, "groups", &plan.groups);
    part(&mut ctx, "duties", &plan.duties);
    part(&mut ctx, "remove_organisations", &plan.remove_organisations);
    part(&mut ctx, "remove_groups", &plan.remove_groups);
    part(&mut ctx, "remove_duties", &plan.remove_duties);
    part(&mut ctx, "status", &plan.status);
    part(&mut ctx, "emptied_units", &plan.emptied_units);
    part(&mut ctx, "rebound", &plan.rebound);
    crate::keys::kek::hex_encode(ctx.finish().as_ref())
}

/// Applies a held run's plan: the administrator has looked at it and said yes. Under the
/// source's lease, like a run; `cancel` (a signal) stops it, recorded `interrupted`.
pub async fn approve(
    env: Env<'_>,
    run_id: i64,
    actor: &str,
    cancel: impl Future<Output = ()>,
) -> Result<Outcome, SyncError> {
    let Env { db, clock, .. } = env;
    let now = clock.now();
    let (run, stored) = store::run(db, run_id)
        .await?
        .ok_or(SyncError::NoRun(run_id))?;
    let Some(stored) = stored.filter(|_| run.status == "held") else {
        return Err(SyncError::NotHeld(run_id, run.status));
    };
    let StoredPlan {
        mut plan,
        watermark,
    } = open(env.kek, run_id, &stored)?;
    let lease = Lease::take(db, clock, &run.source, super::lease::HEARTBEAT).await?;
    let work = async {
        if !store::set_run_status(db, run_id, "held", "approving", None, now).await? {
            return Err(SyncError::NotHeld(run_id, "no longer held".into()));
        }
        apply(db, env.config, &mut plan, &|_| {}, clock.now()).await?;
        // A push source's resources whose delete this run held are gone now.
        storage::scim::release_held(db, run_id).await?;
        store::set_state(
            db,
            &run.source,
            watermark,
            (plan.kind == RunKind::Full).then_some(now),
        )
        .await?;
        store::set_run_status(db, run_id, "approving", "approved", None, clock.now()).await?;
        storage::records::audit(
            db,
            "sync.approved",
            actor,
            &format!("run {run_id}"),
            clock.now(),
        )
        .await?;
        Ok(())
    };
    let result = match lease.guard(work, cancel).await {
        Ok(r) => r,
        Err(stop) => Err(SyncError::Interrupted(run_id, stop.reason().into())),
    };
    if let Err(e) = &result {
        // An approval that stops part-way is recorded like a run whose apply stopped: the
        // next run plans again from what was applied. Only a run still `approving` is
        // touched, so a refusal before the apply began leaves the held run as it was.
        let (to, reason) = match e {
            SyncError::Interrupted(_, why) => ("interrupted", why.clone()),
            e => (
                "failed",
                format!("applying stopped: {}", crate::error_chain(e)),
            ),
        };
        let recorded =
            store::set_run_status(db, run_id, "approving", to, Some(&reason), clock.now()).await;
        if let Err(r) = recorded {
            tracing::warn!(
                "recording run {run_id} as {to} failed: {}",
                crate::error_chain(&r)
            );
        }
    }
    lease.release().await;
    result?;
    Ok(Outcome {
        run_id,
        kind: plan.kind,
        status: Status::Applied,
        counts: plan.counts,
        report: ParseReport::default(),
        purged: 0,
    })
}

/// Discards a held run's plan. The watermark stays, so the next run reads the changes
/// again; the plan's digest stays with the run, so the schedule skips the same plan.
pub async fn reject(
    db: &crate::storage::Db,
    run_id: i64,
    actor: &str,
    now: i64,
) -> Result<(), SyncError> {
    let (run, _) = store::run(db, run_id)
        .await?
        .ok_or(SyncError::NoRun(run_id))?;
    if !store::set_run_status(db, run_id, "held", "rejected", None, now).await? {
        return Err(SyncError::NotHeld(run_id, run.status));
    }
    // A push source's resources whose delete this run held stay; the source may send the
    // delete again (and is told it was rejected while the plan is the same).
    storage::scim::forget_held(db, run_id).await?;
    storage::records::audit(db, "sync.rejected", actor, &format!("run {run_id}"), now).await?;
    Ok(())
}
