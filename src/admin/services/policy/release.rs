//! A service's release list as a checklist grouped by what each item reveals. The grouping
//! is the core's (`directory::release::claim_reveals`, `services::attributes::reveals`).

use super::{Fields, Service, Which};
use crate::admin::{Access, Admin, Frame, audit};
use crate::directory::release::{self, Reveals};
use crate::services::attributes;
use crate::storage;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

pub(super) fn routes() -> Router<Admin> {
    Router::new().route(paths::ADMIN_RELEASE, get(release_get).post(release_post))
}

/// One claim or attribute of the checklist.
pub(crate) struct Item {
    pub name: String,
    /// Catalogue key of what it is, in words an administrator reads (`admin.item.NAME`).
    pub label: String,
    /// The OIDC scope that asks for it, or the SAML attribute's Name.
    pub note: String,
    pub checked: bool,
    /// SAML: the metadata requests attributes and not this one, so it is not sent.
    pub not_requested: bool,
}

/// The items revealing one kind of thing.
pub(crate) struct Group {
    pub title: &'static str,
    pub sensitive: bool,
    pub items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "admin/release.html")]
struct ReleasePage {
    lang: Lang,
    frame: Frame,
    protocol: &'static str,
    id: String,
    name: String,
    service_page: String,
    groups: Vec<Group>,
    saved: bool,
}

#[derive(Deserialize)]
struct ReleaseQuery {
    #[serde(flatten)]
    which: Which,
    #[serde(default)]
    saved: Option<String>,
}

/// Every name a service of this protocol may be released, with what it reveals and its note.
fn catalogue(service: &Service) -> Vec<(&'static str, Reveals, String)> {
    match service {
        Service::Oidc(_) => release::known_claims()
            .into_iter()
            .map(|c| {
                let scope = release::scope_of(c).unwrap_or_default();
                (c, release::claim_reveals(c), format!("scope {scope}"))
            })
            .collect(),
        Service::Saml(_) => attributes::CATALOGUE
            .iter()
            .map(|(f, oid)| (*f, attributes::reveals(f), oid.to_string()))
            .collect(),
    }
}

/// The catalogue key describing a claim or attribute.
fn label_key(name: &str) -> String {
    format!("admin.item.{name}")
}

/// The names of the stored list as the catalogue names them (a SAML list may hold OIDs).
fn current(service: &Service) -> Vec<String> {
    match service {
        Service::Oidc(c) => c.release.clone(),
        Service::Saml(s) => s
            .policy
            .release
            .iter()
            .filter_map(|r| attributes::canonical(r))
            .map(String::from)
            .collect(),
    }
}

fn groups(admin: &Admin, service: &Service) -> Vec<Group> {
    let current = current(service);
    let requested: Vec<&'static str> = match service {
        Service::Saml(s) => s
            .load(admin.now())
            .map(|sp| {
                sp.meta
                    .requested_attributes
                    .iter()
                    .filter_map(|(name, friendly)| {
                        friendly
                            .as_deref()
                            .and_then(attributes::canonical)
                            .or_else(|| attributes::canonical(name))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Service::Oidc(_) => Vec::new(),
    };
    let all = catalogue(service);
    Reveals::ALL
        .into_iter()
        .map(|g| Group {
            title: group_title(g),
            sensitive: g.sensitive(),
            items: all
                .iter()
                .filter(|(_, r, _)| *r == g)
                .map(|(name, _, note)| Item {
                    name: name.to_string(),
                    label: label_key(name),
                    note: note.clone(),
                    checked: current.iter().any(|c| c == name),
                    not_requested: !requested.is_empty() && !requested.contains(name),
                })
                .collect(),
        })
        .collect()
}

pub(crate) fn group_title(g: Reveals) -> &'static str {
    match g {
        Reveals::Identity => "admin.policy.group.identity",
        Reveals::School => "admin.policy.group.school",
        Reveals::Contact => "admin.policy.group.contact",
        Reveals::CivicNumber => "admin.policy.group.civic_number",
    }
}

async fn release_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<ReleaseQuery>,
) -> Result<Response, WebError> {
    let service = Service::load(&admin, &q.which).await?;
    web::render(&ReleasePage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        protocol: service.protocol(),
        id: service.id().to_string(),
        name: service.name().to_string(),
        service_page: service.page(),
        groups: groups(&admin, &service),
        saved: q.saved.is_some(),
    })
}

async fn release_post(
    State(admin): State<Admin>,
    access: Access,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Fields::parse(&body);
    access.change(&admin, &form.one("csrf"))?;
    let service = Service::load(&admin, &form.which()).await?;
    let known = catalogue(&service);
    let mut chosen = form.all("release");
    // Only names of the catalogue, in its order: a forged name is refused, not stored.
    if chosen.iter().any(|c| !known.iter().any(|(k, _, _)| k == c)) {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "admin.policy.unknown_name",
        ));
    }
    chosen = known
        .iter()
        .filter(|(k, _, _)| chosen.iter().any(|c| c == k))
        .map(|(k, _, _)| k.to_string())
        .collect();
    let before = service.release().to_vec();
    let now = admin.now();
    let mut tx = admin.db.begin().await?;
    let found = match &service {
        Service::Oidc(c) => {
            storage::clients::set_release_in(&mut tx, &c.client_id, &chosen, now).await?
        }
        Service::Saml(s) => {
            let policy = storage::saml::Policy {
                release: chosen.clone(),
                ..s.policy.clone()
            };
            storage::saml::set_policy_in(&mut tx, &s.entity_id, &policy, now).await?
        }
    };
    if !found {
        return Err(WebError::new(
            StatusCode::NOT_FOUND,
            "admin.policy.no_service",
        ));
    }
    audit::change(
        &mut tx,
        &access,
        "service.release_changed",
        &service.target(),
        Some(&json!({ "release": before })),
        Some(&json!({ "release": chosen })),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "{}?{}&saved=1",
        paths::ADMIN_RELEASE,
        service.query()
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_and_attribute_is_described_in_both_languages() {
        let names = release::known_claims()
            .into_iter()
            .chain(attributes::CATALOGUE.iter().map(|(f, _)| *f));
        for n in names {
            for lang in [Lang::Sv, Lang::En] {
                assert_ne!(lang.t(&label_key(n)), "??", "{n}");
            }
        }
    }
}
