-- Retention (storage/retention.rs): purges find old rows through these, batch by batch,
-- instead of reading whole tables.
CREATE INDEX release_records_created ON release_records (created_at);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX sync_runs_finished ON sync_runs (finished_at);
-- Only runs that still hold a diff or a plan: once cleared they leave this index.
CREATE INDEX sync_runs_details ON sync_runs (finished_at) WHERE diff <> '[]' OR plan IS NOT NULL;
CREATE INDEX sso_sessions_expires ON sso_sessions (expires_at);
CREATE INDEX sso_sessions_ended ON sso_sessions (ended_at) WHERE ended_at IS NOT NULL;

-- Housekeeping's purges of expired short-lived rows, written on every login.
CREATE INDEX authn_transactions_expires ON authn_transactions (expires_at);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
CREATE INDEX saml_request_ids_expires ON saml_request_ids (expires_at);
