# Shared by the bench/ scripts (sourced, not run): build the release binary
# and write a load-test configuration for it.
#
#   bench_config PORT WORKDIR   -> WORKDIR/tpswitch.toml: SIP on 127.0.0.1:PORT,
#                                  HTTP on an ephemeral port, no call limit,
#                                  store and prompts resolved for WORKDIR.
bench_config() {
  local port=$1 work=$2
  cargo build --release --quiet
  sed -e "s|bind = \"0.0.0.0:5060\"|bind = \"127.0.0.1:$port\"|" \
      -e "s|bind = \"127.0.0.1:8080\"|bind = \"127.0.0.1:0\"|" \
      -e "s|max_calls = 2000|max_calls = 100000|" \
      -e "s|rtp_timeout = \"30s\"|rtp_timeout = \"300s\"|" \
      -e "s|path = \"../data/tpswitch.db\"|path = \"$work/tpswitch.db\"|" \
      -e "s|\"../prompts/|\"$PWD/prompts/|" \
      config/tpswitch.toml > "$work/tpswitch.toml"
}

# start_switch WORKDIR [taskset cpu list] -> sets SWITCH_PID, waits until listening.
# SWITCH_LOG (default warn) is the switch's log filter; its stderr goes to
# WORKDIR/switch.err.
start_switch() {
  local work=$1 cpus=${2:-}
  if [ -n "$cpus" ]; then
    TPSWITCH_LOG=${SWITCH_LOG:-warn} taskset -c "$cpus" target/release/tpswitch run --config "$work/tpswitch.toml" \
      > "$work/switch.out" 2> "$work/switch.err" &
  else
    TPSWITCH_LOG=${SWITCH_LOG:-warn} target/release/tpswitch run --config "$work/tpswitch.toml" \
      > "$work/switch.out" 2> "$work/switch.err" &
  fi
  SWITCH_PID=$!
  for _ in $(seq 100); do grep -q "tpswitch listening sip" "$work/switch.out" 2>/dev/null && break; sleep 0.1; done
}
