//! The BankID pages: start an order from the login page, the wait page (QR code or the
//! app link; works without JavaScript through its Refresh button), the JSON status the
//! page's script polls, the QR image, cancel, and the returnUrl the app comes back to.
//! Every request is tied to the browser that started the order by the login binding
//! cookie; the browser never sees the orderRef or the qrStartSecret.

use super::cookies::{binding, set_sso_cookie};
use super::page::{LoginView, is_mobile, login_binding, rerender_login};
use super::{Login, live_transaction, resume_url, rp_name};
use crate::authn::bankid::{Order, Purpose, StartPage, StartRefused, State};
use crate::authn::{Authn, AuthnError};
use crate::bankid::messages::Device;
use crate::web::{self, ClientIp, SsoCookie, WebError, csrf, i18n::Lang, paths};
use askama::Template;
use axum::extract::{Extension, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};

pub(super) fn routes() -> Router<Login> {
    Router::new()
        .route(paths::LOGIN_BANKID, get(bankid_get).post(bankid_post))
        .route(paths::BANKID_STATUS, get(status_get))
        .route(paths::BANKID_QR, get(qr_get))
        .route(paths::BANKID_CANCEL, post(cancel_post))
        .route(paths::BANKID_RETURN, get(return_get))
        .route(paths::BANKID_STUB_SCAN, get(stub_scan_get))
        .route(paths::BANKID_SCRIPT, get(script_get))
}

/// The wait page may run its one script (from our origin) and call our status endpoint.
const WAIT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                        script-src 'self'; connect-src 'self'; base-uri 'none'; \
                        frame-ancestors 'none'";

#[derive(Template)]
#[template(path = "bankid.html")]
struct WaitPage<'a> {
    lang: Lang,
    rp_name: &'a str,
    order: &'a str,
    tx: &'a str,
    csrf: &'a str,
    message: &'a str,
    failed: bool,
    qr: bool,
    stub: bool,
    autostart: Option<String>,
}

#[derive(serde::Deserialize)]
struct StartForm {
    tx: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    purpose: String,
}

#[derive(serde::Deserialize)]
struct OrderQuery {
    o: String,
}

#[derive(serde::Deserialize)]
struct CancelForm {
    o: String,
    #[serde(default)]
    csrf: String,
}

#[derive(serde::Deserialize)]
struct ReturnQuery {
    o: String,
    n: String,
}

/// The order this browser started, or the "start again" page.
async fn order_of(login: &Login, headers: &HeaderMap, id: &str) -> Result<Order, WebError> {
    let b = binding(headers, &login.config);
    if b.is_empty() {
        return Err(WebError::bad_request("bankid.lost"));
    }
    login
        .authn
        .bankid_order(id, b, login.authn.clock().now())
        .await?
        .ok_or(WebError::bad_request("bankid.lost"))
}

fn cancel_csrf(login: &Login, order: &str, binding: &str) -> String {
    csrf::token(
        login.csrf_key(),
        "bankid-cancel",
        &format!("{order}\u{0}{binding}"),
    )
}

/// Starts an order from the login page's BankID buttons.
async fn bankid_post(
    AxState(login): AxState<Login>,
    Extension(lang): Extension<Lang>,
    client_ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let authn = &login.authn;
    if !authn.bankid_enabled() {
        return Err(WebError::new(StatusCode::NOT_FOUND, "error.not_found"));
    }
    let tx = live_transaction(&login, &form.tx, now).await?;
    let b = binding(&headers, &login.config);
    if b.is_empty()
        || !csrf::verify(
            login.csrf_key(),
            "login",
            &login_binding(&tx.id, b),
            &form.csrf,
        )
    {
        return Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"));
    }
    let device = match form.device.as_str() {
        "this" => Device::This,
        "other" => Device::Other,
        _ => return Err(WebError::bad_request("error.bad_request")),
    };
    let purpose = if form.purpose == "password" {
        Purpose::Password
    } else {
        Purpose::Login
    };
    // endUserIp must be the person's address as we see it (behind trusted proxies, from
    // X-Forwarded-For): BankID compares it with where the app connects from.
    let Some(Extension(ClientIp(ip))) = client_ip else {
        return Err(WebError::internal("no client address for BankID"));
    };
    // Shown in the app: who asks (anti-phishing), in Swedish as BankID's own texts are.
    let visible = format!(
        "{} {}",
        Lang::Sv.t("bankid.user_visible_data"),
        rp_name(&tx, lang)
    );
    let return_url = format!("{}{}", login.config.issuer, paths::BANKID_RETURN);
    let page = StartPage {
        user_visible_text: &visible,
        return_url: &return_url,
    };
    match authn
        .bankid_start(&tx, b, device, purpose, ip, page, now)
        .await?
    {
        Ok(order) => {
            Ok(Redirect::to(&format!("{}?o={order}", paths::LOGIN_BANKID)).into_response())
        }
        Err(refused) => {
            let status = match refused {
                StartRefused::AlreadyInProgress => StatusCode::CONFLICT,
                StartRefused::TooMany => StatusCode::TOO_MANY_REQUESTS,
                StartRefused::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            let view = LoginView {
                tx: &tx,
                binding: b,
                username: "",
                reset: purpose == Purpose::Password,
                mobile: is_mobile(&headers),
            };
            rerender_login(&login, lang, &view, status, refused.message()).await
        }
    }
}

/// The wait page. Each load also collects (at most every two seconds), so the Refresh
/// button alone carries the login without JavaScript.
async fn bankid_get(
    AxState(login): AxState<Login>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    headers: HeaderMap,
    Query(q): Query<OrderQuery>,
) -> Result<Response, WebError> {
    let now = login.authn.clock().now();
    let authn = &login.authn;
    let order = order_of(&login, &headers, &q.o).await?;
    let order = authn.bankid_poll(order, now).await?;
    if let Some(res) = finish(&login, &sso, &order, now).await? {
        return Ok(redirect_with_cookie(res));
    }
    let tx = live_transaction(&login, &order.tx_id, now).await?;
    let rp = rp_name(&tx, lang);
    let (message, failed, qr) = match order.state {
        State::Pending { message, qr } => (message, false, qr && order.device == Device::Other),
        State::Failed(message) => (message, true, false),
        State::Complete => ("bankid.lost", true, false),
    };
    let mobile = is_mobile(&headers);
    let token = cancel_csrf(&login, &order.id, binding(&headers, &login.config));
    let mut res = web::render(&WaitPage {
        lang,
        rp_name: &rp,
        order: &order.id,
        tx: &order.tx_id,
        csrf: &token,
        message,
        failed,
        qr,
        stub: authn.bankid_is_stub(),
        autostart: authn.bankid_autostart(&order, mobile),
    })?;
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(WAIT_CSP),
    );
    Ok(res)
}

/// Ends a complete order: a new SSO session, then on to the relying party (or, for a
/// password reset, to the new-password page). None while the order is not complete.
async fn finish(
    login: &Login,
    sso: &SsoCookie,
    order: &Order,
    now: i64,
) -> Result<Option<(HeaderValue, String)>, WebError> {
    if order.state != State::Complete {
        return Ok(None);
    }
    let tx = live_transaction(login, &order.tx_id, now).await?;
    let finished = login
        .authn
        .bankid_finish(order, &tx, sso.value(), now)
        .await;
    let counted = match &finished {
        Ok(Some(_)) => Some(crate::metrics::result::SUCCESS),
        Ok(None) => None,
        Err(e) => Some(super::page::login_result(e)),
    };
    if let Some(result) = counted {
        crate::metrics::login(crate::metrics::method::BANKID, result);
    }
    let (cookie, _session) = match finished {
        Ok(Some(done)) => done,
        Ok(None) => return Err(WebError::bad_request("bankid.lost")),
        Err(AuthnError::Refused(r)) => {
            return Err(WebError::new(StatusCode::FORBIDDEN, r.message()));
        }
        Err(e) => return Err(e.into()),
    };
    let next = match order.purpose {
        Purpose::Password => format!("{}?tx={}", paths::PASSWORD, tx.id),
        Purpose::Login => resume_url(&tx),
    };
    Ok(Some((set_sso_cookie(&cookie, &login.config), next)))
}

fn redirect_with_cookie((cookie, next): (HeaderValue, String)) -> Response {
    let mut res = Redirect::to(&next).into_response();
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

#[derive(serde::Serialize)]
struct StatusBody {
    state: &'static str,
    message: &'static str,
    qr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// What the wait page's script polls. On complete it finishes the login (the SSO cookie
/// comes with this answer) and names the next page.
async fn status_get(
    AxState(login): AxState<Login>,
    Extension(lang): Extension<Lang>,
    Extension(sso): Extension<SsoCookie>,
    headers: HeaderMap,
    Query(q): Query<OrderQuery>,
) -> Response {
    let now = login.authn.clock().now();
    let authn = &login.authn;
    let lost = |message: &'static str| {
        let body = StatusBody {
            state: "failed",
            message: lang.t(message),
            qr: false,
            next: None,
        };
        (StatusCode::NOT_FOUND, Json(body)).into_response()
    };
    let b = binding(&headers, &login.config);
    let order = match authn.bankid_order(&q.o, b, now).await {
        Ok(Some(o)) if !b.is_empty() => o,
        Ok(_) => return lost("bankid.lost"),
        Err(e) => return WebError::from(e).into_response(),
    };
    let order = match authn.bankid_poll(order, now).await {
        Ok(o) => o,
        Err(e) => return WebError::from(e).into_response(),
    };
    let body = match &order.state {
        State::Pending { message, qr } => StatusBody {
            state: "pending",
            message: lang.t(message),
            qr: *qr,
            next: None,
        },
        State::Failed(message) => StatusBody {
            state: "failed",
            message: lang.t(message),
            qr: false,
            next: None,
        },
        State::Complete => match finish(&login, &sso, &order, now).await {
            Ok(Some((cookie, next))) => {
                let body = StatusBody {
                    state: "complete",
                    message: lang.t("bankid.rfa.done"),
                    qr: false,
                    next: Some(next),
                };
                let mut res = Json(body).into_response();
                res.headers_mut().append(header::SET_COOKIE, cookie);
                return res;
            }
            Ok(None) => return lost("bankid.lost"),
            Err(e) => return lost(e.message),
        },
    };
    Json(body).into_response()
}

/// The QR code as it is this second; 404 once the order no longer waits for a scan.
async fn qr_get(
    AxState(login): AxState<Login>,
    headers: HeaderMap,
    Query(q): Query<OrderQuery>,
) -> Result<Response, WebError> {
    let order = order_of(&login, &headers, &q.o).await?;
    let Some(data) = Authn::bankid_qr(&order, login.authn.clock().now()) else {
        return Err(WebError::new(StatusCode::NOT_FOUND, "error.not_found"));
    };
    let svg =
        crate::bankid::qr::svg(&data).map_err(|e| WebError::internal(format!("QR: {e:?}")))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// Demo only: "scanning" the QR code with the stub's app page, which gets the text the
/// code holds right now (a real phone would read it off the screen).
async fn stub_scan_get(
    AxState(login): AxState<Login>,
    headers: HeaderMap,
    Query(q): Query<OrderQuery>,
) -> Result<Response, WebError> {
    if !login.authn.bankid_is_stub() {
        return Err(WebError::new(StatusCode::NOT_FOUND, "error.not_found"));
    }
    let order = order_of(&login, &headers, &q.o).await?;
    let data = Authn::bankid_qr(&order, login.authn.clock().now())
        .ok_or(WebError::bad_request("bankid.lost"))?;
    let qr: String = url::form_urlencoded::byte_serialize(data.as_bytes()).collect();
    let target = format!("{}/app?qr={qr}", paths::BANKID_STUB);
    Ok(Redirect::to(&target).into_response())
}

async fn cancel_post(
    AxState(login): AxState<Login>,
    headers: HeaderMap,
    Form(form): Form<CancelForm>,
) -> Result<Response, WebError> {
    let order = order_of(&login, &headers, &form.o).await?;
    let b = binding(&headers, &login.config);
    let bound = format!("{}\u{0}{b}", order.id);
    if !csrf::verify(login.csrf_key(), "bankid-cancel", &bound, &form.csrf) {
        return Err(WebError::new(StatusCode::FORBIDDEN, "error.csrf"));
    }
    login.authn.bankid_cancel(&order).await?;
    Ok(Redirect::to(&format!("{}?tx={}", paths::LOGIN, order.tx_id)).into_response())
}

/// The returnUrl: the app sends the browser here after a same-device login. Only the
/// browser that started the order (binding cookie) with the order's nonce may continue.
async fn return_get(
    AxState(login): AxState<Login>,
    headers: HeaderMap,
    Query(q): Query<ReturnQuery>,
) -> Result<Response, WebError> {
    let order = order_of(&login, &headers, &q.o).await?;
    if !Authn::bankid_return_matches(&order, &q.n) {
        return Err(WebError::bad_request("bankid.lost"));
    }
    Ok(Redirect::to(&format!("{}?o={}", paths::LOGIN_BANKID, order.id)).into_response())
}

async fn script_get() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/bankid.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use crate::web::i18n::Lang;

    /// Every message BankID's codes map to (`bankid::messages`) has a text in both
    /// languages of the catalogue the pages draw from.
    #[test]
    fn every_bankid_message_has_a_text_in_both_languages() {
        for key in crate::bankid::messages::KEYS {
            for lang in [Lang::Sv, Lang::En] {
                assert_ne!(lang.t(key), "??", "{key} has no {} text", lang.code());
            }
        }
    }
}
