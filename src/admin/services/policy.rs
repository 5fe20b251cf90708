//! What a service may learn about people (`release.rs`), a preview of what one person would
//! release to it (`preview.rs`), and how people must log in to it (`login.rs`). Both
//! protocols: `?protocol=oidc|saml&id=…` (an OIDC client_id or a SAML entityID).

mod login;
mod preview;
mod release;

use crate::admin::Admin;
use crate::storage::{self, clients::ClientRecord, saml::SpRecord};
use crate::web::{WebError, paths};
use axum::Router;
use axum::http::StatusCode;
use serde::Deserialize;

pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .merge(release::routes())
        .merge(preview::routes())
        .merge(login::routes())
}

/// Which service a page is about.
#[derive(Debug, Deserialize)]
pub(crate) struct Which {
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub id: String,
}

/// A registered service as these pages need it.
pub(crate) enum Service {
    Oidc(ClientRecord),
    Saml(SpRecord),
}

impl Service {
    /// The service `which` names, or the error page "no such service".
    pub async fn load(admin: &Admin, which: &Which) -> Result<Service, WebError> {
        let found = match which.protocol.as_str() {
            "oidc" => storage::clients::get(&admin.db, &which.id)
                .await?
                .map(Service::Oidc),
            "saml" => storage::saml::get_sp(&admin.db, &which.id)
                .await?
                .map(Service::Saml),
            _ => None,
        };
        found.ok_or_else(|| WebError::new(StatusCode::NOT_FOUND, "admin.policy.no_service"))
    }

    pub fn protocol(&self) -> &'static str {
        match self {
            Service::Oidc(_) => "oidc",
            Service::Saml(_) => "saml",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Service::Oidc(c) => &c.client_id,
            Service::Saml(s) => &s.entity_id,
        }
    }

    /// The name shown: the registered name, else the id.
    pub fn name(&self) -> &str {
        let n = match self {
            Service::Oidc(c) => &c.name,
            Service::Saml(s) => &s.name,
        };
        if n.is_empty() { self.id() } else { n }
    }

    pub fn release(&self) -> &[String] {
        match self {
            Service::Oidc(c) => &c.release,
            Service::Saml(s) => &s.policy.release,
        }
    }

    pub fn login(&self) -> &storage::LoginPolicy {
        match self {
            Service::Oidc(c) => &c.login,
            Service::Saml(s) => &s.policy.login,
        }
    }

    /// How audit events name it: `oidc:ID` or `saml:ENTITYID`.
    pub fn target(&self) -> String {
        format!("{}:{}", self.protocol(), self.id())
    }

    /// `protocol=…&id=…`, encoded for a link.
    pub fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("protocol", self.protocol())
            .append_pair("id", self.id())
            .finish()
    }

    /// The service's own page (built by the services pages).
    pub fn page(&self) -> String {
        let path = match self {
            Service::Oidc(_) => paths::ADMIN_OIDC,
            Service::Saml(_) => paths::ADMIN_SAML,
        };
        let id = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id", self.id())
            .finish();
        format!("{path}?{id}")
    }
}

/// A POSTed form's fields, repeated names kept (checkbox groups).
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Fields(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn one(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn which(&self) -> Which {
        Which {
            protocol: self.one("protocol"),
            id: self.one("id"),
        }
    }
}
