#!/usr/bin/env bash
# Cost per call (issue 15): one command per workload, each printing its figures
# beside this machine's bare syscall cost measured in the same run.
#
#   bench/cost.sh ivr RATE          short IVR calls at RATE/s for SECS (20) s
#   bench/cost.sh signalling RATE   INVITE, 200, ACK, BYE at RATE/s for SECS s
#   bench/cost.sh held N            N IVR calls held HOLD_MS (20000) ms: memory per call
#   bench/cost.sh pacing N          N prompt streams paced by one thread, then a bare pacer (cargo bench pacing)
#   bench/cost.sh bridged N         N bridged calls, RTP both ways (cargo bench bridge)
#   bench/cost.sh srtp N            the same with SRTP on both legs
#
# The switch runs pinned to CPU 1 (CPUS_SWITCH), SIPp on CPU 0 (CPUS_LOAD).
# "Short IVR": INVITE, 200, ACK; 1.5 s into Welcome an RFC 4733 key from
# dtmf_2833_1.pcap; the switch writes the window (SQLite, synchronous=FULL),
# plays Online and sends BYE. Switch CPU is utime and stime from
# /proc/PID/stat over the run (clock ticks, 10 ms), divided by the calls that
# succeeded. SIPp's media ports have a sink (SINK=0: none, as the issue's
# first figures had; see media_sink), and each busy thread's CPU and context
# switches a call follow (clock ticks too: a thread's user/sys split moves by
# a tick). Everything is on 127.0.0.1 and stops by itself. PERF=FILE also
# records a `perf` profile of the switch over the calls (ivr, signalling).
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:?usage: bench/cost.sh ivr|signalling|held|pacing|bridged|srtp N}
N=${2:?usage: bench/cost.sh $WHAT N}
SECS=${SECS:-20}
CPUS_SWITCH=${CPUS_SWITCH:-1}
CPUS_LOAD=${CPUS_LOAD:-0}
PORT=${PORT:-5940}
work=$(mktemp -d)
SWITCH_PID=
SINK_PID=
trap 'kill "$SWITCH_PID" $SINK_PID 2>/dev/null || true; rm -rf "$work"' EXIT
. bench/lib.sh

# bare: the machine's per-datagram syscall cost, pinned as the switch is.
bare() {
  cargo bench --quiet --bench bare_syscall --no-run 2>/dev/null
  taskset -c "$CPUS_SWITCH" cargo bench --quiet --bench bare_syscall 2>/dev/null | tee "$work/bare.txt"
}
bare_us() { awk -v w="$1" '$2 == w {print $3}' "$work/bare.txt"; }

# ticks: the switch's user and system CPU so far, in clock ticks.
ticks() { awk '{sub(/.*\) /, ""); print $12, $13}' "/proc/$SWITCH_PID/stat"; }
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$SWITCH_PID/status"; }
# heap: the allocator's live and free heap in KiB ("in_use free"), from the
# switch's /metrics (sampled every 5 s by the switch): RSS left after a run
# that is in `in_use` is data still held, in `free` memory not given back.
heap() {
  local http
  http=$(sed -n 's/^tpswitch listening http=//p' "$work/switch.out")
  curl -s "http://$http/metrics" | awk '/^tpswitch_heap_bytes\{kind="in_use"\}/ {u = $2} /^tpswitch_heap_bytes\{kind="free"\}/ {f = $2}
    END {printf "%d %d", u / 1024, f / 1024}'
}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
echo "commit $commit; $(lscpu | awk -F': *' '/Model name/ {print $2; exit}'), $(nproc) CPUs; switch on CPU $CPUS_SWITCH, load on CPU $CPUS_LOAD"

# sipp_outcome: sets OK and FAILED from SIPp's final statistics (cumulative column).
sipp_outcome() {
  OK=$(awk -F'|' '/Successful call/ {gsub(/ /, "", $3); print $3}' "$work/sipp.out" | tail -1)
  FAILED=$(awk -F'|' '/Failed call/ {gsub(/ /, "", $3); print $3}' "$work/sipp.out" | tail -1)
  OK=${OK:-0}; FAILED=${FAILED:-0}
}

# sipp_calls SCENARIO_ARGS...: runs SIPp on the load CPU against the switch,
# then sets OK and FAILED.
sipp_calls() {
  ( cd "$work" && taskset -c "$CPUS_LOAD" sipp "$@" -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 \
      -p $((PORT + 1)) -timeout 300s -nostdin -max_socket 1000 > sipp.out 2>&1 ) || true
  sipp_outcome
}

# media_sink PORT COUNT: binds every UDP port from PORT to PORT+COUNT-1 on
# 127.0.0.1, on the load CPU, and never reads them, as a phone's RTP port that
# is there: without it each packet the switch sends to SIPp's unbound
# [auto_media_port] comes back as an ICMP port unreachable, which the kernel
# makes and handles on the switch's CPU (a quarter of its packet cost). A full
# socket buffer drops in the kernel as the bare `sendto` figure's receiver
# does. Sets SINK_PID.
media_sink() {
  ulimit -n $(( $2 + 1000 )) 2>/dev/null || true
  taskset -c "$CPUS_LOAD" python3 - "$1" "$2" <<'PY' &
import socket, sys, time
base, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for port in range(base, base + count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    held.append(s)
print(f"media sink: {len(held)} ports from {base}", flush=True)
time.sleep(3600)
PY
  SINK_PID=$!
  sleep 2
}

# threads: one line per thread of the switch: "tid name utime stime
# voluntary involuntary" (ticks, context switches so far).
threads() {
  local t
  for t in /proc/"$SWITCH_PID"/task/*; do
    echo "${t##*/} $(tr ' ' _ < "$t/comm") $(awk '{sub(/.*\) /, ""); print $12, $13}' "$t/stat")" \
      "$(awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {n = $2} END {print v, n}' "$t/status")"
  done
}

# per_thread BEFORE AFTER CALLS: each busy thread's CPU and context switches
# per call (which thread the time goes to, and how often threads hand off).
per_thread() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
def load(text):
    return {p[0]: (p[1], *map(int, p[2:])) for p in (l.split() for l in text.splitlines()) if len(p) == 6}
b, a, calls = load(sys.argv[1]), load(sys.argv[2]), max(int(sys.argv[3]), 1)
for tid, (name, u, s, v, n) in sorted(a.items()):
    _, bu, bs, bv, bn = b.get(tid, (name, 0, 0, 0, 0))
    if (u - bu) + (s - bs) + (v - bv) + (n - bn) == 0:
        continue
    print(f"  thread {name:<16} {(u - bu + s - bs) * 10_000 / calls:7.1f} us a call "
          f"(user {(u - bu) * 10_000 / calls:.1f}, sys {(s - bs) * 10_000 / calls:.1f}); "
          f"context switches {(v - bv) / calls:.2f} voluntary, {(n - bn) / calls:.2f} involuntary")
PY
}

per_call() {
  local before=$1 after=$2 calls=$3
  python3 - "$before" "$after" "$calls" "$(bare_us sendto+recv)" <<'PY'
import sys
b, a, calls, bare = sys.argv[1].split(), sys.argv[2].split(), int(sys.argv[3]), float(sys.argv[4])
user, sys_ = (int(a[0]) - int(b[0])) * 10.0, (int(a[1]) - int(b[1])) * 10.0
if calls:
    per = (user + sys_) / calls
    print(f"switch CPU {(user + sys_) / 1000:.2f} s (user {user / 1000:.2f}, sys {sys_ / 1000:.2f}); "
          f"per call {per:.3f} ms (user {user / calls:.3f}, sys {sys_ / calls:.3f}) "
          f"= {per * 1000 / bare:.0f}x a bare sendto+recv ({bare} us)")
PY
}

case $WHAT in
ivr|signalling)
  bare
  bench_config "$PORT" "$work"
  start_switch "$work" "$CPUS_SWITCH"
  sleep 1
  calls=$((N * SECS))
  # SIPp's [auto_media_port] cycles through 10 000 ports from -mp.
  # SIPp itself binds -mp and -mp + 2.
  [ "${SINK:-1}" = 1 ] && media_sink $((PORT + 2004)) 10000
  # PERF=FILE: record where the switch's time goes (perf from linux-perf).
  if [ -n "${PERF:-}" ]; then
    perf record -F 499 -g -p "$SWITCH_PID" -o "$PERF" > /dev/null 2>&1 &
    perf_pid=$!
  fi
  before=$(ticks); before_threads=$(threads)
  if [ "$WHAT" = ivr ]; then
    login_xml "+12345678910" "$work/ivr.xml" 1500
    sipp_calls -sf ivr.xml -mp $((PORT + 2000)) -r "$N" -m "$calls" -l $((N * 10))
  else
    sipp_calls -sn uac -mp $((PORT + 2000)) -r "$N" -rp 1000 -m "$calls" -d 0 -l $((N * 10))
  fi
  sleep 1
  after=$(ticks); after_threads=$(threads)
  [ -n "${PERF:-}" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
  echo "$WHAT at $N calls/s for $SECS s: $OK of $calls calls ok, $FAILED failed; peak RSS $(( $(kib VmHWM) / 1024 )) MB"
  per_call "$before" "$after" "$OK"
  per_thread "$before_threads" "$after_threads" "$OK"
  ;;
held)
  bare
  bench_config "$PORT" "$work"
  start_switch "$work" "$CPUS_SWITCH"
  # REST=70 measures the resting figure after the store has closed the
  # connections it opened at start-up beyond its first (idle 30 s, looked
  # for every 30 s): the switch as it rests for hours.
  sleep "${REST:-6}"
  rest=$(kib VmRSS); rest_heap=$(heap); rest_split="$(kib RssAnon) $(kib RssFile)"
  hold_xml "$work/hold.xml" "${HOLD_MS:-20000}"
  sipp_calls -sf hold.xml -mp $((PORT + 2000)) -r 200 -l "$N" -m "$N" &
  sipp_pid=$!
  peak=$rest
  while kill -0 "$sipp_pid" 2>/dev/null; do
    r=$(kib VmRSS); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.5
  done
  wait "$sipp_pid" || true
  sipp_outcome
  # RSS every 10 s after the last call, then the figures at SETTLE s: the
  # last SIP transactions end at Timer J/L (32 s), and the allocator returns
  # pages unused for its decay time (jemalloc's dirty_decay_ms, 10 s) after.
  settled=0 trail=""
  while [ "$settled" -lt "${SETTLE:-10}" ]; do
    step=$(( ${SETTLE:-10} - settled < 10 ? ${SETTLE:-10} - settled : 10 ))
    sleep "$step"; settled=$((settled + step))
    trail="$trail ${settled}s $(( $(kib VmRSS) / 1024 ))"
  done
  echo "RSS after the last call (s MB):$trail"
  after=$(kib VmRSS); after_heap=$(heap); after_split="$(kib RssAnon) $(kib RssFile)"
  echo "held $N IVR calls ${HOLD_MS:-20000} ms: ${OK:-0} ok; RSS at rest $rest KiB, peak $peak KiB, $(( (peak - rest) * 1024 / N / 1000 )) KB per call;" \
       "after ${SETTLE:-10} s $after KiB ($(python3 -c "print(f'{100 * ($after - $rest) / $rest:+.1f}')") % of rest)"
  set -- $rest_heap $after_heap $rest_split $after_split
  echo "heap in use / free: at rest $1 / $2 KiB, after ${SETTLE:-10} s $3 / $4 KiB;" \
       "RSS anonymous / file (the binary's pages): at rest $5 / $6 KiB, after $7 / $8 KiB"
  ;;
pacing)
  bare
  # Two sockets a stream, then one a stream for the bare pacer.
  ulimit -n $((3 * N + 1000)) 2>/dev/null || true
  # The pacing thread (and the engine's runtime) on the switch's CPU, the four
  # receiving sinks on the load CPU.
  cargo bench --quiet --bench pacing --no-run 2>/dev/null
  PACING_SINK_CPU=$CPUS_LOAD taskset -c "$CPUS_SWITCH" cargo bench --quiet --bench pacing -- "$N" "$SECS" 2>/dev/null
  ;;
bridged|srtp)
  bare
  ulimit -n $((8 * N + 1000)) 2>/dev/null || true
  extra=""; [ "$WHAT" = srtp ] && extra=srtp
  # The engine's threads on the switch's CPU, the phones (senders and
  # receivers) on the load CPU.
  BRIDGE_ENGINE_CPU=$CPUS_SWITCH BRIDGE_LOAD_CPU=$CPUS_LOAD \
    cargo bench --quiet --bench bridge -- "$N" "$SECS" $extra 2>/dev/null
  ;;
*)
  echo "unknown workload $WHAT: ivr, signalling, held, pacing, bridged or srtp" >&2
  exit 2
  ;;
esac
