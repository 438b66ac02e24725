#!/usr/bin/env bash
# The store on a slow disk (issue 15, group commit): every fsync and
# fdatasync of the switch takes FSYNC_MS (default 5 ms, a rotating disk or a
# busy SAN) longer, injected by strace; SIPp places RATE signalling-only
# calls a second for SECS (20) s, each ending with a log-in record in the
# store. Prints the records written, in how many transactions, and how long
# after SIPp's last call the store had them all (a switch that writes one
# record per fsync falls behind once RATE exceeds 1000 / FSYNC_MS).
#
#   bench/slow_store.sh RATE
#
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

bench_config "$PORT" "$work"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(lscpu | awk -F': *' '/Model name/ {print $2; exit}'), $(nproc) CPUs; fsync +${FSYNC_MS} ms"
TPSWITCH_LOG=warn strace -f -qq -o /dev/null --seccomp-bpf -e trace=fsync,fdatasync \
  -e inject=fsync,fdatasync:delay_exit=$((FSYNC_MS * 1000)) \
  target/release/tpswitch run --config "$work/tpswitch.toml" > "$work/switch.out" 2> "$work/switch.err" &
TRACER_PID=$!
for _ in $(seq 100); do grep -q "tpswitch listening http" "$work/switch.out" 2> /dev/null && break; sleep 0.1; done
http=$(sed -n 's/^tpswitch listening http=//p' "$work/switch.out")
[ -n "$http" ] || { cat "$work/switch.err"; exit 1; }

calls=$((RATE * SECS))
( cd "$work" && sipp -sn uac -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 1)) \
    -mp $((PORT + 2000)) -r "$RATE" -m "$calls" -d 0 -l $((RATE * 10)) \
    -timeout $((SECS + 120))s -nostdin > sipp.out 2>&1 || true )

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
text = urllib.request.urlopen(f"http://{http}/metrics", timeout=30).read().decode()
tx = {}
for line in text.splitlines():
    if line.startswith("tpswitch_store_write_seconds_count{"):
        op = line.split('op="', 1)[1].split('"', 1)[0]
        tx[op] = int(float(line.rsplit(" ", 1)[1]))
groups = tx.get("write_group", 0)
singles = tx.get("insert_login_call", 0)
print(f"{calls} calls; {rows} log-in records in the store "
      f"{caught_up:.1f} s after SIPp's last call")
print(f"transactions: {groups} group commits, {singles} single inserts"
      + (f"; {rows / groups:.1f} records per group" if groups else ""))
PY
awk -F'|' '/Successful call|Failed call/ {gsub(/ /, "", $1); gsub(/ /, "", $3); print "sipp: " $1 " " $3}' "$work/sipp.out" | tail -2
