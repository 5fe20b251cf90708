//! Services: the relying parties people log in to, OIDC clients (`oidc.rs`) and SAML SPs
//! (`saml.rs`), listed together (`list.rs`), with what each may learn and how people log in
//! to it (`policy.rs`).

mod list;
mod oidc;
mod policy;
mod saml;

use super::Admin;
use axum::Router;

pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .merge(list::routes())
        .merge(oidc::routes())
        .merge(saml::routes())
        .merge(policy::routes())
}
