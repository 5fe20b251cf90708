#!/usr/bin/env bash
# The SAML interoperability test's Python side: a venv with pysaml2 (the SP we did not
# write) and requests, plus Debian's xmlsec1, which pysaml2 calls for signatures and
# encryption. Only what is missing is installed; a machine that has it all needs no network.
#
#   venv:   ${PORTVAKT_VENV:-/var/tmp/portvakt-venv}  (outside the clone, so CI reruns reuse it)
#   use:    PORTVAKT_PYTHON=$PORTVAKT_VENV/bin/python  (the tests' default when unset)
#
# Non-interactive: never reads standard input. Safe to run again and again.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
VENV="${PORTVAKT_VENV:-/var/tmp/portvakt-venv}"
# Pinned so that a new pysaml2 release cannot change what "interoperable" means under us.
PIP_PACKAGES=(pysaml2==7.5.5 requests)
PACKAGES=(xmlsec1 python3-venv)

say() { printf '[interop-setup] %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=()
elif command -v sudo >/dev/null 2>&1; then
    AS_ROOT=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
    AS_ROOT=(false)
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${AS_ROOT[0]:-}" = false ]; then
        say "missing packages: ${missing[*]}; run this script as root or with sudo" >&2
        exit 1
    fi
    say "installing: ${missing[*]}"
    "${AS_ROOT[@]}" apt-get update -q </dev/null
    "${AS_ROOT[@]}" apt-get install -y -q "${missing[@]}" </dev/null
fi

# Debian's python3, not a pyenv shim: python3-venv belongs to it, and it does not change
# when someone switches their pyenv version.
PY=/usr/bin/python3
[ -x "$PY" ] || { say "$PY is missing (Debian package python3)" >&2; exit 1; }

# The venv is usable when pysaml2 imports at the pinned version; otherwise (missing, half
# made, or another version) it is made again.
venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as m, requests, saml2
assert m.version("pysaml2") == "7.5.5"
EOF
}

if venv_ok; then
    say "venv: $VENV has pysaml2 7.5.5"
else
    say "creating venv $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" </dev/null
    "$VENV/bin/python" -m pip install -q "${PIP_PACKAGES[@]}" </dev/null
    venv_ok || { say "pysaml2 does not import from $VENV" >&2; exit 1; }
fi

command -v xmlsec1 >/dev/null || { say "xmlsec1 is not on PATH" >&2; exit 1; }
say "ready: PORTVAKT_PYTHON=$VENV/bin/python"
