#!/usr/bin/env python3
"""A SAML2 identity provider built on pysaml2 (a library we did not write), as the upstream IdP
of Portvakt's SAML SP role: it signs genuine Responses that the Rust tests then feed to
Portvakt's validation, unchanged and wrapped in the classic XSW variants.

    saml_idp.py response --work DIR --entity-id URL --sp-metadata FILE --in-response-to ID
                         --name-id VALUE [--attr NAME=VALUE ...] [--sign-response] [--encrypt]
                         [--authn-class URI]

Makes the IdP's key and certificate in DIR on first use, writes the IdP metadata to
DIR/idp.xml and prints one JSON object: {"response": base64 SAMLResponse, "metadata": path}.
The SP's ACS comes from its metadata. Any failure exits nonzero with "FAIL: reason".
"""

import argparse
import base64
import datetime
import json
import logging
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

XMLSEC1 = "/usr/bin/xmlsec1"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def keys(work):
    key_path, cert_path = os.path.join(work, "idp.key"), os.path.join(work, "idp.crt")
    if os.path.exists(key_path):
        return key_path, cert_path
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pysaml2 upstream IdP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def server(args):
    key_path, cert_path = keys(args.work)
    base = args.entity_id.rstrip("/")
    conf = {
        "entityid": args.entity_id,
        "xmlsec_binary": XMLSEC1,
        "key_file": key_path,
        "cert_file": cert_path,
        "encryption_keypairs": [{"key_file": key_path, "cert_file": cert_path}],
        "metadata": {"local": [args.sp_metadata]},
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [(base + "/sso", BINDING_HTTP_REDIRECT)],
                    "single_logout_service": [(base + "/slo", BINDING_HTTP_REDIRECT)],
                },
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 15},
                        "attribute_restrictions": None,
                        "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
                    }
                },
            }
        },
    }
    cfg = IdPConfig().load(conf)
    metadata = os.path.join(args.work, "idp.xml")
    with open(metadata, "w") as f:
        f.write(str(entity_descriptor(cfg)))
    return Server(config=cfg), metadata


def main():
    logging.basicConfig(level=logging.ERROR)
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("response")
    r.add_argument("--work", required=True)
    r.add_argument("--entity-id", required=True)
    r.add_argument("--sp-metadata", required=True)
    r.add_argument("--in-response-to", required=True)
    r.add_argument("--name-id", required=True)
    r.add_argument("--attr", action="append", default=[])
    r.add_argument("--sign-response", action="store_true")
    r.add_argument("--encrypt", action="store_true")
    r.add_argument("--authn-class", default=PASSWORD)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    idp, metadata = server(args)
    sp_entity = next(iter(idp.metadata.keys()))
    acs = idp.metadata.assertion_consumer_service(sp_entity, BINDING_HTTP_POST)[0]["location"]
    identity = {}
    for a in args.attr:
        k, v = a.split("=", 1)
        identity.setdefault(k, []).append(v)
    resp = idp.create_authn_response(
        identity=identity,
        in_response_to=args.in_response_to,
        destination=acs,
        sp_entity_id=sp_entity,
        name_id=NameID(
            format=NAMEID_FORMAT_PERSISTENT,
            sp_name_qualifier=sp_entity,
            name_qualifier=args.entity_id,
            text=args.name_id,
        ),
        authn={"class_ref": args.authn_class},
        sign_assertion=True,
        sign_response=args.sign_response,
        encrypt_assertion=args.encrypt,
        encrypt_assertion_self_contained=True,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    print(
        json.dumps(
            {
                "response": base64.b64encode(str(resp).encode()).decode(),
                "metadata": metadata,
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line for the Rust side
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
