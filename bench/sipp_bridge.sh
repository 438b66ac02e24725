#!/usr/bin/env bash
# Bridged customer<->agent calls through the whole switch, SIPp on both sides:
# relay latency added per packet (p50/p99), CPU and memory per bridged call.
#
#   bench/sipp_bridge.sh [N]      default 100 bridged calls
#
# - N agents (agent0000.., skill billing) log in through the contact point
#   (SIPp, key 1).
# - A SIPp UAS stands in for every agent's phone behind the trunk: it answers.
# - N customers call the Billing line (accept_digit = "": bridged on answer).
# - Both sides stream 20 ms PCMU with SIPp's rtp_stream (a few threads for
#   all calls; play_pcap_audio's thread per call and -rtp_echo's single
#   thread could not carry 1 000 calls on one core), each packet starting
#   with a counter (bench/rtp_latency.py stream).
# - With all N bridged: the switch's CPU and relayed-packet counter (/metrics)
#   over 10 s, its VmRSS before the customers and with all bridged, then a
#   3.5 s tcpdump of its media ports, matched packet by packet across the
#   bridge by bench/rtp_latency.py measure.
#
# The switch runs on CPU ${CPUS_SWITCH:-1}; SIPp and tcpdump on CPU
# ${CPUS_LOAD:-0}, so the load generators do not take the switch's core.
# Needs root for the capture; installs tcpdump with apt-get when missing.
# Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
PORT=${PORT:-5990}
TRUNK=$((PORT + 1))
work=$(mktemp -d)
SWITCH_PID=
AGENTS_PID=
CUST_PID=
TCPDUMP_PID=
CPUS_SWITCH=${CPUS_SWITCH:-1}
CPUS_LOAD=${CPUS_LOAD:-0}
RATE=${RATE:-50}
# KEEP=1 keeps the work directory (logs, capture) for a look afterwards.
trap 'kill $SWITCH_PID $AGENTS_PID $CUST_PID $TCPDUMP_PID 2>/dev/null || true; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
command -v tcpdump >/dev/null || { apt-get update -qq && apt-get install -y -qq tcpdump; }
# Background jobs are started as `taskset ... &` directly, not through a
# function: $! must be the process itself so it can be signalled.
load() { taskset -c "$CPUS_LOAD" "$@"; }
. bench/lib.sh
bench_config "$PORT" "$work"
python3 - "$work/tpswitch.toml" "$N" "$TRUNK" <<'PY'
import sys
path, n, trunk = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = open(path).read()
def sub(old, new):
    # A line the config no longer has must stop the bench, not leave a
    # default in place (the trunk's cap once stayed at 100 calls so).
    global s
    assert old in s, old
    s = s.replace(old, new, 1)
sub('outbound_proxy = "sip:127.0.0.1:5080"', f'outbound_proxy = "sip:127.0.0.1:{trunk}"')
sub('max_calls = 100 ', f'max_calls = {n + 50} ')
sub('accept_digit = "1"', 'accept_digit = ""')
sub('no_agents = "immediate"', 'no_agents = "wait"')
sub('wrap_up = "10s"', 'wrap_up = "1s"')
users = "".join(
    f'\n[[users]]\nid = "agent{k:04d}"\nname = "Agent {k}"\nskills = ["billing"]\n'
    f'  [[users.extensions]]\n  type = "pstn"\n  value = "+1555300{k:04d}"\n  ext = ""\n'
    for k in range(n)
)
# Users go before the first [[flows]] table.
i = s.index("[[flows]]")
s = s[:i] + users + "\n" + s[i:]
open(path, "w").write(s)
with open(path.replace("tpswitch.toml", "agents.csv"), "w") as f:
    f.write("SEQUENTIAL\n")
    for k in range(n):
        f.write(f"+1555300{k:04d}\n")
PY
SWITCH_LOG="warn,tpswitch::call::queue=info" start_switch "$work" "$CPUS_SWITCH"
http=$(sed -n 's/^tpswitch listening http=//p' "$work/switch.out")
metric() { curl -s "http://$http/metrics" | awk -v m="tpswitch_$1" '$1 == m {print $2}'; }

# Calls last the ramp plus 25 s: settle 4 s, CPU 10 s, capture 3.5 s, margin.
ramp=$(( N / RATE + 1 ))
hold_ms=$(( (ramp + 25) * 1000 ))
python3 bench/rtp_latency.py stream "$work/stream.raw" $(( ramp + 40 ))
cd "$work"
python3 - "$OLDPWD/tests/sipp" "$hold_ms" <<'PY'
import sys
d, hold_ms = sys.argv[1], sys.argv[2]
login = open(f"{d}/login.xml").read().replace("@CALLER@", "[field0]")
login = login.replace("@STEPS@",
    '  <pause milliseconds="500"/>\n'
    '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_1.pcap"/></action></nop>\n')
login = login.replace("@END@", open(f"{d}/login_end_bye.inc").read())
open("login.xml", "w").write(login)
stream = '  <nop><action><exec rtp_stream="stream.raw,1,0"/></action></nop>\n'
cust = open(f"{d}/login.xml").read().replace("@CALLER@", "+19990000000")
cust = cust.replace("[auto_media_port]", "[rtpstream_audio_port]")
cust = cust.replace("@STEPS@", stream + f'  <pause milliseconds="{hold_ms}"/>\n')
cust = cust.replace("@END@", open(f"{d}/login_end_hangup.inc").read().replace("@CALLER@", "+19990000000"))
open("customer.xml", "w").write(cust)
agent = open(f"{d}/uas_answer.xml").read().replace("[media_port]", "[rtpstream_audio_port]")
ack = '<recv request="ACK" crlf="true"/>\n'
assert ack in agent
agent = agent.replace(ack, ack + stream)
open("agent.xml", "w").write(agent)
PY
echo "logging in $N agents..."
load sipp -sf login.xml -inf agents.csv -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 2)) -mp 43000 \
  -r 50 -m "$N" -timeout 120s -nostdin > login.out 2>&1 || true
grep -E "Successful call|Failed call" login.out | tail -2
taskset -c "$CPUS_LOAD" sipp -sf agent.xml -i 127.0.0.1 -p "$TRUNK" -mp 44000 \
  -m "$N" -timeout $(( ramp + 90 ))s -nostdin > agents.out 2>&1 &
AGENTS_PID=$!
sleep 1
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$SWITCH_PID/status")
echo "starting $N customers at $RATE calls/s..."
taskset -c "$CPUS_LOAD" sipp -sf customer.xml -s +15550100001 "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 3)) -mp 46000 \
  -r "$RATE" -m "$N" -l "$N" -timeout $(( ramp + 90 ))s -nostdin > customers.out 2>&1 &
CUST_PID=$!
sleep $(( ramp + 4 ))
bridged=$(grep -c "bridged" switch.err || true)
rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$SWITCH_PID/status")
stat0=$(grep -E "^cpu[0-9]" /proc/stat | tr '\n' ';')
cpu0=$(awk '{print $14, $15}' "/proc/$SWITCH_PID/stat"); rel0=$(metric rtp_relayed_total); t0=$(date +%s.%N)
sleep 10
cpu1=$(awk '{print $14, $15}' "/proc/$SWITCH_PID/stat"); rel1=$(metric rtp_relayed_total); t1=$(date +%s.%N)
stat1=$(grep -E "^cpu[0-9]" /proc/stat | tr '\n' ';')
# The capture comes after the CPU window: the tap's copy of each packet the
# switch sends is charged to the switch's thread.
taskset -c "$CPUS_LOAD" tcpdump -i lo -n -s 64 -B 262144 --time-stamp-precision=nano \
  -w capture.pcap "udp portrange 20000-29999" 2> tcpdump.err &
TCPDUMP_PID=$!
for _ in $(seq 300); do grep -q "listening on" tcpdump.err && break; sleep 0.1; done
sleep 3.5
kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" || true
grep -E "captured|dropped" tcpdump.err || true
wait "$CUST_PID" || true
CUST_PID=
grep -E "Successful call|Failed call" customers.out | tail -2
python3 - "$N" "$bridged" "$cpu0" "$cpu1" "$rel0" "$rel1" "$t0" "$t1" "$rss0" "$rss1" "$stat0" "$stat1" <<'PY'
import sys, os
n, bridged, c0, c1, r0, r1, t0, t1, rss0, rss1, st0, st1 = sys.argv[1:]
n = int(n); wall = float(t1) - float(t0)
hz = os.sysconf("SC_CLK_TCK")
(u0, s0), (u1, s1) = (map(int, c.split()) for c in (c0, c1))
user, system = (u1 - u0) / hz, (s1 - s0) / hz
cpu = user + system
rel = (float(r1) - float(r0)) / wall
print(f"{n} customers, {bridged} bridged when sampled; {wall:.1f} s window: relayed {rel:.0f} packets/s "
      f"(expected {n * 100}: 50/s each way per call); switch CPU {100 * cpu / wall:.1f} % of a core, "
      f"{100 * cpu / wall / n:.3f} % per bridged call; user {100 * user / wall:.1f} %, "
      f"system {100 * system / wall:.1f} %")
def cpus(text):
    return {f[0]: list(map(int, f[1:])) for f in (l.split() for l in text.split(";") if l)}
a, b = cpus(st0), cpus(st1)
busy = []
for name in sorted(b):
    d = [y - x for x, y in zip(a[name], b[name])]
    idle = d[3] + d[4]
    busy.append(f"{name} {100 * (sum(d) - idle) / max(sum(d), 1):.0f} %")
print("busy over the window: " + ", ".join(busy))
print(f"switch VmRSS {int(rss0) / 1024:.1f} MiB before the customers, {int(rss1) / 1024:.1f} MiB with them: "
      f"{(int(rss1) - int(rss0)) / n:.1f} KiB per bridged call")
PY
python3 "$OLDPWD/bench/rtp_latency.py" measure capture.pcap switch.err
