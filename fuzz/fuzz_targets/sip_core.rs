//! A conversation with the sans-IO SIP core from the trunk's address: the
//! input is several messages, each after a control byte and separated by
//! `\n=====\n`. The control byte picks UDP or a TCP connection, how far the
//! clock moves before the message, and what the call layer does with the
//! calls the core reports (answer, ring, reject, hang up), so the fuzzer
//! reaches transactions, dialogs, re-INVITEs, CANCEL, BYE and INFO, not
//! only the gate. Timers are run out at the end on the simulated clock.
//! `$tag` in a message stands for the To tag of the core's latest response
//! (its tags are random), so seeds can continue the dialog they start.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tpswitch::media::codec::Codec;
use tpswitch::sip::core::{CoreConfig, Local, Output, SipCore, TrunkRoute, Untrusted};
use tpswitch::sip::inspect::Limits;
use tpswitch::sip::transaction::{Peer, Timers, Transport};
use tpswitch::sip::{LegId, SipCommand, SipEvent};

const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn core() -> SipCore {
    let trunk = "127.0.0.1:5080".parse().expect("literal address");
    let cfg = CoreConfig {
        timers: Timers::default(),
        local: Local {
            hostport: "127.0.0.1:5060".into(),
            user_agent: "tpswitch-fuzz".into(),
            nat: Default::default(),
            tls_hostport: None,
        },
        allow: vec!["127.0.0.1/32".parse().expect("literal network")],
        untrusted: Untrusted::Reject,
        max_calls: 4,
        max_transactions: 64,
        retry_after: Duration::from_secs(5),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        dtmf_payload_type: 101,
        session_expires: 1800,
        min_se: 90,
        trunks: vec![TrunkRoute::plain("carrier", trunk)],
        limits: Limits::default(),
        registrations: Vec::new(),
    };
    SipCore::new(cfg, Box::new(|n: &str| n.starts_with('+')))
}

/// The tag of the first To header of a message we sent.
fn to_tag(msg: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(msg).ok()?;
    let line = text
        .split("\r\n")
        .find(|l| l.starts_with("To:") || l.starts_with("t:"))?;
    let tag = line.split(";tag=").nth(1)?;
    let end = tag.find([';', ' ', '>']).unwrap_or(tag.len());
    Some(tag[..end].as_bytes().to_vec())
}

/// Drain the core; the call layer's answer to each new call follows `mode`.
fn drain(c: &mut SipCore, mode: u8, legs: &mut Vec<LegId>, tag: &mut Vec<u8>, now: Instant) {
    let mut guard = 0;
    while let Some(o) = c.poll_output() {
        guard += 1;
        if guard > 10_000 {
            panic!("the core produces output without end");
        }
        if let Output::Transmit { data, .. } = &o {
            if data.starts_with(b"SIP/2.0 ") {
                if let Some(t) = to_tag(data) {
                    *tag = t;
                }
            }
        }
        if let Output::Event(SipEvent::Incoming(call)) = o {
            let leg = call.leg;
            legs.push(leg);
            let cmd = match mode % 4 {
                0 => SipCommand::Answer {
                    leg,
                    sdp: SDP.to_vec(),
                },
                1 => SipCommand::Ringing(leg),
                2 => SipCommand::Reject { leg, status: 486 },
                _ => continue,
            };
            c.handle_command(cmd, now);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = core();
    let start = Instant::now();
    let mut now = start;
    let mut legs = Vec::new();
    let mut tag = b"none".to_vec();
    for chunk in split(data, b"\n=====\n").take(16) {
        let Some((&ctl, msg)) = chunk.split_first() else {
            continue;
        };
        now += Duration::from_millis(u64::from(ctl >> 4) * 250);
        c.handle_timeout(now);
        let peer = Peer {
            transport: if ctl & 1 == 0 {
                Transport::Udp
            } else {
                Transport::Tcp { conn: 1 }
            },
            addr: "127.0.0.1:5070".parse().expect("literal address"),
        };
        let msg = replace(msg, b"$tag", &tag);
        c.handle_message(&msg, peer, now);
        drain(&mut c, ctl >> 1, &mut legs, &mut tag, now);
        if ctl & 0b1000 != 0 {
            if let Some(leg) = legs.first().copied() {
                c.handle_command(SipCommand::HangUp(leg), now);
                drain(&mut c, 3, &mut legs, &mut tag, now);
            }
        }
    }
    // Run every timer out (transactions end within 64*T1; session timers
    // later): bounded, so a deadline that never moves is a failure.
    for _ in 0..200 {
        let Some(d) = c.deadline() else { break };
        if d > start + Duration::from_secs(7200) {
            break;
        }
        now = now.max(d);
        c.handle_timeout(now);
        drain(&mut c, 3, &mut legs, &mut tag, now);
    }
});

fn split<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(i) => {
                rest = r.get(i + sep.len()..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
