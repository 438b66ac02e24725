#!/usr/bin/env bash
# Bridged customer<->agent calls through the whole switch, SIPp on both sides.
#
#   bench/sipp_bridge.sh [N]      default 100 bridged calls
#
# N agents (agent0000.., skill billing) log in through the contact point
# (SIPp, key 1). A SIPp UAS stands in for every agent's phone behind the
# trunk: it answers and echoes RTP (-rtp_echo). N customers call the Billing
# line (accept_digit = "": bridged on answer) and stream g711a.pcap three
# times. The switch's CPU and its relayed-packet counter (/metrics) are
# sampled over 10 s while all calls are bridged. Loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
PORT=${PORT:-5990}
TRUNK=$((PORT + 1))
work=$(mktemp -d)
SWITCH_PID=
AGENTS_PID=
trap 'kill "$SWITCH_PID" "$AGENTS_PID" 2>/dev/null || true; rm -rf "$work"' EXIT
. bench/lib.sh
bench_config "$PORT" "$work"
python3 - "$work/tpswitch.toml" "$N" "$TRUNK" <<'PY'
import sys
path, n, trunk = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = open(path).read()
s = s.replace('outbound_proxy = "sip:127.0.0.1:5080"', f'outbound_proxy = "sip:127.0.0.1:{trunk}"')
s = s.replace('max_outbound_calls = 100', f'max_outbound_calls = {n + 50}')
s = s.replace('accept_digit = "1"', 'accept_digit = ""')
s = s.replace('no_agents = "immediate"', 'no_agents = "wait"')
s = s.replace('wrap_up = "10s"', 'wrap_up = "1s"')
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
start_switch "$work"
http=$(sed -n 's/^tpswitch listening http=//p' "$work/switch.out")
metric() { curl -s "http://$http/metrics" | awk -v m="tpswitch_$1" '$1 == m {print $2}'; }

cd "$work"
python3 - "$OLDPWD/tests/sipp" <<'PY'
import sys
d = sys.argv[1]
login = open(f"{d}/login.xml").read().replace("@CALLER@", "[field0]")
login = login.replace("@STEPS@",
    '  <pause milliseconds="500"/>\n'
    '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_1.pcap"/></action></nop>\n')
login = login.replace("@END@", open(f"{d}/login_end_bye.inc").read())
open("login.xml", "w").write(login)
cust = open(f"{d}/login.xml").read().replace("@CALLER@", "+19990000000")
play = '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>\n  <pause milliseconds="7000"/>\n'
cust = cust.replace("@STEPS@", play * 3)
cust = cust.replace("@END@", open(f"{d}/login_end_hangup.inc").read().replace("@CALLER@", "+19990000000"))
open("customer.xml", "w").write(cust)
PY
echo "logging in $N agents..."
sipp -sf login.xml -inf agents.csv -s +15550100000 "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 2)) -mp 43000 \
  -r 50 -m "$N" -timeout 120s -nostdin > login.out 2>&1 || true
grep -E "Successful call|Failed call" login.out | tail -2
sipp -sf "$OLDPWD/tests/sipp/uas_answer.xml" -i 127.0.0.1 -p "$TRUNK" -mp 44000 -rtp_echo \
  -m "$N" -timeout 200s -nostdin > agents.out 2>&1 &
AGENTS_PID=$!
sleep 1
echo "starting $N customers..."
sipp -sf customer.xml -s +15550100001 "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 3)) -mp 46000 \
  -r 50 -m "$N" -l "$N" -timeout 200s -nostdin > customers.out 2>&1 &
CUST_PID=$!
ramp=$(( N / 50 + 4 ))
sleep "$ramp"
cpu0=$(awk '{print $14 + $15}' "/proc/$SWITCH_PID/stat"); rel0=$(metric rtp_relayed_total); t0=$(date +%s.%N)
sleep 10
cpu1=$(awk '{print $14 + $15}' "/proc/$SWITCH_PID/stat"); rel1=$(metric rtp_relayed_total); t1=$(date +%s.%N)
wait "$CUST_PID" || true
grep -E "Successful call|Failed call" customers.out | tail -2
python3 - "$N" "$cpu0" "$cpu1" "$rel0" "$rel1" "$t0" "$t1" <<'PY'
import sys, os
n, c0, c1, r0, r1, t0, t1 = sys.argv[1:]
n = int(n); wall = float(t1) - float(t0)
hz = os.sysconf("SC_CLK_TCK")
cpu = (float(c1) - float(c0)) / hz
rel = (float(r1) - float(r0)) / wall
print(f"{n} bridged calls, {wall:.1f} s window: relayed {rel:.0f} packets/s "
      f"(expected {n * 100} with echo both ways); switch CPU {100 * cpu / wall:.1f} % of a core, "
      f"{100 * cpu / wall / n:.3f} % per bridged call")
PY
