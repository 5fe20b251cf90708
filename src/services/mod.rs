//! The registry of relying parties, shared by the protocol fronts that serve them, the
//! command line and the admin front that manage them: OIDC client registrations
//! (`oidc_client`), SAML SP registrations with their metadata (`saml_sp`), and the
//! attribute profile an SP's release is computed with (`attributes`). No HTTP server.

pub mod attributes;
pub mod oidc_client;
pub mod saml_sp;
pub mod saml_sp_facts;
