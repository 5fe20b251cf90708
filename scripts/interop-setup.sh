#!/usr/bin/env bash
# The Python side of the interoperability tests, in one venv of libraries we did not write:
#   - SAML (tests/it/saml_interop.rs): pysaml2 as the SP, and requests. pysaml2 calls
#     Debian's xmlsec1 (installed by scripts/setup.sh) for signatures and encryption.
#   - BankID (tests/it/bankid_interop.rs): pybankid as the RP API v6.0 client against the
#     BankID stub (tests/interop/bankid_client.py); it brings httpx.
#   - SCIM (the EGIL SCIM server under /scim/v2/): scim2-client, with scim2-models, as a
#     SCIM 2.0 client (tests/interop/scim_client.py). Since 0.13 it talks HTTP through
#     httpx2 (its httpx2 extra), pydantic's fork of httpx: a separate package and module,
#     installed beside pybankid's httpx.
#   - Federation (tests/it/upstream/interop.rs): panva's oidc-provider from npm as an upstream
#     OpenID provider (tests/interop/oidc_provider.mjs), run by node, in
#     ${PORTVAKT_NODE_DIR:-/var/tmp/portvakt-node}/node_modules (PORTVAKT_NODE_MODULES); axe-core
#     from npm beside it checks the admin UI's pages in Chromium (tests/it/webdriver.rs).
# A venv that is already right is left alone (no network).
#
#   venv:   ${PORTVAKT_VENV:-/var/tmp/portvakt-venv}  (outside the clone, so CI reruns reuse it)
#   use:    PORTVAKT_PYTHON=$PORTVAKT_VENV/bin/python  (the tests' default when unset)
#
# Non-interactive: never reads standard input. Safe to run again and again.
set -euo pipefail

VENV="${PORTVAKT_VENV:-/var/tmp/portvakt-venv}"
# Pinned so that a new release cannot change what "interoperable" means under us.
PIP_PACKAGES=(pysaml2==7.5.5 pybankid==1.5.0 "scim2-client[httpx2]==0.13.2" scim2-models==0.12.3 requests)

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

# The venv is usable when pysaml2, pybankid and scim2-client import at the pinned versions;
# otherwise (missing, half made, made before pybankid or scim2-client was added, or another
# version) it is made again.
venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as m, requests, saml2, bankid, httpx, httpx2, scim2_models
import scim2_client.engines.httpx2
assert m.version("pysaml2") == "7.5.5"
assert m.version("pybankid") == "1.5.0"
assert m.version("scim2-client") == "0.13.2"
assert m.version("scim2-models") == "0.12.3"
EOF
}

if venv_ok; then
    say "venv: $VENV has pysaml2 7.5.5, pybankid 1.5.0 and scim2-client 0.13.2"
else
    say "creating venv $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" </dev/null
    "$VENV/bin/python" -m pip install -q "${PIP_PACKAGES[@]}" </dev/null
    venv_ok || { say "pysaml2, pybankid or scim2-client does not import from $VENV" >&2; exit 1; }
fi

command -v xmlsec1 >/dev/null || { say "xmlsec1 is not on PATH" >&2; exit 1; }

# The npm side: oidc-provider, pinned, in its own folder outside the clone.
NODE_DIR="${PORTVAKT_NODE_DIR:-/var/tmp/portvakt-node}"
OIDC_PROVIDER=9.13.3
# axe-core: the accessibility checker the admin UI's browser tests run in Chromium.
AXE_CORE=4.14.1
for c in node npm; do
    command -v "$c" >/dev/null || { say "$c is missing (Debian package nodejs / npm)" >&2; exit 1; }
done
node_ok() {
    [ "$(node -p "require('$NODE_DIR/node_modules/oidc-provider/package.json').version" 2>/dev/null)" = "$OIDC_PROVIDER" ]
}
if node_ok; then
    say "node: $NODE_DIR has oidc-provider $OIDC_PROVIDER"
else
    say "installing oidc-provider $OIDC_PROVIDER into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"name":"portvakt-interop","private":true}' > "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent "oidc-provider@$OIDC_PROVIDER" </dev/null)
    node_ok || { say "oidc-provider does not load from $NODE_DIR" >&2; exit 1; }
fi
axe_ok() {
    [ "$(node -p "require('$NODE_DIR/node_modules/axe-core/package.json').version" 2>/dev/null)" = "$AXE_CORE" ]
}
if axe_ok; then
    say "node: $NODE_DIR has axe-core $AXE_CORE"
else
    say "installing axe-core $AXE_CORE into $NODE_DIR"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent "axe-core@$AXE_CORE" </dev/null)
    axe_ok || { say "axe-core does not load from $NODE_DIR" >&2; exit 1; }
fi
say "ready: PORTVAKT_PYTHON=$VENV/bin/python PORTVAKT_NODE_MODULES=$NODE_DIR/node_modules"
