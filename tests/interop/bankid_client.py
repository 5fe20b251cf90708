#!/usr/bin/env python3
"""pybankid (a BankID RP API v6.0 client we did not write) against Portvakt's BankID stub,
to check that the stub answers like BankID does.

    bankid_client.py SCENARIO --rp-url URL --app-url URL --ca FILE --cert FILE --key FILE
                     [--personal-number PN] [--phone-number PN]

    --rp-url   the stub's RP API, e.g. https://127.0.0.1:PORT/rp/v6.0/
    --app-url  the stub app's JSON API, e.g. https://127.0.0.1:PORT/app/api/
    --ca       the test CA (PEM): the only certificate authority trusted
    --cert     the RP client certificate (PEM), --key its private key (PEM)

Scenarios: complete, sign, cancel, already_in_progress, invalid, phone, wrong_qr.

pybankid is pointed at the stub after it is built: its `api_url`, every `_*_endpoint` it
computed in `__init__`, and its `client`, an `httpx.Client` made the way pybankid makes it
but trusting only the test CA. pybankid itself is not changed. The stub app (the "phone") is
driven over its JSON API with httpx and the same client certificate.

Each step prints one JSON object on a line of stdout, with only what a test can compare
exactly (no tokens, secrets or free-text details, and no personal numbers but the test's
fictional ones). Anything unexpected (an exception pybankid did not map, a transport error)
ends the script with a traceback on stderr and a nonzero exit.
"""

import argparse
import base64
import binascii
import json
import re
import ssl
import sys
import time
import uuid

try:
    import bankid
    import httpx
    from bankid import exceptions
except ImportError as e:
    sys.exit(f"{e}: run scripts/interop-setup.sh (the venv with pybankid 1.5.0)")

# The endpoints pybankid 1.5.0 computes from api_url in __init__, by attribute name.
ENDPOINTS = {
    "_auth_endpoint": "auth",
    "_phone_auth_endpoint": "phone/auth",
    "_sign_endpoint": "sign",
    "_phone_sign_endpoint": "phone/sign",
    "_collect_endpoint": "collect",
    "_cancel_endpoint": "cancel",
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIMEOUT = 10


def emit(step, **fields):
    """One step's outcome as one JSON line."""
    print(json.dumps({"step": step, **fields}, ensure_ascii=False, sort_keys=True), flush=True)


def tls_context(ca):
    """A TLS context that trusts only the test CA (no system roots), as pybankid trusts
    only BankID's own root."""
    return ssl.create_default_context(cafile=ca)


def rp_client(args):
    """pybankid's synchronous client, built as for BankID's test server, then pointed at
    the stub."""
    client = bankid.BankIDClient(certificates=(args.cert, args.key), test_server=True)
    old_base = client.api_url
    found = {k for k in vars(client) if k.startswith("_") and k.endswith("_endpoint")}
    if found != set(ENDPOINTS):
        sys.exit(f"pybankid's endpoints changed: {sorted(found)}")
    client.api_url = args.rp_url
    for attr, path in ENDPOINTS.items():
        # pybankid built it from its own base the way it is rebuilt here from the stub's.
        if getattr(client, attr) != old_base + path:
            sys.exit(f"pybankid's {attr} is not {old_base + path}")
        setattr(client, attr, args.rp_url + path)
    client.client.close()
    # The same construction as pybankid's __init__, with the test CA instead of BankID's.
    client.client = httpx.Client(
        cert=(args.cert, args.key),
        headers={"Content-Type": "application/json"},
        verify=tls_context(args.ca),
        timeout=TIMEOUT,
    )
    return client


class App:
    """The stub app's JSON API: POST /app/api/{open,approve,cancel}."""

    def __init__(self, args):
        self.base = args.app_url
        self.http = httpx.Client(
            cert=(args.cert, args.key), verify=tls_context(args.ca), timeout=TIMEOUT
        )

    def post(self, step, action, body):
        r = self.http.post(self.base + action, json=body)
        answer = r.json()
        fields = {"http": r.status_code}
        if r.status_code == 200:
            fields["body"] = answer
        else:
            fields["errorCode"] = answer.get("errorCode")
        emit(step, **fields)
        return answer


def is_base64(s):
    """Non-empty standard base64."""
    if not isinstance(s, str) or not s:
        return False
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def signed_text(collected):
    """The decoded `completionData.signature` of a complete order."""
    return base64.b64decode(collected["completionData"]["signature"]).decode("utf-8")


def order_fields(order):
    """What an order answer looks like, without its values."""
    return {
        "keys": sorted(order),
        "uuids": all(isinstance(v, str) and UUID.match(v) for v in order.values()),
    }


def collect(client, step, order_ref):
    """pybankid's collect; the answer's shape, and for a complete order what the RP uses."""
    r = client.collect(order_ref)
    fields = {
        "status": r.get("status"),
        "hintCode": r.get("hintCode"),
        "orderRef": r.get("orderRef") == order_ref,
        "keys": sorted(r),
    }
    data = r.get("completionData")
    if data is not None:
        fields["completion"] = {
            "keys": sorted(data),
            "user": data.get("user"),
            "ipAddress": (data.get("device") or {}).get("ipAddress"),
            "uhi": is_base64((data.get("device") or {}).get("uhi")),
            "bankIdIssueDate": bool(DATE.match(data.get("bankIdIssueDate", ""))),
            "signature": is_base64(data.get("signature")),
            "ocspResponse": is_base64(data.get("ocspResponse")),
        }
    emit(step, **fields)
    return r


def expect_error(step, call):
    """Runs a pybankid call that should fail; prints which of pybankid's exceptions it
    raised and the error answer's code. Returns the call's answer if it did not fail."""
    try:
        answer = call()
    except exceptions.BankIDError as e:
        emit(
            step,
            error=type(e).__name__,
            errorCode=e.json.get("errorCode"),
            details=bool(e.json.get("details")),
            rfa=e.rfa,
        )
        return None
    emit(step, error=None)
    return answer


def qr_text(order, started, secret=None):
    """The QR code's text now, by pybankid's own function."""
    return bankid.qr.generate_qr_code_content(
        order["qrStartToken"], started, secret or order["qrStartSecret"]
    )


def scenario_complete(client, app, args):
    """QR login: authenticate, the phone scans and chooses a person, then approves."""
    text = "Logga in på Portvakts interoptest"
    order = client.authenticate(end_user_ip="127.0.0.1", user_visible_data=text)
    # The QR code counts from when the answer arrived.
    started = time.time()
    emit("authenticate", **order_fields(order))
    ref = order["orderRef"]
    collect(client, "collect_outstanding", ref)
    app.post(
        "app_open", "open", {"qrData": qr_text(order, started), "personalNumber": args.pn}
    )
    collect(client, "collect_user_sign", ref)
    app.post(
        "app_approve",
        "approve",
        {
            "qrData": qr_text(order, started),
            "personalNumber": args.pn,
            "givenName": "Erik",
            "surname": "Sandberg",
        },
    )
    r = collect(client, "collect_complete", ref)
    emit("signed_data", visible=text in signed_text(r))
    collect(client, "collect_again", ref)


def scenario_sign(client, app, args):
    """A sign order with formatted visible and non-visible data, opened on the same device
    (autoStartToken) and approved."""
    text = "Jag godkänner *villkoren* för Portvakt"
    order = client.sign(
        end_user_ip="127.0.0.1",
        user_visible_data=text,
        user_non_visible_data="avtal 42",
        user_visible_data_format="simpleMarkdownV1",
    )
    emit("sign", **order_fields(order))
    app.post(
        "app_approve",
        "approve",
        {"autoStartToken": order["autoStartToken"], "personalNumber": args.pn},
    )
    r = collect(client, "collect_complete", order["orderRef"])
    signed = signed_text(r)
    emit(
        "signed_data",
        visible=text in signed,
        nonVisible=base64.b64encode("avtal 42".encode()).decode() in signed,
    )


def scenario_cancel(client, app, args):
    """The RP cancels: the order is gone for collect and for a second cancel."""
    order = client.authenticate(end_user_ip="127.0.0.1")
    ref = order["orderRef"]
    # pybankid's cancel is True only when BankID answers exactly {}.
    emit("cancel", result=client.cancel(ref))
    expect_error("collect_after_cancel", lambda: client.collect(ref))
    expect_error("cancel_again", lambda: client.cancel(ref))
    expect_error("collect_unknown", lambda: client.collect(str(uuid.uuid4())))


def scenario_already_in_progress(client, app, args):
    """A second order for the same required personal number is refused, and the first one
    is cancelled."""
    requirement = {"personalNumber": args.pn}
    first = client.authenticate(end_user_ip="127.0.0.1", requirement=requirement)
    emit("authenticate_first", **order_fields(first))
    expect_error(
        "authenticate_second",
        lambda: client.authenticate(end_user_ip="127.0.0.1", requirement=requirement),
    )
    collect(client, "collect_first", first["orderRef"])
    # The person is free again: a new order is accepted.
    again = client.authenticate(end_user_ip="127.0.0.1", requirement=requirement)
    emit("authenticate_after", **order_fields(again))
    client.cancel(again["orderRef"])


def scenario_invalid(client, app, args):
    """Requests BankID refuses, and how pybankid maps the answers."""
    expect_error("bad_ip", lambda: client.authenticate(end_user_ip="not-an-ip"))
    expect_error(
        "bad_requirement",
        lambda: client.authenticate(
            end_user_ip="127.0.0.1", requirement={"personalNumber": "12345"}
        ),
    )
    # pybankid leaves out an empty text; sign without userVisibleData is refused.
    expect_error("sign_without_text", lambda: client.sign("127.0.0.1", user_visible_data=""))
    # An unknown method, through pybankid's own client and error mapping.
    r = client.client.post(args.rp_url + "no-such-method", json={})
    emit(
        "unknown_method",
        http=r.status_code,
        error=type(exceptions.get_json_error_class(r)).__name__,
    )


def scenario_phone(client, app, args):
    """Phone orders: only an orderRef, pending userCallConfirm until the person answers in
    the app, who identifies, or declines the call."""
    if not hasattr(client, "phone_authenticate"):
        emit("phone_authenticate", skipped="pybankid has no phone_authenticate")
        return
    order = client.phone_authenticate(personal_number=args.phone_pn, call_initiator="user")
    emit("phone_authenticate", **order_fields(order))
    ref = order["orderRef"]
    collect(client, "collect_call_confirm", ref)
    app.post("app_approve", "approve", {"personalNumber": args.phone_pn})
    collect(client, "collect_complete", ref)
    # The RP called the person to have something signed; the person declines the call.
    order = client.phone_sign(
        personal_number=args.phone_pn, call_initiator="RP", user_visible_data="Avtal 42"
    )
    emit("phone_sign", **order_fields(order))
    app.post("app_decline", "cancel", {"personalNumber": args.phone_pn})
    collect(client, "collect_declined", order["orderRef"])


def scenario_wrong_qr(client, app, args):
    """The app refuses QR codes that are not the order's: a wrong HMAC, a stale time. The
    order stays untouched, and the right code still opens it."""
    order = client.authenticate(end_user_ip="127.0.0.1")
    started = time.time()
    ref = order["orderRef"]
    wrong = qr_text(order, started, secret=str(uuid.uuid4()))
    app.post("app_open_wrong_secret", "open", {"qrData": wrong})
    # A photo of the code taken a minute ago.
    app.post("app_open_stale", "open", {"qrData": qr_text(order, started - 60)})
    collect(client, "collect_untouched", ref)
    app.post("app_open_right", "open", {"qrData": qr_text(order, started)})
    collect(client, "collect_started", ref)
    client.cancel(ref)


SCENARIOS = {
    "complete": scenario_complete,
    "sign": scenario_sign,
    "cancel": scenario_cancel,
    "already_in_progress": scenario_already_in_progress,
    "invalid": scenario_invalid,
    "phone": scenario_phone,
    "wrong_qr": scenario_wrong_qr,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--rp-url", required=True)
    p.add_argument("--app-url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    # Fictional test numbers (specs/bankid.md §11).
    p.add_argument("--personal-number", dest="pn", default="198003021238")
    p.add_argument("--phone-number", dest="phone_pn", default="191212121212")
    args = p.parse_args()
    for url in (args.rp_url, args.app_url):
        if not re.match(r"^https://(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?/.*/$", url):
            sys.exit(f"only loopback https URLs ending in /: {url}")
    SCENARIOS[args.scenario](rp_client(args), App(args), args)


if __name__ == "__main__":
    main()
