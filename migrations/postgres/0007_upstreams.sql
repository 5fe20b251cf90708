-- Federation: upstream OpenID providers and SAML IdPs, the links from an upstream subject to
-- a person, and the short-lived state of a login that went to an upstream.
-- PostgreSQL dialect; migrations/sqlite/0007_upstreams.sql is the same schema.

-- One row per configured upstream. kind 'oidc' uses issuer, client_id, client_secret (sealed
-- under the KEK with the label "upstream:NAME:client_secret") and scopes; kind 'saml' uses
-- metadata_url and/or metadata (the document as given or last fetched).
CREATE TABLE upstreams (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    logo TEXT,
    -- The level of assurance (an LoA URI) a login through this upstream reaches.
    level TEXT NOT NULL,
    -- The linking rule UPSTREAM_CLAIM=PERSON_FIELD.
    link_claim TEXT NOT NULL,
    link_field TEXT NOT NULL,
    -- JSON array of [claim, value] pins checked on every login.
    require_claims TEXT NOT NULL DEFAULT '[]',
    issuer TEXT,
    client_id TEXT,
    client_secret TEXT,
    -- JSON array of scopes.
    scopes TEXT NOT NULL DEFAULT '[]',
    metadata_url TEXT,
    metadata TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- (upstream, subject) decides once linked; one person has at most one subject per upstream.
CREATE TABLE federated_links (
    upstream TEXT NOT NULL REFERENCES upstreams (name) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    PRIMARY KEY (upstream, subject)
);
CREATE UNIQUE INDEX federated_links_person ON federated_links (upstream, person_id);
CREATE INDEX federated_links_person_id ON federated_links (person_id);

-- A login sent to an upstream and not back yet. id is the SHA-256 of the handle the
-- upstream echoes (OIDC state, SAML RelayState); binding the SHA-256 of the browser's
-- login-binding cookie; taken once by a single DELETE.
CREATE TABLE upstream_logins (
    id TEXT PRIMARY KEY,
    upstream TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    binding TEXT NOT NULL,
    nonce TEXT,
    pkce_verifier TEXT,
    -- The id of the request sent (SAML AuthnRequest ID, checked as InResponseTo).
    request_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX upstream_logins_expires ON upstream_logins (expires_at);

-- The upstream ID token of an SSO session that came from an upstream OpenID provider (sealed
-- with the token key), kept for RP-initiated logout at the upstream (id_token_hint).
CREATE TABLE upstream_sessions (
    session_id TEXT PRIMARY KEY,
    upstream TEXT NOT NULL,
    id_token TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
