//! New passwords for every pupil of a school unit or class, and the print sheet teachers
//! hand them out with. Two steps on one POST route: without `confirm=yes` the page says how
//! many pupils will get a new password (and that their old ones stop working); with it the
//! passwords are generated, all hashed before anything is written, then stored with one
//! audit event per pupil in one transaction, and the sheet is the response. The sheet is
//! never stored: reloading it cannot show the passwords again.

use super::{Choice, IndexPage};
use crate::admin::{Access, Admin, Frame, audit};
use crate::directory::{self, Person, RoleKind};
use crate::storage;
use crate::web::{self, WebError, i18n::Lang};
use askama::Template;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

/// The most pupils one batch may cover: hashing takes tens of milliseconds each, and a
/// request should end in well under a minute. A larger school unit is done class by class.
const MAX_PUPILS: usize = 400;

#[derive(Deserialize)]
pub(super) struct GenerateForm {
    /// Missing is refused like a wrong token (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    unit: String,
    /// A class of the unit; empty for the whole unit.
    #[serde(default)]
    class: String,
    /// `yes` on the confirmation page's form.
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "admin/passwords_confirm.html")]
struct ConfirmPage {
    lang: Lang,
    frame: Frame,
    unit: Choice,
    class: Option<Choice>,
    count: usize,
}

/// One pupil's card on the sheet.
struct Card {
    name: String,
    username: String,
    password: String,
}

#[derive(Template)]
#[template(path = "admin/passwords_sheet.html")]
struct SheetPage {
    lang: Lang,
    frame: Frame,
    unit: Choice,
    class: Option<Choice>,
    date: String,
    cards: Vec<Card>,
}

pub(super) async fn generate_post(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
    axum::Form(form): axum::Form<GenerateForm>,
) -> Result<Response, WebError> {
    access.change(&admin, &form.csrf)?;
    let now = admin.now();
    let mut page = IndexPage::new(&admin, lang, &access).await?;
    if !page.choose_unit(&admin, &form.unit).await? {
        page.batch_error = Some("admin.passwords.no_unit");
        return page.invalid();
    }
    let class = if form.class.is_empty() {
        None
    } else {
        match page.classes.iter().find(|(id, _)| *id == form.class) {
            Some(c) => Some(c.clone()),
            None => {
                page.batch_error = Some("admin.passwords.no_class");
                return page.invalid();
            }
        }
    };
    let Some(unit) = page.unit.clone() else {
        return Err(WebError::internal("unit chosen but not set"));
    };
    let pupils = pupils(&admin, &access, &unit.0, class.as_ref().map(|c| &*c.0), now).await?;
    page.class = form.class.clone();
    if pupils.is_empty() {
        page.batch_error = Some("admin.passwords.no_pupils");
        return page.invalid();
    }
    if pupils.len() > MAX_PUPILS {
        page.batch_error = Some("admin.passwords.too_many");
        return page.invalid();
    }
    if form.confirm != "yes" {
        return web::render(&ConfirmPage {
            lang,
            frame: Frame::new(lang, &access, "passwords"),
            unit,
            class,
            count: pupils.len(),
        });
    }
    // Every hash first: a failure here writes nothing.
    let generated = match admin.authn.generate_passwords(pupils.len()).await {
        Ok(g) => g,
        Err(crate::authn::AuthnError::Hash(_)) => {
            return Err(WebError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "admin.passwords.busy",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let batch = json!({
        "password": "generated",
        "school_unit": unit.0,
        "class": class.as_ref().map(|c| &c.0),
    });
    let mut tx = admin.db.begin().await?;
    for (p, g) in pupils.iter().zip(&generated) {
        admin
            .authn
            .store_generated_in(&mut tx, &p.id, g, now)
            .await?;
        audit::change(
            &mut tx,
            &access,
            "person.password_generated",
            &p.id,
            None::<&()>,
            Some(&batch),
            now,
        )
        .await?;
    }
    let mut ended = Vec::new();
    for p in &pupils {
        ended.extend(
            admin
                .authn
                .end_other_sessions_in(&mut tx, &p.id, &access.sso_session_id, now)
                .await?,
        );
    }
    tx.commit().await?;
    admin.authn.notify_ended(ended, now);
    let cards = pupils
        .into_iter()
        .zip(generated)
        .map(|(p, g)| Card {
            name: p.display_name(),
            username: p.username,
            password: g.password,
        })
        .collect();
    web::render(&SheetPage {
        lang,
        frame: Frame::new(lang, &access, "passwords"),
        unit,
        class,
        date: directory::roles::format_date(directory::roles::day_of(now)),
        cards,
    })
}

/// The active pupils of a school unit (and class) today, by the directory's rule for which
/// enrolments and memberships count (`directory::details`, as releases use), sorted by
/// family name as a class list is.
async fn pupils(
    admin: &Admin,
    access: &Access,
    unit: &str,
    class: Option<&str>,
    now: i64,
) -> Result<Vec<Person>, WebError> {
    let today = directory::roles::day_of(now);
    let candidates =
        storage::persons::pupil_candidates(&admin.db, unit, class, access.sees_protected).await?;
    let mut out = Vec::with_capacity(candidates.len());
    for p in candidates.into_iter().filter(|p| access.may_see(p)) {
        let d = directory::details(&admin.db, &admin.config.directory, p, today).await?;
        let pupil = d
            .roles
            .iter()
            .any(|r| r.kind == RoleKind::Student && r.school_unit_code.as_deref() == Some(unit));
        let in_class = class.is_none_or(|c| d.groups.iter().any(|g| g.id == c));
        if pupil && in_class {
            out.push(d.person);
        }
    }
    out.sort_by_cached_key(|p| {
        (
            swedish_key(&p.family_name),
            swedish_key(&p.given_name),
            p.username.clone(),
        )
    });
    Ok(out)
}

/// A sort key in Swedish alphabetical order: case folded, and å ä ö after z (in Unicode
/// order ä comes before å).
fn swedish_key(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| match c {
            'å' => '\u{7b}',
            'ä' | 'æ' => '\u{7c}',
            'ö' | 'ø' => '\u{7d}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_swedish_order() {
        let mut v = vec!["Öberg", "Ärling", "Åberg", "zetterberg", "Andersson"];
        v.sort_by_key(|s| swedish_key(s));
        assert_eq!(v, ["Andersson", "zetterberg", "Åberg", "Ärling", "Öberg"]);
    }
}
