#!/usr/bin/env python3
"""kill -9 of the switch at random points during log-ins under load, N rounds
(run through bench/kill9_rounds.sh; the default `cargo test` runs 5 rounds
from tests/faults.rs).

Each round SIPp logs agents in (k0001..k0100, each its own number, key 1 =
8 hours) at RATE calls/s; after a random 0.3..MAX_DELAY s the switch gets
SIGKILL, SIPp is stopped, and the switch is started again on the same store.
After every restart:
  - every window the killed switch logged "online" for (the line it writes
    once the window is durable, just before the Online prompt plays) is in
    the store, as `tpswitch agents --json` reads it, ending no earlier than
    logged (a later log-in may have replaced it; never an older one);
  - PRAGMA integrity_check says ok;
  - "presence service recovered armed=N" names as many timers as the store
    has open windows (expiry re-armed for each one);
  - /readyz answers 200.
Exit 0 when every round passes; 1 naming the round and the check otherwise
(the work folder is kept then).

Environment: TPSWITCH_BIN (the binary), PORT (SIP port, default 5990),
SIPP_PORT (default PORT+1), MEDIA_PORT (SIPp's -mp, default 42200), AGENTS (100),
RATE (30), MIN_DELAY (0.3 s), MAX_DELAY (4.0 s), SEED (random), SABOTAGE=1 (moves one logged
window's end back a minute in the store before the first restart: the run
must then fail; proves the checker can).
"""

import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

TOLERANCE = timedelta(seconds=1)  # the CLI shows whole seconds, the log milliseconds


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    binary = os.environ.get("TPSWITCH_BIN", os.path.join(fl.REPO, "target/release/tpswitch"))
    port = int(os.environ.get("PORT", "5990"))
    sipp_port = int(os.environ.get("SIPP_PORT", str(port + 1)))
    media_port = int(os.environ.get("MEDIA_PORT", "42200"))
    n_agents = int(os.environ.get("AGENTS", "100"))
    rate = float(os.environ.get("RATE", "30"))
    min_delay = float(os.environ.get("MIN_DELAY", "0.3"))
    max_delay = float(os.environ.get("MAX_DELAY", "4.0"))
    seed = int(os.environ.get("SEED", str(random.randrange(1 << 31))))
    sabotage = os.environ.get("SABOTAGE") == "1"
    rng = random.Random(seed)
    # The switch's RTP ports, apart from the other scripts' (faultlib.write_config).
    os.environ.setdefault("RTP_PORTS", "7000-7998")
    work = tempfile.mkdtemp(prefix="kill9-")
    print(f"kill9: {rounds} rounds, {n_agents} agents, {rate:g} calls/s, kill after {min_delay:g}..{max_delay:g} s, "
          f"seed {seed}, work {work}", flush=True)
    config = fl.write_config(work, port, n_agents)
    db = os.path.join(work, "tpswitch.db")
    scenario = fl.login_scenario(work, "1")
    expected = {}  # agent -> latest end the switch logged as durable
    confirmed = 0
    started = time.monotonic()

    def check(sw, r):
        """The store after restart `r` against what the killed switch confirmed."""
        log = sw.await_log(r"presence service recovered armed=\d+").group(0)
        armed = int(log.rsplit("=", 1)[1])
        rows = fl.agents(binary, config)
        online = {a["id"]: fl.parse_rfc3339(a["window"]["end"]) for a in rows if a["state"] == "online"}
        for agent, end in sorted(expected.items()):
            have = online.get(agent)
            if have is None:
                return f"{agent}'s window ending {end} was confirmed, and is not in the store"
            if have + TOLERANCE < end:
                return f"{agent}'s window was confirmed to end {end}; the store has an older one ending {have}"
        if armed != len(online):
            return f"armed={armed} expiry timers, but {len(online)} open windows in the store"
        ok = fl.integrity(db)
        if ok != "ok":
            return f"PRAGMA integrity_check: {ok}"
        status, body = sw.readyz()
        if status != 200:
            return f"/readyz answered {status}: {body}"
        return None

    def fail(r, why):
        print(f"kill9: FAILED after round {r}: {why}\n  (seed {seed}; work folder kept: {work})", flush=True)
        sys.exit(1)

    sw = fl.Switch(binary, config, work, log_name="round-000.log")
    why = check(sw, 0)
    if why:
        fail(0, why)
    for r in range(1, rounds + 1):
        inf = fl.injection_file(work, n_agents, rng)
        load = fl.sipp(scenario, sw.sip, work, calls=int(rate * (max_delay + 30)), rate=rate, limit_s=60,
                       local_port=sipp_port, media_port=media_port, inf=inf, tag="sipp")
        delay = rng.uniform(min_delay, max_delay)
        time.sleep(delay)
        sw.kill9()
        fl.stop(load)
        lines = fl.online_lines(sw.log())
        for _, agent, end in lines:
            if agent not in expected or end > expected[agent]:
                expected[agent] = end
        confirmed += len(lines)
        if sabotage and r == 1 and lines:
            _, agent, _ = lines[-1]
            con = sqlite3.connect(db)
            con.execute("UPDATE presence_current SET window_end_ms = window_end_ms - 60000 WHERE user_id = ?",
                        (agent,))
            con.commit()
            con.close()
        sw = fl.Switch(binary, config, work, log_name=f"round-{r:03d}.log")
        why = check(sw, r)
        if why:
            sw.kill9()
            fail(r, why)
        print(f"round {r}: killed {delay:.2f} s into the load, {len(lines)} windows confirmed then; "
              f"after restart {len(expected)} agents' windows checked, armed ok, integrity ok, ready",
              flush=True)
    sw.terminate()
    print(f"kill9: {rounds} rounds ok, {confirmed} windows confirmed in all, each there after its restart "
          f"({time.monotonic() - started:.0f} s)", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    fl.run_main(main)
