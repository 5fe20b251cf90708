-- Sessions that came from an upstream SAML IdP, with what it called the person (NameID and
-- SessionIndex), so that the IdP's LogoutRequest can end exactly those sessions.
CREATE TABLE upstream_saml_sessions (
    session_id TEXT NOT NULL REFERENCES sso_sessions (id) ON DELETE CASCADE,
    upstream TEXT NOT NULL,
    name_id TEXT NOT NULL,
    session_index TEXT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, upstream)
);
CREATE INDEX upstream_saml_sessions_name ON upstream_saml_sessions (upstream, name_id);
