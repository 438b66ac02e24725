"""Shared by bench/kill9_rounds.py, bench/store_fault.py and bench/soak.py:
a load-test configuration with many agents, the switch started and stopped
by its PID, SIPp log-in scenarios, and readers for the switch's log and its
store. Standard library only (python3 on Debian has sqlite3 built in).
"""

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIPP = "/usr/bin/sipp"
CONTACT_POINT = "+15550100000"
QUEUE_NUMBER = "+15550100001"
# Every process these scripts start, so a failed run can stop them by PID.
STARTED = []


def agent_number(i):
    """PSTN number of generated agent i (1-based), +1 555 02x xxxx."""
    return "+1555020%04d" % i


def write_config(work, port, agents, trunk_port=5080, store_dir=None, edit=None):
    """config/tpswitch.toml for a load test: SIP on 127.0.0.1:port, HTTP on
    an ephemeral port, no call limit, store in `store_dir` (default: work),
    prompts from the checkout, and `agents` more users k0001.. each with
    its own number. Returns the config's path."""
    with open(os.path.join(REPO, "config/tpswitch.toml")) as f:
        text = f.read()
    store = os.path.join(store_dir or work, "tpswitch.db")

    def sub(old, new, count=1):
        nonlocal text
        if old not in text:
            raise SystemExit(f"config edit: {old!r} is not in config/tpswitch.toml any more")
        text = text.replace(old, new, count)

    sub('bind = "0.0.0.0:5060"', f'bind = "127.0.0.1:{port}"')
    sub('bind = "127.0.0.1:8080"', 'bind = "127.0.0.1:0"')
    sub("max_calls = 2000", "max_calls = 100000")
    sub('rtp_timeout = "30s"', 'rtp_timeout = "300s"')
    # Away from 20000-31999, where the integration tests' switches and the
    # other bench scripts take theirs: a port another switch just released
    # may still get that call's RTP, and the first source latches (seen as
    # log-ins that never heard their key while other tests ran).
    sub('rtp_ports = "20000-29999"', f'rtp_ports = "{os.environ.get("RTP_PORTS", "7000-9998")}"')
    sub('outbound_proxy = "sip:127.0.0.1:5080"', f'outbound_proxy = "sip:127.0.0.1:{trunk_port}"')
    sub('path = "../data/tpswitch.db"', f'path = "{store}"')
    sub('"../prompts/', f'"{REPO}/prompts/', -1)
    if edit:
        text = edit(text)
    users = []
    for i in range(1, agents + 1):
        users.append(
            f'\n[[users]]\nid = "k{i:04d}"\nname = "Agent {i}"\nskills = ["billing"]\n'
            f'  [[users.extensions]]\n  type = "pstn"\n  value = "{agent_number(i)}"\n'
        )
    path = os.path.join(work, "tpswitch.toml")
    with open(path, "w") as f:
        f.write(text + "".join(users))
    return path


def login_scenario(work, key="1", name="login.xml"):
    """SIPp log-in scenario: the caller from the injection file's field 0,
    key `key` 300 ms after the ACK, then wait for the switch's BYE."""
    d = os.path.join(REPO, "tests/sipp")
    with open(os.path.join(d, "login.xml")) as f:
        s = f.read()
    steps = (
        '  <pause milliseconds="300"/>\n'
        f'  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_{key}.pcap"/></action></nop>\n'
    )
    with open(os.path.join(d, "login_end_bye.inc")) as f:
        end = f.read()
    s = s.replace("@CALLER@", "[field0]").replace("@STEPS@", steps).replace("@END@", end)
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(s)
    return path


def injection_file(work, agents, rng=None):
    """SIPp's -inf file: the agents' numbers, read in order, shuffled by
    `rng` (SIPp's own RANDOM picks the same sequence in every run)."""
    numbers = [agent_number(i) for i in range(1, agents + 1)]
    if rng:
        rng.shuffle(numbers)
    path = os.path.join(work, "agents.csv")
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for n in numbers:
            f.write(n + ";\n")
    return path


class Switch:
    """`tpswitch run` on `config`; stdout and stderr to files in `work`
    (stderr, the log, to `log_name`)."""

    def __init__(self, binary, config, work, log_name="switch.log", level="info", preexec=None, wrap=None):
        self.work = work
        self.log_path = os.path.join(work, log_name)
        self.out_path = os.path.join(work, log_name + ".out")
        out = open(self.out_path, "w")
        err = open(self.log_path, "w")
        env = dict(os.environ, TPSWITCH_LOG=level)
        cmd = [binary, "run", "--config", config]
        if wrap:
            cmd = wrap + cmd
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        STARTED.append(self.proc)
        out.close()
        err.close()
        self.sip = self.http = None
        end = time.monotonic() + 60
        while time.monotonic() < end:
            text = self.stdout()
            m = re.search(r"tpswitch listening sip=(\S+)", text)
            h = re.search(r"tpswitch listening http=(\S+)", text)
            if m and h:
                self.sip, self.http = m.group(1), h.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"tpswitch did not start:\n{self.log()[-4000:]}")

    @property
    def pid(self):
        return self.proc.pid

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def await_log(self, pattern, limit=30):
        """The first match of the regex `pattern` in the log, waiting up to `limit` s."""
        end = time.monotonic() + limit
        while True:
            m = re.search(pattern, self.log())
            if m:
                return m
            if time.monotonic() > end:
                raise RuntimeError(f"no {pattern!r} in the switch log after {limit} s")
            time.sleep(0.05)

    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, limit=30):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(limit)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.proc.returncode

    def readyz(self):
        """(status, body) of GET /readyz."""
        try:
            with urllib.request.urlopen(f"http://{self.http}/readyz", timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def sipp(scenario, target, work, *, calls, rate, limit_s, local_port, media_port, inf=None, extra=(), tag="sipp",
         service=CONTACT_POINT):
    """Starts SIPp in the background (a UAC when `target` is given, else a
    UAS), bounded by -m and -timeout."""
    cmd = [SIPP, "-sf", scenario] + ([target, "-s", service] if target else []) + ["-i", "127.0.0.1",
           "-p", str(local_port), "-mp", str(media_port), "-m", str(calls), "-r", str(rate),
           "-l", str(max(calls, 1)), "-timeout", f"{limit_s}s", "-nostdin", "-max_socket", "1000",
           "-trace_stat", "-stf", os.path.join(work, f"{tag}.csv"), "-fd", "1",
           "-trace_err", "-error_file", os.path.join(work, f"{tag}.err")]
    if inf:
        cmd += ["-inf", inf]
    cmd += list(extra)
    out = open(os.path.join(work, f"{tag}.out"), "w")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work)
    STARTED.append(p)
    out.close()
    return p


def stop(proc):
    """Stops a child we started, by its PID."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()


# ---------------------------------------------------------------- the log

SPAN_CALL = re.compile(r"call\{call_id=(\S+)")
ONLINE = re.compile(r": online agent=(\S+) hours=(\d+) end=(\S+ \S+) UTC")


def parse_log_time(s):
    """The end a log line shows (chrono's Display: `2026-12-05 07:57:40.565`)."""
    base, _, frac = s.partition(".")
    t = datetime.strptime(base, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return t + timedelta(microseconds=int((frac + "000000")[:6])) if frac else t


def online_lines(log):
    """[(call_id, agent, end)] for every "online" line: a window the switch
    confirmed durable, logged just before the Online prompt plays."""
    out = []
    for line in log.splitlines():
        m = ONLINE.search(line)
        if not m:
            continue
        c = SPAN_CALL.search(line)
        out.append((c.group(1) if c else "", m.group(1), parse_log_time(m.group(3))))
    return out


def armed(log):
    m = re.search(r"presence service recovered armed=(\d+)", log)
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------- the store

def agents(binary, config):
    """`tpswitch agents --json`: the store as the switch's own CLI reads it."""
    out = subprocess.run([binary, "agents", "--json", "--config", config],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"tpswitch agents failed: {out.stderr}")
    return json.loads(out.stdout)


def parse_rfc3339(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def integrity(db, namespace_of=None):
    """PRAGMA integrity_check, read-only (the switch may hold the store
    open); inside the mount namespace of PID `namespace_of` when given."""
    if namespace_of:
        code = ("import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True,timeout=30); "
                "print(', '.join(r[0] for r in c.execute('PRAGMA integrity_check')))")
        out = subprocess.run(["nsenter", "-t", str(namespace_of), "-m", "--", "python3", "-c", code, db],
                             capture_output=True, text=True, timeout=120)
        return out.stdout.strip() or out.stderr.strip()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    return ", ".join(r[0] for r in rows)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_main(main):
    """Runs a script's `main` and, whatever failed, leaves no switch or
    SIPp this script started running."""
    try:
        main()
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
                p.wait()
