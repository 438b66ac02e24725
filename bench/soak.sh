#!/usr/bin/env bash
# Soak: CALLS log-in and queue calls in a row at a moderate rate (RATE,
# default 50/s, half each); the switch's RSS and open descriptors are
# sampled every 5 s; fails when either grew more than 10 % from the first
# 5 000 calls to the last. What runs and is checked: bench/soak.py.
#
#   bench/soak.sh [CALLS]       default 50000 (about 17 min at 50/s)
#
# Builds the release binary unless TPSWITCH_BIN names one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TPSWITCH_BIN:-}" ]; then
  cargo build --release --quiet
  export TPSWITCH_BIN=$PWD/target/release/tpswitch
fi
exec python3 bench/soak.py "${1:-50000}"
