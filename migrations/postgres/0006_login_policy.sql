-- Per-service login policy: the login methods a relying party allows (JSON list of
-- `password`, `bankid`, `upstream:NAME`; empty = every enabled method) and the lowest level
-- of assurance it accepts (a LoA URI; NULL = any).
ALTER TABLE relying_parties ADD COLUMN allowed_methods TEXT NOT NULL DEFAULT '[]';
ALTER TABLE relying_parties ADD COLUMN min_level TEXT;
ALTER TABLE saml_sps ADD COLUMN allowed_methods TEXT NOT NULL DEFAULT '[]';
ALTER TABLE saml_sps ADD COLUMN min_level TEXT;
