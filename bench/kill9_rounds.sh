#!/usr/bin/env bash
# kill -9 of the switch at random points during log-ins under load, ROUNDS
# times; after each restart every confirmed window is in the store, PRAGMA
# integrity_check is ok, the expiry timers are re-armed, /readyz is 200.
# What each round checks: bench/kill9_rounds.py.
#
#   bench/kill9_rounds.sh [ROUNDS]      default 200 (about 10 s a round)
#
# Builds the release binary unless TPSWITCH_BIN names one. Other knobs
# (PORT, AGENTS, RATE, MAX_DELAY, SEED) are read from the environment.
# Exit status 0 only when every round passed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TPSWITCH_BIN:-}" ]; then
  cargo build --release --quiet
  export TPSWITCH_BIN=$PWD/target/release/tpswitch
fi
exec python3 bench/kill9_rounds.py "${1:-200}"
