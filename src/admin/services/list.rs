//! The services list: OIDC clients and SAML SPs in one table, with search, a protocol
//! filter, status and last login. One query (`storage::clients::list_services`); the search
//! runs over its rows, as a municipality has tens or hundreds of services, not thousands.

use crate::admin::{Access, Admin, Frame, home::time};
use crate::storage::{self, clients::ServiceRow};
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

pub(super) fn routes() -> Router<Admin> {
    Router::new().route(paths::ADMIN_SERVICES, get(list_get))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    protocol: String,
    /// The id of a service just removed, for the notice.
    #[serde(default)]
    removed: String,
}

/// One row of the table.
struct Row {
    name: String,
    id: String,
    protocol: &'static str,
    /// Catalogue key of the status and the badge's class.
    status: &'static str,
    status_class: &'static str,
    last_login: Option<String>,
    page: String,
    release: String,
    login_policy: String,
}

#[derive(Template)]
#[template(path = "admin/services.html")]
struct ListPage {
    lang: Lang,
    frame: Frame,
    q: String,
    protocol: String,
    rows: Vec<Row>,
    total: usize,
    removed: String,
}

/// Whether `row` matches the search: a case-insensitive substring of its name or id.
fn matches(row: &ServiceRow, q: &str, protocol: &str) -> bool {
    let q = q.trim().to_lowercase();
    (protocol != "oidc" && protocol != "saml" || row.protocol == protocol)
        && (q.is_empty()
            || row.name.to_lowercase().contains(&q)
            || row.id.to_lowercase().contains(&q))
}

fn row(s: ServiceRow, now: i64) -> Row {
    let (status, status_class) = if s.disabled {
        ("admin.services.status.disabled", "off")
    } else if s.valid_until.is_some_and(|t| t < now) {
        ("admin.services.status.expired", "sensitive")
    } else {
        ("admin.services.status.active", "on")
    };
    let id = query_value(&s.id);
    let (protocol, page) = if s.protocol == "saml" {
        ("SAML", format!("{}?id={id}", paths::ADMIN_SAML))
    } else {
        ("OIDC", format!("{}?id={id}", paths::ADMIN_OIDC))
    };
    Row {
        name: if s.name.is_empty() {
            s.id.clone()
        } else {
            s.name.clone()
        },
        release: format!("{}?protocol={}&id={id}", paths::ADMIN_RELEASE, s.protocol),
        login_policy: format!(
            "{}?protocol={}&id={id}",
            paths::ADMIN_LOGIN_POLICY,
            s.protocol
        ),
        id: s.id,
        protocol,
        status,
        status_class,
        last_login: s.last_login.map(time),
        page,
    }
}

async fn list_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let now = admin.now();
    let all = storage::clients::list_services(&admin.db).await?;
    let total = all.len();
    let rows = all
        .into_iter()
        .filter(|s| matches(s, &query.q, &query.protocol))
        .map(|s| row(s, now))
        .collect();
    web::render(&ListPage {
        lang,
        frame: Frame::new(lang, &access, "services"),
        q: query.q,
        protocol: query.protocol,
        rows,
        total,
        removed: query.removed,
    })
}

/// A value for a link's query string (ids are URLs: `https://…` needs escaping).
pub(super) fn query_value(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(protocol: &str, id: &str, name: &str) -> ServiceRow {
        ServiceRow {
            protocol: protocol.into(),
            id: id.into(),
            name: name.into(),
            disabled: false,
            valid_until: None,
            last_login: None,
        }
    }

    #[test]
    fn search_is_a_case_insensitive_substring_of_name_or_id_within_the_protocol() {
        let s = service("saml", "https://sp.example/Skola", "Skolportalen Åby");
        assert!(matches(&s, "", "all"));
        assert!(matches(&s, "åBY", ""));
        assert!(matches(&s, "sp.example/skola", "saml"));
        assert!(!matches(&s, "skola", "oidc"));
        assert!(!matches(&s, "lärplattform", "all"));
    }

    #[test]
    fn an_sp_past_its_metadata_validity_is_shown_as_expired_unless_disabled() {
        let mut s = service("saml", "https://sp.example", "");
        s.valid_until = Some(100);
        let r = row(s.clone(), 200);
        assert_eq!(r.status, "admin.services.status.expired");
        assert_eq!(r.name, "https://sp.example", "no name: the entity ID");
        assert_eq!(r.page, "/admin/services/saml?id=https%3A%2F%2Fsp.example");
        s.disabled = true;
        assert_eq!(row(s, 200).status, "admin.services.status.disabled");
    }
}
