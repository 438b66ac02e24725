#!/usr/bin/env bash
# CPU the switch spends on a flood: SIPp sends INVITEs (each with an SDP
# offer, never retransmitted) from 127.0.0.2, outside trunk.allow, at RATE a
# second for SECONDS; the switch's user+system time is read from
# /proc/PID/stat (fields 14 and 15) just before and just after.
#
#   bench/flood.sh [RATE] [SECONDS] [MODE]   defaults: 1000 20 on
#
# MODE "on": the shipped [sip.flood] (the source is banned after 16 in 2 s
# and its requests dropped before parsing). MODE "off": sip.flood.enabled =
# false, so every INVITE is parsed and answered 403 (sip.untrusted).
# Release binary pinned to core 1, SIPp to core 0.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}
SECONDS_=${2:-20}
MODE=${3:-on}
PORT=${PORT:-5962}
work=$(mktemp -d)
SWITCH_PID=
trap 'kill "$SWITCH_PID" 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/lib.sh
bench_config "$PORT" "$work"
if [ "$MODE" = off ]; then
  sed -i 's|^enabled = true  |enabled = false |' "$work/tpswitch.toml"
  grep -q '^enabled = false' "$work/tpswitch.toml" || { echo "could not turn sip.flood off" >&2; exit 1; }
fi
# What a dropped datagram costs at the least on this machine, this run: the
# switch receives each INVITE (about 700 bytes) before it can drop it.
bare=$(bare_loopback 700 sendrecv)
start_switch "$work" 1
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SWITCH_PID/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
( cd "$work" && taskset -c 0 sipp -sf "$OLDPWD/tests/sipp/flood_invite.xml" "127.0.0.1:$PORT" \
    -i 127.0.0.2 -p 5963 -mp 6300 -s +15550100000 -r "$RATE" -m $((RATE * SECONDS_)) \
    -timeout $((SECONDS_ + 30))s -nostdin > sipp.out 2>&1 || true )
after=$(ticks)
metrics=$(grep -o 'tpswitch listening http=.*' "$work/switch.out" | sed 's/.*http=//')
echo "flood: $((RATE * SECONDS_)) INVITEs at $RATE/s from 127.0.0.2, sip.flood $MODE"
echo "$bare"
awk -v b="$before" -v a="$after" -v hz="$hz" -v s="$SECONDS_" \
  'BEGIN { cpu = (a - b) / hz; printf "switch CPU %.2f s over %d s = %.1f %% of a core\n", cpu, s, 100 * cpu / s }'
if [ -n "$metrics" ]; then
  curl -s "http://$metrics/metrics" | grep -E '^tpswitch_sip_(flood_refused|requests|rejected_untrusted)_total' || true
fi
