#!/usr/bin/env bash
# A store that cannot write, over and over during log-in load: the switch's
# store folder is a tmpfs of its own (a private mount namespace, so root is
# needed) that is filled until ENOSPC and freed again, CYCLES times. Each
# fault: log-ins hear the error prompt, never Online; the log says so once
# per 10 s; /readyz says not ready; writes resume by themselves.
# What is checked: bench/store_fault.py.
#
#   bench/store_fault.sh [CYCLES]      default 5 (about 15 s a cycle)
#
# Builds the release binary unless TPSWITCH_BIN names one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TPSWITCH_BIN:-}" ]; then
  cargo build --release --quiet
  export TPSWITCH_BIN=$PWD/target/release/tpswitch
fi
exec python3 bench/store_fault.py "${1:-5}"
