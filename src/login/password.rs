//! Self-service password reset: after a BankID login at most `bankid.reset_window` seconds
//! old, a person may choose a new password. Reached from the login page ("Forgot your
//! password?": BankID, then this page, then on to the relying party) or directly at
//! `/password`, which starts a login transaction of its own.

use super::{Login, live_transaction, resume_url};
use crate::authn::password::{NewPasswordRefused, check_new};
use crate::authn::{Begin, Protocol, Requirement, Session};
use crate::web::{self, SsoCookie, WebError, csrf, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};

/// The relying-party id of a transaction that only resets a password.
const RP_ID: &str = "portvakt";

pub(super) fn routes() -> Router<Login> {
    Router::new().route(paths::PASSWORD, get(password_get).post(password_post))
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

fn token(login: &Login, tx: &str, session: &str) -> String {
    csrf::token(login.csrf_key(), "password", &format!("{tx}\u{0}{session}"))
}

/// The session of this browser if it logged in with BankID recently enough.
async fn recent_session(
    login: &Login,
    sso: &SsoCookie,
    now: i64,
) -> Result<Option<Session>, WebError> {
    let s = login.authn.session(sso.value(), now).await?;
    Ok(s.filter(|s| login.authn.recent_bankid(s, now)))
}

fn to_login(tx: &str) -> Response {
    Redirect::to(&format!("{}?tx={tx}&reset=1", paths::LOGIN)).into_response()
}

async fn password_get(
    State(login): State<Login>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let authn = &login.authn;
    if !authn.bankid_enabled() {
        return Err(WebError::new(StatusCode::NOT_FOUND, "error.not_found"));
    }
    let Some(tx_id) = q.tx else {
        // Started here: a transaction of its own that only BankID can complete.
        let requirement = Requirement {
            acr_values: vec![login.config.bankid.acr.clone()],
            allowed_methods: vec![crate::authn::policy::BANKID.into()],
            ..Default::default()
        };
        let tx = authn
            .begin(
                Begin {
                    protocol: Protocol::PasswordReset,
                    rp_id: RP_ID,
                    rp_name: "",
                    request: String::new(),
                    login_hint: None,
                    upstream_hint: None,
                    requirement: &requirement,
                    session: None,
                },
                now,
            )
            .await?;
        return Ok(to_login(&tx));
    };
    let tx = live_transaction(&login, &tx_id, now).await?;
    let Some(session) = recent_session(&login, &sso, now).await? else {
        return Ok(to_login(&tx.id));
    };
    let person = authn
        .person(&session.person_id)
        .await?
        .ok_or(WebError::bad_request("login.expired"))?;
    let csrf = token(&login, &tx.id, &session.id);
    web::render(&PasswordPage {
        lang,
        tx: &tx.id,
        csrf: &csrf,
        username: &person.username,
        error: None,
        done: false,
    })
}

async fn password_post(
    State(login): State<Login>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    Form(form): Form<SaveForm>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let authn = &login.authn;
    let tx = live_transaction(&login, &form.tx, now).await?;
    let Some(session) = recent_session(&login, &sso, now).await? else {
        return Ok(to_login(&tx.id));
    };
    if !csrf::verify(
        login.csrf_key(),
        "password",
        &format!("{}\u{0}{}", tx.id, session.id),
        &form.csrf,
    ) {
        return Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"));
    }
    let person = authn
        .person(&session.person_id)
        .await?
        .filter(|p| p.active)
        .ok_or(WebError::bad_request("login.expired"))?;
    let error = match check_new(&form.password) {
        Err(NewPasswordRefused::TooShort) => Some("password.error.short"),
        Err(NewPasswordRefused::TooLong) => Some("password.error.long"),
        Ok(()) if form.password != form.repeat => Some("password.error.mismatch"),
        Ok(()) => None,
    };
    if let Some(error) = error {
        let csrf = token(&login, &tx.id, &session.id);
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
    authn
        .reset_password(&person.id, &session.id, form.password, now)
        .await?;
    if tx.protocol == Protocol::PasswordReset {
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
    Ok(Redirect::to(&resume_url(&tx)).into_response())
}
