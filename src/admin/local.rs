//! Local people: the accounts Portvakt holds itself rather than the register (`user add`):
//! adding one, and the local roles of anyone — the admin roles among them, which no sync
//! ever touches.

use super::{Access, Admin, Frame, audit};
use crate::directory::{self, CivicNo, DirectoryError, NewPerson, Person, Role, RoleKind};
use crate::storage;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Query, RawForm, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .route(paths::ADMIN_PERSON_NEW, get(new_get).post(new_post))
        .route(paths::ADMIN_PERSON_ROLES, get(roles_get).post(roles_post))
}

/// Roles that belong to a school unit when one is chosen; the admin roles never do.
fn school_role(kind: RoleKind) -> bool {
    !matches!(
        kind,
        RoleKind::Admin | RoleKind::AdminReadonly | RoleKind::AdminProtected
    )
}

/// A role choice on a form: its value, whether it is checked.
struct RoleChoice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

fn role_choices(checked: &[RoleKind]) -> Vec<RoleChoice> {
    RoleKind::ALL
        .into_iter()
        .map(|k| RoleChoice {
            value: k.as_str(),
            label: match k {
                RoleKind::Student => "admin.local.role.student",
                RoleKind::Teacher => "admin.local.role.teacher",
                RoleKind::Staff => "admin.local.role.staff",
                RoleKind::Guardian => "admin.local.role.guardian",
                RoleKind::Principal => "admin.local.role.principal",
                RoleKind::Admin => "admin.local.role.admin",
                RoleKind::AdminReadonly => "admin.local.role.admin_readonly",
                RoleKind::AdminProtected => "admin.local.role.admin_protected",
            },
            checked: checked.contains(&k),
        })
        .collect()
}

/// The submitted form: repeated `role` fields, so read as pairs rather than a struct.
#[derive(Default)]
struct PersonForm {
    csrf: String,
    username: String,
    given_name: String,
    family_name: String,
    email: String,
    civic_no: String,
    unit: String,
    roles: Vec<RoleKind>,
}

impl PersonForm {
    fn read(body: &[u8]) -> Self {
        let mut f = PersonForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = v.trim().to_string();
            match &*k {
                "csrf" => f.csrf = v,
                "username" => f.username = v,
                "given_name" => f.given_name = v,
                "family_name" => f.family_name = v,
                "email" => f.email = v,
                "civic_no" => f.civic_no = v,
                "unit" => f.unit = v,
                "role" => f.roles.extend(RoleKind::parse(&v)),
                _ => {}
            }
        }
        f
    }

    /// The roles as stored: school roles at the chosen unit, admin roles without one.
    fn roles(&self) -> Vec<Role> {
        self.roles
            .iter()
            .map(|&kind| Role {
                kind,
                school_unit_code: (school_role(kind) && !self.unit.is_empty())
                    .then(|| self.unit.clone()),
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "admin/person_new.html")]
struct NewPage<'a> {
    lang: Lang,
    frame: Frame,
    form: &'a PersonForm,
    units: Vec<(String, String)>,
    roles: Vec<RoleChoice>,
    /// (field id, catalogue key) of the first problem.
    error: Option<(&'static str, &'static str)>,
}

async fn new_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
) -> Result<Response, WebError> {
    let form = PersonForm::default();
    web::render(&NewPage {
        lang,
        frame: Frame::new(lang, &access, "people"),
        form: &form,
        units: storage::persons::school_units(&admin.db).await?,
        roles: role_choices(&[]),
        error: None,
    })
}

/// What an audit event says about a person's account: never the civic number.
#[derive(Serialize)]
struct AccountView<'a> {
    username: &'a str,
    given_name: &'a str,
    family_name: &'a str,
    email: Option<&'a str>,
    civic_no: bool,
    roles: Vec<String>,
}

fn problem(form: &PersonForm) -> Option<(&'static str, &'static str)> {
    if !NewPerson::username_ok(&form.username) {
        return Some(("username", "admin.local.error.username"));
    }
    if form.given_name.is_empty() || form.family_name.is_empty() {
        return Some(("given_name", "admin.local.error.name"));
    }
    if !form.email.is_empty() && !NewPerson::email_ok(&form.email) {
        return Some(("email", "admin.local.error.email"));
    }
    if !form.civic_no.is_empty() && CivicNo::parse(&form.civic_no).is_err() {
        return Some(("civic_no", "admin.local.error.civic_no"));
    }
    None
}

async fn new_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    RawForm(body): RawForm,
) -> Result<Response, WebError> {
    let form = PersonForm::read(&body);
    access.change(&admin, &form.csrf)?;
    let now = admin.now();
    let mut error = problem(&form);
    if error.is_none() {
        let new = NewPerson {
            username: form.username.to_lowercase(),
            given_name: form.given_name.clone(),
            family_name: form.family_name.clone(),
            email: (!form.email.is_empty()).then(|| form.email.clone()),
            civic_no: CivicNo::parse(&form.civic_no).ok(),
            protected_identity: false,
            roles: form.roles(),
            source: "local".into(),
        };
        let mut tx = admin.db.begin().await?;
        match directory::add_person_in(&mut tx, &new, &admin.config.saml_scope(), now).await {
            Ok(p) => {
                let after = AccountView {
                    username: &p.username,
                    given_name: &p.given_name,
                    family_name: &p.family_name,
                    email: p.email.as_deref(),
                    civic_no: p.civic_no.is_some(),
                    roles: new.roles.iter().map(Role::to_string).collect(),
                };
                audit::change(
                    &mut tx,
                    &access,
                    "person.added",
                    &p.id,
                    None::<&()>,
                    Some(&after),
                    now,
                )
                .await?;
                tx.commit().await?;
                return Ok(
                    Redirect::to(&format!("{}?id={}", paths::ADMIN_PERSON, p.id)).into_response(),
                );
            }
            Err(DirectoryError::Exists(_)) => {
                error = Some(("username", "admin.local.error.exists"))
            }
            Err(DirectoryError::Invalid(_)) => error = Some(("unit", "admin.local.error.unit")),
            Err(e) => return Err(e.into()),
        }
    }
    web::render_status(
        StatusCode::BAD_REQUEST,
        &NewPage {
            lang,
            frame: Frame::new(lang, &access, "people"),
            form: &form,
            units: storage::persons::school_units(&admin.db).await?,
            roles: role_choices(&form.roles),
            error,
        },
    )
}

#[derive(Deserialize)]
struct IdQuery {
    id: String,
    saved: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/person_roles.html")]
struct RolesPage {
    lang: Lang,
    frame: Frame,
    person: Person,
    current: Vec<String>,
    units: Vec<(String, String)>,
    unit: String,
    roles: Vec<RoleChoice>,
    error: Option<&'static str>,
    saved: bool,
}

/// The person, if this admin may see them (protected identities need `admin-protected`).
async fn visible_person(admin: &Admin, access: &Access, id: &str) -> Result<Person, WebError> {
    storage::persons::by_id(&admin.db, id)
        .await?
        .filter(|p| access.may_see(p))
        .ok_or(WebError::new(StatusCode::NOT_FOUND, "error.not_found"))
}

async fn roles_page(
    admin: &Admin,
    lang: Lang,
    access: &Access,
    person: Person,
    error: Option<&'static str>,
    saved: bool,
) -> Result<Response, WebError> {
    let current = storage::persons::roles(&admin.db, &person.id).await?;
    let unit = current
        .iter()
        .find_map(|r| r.school_unit_code.clone())
        .unwrap_or_default();
    let kinds: Vec<RoleKind> = current.iter().map(|r| r.kind).collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    web::render_status(
        status,
        &RolesPage {
            lang,
            frame: Frame::new(lang, access, "people"),
            current: current.iter().map(Role::to_string).collect(),
            units: storage::persons::school_units(&admin.db).await?,
            unit,
            roles: role_choices(&kinds),
            person,
            error,
            saved,
        },
    )
}

async fn roles_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<IdQuery>,
) -> Result<Response, WebError> {
    let person = visible_person(&admin, &access, &q.id).await?;
    roles_page(&admin, lang, &access, person, None, q.saved.is_some()).await
}

async fn roles_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<IdQuery>,
    RawForm(body): RawForm,
) -> Result<Response, WebError> {
    let form = PersonForm::read(&body);
    access.change(&admin, &form.csrf)?;
    let person = visible_person(&admin, &access, &q.id).await?;
    let now = admin.now();
    let before: Vec<String> = storage::persons::roles(&admin.db, &person.id)
        .await?
        .iter()
        .map(Role::to_string)
        .collect();
    let roles = form.roles();
    // An admin cannot take away their own admin role: someone must be left to give it back.
    if person.id == access.person_id && !roles.iter().any(|r| r.kind == RoleKind::Admin) {
        return roles_page(
            &admin,
            lang,
            &access,
            person,
            Some("admin.local.error.own_admin"),
            false,
        )
        .await;
    }
    if !form.unit.is_empty()
        && storage::persons::school_unit(&admin.db, &form.unit)
            .await?
            .is_none()
    {
        return roles_page(
            &admin,
            lang,
            &access,
            person,
            Some("admin.local.error.unit"),
            false,
        )
        .await;
    }
    let after: Vec<String> = roles.iter().map(Role::to_string).collect();
    let mut tx = admin.db.begin().await?;
    storage::persons::set_local_roles_in(&mut tx, &person.id, &roles).await?;
    audit::change(
        &mut tx,
        &access,
        "person.roles_changed",
        &person.id,
        Some(&before),
        Some(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Redirect::to(&format!(
        "{}?id={}&saved=1",
        paths::ADMIN_PERSON_ROLES,
        person.id
    ))
    .into_response())
}
