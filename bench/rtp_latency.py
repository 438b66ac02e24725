#!/usr/bin/env python3
"""Relay latency added by the switch, per RTP packet, from a loopback capture.

    bench/rtp_latency.py stream OUT.raw SECONDS     write the callers' stream
    bench/rtp_latency.py measure CAPTURE.pcap SWITCH_LOG

`stream` writes raw PCMU for SIPp's rtp_stream whose 20 ms packets each
start with a 32-bit counter.

CAPTURE is `tcpdump -i lo --time-stamp-precision=nano` of the switch's media
ports; SWITCH_LOG is the switch's stderr with `tpswitch::call::queue` at info,
whose "bridged" lines name each bridge's two local RTP addresses
(customer_rtp=..., agent_rtp=...). Customers and agents (SIPp) both stream
the `stream` file, so every packet carries a counter unique within its
direction of its call, and a packet is recognisable on both sides of the
switch even though the relay rewrites SSRC, sequence number and timestamp
(RFC 3550 §7.1: the switch is a translator).

For each bridge and each direction, a packet into one leg is matched with the
packet carrying the same counter out of the other leg; the latency is the
difference of the two kernel timestamps taken at the loopback tap, so it holds
everything the switch adds: socket wake-up, relay, transcoding if any, send.
A packet into one leg that never comes out of the other, while that other
leg was sending (not within 200 ms of its first or last packet), is lost.
"""
import re
import struct
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
BRIDGED = re.compile(r"customer_rtp=[^ ]*:(\d+) agent_rtp=[^ ]*:(\d+)")
EDGE_NS = 200_000_000
# Starting the capture stalls loopback delivery: in a 1 000-call run every
# flow's latency jumped to 50 ms in the first 60 ms of the capture, and at no
# other time. bench/sipp_bridge.sh captures for 3.5 s and the first 500 ms,
# which measure the tap and not the switch, are left out.
SETTLE_NS = 500_000_000


def bridges(log_path):
    pairs = []
    with open(log_path, errors="replace") as f:
        for line in f:
            line = ANSI.sub("", line)
            if "bridged" in line:
                m = BRIDGED.search(line)
                if m:
                    pairs.append((int(m.group(1)), int(m.group(2))))
    return pairs


def packets(pcap_path):
    """Yields (t_ns, src_port, dst_port, counter) for each UDP/IPv4 RTP packet."""
    with open(pcap_path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        sys.exit(f"{pcap_path}: not a pcap file (too short)")
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic == 0xA1B23C4D:
        frac = 1
    elif magic == 0xA1B2C3D4:
        frac = 1000
    else:
        sys.exit(f"{pcap_path}: not a little-endian pcap file (magic {magic:#x})")
    linktype = struct.unpack_from("<I", data, 20)[0]
    if linktype != 1:
        sys.exit(f"{pcap_path}: link type {linktype}; capture on lo (Ethernet framing)")
    off = 24
    while off + 16 <= len(data):
        sec, sub, caplen, _ = struct.unpack_from("<IIII", data, off)
        off += 16
        frame = data[off : off + caplen]
        off += caplen
        # Ethernet (14) + IPv4 (IHL) + UDP (8) + RTP (12) + 4 counter bytes.
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        rtp = udp + 8
        if len(frame) < rtp + 16:
            continue
        sport, dport = struct.unpack_from(">HH", frame, udp)
        if frame[rtp] >> 6 != 2 or frame[rtp + 1] & 0x7F not in (0, 8):
            continue  # not RTP audio (RTCP, telephone-event, SIP)
        counter = struct.unpack_from(">I", frame, rtp + 12)[0]
        yield sec * 1_000_000_000 + sub * frac, sport, dport, counter


def write_stream(path, seconds):
    """Raw PCMU for SIPp's rtp_stream (160 bytes per 20 ms packet, no header):
    each packet's payload starts with its 32-bit counter."""
    frames = (struct.pack(">I", k) + bytes([0x55]) * 156 for k in range(int(seconds * 50)))
    with open(path, "wb") as f:
        f.write(b"".join(frames))


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "stream":
        write_stream(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "measure":
        measure(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


def measure(capture, log):
    pairs = bridges(log)
    if not pairs:
        sys.exit(f"{log}: no 'bridged' lines with customer_rtp/agent_rtp; "
                 "run the switch with TPSWITCH_LOG=warn,tpswitch::call::queue=info")
    # ingress[(port)] = {counter: t}, egress[(port)] = {counter: t}
    ingress, egress = {}, {}
    first = last = None
    ports = {p for pair in pairs for p in pair}
    for t, sport, dport, counter in packets(capture):
        first = t if first is None else first
        last = t
        if dport in ports:
            ingress.setdefault(dport, {}).setdefault(counter, t)
        if sport in ports:
            egress.setdefault(sport, {}).setdefault(counter, t)
    if first is None:
        sys.exit(f"{capture}: no RTP packets captured")
    lat = {"customer->agent": [], "agent->customer": []}
    lost = {k: 0 for k in lat}
    for a, b in pairs:
        for name, into, out_of in (("customer->agent", a, b), ("agent->customer", b, a)):
            sent = egress.get(out_of, {})
            if not sent:
                continue
            # Only packets well inside this leg's own sending period can be
            # called lost: calls start and end during the capture.
            lo, hi = min(sent.values()) + EDGE_NS, max(sent.values()) - EDGE_NS
            for counter, t_in in ingress.get(into, {}).items():
                if t_in < first + SETTLE_NS:
                    continue
                t_out = sent.get(counter)
                if t_out is not None and t_out >= t_in:
                    lat[name].append(t_out - t_in)
                elif lo < t_in < hi:
                    lost[name] += 1
    span = (last - first) / 1e9
    print(f"capture {span:.1f} s (the first {SETTLE_NS // 1_000_000} ms left out), {len(pairs)} bridges")
    everything = []
    for name, values in lat.items():
        values.sort()
        everything.extend(values)
        print(f"  {name}: {len(values)} packets matched, {lost[name]} lost; {summary(values)}")
    everything.sort()
    print(f"  both ways: {len(everything)} packets matched, {sum(lost.values())} lost; "
          f"{summary(everything)}")


def summary(values):
    if not values:
        return "no latency"
    ms = [pct(values, p) / 1e6 for p in (50, 90, 99, 99.9)] + [values[-1] / 1e6]
    return "latency ms " + "  ".join(
        f"{label} {v:.3f}" for label, v in zip(("p50", "p90", "p99", "p99.9", "max"), ms))


if __name__ == "__main__":
    main()
