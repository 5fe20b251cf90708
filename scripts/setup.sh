#!/usr/bin/env bash
# Installs what Portvakt needs to build, run and test on Debian 12 (bookworm), and nothing
# that is already there. Run it as root or with sudo; a machine that has everything is left
# untouched and needs no network.
#
#   build:  pkg-config libssl-dev build-essential curl ca-certificates, and for SAML's XML
#           signatures (samael: libxmlsec1 through bindgen) libxml2-dev libxmlsec1-dev clang
#           libclang-dev; the Rust version pinned in rust-toolchain.toml, by rustup,
#           with rustfmt and clippy
#   tests:  postgresql, chromium, chromium-driver (the browser tests in tests/it/browser.rs),
#           xmlsec1 (decrypts assertions in tests; pysaml2 uses it), python3-venv (the interop
#           venv: pysaml2, pybankid)
#
# Non-interactive: never reads standard input. Safe to run again and again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DEBIAN_FRONTEND=noninteractive
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
# rust-toolchain.toml pins the version the project is tested with (a new clippy must not fail
# CI without a code change); rustup reads it in this directory and we install exactly that.
# rustup installs into $CARGO_HOME (default ~/.cargo); sudo's PATH does not include it.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac
RUST_VERSION=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
[ -n "$RUST_VERSION" ] || { say "rust-toolchain.toml names no channel" >&2; exit 1; }

if ! command -v rustup >/dev/null 2>&1; then
    if command -v cargo >/dev/null 2>&1; then
        say "cargo without rustup: $(cargo --version); this project is tested with $RUST_VERSION" >&2
        say "install rustup (https://rustup.rs) so the pinned toolchain is used" >&2
        exit 1
    fi
    say "Rust: installing rustup with toolchain $RUST_VERSION"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "$RUST_VERSION" \
            -c rustfmt -c clippy
    hash -r
fi
# Present (a machine that has it needs no network), or installed with its components.
if ! rustup toolchain list 2>/dev/null | grep -q "^$RUST_VERSION-"; then
    say "Rust: installing toolchain $RUST_VERSION"
    rustup toolchain install "$RUST_VERSION" --profile minimal -c rustfmt -c clippy </dev/null
fi
have=$(rustup component list --toolchain "$RUST_VERSION" --installed 2>/dev/null || true)
for c in rustfmt clippy; do
    if ! grep -q "^$c" <<<"$have"; then
        say "adding the $c component to $RUST_VERSION"
        rustup component add --toolchain "$RUST_VERSION" "$c" </dev/null
    fi
done
[ "$(rustc --version | awk '{print $2}')" = "$RUST_VERSION" ] \
    || { say "rustc here is $(rustc --version), not the pinned $RUST_VERSION" >&2; exit 1; }
say "Rust: $(cargo --version) (pinned by rust-toolchain.toml)"
cargo fmt --version >/dev/null 2>&1 || { say "cargo fmt is not available" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { say "cargo clippy is not available" >&2; exit 1; }
say "ready"
