//! XML security shared by both SAML roles: the namespace-aware reader (`xml`) and XML
//! signatures (`dsig`, the only caller of libxmlsec1). No HTTP and no storage: the SAML IdP
//! (`saml`) and the upstream SAML client (`upstream::saml`) both read and verify through
//! here, so there is one parser for verifying and reading.

pub mod c14n;
pub mod dsig;
pub mod xml;
