//! What the SAML pages show of an SP (its metadata, parsed) and the policy form, shared by
//! the preview before registering and the SP's own page.

use crate::admin::home::time;
use crate::services::saml_sp::{self, NameIdRule, Policy, SpMetadata};
use crate::services::saml_sp_facts::{self, Requested};

/// An ACS or SLO endpoint as a row.
pub struct EndpointRow {
    pub binding: String,
    pub location: String,
    pub index: String,
    pub is_default: bool,
}

/// A certificate as a row; `state` is "ok", "expiring" or "expired".
pub struct CertRow {
    pub usage_key: &'static str,
    pub subject: String,
    pub not_after: String,
    pub state: &'static str,
    pub sha256: String,
}

/// The facts of an SP's metadata (`templates/admin/saml_entity.html`).
pub struct EntityView {
    pub entity_id: String,
    pub display_name: String,
    pub acs: Vec<EndpointRow>,
    pub slo: Vec<EndpointRow>,
    pub certs: Vec<CertRow>,
    pub requested: Vec<Requested>,
    pub name_id_formats: Vec<String>,
    pub authn_requests_signed: bool,
    pub valid_until: String,
    /// A certificate has expired or expires within 30 days.
    pub cert_warning: bool,
}

/// The binding's last part (HTTP-POST, HTTP-Redirect): the URN's prefix says nothing.
fn short_binding(b: &str) -> String {
    b.rsplit(':').next().unwrap_or(b).to_string()
}

fn rows(endpoints: &[saml_sp::Endpoint]) -> Vec<EndpointRow> {
    endpoints
        .iter()
        .map(|e| EndpointRow {
            binding: short_binding(&e.binding),
            location: e.location.clone(),
            index: e.index.map(|i| i.to_string()).unwrap_or_default(),
            is_default: e.is_default,
        })
        .collect()
}

impl EntityView {
    /// `doc` is the document `meta` was parsed from (for isRequired).
    pub fn new(meta: &SpMetadata, doc: &str, now: i64) -> Self {
        let certs: Vec<CertRow> = saml_sp_facts::certificates(meta)
            .into_iter()
            .map(|c| CertRow {
                usage_key: if c.usage == "signing" {
                    "admin.saml.cert.signing"
                } else {
                    "admin.saml.cert.encryption"
                },
                state: if c.expired(now) {
                    "expired"
                } else if c.expiring(now) {
                    "expiring"
                } else {
                    "ok"
                },
                not_after: c.not_after.map(time).unwrap_or_default(),
                subject: c.subject,
                sha256: c.sha256,
            })
            .collect();
        Self {
            entity_id: meta.entity_id.clone(),
            display_name: meta.display_name.clone().unwrap_or_default(),
            acs: rows(&meta.acs),
            slo: rows(&meta.slo),
            cert_warning: certs.iter().any(|c| c.state != "ok"),
            certs,
            requested: saml_sp_facts::requested_attributes(doc),
            name_id_formats: meta.name_id_formats.clone(),
            authn_requests_signed: meta.authn_requests_signed,
            valid_until: meta.valid_until.map(time).unwrap_or_default(),
        }
    }
}

/// An option of a <select>.
pub struct Opt {
    pub value: String,
    pub label: &'static str,
    pub selected: bool,
}

/// NameID formats offered, by the short names `NameIdRule::parse` takes; "" is the default
/// (transient, unless the request asks for another the SP's metadata allows).
const FORMATS: [(&str, &str); 5] = [
    ("", "admin.saml.nameid.default"),
    ("transient", "admin.saml.nameid.transient"),
    ("persistent", "admin.saml.nameid.persistent"),
    ("emailAddress", "admin.saml.nameid.email"),
    ("unspecified", "admin.saml.nameid.unspecified"),
];

const SOURCES: [(&str, &str); 4] = [
    ("", "admin.saml.source.none"),
    ("mail", "admin.saml.source.mail"),
    ("eppn", "admin.saml.source.eppn"),
    ("username", "admin.saml.source.username"),
];

/// The policy form's values as typed (kept when the form comes back with an error).
#[derive(Debug, Clone, Default)]
pub struct PolicyFields {
    pub name_id_format: String,
    pub name_id_source: String,
    pub sign_response: bool,
    pub idp_initiated: bool,
    pub require_signed_requests: bool,
}

impl PolicyFields {
    /// The form's fields from a policy.
    pub fn of(p: &Policy) -> Self {
        let (format, source) = match &p.name_id {
            None => (String::new(), String::new()),
            Some(rule) => (
                FORMATS
                    .iter()
                    .find(|(short, _)| short_format(short) == Some(rule.format.as_str()))
                    .map(|(s, _)| s.to_string())
                    .unwrap_or_else(|| rule.format.clone()),
                rule.source.clone().unwrap_or_default(),
            ),
        };
        Self {
            name_id_format: format,
            name_id_source: source,
            sign_response: p.sign_response,
            idp_initiated: p.idp_initiated,
            require_signed_requests: p.require_signed_requests,
        }
    }

    /// Reads the fields of a submitted form (`get` gives a field's value).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Self {
        let on = |k: &str| get(k).is_some_and(|v| v == "on" || v == "true");
        Self {
            name_id_format: get("name_id_format").unwrap_or_default().trim().to_string(),
            name_id_source: get("name_id_source").unwrap_or_default().trim().to_string(),
            sign_response: on("sign_response"),
            idp_initiated: on("idp_initiated"),
            require_signed_requests: on("require_signed_requests"),
        }
    }

    /// Applies the fields to `policy` (release, login policy and pinned certificate kept).
    /// Err: the catalogue key of what is wrong with the NameID.
    pub fn apply(&self, mut policy: Policy) -> Result<Policy, &'static str> {
        policy.name_id = match self.name_id_format.as_str() {
            "" if self.name_id_source.is_empty() => None,
            "" => return Err("admin.saml.err.source_without_format"),
            f => {
                if !FORMATS.iter().any(|(s, _)| *s == f) && !f.starts_with("urn:") {
                    return Err("admin.saml.err.format");
                }
                let needs_source = !matches!(
                    short_format(f).unwrap_or(f),
                    saml_sp::TRANSIENT | saml_sp::PERSISTENT
                );
                match (needs_source, self.name_id_source.as_str()) {
                    (true, "") => return Err("admin.saml.err.needs_source"),
                    (false, s) if !s.is_empty() => return Err("admin.saml.err.no_source"),
                    (_, s) if !s.is_empty() && !saml_sp::NAME_ID_SOURCES.contains(&s) => {
                        return Err("admin.saml.err.source");
                    }
                    _ => {}
                }
                let spec = if self.name_id_source.is_empty() {
                    f.to_string()
                } else {
                    format!("{f}={}", self.name_id_source)
                };
                Some(NameIdRule::parse(&spec).map_err(|_| "admin.saml.err.format")?)
            }
        };
        policy.sign_response = self.sign_response;
        policy.idp_initiated = self.idp_initiated;
        policy.require_signed_requests = self.require_signed_requests;
        Ok(policy)
    }

    pub fn formats(&self) -> Vec<Opt> {
        let mut list = options(&FORMATS, &self.name_id_format);
        // A format set from the command line by its URN stays selectable.
        if !list.iter().any(|o| o.selected) {
            list.push(Opt {
                value: self.name_id_format.clone(),
                label: "admin.saml.nameid.other",
                selected: true,
            });
        }
        list
    }

    pub fn sources(&self) -> Vec<Opt> {
        options(&SOURCES, &self.name_id_source)
    }
}

fn short_format(short: &str) -> Option<&'static str> {
    match short {
        "transient" => Some(saml_sp::TRANSIENT),
        "persistent" => Some(saml_sp::PERSISTENT),
        "emailAddress" => Some(saml_sp::EMAIL),
        "unspecified" => Some(saml_sp::UNSPECIFIED),
        _ => None,
    }
}

fn options(list: &[(&'static str, &'static str)], chosen: &str) -> Vec<Opt> {
    list.iter()
        .map(|(value, label)| Opt {
            value: value.to_string(),
            label,
            selected: *value == chosen,
        })
        .collect()
}

/// What an audit event says of an SP's policy: no metadata, no certificate.
#[derive(serde::Serialize)]
pub struct PolicyAudit<'a> {
    pub entity_id: &'a str,
    pub name_id: &'a Option<NameIdRule>,
    pub sign_response: bool,
    pub idp_initiated: bool,
    pub require_signed_requests: bool,
    pub release: &'a [String],
    pub metadata_url: Option<&'a str>,
    pub metadata_signing_cert_pinned: bool,
    pub disabled: bool,
}

impl<'a> PolicyAudit<'a> {
    pub fn new(
        entity_id: &'a str,
        p: &'a Policy,
        metadata_url: Option<&'a str>,
        disabled: bool,
    ) -> Self {
        Self {
            entity_id,
            name_id: &p.name_id,
            sign_response: p.sign_response,
            idp_initiated: p.idp_initiated,
            require_signed_requests: p.require_signed_requests,
            release: &p.release,
            metadata_url,
            metadata_signing_cert_pinned: p.metadata_signing_cert.is_some(),
            disabled,
        }
    }
}

/// `?id=` for an entity ID (a URL itself).
pub fn id_query(entity_id: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(entity_id.as_bytes()).collect();
    format!("id={id}")
}
