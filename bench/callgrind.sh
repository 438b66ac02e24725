#!/usr/bin/env bash
# Instructions per call (issue 15), counted by valgrind's callgrind: a figure
# that does not move with the machine's noise or clock, for comparing commits.
#
#   bench/callgrind.sh signalling N    N of SIPp's built-in uac calls (INVITE, 200, ACK, BYE)
#   bench/callgrind.sh ivr N           N short IVR calls (as bench/cost.sh ivr)
#
# The release switch runs under callgrind; its counters are zeroed once it
# listens (start-up is not counted) and dumped after the last call. SIPp places
# RATE (20) calls a second: valgrind runs the switch some 50 times slower.
# Prints instructions per call, for the whole process and for the functions
# that cost most (inclusive), then the dump's path (KEEP=1 keeps it) for
# `callgrind_annotate --inclusive=yes --tree=calling`. Everything is on
# 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:?usage: bench/callgrind.sh signalling|ivr N}
N=${2:?usage: bench/callgrind.sh $WHAT N}
RATE=${RATE:-20}
PORT=${PORT:-5980}
command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
VG_PID=
trap 'kill "$VG_PID" 2>/dev/null || true; [ "${KEEP:-0}" = 1 ] || rm -rf "$work"' EXIT
. bench/lib.sh
bench_config "$PORT" "$work"

TPSWITCH_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
  "$SWITCH_BIN" run --config "$work/tpswitch.toml" > "$work/switch.out" 2> "$work/switch.err" &
VG_PID=$!
for _ in $(seq 600); do grep -q "tpswitch listening sip" "$work/switch.out" 2>/dev/null && break; sleep 0.1; done
grep -q "tpswitch listening sip" "$work/switch.out" || { cat "$work/switch.err" >&2; exit 1; }
sleep 2
callgrind_control -z "$VG_PID" > /dev/null 2>&1

if [ "$WHAT" = ivr ]; then
  login_xml "+12345678910" "$work/ivr.xml" 1500
  scenario=(-sf ivr.xml)
else
  scenario=(-sn uac -d 0)
fi
repo=$PWD
cd "$work"
sipp "${scenario[@]}" -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 1)) \
  -mp $((PORT + 2000)) -r "$RATE" -m "$N" -timeout 600s -nostdin > sipp.out 2>&1 || true
ok=$(awk -F'|' '/Successful call/ {gsub(/ /, "", $3); print $3}' sipp.out | tail -1)
sleep 1
callgrind_control -d "$VG_PID" > /dev/null 2>&1
sleep 1
dump=$(ls -t "$work"/callgrind.out.* | head -1)
echo "commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'); $WHAT: ${ok:-0} of $N calls ok"
callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | python3 -c '
import re, sys
calls = int(sys.argv[1]) or 1
rows, total = [], None
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    n = int(m.group(1).replace(",", ""))
    if m.group(2).startswith("PROGRAM TOTALS"):
        total = n
        continue
    if re.search(r"\([\d,]+x\)", m.group(2)):
        continue  # a caller or callee line of the tree, not the total of a function
    name = re.sub(r" \[.*\]$", "", m.group(2)).split(":", 1)[-1]
    if name.startswith("tpswitch::") and not any(name == r[1] for r in rows):
        rows.append((n, name))
print(f"instructions per call: {total / calls:,.0f} (the whole process)")
for n, name in rows[:int(sys.argv[2])]:
    print(f"  {n / calls:>10,.0f}  {name}")
' "${ok:-0}" "${TOP:-25}"
[ "${KEEP:-0}" = 1 ] && echo "dump: $dump"
