//! BankID as a login method. The browser knows only our order id: Portvakt starts the
//! order, keeps orderRef and qrStartSecret in the database (any instance can collect), draws
//! the QR code, collects at most every two seconds however often the page polls, and on
//! `complete` matches the personal number to exactly one active person.

use super::{Authn, AuthnError, MethodUse, Session, Transaction};
use crate::bankid::api::{self, AuthRequest, HintCode, Status};
use crate::bankid::messages::{self, Device};
use crate::bankid::{self, BankIdError};
use crate::keys::kek;
use crate::storage::{self, bankid::OrderRecord};
use base64::Engine;
use std::net::IpAddr;

/// Seconds between two collects of one order (specs/bankid.md §8).
const COLLECT_EVERY: i64 = 2;
/// How long we keep an order: BankID's order lifetime (about 3 minutes) and a margin.
const ORDER_TTL: i64 = 240;
const QR_LABEL: &str = "bankid-qr";
/// Orders one login transaction may start: plenty for retries, and a bound on what one
/// page can make BankID do (a limit per address would lock out a school behind one NAT).
const MAX_ORDERS_PER_LOGIN: i64 = 10;

/// What the login is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    /// Self-service password reset: the login ends on the new-password page.
    Password,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Password => "password",
        }
    }
}

fn device_str(d: Device) -> &'static str {
    match d {
        Device::This => "this",
        Device::Other => "other",
    }
}

/// The BankID method: the client and where the autostart link points.
#[derive(Clone, Debug)]
pub struct BankIdMethod {
    client: bankid::Client,
    /// The stub's app link (`<issuer>/bankid-stub/app?`) when the stub plays BankID, so the
    /// autostart link opens its app page instead of the real app.
    stub_app: Option<String>,
}

impl BankIdMethod {
    /// `stub_app` is the stub's app link (`…/bankid-stub/app?`) when the stub plays BankID;
    /// the autostart token is appended to it as to BankID's own app link.
    pub fn new(client: bankid::Client, stub_app: Option<String>) -> Self {
        Self { client, stub_app }
    }
}

/// What the page around an order supplies: the text the app shows, and the returnUrl
/// a same-device order sends the browser back to.
#[derive(Debug, Clone, Copy)]
pub struct StartPage<'a> {
    /// Shown in the app under the question (who asks: anti-phishing).
    pub user_visible_text: &'a str,
    /// Absolute URL of the front's return endpoint; the order id and a nonce are added.
    pub return_url: &'a str,
}

/// An order as the pages see it. Debug leaves out the tokens and the QR secret.
#[derive(Clone)]
pub struct Order {
    pub id: String,
    pub tx_id: String,
    pub purpose: Purpose,
    pub device: Device,
    pub state: State,
    started_at: i64,
    auto_start_token: String,
    qr_start_token: String,
    qr_start_secret: String,
    return_nonce: Option<String>,
    person_id: Option<String>,
}

impl std::fmt::Debug for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Order")
            .field("id", &self.id)
            .field("purpose", &self.purpose)
            .field("device", &self.device)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting; the catalogue key of the message to show, and whether the QR code is still
    /// useful (only until an app picks the order up).
    Pending { message: &'static str, qr: bool },
    /// Ended without a login; the catalogue key of the message.
    Failed(&'static str),
    /// BankID says complete and exactly one person matched: ready to finish.
    Complete,
}

/// Why a BankID order could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRefused {
    /// BankID already runs an order for this person (a step-up started twice).
    AlreadyInProgress,
    /// This login transaction started its allowance of orders.
    TooMany,
    /// BankID could not take the order; the catalogue key of the message.
    Unavailable(&'static str),
}

impl StartRefused {
    /// The catalogue key of the message for the login page.
    pub fn message(self) -> &'static str {
        match self {
            Self::AlreadyInProgress => "bankid.rfa4",
            Self::TooMany => "login.error.throttled",
            Self::Unavailable(key) => key,
        }
    }
}

impl Authn {
    pub fn bankid_enabled(&self) -> bool {
        self.bankid.is_some()
    }

    /// Whether the built-in stub plays BankID (demo and tests).
    pub fn bankid_is_stub(&self) -> bool {
        self.bankid.as_ref().is_some_and(|m| m.stub_app.is_some())
    }

    fn bankid(&self) -> Result<&BankIdMethod, AuthnError> {
        self.bankid.as_ref().ok_or(AuthnError::BankIdDisabled)
    }

    /// Starts an order for a login transaction from the browser with `binding`. When the
    /// login steps up a session (`Transaction::step_up_person`), the order names that
    /// person's personal number, so only their BankID can answer it.
    #[allow(clippy::too_many_arguments)]
    pub async fn bankid_start(
        &self,
        tx: &Transaction,
        binding: &str,
        device: Device,
        purpose: Purpose,
        end_user_ip: IpAddr,
        page: StartPage<'_>,
        now: i64,
    ) -> Result<Result<String, StartRefused>, AuthnError> {
        let method = self.bankid()?;
        // Counted in the throttle table, which every instance shares and housekeeping
        // empties.
        let key = crate::keys::hash_token(&format!("bankid-start\u{0}{}", tx.id));
        if storage::throttle::record_failure(&self.db, &key, now).await? > MAX_ORDERS_PER_LOGIN {
            return Ok(Err(StartRefused::TooMany));
        }
        let id = crate::keys::random_token();
        let nonce = crate::keys::random_token();
        let b = &self.config.bankid;
        let policies = if b.certificate_policies.is_empty() {
            bankid::client::default_policies(b.environment)
        } else {
            b.certificate_policies.clone()
        };
        let personal_number = match &tx.step_up_person {
            Some(person) => storage::persons::by_id(&self.db, person)
                .await?
                .and_then(|p| p.civic_no)
                .filter(|c| !c.is_temporary())
                .map(|c| c.as_str().to_string()),
            None => None,
        };
        let req = AuthRequest {
            end_user_ip: end_user_ip.to_string(),
            requirement: Some(api::Requirement {
                pin_code: b.pin_code.then_some(true),
                certificate_policies: policies,
                personal_number,
                ..Default::default()
            }),
            user_visible_data: Some(
                base64::engine::general_purpose::STANDARD.encode(page.user_visible_text),
            ),
            return_url: (device == Device::This)
                .then(|| format!("{}?o={id}&n={nonce}", page.return_url)),
            ..Default::default()
        };
        let asked = std::time::Instant::now();
        let started = match method.client.auth(&req).await {
            Ok(o) => o,
            Err(e) => return Ok(Err(refusal(&e))),
        };
        // The QR code's time zero is when BankID's answer arrived (§6), not when we asked.
        let started_at = now + asked.elapsed().as_secs() as i64;
        let rec = OrderRecord {
            id: id.clone(),
            tx_id: tx.id.clone(),
            binding: crate::keys::hash_token(binding),
            purpose: purpose.as_str().into(),
            device: device_str(device).into(),
            order_ref: started.order_ref,
            auto_start_token: started.auto_start_token,
            qr_start_token: started.qr_start_token,
            qr_start_secret: kek::seal_with(
                &self.keys.secrets().token,
                QR_LABEL,
                started.qr_start_secret.as_bytes(),
            )?,
            return_nonce: (device == Device::This).then(|| crate::keys::hash_token(&nonce)),
            started_at,
            status: "pending".into(),
            hint: Some(HintCode::OutstandingTransaction.as_str().into()),
            person_id: None,
            collected_at: now,
            expires_at: now + ORDER_TTL,
        };
        storage::bankid::insert(&self.db, &rec).await?;
        Ok(Ok(id))
    }

    /// The order `id` if the browser with `binding` started it.
    pub async fn bankid_order(
        &self,
        id: &str,
        binding: &str,
        now: i64,
    ) -> Result<Option<Order>, AuthnError> {
        let Some(rec) = storage::bankid::get(&self.db, id, now).await? else {
            return Ok(None);
        };
        if !crate::keys::constant_time_eq(&rec.binding, &crate::keys::hash_token(binding)) {
            return Ok(None);
        }
        self.to_order(rec).map(Some)
    }

    /// Whether the browser coming back from the app carries the nonce of the order's
    /// returnUrl (the binding was checked when the order was loaded).
    pub fn bankid_return_matches(order: &Order, nonce: &str) -> bool {
        order
            .return_nonce
            .as_deref()
            .is_some_and(|h| crate::keys::constant_time_eq(h, &crate::keys::hash_token(nonce)))
    }

    /// Asks BankID how a pending order is doing, unless someone asked in the last two
    /// seconds, and returns the order as it now stands.
    pub async fn bankid_poll(&self, order: Order, now: i64) -> Result<Order, AuthnError> {
        if !matches!(order.state, State::Pending { .. })
            || !storage::bankid::claim_collect(&self.db, &order.id, COLLECT_EVERY, now).await?
        {
            return Ok(order);
        }
        let method = self.bankid()?;
        let Some(rec) = storage::bankid::get(&self.db, &order.id, now).await? else {
            return Ok(order);
        };
        let (status, hint, person) = match method.client.collect(&rec.order_ref).await {
            Ok(c) => match c.status {
                Status::Pending => ("pending", c.hint_code.map(|h| h.to_string()), None),
                Status::Failed => ("failed", c.hint_code.map(|h| h.to_string()), None),
                Status::Complete => match c.completion_data {
                    Some(data) => self.match_person(&data.user.personal_number, now).await?,
                    None => ("error", Some("bankid.rfa22".into()), None),
                },
            },
            // A network hiccup: the order may still complete; the next poll asks again.
            Err(BankIdError::Transport(e)) => {
                tracing::warn!("BankID collect: {e}");
                return Ok(order);
            }
            Err(e) => {
                tracing::warn!("BankID collect: {e}");
                ("error", Some(messages::for_error(e.code()).into()), None)
            }
        };
        storage::bankid::set_status(
            &self.db,
            &order.id,
            status,
            hint.as_deref(),
            person.as_deref(),
        )
        .await?;
        // An order ends once, here (one poller claims each collect); a complete one is
        // counted when the login finishes.
        match status {
            "failed" => login_metric(crate::metrics::result::FAILURE),
            "refused" => login_metric(crate::metrics::result::REFUSED),
            "error" => login_metric(crate::metrics::result::ERROR),
            _ => {}
        }
        match storage::bankid::get(&self.db, &order.id, now).await? {
            Some(rec) => self.to_order(rec),
            None => Ok(order),
        }
    }

    /// Exactly one active person with the personal number, or a refusal with an audit
    /// event (which names neither the number nor a person).
    async fn match_person(
        &self,
        personal_number: &str,
        now: i64,
    ) -> Result<(&'static str, Option<String>, Option<String>), AuthnError> {
        let ids = match crate::directory::CivicNo::parse(personal_number) {
            Ok(c) => storage::persons::active_ids_by_civic(&self.db, c.as_str()).await?,
            Err(_) => Vec::new(),
        };
        if let [id] = ids.as_slice() {
            return Ok(("complete", None, Some(id.clone())));
        }
        let detail = if ids.is_empty() {
            "no active person has the personal number".to_string()
        } else {
            format!("{} active people share the personal number", ids.len())
        };
        storage::records::audit(&self.db, "login.bankid_refused", "bankid", &detail, now).await?;
        tracing::warn!("BankID login refused: {detail}");
        Ok(("refused", Some("bankid.no_match".into()), None))
    }

    /// The QR text for now, while the order waits for an app.
    pub fn bankid_qr(order: &Order, now: i64) -> Option<String> {
        match order.state {
            State::Pending { qr: true, .. } if order.device == Device::Other => {
                let seconds = (now - order.started_at).max(0) as u64;
                Some(bankid::qr::qr_data(
                    &order.qr_start_token,
                    &order.qr_start_secret,
                    seconds,
                ))
            }
            _ => None,
        }
    }

    /// The link that starts the app on this device: the stub's app page in demo mode, else
    /// BankID's app link (phones) or its URL scheme (computers).
    pub fn bankid_autostart(&self, order: &Order, mobile: bool) -> Option<String> {
        let token = &order.auto_start_token;
        if order.device != Device::This || token.is_empty() {
            return None;
        }
        // The returnUrl given to auth wins over a redirect parameter (§7): "null".
        let base = match self.bankid.as_ref().and_then(|m| m.stub_app.as_deref()) {
            Some(stub) => stub,
            None if mobile => "https://app.bankid.com/?",
            None => "bankid:///?",
        };
        Some(format!("{base}autostarttoken={token}&redirect=null"))
    }

    /// Ends a complete order of transaction `tx` with a new SSO session through
    /// `finish_login` (which refuses a step-up by another person); None when another
    /// request already did (one finish wins) or the order is not complete.
    pub async fn bankid_finish(
        &self,
        order: &Order,
        tx: &Transaction,
        previous_cookie: Option<&str>,
        now: i64,
    ) -> Result<Option<(String, Session)>, AuthnError> {
        let (State::Complete, Some(person)) = (&order.state, &order.person_id) else {
            return Ok(None);
        };
        if order.tx_id != tx.id || !storage::bankid::take(&self.db, &order.id).await? {
            return Ok(None);
        }
        let method = MethodUse::new(super::policy::BANKID, &self.config.bankid.acr, now);
        match order.purpose {
            Purpose::Password => {
                self.finish_reset_login(tx, person, method, previous_cookie, now)
                    .await
            }
            Purpose::Login => {
                self.finish_login(tx, person, method, previous_cookie, now)
                    .await
            }
        }
        .map(Some)
    }

    /// Cancels a pending order at BankID and forgets it.
    pub async fn bankid_cancel(&self, order: &Order) -> Result<(), AuthnError> {
        if let Some(rec) = storage::bankid::get(&self.db, &order.id, 0).await? {
            storage::bankid::take(&self.db, &order.id).await?;
            if rec.status == "pending"
                && let Err(e) = self.bankid()?.client.cancel(&rec.order_ref).await
            {
                // The order ends by itself within minutes; nothing for the person to do.
                tracing::warn!("BankID cancel: {e}");
            }
        }
        Ok(())
    }

    /// Whether the session has a BankID login at most `reset_window` seconds old (the
    /// condition for setting a new password).
    pub fn recent_bankid(&self, session: &Session, now: i64) -> bool {
        session
            .methods
            .iter()
            .any(|m| m.method == "bankid" && now - m.at <= self.config.bankid.reset_window)
    }

    fn to_order(&self, rec: OrderRecord) -> Result<Order, AuthnError> {
        let device = if rec.device == "this" {
            Device::This
        } else {
            Device::Other
        };
        let hint = rec.hint.as_deref().map(HintCode::parse);
        let state = match rec.status.as_str() {
            "pending" => State::Pending {
                message: messages::for_status(Status::Pending, hint.as_ref(), device),
                qr: matches!(
                    hint,
                    None | Some(HintCode::OutstandingTransaction) | Some(HintCode::NoClient)
                ),
            },
            "complete" => State::Complete,
            "failed" => State::Failed(messages::for_status(Status::Failed, hint.as_ref(), device)),
            // refused and error keep their message's catalogue key in `hint`.
            _ => State::Failed(stored_message(rec.hint.as_deref())),
        };
        let secret = kek::open_with(&self.keys.secrets().token, QR_LABEL, &rec.qr_start_secret)
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        Ok(Order {
            id: rec.id,
            tx_id: rec.tx_id,
            purpose: if rec.purpose == "password" {
                Purpose::Password
            } else {
                Purpose::Login
            },
            device,
            state,
            started_at: rec.started_at,
            auto_start_token: rec.auto_start_token,
            qr_start_token: rec.qr_start_token,
            qr_start_secret: secret,
            return_nonce: rec.return_nonce,
            person_id: rec.person_id,
        })
    }
}

/// The catalogue key stored for a refused or failed-by-error order, as a static key.
fn stored_message(hint: Option<&str>) -> &'static str {
    const NO_MATCH: &str = "bankid.no_match";
    match hint {
        Some(NO_MATCH) => NO_MATCH,
        Some(h) => messages::KEYS
            .iter()
            .find(|k| **k == h)
            .copied()
            .unwrap_or("bankid.rfa22"),
        None => "bankid.rfa22",
    }
}

/// Why an order could not start. Errors are logged without BankID's details text, which
/// may echo what we sent.
fn refusal(e: &BankIdError) -> StartRefused {
    tracing::warn!("BankID auth: {e}");
    match e {
        BankIdError::Api {
            code: api::ErrorCode::AlreadyInProgress,
            ..
        } => StartRefused::AlreadyInProgress,
        // Unreachable or timed out: as BankID's own internal errors, "try again".
        BankIdError::Transport(_) => StartRefused::Unavailable("bankid.rfa5"),
        _ => StartRefused::Unavailable(messages::for_error(e.code())),
    }
}

fn login_metric(result: &'static str) {
    crate::metrics::login(crate::metrics::method::BANKID, result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_messages_are_catalogue_keys_or_the_unknown_error() {
        assert_eq!(stored_message(Some("bankid.no_match")), "bankid.no_match");
        assert_eq!(stored_message(Some("bankid.rfa4")), "bankid.rfa4");
        assert_eq!(stored_message(Some("<script>")), "bankid.rfa22");
        assert_eq!(stored_message(None), "bankid.rfa22");
    }
}
