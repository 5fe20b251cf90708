#!/usr/bin/env bash
# README command 2, and what CI runs (.ci/run): installs what is missing (the venv with
# pysaml2 and pybankid for the interop tests too: scripts/interop-setup.sh), makes sure
# PostgreSQL is up, then runs every check and stops at the first failure:
#
#   1. cargo fmt --check
#   2. cargo clippy --all-targets -- -D warnings
#   3. cargo test on SQLite      (PORTVAKT_TEST_DB=sqlite)
#   4. cargo test on PostgreSQL  (PORTVAKT_TEST_DB=postgres, PORTVAKT_TEST_PG_URL)
#   5. the logs both passes' test servers wrote hold no civic number and no password
#
# Run it as root or with sudo on a fresh Debian 12 machine: `sudo scripts/test.sh`.
# Build output goes to a persistent directory outside the clone so reruns are incremental:
# ${CARGO_TARGET_DIR:-/var/tmp/portvakt-target}.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==== %s ====\n' "$*"; }
fail() { printf '\n[test] %s\n' "$*" >&2; exit 1; }

step "setup: install what is missing"
bash scripts/setup.sh
# pysaml2 and pybankid in a venv, for the interoperability tests (tests/it/saml_interop.rs,
# tests/it/bankid_interop.rs).
bash scripts/interop-setup.sh
export PORTVAKT_PYTHON="${PORTVAKT_PYTHON:-${PORTVAKT_VENV:-/var/tmp/portvakt-venv}/bin/python}"
export PORTVAKT_NODE_MODULES="${PORTVAKT_NODE_MODULES:-${PORTVAKT_NODE_DIR:-/var/tmp/portvakt-node}/node_modules}"

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/portvakt-target}"
mkdir -p "$CARGO_TARGET_DIR"
echo "[test] CARGO_TARGET_DIR=$CARGO_TARGET_DIR"

# ---------------------------------------------------------------- PostgreSQL
PG_HOST=127.0.0.1
PG_PORT=5432
PG_URL_DEFAULT="postgres://postgres:postgres@$PG_HOST:$PG_PORT/test"
PG_URL="${PORTVAKT_TEST_PG_URL:-$PG_URL_DEFAULT}"

pg_sql() { # runs SQL over TCP as postgres/postgres; prints the result, fails on error
    PGPASSWORD=postgres PGCONNECT_TIMEOUT=5 psql -X -h "$PG_HOST" -p "$PG_PORT" -U postgres \
        -d "${2:-postgres}" -v ON_ERROR_STOP=1 -Atqc "$1" </dev/null
}

step "PostgreSQL on $PG_HOST:$PG_PORT"
if [ "$PG_URL" != "$PG_URL_DEFAULT" ]; then
    echo "[test] PORTVAKT_TEST_PG_URL is set by the caller; using that server as it is"
else
    if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
        [ -d /etc/postgresql ] || fail "PostgreSQL is not installed (/etc/postgresql is missing)"
        version=$(ls /etc/postgresql | sort -V | tail -n1)
        echo "[test] PostgreSQL is not running; starting cluster $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start \
            || fail "cannot start PostgreSQL $version/main (run this script as root)"
        for _ in $(seq 1 60); do
            pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break
            sleep 1
        done
        pg_isready -h "$PG_HOST" -p "$PG_PORT" || fail "PostgreSQL did not become ready"
    fi
    if ! err=$(pg_sql 'SELECT 1' 2>&1 >/dev/null); then
        case "$err" in
            *authentication*|*password*)
                # A fresh Debian cluster uses scram-sha-256 over TCP: give the role a password.
                echo "[test] password authentication failed; setting the postgres role's password"
                runuser -u postgres -- psql -X -q -p "$PG_PORT" -v ON_ERROR_STOP=1 \
                    -c "ALTER ROLE postgres PASSWORD 'postgres'" </dev/null \
                    || fail "cannot set the postgres password (run this script as root)"
                ;;
            *) fail "cannot connect to PostgreSQL: $err" ;;
        esac
    fi
    if [ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
        echo "[test] creating database test"
        pg_sql 'CREATE DATABASE test' >/dev/null
    fi
    pg_sql 'SELECT 1' test >/dev/null || fail "cannot connect to database test"
    echo "[test] PostgreSQL is ready: database test, user postgres"
fi

# ---------------------------------------------------------------- checks
step "1/5 cargo fmt --check"
cargo fmt --check

step "2/5 cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

# Every test server logs into this directory (tests/it/server_logs.rs); step 5 reads it.
export PORTVAKT_TEST_LOG_DIR="$CARGO_TARGET_DIR/server-logs"
rm -rf "$PORTVAKT_TEST_LOG_DIR"

step "3/5 cargo test (SQLite)"
PORTVAKT_TEST_DB=sqlite cargo test

step "4/5 cargo test (PostgreSQL)"
PORTVAKT_TEST_DB=postgres PORTVAKT_TEST_PG_URL="$PG_URL" cargo test

step "5/5 the test servers' logs: no civic number, no password"
cargo test --test it -- --ignored --exact \
    logs::the_whole_suites_logs_hold_no_civic_number_or_password

step "all checks passed"
