//! Portvakt: the identity provider of a Swedish municipality's schools.
//!
//! The module map (see docs/architecture.md for how a request travels):
//!
//! | module      | owns                                                                 |
//! |-------------|----------------------------------------------------------------------|
//! | `config`    | settings from `portvakt.toml` and `PORTVAKT_*` env vars               |
//! | `storage`   | every SQL statement, migrations, the SQLite/PostgreSQL pool          |
//! | `directory` | people, roles, school units, groups; claims and release policy       |
//! | `authn`     | login transactions, SSO sessions, the password and BankID methods    |
//! | `bankid`    | the BankID RP API v6 client, QR codes, messages                      |
//! | `oidc`      | the OpenID Provider: discovery, authorize, token, userinfo, logout   |
//! | `keys`      | key-encryption key, signing keys, rotation, JWKS, server secrets     |
//! | `web`       | HTTP glue: errors, templates, i18n, CSRF, security headers, paths    |
//! | `sim`       | simulators: the SS 12000 mock and generator, the BankID stub         |
//! | `demo`      | a synthetic municipality and demo relying parties (demo mode only)   |
//! | `app`       | shared state and the router                                         |
//!
//! Protocol fronts (`oidc`, later `saml`) never import each other; `authn` imports neither.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::await_holding_lock
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod authn;
pub mod bankid;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directory;
pub mod keys;
pub mod login;
pub mod oidc;
pub mod saml;
pub mod sim;
pub mod storage;
pub mod sync;
pub mod web;

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
