//! The people search: by name with diacritics folded, by username, by school unit and class.
//! Protected identities are left out unless the administrator holds `admin-protected`; when
//! they are shown, each one shown is audited (as `user list --include-protected` does).

use super::{Access, Admin, Frame, audit};
use crate::directory::{self, Person, RoleKind, ident};
use crate::storage::{self, person_search::PersonQuery};
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

pub(super) fn routes() -> Router<Admin> {
    Router::new().route(paths::ADMIN_PEOPLE, get(people_get))
}

/// At most this many rows; one more is read to know there are more.
const LIMIT: i64 = 100;

#[derive(Deserialize, Default)]
struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    class: String,
}

/// One person in the results.
pub(super) struct Row {
    pub href: String,
    pub name: String,
    pub username: String,
    pub roles: String,
    pub place: String,
    pub active: bool,
    pub protected: bool,
}

#[derive(Template)]
#[template(path = "admin/people.html")]
struct PeoplePage {
    lang: Lang,
    frame: Frame,
    q: String,
    unit: String,
    class: String,
    units: Vec<(String, String)>,
    classes: Vec<(String, String)>,
    searched: bool,
    rows: Vec<Row>,
    more: bool,
}

/// A role as administrators call it.
pub(super) fn role_label(lang: Lang, kind: RoleKind) -> &'static str {
    lang.t(match kind {
        RoleKind::Student => "admin.people.role.student",
        RoleKind::Teacher => "admin.people.role.teacher",
        RoleKind::Staff => "admin.people.role.staff",
        RoleKind::Guardian => "admin.people.role.guardian",
        RoleKind::Principal => "admin.people.role.principal",
        RoleKind::Admin => "admin.people.role.admin",
        RoleKind::AdminReadonly => "admin.people.role.admin_readonly",
        RoleKind::AdminProtected => "admin.people.role.admin_protected",
    })
}

/// The link to a person's page.
pub(super) fn person_href(id: &str) -> String {
    format!(
        "{}?id={}",
        paths::ADMIN_PERSON,
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

async fn people_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(form): Query<SearchForm>,
) -> Result<Response, WebError> {
    let now = admin.now();
    let units = storage::persons::school_units(&admin.db).await?;
    let q = form.q.trim().to_string();
    // A unit or class that is not in the lists is ignored rather than matched as text.
    let unit = units
        .iter()
        .find(|(code, _)| *code == form.unit)
        .map(|(code, _)| code.clone());
    let classes = match &unit {
        Some(u) => storage::person_search::classes(&admin.db, u).await?,
        None => Vec::new(),
    };
    let class = classes
        .iter()
        .find(|(id, _)| *id == form.class)
        .map(|(id, _)| id.clone());
    let searched = !q.is_empty() || unit.is_some();
    let mut rows = Vec::new();
    let mut more = false;
    if searched {
        let username = q.to_lowercase();
        let query = PersonQuery {
            words: ident::search_words(&q),
            // A username has no spaces: a text with one is only a name.
            username: (!username.is_empty() && !username.contains(char::is_whitespace))
                .then_some(username),
            username_prefix: true,
            school_unit: unit.clone(),
            group: class.clone(),
            include_protected: access.sees_protected,
            by_username: false,
            limit: LIMIT + 1,
        };
        let mut found = storage::person_search::find(&admin.db, &query).await?;
        more = found.len() as i64 > LIMIT;
        found.truncate(LIMIT as usize);
        for p in found {
            if p.protected_identity {
                audit::viewed(&admin.db, &access, "person.view_protected", &p.id, now).await?;
            }
            rows.push(row(&admin, lang, p, &units, now).await?);
        }
    }
    web::render(&PeoplePage {
        lang,
        frame: Frame::new(lang, &access, "people"),
        q,
        unit: unit.unwrap_or_default(),
        class: class.unwrap_or_default(),
        units,
        classes,
        searched,
        rows,
        more,
    })
}

/// A result row: the roles and classes that count today, as the person's page shows them.
async fn row(
    admin: &Admin,
    lang: Lang,
    p: Person,
    units: &[(String, String)],
    now: i64,
) -> Result<Row, WebError> {
    let d = directory::details(
        &admin.db,
        &admin.config.directory,
        p,
        directory::roles::day_of(now),
    )
    .await?;
    let unit_name = |code: &str| {
        units
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| code.to_string())
    };
    let mut place: Vec<String> = Vec::new();
    for r in &d.roles {
        if let Some(code) = &r.school_unit_code {
            let name = unit_name(code);
            if !place.contains(&name) {
                place.push(name);
            }
        }
    }
    place.extend(
        d.groups
            .iter()
            .filter(|g| g.kind == "class")
            .map(|g| g.name.clone()),
    );
    let roles: Vec<&str> = d.roles.iter().map(|r| role_label(lang, r.kind)).collect();
    let mut roles_text: Vec<&str> = Vec::new();
    for r in roles {
        if !roles_text.contains(&r) {
            roles_text.push(r);
        }
    }
    Ok(Row {
        href: person_href(&d.person.id),
        name: match d.person.display_name() {
            n if n.is_empty() => d.person.username.clone(),
            n => n,
        },
        username: d.person.username.clone(),
        roles: roles_text.join(", "),
        place: place.join(", "),
        active: d.person.active,
        protected: d.person.protected_identity,
    })
}
