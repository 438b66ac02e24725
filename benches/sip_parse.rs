//! Parse and validate a typical trunk INVITE: the inbound gate (our grammar,
//! rsipstack's message built from canonical text, and the head the core
//! reads, all from one parse).
//!
//! `cargo bench --bench sip_parse`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

use tpswitch::sip::inspect::{inspect, Inspection, Limits};

const INVITE: &str = "INVITE sip:+15550100000@192.0.2.10:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---8a7e2f0c1b6d;rport\r\n\
Max-Forwards: 69\r\n\
From: \"John Smith\" <sip:+12345678910@198.51.100.7;user=phone>;tag=as5e1c2b7a\r\n\
To: <sip:+15550100000@192.0.2.10;user=phone>\r\n\
Call-ID: 3c26b1a4e8d94f2a9b7c0d1e2f3a4b5c@198.51.100.7\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:+12345678910@198.51.100.7:5060;transport=udp>\r\n\
P-Asserted-Identity: <sip:+12345678910@198.51.100.7;user=phone>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE\r\n\
Supported: replaces, timer\r\n\
Session-Expires: 1800\r\n\
User-Agent: Carrier SBC 4.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 248\r\n\
\r\n\
v=0\r\n\
o=- 1695302923 1695302923 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 0 8 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn parse(c: &mut Criterion) {
    // The body must match Content-Length exactly for the gate to accept it.
    let (head, body) = INVITE.split_once("\r\n\r\n").expect("head and body");
    let msg = head.replace(
        "Content-Length: 248",
        &format!("Content-Length: {}", body.len()),
    ) + "\r\n\r\n"
        + body;
    let limits = Limits::default();
    match inspect(msg.as_bytes(), &limits) {
        Inspection::Request(r) => assert_eq!(r.head.method, rsipstack::sip::Method::Invite),
        other => panic!("benchmark INVITE rejected: {other:?}"),
    }
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("inspect_and_read_invite", |b| {
        b.iter(|| match inspect(black_box(msg.as_bytes()), &limits) {
            Inspection::Request(r) => Some(r.head.call_id.len()),
            _ => None,
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
