//! A person's page: who they are, their roles, groups and guardianships, linked upstream
//! accounts, live SSO sessions (ended one or all through `authn`, so refresh tokens are
//! revoked and relying parties told), recent logins and releases. The civic number is
//! masked until an administrator reveals it, and each reveal is audited without the number.
//! A protected identity does not exist here for administrators without `admin-protected`.

use super::people::{person_href, role_label};
use super::{Access, Admin, Frame, audit, home::time};
use crate::authn::MethodUse;
use crate::directory::{self, PersonDetails};
use crate::storage;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

pub(super) fn routes() -> Router<Admin> {
    Router::new()
        .route(paths::ADMIN_PERSON, get(person_get))
        .route(paths::ADMIN_PERSON_REVEAL, post(reveal_post))
        .route(paths::ADMIN_PERSON_END_SESSION, post(end_session_post))
        .route(paths::ADMIN_PERSON_END_SESSIONS, post(end_sessions_post))
}

const RECENT_LOGINS: i64 = 10;
const RECENT_RELEASES: i64 = 20;

struct Relative {
    /// None for a protected identity the administrator may not see.
    href: Option<String>,
    username: String,
    relation: String,
    active: bool,
}

struct GroupRow {
    name: String,
    kind: String,
    unit: String,
}

struct LinkRow {
    upstream: String,
    subject: String,
    created: String,
    last_login: String,
}

struct SessionRow {
    sid: String,
    started: String,
    last_seen: String,
    methods: String,
    level: String,
    /// For recent logins: when it ended, or empty while it lasts.
    ended: String,
}

struct ReleaseRow {
    service: String,
    protocol: String,
    claims: String,
    at: String,
}

#[derive(Template)]
#[template(path = "admin/person.html")]
struct PersonPage {
    lang: Lang,
    frame: Frame,
    id: String,
    name: String,
    username: String,
    eppn: String,
    email: String,
    active: bool,
    protected: bool,
    source: String,
    /// Masked, or the full number after a reveal; empty when the person has none.
    civic: String,
    revealed: bool,
    roles: Vec<String>,
    groups: Vec<GroupRow>,
    guardians: Vec<Relative>,
    children: Vec<Relative>,
    links: Vec<LinkRow>,
    sessions: Vec<SessionRow>,
    logins: Vec<SessionRow>,
    releases: Vec<ReleaseRow>,
    /// A notice after ending sessions.
    ended: bool,
}

#[derive(Deserialize)]
struct PersonQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    ended: Option<String>,
}

#[derive(Deserialize)]
struct PersonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    /// The session's `sid` (never its cookie or the cookie's hash).
    #[serde(default)]
    session: String,
}

fn no_such_person() -> WebError {
    WebError::new(StatusCode::NOT_FOUND, "admin.people.no_such_person")
}

/// The person behind `id` as this administrator may see them: a protected identity is
/// "no such person" without `admin-protected`, and with it every view is audited.
async fn load(
    admin: &Admin,
    access: &Access,
    id: &str,
    now: i64,
) -> Result<PersonDetails, WebError> {
    let person = match storage::persons::by_id(&admin.db, id).await? {
        Some(p) if access.may_see(&p) => p,
        _ => return Err(no_such_person()),
    };
    if person.protected_identity {
        audit::viewed(&admin.db, access, "person.view_protected", &person.id, now).await?;
    }
    Ok(directory::details(
        &admin.db,
        &admin.config.directory,
        person,
        directory::roles::day_of(now),
    )
    .await?)
}

/// A school group's kind as staff call it; an unknown kind as the register sent it.
fn group_kind(lang: Lang, kind: &str) -> String {
    let key = match kind {
        "class" => "admin.people.kind.class",
        "teaching" => "admin.people.kind.teaching",
        "mentor" => "admin.people.kind.mentor",
        "exam" => "admin.people.kind.exam",
        "schedule" => "admin.people.kind.schedule",
        "department" => "admin.people.kind.department",
        "staff" => "admin.people.kind.staff",
        "other" => "admin.people.kind.other",
        other => return other.to_string(),
    };
    lang.t(key).to_string()
}

fn methods(json: &str) -> String {
    let uses: Vec<MethodUse> = serde_json::from_str(json).unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for m in uses {
        let n = m.policy_name();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names.join(", ")
}

fn session_row(s: &storage::sessions::SessionRecord) -> SessionRow {
    SessionRow {
        sid: s.sid.clone(),
        started: time(s.created_at),
        last_seen: time(s.last_seen),
        methods: methods(&s.methods),
        level: s.acr.clone(),
        ended: s.ended_at.map(time).unwrap_or_default(),
    }
}

async fn page(
    admin: &Admin,
    lang: Lang,
    access: &Access,
    d: PersonDetails,
    revealed: bool,
    ended: bool,
    now: i64,
) -> Result<PersonPage, WebError> {
    let p = &d.person;
    let units = storage::persons::school_units(&admin.db).await?;
    let unit_name = |code: &str| {
        units
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, n)| format!("{n} ({code})"))
            .unwrap_or_else(|| code.to_string())
    };
    let roles = d
        .roles
        .iter()
        .map(|r| match &r.school_unit_code {
            Some(code) => format!("{}, {}", role_label(lang, r.kind), unit_name(code)),
            None => role_label(lang, r.kind).to_string(),
        })
        .collect();
    let groups = d
        .groups
        .iter()
        .map(|g| GroupRow {
            name: g.name.clone(),
            kind: group_kind(lang, &g.kind),
            unit: unit_name(&g.school_unit_code),
        })
        .collect();
    let relative = |r: &directory::roles::RelativeFact| {
        let visible = !r.protected_identity || access.sees_protected;
        Relative {
            href: visible.then(|| person_href(&r.person_id)),
            username: if visible {
                r.username.clone()
            } else {
                lang.t("admin.people.protected_relative").to_string()
            },
            relation: r.relation_type.clone(),
            active: r.active,
        }
    };
    let links = storage::upstream::links_of_person(&admin.db, &p.id)
        .await?
        .into_iter()
        .map(|(upstream, subject, created, last)| LinkRow {
            upstream,
            subject,
            created: time(created),
            last_login: time(last),
        })
        .collect();
    let sessions = storage::sessions::live_for_person(&admin.db, &p.id, "", now)
        .await?
        .iter()
        .map(session_row)
        .collect();
    let logins = storage::sessions::recent_for_person(&admin.db, &p.id, RECENT_LOGINS)
        .await?
        .iter()
        .map(session_row)
        .collect();
    let releases = storage::records::recent_releases(&admin.db, &p.id, RECENT_RELEASES)
        .await?
        .into_iter()
        .map(|r| ReleaseRow {
            service: r.rp_id,
            protocol: r.protocol,
            claims: r.claims.join(", "),
            at: time(r.created_at),
        })
        .collect();
    let civic = match &p.civic_no {
        Some(c) if revealed => c.formatted(),
        Some(c) => c.masked(),
        None => String::new(),
    };
    Ok(PersonPage {
        lang,
        frame: Frame::new(lang, access, "people"),
        id: p.id.clone(),
        name: match p.display_name() {
            n if n.is_empty() => p.username.clone(),
            n => n,
        },
        username: p.username.clone(),
        eppn: p.eppn.clone(),
        email: p.email.clone().unwrap_or_default(),
        active: p.active,
        protected: p.protected_identity,
        source: p.source.clone(),
        civic,
        revealed: revealed && p.civic_no.is_some(),
        roles,
        groups,
        guardians: d.facts.guardians.iter().map(relative).collect(),
        children: d.facts.children.iter().map(relative).collect(),
        links,
        sessions,
        logins,
        releases,
        ended,
    })
}

async fn person_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Query(q): Query<PersonQuery>,
) -> Result<Response, WebError> {
    let now = admin.now();
    let d = load(&admin, &access, &q.id, now).await?;
    let ended = q.ended.is_some();
    web::render(&page(&admin, lang, &access, d, false, ended, now).await?)
}

/// Shows the full civic number: changes nothing, so `admin-readonly` may too, but it is
/// a POST with the CSRF token (a link could be followed by anyone's browser) and audited.
async fn reveal_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    Form(form): Form<PersonForm>,
) -> Result<Response, WebError> {
    access.check_csrf(&admin, &form.csrf)?;
    let now = admin.now();
    let d = load(&admin, &access, &form.id, now).await?;
    if d.person.civic_no.is_some() {
        audit::viewed(
            &admin.db,
            &access,
            "person.civic_revealed",
            &d.person.id,
            now,
        )
        .await?;
    }
    let mut page = page(&admin, lang, &access, d, true, false, now).await?;
    // The language switch of a POST's answer leads to the person's page (masked again).
    page.frame.other_lang = format!("{}&lang={}", person_href(&page.id), lang.other().code());
    web::render(&page)
}

async fn end_session_post(
    State(admin): State<Admin>,
    access: Access,
    Form(form): Form<PersonForm>,
) -> Result<Response, WebError> {
    access.change(&admin, &form.csrf)?;
    let now = admin.now();
    let d = load(&admin, &access, &form.id, now).await?;
    let session = admin
        .authn
        .session_by_sid(&form.session)
        .await?
        .filter(|s| s.person_id == d.person.id && !form.session.is_empty())
        .ok_or(WebError::new(
            StatusCode::NOT_FOUND,
            "admin.people.no_such_session",
        ))?;
    end(&admin, &access, &d.person.id, &session, now).await?;
    Ok(back(&d.person.id))
}

async fn end_sessions_post(
    State(admin): State<Admin>,
    access: Access,
    Form(form): Form<PersonForm>,
) -> Result<Response, WebError> {
    access.change(&admin, &form.csrf)?;
    let now = admin.now();
    let d = load(&admin, &access, &form.id, now).await?;
    for rec in storage::sessions::live_for_person(&admin.db, &d.person.id, "", now).await? {
        if let Some(s) = admin.authn.session_by_id(&rec.id, now).await? {
            end(&admin, &access, &d.person.id, &s, now).await?;
        }
    }
    Ok(back(&d.person.id))
}

/// Ends one session through authn in the transaction of its audit event (refresh tokens
/// revoked there too); the relying parties are told once it has committed. A session that
/// had already ended changes nothing and writes no event.
async fn end(
    admin: &Admin,
    access: &Access,
    person_id: &str,
    s: &crate::authn::Session,
    now: i64,
) -> Result<(), WebError> {
    let mut tx = admin.db.begin().await?;
    let Some(ending) = admin.authn.end_session_in(&mut tx, s, now).await? else {
        return Ok(());
    };
    let before = json!({ "session": s.sid, "live": true });
    let after = json!({ "session": s.sid, "live": false });
    audit::change(
        &mut tx,
        access,
        "person.session_ended",
        person_id,
        Some(&before),
        Some(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    admin.authn.notify_ended([ending], now);
    Ok(())
}

/// Back to the person's page (a GET, so a reload does not post again).
fn back(person_id: &str) -> Response {
    Redirect::to(&format!("{}&ended=1", person_href(person_id))).into_response()
}
