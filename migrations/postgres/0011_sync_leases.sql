-- Held and interrupted syncs (issue 15). (Both dialects share this file's text.)

-- The lease is short now and renewed by the run's heartbeat; its holder is a random token
-- per run, so a run renews and releases only its own lease.
ALTER TABLE sync_state ADD COLUMN lease_holder TEXT;
-- When the schedule last skipped a plan equal to a rejected one (any kind, and full runs):
-- the source is not read again for that kind before its interval has passed.
ALTER TABLE sync_state ADD COLUMN skipped_at BIGINT;
ALTER TABLE sync_state ADD COLUMN full_skipped_at BIGINT;

-- A digest of a held plan's changes; a rejected run keeps it, so the schedule does not
-- hold the same plan again.
ALTER TABLE sync_runs ADD COLUMN plan_hash TEXT;
CREATE INDEX sync_runs_source_status ON sync_runs (source, status);

-- Held plans are sealed with the KEK from now on (they carry civic numbers). A plan held in
-- clear before this upgrade is dropped: the next run plans again and holds it sealed.
UPDATE sync_runs SET status = 'failed', finished_at = COALESCE(finished_at, started_at),
    reason = 'held before the upgrade that seals held plans; the next run plans again'
    WHERE status = 'held';
UPDATE sync_runs SET plan = NULL WHERE plan IS NOT NULL;
