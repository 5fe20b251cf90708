#!/usr/bin/env bash
# Installs what Portvakt needs to build, run and test on Debian 12 (bookworm), and nothing
# that is already there. Run it as root or with sudo; a machine that has everything is left
# untouched and needs no network.
#
#   build:  pkg-config libssl-dev build-essential curl ca-certificates, and for SAML's XML
#           signatures (samael: libxmlsec1 through bindgen) libxml2-dev libxmlsec1-dev clang
#           libclang-dev; Rust >= 1.94 via
#           rustup with rustfmt and clippy
#   tests:  postgresql, chromium, chromium-driver (the browser tests in tests/it/browser.rs),
#           xmlsec1 (decrypts assertions in tests; pysaml2 uses it), python3-venv (the interop
#           venv: pysaml2, pybankid)
#
# Non-interactive: never reads standard input. Safe to run again and again.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
MIN_RUST="1.94"
PACKAGES=(pkg-config libssl-dev build-essential curl ca-certificates libxml2-dev libxmlsec1-dev
          clang libclang-dev postgresql chromium chromium-driver xmlsec1 python3-venv)

say() { printf '[setup] %s\n' "$*"; }

# Root for apt-get: ourselves, or sudo when a non-root user runs this.
if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=()
elif command -v sudo >/dev/null 2>&1; then
    AS_ROOT=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
    AS_ROOT=(false)
fi

# ---------------------------------------------------------------- Debian packages
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
# Node.js runs the third-party OpenID provider of the federation interop tests. A machine
# that has node from elsewhere (NodeSource) keeps it; otherwise Debian's.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${AS_ROOT[0]:-}" = false ]; then
        say "missing packages: ${missing[*]}; run this script as root or with sudo" >&2
        exit 1
    fi
    say "installing: ${missing[*]}"
    "${AS_ROOT[@]}" apt-get update -q </dev/null
    "${AS_ROOT[@]}" apt-get install -y -q "${missing[@]}" </dev/null
else
    say "Debian packages: all present"
fi

# ---------------------------------------------------------------- Rust
# rustup installs into $CARGO_HOME (default ~/.cargo); sudo's PATH does not include it.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

# "cargo 1.95.0 (...)" -> 0 when >= MIN_RUST.
cargo_new_enough() {
    local v
    v=$(cargo --version 2>/dev/null | awk '{print $2}') || return 1
    [ -n "$v" ] || return 1
    [ "$(printf '%s\n%s\n' "$MIN_RUST" "${v%%-*}" | sort -V | head -n1)" = "$MIN_RUST" ]
}

if cargo_new_enough; then
    say "Rust: $(cargo --version)"
elif command -v rustup >/dev/null 2>&1; then
    say "Rust: $(cargo --version 2>/dev/null || echo 'no cargo') is older than $MIN_RUST; updating stable with rustup"
    rustup toolchain install stable --profile minimal -c rustfmt -c clippy </dev/null
    rustup default stable </dev/null
else
    say "Rust: no cargo >= $MIN_RUST; installing rustup (stable toolchain)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --no-modify-path --profile minimal --default-toolchain stable \
            -c rustfmt -c clippy
    hash -r
fi
cargo_new_enough || { say "cargo >= $MIN_RUST still not found on PATH ($PATH)" >&2; exit 1; }

if command -v rustup >/dev/null 2>&1; then
    have=$(rustup component list --installed 2>/dev/null || true)
    for c in rustfmt clippy; do
        if ! grep -q "^$c" <<<"$have"; then
            say "adding the $c component"
            rustup component add "$c" </dev/null
        fi
    done
fi
cargo fmt --version >/dev/null 2>&1 || { say "cargo fmt is not available" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { say "cargo clippy is not available" >&2; exit 1; }
say "ready"
