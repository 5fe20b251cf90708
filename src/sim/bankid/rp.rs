//! The RP API v6.0 as BankID serves it (specs/bankid.md §2–§5): one POST per method, JSON in
//! and out, and BankID's error codes in BankID's order of checks: unknown path (404), not
//! POST (405), not JSON (415), then the body (400). `payment` (a newer BankID method) is
//! not offered: 404.

use super::Stub;
use super::orders::{ApiError, Kind, NewOrder, is_personal_number};
use crate::bankid::api::{
    AuthRequest, ErrorCode, OrderRef, PhoneAuthRequest, PhoneSignRequest, Requirement,
};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use base64::{Engine, engine::general_purpose::STANDARD};

/// `userVisibleData` of an auth order: at most 1,500 characters after encoding (§3).
const AUTH_VISIBLE_MAX: usize = 1_500;
/// For sign orders BankID allows much more; 40,000 characters is the commonly documented
/// limit [unverified, specs/bankid.md §3].
const SIGN_VISIBLE_MAX: usize = 40_000;
const NON_VISIBLE_MAX: usize = 200_000;
const RETURN_URL_MAX: usize = 2_048;

pub(super) async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "No such method")
}

/// Every path under `/rp/v6.0/`.
pub(super) async fn dispatch(
    State(stub): State<Stub>,
    Path(method): Path<String>,
    req: Request,
) -> Response {
    match handle(&stub, &method, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(stub: &Stub, method: &str, req: Request) -> Result<Response, ApiError> {
    const METHODS: [&str; 6] = [
        "auth",
        "sign",
        "phone/auth",
        "phone/sign",
        "collect",
        "cancel",
    ];
    if !METHODS.contains(&method) {
        return Err(not_found().await);
    }
    if req.method() != Method::POST {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "Use POST with a JSON body",
        ));
    }
    let body = json_body(req).await?;
    let now = stub.now();
    let answer = match method {
        "auth" => json(
            stub.orders()
                .create(order(parse(&body)?, Kind::Auth)?, now)?,
        ),
        "sign" => json(
            stub.orders()
                .create(order(parse(&body)?, Kind::Sign)?, now)?,
        ),
        "phone/auth" => {
            let req: PhoneAuthRequest = parse(&body)?;
            json(
                stub.orders()
                    .create(phone_order(req, None, Kind::Auth)?, now)?,
            )
        }
        "phone/sign" => {
            let req: PhoneSignRequest = parse(&body)?;
            let new = phone_order(req.phone, req.user_non_visible_data, Kind::Sign)?;
            json(stub.orders().create(new, now)?)
        }
        "collect" => {
            let r: OrderRef = parse(&body)?;
            json(stub.orders().collect(&r.order_ref, now)?)
        }
        _ => {
            let r: OrderRef = parse(&body)?;
            stub.orders().cancel(&r.order_ref, now)?;
            json(serde_json::json!({}))
        }
    };
    Ok(answer)
}

fn json<T: serde::Serialize>(v: T) -> Response {
    Json(v).into_response()
}

/// The body of a JSON request, or 415 for another content type. The stub's app API reads
/// its bodies the same way.
pub(super) async fn json_body(req: Request) -> Result<axum::body::Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json",
        ));
    }
    axum::body::to_bytes(req.into_body(), super::BODY_LIMIT)
        .await
        .map_err(|_| ApiError::invalid("The body is too large or unreadable"))
}

/// Parses a body; unknown fields are ignored, as BankID does.
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("Invalid JSON: {e}")))
}

/// Validates `auth` and `sign` like BankID (§3).
pub(super) fn order(req: AuthRequest, kind: Kind) -> Result<NewOrder, ApiError> {
    let end_user_ip = req
        .end_user_ip
        .trim()
        .parse::<std::net::IpAddr>()
        .map_err(|_| ApiError::invalid("Invalid endUserIp"))?;
    let visible = visible_data(req.user_visible_data.as_deref(), kind)?;
    check_format(req.user_visible_data_format.as_deref())?;
    let non_visible = non_visible_data(req.user_non_visible_data)?;
    let return_url = match req.return_url {
        Some(u) if u.len() <= RETURN_URL_MAX => {
            Some(http_url(&u).ok_or_else(|| ApiError::invalid("Invalid returnUrl"))?)
        }
        Some(_) => return Err(ApiError::invalid("Invalid returnUrl")),
        None => None,
    };
    let (personal_number, mrtd) = requirement(req.requirement.as_ref())?;
    Ok(NewOrder {
        kind,
        phone: false,
        end_user_ip: Some(end_user_ip.to_string()),
        personal_number,
        visible,
        non_visible,
        return_url,
        mrtd,
        return_risk: req.return_risk.unwrap_or(false),
    })
}

/// Validates `phone/auth` and `phone/sign` (§3): the personal number and who called whom
/// are mandatory.
pub(super) fn phone_order(
    req: PhoneAuthRequest,
    non_visible: Option<String>,
    kind: Kind,
) -> Result<NewOrder, ApiError> {
    if !is_personal_number(&req.personal_number) {
        return Err(ApiError::invalid("Invalid personalNumber"));
    }
    if req.call_initiator != "user" && req.call_initiator != "RP" {
        return Err(ApiError::invalid("Invalid callInitiator"));
    }
    let visible = visible_data(req.user_visible_data.as_deref(), kind)?;
    check_format(req.user_visible_data_format.as_deref())?;
    let non_visible = non_visible_data(non_visible)?;
    let (required, mrtd) = requirement(req.requirement.as_ref())?;
    if required.as_ref().is_some_and(|r| *r != req.personal_number) {
        return Err(ApiError::invalid(
            "requirement.personalNumber differs from personalNumber",
        ));
    }
    Ok(NewOrder {
        kind,
        phone: true,
        end_user_ip: None,
        personal_number: Some(req.personal_number),
        visible,
        non_visible,
        return_url: None,
        mrtd,
        return_risk: false,
    })
}

fn requirement(r: Option<&Requirement>) -> Result<(Option<String>, bool), ApiError> {
    let Some(r) = r else {
        return Ok((None, false));
    };
    if let Some(pn) = &r.personal_number
        && !is_personal_number(pn)
    {
        return Err(ApiError::invalid("Invalid requirement.personalNumber"));
    }
    Ok((r.personal_number.clone(), r.mrtd.unwrap_or(false)))
}

/// `userVisibleData`: standard base64 of UTF-8 text; mandatory for sign.
fn visible_data(data: Option<&str>, kind: Kind) -> Result<Option<String>, ApiError> {
    let bad = || ApiError::invalid("Invalid userVisibleData");
    let Some(data) = data else {
        return match kind {
            Kind::Auth => Ok(None),
            Kind::Sign => Err(ApiError::invalid("userVisibleData is mandatory for sign")),
        };
    };
    let max = match kind {
        Kind::Auth => AUTH_VISIBLE_MAX,
        Kind::Sign => SIGN_VISIBLE_MAX,
    };
    if data.is_empty() || data.len() > max {
        return Err(bad());
    }
    let bytes = STANDARD.decode(data).map_err(|_| bad())?;
    String::from_utf8(bytes).map(Some).map_err(|_| bad())
}

fn non_visible_data(data: Option<String>) -> Result<Option<String>, ApiError> {
    match data {
        Some(d) if d.is_empty() || d.len() > NON_VISIBLE_MAX || STANDARD.decode(&d).is_err() => {
            Err(ApiError::invalid("Invalid userNonVisibleData"))
        }
        d => Ok(d),
    }
}

fn check_format(format: Option<&str>) -> Result<(), ApiError> {
    match format {
        None | Some("simpleMarkdownV1") => Ok(()),
        Some(_) => Err(ApiError::invalid("Invalid userVisibleDataFormat")),
    }
}

/// An absolute http(s) URL, serialized by the URL parser: ASCII only, so it is always a
/// valid `Location` header.
pub(super) fn http_url(s: &str) -> Option<String> {
    url::Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .map(String::from)
}
