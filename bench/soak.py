#!/usr/bin/env python3
"""Soak (run through bench/soak.sh): CALLS log-in and queue calls in a row
at a moderate rate, the switch's RSS and open descriptors sampled as the
calls go; fails when either grew more than 10 % from the sample at the
first 5 000 calls to the last one taken while both UACs still place
calls (the same load), or when any call failed.

Two SIPp UACs run side by side: agents k0001..k0200 logging in (key 1 =
8 hours; LOGIN_SHARE of the calls) and customers calling the Billing queue
(the rest), each hanging up after HOLD_MS. A SIPp UAS behind the trunk is
every agent's phone: it answers, talks (PCMA from Debian's g711a.pcap) and
takes the switch's BYE. The queue bridges on answer and has no wrap-up, so
the agents logged in by the first UAC take the second one's calls.

Environment: RTP_PORTS (the switch's, default 36000-39998: apart from the
other scripts' and the tests'), TPSWITCH_BIN, PORT (SIP, default 5950; SIPp takes PORT+1 to
PORT+3), MEDIA_PORT (42600; +4, +8 for the other two SIPps), RATE (total
calls/s, default 50), LOGIN_SHARE (0.5), HOLD_MS (3000), SAMPLE_S (5),
WARMUP (5000 calls: the first sample compared), LOG (the switch's log
level, default warn; `info` keeps each leg's media line).
"""

import csv
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as fl  # noqa: E402

AGENTS = 200


def queue_edit(text):
    """The Billing queue bridges on answer, without wrap-up or whisper."""
    for old, new in [('accept_digit = "1"', 'accept_digit = ""'),
                     ('wrap_up = "10s"', 'wrap_up = "0s"'),
                     ('whisper = "agent_whisper"', 'whisper = ""'),
                     # The trunk's leg limit (100) would make customers wait.
                     ("max_calls = 100 ", "max_calls = 2000 ")]:
        if old not in text:
            raise SystemExit(f"config edit: {old!r} is not in config/tpswitch.toml any more")
        text = text.replace(old, new, 1)
    return text


def customer_scenario(work, hold_ms):
    """A customer: INVITE the Billing line, wait HOLD_MS after the answer
    (greeting, hold, then the agent), hang up."""
    path = os.path.join(work, "customer.xml")
    with open(path, "w") as f:
        f.write(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="customer">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15559990000@[local_ip]:[local_port]>;tag=[pid]cust[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:customer@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[local_ip_type] [local_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15559990000@[local_ip]:[local_port]>;tag=[pid]cust[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15559990000@[local_ip]:[local_port]>;tag=[pid]cust[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>
</scenario>
""")
    return path


def last_stats(path):
    """SIPp's -trace_stat CSV, last row as a dict (empty before the first)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def count(stats, name):
    try:
        return int(stats.get(name, "0") or 0)
    except ValueError:
        return 0


def metrics(sw):
    """The switch's /metrics text; raises OSError when it cannot be read."""
    import urllib.request
    with urllib.request.urlopen(f"http://{sw.http}/metrics", timeout=30) as r:
        return r.read().decode()


def metrics_active(sw):
    """`tpswitch_calls_active` and `tpswitch_legs_active` from /metrics."""
    try:
        text = metrics(sw)
    except OSError as e:
        return f"/metrics: {e}"
    lines = [l for l in text.splitlines() if l.startswith(("tpswitch_calls_active", "tpswitch_legs_active"))]
    return ", ".join(lines) or "none"


def heap_kib(sw):
    """The switch's heap from /metrics: (in use, free) KiB, or (0, 0).
    RSS that grows with `in_use` is data kept; with `free`, fragmentation."""
    try:
        text = metrics(sw)
    except OSError:
        return (0, 0)
    got = {}
    for line in text.splitlines():
        if line.startswith("tpswitch_heap_bytes{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            got[kind] = int(float(line.rsplit(" ", 1)[1])) // 1024
    return (got.get("in_use", 0), got.get("free", 0))


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
    binary = os.environ.get("TPSWITCH_BIN", os.path.join(fl.REPO, "target/release/tpswitch"))
    port = int(os.environ.get("PORT", "5950"))
    media = int(os.environ.get("MEDIA_PORT", "42600"))
    rate = float(os.environ.get("RATE", "50"))
    share = float(os.environ.get("LOGIN_SHARE", "0.5"))
    hold = int(os.environ.get("HOLD_MS", "3000"))
    every = float(os.environ.get("SAMPLE_S", "5"))
    warmup = int(os.environ.get("WARMUP", "5000"))
    logins = int(total * share)
    queued = total - logins
    work = tempfile.mkdtemp(prefix="soak-")
    os.environ.setdefault("RTP_PORTS", "36000-39998")
    trunk = port + 3
    config = fl.write_config(work, port, AGENTS, trunk_port=trunk, edit=queue_edit)
    login_sc = fl.login_scenario(work, "1")
    inf = fl.injection_file(work, AGENTS)
    cust_sc = customer_scenario(work, hold)
    sw = fl.Switch(binary, config, work, level=os.environ.get("LOG", "warn"))
    pid = sw.pid
    rest = (fl.rss_kib(pid), fl.fd_count(pid))
    print(f"soak: {total} calls ({logins} log-ins, {queued} queue calls) at {rate:g}/s; switch pid {pid}; "
          f"at rest RSS {rest[0]} KiB, {rest[1]} fds; work {work}", flush=True)
    limit = int(total / rate * 2 + 300)
    phones = fl.sipp(os.path.join(fl.REPO, "tests/sipp/uas_answer_talk.xml"), None, work, calls=queued,
                     rate=1, limit_s=limit, local_port=trunk, media_port=media + 8, tag="phones",
                     extra=["-l", "2000"])
    time.sleep(0.5)
    a = fl.sipp(login_sc, sw.sip, work, calls=logins, rate=rate * share, limit_s=limit,
                local_port=port + 1, media_port=media, inf=inf, tag="logins")
    time.sleep(2)
    b = fl.sipp(cust_sc, sw.sip, work, calls=queued, rate=rate * (1 - share), limit_s=limit,
                local_port=port + 2, media_port=media + 4, tag="customers", service=fl.QUEUE_NUMBER)
    samples = []  # (calls created, rss KiB, fds)
    start = time.monotonic()
    while a.poll() is None or b.poll() is None:
        time.sleep(every)
        if sw.proc.poll() is not None:
            print("soak: FAILED: the switch exited", flush=True)
            sys.exit(1)
        sa, sb = last_stats(os.path.join(work, "logins.csv")), last_stats(os.path.join(work, "customers.csv"))
        if count(sa, "TotalCallCreated") >= logins or count(sb, "TotalCallCreated") >= queued:
            # One UAC has placed all its calls: the load is no longer the
            # same, so samples from here on are not compared.
            break
        created = count(sa, "TotalCallCreated") + count(sb, "TotalCallCreated")
        samples.append((created, fl.rss_kib(pid), fl.fd_count(pid)) + heap_kib(sw))
        if len(samples) % 12 == 0:
            c, r, n, used, free = samples[-1]
            print(f"  {c} calls placed, RSS {r} KiB (heap in use {used}, free {free}), {n} fds "
                  f"({time.monotonic() - start:.0f} s)", flush=True)
    for p in (a, b):
        try:
            p.wait(limit)
        except Exception:
            fl.stop(p)
    time.sleep(5)
    after = (fl.rss_kib(pid), fl.fd_count(pid))
    fl.stop(phones)
    taken = count(last_stats(os.path.join(work, "phones.csv")), "SuccessfulCall(C)")
    sa, sb = last_stats(os.path.join(work, "logins.csv")), last_stats(os.path.join(work, "customers.csv"))
    ok_calls = count(sa, "SuccessfulCall(C)") + count(sb, "SuccessfulCall(C)")
    failed_calls = count(sa, "FailedCall(C)") + count(sb, "FailedCall(C)")
    active = metrics_active(sw)
    sw.terminate()
    first = next((s for s in samples if s[0] >= warmup), None)
    last = samples[-1] if samples else None
    print(f"soak: {ok_calls} calls succeeded, {failed_calls} failed "
          f"(log-ins {count(sa, 'SuccessfulCall(C)')}/{count(sa, 'FailedCall(C)')}, "
          f"queue {count(sb, 'SuccessfulCall(C)')}/{count(sb, 'FailedCall(C)')}) in {time.monotonic() - start:.0f} s",
          flush=True)
    print(f"soak: the agents' phones completed {taken} bridged calls; 5 s after the last call: {active}",
          flush=True)
    if not first or not last or first is last:
        print(f"soak: FAILED: too few samples ({len(samples)}) to compare", flush=True)
        sys.exit(1)
    grow_rss = (last[1] - first[1]) / first[1] * 100
    grow_fd = (last[2] - first[2]) / first[2] * 100
    print(f"soak: last sample under full load at {last[0]} of {total} calls")
    print(f"soak: heap in use {first[3]} -> {last[3]} KiB, free {first[4]} -> {last[4]} KiB", flush=True)
    print(f"soak: at {first[0]} calls RSS {first[1]} KiB, {first[2]} fds; at {last[0]} calls RSS {last[1]} KiB, "
          f"{last[2]} fds: RSS {grow_rss:+.1f} %, fds {grow_fd:+.1f} %; 5 s after the last call RSS {after[0]} KiB, "
          f"{after[1]} fds (at rest before: {rest[0]} KiB, {rest[1]} fds)", flush=True)
    peak = max(s[1] for s in samples)
    print(f"soak: peak RSS {peak} KiB over {len(samples)} samples", flush=True)
    bad = []
    if failed_calls:
        # A failed log-in is an agent who called and was not heard (issue 12:
        # a stray stream on a reused RTP port took the latch and their key).
        bad.append(f"{failed_calls} calls failed")
    if grow_rss > 10:
        bad.append(f"RSS grew {grow_rss:.1f} %")
    if grow_fd > 10:
        bad.append(f"open descriptors grew {grow_fd:.1f} %")
    if bad:
        print(f"soak: FAILED: {', '.join(bad)} (work folder kept: {work})", flush=True)
        sys.exit(1)
    print("soak: ok", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    fl.run_main(main)
