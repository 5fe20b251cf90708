-- Open BankID orders of login transactions, so any instance can collect them. The browser
-- knows only `id`; the orderRef and the (sealed) qrStartSecret never leave the server.
CREATE TABLE bankid_orders (
    id TEXT PRIMARY KEY,
    tx_id TEXT NOT NULL,
    -- SHA-256 of the browser's login binding cookie: only that browser may poll or finish.
    binding TEXT NOT NULL,
    -- 'login', or 'password' (self-service password reset after the login)
    purpose TEXT NOT NULL,
    -- 'this' (autostart) or 'other' (QR code)
    device TEXT NOT NULL,
    order_ref TEXT NOT NULL,
    auto_start_token TEXT NOT NULL,
    qr_start_token TEXT NOT NULL,
    qr_start_secret TEXT NOT NULL,
    -- SHA-256 of the nonce in the returnUrl (same device)
    return_nonce TEXT,
    -- When BankID's answer to auth arrived: the QR code's time zero.
    started_at BIGINT NOT NULL,
    -- 'pending', 'failed', 'complete', 'refused' (no single person matched), 'error'
    status TEXT NOT NULL,
    -- The hint code, or the catalogue key of an error.
    hint TEXT,
    person_id TEXT,
    collected_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bankid_orders_expires ON bankid_orders (expires_at);
