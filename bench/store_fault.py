#!/usr/bin/env python3
"""A store that cannot write, over and over during log-in load (run through
bench/store_fault.sh; the default `cargo test` runs 3 cycles from
tests/faults.rs).

How the fault is made, as root: the switch runs in its own mount namespace
(`unshare -m`) with its store folder on a small tmpfs of its own; the script
fills that tmpfs through /proc/PID/root (the switch's view of the file
system) until ENOSPC, and deletes the filler to end the fault. As root,
chmod does not stop writes (root ignores file modes), a read-only remount is
refused while SQLite holds the file open for writing (EBUSY), and
`chattr +i` does not apply on tmpfs; a full file system stops root too and
is what happens in production. The mount lives and dies with the switch:
nothing is left mounted on the machine.

SIPp logs agents in (AGENTS of them, key 1 = 8 hours) at RATE calls/s for
the whole run. Each cycle: writes work for OK_S seconds; the tmpfs is
filled and kept full until /readyz says not ready with the store check
failing (at most 60 s: while the WAL has room already allocated a write
may still fit), then FAULT_S seconds more; the filler is deleted and
/readyz must be ready again within 30 s, with no restart.

Checked from the switch's log and its store at the end:
  - no call both logged "online" (the window durable, the Online prompt
    next) and failed its write; every call whose presence write failed
    ended with outcome "store failed", which plays the error prompt
    (flows::timed_presence::tests::store_failure_is_never_confirmed proves
    that outcome's prompt);
  - per fault: one "the store cannot write" line (two when the disk
    flapped), at most one "still cannot write" line per 10 s of fault, one
    "the store takes writes again" per "cannot write"; never a per-call
    warning for a write the store refused;
  - every window logged online is in the store at the end
    (`tpswitch agents --json`, run inside the switch's namespace);
  - PRAGMA integrity_check is ok; SIPp saw at most 2 % of calls fail.

Environment: TPSWITCH_BIN, PORT (SIP, default 5970), SIPP_PORT (PORT+1),
MEDIA_PORT (42400), AGENTS (40), RATE (15), OK_S (3), FAULT_S (3), SEED.
"""

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

# The call shell's per-call lines about a failed write are at debug level
# (the store reports a lasting failure itself); they tell which calls met it.
LOG_LEVEL = "info,tpswitch::call::login=debug"


def fill(folder):
    """Writes zeros into `folder`/filler until the file system is full."""
    block = b"\0" * 65536
    path = os.path.join(folder, "filler")
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError:
                break
        # A smaller tail: leave no whole page free either.
        for _ in range(64):
            try:
                f.write(block[:4096])
            except OSError:
                break
    return path


def main():
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    binary = os.environ.get("TPSWITCH_BIN", os.path.join(fl.REPO, "target/release/tpswitch"))
    port = int(os.environ.get("PORT", "5970"))
    sipp_port = int(os.environ.get("SIPP_PORT", str(port + 1)))
    media_port = int(os.environ.get("MEDIA_PORT", "42400"))
    n_agents = int(os.environ.get("AGENTS", "40"))
    rate = float(os.environ.get("RATE", "15"))
    ok_s = float(os.environ.get("OK_S", "3"))
    fault_s = float(os.environ.get("FAULT_S", "3"))
    seed = int(os.environ.get("SEED", str(random.randrange(1 << 31))))
    rng = random.Random(seed)
    # The switch's RTP ports, apart from the other scripts' (faultlib.write_config).
    os.environ.setdefault("RTP_PORTS", "8000-8998")
    if os.geteuid() != 0:
        print("store_fault: needs root (a tmpfs mounted in a private mount namespace); "
              "run it as root, as CI does", flush=True)
        sys.exit(2)
    work = tempfile.mkdtemp(prefix="store-fault-")
    print(f"store_fault: {cycles} faults, {n_agents} agents, {rate:g} calls/s, seed {seed}, work {work}",
          flush=True)
    store_dir = os.path.join(work, "store")
    os.mkdir(store_dir)
    config = fl.write_config(work, port, n_agents, store_dir=store_dir)
    scenario = fl.login_scenario(work, "1")
    inf = fl.injection_file(work, n_agents, rng)
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o size=64m tpswitch-store "$0" && exec "$@"', store_dir]
    failures = []

    def fail(why):
        failures.append(why)
        print(f"store_fault: FAILED: {why}", flush=True)

    sw = fl.Switch(binary, config, work, level=LOG_LEVEL, wrap=wrap)
    seen = os.path.join(f"/proc/{sw.pid}/root", store_dir.lstrip("/"))
    if not os.path.exists(os.path.join(seen, "tpswitch.db")):
        sw.kill9()
        print(f"store_fault: the store is not where expected inside the switch's namespace ({seen})")
        sys.exit(1)
    total_s = cycles * (ok_s + fault_s + 40) + 30
    load = fl.sipp(scenario, sw.sip, work, calls=int(rate * total_s), rate=rate, limit_s=int(total_s) + 60,
                   local_port=sipp_port, media_port=media_port, inf=inf, tag="sipp")
    start = time.monotonic()
    fault_time = 0.0
    for c in range(1, cycles + 1):
        time.sleep(ok_s)
        t0 = time.monotonic()
        filler = fill(seen)
        # Until /readyz says the store cannot take a write (bounded).
        status, body = sw.readyz()
        end = time.monotonic() + 60
        while not (status == 503 and '"name":"store","ok":false' in body) and time.monotonic() < end:
            time.sleep(0.2)
            status, body = sw.readyz()
        if status != 503:
            fail(f"fault {c}: /readyz still {status} after 60 s on a full store: {body}")
        not_ready_after = time.monotonic() - t0
        time.sleep(fault_s)
        os.remove(filler)
        fault_time += time.monotonic() - t0
        t1 = time.monotonic()
        status, body = sw.readyz()
        end = time.monotonic() + 30
        while status != 200 and time.monotonic() < end:
            time.sleep(0.2)
            status, body = sw.readyz()
        if status != 200:
            fail(f"fault {c}: /readyz {status} 30 s after space was freed: {body}")
        print(f"fault {c}: not ready {not_ready_after:.1f} s after the disk filled, "
              f"ready again {time.monotonic() - t1:.1f} s after it was freed", flush=True)
    # Stop placing calls; let those in progress end (SIGUSR1 = SIPp's "q").
    load.send_signal(10)
    try:
        load.wait(60)
    except subprocess.TimeoutExpired:
        fl.stop(load)
    time.sleep(0.5)
    rows = subprocess.run(["nsenter", "-t", str(sw.pid), "-m", "--", binary, "agents", "--json",
                           "--config", config], capture_output=True, text=True, timeout=60)
    ok = fl.integrity(os.path.join(store_dir, "tpswitch.db"), namespace_of=sw.pid)
    sw.terminate()
    log = sw.log()

    # ---- the calls
    calls = {}
    for line in log.splitlines():
        m = fl.SPAN_CALL.search(line)
        if not m:
            continue
        c = calls.setdefault(m.group(1), {"online": False, "write_failed": False, "outcome": None})
        if fl.ONLINE.search(line):
            c["online"] = True
        elif "presence write failed" in line:
            c["write_failed"] = True
        o = re.search(r"(?:log-in finished: hanging up|caller hung up).* outcome=(.+)$", line)
        if o:
            c["outcome"] = o.group(1).strip()
    confirmed = sum(1 for c in calls.values() if c["online"])
    refused = sum(1 for c in calls.values() if c["write_failed"])
    for cid, c in calls.items():
        if c["online"] and c["write_failed"]:
            fail(f"call {cid}: logged online and a failed write")
        if c["write_failed"] and c["outcome"] != "store failed":
            fail(f"call {cid}: its write failed, outcome {c['outcome']!r} (not 'store failed')")
    if refused == 0:
        fail("no write failed: the fault proved nothing")
    # ---- the log, once per interval
    first = log.count("the store cannot write:")
    still = log.count("the store still cannot write")
    back = log.count("the store takes writes again")
    per_call = len(re.findall(r" WARN .*(presence write failed|cannot record the log-in call)", log))
    # A fault may begin with writes that still fit in WAL pages already
    # allocated, fail, fit again for over a second (src/presence/write_health.rs
    # SETTLE) and fail again: at most two reports then.
    if not cycles <= first <= 2 * cycles:
        fail(f"{first} 'the store cannot write' lines for {cycles} faults")
    if back != first:
        fail(f"{back} 'the store takes writes again' lines for {first} 'cannot write' ones")
    if still > fault_time / 10 + cycles:
        fail(f"{still} 'still cannot write' lines in {fault_time:.0f} s of faults: more than one per 10 s")
    if per_call:
        fail(f"{per_call} per-call warnings for writes the store refused")
    # ---- the store
    if rows.returncode != 0:
        fail(f"tpswitch agents: {rows.stderr}")
    else:
        import json
        online = {a["id"]: fl.parse_rfc3339(a["window"]["end"]) for a in json.loads(rows.stdout)
                  if a["state"] == "online"}
        latest = {}
        for _, agent, end in fl.online_lines(log):
            latest[agent] = max(end, latest.get(agent, end))
        for agent, end in sorted(latest.items()):
            if agent not in online or online[agent] + timedelta(seconds=1) < end:
                fail(f"{agent}'s window ending {end} was confirmed and the store has {online.get(agent)}")
    if ok != "ok":
        fail(f"PRAGMA integrity_check: {ok}")
    stats = open(os.path.join(work, "sipp.csv")).read().splitlines() if os.path.exists(
        os.path.join(work, "sipp.csv")) else []
    succ = failed = "?"
    if len(stats) >= 2:
        head, last = stats[0].split(";"), stats[-1].split(";")
        col = {name: i for i, name in enumerate(head)}
        succ = last[col["SuccessfulCall(C)"]]
        failed = last[col["FailedCall(C)"]]
        # A log-in whose key never arrives (SIPp on a loaded machine) ends
        # by time-out, not by the store: tolerated up to 2 %, and counted.
        if int(failed) * 50 > int(succ) + int(failed):
            fail(f"SIPp: {failed} calls failed ({succ} succeeded); see {work}/sipp.err")
    print(f"store_fault: {len(calls)} log-in calls over {time.monotonic() - start:.0f} s "
          f"(SIPp: {succ} ok, {failed} failed); {confirmed} confirmed online, {refused} refused with the "
          f"error prompt during {cycles} faults ({fault_time:.0f} s); log: {first} 'cannot write', "
          f"{still} 'still cannot write', {back} 'takes writes again'; integrity {ok}", flush=True)
    if failures:
        print(f"store_fault: {len(failures)} checks failed (seed {seed}; work folder kept: {work})")
        sys.exit(1)
    print("store_fault: ok")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    fl.run_main(main)
