-- Portvakt schema, PostgreSQL dialect. Portable types only (DEPENDENCIES.md §4):
-- INTEGER 0/1 for booleans, BIGINT unix seconds (UTC) for times, TEXT for ids and JSON.
-- migrations/sqlite/0001_init.sql is the same schema; keep both in step.

CREATE TABLE persons (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    eppn TEXT NOT NULL UNIQUE,
    given_name TEXT NOT NULL DEFAULT '',
    family_name TEXT NOT NULL DEFAULT '',
    email TEXT,
    civic_no TEXT,
    protected_identity INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active',
    source TEXT NOT NULL DEFAULT 'local',
    external_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE school_units (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'local'
);

CREATE TABLE school_groups (
    id TEXT PRIMARY KEY,
    school_unit_code TEXT NOT NULL REFERENCES school_units (code),
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'class',
    source TEXT NOT NULL DEFAULT 'local'
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES school_groups (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, person_id)
);

-- school_unit_code is '' for a role that is not tied to one school unit (e.g. admin).
CREATE TABLE person_roles (
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    school_unit_code TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (person_id, role, school_unit_code)
);

CREATE TABLE guardianships (
    guardian_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    student_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    PRIMARY KEY (guardian_id, student_id)
);

CREATE TABLE credentials (
    person_id TEXT PRIMARY KEY REFERENCES persons (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE relying_parties (
    id TEXT PRIMARY KEY,
    protocol TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    secret_hash TEXT,
    public_client INTEGER NOT NULL DEFAULT 0,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    backchannel_logout_uri TEXT,
    scopes TEXT NOT NULL DEFAULT '[]',
    grants TEXT NOT NULL DEFAULT '[]',
    subject_type TEXT NOT NULL DEFAULT 'pairwise',
    sector TEXT,
    id_token_alg TEXT NOT NULL DEFAULT 'ES256',
    release_claims TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- id is the SHA-256 of the cookie value, so a database dump holds no usable session.
CREATE TABLE sso_sessions (
    id TEXT PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    methods TEXT NOT NULL,
    acr TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX sso_sessions_person ON sso_sessions (person_id);

CREATE TABLE session_participants (
    session_id TEXT NOT NULL REFERENCES sso_sessions (id) ON DELETE CASCADE,
    rp_id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, rp_id)
);

CREATE TABLE authn_transactions (
    id TEXT PRIMARY KEY,
    protocol TEXT NOT NULL,
    rp_id TEXT NOT NULL,
    request TEXT NOT NULL,
    -- The SSO session whose login completed this transaction (set by the login method).
    session_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE auth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    grant_data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    access_jti TEXT,
    access_expires_at BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    grant_data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activate_at BIGINT NOT NULL
);

CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);

CREATE TABLE release_records (
    id BIGSERIAL PRIMARY KEY,
    person_id TEXT NOT NULL,
    rp_id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    artifact TEXT NOT NULL,
    claims TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX release_records_person ON release_records (person_id);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
);
