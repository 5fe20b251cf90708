//! The admin start page: where to go, and the latest changes.

use super::{Access, Admin, Frame};
use crate::storage;
use crate::web::{self, WebError, i18n::Lang, paths};
use askama::Template;
use axum::Router;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::get;

pub(super) fn routes() -> Router<Admin> {
    Router::new().route(paths::ADMIN, get(home_get))
}

/// One audit event as the start page lists it.
struct Event {
    at: String,
    kind: String,
    actor: String,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomePage {
    lang: Lang,
    frame: Frame,
    events: Vec<Event>,
}

async fn home_get(
    State(admin): State<Admin>,
    Extension(lang): Extension<Lang>,
    access: Access,
) -> Result<Response, WebError> {
    // Changes, not the login feed (`login.*`), which would fill the page on a school day.
    let events = storage::records::recent_changes(&admin.db, 15)
        .await?
        .into_iter()
        .map(|(at, kind, actor, _)| Event {
            at: time(at),
            kind,
            actor,
        })
        .collect();
    web::render(&HomePage {
        lang,
        frame: Frame::new(lang, &access, "home"),
        events,
    })
}

/// A time as admins read it: UTC, to the minute.
pub(crate) fn time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}
