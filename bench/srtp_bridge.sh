#!/usr/bin/env bash
# Bridged customer<->agent calls through the whole switch with SRTP (SDES,
# AES_CM_128_HMAC_SHA1_80, RFC 4568) on both legs, against the same N calls
# with plain RTP: the switch's CPU per bridged call for each.
#
#   bench/srtp_bridge.sh [N]      default 20 bridged calls
#
# Debian's SIPp has no SRTP, so the phones are baresip (package
# `baresip-core`, its `srtp` module: libre's SRTP, independent of ours):
# - N agents (agent0000.., skill billing) log in through the contact point
#   with SIPp (key 1, plain RTP: the trunk's policy is "optional").
# - One baresip answers for every agent's phone behind the trunk (one
#   account per agent number, auto-answer); one baresip places the N customer
#   calls to the Billing line (accept_digit = "": bridged on answer).
# - SRTP run: customers offer RTP/SAVP (`mediaenc srtp-mand`), agents'
#   phones answer the switch's a=crypto offer (`mediaenc srtp`); plain run:
#   the same phones without media encryption. Both send a 20 ms PCMU sine.
# - With all N bridged: the switch's CPU (utime + stime, /proc/PID/stat)
#   and its packet counters (/metrics) over 10 s.
#
# Each run first prints the bare cost of one loopback `sendto` of 172 bytes,
# measured in the same run. The switch runs on CPU ${CPUS_SWITCH:-1}; SIPp
# and baresip on CPU ${CPUS_LOAD:-0}. The two baresips take about 1.2 % of a
# core per call: above ~80 calls give them both cores (CPUS_LOAD=0,1).
# Loopback only; every wait is bounded; only the processes this script
# starts are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
PORT=${PORT:-6090}
TRUNK=$((PORT + 1))
CPUS_SWITCH=${CPUS_SWITCH:-1}
CPUS_LOAD=${CPUS_LOAD:-0}
RATE=${RATE:-10}
WINDOW=${WINDOW:-10}
work=$(mktemp -d)
SWITCH_PID=
AGENTS_PID=
CUST_PID=
stop_all() {
  for p in $CUST_PID $AGENTS_PID $SWITCH_PID; do kill "$p" 2>/dev/null || true; done
  # baresip hangs every call up before it exits: give it a few seconds.
  for _ in $(seq 50); do
    local alive=
    for p in $CUST_PID $AGENTS_PID $SWITCH_PID; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $CUST_PID $AGENTS_PID $SWITCH_PID; do kill -9 "$p" 2>/dev/null || true; done
  CUST_PID= AGENTS_PID= SWITCH_PID=
}
trap 'stop_all; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
command -v baresip >/dev/null || { apt-get update -qq && apt-get install -y -qq baresip-core; }
. bench/lib.sh
BILLING=+15550100001

# baresip_dir DIR SIP_PORT RTP_BASE CONS_PORT TONE_HZ ACCOUNTS_FILE
baresip_dir() {
  mkdir -p "$1"
  cat > "$1/config" <<EOF
poll_method epoll
sip_listen 127.0.0.1:$2
net_interface 127.0.0.1
audio_player aubridge,nowhere
audio_source ausine,$5
ausrc_srate 48000
ausrc_channels 2
auplay_srate 48000
rtp_ports $3-$(( $3 + 1999 ))
call_max_calls $(( N + 10 ))
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aubridge.so
module srtp.so
module menu.so
module account.so
module cons.so
cons_listen 127.0.0.1:$4
EOF
  cp "$6" "$1/accounts"
}

# run MODE (rtp|srtp): one switch, N log-ins, N bridged calls, one window.
run() {
  local mode=$1 dir="$work/$1" agent_enc="" cust_enc=""
  [ "$mode" = srtp ] && agent_enc=";mediaenc=srtp" cust_enc=";mediaenc=srtp-mand"
  mkdir -p "$dir"
  bench_config "$PORT" "$dir"
  python3 - "$dir" "$N" "$TRUNK" "$agent_enc" "$cust_enc" <<'PY'
import sys
d, n, trunk, agent_enc, cust_enc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
path = f"{d}/tpswitch.toml"
s = open(path).read()
def sub(old, new):
    global s
    assert old in s, old
    s = s.replace(old, new, 1)
sub('outbound_proxy = "sip:127.0.0.1:5080"', f'outbound_proxy = "sip:127.0.0.1:{trunk}"')
sub('max_calls = 100 ', f'max_calls = {n + 50} ')
sub('accept_digit = "1"', 'accept_digit = ""')
sub('no_agents = "immediate"', 'no_agents = "wait"')
sub('wrap_up = "10s"', 'wrap_up = "1s"')
sub('srtp = "off"', 'srtp = "optional"')
users = "".join(
    f'\n[[users]]\nid = "agent{k:04d}"\nname = "Agent {k}"\nskills = ["billing"]\n'
    f'  [[users.extensions]]\n  type = "pstn"\n  value = "+1555300{k:04d}"\n  ext = ""\n'
    for k in range(n)
)
i = s.index("[[flows]]")
s = s[:i] + users + "\n" + s[i:]
open(path, "w").write(s)
with open(f"{d}/agents.csv", "w") as f:
    f.write("SEQUENTIAL\n" + "".join(f"+1555300{k:04d}\n" for k in range(n)))
# baresip looks the request-URI's user up among its accounts: one per agent.
with open(f"{d}/agent_accounts", "w") as f:
    for k in range(n):
        f.write(f"<sip:+1555300{k:04d}@127.0.0.1>;regint=0;answermode=auto{agent_enc};audio_codecs=PCMU\n")
with open(f"{d}/customer_accounts", "w") as f:
    f.write(f"<sip:+19990000000@127.0.0.1>;regint=0{cust_enc};audio_codecs=PCMU\n")
login = open("tests/sipp/login.xml").read().replace("@CALLER@", "[field0]")
login = login.replace("@STEPS@",
    '  <pause milliseconds="500"/>\n'
    '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_1.pcap"/></action></nop>\n')
login = login.replace("@END@", open("tests/sipp/login_end_bye.inc").read())
open(f"{d}/login.xml", "w").write(login)
PY
  SWITCH_LOG="warn,tpswitch::call::queue=info" start_switch "$dir" "$CPUS_SWITCH"
  local http
  http=$(sed -n 's/^tpswitch listening http=//p' "$dir/switch.out")
  metric() { curl -s "http://$http/metrics" | awk -v m="tpswitch_$1" '$1 == m {print $2}'; }
  echo "[$mode] logging in $N agents..."
  (cd "$dir" && taskset -c "$CPUS_LOAD" sipp -sf login.xml -inf agents.csv -s +15550100000 "127.0.0.1:$PORT" \
    -i 127.0.0.1 -p $((PORT + 2)) -mp 43000 -r 50 -m "$N" -timeout 120s -nostdin > login.out 2>&1 || true)
  grep -E "Successful call|Failed call" "$dir/login.out" | tail -2
  baresip_dir "$dir/agent_phones" "$TRUNK" 30000 $((PORT + 10)) 1200 "$dir/agent_accounts"
  baresip_dir "$dir/customers" $((PORT + 4)) 34000 $((PORT + 11)) 440 "$dir/customer_accounts"
  taskset -c "$CPUS_LOAD" baresip -f "$dir/agent_phones" -t 600 > "$dir/agent_phones.log" 2>&1 &
  AGENTS_PID=$!
  taskset -c "$CPUS_LOAD" baresip -f "$dir/customers" -t 600 > "$dir/customers.log" 2>&1 &
  CUST_PID=$!
  for _ in $(seq 100); do
    grep -aq "baresip is ready" "$dir/agent_phones.log" && grep -aq "baresip is ready" "$dir/customers.log" && break
    sleep 0.1
  done
  # The switch's own cost with the agents online and no call: subtracted
  # below, so the per-call figure is what the calls add.
  local idle0 idle1 it0 it1
  idle0=$(awk '{print $14 + $15}' "/proc/$SWITCH_PID/stat"); it0=$(date +%s.%N)
  sleep "$WINDOW"
  idle1=$(awk '{print $14 + $15}' "/proc/$SWITCH_PID/stat"); it1=$(date +%s.%N)
  echo "[$mode] $N customers call Billing at $RATE calls/s..."
  python3 - "$N" "$RATE" "$BILLING" "$PORT" $((PORT + 11)) <<'PY'
import socket, sys, time
n, rate, billing, port, cons = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(n):
    # cons runs a long command when it ends with a newline.
    s.sendto(f"/dial sip:{billing}@127.0.0.1:{port}\n".encode(), ("127.0.0.1", cons))
    time.sleep(1 / rate)
PY
  local bridged=0
  for _ in $(seq 600); do
    bridged=$(grep -c "bridged" "$dir/switch.err" || true)
    [ "$bridged" -ge "$N" ] && break
    sleep 0.1
  done
  sleep 3
  local srtp_agents srtp_customers
  srtp_agents=$(grep -ac "SRTP is Enabled" "$dir/agent_phones.log" || true)
  srtp_customers=$(grep -ac "SRTP is Enabled" "$dir/customers.log" || true)
  local stat0 stat1 cpu0 cpu1 load0 load1 rel0 rel1 rcv0 rcv1 bad0 bad1 t0 t1
  stat0=$(grep -E "^cpu[0-9]" /proc/stat | tr '\n' ';')
  cpu0=$(awk '{print $14, $15}' "/proc/$SWITCH_PID/stat")
  load0=$(cat "/proc/$AGENTS_PID/stat" "/proc/$CUST_PID/stat" | awk '{s += $14 + $15} END {print s}')
  rel0=$(metric rtp_relayed_total); rcv0=$(metric rtp_received_total); bad0=$(metric rtp_malformed_total)
  t0=$(date +%s.%N)
  sleep "$WINDOW"
  cpu1=$(awk '{print $14, $15}' "/proc/$SWITCH_PID/stat")
  load1=$(cat "/proc/$AGENTS_PID/stat" "/proc/$CUST_PID/stat" | awk '{s += $14 + $15} END {print s}')
  rel1=$(metric rtp_relayed_total); rcv1=$(metric rtp_received_total); bad1=$(metric rtp_malformed_total)
  t1=$(date +%s.%N)
  stat1=$(grep -E "^cpu[0-9]" /proc/stat | tr '\n' ';')
  python3 - "$mode" "$N" "$bridged" "$srtp_customers" "$srtp_agents" "$cpu0" "$cpu1" "${rel0:-0}" "${rel1:-0}" \
    "${rcv0:-0}" "${rcv1:-0}" "${bad0:-0}" "${bad1:-0}" "$t0" "$t1" "$stat0" "$stat1" \
    "$idle0" "$idle1" "$it0" "$it1" "$load0" "$load1" <<'PY' | tee -a "$work/summary"
import sys, os
(mode, n, bridged, sc, sa, c0, c1, r0, r1, v0, v1, b0, b1, t0, t1, st0, st1,
 i0, i1, it0, it1, l0, l1) = sys.argv[1:]
n = int(n); wall = float(t1) - float(t0)
hz = os.sysconf("SC_CLK_TCK")
(u0, s0), (u1, s1) = (map(int, c.split()) for c in (c0, c1))
user, system = (u1 - u0) / hz, (s1 - s0) / hz
cpu = user + system
rel = (float(r1) - float(r0)) / wall
rcv = (float(v1) - float(v0)) / wall
idle = (int(i1) - int(i0)) / hz / (float(it1) - float(it0))
added = cpu / wall - idle
load = (int(l1) - int(l0)) / hz / wall
def cpus(text):
    return {f[0]: list(map(int, f[1:])) for f in (l.split() for l in text.split(";") if l)}
a, b = cpus(st0), cpus(st1)
busy = []
for name in sorted(b):
    d = [y - x for x, y in zip(a[name], b[name])]
    busy.append(f"{name} {100 * (sum(d) - d[3] - d[4]) / max(sum(d), 1):.0f} %")
print(f"[{mode}] {n} customers, {bridged} bridged when sampled; SRTP enabled on {sc} customer and {sa} agent "
      f"phone streams; {wall:.1f} s window: received {rcv:.0f}/s, relayed {rel:.0f}/s (expected {n * 100}), "
      f"malformed {float(b1) - float(b0):.0f}; switch CPU {100 * cpu / wall:.1f} % of a core "
      f"(user {100 * user / wall:.1f} + system {100 * system / wall:.1f}), "
      f"{100 * cpu / wall / n:.3f} % per bridged call; with no call {100 * idle:.1f} %, so the calls add "
      f"{100 * added:.1f} %: {100 * added / n:.3f} % per bridged call ({1e6 * added / n:.0f} us per "
      f"call-second, {1e6 * added / max(rel, 1):.1f} us per relayed packet); both baresips "
      f"{100 * load:.1f} % of a core; busy: " + ", ".join(busy))
PY
  stop_all
  sleep 2
}

# The machine's bare cost of one loopback sendto of 172 bytes (an SRTP PCMU
# packet), in this run, for comparing machines and runs.
bare_loopback 172 send | tee "$work/summary"
run rtp
run srtp
echo "--- summary"
cat "$work/summary"
