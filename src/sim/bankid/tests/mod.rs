//! The state machine with a clock the tests move and the validation; the HTTP surface (RP
//! API errors, the app page) on a loopback port is in `http`.

use super::orders::{ApiError, Handle, Identity, Kind, Refusal};
use super::*;
use crate::bankid::api::{
    AuthRequest, CollectResponse, ErrorCode, HintCode, OrderResponse, PhoneAuthRequest,
    Requirement, Status,
};
use crate::bankid::qr;
use base64::{Engine, engine::general_purpose::STANDARD};
use std::sync::atomic::{AtomicU64, Ordering};

const PN: &str = "198003021238";
const OTHER_PN: &str = "191212121212";

/// A stub whose clock only moves when the test says so.
struct Fixture {
    stub: Stub,
    offset_ms: Arc<AtomicU64>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(StubConfig::default())
    }

    fn with(config: StubConfig) -> Self {
        let base = Instant::now();
        let offset_ms = Arc::new(AtomicU64::new(0));
        let o = offset_ms.clone();
        let clock: Clock = Arc::new(move || base + Duration::from_millis(o.load(Ordering::SeqCst)));
        Self {
            stub: Stub::with_clock(config, crate::clock::Clock::system(), clock),
            offset_ms,
        }
    }

    fn advance(&self, secs: u64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    fn elapsed_secs(&self) -> u64 {
        self.offset_ms.load(Ordering::SeqCst) / 1000
    }

    fn auth(&self, req: AuthRequest) -> Result<OrderResponse, ApiError> {
        let new = rp::order(req, Kind::Auth)?;
        self.stub.orders().create(new, self.stub.now())
    }

    fn auth_ok(&self) -> OrderResponse {
        self.auth(request(None)).unwrap()
    }

    fn phone_auth(&self, pn: &str) -> Result<OrderResponse, ApiError> {
        let req = PhoneAuthRequest {
            personal_number: pn.into(),
            call_initiator: "RP".into(),
            ..Default::default()
        };
        let new = rp::phone_order(req, None, Kind::Auth)?;
        self.stub.orders().create(new, self.stub.now())
    }

    fn collect(&self, order: &OrderResponse) -> Result<CollectResponse, ApiError> {
        self.stub
            .orders()
            .collect(&order.order_ref, self.stub.now())
    }

    fn status(&self, order: &OrderResponse) -> (Status, Option<HintCode>) {
        let c = self.collect(order).unwrap();
        (c.status, c.hint_code)
    }

    fn open(&self, order: &OrderResponse, pn: Option<&str>) -> Result<String, Refusal> {
        let id = pn.map(|p| Identity::new(p, "", "", "").unwrap());
        self.stub.orders().open(
            Handle::AutoStart(&order.auto_start_token),
            id,
            None,
            self.stub.now(),
        )
    }

    fn approve(&self, order: &OrderResponse, pn: &str) -> Result<Option<String>, Refusal> {
        let id = Identity::new(pn, "Erik", "Sandberg", "")?;
        self.stub.orders().approve(
            Handle::AutoStart(&order.auto_start_token),
            id,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            self.stub.now(),
        )
    }

    fn open_qr(&self, text: &str) -> Result<String, Refusal> {
        self.stub
            .orders()
            .open(Handle::Qr(text), None, None, self.stub.now())
    }
}

fn request(required: Option<&str>) -> AuthRequest {
    AuthRequest {
        end_user_ip: "192.0.2.7".into(),
        requirement: required.map(|pn| Requirement {
            personal_number: Some(pn.into()),
            ..Default::default()
        }),
        user_visible_data: Some(STANDARD.encode("Logga in på <Skolwebben> & co")),
        ..Default::default()
    }
}

fn pending(hint: HintCode) -> (Status, Option<HintCode>) {
    (Status::Pending, Some(hint))
}

fn failed(hint: HintCode) -> (Status, Option<HintCode>) {
    (Status::Failed, Some(hint))
}

#[test]
fn an_order_nobody_picks_up_fails_with_start_failed_at_the_start_timeout() {
    let f = Fixture::new();
    let o = f.auth_ok();
    assert!(!o.qr_start_secret.is_empty() && o.qr_start_secret != o.qr_start_token);
    for v in [&o.order_ref, &o.auto_start_token, &o.qr_start_token] {
        assert_eq!(uuid::Uuid::parse_str(v).unwrap().get_version_num(), 4);
    }
    assert_eq!(f.status(&o), pending(HintCode::OutstandingTransaction));
    f.advance(29);
    assert_eq!(f.status(&o), pending(HintCode::OutstandingTransaction));
    f.advance(1);
    assert_eq!(f.status(&o), failed(HintCode::StartFailed));
    // Failed orders stay collectable five minutes from the failure, then are forgotten.
    f.advance(299);
    assert_eq!(f.status(&o), failed(HintCode::StartFailed));
    f.advance(1);
    let e = f.collect(&o).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParameters);
    // The app cannot open what failed.
    assert_eq!(f.open(&o, None), Err(Refusal::UnknownOrder));
}

#[test]
fn a_picked_up_order_expires_at_the_order_lifetime() {
    let f = Fixture::new();
    let o = f.auth_ok();
    f.advance(10);
    f.open(&o, None).unwrap();
    assert_eq!(f.status(&o), pending(HintCode::Started));
    f.advance(100);
    f.open(&o, Some(PN)).unwrap();
    assert_eq!(f.status(&o), pending(HintCode::UserSign));
    f.advance(69);
    assert_eq!(f.status(&o), pending(HintCode::UserSign));
    f.advance(1);
    assert_eq!(f.status(&o), failed(HintCode::ExpiredTransaction));
    assert_eq!(f.approve(&o, PN), Err(Refusal::OrderFinished));
    f.advance(300);
    assert!(f.collect(&o).is_err());
}

#[test]
fn phone_orders_wait_for_the_call_and_only_expire() {
    let f = Fixture::new();
    let o = f.phone_auth(PN).unwrap();
    assert!(o.auto_start_token.is_empty() && o.qr_start_secret.is_empty());
    assert_eq!(f.status(&o), pending(HintCode::UserCallConfirm));
    f.advance(60);
    assert_eq!(f.status(&o), pending(HintCode::UserCallConfirm));
    // The app finds the phone order by the person's number; declining the call fails it.
    let now = f.stub.now();
    assert_eq!(
        f.stub.orders().app_cancel(Handle::Phone(PN), now),
        Ok(HintCode::UserDeclinedCall)
    );
    assert_eq!(f.status(&o), failed(HintCode::UserDeclinedCall));

    let o = f.phone_auth(PN).unwrap();
    let now = f.stub.now();
    f.stub
        .orders()
        .open(Handle::Phone(PN), None, None, now)
        .unwrap();
    assert_eq!(f.status(&o), pending(HintCode::UserSign));
    f.advance(180);
    assert_eq!(f.status(&o), failed(HintCode::ExpiredTransaction));
}

#[test]
fn a_complete_order_is_collectable_for_three_minutes() {
    let f = Fixture::new();
    let o = f.auth_ok();
    f.advance(3);
    let open = f.open(&o, None).unwrap();
    assert_eq!(f.approve(&o, PN), Ok(None));
    let c = f.collect(&o).unwrap();
    assert_eq!((c.status, c.hint_code), (Status::Complete, None));
    let data = c.completion_data.unwrap();
    assert_eq!(data.user.personal_number, PN);
    assert_eq!(
        (data.user.given_name.as_str(), data.user.surname.as_str()),
        ("Erik", "Sandberg")
    );
    assert_eq!(data.user.name, "Erik Sandberg");
    let device = data.device.unwrap();
    assert_eq!(device.ip_address, "192.0.2.7");
    assert_eq!(data.bank_id_issue_date.as_deref(), Some("2026-11-28"));
    assert_eq!(data.step_up.map(|s| s.mrtd), Some(false));
    assert!(data.risk.is_none());
    let xml = String::from_utf8(STANDARD.decode(&data.signature).unwrap()).unwrap();
    assert!(
        xml.contains("<usrVisibleData>Logga in på &lt;Skolwebben&gt; &amp; co</usrVisibleData>"),
        "{xml}"
    );
    assert!(xml.contains("Not a BankID signature"));
    assert!(!xml.contains(PN));
    assert!(!STANDARD.decode(&data.ocsp_response).unwrap().is_empty());
    // The same person on another order: the same device id.
    let o2 = f.auth_ok();
    f.approve(&o2, PN).unwrap();
    let c2 = f.collect(&o2).unwrap().completion_data.unwrap();
    assert_eq!(c2.device.unwrap().uhi, device.uhi);
    assert!(device.uhi.is_some());

    // The app's own handle no longer opens it; the RP can collect until retention ends.
    let now = f.stub.now();
    assert_eq!(
        f.stub.orders().app_cancel(Handle::App(&open), now),
        Err(Refusal::OrderFinished)
    );
    f.advance(179);
    assert_eq!(f.status(&o).0, Status::Complete);
    f.advance(1);
    assert_eq!(
        f.collect(&o).unwrap_err(),
        ApiError::invalid("No such order")
    );
}

#[test]
fn opening_an_order_for_a_person_cancels_their_other_picked_up_order() {
    let f = Fixture::new();
    let first = f.auth_ok();
    let second = f.auth_ok();
    let unrelated = f.auth_ok();
    f.open(&first, Some(PN)).unwrap();
    f.open(&unrelated, Some(OTHER_PN)).unwrap();
    f.advance(2);
    // Started without an identity: nobody to cancel for yet.
    f.open(&second, None).unwrap();
    assert_eq!(f.status(&first), pending(HintCode::UserSign));
    f.open(&second, Some(PN)).unwrap();
    assert_eq!(f.status(&first), failed(HintCode::Cancelled));
    assert_eq!(f.status(&second), pending(HintCode::UserSign));
    assert_eq!(f.status(&unrelated), pending(HintCode::UserSign));
    assert_eq!(f.approve(&first, PN), Err(Refusal::OrderFinished));
}

#[test]
fn a_second_order_for_a_required_personal_number_is_already_in_progress() {
    let f = Fixture::new();
    let first = f.auth(request(Some(PN))).unwrap();
    let e = f.auth(request(Some(PN))).unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyInProgress);
    assert_eq!(e.code.http_status(), 400);
    assert_eq!(f.status(&first), failed(HintCode::Cancelled));
    // The first failed, so a retry starts cleanly; so does another person's order.
    let retry = f.auth(request(Some(PN))).unwrap();
    f.auth(request(Some(OTHER_PN))).unwrap();
    // A phone order for the same person clashes with it too, and one picked up with the
    // number chosen in the app counts as well.
    assert_eq!(
        f.phone_auth(PN).unwrap_err().code,
        ErrorCode::AlreadyInProgress
    );
    assert_eq!(f.status(&retry), failed(HintCode::Cancelled));
    let free = f.auth_ok();
    f.open(&free, Some("200001012384")).unwrap();
    assert_eq!(
        f.auth(request(Some("200001012384"))).unwrap_err().code,
        ErrorCode::AlreadyInProgress
    );
    assert_eq!(f.status(&free), failed(HintCode::Cancelled));
}

#[test]
fn the_app_may_only_approve_with_the_required_personal_number() {
    let f = Fixture::new();
    let o = f.auth(request(Some(PN))).unwrap();
    assert_eq!(f.approve(&o, OTHER_PN), Err(Refusal::WrongPersonalNumber));
    assert_eq!(
        f.open(&o, Some(OTHER_PN)),
        Err(Refusal::WrongPersonalNumber)
    );
    // Unchanged: still waiting for an app.
    assert_eq!(f.status(&o), pending(HintCode::OutstandingTransaction));
    assert_eq!(f.approve(&o, "1980030212"), Err(Refusal::BadPersonalNumber));
    assert_eq!(f.approve(&o, PN), Ok(None));
    assert_eq!(f.status(&o).0, Status::Complete);
}

#[test]
fn the_app_checks_the_qr_code_like_the_real_one() {
    let f = Fixture::new();
    let o = f.auth_ok();
    let other = f.auth_ok();
    // Another order's secret: the auth code does not match.
    let forged = qr::qr_data(&o.qr_start_token, &other.qr_start_secret, 0);
    assert_eq!(f.open_qr(&forged), Err(Refusal::WrongAuthCode));
    let unknown = qr::qr_data(&uuid::Uuid::new_v4().to_string(), &o.qr_start_secret, 0);
    assert_eq!(f.open_qr(&unknown), Err(Refusal::UnknownOrder));
    assert_eq!(f.open_qr("bankid.not-a-code"), Err(Refusal::NotAQrCode));
    assert_eq!(f.open_qr("https://example.se/"), Err(Refusal::NotAQrCode));
    // From the future: more than two seconds ahead of the order's age.
    for t in [3, u64::MAX] {
        let ahead = qr::qr_data(&o.qr_start_token, &o.qr_start_secret, t);
        assert_eq!(f.open_qr(&ahead), Err(Refusal::StaleQrCode));
    }
    f.advance(8);
    // A photo of the first code: eight seconds behind.
    let old = qr::qr_data(&o.qr_start_token, &o.qr_start_secret, 0);
    assert_eq!(f.open_qr(&old), Err(Refusal::StaleQrCode));
    assert_eq!(f.status(&o), pending(HintCode::OutstandingTransaction));
    // Three seconds behind is a code on screen, scanned and sent.
    let fresh = qr::qr_data(&o.qr_start_token, &o.qr_start_secret, f.elapsed_secs() - 3);
    let app_ref = f.open_qr(&fresh).unwrap();
    assert_eq!(f.status(&o), pending(HintCode::Started));
    // QR-opened orders never send the browser anywhere.
    let now = f.stub.now();
    let id = Identity::new(PN, "", "", "").unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    assert_eq!(
        f.stub
            .orders()
            .approve(Handle::App(&app_ref), id, today, now),
        Ok(None)
    );
    let user = f.collect(&o).unwrap().completion_data.unwrap().user;
    assert_eq!(
        (user.given_name.as_str(), user.surname.as_str()),
        ("Test", "Testsson")
    );
}

#[test]
fn the_rp_cancels_an_order_away() {
    let f = Fixture::new();
    let o = f.auth_ok();
    f.stub.orders().cancel(&o.order_ref, f.stub.now()).unwrap();
    assert_eq!(
        f.collect(&o).unwrap_err().code,
        ErrorCode::InvalidParameters
    );
    let again = f.stub.orders().cancel(&o.order_ref, f.stub.now());
    assert_eq!(again.unwrap_err().code, ErrorCode::InvalidParameters);
    assert_eq!(f.open(&o, None), Err(Refusal::UnknownOrder));
}

#[test]
fn the_number_of_orders_is_bounded() {
    let f = Fixture::new();
    f.stub.orders().max_orders = 2;
    let first = f.auth_ok();
    f.auth_ok();
    let e = f.auth(request(None)).unwrap_err();
    assert_eq!(e.code, ErrorCode::TooManyRequests);
    assert_eq!(e.code.http_status(), 429);
    // Forgotten orders make room again.
    f.stub
        .orders()
        .cancel(&first.order_ref, f.stub.now())
        .unwrap();
    f.auth_ok();
    f.advance(30 + 299);
    let e = f.auth(request(None)).unwrap_err();
    assert_eq!(e.code, ErrorCode::TooManyRequests, "failed but collectable");
    assert_eq!(f.stub.order_count(), 2);
    f.advance(1);
    f.auth_ok();
    assert_eq!(f.stub.order_count(), 1);
}

#[test]
fn requests_are_validated_like_bankid() {
    let bad = |mutate: &dyn Fn(&mut AuthRequest), kind: Kind| {
        let mut r = request(None);
        mutate(&mut r);
        rp::order(r, kind).err().map(|e| e.code)
    };
    let invalid = Some(ErrorCode::InvalidParameters);
    assert_eq!(bad(&|_| {}, Kind::Auth), None);
    assert_eq!(bad(&|r| r.end_user_ip = "::1".into(), Kind::Auth), None);
    assert_eq!(
        bad(&|r| r.end_user_ip = "localhost".into(), Kind::Auth),
        invalid
    );
    assert_eq!(
        bad(&|r| r.end_user_ip = "300.1.1.1".into(), Kind::Auth),
        invalid
    );
    let set_visible =
        |s: &'static str| move |r: &mut AuthRequest| r.user_visible_data = Some(s.to_string());
    assert_eq!(bad(&set_visible("not base64!"), Kind::Auth), invalid);
    assert_eq!(bad(&set_visible("/w=="), Kind::Auth), invalid, "not UTF-8");
    assert_eq!(bad(&set_visible("aGk"), Kind::Auth), invalid, "unpadded");
    let long = STANDARD.encode("x".repeat(1_200));
    assert!(long.len() > 1_500);
    let l = long.clone();
    assert_eq!(
        bad(&move |r| r.user_visible_data = Some(l.clone()), Kind::Auth),
        invalid
    );
    assert_eq!(
        bad(
            &move |r| r.user_visible_data = Some(long.clone()),
            Kind::Sign
        ),
        None
    );
    assert_eq!(bad(&|r| r.user_visible_data = None, Kind::Auth), None);
    assert_eq!(bad(&|r| r.user_visible_data = None, Kind::Sign), invalid);
    assert_eq!(
        bad(
            &|r| r.user_non_visible_data = Some("***".into()),
            Kind::Sign
        ),
        invalid
    );
    assert_eq!(
        bad(
            &|r| r.user_visible_data_format = Some("html".into()),
            Kind::Auth
        ),
        invalid
    );
    assert_eq!(
        bad(
            &|r| r.return_url = Some("javascript:alert(1)".into()),
            Kind::Auth
        ),
        invalid
    );
    for pn in ["19800302123", "19800302123X", "1980030212381"] {
        assert_eq!(
            bad(
                &|r| r.requirement = Some(Requirement {
                    personal_number: Some(pn.into()),
                    ..Default::default()
                }),
                Kind::Auth
            ),
            invalid
        );
    }
    let phone = |pn: &str, who: &str| {
        let req = PhoneAuthRequest {
            personal_number: pn.into(),
            call_initiator: who.into(),
            ..Default::default()
        };
        rp::phone_order(req, None, Kind::Auth).err().map(|e| e.code)
    };
    assert_eq!(phone(PN, "user"), None);
    assert_eq!(phone(PN, "RP"), None);
    assert_eq!(phone(PN, "rp"), invalid);
    assert_eq!(phone("8003021238", "RP"), invalid);
    // Unknown fields are ignored; a missing endUserIp is not.
    let parsed: AuthRequest = rp::parse(br#"{"endUserIp":"10.0.0.1","newField":{"a":1}}"#).unwrap();
    assert_eq!(parsed.end_user_ip, "10.0.0.1");
    assert_eq!(
        rp::parse::<AuthRequest>(br#"{"userVisibleData":"aGk="}"#)
            .unwrap_err()
            .code,
        ErrorCode::InvalidParameters
    );
}

#[test]
fn identities_fill_in_names() {
    let id = Identity::new(PN, "", "", "Anna Maria Svensson").unwrap();
    assert_eq!(
        (
            id.given_name.as_str(),
            id.surname.as_str(),
            id.name.as_str()
        ),
        ("Anna", "Maria Svensson", "Anna Maria Svensson")
    );
    let id = Identity::new(PN, "", "", "").unwrap();
    assert_eq!(id.name, "Test Testsson");
    assert!(!format!("{id:?}").contains(PN));
    assert_eq!(
        Identity::new(PN, "a\u{7}", "", "").unwrap_err(),
        Refusal::BadName
    );
    assert_eq!(
        Identity::new(&format!("{PN}0"), "", "", "").unwrap_err(),
        Refusal::BadPersonalNumber
    );
}

#[test]
fn autostart_links_escape_their_parts() {
    assert_eq!(
        Stub::autostart_url(
            "https://idp.example.se/bankid-stub/",
            "a b",
            Some("https://x/?y=1&z")
        ),
        "https://idp.example.se/bankid-stub/app?autostarttoken=a+b&redirect=https%3A%2F%2Fx%2F%3Fy%3D1%26z"
    );
}

mod http;
