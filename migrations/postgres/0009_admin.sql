-- The admin web UI: its sessions, disabled relying parties, and the index that finds a
-- service's last login. (Both dialects share this file's text.)

-- An administrator's session at /admin, on top of the SSO session that proved who it is.
-- id is the SHA-256 of the admin cookie's value; it lives for [admin] idle_timeout without a
-- request, and never longer than its SSO session.
CREATE TABLE admin_sessions (
    id TEXT PRIMARY KEY,
    sso_session_id TEXT NOT NULL REFERENCES sso_sessions (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX admin_sessions_last_seen ON admin_sessions (last_seen);

-- A disabled relying party keeps its registration; its logins are refused with a page.
ALTER TABLE relying_parties ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE saml_sps ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- "Last login" per service in the admin list: the newest release record of each.
CREATE INDEX release_records_rp ON release_records (rp_id, created_at);
