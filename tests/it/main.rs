//! Portvakt's integration tests: one binary. Each test starts the real server on a random
//! loopback port with its own database (SQLite by default; PostgreSQL when
//! PORTVAKT_TEST_DB=postgres) and drives it like a relying party and a browser would.

mod certs;
mod helpers;
mod server_logs;
mod webdriver;

mod admin;
mod architecture;
mod bankid;
mod bankid_interop;
mod bankid_stub;
mod browser;
mod cli;
mod db_trouble;
mod demo;
mod limits;
mod login;
mod login_policy;
mod logout;
mod logs;
mod multi_instance;
mod negative;
mod observability;
mod oidc_flow;
mod operations;
mod retention;
mod rotation;
mod saml;
mod saml_dsig;
mod saml_interop;
mod saml_registry;
mod saml_slo;
mod saml_sp;
mod scim;
mod scim_mtls;
mod sync;
mod sync_tls;
mod upstream;
mod upstream_saml;
mod upstream_saml_flow;
mod upstream_saml_logout;
