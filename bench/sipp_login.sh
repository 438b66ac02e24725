#!/usr/bin/env bash
# Full log-in calls under load: SIPp calls the timed-presence contact point as
# jsmith, presses 1 (an RFC 2833 capture) during Welcome, the switch writes the
# window (SQLite, synchronous=FULL), plays Online and hangs up.
#
#   bench/sipp_login.sh [RATE] [CALLS]     defaults: 300 calls/s, 6000 calls
#
# Whole box: the switch and SIPp share both cores. Stops by itself (-m, -timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-300}
CALLS=${2:-6000}
PORT=${PORT:-5980}
work=$(mktemp -d)
SWITCH_PID=
trap 'kill "$SWITCH_PID" 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/lib.sh
bench_config "$PORT" "$work"
login_xml "+12345678910" "$work/login.xml"
start_switch "$work"
cd "$work"
start=$(date +%s.%N)
sipp -sf login.xml -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p 5981 -mp 42000 \
  -r "$RATE" -m "$CALLS" -l 5000 -timeout 300s -nostdin -max_socket 1000 -fd 1 > sipp.out 2>&1 || true
end=$(date +%s.%N)
grep -E "Successful call|Failed call|Call Rate" sipp.out | tail -3
echo "wall: $(python3 -c "print(round($end - $start, 1))") s; switch CPU (user+sys): $(ps -o times= -p "$SWITCH_PID") s"
echo "windows written: $(sqlite3 tpswitch.db 'select count(*) from presence_history' 2>/dev/null || echo '?')"
