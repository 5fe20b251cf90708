//! The stub app: it plays the BankID app on the phone. A page under `/app`, opened by the
//! autostart link (`?autostarttoken=…[&redirect=…]`) or with the scanned QR text (`?qr=…`,
//! or pasted into its form), that shows what the RP wants identified or signed and lets the
//! person identify (any 12-digit personal number) or cancel. Doing nothing lets the order
//! expire. The same actions as JSON for tests: `POST /app/api/{open,approve,cancel}`.
//!
//! Works without JavaScript; text comes from the catalogue (`stub.*` keys).

use super::Stub;
use super::orders::{ApiError, Handle, Identity, Kind, Refusal, State as OrderState};
use super::rp::{http_url, json_body, parse};
use crate::bankid::api::{ErrorCode, HintCode, Status};
use crate::web::{self, WebError, csrf, i18n::Lang};
use askama::Template;
use axum::Json;
use axum::extract::{Extension, Form, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

const CSRF_PURPOSE: &str = "bankid-stub-app";

/// The page's language: what the edge middleware chose when the stub is mounted in
/// Portvakt or served by `portvakt bankid-stub`, else from the request's headers.
fn lang_of(ext: Option<Extension<Lang>>, headers: &HeaderMap) -> Lang {
    ext.map_or_else(|| Lang::from_headers(headers), |Extension(l)| l)
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    autostarttoken: Option<String>,
    redirect: Option<String>,
    qr: Option<String>,
    order: Option<String>,
}

#[derive(Template)]
#[template(path = "bankid_stub.html")]
struct StartPage<'a> {
    lang: Lang,
    app_url: &'a str,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "bankid_stub_order.html")]
struct OrderPage<'a> {
    lang: Lang,
    app_url: &'a str,
    app_ref: &'a str,
    csrf: String,
    /// `stub.identify` or `stub.sign`.
    heading: &'static str,
    submit: &'static str,
    visible: Option<&'a str>,
    personal_number: &'a str,
    given_name: &'a str,
    surname: &'a str,
    suggestions: &'a [(String, String)],
    seconds_left: u64,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "bankid_stub_done.html")]
struct DonePage<'a> {
    lang: Lang,
    app_url: &'a str,
    heading: &'static str,
    message: &'static str,
}

fn app_url(stub: &Stub) -> String {
    format!("{}{}", stub.config().mount, super::APP)
}

fn start_page(stub: &Stub, lang: Lang, error: Option<Refusal>) -> Response {
    let url = app_url(stub);
    let page = StartPage {
        lang,
        app_url: &url,
        error: error.map(Refusal::message),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match web::render(&page) {
        Ok(r) => (status, r).into_response(),
        Err(e) => e.into_response(),
    }
}

/// What the person typed, shown again with an error.
#[derive(Default)]
struct Typed<'a> {
    personal_number: &'a str,
    given_name: &'a str,
    surname: &'a str,
}

/// The open order the page is about, or the start page with why not.
fn order_page(
    stub: &Stub,
    lang: Lang,
    app_ref: &str,
    typed: Typed<'_>,
    error: Option<Refusal>,
) -> Response {
    let now = stub.now();
    let mut orders = stub.orders();
    let o = match orders.find(Handle::App(app_ref), now) {
        Ok(o) if o.is_pending() => o,
        Ok(_) => return start_page(stub, lang, Some(Refusal::OrderFinished)),
        Err(r) => return start_page(stub, lang, Some(r)),
    };
    let required = o.request.personal_number.as_deref().unwrap_or("");
    let chosen = match &o.state {
        OrderState::UserSign(id) => id.personal_number.as_str(),
        _ => required,
    };
    let personal_number = if typed.personal_number.is_empty() {
        chosen
    } else {
        typed.personal_number
    };
    let (heading, submit) = match o.request.kind {
        Kind::Auth => ("stub.identify_heading", "stub.identify"),
        Kind::Sign => ("stub.sign_heading", "stub.sign"),
    };
    let lifetime = stub.config().order_lifetime;
    let seconds_left = lifetime
        .saturating_sub(now.saturating_duration_since(o.created))
        .as_secs();
    let url = app_url(stub);
    let page = OrderPage {
        lang,
        app_url: &url,
        app_ref,
        csrf: csrf::token(&stub.inner.csrf_key, CSRF_PURPOSE, app_ref),
        heading,
        submit,
        visible: o.request.visible.as_deref(),
        personal_number,
        given_name: typed.given_name,
        surname: typed.surname,
        suggestions: &stub.config().suggestions,
        seconds_left,
        error: error.map(Refusal::message),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match web::render(&page) {
        Ok(r) => (status, r).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /app`: opening by autostart link or QR text marks the order picked up, then
/// redirects to the order's page so a reload does not present a stale QR text again.
pub(super) async fn page_get(
    State(stub): State<Stub>,
    lang: Option<Extension<Lang>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let lang = lang_of(lang, &headers);
    let (handle, redirect) = match (&q.autostarttoken, &q.qr, &q.order) {
        (Some(t), _, _) => {
            // `redirect=null` means "do not return" (§7); anything not http(s) is ignored.
            let r = q.redirect.as_deref().and_then(http_url);
            (Handle::AutoStart(t.as_str()), r)
        }
        (None, Some(text), _) if !text.trim().is_empty() => (Handle::Qr(text.as_str()), None),
        (None, _, Some(app_ref)) => {
            return order_page(&stub, lang, app_ref, Typed::default(), None);
        }
        _ => return start_page(&stub, lang, None),
    };
    let now = stub.now();
    let opened = stub.orders().open(handle, None, redirect, now);
    match opened {
        Ok(app_ref) => {
            let url = format!("{}?order={}", app_url(&stub), super::urlencode(&app_ref));
            Redirect::to(&url).into_response()
        }
        Err(r) => start_page(&stub, lang, Some(r)),
    }
}

#[derive(Deserialize)]
pub(super) struct AppForm {
    order: String,
    csrf: String,
    action: String,
    #[serde(default)]
    personal_number: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    surname: String,
}

/// `POST /app`: "Identifiera" (approve) or "Avbryt" (cancel).
pub(super) async fn page_post(
    State(stub): State<Stub>,
    lang: Option<Extension<Lang>>,
    headers: HeaderMap,
    Form(f): Form<AppForm>,
) -> Response {
    let lang = lang_of(lang, &headers);
    if !csrf::verify(&stub.inner.csrf_key, CSRF_PURPOSE, &f.order, &f.csrf) {
        return WebError::bad_request("stub.error.form").into_response();
    }
    let typed = Typed {
        personal_number: f.personal_number.trim(),
        given_name: &f.given_name,
        surname: &f.surname,
    };
    let handle = Handle::App(&f.order);
    let now = stub.now();
    let done = match f.action.as_str() {
        "approve" => Identity::new(&f.personal_number, &f.given_name, &f.surname, "")
            .and_then(|id| stub.orders().approve(handle, id, stub.today(), now))
            .map(|back| (back, "stub.done_heading", "stub.done")),
        "cancel" => stub
            .orders()
            .app_cancel(handle, now)
            .map(|_| (None, "stub.cancelled_heading", "stub.cancelled")),
        _ => return WebError::bad_request("stub.error.form").into_response(),
    };
    match done {
        // Like the real app, back to the browser that started the order on this device.
        Ok((Some(back), _, _)) => Redirect::to(&back).into_response(),
        Ok((None, heading, message)) => {
            let url = app_url(&stub);
            web::render(&DonePage {
                lang,
                app_url: &url,
                heading,
                message,
            })
            .unwrap_or_else(IntoResponse::into_response)
        }
        Err(r @ (Refusal::BadPersonalNumber | Refusal::WrongPersonalNumber | Refusal::BadName)) => {
            order_page(&stub, lang, &f.order, typed, Some(r))
        }
        Err(r) => start_page(&stub, lang, Some(r)),
    }
}

/// Body of the app's JSON API: which order (`autoStartToken`, `qrData`, or for phone
/// orders the `personalNumber` alone) and who identifies.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AppRequest {
    auto_start_token: Option<String>,
    qr_data: Option<String>,
    personal_number: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    surname: String,
}

/// The order's state after the action, as `collect` would show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AppResponse {
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint_code: Option<HintCode>,
}

/// `POST /app/api/{open,approve,cancel}`.
pub(super) async fn api_post(
    State(stub): State<Stub>,
    Path(action): Path<String>,
    req: Request,
) -> Response {
    match api(&stub, &action, req).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn api(stub: &Stub, action: &str, req: Request) -> Result<AppResponse, ApiError> {
    if !["open", "approve", "cancel"].contains(&action) {
        return Err(ApiError::new(ErrorCode::NotFound, "No such action"));
    }
    let body: AppRequest = parse(&json_body(req).await?)?;
    let handle = match (&body.auto_start_token, &body.qr_data, &body.personal_number) {
        (Some(t), _, _) => Handle::AutoStart(t),
        (None, Some(q), _) => Handle::Qr(q),
        (None, None, Some(pn)) => Handle::Phone(pn),
        _ => {
            return Err(ApiError::invalid(
                "Give autoStartToken, qrData, or personalNumber for a phone order",
            ));
        }
    };
    let identity = body
        .personal_number
        .as_deref()
        .map(|pn| Identity::new(pn, &body.given_name, &body.surname, &body.name))
        .transpose()
        .map_err(Refusal::api_error)?;
    let now = stub.now();
    let mut orders = stub.orders();
    let (status, hint_code) = match (action, identity) {
        ("open", identity) => {
            let app_ref = orders
                .open(handle, identity, None, now)
                .map_err(Refusal::api_error)?;
            orders
                .find(Handle::App(&app_ref), now)
                .map_err(Refusal::api_error)?
                .status()
        }
        ("approve", Some(id)) => {
            let today = stub.today();
            orders
                .approve(handle, id, today, now)
                .map_err(Refusal::api_error)?;
            (Status::Complete, None)
        }
        ("approve", None) => return Err(ApiError::invalid("personalNumber is required")),
        _ => {
            let hint = orders.app_cancel(handle, now).map_err(Refusal::api_error)?;
            (Status::Failed, Some(hint))
        }
    };
    Ok(AppResponse { status, hint_code })
}
