//! Self-service password reset: after a BankID login at most `bankid.reset_window` seconds
//! old, a person may choose a new password. Reached from the login page ("Forgot your
//! password?": BankID, then this page, then on to the relying party) or directly at
//! `/password`, which starts a login transaction of its own.

use super::Authn;
use super::routes::sso_cookie;
use crate::web::{self, WebError, csrf, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};

/// The protocol and relying-party id of a transaction that only resets a password.
pub const PROTOCOL: &str = "password";
pub const RP_ID: &str = "portvakt";
/// NIST SP 800-63B's floor for a chosen password is 8; schools ask for a little more.
const MIN_LENGTH: usize = 10;
const MAX_LENGTH: usize = 256;

pub fn routes() -> Router<Authn> {
    Router::new().route(paths::PASSWORD, get(page).post(save))
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    lang: Lang,
    tx: &'a str,
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    done: bool,
}

#[derive(serde::Deserialize)]
struct PageQuery {
    #[serde(default)]
    tx: Option<String>,
}

#[derive(serde::Deserialize)]
struct SaveForm {
    tx: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

fn token(authn: &Authn, tx: &str, session: &str) -> String {
    csrf::token(
        &authn.keys.secrets().csrf,
        "password",
        &format!("{tx}\u{0}{session}"),
    )
}

/// The session of this browser if it logged in with BankID recently enough.
async fn recent_session(
    authn: &Authn,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<super::Session>, WebError> {
    let s = authn
        .session(sso_cookie(headers, &authn.config), now)
        .await?;
    Ok(s.filter(|s| authn.recent_bankid(s, now)))
}

fn to_login(tx: &str) -> Response {
    Redirect::to(&format!("{}?tx={tx}&reset=1", paths::LOGIN)).into_response()
}

async fn page(
    State(authn): State<Authn>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let now = authn.clock().now();
    if !authn.bankid_enabled() {
        return Err(WebError::new(StatusCode::NOT_FOUND, "error.not_found"));
    }
    let Some(tx_id) = q.tx else {
        // Started here: a transaction of its own that only BankID can complete.
        let acr = vec![authn.config.bankid.acr.clone()];
        let tx = authn
            .begin(PROTOCOL, RP_ID, String::new(), None, &acr, now)
            .await?;
        return Ok(to_login(&tx));
    };
    let tx = super::routes::live_transaction(&authn, &tx_id, now).await?;
    let Some(session) = recent_session(&authn, &headers, now).await? else {
        return Ok(to_login(&tx.id));
    };
    let person = crate::storage::persons::by_id(&authn.db, &session.person_id)
        .await?
        .ok_or(WebError::bad_request("login.expired"))?;
    let csrf = token(&authn, &tx.id, &session.id);
    web::render(&PasswordPage {
        lang,
        tx: &tx.id,
        csrf: &csrf,
        username: &person.username,
        error: None,
        done: false,
    })
}

async fn save(
    State(authn): State<Authn>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Form(form): Form<SaveForm>,
) -> Result<Response, WebError> {
    let now = authn.clock().now();
    let tx = super::routes::live_transaction(&authn, &form.tx, now).await?;
    let Some(session) = recent_session(&authn, &headers, now).await? else {
        return Ok(to_login(&tx.id));
    };
    let key = &authn.keys.secrets().csrf;
    if !csrf::verify(
        key,
        "password",
        &format!("{}\u{0}{}", tx.id, session.id),
        &form.csrf,
    ) {
        return Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"));
    }
    let person = crate::storage::persons::by_id(&authn.db, &session.person_id)
        .await?
        .filter(|p| p.active)
        .ok_or(WebError::bad_request("login.expired"))?;
    let error = match form.password.chars().count() {
        n if n < MIN_LENGTH => Some("password.error.short"),
        n if n > MAX_LENGTH => Some("password.error.long"),
        _ if form.password != form.repeat => Some("password.error.mismatch"),
        _ => None,
    };
    if let Some(error) = error {
        let csrf = token(&authn, &tx.id, &session.id);
        let page = web::render(&PasswordPage {
            lang,
            tx: &tx.id,
            csrf: &csrf,
            username: &person.username,
            error: Some(error),
            done: false,
        })?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    authn.set_password(&person.id, form.password, now).await?;
    crate::storage::records::audit(
        &authn.db,
        "user.password_reset",
        &person.id,
        "after BankID",
        now,
    )
    .await?;
    if tx.protocol == PROTOCOL {
        authn.finish(&tx.id).await?;
        return web::render(&PasswordPage {
            lang,
            tx: "",
            csrf: "",
            username: &person.username,
            error: None,
            done: true,
        });
    }
    // On to the relying party that the login was for.
    Ok(Redirect::to(&format!("{}?tx={}", tx.resume_path, tx.id)).into_response())
}
