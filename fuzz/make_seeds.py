#!/usr/bin/env python3
"""Writes the raw seed inputs for the fuzz targets into fuzz/seeds/<target>/
from the project's own material: the RFC 4475/5118 vectors, the SIPp
scenarios (rendered as SIPp would send them), the shipped configuration
files, SDP with a=crypto lines, RFC 4733 key presses from SIPp's captures
and API request bodies. `cargo fuzz cmin` then keeps the ones that add
coverage in fuzz/corpus/<target>/ (scripts/fuzz --seed does both).

    python3 fuzz/make_seeds.py
"""
import base64, glob, os, re, struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds")
n = 0


def put(target, data):
    global n
    n += 1
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-%04d" % n), "wb") as f:
        f.write(data)


LAST = {
    "[last_Via:]": "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-fuzz-1;rport",
    "[last_From:]": "From: <sip:+12345678910@127.0.0.1>;tag=abc123",
    "[last_To:]": "To: <sip:+15550100000@127.0.0.1>",
    "[last_Call-ID:]": "Call-ID: out-1@127.0.0.1",
    "[last_CSeq:]": "CSeq: 1 INVITE",
    "[last_Record-Route:]": "Record-Route: <sip:127.0.0.1:5090;lr>",
}
VARS = {
    "[local_ip]": "127.0.0.1", "[local_port]": "5070", "[remote_ip]": "127.0.0.1",
    "[remote_port]": "5060", "[transport]": "UDP", "[pid]": "1", "[call_number]": "1",
    "[service]": "+15550100000", "[call_id]": "1-fuzz@127.0.0.1", "[local_ip_type]": "4",
    "[media_ip_type]": "4", "[media_ip]": "127.0.0.1", "[media_port]": "6000",
    "[auto_media_port]": "6000", "[peer_tag_param]": ";tag=$tag", "[routes]": "",
    "[next_url]": "sip:+15550100000@127.0.0.1:5060", "[+]": "1",
}


branches = iter(range(1, 1 << 20))


def render(block):
    lines = [l.strip() for l in block.strip("\n").split("\n")]
    # A placeholder that renders empty ([routes]) leaves no header line.
    lines = [l for l in lines if l != "[routes]"]
    text = "\r\n".join(lines)
    # SIPp's [branch] is new in every message.
    text = re.sub(r"\[branch(-\d+)?\]", lambda m: "z9hG4bK-fuzz-%d" % next(branches), text)
    for k, v in list(LAST.items()) + list(VARS.items()):
        text = text.replace(k, v)
    text = re.sub(r"@[A-Z_]+@", "+12345678910", text)
    head, _, body = text.partition("\r\n\r\n")
    if body:
        body = body.rstrip("\r\n") + "\r\n"
    text = head.replace("[len]", str(len(body.encode()))) + "\r\n\r\n" + body
    return text


scenarios = sorted(glob.glob(os.path.join(ROOT, "tests", "sipp", "*.xml")) +
                   glob.glob(os.path.join(ROOT, "tests", "sipp", "*.inc")) +
                   glob.glob(os.path.join(ROOT, "tests", "kamailio", "*.xml")))
conversations = []
for path in scenarios:
    xml = open(path, encoding="latin-1").read()
    msgs = [render(b) for b in re.findall(r"<!\[CDATA\[(.*?)\]\]>", xml, re.S)]
    msgs = [m for m in msgs if re.match(r"^[A-Z]+ |^SIP/2.0 ", m)]
    for m in msgs:
        put("sip_gate", m)
        # No cuts (first byte 0), then the same message in three pieces.
        put("sip_tcp", b"\x00" + m.replace("/UDP", "/TCP").encode())
        put("sip_tcp", b"\x03\x20\x80\xe0" + (m + "\r\n\r\n" + m).encode())
        body = m.partition("\r\n\r\n")[2]
        if body.startswith("v=0"):
            put("sdp", body)
    requests = [m for m in msgs if not m.startswith("SIP/2.0")]
    if requests:
        conversations.append(requests)

for path in sorted(glob.glob(os.path.join(ROOT, "tests", "corpora", "rfc*", "*"))):
    data = open(path, "rb").read()
    put("sip_gate", data)
    put("sip_tcp", b"\x00" + data)

# Conversations for the core: a control byte before each message (0: UDP,
# answer the call), `\n=====\n` between them.
for reqs in conversations:
    put("sip_core", b"\n=====\n".join(b"\x00" + r.encode() for r in reqs))
    # Ringing (mode 1), then hang up after the second message.
    put("sip_core", b"\n=====\n".join(bytes([0x12 if i else 0x02]) + r.encode()
                                          for i, r in enumerate(reqs)))

KEY = base64.b64encode(bytes(range(30))).decode()
SDP = ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
       "m=audio 6000 {proto} 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n{extra}")
put("sdp", SDP.format(proto="RTP/AVP", extra="a=sendrecv\r\n"))
put("sdp", SDP.format(proto="RTP/AVP", extra="a=sendonly\r\n"))
put("sdp", SDP.format(proto="RTP/SAVP", extra="a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n"
                      "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:%s|2^20|1:4\r\n" % (KEY, KEY)))
put("sdp", SDP.format(proto="RTP/SAVP", extra="a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:%s\r\n" % KEY))
put("sdp", "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
           "m=video 7000 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 8\r\na=inactive\r\n")

# RTP: RFC 4733 presses from SIPp's captures (records: control, length,
# packet; control 0 = plain RTP 20 ms later), and G.711 audio.
def records(pkts, ctl=0x10):
    out = b""
    for p in pkts[:40]:
        out += bytes([ctl, min(len(p), 255)]) + p[:255]
    return out


def pcap_udp_payloads(path):
    data = open(path, "rb").read()
    out, off = [], 24
    link = struct.unpack("<I", data[20:24])[0]
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ip = frame[14:] if link == 1 else frame[16:] if link == 113 else frame
        if not ip or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 15) * 4
        if ip[9] == 17:
            out.append(ip[ihl + 8:])
    return out


for path in sorted(glob.glob("/usr/share/sip-tester/dtmf_2833_*.pcap"))[:4]:
    pkts = pcap_udp_payloads(path)
    # Telephone events on pt 101 (setup bit 16), plain and SRTP (bit 1).
    put("rtp_receive", b"\x10" + records(pkts))
    put("rtp_receive", b"\x11" + records(pkts, 0x11))
audio = [struct.pack("!BBHII", 0x80, 0, 100 + i, 160 * i, 0x1234) + bytes([0xff] * 160) for i in range(5)]
put("rtp_receive", b"\x04" + records(audio))
put("rtp_receive", b"\x0c" + records(audio))
sr = struct.pack("!BBHI", 0x80, 200, 6, 0x1234) + bytes(20)
put("rtp_receive", b"\x00" + bytes([0x12, len(sr)]) + sr + bytes([0x10, len(sr)]) + sr + b"\x03\x00")

for path in [os.path.join(ROOT, "config", "tpswitch.toml"),
             os.path.join(ROOT, "src", "config", "testdata", "config.example.toml")]:
    put("config_toml", open(path, "rb").read())

# API bodies: first byte picks the route (see fuzz_targets/api_json.rs).
put("api_json", b"\x00" + b'{"name": "Fuzz", "skills": ["billing"], "pin": "4321", "pstn": "+15550100777"}')
put("api_json", b"\x01" + b'{"kind": "timed_presence", "prompts": {}}')
put("api_json", b"\x02" + b'{"number": "+15550100000", "flow": "agent-login"}')
put("api_json", b"\x03" + b'{"minutes": 30, "reason": "cover the lunch hour"}')
put("api_json", b"\x03" + b'{"until": "2030-01-01T12:00:00Z", "reason": "shift"}')
put("api_json", b"\x04" + b'{"reason": "end of shift"}')
put("api_json", b"\x05" + b'{"name": "John Smith"}')
put("api_json", b"\x06")
print("wrote %d seeds under %s" % (n, OUT))
