# Shared by the bench/ scripts (sourced, not run): build the release binary
# and write a load-test configuration for it.
#
# TPSWITCH_BIN=path runs that binary instead of building target/release's
# (to compare two builds, e.g. one from a worktree of another commit).
SWITCH_BIN=${TPSWITCH_BIN:-target/release/tpswitch}
#
#   bench_config PORT WORKDIR   -> WORKDIR/tpswitch.toml: SIP on 127.0.0.1:PORT,
#                                  HTTP on an ephemeral port, no call limit,
#                                  store and prompts resolved for WORKDIR.
bench_config() {
  local port=$1 work=$2
  [ -n "${TPSWITCH_BIN:-}" ] || cargo build --release --quiet
  sed -e "s|bind = \"0.0.0.0:5060\"|bind = \"127.0.0.1:$port\"|" \
      -e "s|bind = \"127.0.0.1:8080\"|bind = \"127.0.0.1:0\"|" \
      -e "s|max_calls = 2000|max_calls = 100000|" \
      -e "s|rtp_timeout = \"30s\"|rtp_timeout = \"300s\"|" \
      -e "s|path = \"../data/tpswitch.db\"|path = \"$work/tpswitch.db\"|" \
      -e "s|\"../prompts/|\"$PWD/prompts/|" \
      config/tpswitch.toml > "$work/tpswitch.toml"
}

# login_xml CALLER OUT [PAUSE_MS]: the SIPp log-in scenario of tests/sipp/login.xml
# calling as CALLER (a number, or "[field0]" for an -inf file), pressing 1
# (an RFC 2833 capture) PAUSE_MS (default 300) into Welcome and waiting for the
# switch's BYE.
login_xml() {
  python3 - "$PWD/tests/sipp" "$1" "$2" "${3:-300}" <<'PY'
import sys
d, caller, out, pause = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = open(f"{d}/login.xml").read().replace("@CALLER@", caller)
steps = (f'  <pause milliseconds="{pause}"/>\n'
         '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_1.pcap"/></action></nop>\n')
s = s.replace("@STEPS@", steps).replace("@END@", open(f"{d}/login_end_bye.inc").read())
open(out, "w").write(s)
PY
}

# hold_xml OUT HOLD_MS: a known agent (jsmith) calls the contact point,
# listens to the log-in menu for HOLD_MS and hangs up.
hold_xml() {
  python3 - "$PWD/tests/sipp" "$1" "$2" <<'PY'
import sys
d, out, hold = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(f"{d}/login.xml").read()
s = s.replace("@CALLER@", "+12345678910").replace("@STEPS@", f'  <pause milliseconds="{hold}"/>')
s = s.replace("@END@", open(f"{d}/login_end_hangup.inc").read().replace("@CALLER@", "+12345678910"))
open(out, "w").write(s)
PY
}

# start_switch WORKDIR [taskset cpu list] -> sets SWITCH_PID, waits until listening.
# SWITCH_LOG (default warn) is the switch's log filter; its stderr goes to
# WORKDIR/switch.err.
start_switch() {
  local work=$1 cpus=${2:-}
  if [ -n "$cpus" ]; then
    TPSWITCH_LOG=${SWITCH_LOG:-warn} taskset -c "$cpus" "$SWITCH_BIN" run --config "$work/tpswitch.toml" \
      > "$work/switch.out" 2> "$work/switch.err" &
  else
    TPSWITCH_LOG=${SWITCH_LOG:-warn} "$SWITCH_BIN" run --config "$work/tpswitch.toml" \
      > "$work/switch.out" 2> "$work/switch.err" &
  fi
  SWITCH_PID=$!
  for _ in $(seq 100); do grep -q "tpswitch listening sip" "$work/switch.out" 2>/dev/null && break; sleep 0.1; done
}

# bare_loopback BYTES [send|sendrecv]: this machine's bare CPU cost, in this
# run, of one loopback `sendto` of BYTES ("send"), or of a `sendto` and the
# `recvfrom` that drains it ("sendrecv"), pinned to core 1 as the switch is.
# From Python, so the interpreter's call overhead is included: a ceiling on
# the syscalls' own cost, for comparing machines and runs.
bare_loopback() {
  taskset -c 1 python3 - "$1" "${2:-send}" <<'PY'
import socket, sys, time
size, mode = int(sys.argv[1]), sys.argv[2]
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0))
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf, dst, k = b"x" * size, r.getsockname(), 200000
t = time.process_time()
for _ in range(k):
    s.sendto(buf, dst)
    if mode == "sendrecv":
        r.recvfrom(65535)
what = "sendto" if mode == "send" else "sendto + recvfrom"
print(f"bare loopback {what} of {size} bytes (Python, includes the interpreter's call): "
      f"{1e6 * (time.process_time() - t) / k:.2f} us CPU each")
PY
}
