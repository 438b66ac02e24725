#!/usr/bin/env bash
# Memory per concurrent IVR call and RSS after the load (leak check).
# CONCURRENT calls to the timed-presence contact point (each plays the
# log-in prompts over RTP), held HOLD_MS, then hung up by SIPp.
#
#   bench/sipp_memory.sh [CONCURRENT] [HOLD_MS]     defaults: 1000 calls, 20000 ms
#
# Prints the switch's RSS at rest, at peak (all calls up), and after the run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
HOLD=${2:-20000}
PORT=${PORT:-5970}
work=$(mktemp -d)
SWITCH_PID=
trap 'kill "$SWITCH_PID" 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/lib.sh
bench_config "$PORT" "$work"
start_switch "$work"
rss() { awk '/VmRSS/ {print $2}' "/proc/$SWITCH_PID/status"; }
base=$(rss)
echo "RSS at rest: ${base} KiB"
hold_xml "$work/hold.xml" "$HOLD"
cd "$work"
run() {
  sipp -sf hold.xml -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p 5971 -mp 40000 \
    -r 200 -l "$N" -m "$N" -timeout 300s -nostdin -max_socket 1000 > sipp.out 2>&1 &
  SIPP_PID=$!
  peak=0
  while kill -0 "$SIPP_PID" 2>/dev/null; do
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.5
  done
  wait "$SIPP_PID" || true
  grep -E "Successful call|Failed call" sipp.out | tail -2
  sleep "${SETTLE:-40}"
}
run
first_peak=$peak
first_after=$(rss)
echo "RSS peak with $N calls up: ${first_peak} KiB  -> $(( (first_peak - base) / N )) KiB per call"
echo "RSS ${SETTLE:-40} s after the run: ${first_after} KiB (at rest: ${base} KiB)"
# A second identical run: a per-call leak would grow RSS again.
run
echo "second run: peak ${peak} KiB, after ${after:-$(rss)} KiB"
