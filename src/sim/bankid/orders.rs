//! The stub's orders and their state machine (specs/bankid.md §4, §5, §8, §10), without HTTP.
//! Every function takes `now`; timeouts are applied lazily whenever the orders are touched,
//! so no background task is needed and tests can move the clock.
//!
//! ```text
//! outstandingTransaction ──app opens──► started ──identity chosen──► userSign ──approve──► complete
//! (phone: userCallConfirm)                                        └──────────app cancels──► failed userCancel
//! not picked up within start_timeout ──► failed startFailed     (phone orders: only the lifetime)
//! still pending after order_lifetime  ──► failed expiredTransaction
//! another order for the same person   ──► failed cancelled
//! ```

use crate::bankid::api::{
    CollectResponse, CompletionData, Device, ErrorCode, HintCode, OrderResponse, Status, StepUp,
    User,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A complete order can be collected this long, a failed one `FAILED_RETENTION` (§8).
pub const COMPLETE_RETENTION: Duration = Duration::from_secs(180);
pub const FAILED_RETENTION: Duration = Duration::from_secs(300);
/// Orders held in memory at most; beyond that new orders get `tooManyRequests`.
pub const MAX_ORDERS: usize = 10_000;
/// How far the QR code's qrTime may lag behind the order's age (a code shown on screen is
/// up to a second old, plus the time to scan and send it) or run ahead of it.
pub const QR_MAX_BEHIND: u64 = 5;
pub const QR_MAX_AHEAD: u64 = 2;

/// An error answer of the RP API (§5). `details` goes to the caller only, never to a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub details: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, details: impl Into<String>) -> Self {
        Self {
            code,
            details: details.into(),
        }
    }

    pub fn invalid(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameters, details)
    }
}

/// Why the stub app refused an action. Each has a BankID-style error for the app's JSON API
/// and a catalogue key for its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No order has this token, or it is forgotten.
    UnknownOrder,
    /// Text that is not a BankID QR code.
    NotAQrCode,
    /// The QR code's auth code is not the HMAC under the order's qrStartSecret.
    WrongAuthCode,
    /// qrTime is too far from the order's age: an old photo of the code, or a forged time.
    StaleQrCode,
    /// The order is no longer pending.
    OrderFinished,
    /// Not 12 digits.
    BadPersonalNumber,
    /// The RP required another personal number (`requirement.personalNumber`).
    WrongPersonalNumber,
    /// A name too long or with control characters.
    BadName,
}

impl Refusal {
    pub fn api_error(self) -> ApiError {
        let (code, details) = match self {
            Self::UnknownOrder => (ErrorCode::NotFound, "No such order"),
            Self::NotAQrCode => (ErrorCode::InvalidParameters, "Not a BankID QR code"),
            Self::WrongAuthCode => (
                ErrorCode::InvalidParameters,
                "The QR code's auth code is wrong",
            ),
            Self::StaleQrCode => (
                ErrorCode::InvalidParameters,
                "The QR code's time does not match the order's age",
            ),
            Self::OrderFinished => (ErrorCode::InvalidParameters, "The order is not pending"),
            Self::BadPersonalNumber => (
                ErrorCode::InvalidParameters,
                "personalNumber must be 12 digits",
            ),
            Self::WrongPersonalNumber => (
                ErrorCode::InvalidParameters,
                "The order requires another personal number",
            ),
            Self::BadName => (ErrorCode::InvalidParameters, "Invalid name"),
        };
        ApiError::new(code, details)
    }

    /// The message catalogue key the stub app's page shows.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownOrder => "stub.error.unknown",
            Self::NotAQrCode => "stub.error.not_qr",
            Self::WrongAuthCode => "stub.error.wrong_code",
            Self::StaleQrCode => "stub.error.stale",
            Self::OrderFinished => "stub.error.finished",
            Self::BadPersonalNumber => "stub.error.bad_pn",
            Self::WrongPersonalNumber => "stub.error.wrong_pn",
            Self::BadName => "stub.error.bad_name",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Auth,
    Sign,
}

/// A validated order request from the RP.
#[derive(Clone)]
pub struct NewOrder {
    pub kind: Kind,
    pub phone: bool,
    /// `endUserIp`; phone orders have none.
    pub end_user_ip: Option<String>,
    /// `requirement.personalNumber`, or the personal number of a phone order.
    pub personal_number: Option<String>,
    /// `userVisibleData`, decoded.
    pub visible: Option<String>,
    /// `userNonVisibleData`, as sent (base64).
    pub non_visible: Option<String>,
    pub return_url: Option<String>,
    pub mrtd: bool,
    pub return_risk: bool,
}

/// The person the app identifies as.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub personal_number: String,
    pub given_name: String,
    pub surname: String,
    pub name: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity { personal_number: <redacted>, .. }")
    }
}

impl Identity {
    /// Checks the personal number (12 digits) and the names; fills missing names: from
    /// `name` when only that is given, else "Test Testsson".
    pub fn new(
        personal_number: &str,
        given_name: &str,
        surname: &str,
        name: &str,
    ) -> Result<Self, Refusal> {
        let personal_number = personal_number.trim();
        if !is_personal_number(personal_number) {
            return Err(Refusal::BadPersonalNumber);
        }
        let (mut given, mut sur, mut full) = (given_name.trim(), surname.trim(), name.trim());
        for s in [given, sur, full] {
            if s.chars().count() > 100 || s.chars().any(char::is_control) {
                return Err(Refusal::BadName);
            }
        }
        if given.is_empty() && sur.is_empty() {
            (given, sur) = match full.split_once(' ') {
                Some((g, s)) => (g, s.trim()),
                None if !full.is_empty() => (full, ""),
                None => ("Test", "Testsson"),
            };
        }
        let joined = format!("{given} {sur}");
        if full.is_empty() {
            full = joined.trim();
        }
        Ok(Self {
            personal_number: personal_number.to_string(),
            given_name: given.to_string(),
            surname: sur.to_string(),
            name: full.to_string(),
        })
    }
}

/// BankID's machine form of a personnummer: exactly 12 digits.
pub fn is_personal_number(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone)]
pub enum State {
    /// Nobody has picked the order up (`outstandingTransaction`; phone: `userCallConfirm`).
    Outstanding,
    /// The app opened it; no identity chosen yet.
    Started,
    /// The app chose an identity and waits for the security code.
    UserSign(Identity),
    Complete {
        at: Instant,
        data: Box<CompletionData>,
    },
    Failed {
        at: Instant,
        hint: HintCode,
    },
}

pub struct Order {
    pub request: NewOrder,
    pub order_ref: String,
    /// Empty for phone orders, which start neither by autostart nor by QR.
    pub auto_start_token: String,
    pub qr_start_token: String,
    pub qr_start_secret: String,
    pub created: Instant,
    pub state: State,
    /// The app's handle once it opened the order: the page's forms carry it, not the QR
    /// text, which is stale after a few seconds.
    pub app_ref: Option<String>,
    /// Where the browser goes after approval; set only when the order was opened by
    /// autostart (same device): `returnUrl`, else the autostart link's `redirect`.
    pub return_to: Option<String>,
}

impl Order {
    pub fn is_pending(&self) -> bool {
        matches!(
            self.state,
            State::Outstanding | State::Started | State::UserSign(_)
        )
    }

    /// The personal number this pending order is for: the chosen identity's, else the
    /// one the RP required.
    fn person(&self) -> Option<&str> {
        match &self.state {
            State::UserSign(id) => Some(&id.personal_number),
            State::Outstanding | State::Started => self.request.personal_number.as_deref(),
            _ => None,
        }
    }

    fn picked_up(&self) -> bool {
        matches!(self.state, State::Started | State::UserSign(_))
    }

    /// `status` and `hintCode` as `collect` shows them.
    pub fn status(&self) -> (Status, Option<HintCode>) {
        match &self.state {
            State::Outstanding if self.request.phone => {
                (Status::Pending, Some(HintCode::UserCallConfirm))
            }
            State::Outstanding => (Status::Pending, Some(HintCode::OutstandingTransaction)),
            State::Started => (Status::Pending, Some(HintCode::Started)),
            State::UserSign(_) => (Status::Pending, Some(HintCode::UserSign)),
            State::Complete { .. } => (Status::Complete, None),
            State::Failed { hint, .. } => (Status::Failed, Some(hint.clone())),
        }
    }

    fn fail(&mut self, at: Instant, hint: HintCode) {
        self.state = State::Failed { at, hint };
    }

    /// Applies the timeouts as of `now`, dating each failure to the moment it happened.
    /// A time beyond what `Instant` can hold (an absurd setting) never comes.
    fn expire(&mut self, now: Instant, start_timeout: Duration, lifetime: Duration) {
        let start_deadline = self.created.checked_add(start_timeout);
        let end = self.created.checked_add(lifetime);
        match (start_deadline, end) {
            (Some(start), _)
                if matches!(self.state, State::Outstanding)
                    && !self.request.phone
                    && start_timeout <= lifetime
                    && now >= start =>
            {
                self.fail(start, HintCode::StartFailed);
            }
            (_, Some(end)) if self.is_pending() && now >= end => {
                self.fail(end, HintCode::ExpiredTransaction);
            }
            _ => {}
        }
    }

    fn forgotten(&self, now: Instant) -> bool {
        match &self.state {
            State::Complete { at, .. } => now >= *at + COMPLETE_RETENTION,
            State::Failed { at, .. } => now >= *at + FAILED_RETENTION,
            _ => false,
        }
    }
}

/// How the app found an order.
#[derive(Debug, Clone, Copy)]
pub enum Handle<'a> {
    /// The autostart link's `autostarttoken`.
    AutoStart(&'a str),
    /// The scanned QR text.
    Qr(&'a str),
    /// The app's own handle (`Order::app_ref`).
    App(&'a str),
    /// The pending phone order for this personal number (the real app shows phone orders
    /// to the person they are for).
    Phone(&'a str),
}

pub struct Orders {
    map: HashMap<String, Order>,
    start_timeout: Duration,
    lifetime: Duration,
    pub max_orders: usize,
}

impl Orders {
    pub fn new(start_timeout: Duration, lifetime: Duration) -> Self {
        Self {
            map: HashMap::new(),
            start_timeout,
            lifetime,
            max_orders: MAX_ORDERS,
        }
    }

    /// Applies timeouts and forgets orders past their retention. O(n) with n bounded by
    /// `max_orders`, cheap enough for a stub on every call.
    fn sweep(&mut self, now: Instant) {
        let (start, life) = (self.start_timeout, self.lifetime);
        for o in self.map.values_mut() {
            o.expire(now, start, life);
        }
        self.map.retain(|_, o| !o.forgotten(now));
    }

    /// Orders held as of `now`: pending, or finished and still collectable.
    pub fn count(&mut self, now: Instant) -> usize {
        self.sweep(now);
        self.map.len()
    }

    /// `auth`, `sign`, `phone/*`. A live order for the same personal number is cancelled
    /// and this one refused with `alreadyInProgress` (§5).
    pub fn create(&mut self, request: NewOrder, now: Instant) -> Result<OrderResponse, ApiError> {
        self.sweep(now);
        if let Some(pn) = request.personal_number.as_deref() {
            let mut found = false;
            for o in self.map.values_mut() {
                if o.is_pending() && o.person() == Some(pn) {
                    o.fail(now, HintCode::Cancelled);
                    found = true;
                }
            }
            if found {
                return Err(ApiError::new(
                    ErrorCode::AlreadyInProgress,
                    "An order for this user is already in progress",
                ));
            }
        }
        if self.map.len() >= self.max_orders {
            return Err(ApiError::new(
                ErrorCode::TooManyRequests,
                "Too many orders in progress",
            ));
        }
        let uuid = || uuid::Uuid::new_v4().to_string();
        let phone = request.phone;
        let order = Order {
            order_ref: uuid(),
            auto_start_token: if phone { String::new() } else { uuid() },
            qr_start_token: if phone { String::new() } else { uuid() },
            qr_start_secret: if phone { String::new() } else { uuid() },
            request,
            created: now,
            state: State::Outstanding,
            app_ref: None,
            return_to: None,
        };
        let response = OrderResponse {
            order_ref: order.order_ref.clone(),
            auto_start_token: order.auto_start_token.clone(),
            qr_start_token: order.qr_start_token.clone(),
            qr_start_secret: order.qr_start_secret.clone(),
        };
        self.map.insert(order.order_ref.clone(), order);
        Ok(response)
    }

    /// `collect`: unknown and forgotten orders are `invalidParameters` (§5).
    pub fn collect(&mut self, order_ref: &str, now: Instant) -> Result<CollectResponse, ApiError> {
        self.sweep(now);
        let o = self
            .map
            .get(order_ref)
            .ok_or_else(|| ApiError::invalid("No such order"))?;
        let (status, hint_code) = o.status();
        let completion_data = match &o.state {
            State::Complete { data, .. } => Some((**data).clone()),
            _ => None,
        };
        Ok(CollectResponse {
            order_ref: o.order_ref.clone(),
            status,
            hint_code,
            completion_data,
        })
    }

    /// `cancel` by the RP: the order is gone; a later collect or cancel is
    /// `invalidParameters`.
    pub fn cancel(&mut self, order_ref: &str, now: Instant) -> Result<(), ApiError> {
        self.sweep(now);
        self.map
            .remove(order_ref)
            .map(|_| ())
            .ok_or_else(|| ApiError::invalid("No such order"))
    }

    /// The order the app means, with the QR code checked like the real app checks it: the
    /// token names the order, the auth code must be the HMAC under its secret, and qrTime
    /// must match the order's age.
    pub fn find(&mut self, handle: Handle<'_>, now: Instant) -> Result<&mut Order, Refusal> {
        self.sweep(now);
        let found = match handle {
            Handle::AutoStart(t) => self
                .map
                .values_mut()
                .find(|o| !t.is_empty() && o.auto_start_token == t),
            Handle::App(r) => self
                .map
                .values_mut()
                .find(|o| !r.is_empty() && o.app_ref.as_deref() == Some(r)),
            Handle::Phone(pn) => self
                .map
                .values_mut()
                .filter(|o| {
                    o.request.phone
                        && o.is_pending()
                        && o.request.personal_number.as_deref() == Some(pn)
                })
                .max_by_key(|o| o.created),
            Handle::Qr(text) => {
                let (token, time, code) =
                    crate::bankid::qr::parse(text).ok_or(Refusal::NotAQrCode)?;
                let o = self
                    .map
                    .values_mut()
                    .find(|o| !o.qr_start_token.is_empty() && o.qr_start_token == token)
                    .ok_or(Refusal::UnknownOrder)?;
                if !crate::bankid::qr::verify(&o.qr_start_secret, time, code) {
                    return Err(Refusal::WrongAuthCode);
                }
                let age = now.saturating_duration_since(o.created).as_secs();
                if age > time.saturating_add(QR_MAX_BEHIND)
                    || time > age.saturating_add(QR_MAX_AHEAD)
                {
                    return Err(Refusal::StaleQrCode);
                }
                Some(o)
            }
        };
        found.ok_or(Refusal::UnknownOrder)
    }

    /// The app opens the order the handle names: pending `started`, or `userSign` when it
    /// already knows who identifies (phone orders always do). Returns the app's handle.
    pub fn open(
        &mut self,
        handle: Handle<'_>,
        identity: Option<Identity>,
        redirect: Option<String>,
        now: Instant,
    ) -> Result<String, Refusal> {
        let o = self.find(handle, now)?;
        if !o.is_pending() {
            return Err(Refusal::OrderFinished);
        }
        let identity = match (identity, &handle) {
            (Some(id), _) => Some(id),
            (None, Handle::Phone(pn)) => Some(Identity::new(pn, "", "", "")?),
            (None, _) => None,
        };
        if let (Some(id), Some(required)) = (&identity, &o.request.personal_number)
            && &id.personal_number != required
        {
            return Err(Refusal::WrongPersonalNumber);
        }
        let app_ref = o
            .app_ref
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        if let Handle::AutoStart(_) = handle {
            // The server's returnUrl wins over the link's redirect (§7).
            o.return_to = o.request.return_url.clone().or(redirect);
        }
        match identity {
            Some(id) => o.state = State::UserSign(id),
            None if matches!(o.state, State::Outstanding) => o.state = State::Started,
            None => {}
        }
        let (order_ref, person) = (o.order_ref.clone(), o.person().map(str::to_string));
        if let Some(pn) = person {
            self.cancel_others(&order_ref, &pn, now);
        }
        Ok(app_ref)
    }

    /// Another picked-up pending order for the same person fails with `cancelled` (§4).
    fn cancel_others(&mut self, keep: &str, pn: &str, now: Instant) {
        for o in self.map.values_mut() {
            if o.order_ref != keep && o.picked_up() && o.person() == Some(pn) {
                o.fail(now, HintCode::Cancelled);
            }
        }
    }

    /// The user identifies (or signs): the order completes. An order nobody opened yet is
    /// opened on the way. Returns where the browser goes next, if anywhere.
    pub fn approve(
        &mut self,
        handle: Handle<'_>,
        identity: Identity,
        today: chrono::NaiveDate,
        now: Instant,
    ) -> Result<Option<String>, Refusal> {
        let app_ref = self.open(handle, Some(identity.clone()), None, now)?;
        let o = self.find(Handle::App(&app_ref), now)?;
        let data = completion(o, identity, today);
        o.state = State::Complete {
            at: now,
            data: Box::new(data),
        };
        Ok(o.return_to.clone())
    }

    /// The user cancels in the app (`userCancel`), or declines a phone order before
    /// confirming the call (`userDeclinedCall`).
    pub fn app_cancel(&mut self, handle: Handle<'_>, now: Instant) -> Result<HintCode, Refusal> {
        let o = self.find(handle, now)?;
        if !o.is_pending() {
            return Err(Refusal::OrderFinished);
        }
        let hint = if o.request.phone && matches!(o.state, State::Outstanding) {
            HintCode::UserDeclinedCall
        } else {
            HintCode::UserCancel
        };
        o.fail(now, hint.clone());
        Ok(hint)
    }
}

/// What `collect` returns for a complete order (§4).
fn completion(o: &Order, id: Identity, today: chrono::NaiveDate) -> CompletionData {
    let uhi = STANDARD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        id.personal_number.as_bytes(),
    ));
    CompletionData {
        device: Some(Device {
            // Phone orders carry no endUserIp; the stub's phone is on loopback.
            ip_address: o
                .request
                .end_user_ip
                .clone()
                .unwrap_or_else(|| "127.0.0.1".into()),
            uhi: Some(uhi),
        }),
        bank_id_issue_date: Some(today.format("%Y-%m-%d").to_string()),
        step_up: Some(StepUp {
            mrtd: o.request.mrtd,
        }),
        signature: STANDARD.encode(signature_xml(o)),
        ocsp_response: STANDARD.encode(format!("portvakt-bankid-stub-ocsp:{}", o.order_ref)),
        risk: o.request.return_risk.then(|| "low".to_string()),
        user: User {
            personal_number: id.personal_number,
            name: id.name,
            given_name: id.given_name,
            surname: id.surname,
        },
    }
}

/// A small XML document naming what was signed. NOT a real XMLDSig: nothing is signed, and
/// no RP may ever accept it as a BankID signature; it only lets the RP's code see the shape.
fn signature_xml(o: &Order) -> String {
    use quick_xml::escape::escape;
    let kind = match o.request.kind {
        Kind::Auth => "auth",
        Kind::Sign => "sign",
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <stubSignature xmlns=\"urn:x-portvakt:bankid-stub\">\
         <notice>Made by Portvakt's BankID stub. Not a BankID signature.</notice>\
         <orderRef>{}</orderRef><type>{kind}</type>\
         <usrVisibleData>{}</usrVisibleData>\
         <usrNonVisibleData>{}</usrNonVisibleData>\
         </stubSignature>",
        escape(&o.order_ref),
        escape(o.request.visible.as_deref().unwrap_or("")),
        escape(o.request.non_visible.as_deref().unwrap_or("")),
    )
}
