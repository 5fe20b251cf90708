//! The lease of a source: one run (or approval) at a time across instances. It is short and
//! renewed by a heartbeat while the work goes on, so a run that was killed frees its source
//! within a minute; the next run that takes the lease marks the killed run `interrupted`.

use super::run::SyncError;
use crate::storage::{Db, sync as store};
use std::future::Future;
use std::time::Duration;

/// How long a lease lasts without a heartbeat.
pub const LEASE_SECONDS: i64 = 60;
/// How often a working run renews its lease: four beats per lease, so one slow write to
/// the database does not lose it.
pub const HEARTBEAT: Duration = Duration::from_secs(LEASE_SECONDS as u64 / 4);

/// Why leased work stopped before it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The caller's cancel (SIGTERM, Ctrl-C, serve shutting down).
    Cancelled,
    /// The heartbeat found the lease gone (`sync unlock`, or it expired and another run
    /// took it).
    LeaseLost,
}

impl Stop {
    pub fn reason(&self) -> &'static str {
        match self {
            Stop::Cancelled => "interrupted: stopped by a signal",
            Stop::LeaseLost => {
                "interrupted: its lease was taken away (`sync unlock`, or it expired)"
            }
        }
    }
}

/// A lease held on a source.
pub struct Lease<'a> {
    db: &'a Db,
    clock: &'a crate::clock::Clock,
    source: &'a str,
    holder: String,
    heartbeat: Duration,
}

impl<'a> Lease<'a> {
    /// Takes the lease of `source`, or `Busy`. Runs of the source left `running` or
    /// `approving` by a holder whose lease expired are marked `interrupted` here.
    pub async fn take(
        db: &'a Db,
        clock: &'a crate::clock::Clock,
        source: &'a str,
        heartbeat: Duration,
    ) -> Result<Lease<'a>, SyncError> {
        let holder = crate::keys::random_token();
        let now = clock.now();
        if !store::take_lease(db, source, &holder, now, now + LEASE_SECONDS).await? {
            return Err(SyncError::Busy(source.to_string()));
        }
        let lease = Lease {
            db,
            clock,
            source,
            holder,
            heartbeat,
        };
        let stale = store::interrupt_runs(
            db,
            source,
            "interrupted: its lease ran out without a heartbeat (the process was killed or \
             lost the database); found by the next run",
            now,
        )
        .await;
        match stale {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(source = %source, runs = ?ids, "sync runs found interrupted");
            }
            Ok(_) => {}
            Err(e) => {
                lease.release().await;
                return Err(e.into());
            }
        }
        Ok(lease)
    }

    /// Runs `work` while the heartbeat renews the lease; stops it (dropping it at its next
    /// await: an open chunk transaction rolls back) when `cancel` completes or the lease is
    /// lost.
    pub async fn guard<T>(
        &self,
        work: impl Future<Output = T>,
        cancel: impl Future<Output = ()>,
    ) -> Result<T, Stop> {
        tokio::select! {
            out = work => Ok(out),
            () = cancel => Err(Stop::Cancelled),
            () = self.beat() => Err(Stop::LeaseLost),
        }
    }

    /// Renews the lease every `heartbeat`; returns only when it is lost. A failed renewal
    /// (the database away for a moment) is logged and tried again at the next beat.
    async fn beat(&self) {
        loop {
            tokio::time::sleep(self.heartbeat).await;
            let until = self.clock.now() + LEASE_SECONDS;
            match store::renew_lease(self.db, self.source, &self.holder, until).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(
                    source = %self.source,
                    "renewing the sync lease failed: {}",
                    crate::error_chain(&e)
                ),
            }
        }
    }

    /// Gives the lease back (if it is still this holder's). A failure is logged: the lease
    /// then runs out by itself within a minute.
    pub async fn release(self) {
        if let Err(e) = store::release_lease(self.db, self.source, &self.holder).await {
            tracing::warn!(
                source = %self.source,
                "releasing the sync lease failed (it expires within {LEASE_SECONDS} s): {}",
                crate::error_chain(&e)
            );
        }
    }
}
