#!/usr/bin/env bash
# README command 1: installs what is missing, then starts the demo (a synthetic municipality,
# demo relying parties) on the embedded SQLite database under ./data.
#
#   sudo scripts/demo.sh                 # then open http://localhost:8080/demo
#   sudo PORTVAKT_LISTEN=127.0.0.1:9090 PORTVAKT_ISSUER=http://localhost:9090 scripts/demo.sh
#   sudo scripts/demo.sh --config portvakt.toml
#
# Extra arguments go to `portvakt demo`; PORTVAKT_* variables pass through.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

echo "[demo] building (the first release build takes a few minutes) and starting Portvakt"
exec cargo run --release -- demo "$@"
