#!/usr/bin/env python3
"""A SAML2 service provider built on pysaml2 (a library we did not write) plus a scripted
browser, to check that Portvakt's SAML IdP interoperates with it.

    saml_sp.py metadata --work DIR --entity-id URL --acs URL --slo URL --out FILE [--encryption]
    saml_sp.py login    --work DIR --idp-metadata-url URL --username U --password P
                        [--expect-attr NAME=VALUE ...] [--encrypted] [--binding redirect|post]
                        [--ca FILE] [--want-response-signed] [--tamper] [--then-logout]

`metadata` makes the SP's keys and metadata; `login` runs a whole SP-initiated login through
the IdP's real pages and prints what pysaml2 accepted as one JSON object on stdout. Any
failure exits nonzero with one line "FAIL: reason" on stderr.

The "browser" is a requests.Session that keeps cookies and never follows redirects by
itself, so that every hop is seen and checked. The SP's ACS and SLO URLs are never
fetched: the browser stops when it is sent there and hands the message to pysaml2.
"""

import argparse
import base64
import datetime
import html.parser
import json
import logging
import os
import re
import secrets
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.samlp import STATUS_SUCCESS
from saml2.sigver import verify_redirect_signature
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

XMLSEC1 = "/usr/bin/xmlsec1"
# Everything the IdP signs must use these; pysaml2 itself accepts older algorithms too.
ALLOWED_SIG = {SIG_RSA_SHA256}
ALLOWED_DIGEST = {DIGEST_SHA256}
MAX_HOPS = 15

# Prefixes are whatever the IdP chose, so every pattern allows any (or none).
# The Response's own signature: by the schema it directly follows the Response's Issuer.
RESPONSE_SIGNATURE = re.compile(
    r"<(?:\w+:)?Response\b[^>]*>\s*<(?:\w+:)?Issuer\b[^>]*>[^<]*</(?:\w+:)?Issuer>"
    r"\s*<(?:\w+:)?Signature\b"
)
# The ciphertext of EncryptedData itself, not that of its EncryptedKey.
DATA_CIPHER_VALUE = re.compile(
    r"<(?:\w+:)?CipherValue>([^<]+)</(?:\w+:)?CipherValue>\s*</(?:\w+:)?CipherData>"
    r"\s*</(?:\w+:)?EncryptedData>"
)
NAME_ID = re.compile(r"<(?:\w+:)?NameID\b[^>]*>([^<]+)<")


class Fail(Exception):
    """A check failed; the message is the one line printed."""


# ------------------------------------------------------------------------ work directory


def work_file(work, name):
    return os.path.join(work, name)


def load_state(work):
    try:
        with open(work_file(work, "sp.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        raise Fail(f"no SP in {work}: run the metadata subcommand first")


def make_key_pair(work, stem, common_name):
    """A fresh RSA-2048 key and a self-signed certificate, as an SP would have."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = work_file(work, f"{stem}.key"), work_file(work, f"{stem}.crt")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def sp_config(work, state, idp_metadata=None, want_response_signed=False):
    sp = {
        "endpoints": {
            "assertion_consumer_service": [(state["acs"], BINDING_HTTP_POST)],
            "single_logout_service": [(state["slo"], BINDING_HTTP_REDIRECT)],
        },
        "authn_requests_signed": True,
        "logout_requests_signed": True,
        "want_assertions_signed": True,
        "want_response_signed": want_response_signed,
        "allow_unsolicited": False,
        "name_id_format": [state["nameid_format"]],
        "name_id_policy_format": state["nameid_format"],
    }
    conf = {
        "entityid": state["entity_id"],
        "xmlsec_binary": XMLSEC1,
        "key_file": work_file(work, "sp.key"),
        "cert_file": work_file(work, "sp.crt"),
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "accepted_time_diff": 60,
        "allow_unknown_attributes": True,
        "metadata": {"local": [idp_metadata]} if idp_metadata else {},
        "service": {"sp": sp},
    }
    if state["encryption"]:
        # A key of its own, so that a mix-up of signing and encryption keys shows.
        conf["encryption_keypairs"] = [
            {"key_file": work_file(work, "enc.key"), "cert_file": work_file(work, "enc.crt")}
        ]
    c = SPConfig()
    c.load(conf)
    return c


# ------------------------------------------------------------------------ metadata


def cmd_metadata(args):
    os.makedirs(args.work, exist_ok=True)
    host = urlparse(args.entity_id).hostname or "sp.example"
    state = {
        "entity_id": args.entity_id,
        "acs": args.acs,
        "slo": args.slo,
        "encryption": args.encryption,
        "nameid_format": args.nameid_format,
    }
    make_key_pair(args.work, "sp", host)
    if args.encryption:
        make_key_pair(args.work, "enc", host)
    with open(work_file(args.work, "sp.json"), "w") as f:
        json.dump(state, f, indent=2)
    ed = entity_descriptor(sp_config(args.work, state))
    # pysaml2 advertises every algorithm xmlsec1 knows (MD5 and SHA-1 too) in
    # alg:DigestMethod/alg:SigningMethod; an IdP may choose from these, so offer SHA-256 only.
    exts = ed.extensions.extension_elements if ed.extensions else []
    exts[:] = [e for e in exts if e.attributes.get("Algorithm") in ALLOWED_SIG | ALLOWED_DIGEST]
    xml = str(ed)
    # Check what we promise the IdP, so a pysaml2 change cannot quietly alter the test.
    for needle in ('AuthnRequestsSigned="true"', 'WantAssertionsSigned="true"', 'use="signing"'):
        if needle not in xml:
            raise Fail(f"generated SP metadata lacks {needle}")
    if args.encryption != ('use="encryption"' in xml):
        raise Fail("generated SP metadata has the wrong encryption KeyDescriptor")
    with open(args.out, "w") as f:
        f.write(xml)
    print(json.dumps({"entity_id": args.entity_id, "metadata": args.out}))


# ------------------------------------------------------------------------ browser


class Forms(html.parser.HTMLParser):
    """The forms of a page: [{"method", "action", "inputs": {name: value}}]."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"method": (a.get("method") or "get").lower(), "action": a.get("action"), "inputs": {}}
            )
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


class Browser:
    def __init__(self, ca=None):
        self.http = requests.Session()
        # Passed with each request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self.verify = ca or True
        self.trail = []  # every URL visited, for error messages

    def request(self, method, url, **kw):
        self.trail.append(f"{method} {url.split('?')[0]}")
        try:
            return self.http.request(
                method, url, allow_redirects=False, timeout=30, verify=self.verify, **kw
            )
        except requests.RequestException as e:
            raise Fail(f"{method} {url.split('?')[0]}: {e}")

    def follow(self, resp, stop_at=()):
        """Follows redirects by hand. Returns (final response, None), or (None, location)
        when sent to a URL starting with one of `stop_at` (an SP endpoint, never fetched)."""
        for _ in range(MAX_HOPS):
            if resp.status_code not in (301, 302, 303, 307, 308):
                return resp, None
            loc = resp.headers.get("Location")
            if not loc:
                raise Fail(f"{resp.status_code} from {resp.url} without Location")
            loc = urljoin(resp.url, loc)
            if any(loc.startswith(s) for s in stop_at):
                return None, loc
            if resp.status_code in (307, 308) and resp.request.method == "POST":
                raise Fail(f"{resp.status_code} would re-POST to {loc}; the IdP should answer 303")
            resp = self.request("GET", loc)
        raise Fail(f"more than {MAX_HOPS} redirects: {' -> '.join(self.trail[-MAX_HOPS:])}")


def page_summary(resp):
    text = re.sub(r"\s+", " ", resp.text)[:300]
    return f"{resp.status_code} at {resp.url.split('?')[0]}: {text}"


# ------------------------------------------------------------------------ login


def fetch_idp_metadata(browser, args):
    r = browser.request("GET", args.idp_metadata_url)
    if r.status_code != 200:
        raise Fail(f"IdP metadata: {page_summary(r)}")
    path = work_file(args.work, "idp-metadata.xml")
    with open(path, "wb") as f:
        f.write(r.content)
    return path


def check_algorithms(xml, what):
    """Every XML signature in `xml` uses RSA-SHA256 with SHA-256 digests. Only SignedInfo is
    looked at: a DigestMethod elsewhere (the OAEP digest of an EncryptedKey) is no signature's."""
    signed_infos = re.findall(r"<(?:\w+:)?SignedInfo\b.*?</(?:\w+:)?SignedInfo>", xml, re.S)
    for si in signed_infos:
        for alg in re.findall(r'SignatureMethod Algorithm="([^"]+)"', si):
            if alg not in ALLOWED_SIG:
                raise Fail(f"{what} signed with {alg}")
        for alg in re.findall(r'DigestMethod Algorithm="([^"]+)"', si):
            if alg not in ALLOWED_DIGEST:
                raise Fail(f"{what} uses digest {alg}")
    return len(signed_infos)


def encryption_algorithms(xml):
    """The algorithms of EncryptedData and EncryptedKey, in document order."""
    return re.findall(r'EncryptionMethod Algorithm="([^"]+)"', xml)


def send_authn_request(client, browser, idp, binding, relay_state):
    """Sends a signed AuthnRequest through the browser; returns (request id, response)."""
    saml_binding = BINDING_HTTP_REDIRECT if binding == "redirect" else BINDING_HTTP_POST
    try:
        sso = client._sso_location(idp, saml_binding)
    except Exception:
        raise Fail(f"IdP metadata has no SingleSignOnService for {saml_binding}")
    # Redirect: the signature goes into the query (SigAlg, Signature); POST: into the XML.
    req_id, req = client.create_authn_request(
        destination=sso,
        binding=BINDING_HTTP_POST,  # how we want the Response: to our HTTP-POST ACS
        sign=binding == "post",
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    if binding == "redirect":
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT, str(req), sso, relay_state, sign=True, sigalg=SIG_RSA_SHA256
        )
        url = dict(info["headers"])["Location"]
        return req_id, browser.request("GET", url)
    form = {"SAMLRequest": base64.b64encode(str(req).encode()).decode(), "RelayState": relay_state}
    return req_id, browser.request("POST", sso, data=form)


def log_in_through_pages(browser, resp, args, state):
    """From the IdP's first answer to the auto-submit form: the login page, the password
    post, then the page whose form posts the SAMLResponse to our ACS. Returns its inputs."""
    resp, _ = browser.follow(resp)
    if "/login" not in urlparse(resp.url).path or resp.status_code != 200:
        raise Fail(f"expected the login page, got {page_summary(resp)}")
    forms = [f for f in Forms(resp.text).forms if "tx" in f["inputs"] and "csrf" in f["inputs"]]
    if not forms:
        raise Fail("login page has no form with hidden tx and csrf")
    login = forms[0]
    fields = dict(login["inputs"])
    fields.update(username=args.username, password=args.password)
    action = urljoin(resp.url, login["action"] or resp.url)
    resp, stopped = browser.follow(browser.request("POST", action, data=fields), stop_at=[state["acs"]])
    if stopped:
        raise Fail(f"the IdP redirected to the ACS ({stopped}); SAML responses must be POSTed")
    if resp.status_code != 200:
        raise Fail(f"after the password: {page_summary(resp)}")
    posts = [f for f in Forms(resp.text).forms if "SAMLResponse" in f["inputs"]]
    if not posts:
        raise Fail(f"no form with a SAMLResponse after the password: {page_summary(resp)}")
    form = posts[0]
    if form["method"] != "post":
        raise Fail(f"the SAMLResponse form uses method {form['method']}")
    if form["action"] != state["acs"]:
        raise Fail(f"the SAMLResponse form posts to {form['action']}, not our ACS {state['acs']}")
    return form["inputs"]


def decode_post(saml_response):
    try:
        return base64.b64decode(saml_response, validate=True).decode("utf-8")
    except Exception as e:
        raise Fail(f"SAMLResponse is not base64 of UTF-8 XML: {e}")


def tampered(xml):
    """`xml` with one character changed inside the signed (or encrypted) assertion."""
    m = DATA_CIPHER_VALUE.search(xml)
    if m is None:  # not encrypted: change the subject's NameID, which the signature covers
        m = NAME_ID.search(xml)
    if m is None:
        raise Fail("found neither a NameID nor encrypted data to tamper with")
    i = m.start(1) + len(m.group(1)) // 2  # the middle of the value, never padding
    c = xml[i]
    new = "A" if c != "A" else "B"
    return xml[:i] + new + xml[i + 1:], "encrypted data" if "CipherValue" in m.group(0) else "NameID"


def parse_response(client, saml_response, req_id):
    """pysaml2's verdict on a SAMLResponse: the AuthnResponse, or Fail with its reason."""
    try:
        resp = client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding={req_id: "/"}
        )
    except Exception as e:
        raise Fail(f"pysaml2 rejected the response: {type(e).__name__}: {e}".replace("\n", " "))
    if resp is None:
        raise Fail("pysaml2 rejected the response (no valid SAML Response)")
    # pysaml2 swallows a failed decryption and returns a Response without assertions, which
    # an SP built on it would then refuse: count that as a rejection too.
    if resp.assertion is None or resp.name_id is None:
        raise Fail("pysaml2 found no usable assertion in the response (could not decrypt it?)")
    return resp


def attributes_of(resp):
    return {k: list(v) for k, v in sorted(resp.ava.items())}


def check_expected(attrs, expected):
    for item in expected:
        name, _, value = item.partition("=")
        got = attrs.get(name)
        if got is None:
            raise Fail(f"attribute {name} missing; got {sorted(attrs)}")
        if value not in got:
            raise Fail(f"attribute {name} is {got}, expected {value!r}")


def cmd_login(args):
    state = load_state(args.work)
    browser = Browser(args.ca)
    md_path = fetch_idp_metadata(browser, args)
    client = Saml2Client(config=sp_config(args.work, state, md_path, args.want_response_signed))
    idps = list(client.metadata.identity_providers())
    if len(idps) != 1:
        raise Fail(f"IdP metadata names {len(idps)} IdPs, expected 1")
    idp = idps[0]

    relay_state = "rs-" + secrets.token_urlsafe(12)
    req_id, first = send_authn_request(client, browser, idp, args.binding, relay_state)
    inputs = log_in_through_pages(browser, first, args, state)
    if inputs.get("RelayState") != relay_state:
        raise Fail(f"RelayState came back as {inputs.get('RelayState')!r}, sent {relay_state!r}")
    saml_response = inputs["SAMLResponse"]
    xml = decode_post(saml_response)
    # Kept for whoever has to find out why a run failed.
    with open(work_file(args.work, "last-response.xml"), "w") as f:
        f.write(xml)
    encrypted = "EncryptedAssertion" in xml
    if args.encrypted and not encrypted:
        raise Fail("the assertion was not encrypted (no EncryptedAssertion)")
    if not state["encryption"] and encrypted:
        raise Fail("the assertion was encrypted although our metadata has no encryption key")
    check_algorithms(xml, "the Response")

    if args.tamper:
        bad_xml, where = tampered(xml)
        bad = base64.b64encode(bad_xml.encode()).decode()
        try:
            parse_response(client, bad, req_id)
        except Fail as e:
            reason = str(e)
        else:
            raise Fail(f"pysaml2 ACCEPTED a response with a changed {where}")
        # The untouched response must still pass, so the rejection came from the change.
        parse_response(client, saml_response, req_id)
        print(json.dumps({"rejected": True, "tampered": where, "reason": reason}))
        return

    resp = parse_response(client, saml_response, req_id)
    if encrypted:
        # Only now is the decrypted assertion available: check its signature algorithms.
        check_algorithms(str(resp.assertion), "the decrypted Assertion")
    info = resp.session_info()
    attrs = attributes_of(resp)
    check_expected(attrs, args.expect_attr or [])
    out = {
        "name_id": resp.name_id.text,
        "name_id_format": resp.name_id.format,
        "attributes": attrs,
        "session_index": info["session_index"],
        "issuer": resp.issuer(),
        "encrypted": encrypted,
        "encryption_algorithms": encryption_algorithms(xml),
        "response_signed": bool(RESPONSE_SIGNATURE.search(xml)),
        "relay_state": inputs.get("RelayState"),
    }
    if args.then_logout:
        # pysaml2 keeps its session cache only for plain assertions; make sure it has it.
        client.users.add_information_about_person(info)
        out["logout"] = logout(client, browser, idp, resp.name_id, state)
    print(json.dumps(out))


# ------------------------------------------------------------------------ logout


def logout(client, browser, idp, name_id, state):
    """SP-initiated SLO over HTTP-Redirect, then a check that the IdP session is gone."""
    try:
        sent = client.global_logout(name_id, sign=True, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    except Exception as e:
        raise Fail(f"pysaml2 could not build a LogoutRequest: {type(e).__name__}: {e}")
    if idp not in sent:
        raise Fail(f"pysaml2 sent no LogoutRequest to {idp}: {sent}")
    binding, info = sent[idp]
    if binding != BINDING_HTTP_REDIRECT:
        raise Fail(f"pysaml2 chose {binding} for SLO, expected HTTP-Redirect")
    url = dict(info["headers"])["Location"]
    sent_relay = parse_qs(urlparse(url).query).get("RelayState", [None])[0]
    req_id = next(iter(client.state))  # the only outstanding request: our LogoutRequest

    final, back = browser.follow(browser.request("GET", url), stop_at=[state["slo"]])
    if back is None:
        raise Fail(f"SLO did not come back to our SLO endpoint: {page_summary(final)}")
    query = {k: v[0] for k, v in parse_qs(urlparse(back).query).items()}
    if "SAMLResponse" not in query:
        raise Fail(f"back at our SLO endpoint without a SAMLResponse: {back}")
    if "Signature" not in query or "SigAlg" not in query:
        raise Fail("the LogoutResponse over HTTP-Redirect is not signed (no Signature/SigAlg)")
    if query["SigAlg"] not in ALLOWED_SIG:
        raise Fail(f"LogoutResponse signed with {query['SigAlg']}")
    certs = client.metadata.certs(idp, "idpsso", "signing")
    if not any(verify_redirect_signature(query, client.sec.sec_backend, c) for _, c in certs):
        raise Fail("the LogoutResponse's redirect signature does not verify with the IdP's key")
    if query.get("RelayState") != sent_relay:
        raise Fail(f"SLO RelayState came back as {query.get('RelayState')!r}, sent {sent_relay!r}")

    try:
        resp = client.parse_logout_request_response(query["SAMLResponse"], BINDING_HTTP_REDIRECT)
    except Exception as e:
        raise Fail(f"pysaml2 rejected the LogoutResponse: {type(e).__name__}: {e}".replace("\n", " "))
    if resp is None:
        raise Fail("pysaml2 rejected the LogoutResponse")
    status = resp.response.status.status_code.value
    if status != STATUS_SUCCESS:
        raise Fail(f"LogoutResponse status {status}")
    if resp.in_response_to != req_id:
        raise Fail(f"LogoutResponse InResponseTo {resp.in_response_to}, our request was {req_id}")
    client.handle_logout_response(resp)
    if client.is_logged_in(name_id):
        raise Fail("pysaml2 still holds the session after the LogoutResponse")

    # The IdP session must be gone: a new AuthnRequest leads to the login page again.
    _, again = send_authn_request(client, browser, idp, "redirect", "after-logout")
    again, stopped = browser.follow(again, stop_at=[state["acs"]])
    if stopped or again.status_code != 200 or "/login" not in urlparse(again.url).path:
        raise Fail("after SLO a new AuthnRequest did not lead to the login page: the IdP session lives on")
    if any("SAMLResponse" in f["inputs"] for f in Forms(again.text).forms):
        raise Fail("after SLO the IdP answered a new AuthnRequest with a SAMLResponse")
    return {"status": "success", "in_response_to": resp.in_response_to, "session_gone": True}


# ------------------------------------------------------------------------ main


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    m = sub.add_parser("metadata", help="make SP keys and metadata")
    m.add_argument("--work", required=True)
    m.add_argument("--entity-id", required=True)
    m.add_argument("--acs", required=True)
    m.add_argument("--slo", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--encryption", action="store_true", help="publish an encryption key")
    m.add_argument("--nameid-format", default=NAMEID_FORMAT_PERSISTENT)

    lg = sub.add_parser("login", help="SP-initiated login through the IdP's pages")
    lg.add_argument("--work", required=True)
    lg.add_argument("--idp-metadata-url", required=True)
    lg.add_argument("--username", required=True)
    lg.add_argument("--password", required=True)
    lg.add_argument("--expect-attr", action="append", metavar="NAME=VALUE")
    lg.add_argument("--encrypted", action="store_true", help="the assertion must be encrypted")
    lg.add_argument("--binding", choices=["redirect", "post"], default="redirect")
    lg.add_argument("--ca", help="PEM file to trust for the IdP's TLS")
    lg.add_argument("--want-response-signed", action="store_true")
    lg.add_argument("--tamper", action="store_true", help="succeed only if a changed response is rejected")
    lg.add_argument("--then-logout", action="store_true", help="SP-initiated SLO after the login")
    p.add_argument("-v", "--verbose", action="store_true", help="pysaml2 debug log on stderr")

    args = p.parse_args(argv)
    # pysaml2 logs errors it also raises; keep stderr to our one line unless asked.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL, stream=sys.stderr)
    try:
        {"metadata": cmd_metadata, "login": cmd_login}[args.cmd](args)
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug here or in pysaml2: still one line, with its type
        print(f"FAIL: unexpected {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
