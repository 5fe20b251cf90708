#!/usr/bin/env bash
# The Python side of the interoperability tests, in one venv of libraries we did not write:
#   - SAML (tests/it/saml_interop.rs): pysaml2 as the SP, and requests. pysaml2 calls
#     Debian's xmlsec1 (installed by scripts/setup.sh) for signatures and encryption.
#   - BankID (tests/it/bankid_interop.rs): pybankid as the RP API v6.0 client against the
#     BankID stub (tests/interop/bankid_client.py); it brings httpx.
# A venv that is already right is left alone (no network).
#
#   venv:   ${PORTVAKT_VENV:-/var/tmp/portvakt-venv}  (outside the clone, so CI reruns reuse it)
#   use:    PORTVAKT_PYTHON=$PORTVAKT_VENV/bin/python  (the tests' default when unset)
#
# Non-interactive: never reads standard input. Safe to run again and again.
set -euo pipefail

VENV="${PORTVAKT_VENV:-/var/tmp/portvakt-venv}"
# Pinned so that a new release cannot change what "interoperable" means under us.
PIP_PACKAGES=(pysaml2==7.5.5 pybankid==1.5.0 requests)

say() { printf '[interop-setup] %s\n' "$*"; }

# Debian's xmlsec1 and python3-venv come from scripts/setup.sh (run before this by test.sh).
for p in xmlsec1 python3-venv; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' \
        || { say "Debian package $p is missing: run scripts/setup.sh first" >&2; exit 1; }
done

# Debian's python3, not a pyenv shim: python3-venv belongs to it, and it does not change
# when someone switches their pyenv version.
PY=/usr/bin/python3
[ -x "$PY" ] || { say "$PY is missing (Debian package python3)" >&2; exit 1; }

# The venv is usable when pysaml2 and pybankid import at the pinned versions; otherwise
# (missing, half made, made before pybankid was added, or another version) it is made again.
venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as m, requests, saml2, bankid, httpx
assert m.version("pysaml2") == "7.5.5"
assert m.version("pybankid") == "1.5.0"
EOF
}

if venv_ok; then
    say "venv: $VENV has pysaml2 7.5.5 and pybankid 1.5.0"
else
    say "creating venv $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" </dev/null
    "$VENV/bin/python" -m pip install -q "${PIP_PACKAGES[@]}" </dev/null
    venv_ok || { say "pysaml2 or pybankid does not import from $VENV" >&2; exit 1; }
fi

command -v xmlsec1 >/dev/null || { say "xmlsec1 is not on PATH" >&2; exit 1; }
say "ready: PORTVAKT_PYTHON=$VENV/bin/python"
