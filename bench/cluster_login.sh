#!/usr/bin/env bash
# Log-in calls per second on one or two nodes sharing one PostgreSQL store
# (docs/scaling.md): SIPp calls the timed-presence contact point from 500
# agents' numbers in turn, presses 1 during Welcome; the node writes the
# window (PostgreSQL, fsync on), plays Online and hangs up.
#
#   bench/cluster_login.sh NODES [RATE] [CALLS]   NODES 1 or 2; defaults 100 calls/s, 3000 calls
#   FRONT=kamailio bench/cluster_login.sh 2 ...   through Kamailio (deploy/kamailio/front.cfg)
#                                                 instead of one SIPp per node
#
# Everything shares this machine's cores: PostgreSQL, the nodes, SIPp (and
# Kamailio). Stops by itself (-m, -timeout); stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${1:?usage: bench/cluster_login.sh NODES [RATE] [CALLS]}
RATE=${2:-100}
CALLS=${3:-3000}
FRONT=${FRONT:-}
BASE=${PORT:-6100}
work=$(mktemp -d)
pids=()
pg_dir=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$pg_dir" ] && scripts/pg-test-cluster stop "$pg_dir"
  if [ -n "${KEEP:-}" ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

. bench/lib.sh
cargo build --release --quiet
eval "$(PG_FSYNC=on scripts/pg-test-cluster start)"
pg_dir=$TPSWITCH_TEST_POSTGRES_DIR
url=$TPSWITCH_TEST_POSTGRES

# 500 agents, one number each, appended to the default configuration.
python3 - "$work/users.toml" "$work/callers.csv" <<'PY'
import sys
users, csv = open(sys.argv[1], "w"), open(sys.argv[2], "w")
csv.write("SEQUENTIAL\n")
for i in range(500):
    n = f"+1555030{i:04d}"
    users.write(f'\n[[users]]\nid = "bench{i}"\nname = "Bench {i}"\n'
                f'  [[users.extensions]]\n  type = "pstn"\n  value = "{n}"\n')
    csv.write(f"{n};\n")
PY

for n in $(seq "$NODES"); do
  port=$((BASE + 10 * n))
  mkdir -p "$work/n$n"
  sed -e "s|bind = \"0.0.0.0:5060\"|bind = \"127.0.0.1:$port\"|" \
      -e "s|bind = \"127.0.0.1:8080\"|bind = \"127.0.0.1:0\"|" \
      -e "s|max_calls = 2000|max_calls = 100000|" \
      -e "s|rtp_timeout = \"30s\"|rtp_timeout = \"300s\"|" \
      -e "s|rtp_ports = \"20000-29999\"|rtp_ports = \"$((20000 + 4000 * n))-$((23999 + 4000 * n))\"|" \
      -e "s|# url = \"postgres://tpswitch@127.0.0.1:5432/tpswitch\"|url = \"$url\"\nnode = \"n$n\"|" \
      -e "s|\"../prompts/|\"$PWD/prompts/|" \
      config/tpswitch.toml > "$work/n$n/tpswitch.toml"
  cat "$work/users.toml" >> "$work/n$n/tpswitch.toml"
  TPSWITCH_LOG=${SWITCH_LOG:-warn} target/release/tpswitch run --config "$work/n$n/tpswitch.toml" \
    > "$work/n$n/out" 2> "$work/n$n/err" &
  pids+=($!)
  for _ in $(seq 200); do grep -q "tpswitch listening sip" "$work/n$n/out" 2>/dev/null && break; sleep 0.1; done
  grep -q "tpswitch listening sip" "$work/n$n/out" || { cat "$work/n$n/err"; exit 1; }
done

login_xml "[field0]" "$work/login.xml"

targets=()
if [ "$FRONT" = kamailio ]; then
  # Through a record-routing proxy the ACK of the 2xx follows the route
  # set to the node's Contact (RFC 3261 §13.2.2.4, §12.2.1.1).
  sed -i -e 's|<recv response="200" rtd="true"/>|<recv response="200" rtd="true" rrs="true"/>|' \
      -e 's|ACK sip:\[service\]@\[remote_ip\]:\[remote_port\] SIP/2.0|ACK [next_url] SIP/2.0\n      [routes]|' \
      "$work/login.xml"

  # deploy/kamailio/front.cfg as shipped, beside a front-local.cfg for
  # this machine: the carrier side on BASE+500, the nodes' side on BASE+501.
  fport=$((BASE + 500)); nport=$((BASE + 501))
  mkdir -p "$work/front"
  cp deploy/kamailio/front.cfg "$work/front/"
  : > "$work/front/nodes.list"
  for n in $(seq "$NODES"); do
    echo "1 sip:127.0.0.1:$((BASE + 10 * n)) 8 0 name=n$n" >> "$work/front/nodes.list"
  done
  cat > "$work/front/front-local.cfg" <<CFG
listen=udp:127.0.0.1:$fport name "carrier"
listen=tcp:127.0.0.1:$fport name "carrier_tcp"
listen=udp:127.0.0.1:$nport name "nodes"
listen=tcp:127.0.0.1:$nport name "nodes_tcp"
#!define FRONT_CARRIER "sip:127.0.0.1:9"
#!define FRONT_DISPATCHER_LIST "$work/front/nodes.list"
#!define FRONT_PING_INTERVAL 2
#!define FRONT_NO_ANSWER_MS 3000
#!define FRONT_CTL "unix:$work/front/ctl"
CFG
  /usr/sbin/kamailio -f "$work/front/front.cfg" -DD -E -m 64 -M 8 -Y "$work/front" \
    > "$work/front/log" 2>&1 &
  pids+=($!)
  # Until every node has answered a probe (AP in dispatcher.list).
  for _ in $(seq 100); do
    up=$(kamcmd -s "unix:$work/front/ctl" dispatcher.list 2>/dev/null | grep -c "FLAGS: AP" || true)
    [ "$up" -ge "$NODES" ] && break
    sleep 0.2
  done
  targets=("127.0.0.1:$fport")
  per_rate=$RATE; per_calls=$CALLS
else
  for n in $(seq "$NODES"); do targets+=("127.0.0.1:$((BASE + 10 * n))"); done
  per_rate=$(python3 -c "print($RATE / $NODES)"); per_calls=$((CALLS / NODES))
fi

cd "$work"
start=$(date +%s.%N)
i=0; sipps=()
for t in "${targets[@]}"; do
  i=$((i + 1))
  sipp -sf login.xml -inf callers.csv -s +15550100000 "$t" -i 127.0.0.1 -p $((BASE + 1000 + i)) \
    -mp $((42000 + 2000 * i)) -r "$per_rate" -m "$per_calls" -l 5000 -timeout 300s -nostdin \
    -max_socket 1000 > "sipp$i.out" 2>&1 &
  sipps+=($!)
done
for p in "${sipps[@]}"; do wait "$p" || true; done
end=$(date +%s.%N)
ok=0; failed=0
for f in sipp*.out; do
  ok=$((ok + $(grep -E "Successful call" "$f" | tail -1 | awk '{print $(NF)}')))
  failed=$((failed + $(grep -E "Failed call" "$f" | tail -1 | awk '{print $(NF)}')))
done
wall=$(python3 -c "print(round($end - $start, 1))")
echo "nodes: $NODES${FRONT:+ through $FRONT}; offered $RATE calls/s, $CALLS calls"
echo "successful: $ok, failed: $failed, wall: $wall s, completed: $(python3 -c "print(round($ok / ($end - $start), 1))") calls/s"
# CPU from /proc/PID/stat (utime + stime, clock ticks), per call placed.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
for i in "${!pids[@]}"; do
  name="node n$((i + 1))"; ms=$(cpu_ms "${pids[$i]}")
  if [ "$i" -ge "$NODES" ]; then
    # Kamailio works in the children it forks: add theirs.
    name="kamailio (all its processes)"
    for c in $(pgrep -P "${pids[$i]}"); do ms=$(python3 -c "print($ms + $(cpu_ms "$c"))"); done
  fi
  echo "$name CPU: $ms ms, $(python3 -c "print(round($ms / $CALLS, 3))") ms per call"
done
echo "log-ins stored: $(psql "$url" -Atc 'select count(*) from login_calls' 2>/dev/null || echo '?')"
cd - >/dev/null
bare_loopback 200 sendrecv
