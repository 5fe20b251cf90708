-- The directory as the metakatalog sync fills it: register facts with their dates, the
-- derived activity window, identifiers that are never reused, and the run history.

-- persons.status is now 'active' or 'deactivated' (deactivated_at says when).
-- search_name: given and family name casefolded by Portvakt (SQLite's lower() folds ASCII
-- only), so "Åsa Öberg" is found by "åsa" and by "ÖBERG". Searched with LIKE '%…%', which
-- no B-tree index serves, so it has none.
-- emails: JSON [{"value", "kind"}] as the register sent them; email stays the one released.
-- active_from/active_until: 'YYYY-MM-DD', the first role's start minus the lead time and
-- the last role's end plus the grace period (NULL: open), computed by the sync.
-- sync_hash: a digest of the register record last applied, so an unchanged person costs
-- nothing.
ALTER TABLE persons ADD COLUMN search_name TEXT NOT NULL DEFAULT '';
ALTER TABLE persons ADD COLUMN emails TEXT NOT NULL DEFAULT '[]';
ALTER TABLE persons ADD COLUMN security_marking TEXT;
ALTER TABLE persons ADD COLUMN deactivated_at BIGINT;
ALTER TABLE persons ADD COLUMN active_from TEXT;
ALTER TABLE persons ADD COLUMN active_until TEXT;
ALTER TABLE persons ADD COLUMN sync_hash TEXT;
UPDATE persons SET search_name = lower(given_name || ' ' || family_name);
CREATE UNIQUE INDEX persons_source_external ON persons (source, external_id);
CREATE INDEX persons_civic ON persons (civic_no);
-- The purge: deactivated people of a source, oldest first (partial: active people, the
-- bulk of every insert, do not pay for it).
CREATE INDEX persons_deactivated ON persons (source, deactivated_at) WHERE status = 'deactivated';

-- Every organisation a source sent (huvudman, skola, skolenhet …): resolves an
-- organisation id to its school unit code and a unit to its huvudman.
CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    parent_id TEXT,
    school_unit_code TEXT,
    organisation_number TEXT,
    sync_hash TEXT NOT NULL
);
CREATE INDEX organisations_source ON organisations (source);

ALTER TABLE school_units ADD COLUMN external_id TEXT;
ALTER TABLE school_units ADD COLUMN huvudman TEXT;
ALTER TABLE school_units ADD COLUMN school_types TEXT NOT NULL DEFAULT '[]';

-- kind: class, teaching, mentor, exam, schedule, department, staff or other.
ALTER TABLE school_groups ADD COLUMN school_type TEXT;
ALTER TABLE school_groups ADD COLUMN start_date TEXT;
ALTER TABLE school_groups ADD COLUMN end_date TEXT;
ALTER TABLE school_groups ADD COLUMN sync_hash TEXT;
CREATE INDEX school_groups_source ON school_groups (source);

-- Dates are inclusive 'YYYY-MM-DD'; NULL is open-ended.
ALTER TABLE group_members ADD COLUMN start_date TEXT;
ALTER TABLE group_members ADD COLUMN end_date TEXT;
CREATE INDEX group_members_person ON group_members (person_id);

-- A student's enrolments: part of the person's register record, replaced with it.
CREATE TABLE enrolments (
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    school_unit_code TEXT NOT NULL,
    school_type TEXT,
    school_year INTEGER,
    start_date TEXT,
    end_date TEXT,
    PRIMARY KEY (person_id, seq)
);
-- Roles per school unit: the guard's "would a unit lose every role" count.
CREATE INDEX enrolments_unit ON enrolments (school_unit_code);

-- A staff member's duty (tjänstgöring) at a school unit; assignments is JSON
-- [{"group", "kind", "start", "end"}] (e.g. Mentor of a class).
CREATE TABLE duties (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    school_unit_code TEXT NOT NULL,
    duty_role TEXT NOT NULL,
    start_date TEXT,
    end_date TEXT,
    assignments TEXT NOT NULL DEFAULT '[]',
    sync_hash TEXT NOT NULL
);
CREATE INDEX duties_person ON duties (person_id);
CREATE INDEX duties_source ON duties (source);
CREATE INDEX duties_unit ON duties (school_unit_code);

-- Guardianships come from the child's register record (its responsibles).
ALTER TABLE guardianships ADD COLUMN relation_type TEXT NOT NULL DEFAULT 'Vårdnadshavare';
ALTER TABLE guardianships ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
CREATE INDEX guardianships_student ON guardianships (student_id);

-- A purged person's username and eppn, so they are never given to someone else.
CREATE TABLE identifier_tombstones (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    purged_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);

-- One row per sync run, for the CLI and the admin UI. status: running, applied, held,
-- approved, rejected, failed, dry-run. counts/report/diff are JSON; plan is the held plan.
CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    counts TEXT NOT NULL DEFAULT '{}',
    report TEXT NOT NULL DEFAULT '{}',
    diff TEXT NOT NULL DEFAULT '[]',
    reason TEXT,
    plan TEXT,
    watermark BIGINT
);
CREATE INDEX sync_runs_source ON sync_runs (source, id);

-- Per source: the incremental watermark and a lease so only one instance syncs at a time.
CREATE TABLE sync_state (
    source TEXT PRIMARY KEY,
    watermark BIGINT,
    last_full BIGINT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
