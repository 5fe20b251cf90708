//! Interoperability with pybankid, a BankID RP API v6.0 client we did not write:
//! tests/interop/bankid_client.py drives `portvakt bankid-stub` (a subprocess, mutual TLS with
//! a test CA, as in `bankid_stub`) with pybankid and plays the phone through the stub app's
//! JSON API. It prints one JSON object per step; these tests compare each step exactly, so a
//! stub that answers other than BankID (a hint code, an HTTP status, an error body, a
//! field's name) fails here as it would fail in pybankid.
//!
//! The Python comes from `interop_python()` (scripts/interop-setup.sh makes it). When it is
//! missing the tests fail: they never skip.

use crate::bankid_stub::{PN, pki, spawn_stub};
use crate::helpers::interop_python;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};

/// The fictional personal number of the phone orders (specs/bankid.md §11).
const PHONE_PN: &str = "191212121212";

/// What the script printed for one scenario.
struct Steps {
    steps: Vec<Value>,
    /// Everything, shown when an assertion fails.
    output: String,
}

impl Steps {
    fn names(&self) -> Vec<&str> {
        self.steps
            .iter()
            .map(|s| s["step"].as_str().unwrap_or("?"))
            .collect()
    }

    /// The step's fields but its name.
    fn get(&self, name: &str) -> Value {
        let mut s = self
            .steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name}:\n{}", self.output))
            .clone();
        s.as_object_mut().unwrap().remove("step");
        s
    }

    #[track_caller]
    fn expect(&self, name: &str, expected: Value) {
        assert_eq!(self.get(name), expected, "step {name}:\n{}", self.output);
    }
}

/// Starts the stub, runs the scenario with pybankid against it and reads the steps. The
/// script must succeed, and the stub must not have logged a personal number.
fn run(scenario: &str) -> Steps {
    let pki = pki();
    let stub = spawn_stub(&pki, &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/bankid_client.py");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let out = Command::new(interop_python())
        .arg(script)
        .arg(scenario)
        .args(["--rp-url", &format!("{}/rp/v6.0/", stub.base)])
        .args(["--app-url", &format!("{}/app/api/", stub.base)])
        .args(["--ca", &path(&pki.ca_file)])
        .args(["--cert", &path(&pki.client_cert)])
        .args(["--key", &path(&pki.client_key)])
        .args(["--personal-number", PN, "--phone-number", PHONE_PN])
        .stdin(Stdio::null())
        .output()
        .expect("run bankid_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = stub.stderr.lock().unwrap().clone();
    let output = format!(
        "bankid_client.py {scenario}: {}\n--- stdout\n{}\n--- stderr\n{}\n--- stub\n{}",
        out.status,
        stdout.trim(),
        String::from_utf8_lossy(&out.stderr).trim(),
        log.trim()
    );
    assert!(out.status.success(), "{output}");
    assert!(
        !log.contains(PN) && !log.contains(PHONE_PN),
        "the stub logged a personal number:\n{output}"
    );
    let steps = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{output}"))
        })
        .collect();
    Steps { steps, output }
}

/// An answer to auth/sign (all four UUIDs) or to phone/* (the orderRef alone).
fn order(phone: bool) -> Value {
    let keys = if phone {
        json!(["orderRef"])
    } else {
        json!([
            "autoStartToken",
            "orderRef",
            "qrStartSecret",
            "qrStartToken"
        ])
    };
    json!({"keys": keys, "uuids": true})
}

/// A collect answer for a pending or failed order: orderRef, status and hintCode only.
fn collected(status: &str, hint: &str) -> Value {
    json!({"status": status, "hintCode": hint, "orderRef": true,
           "keys": ["hintCode", "orderRef", "status"]})
}

/// A collect answer for a complete order, as pybankid hands it to the RP.
fn complete(pn: &str, given: &str, surname: &str) -> Value {
    json!({
        "status": "complete", "hintCode": null, "orderRef": true,
        "keys": ["completionData", "orderRef", "status"],
        "completion": {
            "keys": ["bankIdIssueDate", "device", "ocspResponse", "signature", "stepUp", "user"],
            "user": {"personalNumber": pn, "givenName": given, "surname": surname,
                     "name": format!("{given} {surname}")},
            "ipAddress": "127.0.0.1",
            "uhi": true,
            "bankIdIssueDate": true,
            "signature": true,
            "ocspResponse": true,
        },
    })
}

/// The pybankid exception an error answer became; `rfa` is the message pybankid picks.
fn error(class: &str, code: &str, rfa: Option<u8>) -> Value {
    json!({"error": class, "errorCode": code, "details": true, "rfa": rfa})
}

/// The stub app's JSON answer.
fn app_ok(status: &str, hint: Option<&str>) -> Value {
    let mut body = json!({"status": status});
    if let Some(h) = hint {
        body["hintCode"] = json!(h);
    }
    json!({"http": 200, "body": body})
}

fn app_refused(code: &str) -> Value {
    json!({"http": 400, "errorCode": code})
}

#[test]
fn pybankid_identifies_by_qr_code_at_the_stub() {
    let s = run("complete");
    assert_eq!(
        s.names(),
        [
            "authenticate",
            "collect_outstanding",
            "app_open",
            "collect_user_sign",
            "app_approve",
            "collect_complete",
            "signed_data",
            "collect_again",
        ],
        "{}",
        s.output
    );
    s.expect("authenticate", order(false));
    s.expect(
        "collect_outstanding",
        collected("pending", "outstandingTransaction"),
    );
    // The QR text from pybankid's generate_qr_code_content opened the order.
    s.expect("app_open", app_ok("pending", Some("userSign")));
    s.expect("collect_user_sign", collected("pending", "userSign"));
    s.expect("app_approve", app_ok("complete", None));
    s.expect("collect_complete", complete(PN, "Erik", "Sandberg"));
    // userVisibleData as pybankid encodes it (base64 of UTF-8, with "å") is what was signed.
    s.expect("signed_data", json!({"visible": true}));
    s.expect("collect_again", complete(PN, "Erik", "Sandberg"));
}

#[test]
fn pybankid_signs_on_the_same_device_at_the_stub() {
    let s = run("sign");
    assert_eq!(
        s.names(),
        ["sign", "app_approve", "collect_complete", "signed_data"],
        "{}",
        s.output
    );
    s.expect("sign", order(false));
    s.expect("app_approve", app_ok("complete", None));
    s.expect("collect_complete", complete(PN, "Test", "Testsson"));
    s.expect("signed_data", json!({"visible": true, "nonVisible": true}));
}

#[test]
fn pybankid_cancels_and_the_order_is_gone() {
    let s = run("cancel");
    // pybankid's cancel is true only for the answer {}.
    s.expect("cancel", json!({"result": true}));
    // BankID answers 400 invalidParameters for an unknown or cancelled order.
    let invalid = error("InvalidParametersError", "invalidParameters", None);
    s.expect("collect_after_cancel", invalid.clone());
    s.expect("cancel_again", invalid.clone());
    s.expect("collect_unknown", invalid);
}

#[test]
fn pybankid_sees_already_in_progress_and_the_first_order_cancelled() {
    let s = run("already_in_progress");
    s.expect("authenticate_first", order(false));
    s.expect(
        "authenticate_second",
        error("AlreadyInProgressError", "alreadyInProgress", Some(4)),
    );
    s.expect("collect_first", collected("failed", "cancelled"));
    s.expect("authenticate_after", order(false));
}

#[test]
fn pybankid_maps_the_stubs_refusals() {
    let s = run("invalid");
    let invalid = error("InvalidParametersError", "invalidParameters", None);
    s.expect("bad_ip", invalid.clone());
    s.expect("bad_requirement", invalid.clone());
    s.expect("sign_without_text", invalid);
    s.expect(
        "unknown_method",
        json!({"http": 404, "error": "NotFoundError"}),
    );
}

#[test]
fn pybankid_phone_orders_wait_for_the_call_to_be_confirmed() {
    let s = run("phone");
    assert_eq!(
        s.names(),
        [
            "phone_authenticate",
            "collect_call_confirm",
            "app_approve",
            "collect_complete",
            "phone_sign",
            "app_decline",
            "collect_declined",
        ],
        "{}",
        s.output
    );
    s.expect("phone_authenticate", order(true));
    s.expect(
        "collect_call_confirm",
        collected("pending", "userCallConfirm"),
    );
    s.expect("app_approve", app_ok("complete", None));
    s.expect("collect_complete", complete(PHONE_PN, "Test", "Testsson"));
    s.expect("phone_sign", order(true));
    s.expect("app_decline", app_ok("failed", Some("userDeclinedCall")));
    s.expect("collect_declined", collected("failed", "userDeclinedCall"));
}

#[test]
fn pybankid_qr_codes_with_a_wrong_secret_or_time_are_refused() {
    let s = run("wrong_qr");
    s.expect("app_open_wrong_secret", app_refused("invalidParameters"));
    s.expect("app_open_stale", app_refused("invalidParameters"));
    s.expect(
        "collect_untouched",
        collected("pending", "outstandingTransaction"),
    );
    s.expect("app_open_right", app_ok("pending", Some("started")));
    s.expect("collect_started", collected("pending", "started"));
}
