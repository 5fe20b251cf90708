-- A logout in progress is driven by one browser, one step at a time: the hash of the
-- single-use value handed out for the current step (NULL while none is out) and the hash of
-- the browser's SLO cookie (NULL until a browser is bound).
ALTER TABLE saml_logouts ADD COLUMN hop_hash TEXT;
ALTER TABLE saml_logouts ADD COLUMN browser_hash TEXT;
CREATE UNIQUE INDEX saml_logouts_by_hop ON saml_logouts (hop_hash);
