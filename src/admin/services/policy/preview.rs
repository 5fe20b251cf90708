//! What one person would release to a service now, computed by the functions the real
//! release calls: `directory::release::released_now` (OIDC ID token and userinfo) with every
//! scope the client is registered for, and `services::attributes::release` (the SAML
//! assertion). Only the session's level is not known outside a login.

use super::release::group_title;
use super::{Service, Which};
use crate::admin::{Access, Admin, Frame, audit};
use crate::directory::{self, release};
use crate::services::attributes;
use crate::storage;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

pub(super) fn routes() -> Router<Admin> {
    Router::new().route(paths::ADMIN_RELEASE_PREVIEW, get(preview_get))
}

/// One released claim or attribute.
pub(crate) struct Row {
    pub name: String,
    pub group: &'static str,
    pub sensitive: bool,
    /// The values; civic numbers masked.
    pub values: Vec<String>,
    /// No value without a login (eduPersonAssurance).
    pub depends_on_login: bool,
}

#[derive(Template)]
#[template(path = "admin/release_preview.html")]
struct PreviewPage {
    lang: Lang,
    frame: Frame,
    name: String,
    release_page: String,
    person: String,
    person_name: String,
    protected: bool,
    /// OIDC: the scopes assumed (every scope the client is registered for).
    scopes: String,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct PreviewQuery {
    #[serde(flatten)]
    which: Which,
    #[serde(default)]
    person: String,
}

/// A civic number as the preview shows it: the date of birth, the last four hidden.
pub(crate) fn mask(civic: &str) -> String {
    let date: String = civic.chars().take(8).collect();
    format!("{date}-XXXX")
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Null => vec![],
        other => vec![other.to_string()],
    }
}

async fn preview_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, WebError> {
    let service = Service::load(&admin, &q.which).await?;
    let no_person = || WebError::new(StatusCode::NOT_FOUND, "admin.policy.no_person");
    let username = q.person.trim();
    if username.is_empty() {
        return Err(no_person());
    }
    // As the real release: only an active person releases anything. A protected identity
    // is unknown to an admin without admin-protected (the same answer as no person at all).
    let person = storage::persons::by_login_name(&admin.db, username)
        .await?
        .filter(|p| p.active)
        .filter(|p| access.may_see(p))
        .ok_or_else(no_person)?;
    let now = admin.now();
    let shown = (
        person.id.clone(),
        person.username.clone(),
        person.display_name(),
        person.protected_identity,
    );
    let mut scopes = String::new();
    let rows: Vec<Row> = match &service {
        Service::Oidc(c) => {
            scopes = c.scopes.join(" ");
            release::released_now(
                &admin.db,
                &admin.config.directory,
                person,
                &c.scopes,
                &c.release,
                now,
            )
            .await?
            .into_iter()
            .map(|(claim, v)| {
                let g = release::claim_reveals(&claim);
                let mut values = strings(&v);
                if g.sensitive() {
                    values = values.iter().map(|c| mask(c)).collect();
                }
                Row {
                    name: claim,
                    group: group_title(g),
                    sensitive: g.sensitive(),
                    values,
                    depends_on_login: false,
                }
            })
            .collect()
        }
        Service::Saml(s) => {
            let sp = s.load(now).map_err(|e| {
                tracing::error!(error = %e, "stored SP metadata unreadable");
                WebError::new(StatusCode::INTERNAL_SERVER_ERROR, "error.internal")
            })?;
            let details = directory::details(
                &admin.db,
                &admin.config.directory,
                person,
                directory::roles::day_of(now),
            )
            .await?;
            let scope = admin.config.saml_scope();
            let subject = attributes::Subject {
                details: &details,
                acr: None,
                scope: &scope,
            };
            let mut rows: Vec<Row> = attributes::release(&sp, &subject)
                .into_iter()
                .map(|(a, values)| {
                    let g = attributes::reveals(a);
                    Row {
                        name: a.to_string(),
                        group: group_title(g),
                        sensitive: g.sensitive(),
                        values: if g.sensitive() {
                            values.iter().map(|c| mask(c)).collect()
                        } else {
                            values
                        },
                        depends_on_login: false,
                    }
                })
                .collect();
            if sp
                .released(attributes::canonical)
                .contains(&attributes::ASSURANCE)
            {
                rows.push(Row {
                    name: attributes::ASSURANCE.to_string(),
                    group: group_title(attributes::reveals(attributes::ASSURANCE)),
                    sensitive: false,
                    values: vec![],
                    depends_on_login: true,
                });
            }
            rows
        }
    };
    let (person_id, username, person_name, protected) = shown;
    audit::viewed(
        &admin.db,
        &access,
        "service.release_previewed",
        &format!("{} person:{person_id}", service.target()),
        now,
    )
    .await?;
    web::render(&PreviewPage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        name: service.name().to_string(),
        release_page: format!("{}?{}", paths::ADMIN_RELEASE, service.query()),
        person: username,
        person_name,
        protected,
        scopes,
        rows,
    })
}
