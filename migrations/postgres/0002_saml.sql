-- The SAML2 IdP front.

-- Registered service providers: their metadata as received (parsed on load) and the
-- administrator's policy for them (JSON: release list, NameID, signing, IdP-initiated).
CREATE TABLE saml_sps (
    entity_id TEXT PRIMARY KEY,
    -- The display name from the metadata's mdui:UIInfo, for the login page.
    name TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL,
    metadata_url TEXT,
    valid_until BIGINT,
    fetched_at BIGINT NOT NULL,
    policy TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- AuthnRequest and LogoutRequest IDs seen, per issuer, until they could no longer be fresh:
-- the replay cache every instance shares.
CREATE TABLE saml_request_ids (
    issuer TEXT NOT NULL,
    request_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, request_id)
);

-- What each SP was told about the subject of an SSO session, for single logout.
CREATE TABLE saml_subjects (
    session_id TEXT NOT NULL REFERENCES sso_sessions (id) ON DELETE CASCADE,
    sp TEXT NOT NULL,
    name_id TEXT NOT NULL,
    name_id_format TEXT NOT NULL,
    session_index TEXT NOT NULL,
    PRIMARY KEY (session_id, sp)
);
CREATE INDEX saml_subjects_by_index ON saml_subjects (sp, session_index);

-- Self-signed certificates for the RSA signing keys (one per key id), so every instance
-- publishes the same certificate.
CREATE TABLE saml_certificates (
    kid TEXT PRIMARY KEY,
    cert_der TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Single logout in progress: the SPs still to visit and whom to answer at the end.
CREATE TABLE saml_logouts (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
