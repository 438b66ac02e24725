#!/usr/bin/env bash
# The store on a slow disk (issue 15, group commit): every fsync and
# fdatasync of the switch takes FSYNC_MS (default 5 ms, a rotating disk or a
# busy SAN) longer, injected by strace; SIPp places RATE calls a second for
# SECS (20) s. Signalling-only calls (the default) each end with a log-in
# record in the store; SCENARIO=ivr places the short IVR call instead (the
# agent presses 1, the switch writes the window before it plays Online and
# hangs up), so each call writes a window and a record. Prints the records
# written, in how many transactions, how long after SIPp's last call the
# store had them all, and how long SIPp's run took beyond its SECS: a switch
# that writes one window per fsync keeps agents waiting for "online" once
# RATE exceeds 1000 / FSYNC_MS.
#
#   bench/slow_store.sh RATE
#   SCENARIO=ivr bench/slow_store.sh RATE
#
# The ivr scenario is faultlib's: one agent per call, the key 300 ms into
# Welcome.
# Needs strace (Debian's `strace`, 5.3 or later for --seccomp-bpf: only the
# two syscalls stop, the rest of the switch runs untraced). Everything is on
# 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:?usage: bench/slow_store.sh RATE}
SECS=${SECS:-20}
FSYNC_MS=${FSYNC_MS:-5}
PORT=${PORT:-5946}
work=$(mktemp -d)
TRACER_PID=
stop() {
  # strace detaches when it is stopped: stop the switch itself first.
  [ -n "$TRACER_PID" ] && pkill -TERM -P "$TRACER_PID" 2> /dev/null || true
  sleep 0.5
  [ -n "$TRACER_PID" ] && kill "$TRACER_PID" 2> /dev/null || true
}
trap 'stop; rm -rf "$work"' EXIT
. bench/lib.sh

calls=$((RATE * SECS))
case ${SCENARIO:-signalling} in
signalling)
  bench_config "$PORT" "$work"
  scenario=(-sn uac -d 0)
  ;;
ivr)
  # One agent per call (k0001..., each with its own number), so that every
  # call opens a new window: an online agent's call would extend theirs.
  python3 - "$work" "$PORT" "$calls" <<'PY'
import sys
sys.path.insert(0, "bench")
import faultlib as fl
work, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fl.write_config(work, port, n)
fl.login_scenario(work, name="ivr.xml")
fl.injection_file(work, n)
PY
  scenario=(-sf ivr.xml -inf agents.csv)
  ;;
*) echo "SCENARIO is signalling or ivr" >&2; exit 2 ;;
esac
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(lscpu | awk -F': *' '/Model name/ {print $2; exit}'), $(nproc) CPUs; fsync +${FSYNC_MS} ms"
TPSWITCH_LOG=warn strace -f -qq -o /dev/null --seccomp-bpf -e trace=fsync,fdatasync \
  -e inject=fsync,fdatasync:delay_exit=$((FSYNC_MS * 1000)) \
  target/release/tpswitch run --config "$work/tpswitch.toml" > "$work/switch.out" 2> "$work/switch.err" &
TRACER_PID=$!
for _ in $(seq 100); do grep -q "tpswitch listening http" "$work/switch.out" 2> /dev/null && break; sleep 0.1; done
http=$(sed -n 's/^tpswitch listening http=//p' "$work/switch.out")
[ -n "$http" ] || { cat "$work/switch.err"; exit 1; }

sipp_start=$(date +%s.%N)
( cd "$work" && sipp "${scenario[@]}" -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 1)) \
    -mp $((PORT + 2000)) -r "$RATE" -m "$calls" -l $((RATE * 10)) \
    -timeout $((SECS + 120))s -nostdin > sipp.out 2>&1 || true )
sipp_end=$(date +%s.%N)
awk -v a="$sipp_start" -v b="$sipp_end" -v s="$SECS" 'BEGIN { printf "SIPp ran %.1f s beyond its %d s of calls\n", b - a - s, s }'

python3 - "$work/tpswitch.db" "$calls" "$http" <<'PY'
import sqlite3, sys, time, urllib.request
db, calls, http = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.monotonic()
rows = 0
while time.monotonic() - start < 120:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    rows = con.execute("SELECT count(*) FROM login_calls").fetchone()[0]
    con.close()
    if rows >= calls:
        break
    time.sleep(0.2)
caught_up = time.monotonic() - start
# How long each call that went online lasted, as the switch saw it: the
# menu, the wait for the window's commit, then Online.
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
lengths = sorted(r[0] for r in con.execute(
    "SELECT ended_at_ms - started_at_ms FROM login_calls WHERE outcome = 'online'"))
con.close()
if lengths:
    q = lambda f: lengths[min(len(lengths) - 1, int(f * len(lengths)))] / 1000
    print(f"{len(lengths)} calls went online; call length p50 {q(0.5):.2f} s, "
          f"p99 {q(0.99):.2f} s, longest {lengths[-1] / 1000:.2f} s")
text = urllib.request.urlopen(f"http://{http}/metrics", timeout=30).read().decode()
tx = {}
for line in text.splitlines():
    if line.startswith("tpswitch_store_write_seconds_count{"):
        op = line.split('op="', 1)[1].split('"', 1)[0]
        tx[op] = int(float(line.rsplit(" ", 1)[1]))
groups = tx.get("write_group", 0)
singles = tx.get("insert_login_call", 0)
windows = tx.get("set_online", 0)
print(f"{calls} calls; {rows} log-in records in the store "
      f"{caught_up:.1f} s after SIPp's last call")
print(f"transactions: {groups} group commits, {singles} single log-in records, "
      f"{windows} single windows")
PY
awk -F'|' '/Successful call|Failed call/ {gsub(/ /, "", $1); gsub(/ /, "", $3); print "sipp: " $1 " " $3}' "$work/sipp.out" | tail -2
