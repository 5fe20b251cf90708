//! Portvakt: the identity provider of a Swedish municipality's schools.
//!
//! The module map (docs/architecture.md says how a request travels and holds the table of
//! allowed directions that `tests/it/architecture.rs` checks).
//!
//! Fronts speak HTTP to a party outside:
//!
//! | module      | owns                                                                   |
//! |-------------|------------------------------------------------------------------------|
//! | `login`     | the login, BankID and password-reset pages; the SSO and login cookies  |
//! | `oidc`      | the OpenID Provider: discovery, authorize, token, userinfo, logout     |
//! | `saml`      | the SAML IdP: metadata, SSO, the Response, single logout               |
//! | `admin`     | the admin web UI: services and their policies, people, passwords       |
//!
//! The core speaks plain Rust values (no axum, no `web`, no front):
//!
//! | module      | owns                                                                   |
//! |-------------|------------------------------------------------------------------------|
//! | `authn`     | login transactions, SSO sessions, the password and BankID methods      |
//! | `directory` | people, roles, school units, groups; claims and release policy         |
//! | `sync`      | the metakatalog: SS 12000 source, plan, guard, apply, run records      |
//! | `storage`   | every SQL statement and the rows it stores; the SQLite/PostgreSQL pool |
//! | `keys`      | key-encryption key, signing keys, rotation, JWKS, server secrets       |
//! | `services`  | the relying parties' registry: OIDC clients, SAML SPs, attribute profile|
//!
//! Around them:
//!
//! | module      | owns                                                                   |
//! |-------------|------------------------------------------------------------------------|
//! | `bankid`    | the BankID RP API v6 client, QR codes, messages                        |
//! | `upstream`  | upstream identity providers (OIDC, SAML): protocol clients, `Identity` |
//! | `web`       | HTTP glue: errors, templates, i18n, CSRF, security headers, paths      |
//! | `xmlsec`    | the XML reader and XML signatures (libxmlsec1), shared by SAML roles   |
//! | `sim`       | simulators: the SS 12000 mock and generator, the BankID stub           |
//! | `config`    | settings from `portvakt.toml` and `PORTVAKT_*` env vars                 |
//! | `clock`     | the one clock: the system's, or a movable one in tests                 |
//! | `metrics`   | the process's Prometheus counters and histograms, recorded anywhere    |
//! | `logging`   | log lines as text or JSON, filtered by `PORTVAKT_LOG`                  |
//! | `demo`      | a synthetic municipality and demo relying parties (demo mode only)     |
//! | `app`       | shared state, the router, supervised tasks, probes and `/metrics`      |
//! | `cli`       | the command line, one file per command group                           |
//!
//! The fronts never import each other; the core imports no front.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::await_holding_lock
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
pub mod app;
pub mod authn;
pub mod bankid;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directory;
pub mod keys;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod saml;
pub mod scim;
pub mod services;
pub mod sim;
pub mod storage;
pub mod sync;
pub mod upstream;
pub mod web;
pub mod xmlsec;

/// An error and its causes on one line, for logs (never for people: it may be technical).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
