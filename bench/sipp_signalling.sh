#!/usr/bin/env bash
# Signalling-only load: SIPp's built-in uac (INVITE, 200, ACK, BYE, no pause)
# against the release binary pinned to one core (taskset -c 1), SIPp on core 0.
#
#   bench/sipp_signalling.sh [RATE] [CALLS]     defaults: 1000 calls/s, 30000 calls
#
# Prints SIPp's summary and the INVITE->200 response-time percentiles.
# Everything runs on 127.0.0.1 and stops by itself (-m and -timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}
CALLS=${2:-30000}
PORT=${PORT:-5960}
work=$(mktemp -d)
SWITCH_PID=
trap 'kill "$SWITCH_PID" 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/lib.sh
bench_config "$PORT" "$work"

start_switch "$work" 1

cd "$work"
taskset -c 0 sipp -sn uac -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p 5961 -mp 6200 \
  -r "$RATE" -rp 1000 -m "$CALLS" -d 0 -l 60000 -timeout 120s -nostdin -max_socket 1000 \
  -trace_rtt -rtt_freq 1000 -trace_stat -fd 1 > sipp.out 2>&1 || true
tail -60 sipp.out | grep -E "Successful call|Failed call|Call Rate|Elapsed|Total Call created" || true
rtt=$(ls ./*_rtt.csv 2>/dev/null | head -1)
if [ -n "$rtt" ]; then
  python3 - "$rtt" <<'PY'
import sys, csv
vals = []
with open(sys.argv[1]) as f:
    for row in csv.reader(f, delimiter=';'):
        try:
            vals.append(float(row[1]))
        except (ValueError, IndexError):
            pass
vals.sort()
if vals:
    pct = lambda p: vals[min(len(vals) - 1, int(p * len(vals)))]
    print(f"INVITE->200 ms (SIPp resolution 1 ms) over {len(vals)} calls: p50 {pct(0.5):.0f}  p99 {pct(0.99):.0f}  max {vals[-1]:.0f}")
PY
fi
stat=$(ls ./*_.csv 2>/dev/null | head -1 || true)
echo "switch CPU (user+sys s): $(ps -o times= -p "$SWITCH_PID" 2>/dev/null || echo '?')"
