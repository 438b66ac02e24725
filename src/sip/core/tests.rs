//! The SIP core on a simulated clock: what goes on the wire, and when.

use std::time::{Duration, Instant};

use super::*;
use crate::sip::api::{DialOutcome, DialRequest, EndCause, Presentation};

pub(super) const TRUNK: &str = "127.0.0.1:5080";
pub(super) const PEER: &str = "127.0.0.1:5070";

pub(super) fn cfg() -> CoreConfig {
    CoreConfig {
        timers: Timers::default(),
        local: Local {
            hostport: "127.0.0.1:5060".into(),
            user_agent: "tpswitch-test".into(),
            nat: Default::default(),
            tls_hostport: None,
        },
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        untrusted: Untrusted::Reject,
        max_calls: 2,
        max_transactions: 10,
        retry_after: Duration::from_secs(5),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        dtmf_payload_type: 101,
        session_expires: 1800,
        min_se: 90,
        trunks: vec![TrunkRoute {
            credentials: Some(Credentials {
                username: "alice".into(),
                password: "secret".into(),
            }),
            ..TrunkRoute::plain("carrier", TRUNK.parse().unwrap())
        }],
        limits: Limits::default(),
        registrations: Vec::new(),
    }
}

pub(super) fn core() -> SipCore {
    SipCore::new(cfg(), Box::new(|n: &str| n == "+15550100000"))
}

pub(super) fn udp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().unwrap(),
    }
}

pub(super) const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

pub(super) fn invite(branch: &str, user: &str, extra: &str, body: &str) -> Vec<u8> {
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    format!(
        "INVITE sip:{user}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+12345678910@127.0.0.1>;tag=ft1\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: call-1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5070>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(super) fn in_dialog(
    method: &str,
    branch: &str,
    to_tag: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "{method} sip:tpswitch@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+12345678910@127.0.0.1>;tag=ft1\r\nTo: <sip:+15550100000@127.0.0.1>;tag={to_tag}\r\nCall-ID: call-1@test\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[derive(Default, Debug)]
pub(super) struct Out {
    pub(super) sent: Vec<(Peer, String)>,
    pub(super) events: Vec<SipEvent>,
}

impl Out {
    pub(super) fn statuses(&self) -> Vec<u16> {
        self.sent
            .iter()
            .filter_map(|(_, m)| m.strip_prefix("SIP/2.0 "))
            .filter_map(|m| m.get(..3)?.parse().ok())
            .collect()
    }
    pub(super) fn requests(&self) -> Vec<String> {
        self.sent
            .iter()
            .filter(|(_, m)| !m.starts_with("SIP/2.0"))
            .map(|(_, m)| m.split(' ').next().unwrap_or("").to_owned())
            .collect()
    }
    pub(super) fn find(&self, start: &str) -> &str {
        self.sent
            .iter()
            .map(|(_, m)| m.as_str())
            .find(|m| m.starts_with(start))
            .unwrap_or_else(|| panic!("no message starting {start:?} in {:#?}", self.sent))
    }
}

pub(super) fn drain(c: &mut SipCore) -> Out {
    let mut out = Out::default();
    while let Some(o) = c.poll_output() {
        match o {
            Output::Transmit { peer, data } => out
                .sent
                .push((peer, String::from_utf8_lossy(&data).into_owned())),
            Output::Event(e) => out.events.push(e),
        }
    }
    out
}

pub(super) fn advance(c: &mut SipCore, to: Instant) -> Out {
    let mut out = Out::default();
    while let Some(d) = c.deadline() {
        if d > to {
            break;
        }
        c.handle_timeout(d);
        let o = drain(c);
        out.sent.extend(o.sent);
        out.events.extend(o.events);
    }
    out
}

pub(super) fn tag_of(msg: &str) -> String {
    msg.lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .unwrap()
        .trim()
        .to_owned()
}

pub(super) fn incoming_leg(out: &Out) -> LegId {
    out.events
        .iter()
        .find_map(|e| match e {
            SipEvent::Incoming(c) => Some(c.leg),
            _ => None,
        })
        .expect("an Incoming event")
}

/// INVITE → 100 → Incoming → Answer → 200. Returns the leg and our tag.
pub(super) fn answered(c: &mut SipCore, t0: Instant) -> (LegId, String) {
    c.handle_message(
        &invite("z9hG4bK-i1", "+15550100000", "", SDP),
        udp(PEER),
        t0,
    );
    let out = drain(c);
    assert_eq!(out.statuses(), vec![100]);
    let leg = incoming_leg(&out);
    c.handle_command(
        SipCommand::Answer {
            leg,
            sdp: b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n".to_vec(),
        },
        t0,
    );
    let out = drain(c);
    assert_eq!(out.statuses(), vec![200]);
    (leg, tag_of(out.find("SIP/2.0 200")))
}

/// The CANCEL of the test INVITE with branch `branch` (§9.1: same
/// Request-URI, Call-ID, From, To, CSeq number and top Via).
pub(super) fn cancel_of(branch: &str) -> String {
    String::from_utf8(invite(branch, "+15550100000", "", ""))
        .unwrap()
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
}

/// The caller's BYE (branch `branch`, CSeq `cseq`) at `at` gets 200 and
/// ends the call as theirs.
pub(super) fn their_bye_ends_the_call(
    c: &mut SipCore,
    tag: &str,
    branch: &str,
    cseq: u32,
    at: Instant,
) {
    c.handle_message(&in_dialog("BYE", branch, tag, cseq, "", ""), udp(PEER), at);
    let out = drain(c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Ended {
            cause: EndCause::RemoteBye,
            ..
        }]
    ));
}

#[test]
fn invite_answer_ack_bye() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, tag) = answered(&mut c, t0);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    assert!(matches!(out.events[..], [SipEvent::Confirmed { leg: l, .. }] if l == leg));
    // No 2xx retransmissions once acknowledged.
    assert!(advance(&mut c, t0 + Duration::from_secs(10))
        .sent
        .is_empty());
    their_bye_ends_the_call(&mut c, &tag, "z9hG4bK-b1", 2, t0);
    assert_eq!(c.active_calls(), 0);
    // A second BYE is for a dialog that no longer exists.
    c.handle_message(
        &in_dialog("BYE", "z9hG4bK-b2", &tag, 3, "", ""),
        udp(PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![481]);
}

/// Once the INVITE's 2xx is acknowledged the dialog lets go of the
/// INVITE's head (issue 15: it was kept for the whole call), and nothing
/// needed it: a retransmitted ACK is absorbed, a late CANCEL gets its own
/// 200 and no 487 (§9.2), and the call still ends with BYE.
#[test]
fn an_acknowledged_invite_is_not_kept_and_nothing_misses_it() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, tag) = answered(&mut c, t0);
    assert!(c.dialogs.get(&leg).is_some_and(|d| d.invite.is_some()));
    let ack = in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", "");
    c.handle_message(&ack, udp(PEER), t0);
    drain(&mut c);
    assert!(c.dialogs.get(&leg).is_some_and(|d| d.invite.is_none()));
    c.handle_message(&ack, udp(PEER), t0 + Duration::from_millis(200));
    let out = drain(&mut c);
    assert!(
        out.sent.is_empty() && out.events.is_empty(),
        "a second ACK changes nothing"
    );
    let cancel = cancel_of("z9hG4bK-i1");
    c.handle_message(
        cancel.as_bytes(),
        udp(PEER),
        t0 + Duration::from_millis(300),
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.events.is_empty());
    their_bye_ends_the_call(&mut c, &tag, "z9hG4bK-b1", 2, t0 + Duration::from_secs(1));
}

#[test]
fn lost_ack_retransmits_2xx_then_byes() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, _) = answered(&mut c, t0);
    let out = advance(&mut c, t0 + Duration::from_secs(40));
    // §13.3.1.4: 2xx at T1, 2T1, 4T1 ... capped at T2, for 64*T1, then BYE.
    let oks = out.statuses().iter().filter(|s| **s == 200).count();
    assert_eq!(oks, 10, "{:?}", out.statuses());
    assert_eq!(out.requests().first().map(String::as_str), Some("BYE"));
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, SipEvent::Ended { leg: l, cause: EndCause::NoAck } if *l == leg)));
}

#[test]
fn retransmitted_invite_after_200_is_absorbed() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, _) = answered(&mut c, t0);
    c.handle_message(
        &invite("z9hG4bK-i1", "+15550100000", "", SDP),
        udp(PEER),
        t0 + Duration::from_millis(100),
    );
    let out = drain(&mut c);
    assert!(out.sent.is_empty() && out.events.is_empty());
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(
        &invite("z9hG4bK-i1", "+15550100000", "", SDP),
        udp(PEER),
        t0,
    );
    let leg = incoming_leg(&drain(&mut c));
    let cancel = cancel_of("z9hG4bK-i1");
    c.handle_message(cancel.as_bytes(), udp(PEER), t0);
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200, 487]);
    assert!(matches!(out.events[..], [SipEvent::Cancelled(l)] if l == leg));
    // The ACK for the 487 is absorbed by the transaction.
    let ack = String::from_utf8(invite("z9hG4bK-i1", "+15550100000", "", ""))
        .unwrap()
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    c.handle_message(ack.as_bytes(), udp(PEER), t0);
    assert!(drain(&mut c).sent.is_empty());
    // Answering a cancelled call does nothing.
    c.handle_command(SipCommand::Answer { leg, sdp: vec![] }, t0);
    assert!(drain(&mut c).sent.is_empty());
}

#[test]
fn cancel_racing_the_200_leaves_the_call_up() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, _) = answered(&mut c, t0);
    let cancel = cancel_of("z9hG4bK-i1");
    c.handle_message(cancel.as_bytes(), udp(PEER), t0);
    let out = drain(&mut c);
    // §9.2: 200 for the CANCEL, no 487 (the INVITE already has its final).
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.events.is_empty());
    assert_eq!(c.active_calls(), 1);
}

#[test]
fn cancel_without_invite_is_481() {
    let mut c = core();
    let cancel = cancel_of("z9hG4bK-zz");
    c.handle_message(cancel.as_bytes(), udp(PEER), Instant::now());
    assert_eq!(drain(&mut c).statuses(), vec![481]);
}

#[test]
fn policy_rejections() {
    let t0 = Instant::now();
    // Unmapped number.
    let mut c = core();
    c.handle_message(&invite("z9hG4bK-1", "+15559999999", "", SDP), udp(PEER), t0);
    assert_eq!(drain(&mut c).statuses(), vec![100, 404]);
    // No common codec (G.729 only).
    // (Each request gets its own Call-ID: reusing one with a new branch
    // while the first transaction lives is a merged request, 482.)
    let fresh = |m: Vec<u8>, id: &str| {
        String::from_utf8(m)
            .unwrap()
            .replace("call-1@test", id)
            .into_bytes()
    };
    let g729 = SDP.replace("RTP/AVP 0 101", "RTP/AVP 18");
    c.handle_message(
        &fresh(invite("z9hG4bK-2", "+15550100000", "", &g729), "c2"),
        udp(PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![100, 488]);
    // A body that is not SDP.
    let msg = String::from_utf8(fresh(
        invite("z9hG4bK-3", "+15550100000", "", "hello"),
        "c3",
    ))
    .unwrap()
    .replace("application/sdp", "text/plain");
    c.handle_message(msg.as_bytes(), udp(PEER), t0);
    let s = drain(&mut c).statuses();
    assert_eq!(s.last(), Some(&415), "{s:?}");
    // Session-Expires below Min-SE.
    c.handle_message(
        &fresh(
            invite(
                "z9hG4bK-4",
                "+15550100000",
                "Session-Expires: 30\r\nSupported: timer\r\n",
                SDP,
            ),
            "c4",
        ),
        udp(PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![100, 422]);
}

#[test]
fn max_calls_gives_503_with_retry_after() {
    let mut c = core();
    let t0 = Instant::now();
    for i in 0..3 {
        let msg = String::from_utf8(invite(&format!("z9hG4bK-m{i}"), "+15550100000", "", SDP))
            .unwrap()
            .replace("call-1@test", &format!("call-m{i}@test"));
        c.handle_message(msg.as_bytes(), udp(PEER), t0);
    }
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![100, 100, 100, 503]);
    assert!(out.find("SIP/2.0 503").contains("Retry-After: 5"));
}

#[test]
fn untrusted_sources_get_403_or_nothing() {
    let t0 = Instant::now();
    let mut c = core();
    c.handle_message(
        &invite("z9hG4bK-1", "+15550100000", "", SDP),
        udp("10.9.9.9:5060"),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![403]);
    assert!(out.events.is_empty());
    let mut c = SipCore::new(
        CoreConfig {
            untrusted: Untrusted::Drop,
            ..cfg()
        },
        Box::new(|_: &str| true),
    );
    c.handle_message(
        &invite("z9hG4bK-1", "+15550100000", "", SDP),
        udp("10.9.9.9:5060"),
        t0,
    );
    assert!(drain(&mut c).sent.is_empty());
}

#[test]
fn untrusted_requests_are_counted_answered_or_dropped() {
    let t0 = Instant::now();
    let mut c = core();
    // An INVITE and two retransmissions: each answered 403, none dropped.
    for ms in [0, 500, 1500] {
        c.handle_message(
            &invite("z9hG4bK-1", "+15550100000", "", SDP),
            udp("10.9.9.9:5060"),
            t0 + Duration::from_millis(ms),
        );
    }
    assert_eq!(drain(&mut c).statuses(), vec![403, 403, 403]);
    assert_eq!(c.stats().rejected_untrusted, 3);
    assert_eq!(c.stats().untrusted_dropped, 0);
    let mut c = SipCore::new(
        CoreConfig {
            untrusted: Untrusted::Drop,
            ..cfg()
        },
        Box::new(|_: &str| true),
    );
    for ms in [0, 500, 1500] {
        c.handle_message(
            &invite("z9hG4bK-1", "+15550100000", "", SDP),
            udp("10.9.9.9:5060"),
            t0 + Duration::from_millis(ms),
        );
    }
    assert!(drain(&mut c).sent.is_empty());
    assert_eq!(c.stats().rejected_untrusted, 3);
    assert_eq!(c.stats().untrusted_dropped, 3);
}

#[test]
fn options_and_unsupported_methods() {
    let mut c = core();
    let t0 = Instant::now();
    let opt = String::from_utf8(invite("z9hG4bK-o", "+15550100000", "", ""))
        .unwrap()
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    c.handle_message(opt.as_bytes(), udp(PEER), t0);
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    let ok = out.find("SIP/2.0 200");
    assert!(ok.contains("Allow: INVITE") && ok.contains("Accept: application/sdp"));
    let reg = opt
        .replacen("OPTIONS sip", "REGISTER sip", 1)
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 REGISTER")
        .replace("z9hG4bK-o", "z9hG4bK-r");
    c.handle_message(reg.as_bytes(), udp(PEER), t0);
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![405]);
    assert!(out.find("SIP/2.0 405").contains("Allow: "));
}

#[test]
fn merged_request_is_482() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(
        &invite("z9hG4bK-x1", "+15550100000", "", SDP),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    // Same Call-ID, From tag and CSeq; another branch (a forked copy).
    c.handle_message(
        &invite("z9hG4bK-x2", "+15550100000", "", SDP),
        udp(PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![482]);
}

#[test]
fn rport_and_received_on_the_response() {
    let mut c = core();
    let msg = String::from_utf8(invite("z9hG4bK-v", "+15550100000", "", SDP))
        .unwrap()
        .replace(";branch=z9hG4bK-v", ";rport;branch=z9hG4bK-v");
    c.handle_message(msg.as_bytes(), udp("127.0.0.1:40000"), Instant::now());
    let out = drain(&mut c);
    let (peer, trying) = &out.sent[0];
    // RFC 3581: reply to the source port, and say so.
    assert_eq!(peer.addr, "127.0.0.1:40000".parse().unwrap());
    assert!(trying.contains("rport=40000"), "{trying}");
    assert!(trying.contains("received=127.0.0.1"), "{trying}");
}

/// RFC 3261 §18.2.1: `received` only when sent-by's host is a name or
/// another address than the packet came from, compared as addresses.
#[test]
fn received_only_when_sent_by_is_not_the_source_address() {
    let trying_from = |via_host: &str, from: &str| {
        let mut c = core();
        let msg = String::from_utf8(invite("z9hG4bK-r", "+15550100000", "", SDP))
            .unwrap()
            .replace("UDP 127.0.0.1:5070;", &format!("UDP {via_host};"));
        c.handle_message(msg.as_bytes(), udp(from), Instant::now());
        let out = drain(&mut c);
        out.sent[0].1.clone()
    };
    let same = trying_from("127.0.0.1:5070", "127.0.0.1:5070");
    assert!(!same.contains("received="), "{same}");
    let other = trying_from("127.0.0.1:5070", "127.0.0.2:5070");
    assert!(other.contains("received=127.0.0.2"), "{other}");
    let name = trying_from("pc33.example.com:5070", "127.0.0.1:5070");
    assert!(name.contains("received=127.0.0.1"), "{name}");
    // One IPv6 address, spelled two ways, is the same address.
    let v6 = trying_from("[0:0::1]:5070", "[::1]:5070");
    assert!(!v6.contains("received="), "{v6}");
}

#[test]
fn session_timer_is_granted_and_enforced() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(
        &invite(
            "z9hG4bK-s",
            "+15550100000",
            "Session-Expires: 120\r\nSupported: timer\r\n",
            SDP,
        ),
        udp(PEER),
        t0,
    );
    let leg = incoming_leg(&drain(&mut c));
    c.handle_command(
        SipCommand::Answer {
            leg,
            sdp: b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 20000 RTP/AVP 0\r\n".to_vec(),
        },
        t0,
    );
    let out = drain(&mut c);
    let ok = out.find("SIP/2.0 200");
    assert!(ok.contains("Session-Expires: 120;refresher=uac"), "{ok}");
    let tag = tag_of(ok);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-sa", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    // A refresh (re-INVITE) at 60 s keeps it alive past 120 s.
    let t60 = t0 + Duration::from_secs(60);
    assert!(advance(&mut c, t60).events.is_empty());
    c.handle_message(
        &in_dialog(
            "INVITE",
            "z9hG4bK-s2",
            &tag,
            2,
            "Session-Expires: 120\r\nContent-Type: application/sdp\r\n",
            SDP,
        ),
        udp(PEER),
        t60,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-s2a", &tag, 2, "", ""),
        udp(PEER),
        t60,
    );
    assert!(advance(&mut c, t0 + Duration::from_secs(150))
        .events
        .is_empty());
    // No further refresh: BYE and Ended once the interval has passed.
    let out = advance(&mut c, t60 + Duration::from_secs(121));
    assert!(out.requests().contains(&"BYE".to_owned()));
    assert!(out.events.iter().any(|e| matches!(
        e,
        SipEvent::Ended {
            cause: EndCause::SessionExpired,
            ..
        }
    )));
}

#[test]
fn reinvite_hold_and_info_digit() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, tag) = answered(&mut c, t0);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    let hold = format!("{SDP}a=sendonly\r\n");
    c.handle_message(
        &in_dialog(
            "INVITE",
            "z9hG4bK-h",
            &tag,
            2,
            "Content-Type: application/sdp\r\n",
            &hold,
        ),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(out.find("SIP/2.0 200").contains("a=recvonly"));
    assert!(matches!(&out.events[..], [SipEvent::MediaChanged { media, .. }] if media.stream.hold));
    // An old CSeq is refused (§12.2.2).
    c.handle_message(
        &in_dialog("INFO", "z9hG4bK-old", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![500]);
    c.handle_message(
        &in_dialog(
            "INFO",
            "z9hG4bK-i",
            &tag,
            3,
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=5\r\nDuration=160\r\n",
        ),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(matches!(
        out.events[..],
        [SipEvent::InfoDigit { leg: l, digit: '5', duration_ms: 160 }] if l == leg
    ));
}

#[test]
fn hang_up_sends_bye_and_reports_once() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, tag) = answered(&mut c, t0);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    c.handle_command(SipCommand::HangUp(leg), t0);
    let out = drain(&mut c);
    let bye = out.find("BYE ");
    // §12.2.1.1: to the remote target, with both tags.
    assert!(
        bye.starts_with("BYE sip:caller@127.0.0.1:5070 SIP/2.0"),
        "{bye}"
    );
    assert!(bye.contains(&format!(";tag={tag}")) && bye.contains("tag=ft1"));
    assert_eq!(out.sent[0].0.addr, "127.0.0.1:5070".parse().unwrap());
    // Its 200 ends the leg.
    let branch = bye
        .lines()
        .find(|l| l.starts_with("Via:"))
        .and_then(|l| l.split("branch=").nth(1))
        .map(|b| b.split(';').next().unwrap().to_owned())
        .unwrap();
    let ok = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\nFrom: <sip:+15550100000@127.0.0.1>;tag={tag}\r\nTo: <sip:+12345678910@127.0.0.1>;tag=ft1\r\nCall-ID: call-1@test\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n");
    c.handle_message(ok.as_bytes(), udp(PEER), t0);
    let out = drain(&mut c);
    assert!(matches!(
        out.events[..],
        [SipEvent::Ended {
            cause: EndCause::LocalHangup,
            ..
        }]
    ));
}

// ------------------------------------------------------------------ UAC

pub(super) fn dial(c: &mut SipCore, t0: Instant) -> (LegId, String) {
    let leg = LegId::next();
    c.handle_command(
        SipCommand::Dial {
            leg,
            request: DialRequest {
                targets: vec!["+12345678910".into()],
                from: vec![Presentation {
                    from_user: "+15550100001".into(),
                    diversion: None,
                }],
                sdp: vec![SDP.as_bytes().to_vec()],
            },
        },
        t0,
    );
    let out = drain(c);
    assert_eq!(out.requests(), vec!["INVITE"]);
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
    // The leg's owner learns the Call-ID the INVITE carries.
    let call_id = out.sent[0]
        .1
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .map(str::to_owned);
    assert!(
        matches!(&out.events[..], [SipEvent::Dialling { leg: l, to }] if *l == leg && Some(&to.call_id) == call_id.as_ref()),
        "{:?}",
        out.events
    );
    (leg, out.sent[0].1.clone())
}

/// A response to `req` (copying Via/From/To/Call-ID/CSeq) from the trunk.
pub(super) fn reply(req: &str, status: u16, extra: &str, body: &str) -> Vec<u8> {
    let mut s = format!("SIP/2.0 {status} Whatever\r\n");
    for l in req.lines() {
        if l.starts_with("Via:")
            || l.starts_with("From:")
            || l.starts_with("Call-ID:")
            || l.starts_with("CSeq:")
        {
            s.push_str(l);
            s.push_str("\r\n");
        } else if l.starts_with("To:") {
            s.push_str(l);
            if status > 100 {
                s.push_str(";tag=agent1");
            }
            s.push_str("\r\n");
        }
    }
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    s.push_str(&format!(
        "{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.into_bytes()
}

#[test]
fn uac_answered_is_acked() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, inv) = dial(&mut c, t0);
    assert!(inv.starts_with("INVITE sip:+12345678910@127.0.0.1:5080 SIP/2.0"));
    c.handle_message(&reply(&inv, 180, "", ""), udp(TRUNK), t0);
    assert!(matches!(
        drain(&mut c).events[..],
        [SipEvent::Progress { status: 180, .. }]
    ));
    c.handle_message(
        &reply(&inv, 200, "Contact: <sip:agent@127.0.0.1:5080>\r\n", SDP),
        udp(TRUNK),
        t0,
    );
    let out = drain(&mut c);
    let ack = out.find("ACK ");
    assert!(ack.starts_with("ACK sip:agent@127.0.0.1:5080"), "{ack}");
    assert!(ack.contains("CSeq: 1 ACK") && ack.contains("tag=agent1"));
    assert!(
        matches!(&out.events[..], [SipEvent::Answered { leg: l, media: Some(_) }] if *l == leg)
    );
    // A retransmitted 200 gets the same ACK again.
    c.handle_message(
        &reply(&inv, 200, "Contact: <sip:agent@127.0.0.1:5080>\r\n", SDP),
        udp(TRUNK),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(out.events.is_empty());
}

#[test]
fn uac_dialog_ended_by_the_agent() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, inv) = dial(&mut c, t0);
    c.handle_message(
        &reply(&inv, 200, "Contact: <sip:agent@127.0.0.1:5080>\r\n", SDP),
        udp(TRUNK),
        t0,
    );
    drain(&mut c);
    // The agent hangs up: From is theirs, To carries our tag.
    let ours = inv
        .lines()
        .find(|l| l.starts_with("From:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let bye = format!(
        "BYE sip:tpswitch@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bK-agentbye\r\n\
         From: <sip:+12345678910@127.0.0.1>;tag=agent1\r\nTo: <sip:+15550100001@127.0.0.1>;tag={ours}\r\n\
         Call-ID: {}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        inv.lines()
            .find_map(|l| l.strip_prefix("Call-ID:"))
            .unwrap()
            .trim()
    );
    c.handle_message(bye.as_bytes(), udp(TRUNK), t0);
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(matches!(
        &out.events[..],
        [SipEvent::Ended { leg: l, cause: EndCause::RemoteBye }] if *l == leg
    ));
}

#[test]
fn uac_busy_is_acked_and_typed() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, inv) = dial(&mut c, t0);
    c.handle_message(&reply(&inv, 486, "", ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed { leg: l, outcome: DialOutcome::Busy(486) }] if l == leg
    ));
}

#[test]
fn uac_answers_one_challenge_from_the_trunk_only() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, inv) = dial(&mut c, t0);
    let challenge =
        "WWW-Authenticate: Digest realm=\"trunk\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"\r\n";
    c.handle_message(&reply(&inv, 401, challenge, ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK", "INVITE"]);
    let inv2 = out.find("INVITE ").to_owned();
    assert!(inv2.contains("Authorization: Digest") && inv2.contains("username=\"alice\""));
    assert!(inv2.contains("CSeq: 2 INVITE"));
    // A second challenge is not answered again.
    c.handle_message(&reply(&inv2, 401, challenge, ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed {
            outcome: DialOutcome::Failed(401),
            ..
        }]
    ));
}

#[test]
fn uac_challenge_from_elsewhere_is_not_answered() {
    let mut c = SipCore::new(
        CoreConfig {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            ..cfg()
        },
        Box::new(|_: &str| true),
    );
    let t0 = Instant::now();
    let (_, inv) = dial(&mut c, t0);
    let challenge = "WWW-Authenticate: Digest realm=\"x\", nonce=\"n\"\r\n";
    c.handle_message(&reply(&inv, 401, challenge, ""), udp("127.0.0.9:5080"), t0);
    let out = drain(&mut c);
    assert!(!out.requests().contains(&"INVITE".to_owned()));
    assert!(matches!(out.events[..], [SipEvent::Failed { .. }]));
}

#[test]
fn uac_cancel_waits_for_a_provisional() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, inv) = dial(&mut c, t0);
    c.handle_command(SipCommand::HangUp(leg), t0);
    // §9.1: no CANCEL before a provisional response.
    assert!(drain(&mut c).sent.is_empty());
    c.handle_message(&reply(&inv, 180, "", ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["CANCEL"]);
    let cancel = out.find("CANCEL ");
    assert!(cancel.contains("CSeq: 1 CANCEL"));
    c.handle_message(&reply(&inv, 487, "", ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed {
            outcome: DialOutcome::Cancelled,
            ..
        }]
    ));
}

/// Timer B without even a 100 Trying: the carrier never took the call.
/// That is the trunk's failure (issue 10), never the agent's miss.
#[test]
fn uac_timeout_is_a_trunk_failure() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, _) = dial(&mut c, t0);
    let out = advance(&mut c, t0 + Duration::from_secs(33));
    // Timer A retransmissions, then Timer B.
    assert_eq!(out.requests().iter().filter(|r| *r == "INVITE").count(), 6);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed { leg: l, outcome: DialOutcome::Unavailable(408) }] if l == leg
    ));
}

#[test]
fn uac_redirect_to_the_same_number_is_followed() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, inv) = dial(&mut c, t0);
    c.handle_message(
        &reply(
            &inv,
            302,
            "Contact: <sip:+12345678910@127.0.0.1:5090>\r\n",
            "",
        ),
        udp(TRUNK),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK", "INVITE"]);
    assert!(out
        .find("INVITE ")
        .starts_with("INVITE sip:+12345678910@127.0.0.1:5080 SIP/2.0\r\n"));
    // A redirect elsewhere is not.
    let mut c = core();
    let (_, inv) = dial(&mut c, t0);
    c.handle_message(
        &reply(
            &inv,
            302,
            "Contact: <sip:+19999999999@127.0.0.1:5090>\r\n",
            "",
        ),
        udp(TRUNK),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed {
            outcome: DialOutcome::Failed(302),
            ..
        }]
    ));
}

#[test]
fn garbage_never_panics_and_the_next_request_is_answered() {
    let mut c = core();
    let t0 = Instant::now();
    let valid = invite("z9hG4bK-g", "+15550100000", "", SDP);
    let mut seed = 0x1234_5678_u64;
    for i in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut m = valid.clone();
        match i % 3 {
            0 => m.truncate((seed as usize) % m.len()),
            1 => {
                let at = (seed as usize) % m.len();
                m[at] = (seed >> 32) as u8;
            }
            _ => {
                m = (0..(seed % 300))
                    .map(|k| (seed >> (k % 50)) as u8)
                    .collect()
            }
        }
        c.handle_message(&m, udp(PEER), t0);
        drain(&mut c);
    }
    let opt = String::from_utf8(invite("z9hG4bK-final", "+15550100000", "", ""))
        .unwrap()
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS")
        .replace("call-1@test", "call-final@test");
    c.handle_message(opt.as_bytes(), udp(PEER), t0);
    assert_eq!(drain(&mut c).statuses(), vec![200]);
}

#[test]
fn transaction_cap_answers_503_statelessly() {
    let mut c = core();
    let t0 = Instant::now();
    let options = |i: &str| {
        String::from_utf8(invite(&format!("z9hG4bK-f{i}"), "+15550100000", "", ""))
            .unwrap()
            .replacen("INVITE sip", "OPTIONS sip", 1)
            .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS")
            .replace("call-1@test", &format!("flood-{i}@test"))
    };
    for i in 0..12 {
        c.handle_message(options(&i.to_string()).as_bytes(), udp(PEER), t0);
    }
    let out = drain(&mut c);
    // Ten transactions fit; the eleventh and twelfth get 503 + Retry-After.
    assert_eq!(out.statuses().iter().filter(|s| **s == 200).count(), 10);
    assert_eq!(out.statuses().iter().filter(|s| **s == 503).count(), 2);
    assert!(out.find("SIP/2.0 503").contains("Retry-After: 5"));
    assert_eq!(c.stats().overloaded, 2);
    // Once they linger out (Timer J), requests are served again.
    advance(&mut c, t0 + Duration::from_secs(40));
    c.handle_message(
        options("late").as_bytes(),
        udp(PEER),
        t0 + Duration::from_secs(40),
    );
    assert_eq!(drain(&mut c).statuses(), vec![200]);
}

/// RFC 4475 §3.1.1.11 (mpart01): an INVITE whose body is multipart/mixed
/// with an SDP part is a valid call; the SDP part is the offer.
#[test]
fn multipart_invite_uses_its_sdp_part() {
    let mut c = core();
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
    );
    let msg = String::from_utf8(invite("z9hG4bK-mp", "+15550100000", "", &body))
        .unwrap()
        .replacen(
            "Content-Type: application/sdp",
            "Content-Type: multipart/mixed;boundary=b1",
            1,
        );
    c.handle_message(msg.as_bytes(), udp(PEER), Instant::now());
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![100], "{:?}", out.sent);
    let media = out
        .events
        .iter()
        .find_map(|e| match e {
            SipEvent::Incoming(call) => call.media.clone(),
            _ => None,
        })
        .expect("an Incoming call with the SDP part negotiated");
    assert_eq!(media.stream.remote.port(), 6000);
}

/// Issue 9: bound to `[::]`, an IPv4 trunk's packets arrive from
/// `::ffff:127.0.0.1` and matched no IPv4 allow-list entry (403). They are
/// compared, answered and stamped (`received=`) as plain IPv4.
#[test]
fn ipv4_mapped_sources_are_treated_as_ipv4() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_message(
        &invite("z9hG4bK-m1", "+15550100000", "", SDP),
        udp("[::ffff:127.0.0.1]:5070"),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![100]);
    let (peer, trying) = &out.sent[0];
    assert_eq!(peer.addr, PEER.parse().unwrap());
    assert!(!trying.contains("::ffff:"), "{trying}");
    assert!(
        matches!(&out.events[..], [SipEvent::Incoming(call)] if call.source == PEER.parse().unwrap())
    );
}

/// Issue 9: a 3xx's Contact was copied verbatim into the next Request-URI,
/// so number-portability and context parameters, a password, `maddr` or a
/// `?Route=` header could steer the carrier elsewhere. The target is rebuilt
/// from our number and the trunk alone.
#[test]
fn redirect_target_is_rebuilt_from_the_number_alone() {
    let t0 = Instant::now();
    for contact in [
        "<sip:+12345678910;rn=+19999999999;npdi@127.0.0.1:5090>",
        "<sip:+12345678910;phone-context=+44@127.0.0.1>",
        "<sip:+12345678910:secret@10.6.6.6:5090;maddr=10.6.6.6;transport=tcp>",
        "<sip:+12345678910@127.0.0.1:5090?Route=%3Csip:10.6.6.6%3E&To=sip:%2B19999999999@x>",
        "\"a > b;\" <sip:+12345678910@127.0.0.1:5090;user=phone>;+sip.instance=\"<urn:uuid:1>\"",
    ] {
        let mut c = core();
        let (_, inv) = dial(&mut c, t0);
        c.handle_message(
            &reply(&inv, 302, &format!("Contact: {contact}\r\n"), ""),
            udp(TRUNK),
            t0,
        );
        let out = drain(&mut c);
        assert_eq!(out.requests(), vec!["ACK", "INVITE"], "{contact}");
        let (peer, invite) = out
            .sent
            .iter()
            .find(|(_, m)| m.starts_with("INVITE "))
            .unwrap();
        assert!(
            invite.starts_with("INVITE sip:+12345678910@127.0.0.1:5080 SIP/2.0\r\n"),
            "{contact}: {invite}"
        );
        assert_eq!(peer.addr, TRUNK.parse().unwrap());
        assert!(!invite.contains("Route:"), "{invite}");
        assert!(!invite.contains("19999999999"), "{invite}");
    }
}

/// Issue 9: an offer whose c= address is broadcast, multicast or
/// unspecified names no host to send RTP to: 488 with a Warning (§20.43).
#[test]
fn offer_to_no_unicast_host_is_488_with_a_warning() {
    let t0 = Instant::now();
    for (i, c_line) in [
        "c=IN IP4 255.255.255.255",
        "c=IN IP4 0.0.0.0",
        "c=IN IP4 224.2.1.1/127",
        "c=IN IP6 ::",
        "c=IN IP6 ff0e::1",
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = core();
        let body = SDP.replace("c=IN IP4 127.0.0.1", c_line);
        c.handle_message(
            &invite(&format!("z9hG4bK-w{i}"), "+15550100000", "", &body),
            udp(PEER),
            t0,
        );
        let out = drain(&mut c);
        assert_eq!(out.statuses(), vec![100, 488], "{c_line}");
        let reject = out.find("SIP/2.0 488");
        assert!(reject.contains("\r\nWarning: 399 tpswitch \""), "{reject}");
        assert!(out.events.is_empty(), "{c_line}");
    }
}

/// Issue 9, found with linphone: its Contact carries an RFC 5626 instance id
/// in a quoted parameter, and our BYE went to
/// `sip:127.0.0.1:40326;transport=udp>;+sip.instance="<urn:uuid:…`, which
/// the phone ignored. The BYE's Request-URI is the URI alone.
#[test]
fn bye_goes_to_a_contact_with_a_quoted_instance_id() {
    let mut c = core();
    let t0 = Instant::now();
    let contact = r#"Contact: <sip:127.0.0.1:40326;transport=udp>;+sip.instance="<urn:uuid:d5f18820-4b8e-4a2c-9a6a-1b2c3d4e5f60>";reg-id=1"#;
    let original = "Contact: <sip:caller@127.0.0.1:5070>";
    let text = String::from_utf8(invite("z9hG4bK-l1", "+15550100000", "", SDP)).unwrap();
    assert!(text.contains(original));
    c.handle_message(text.replace(original, contact).as_bytes(), udp(PEER), t0);
    let leg = incoming_leg(&drain(&mut c));
    c.handle_command(
        SipCommand::Answer {
            leg,
            sdp: SDP.as_bytes().to_vec(),
        },
        t0,
    );
    let tag = tag_of(drain(&mut c).find("SIP/2.0 200"));
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-l2", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    c.handle_command(SipCommand::HangUp(leg), t0);
    let out = drain(&mut c);
    let bye = out.find("BYE ");
    assert!(
        bye.starts_with("BYE sip:127.0.0.1:40326;transport=udp SIP/2.0\r\n"),
        "{bye}"
    );
    // The Request-URI is the Contact; the datagram goes back to where the
    // INVITE came from (trunk.in_dialog_via_proxy, tests_midcall).
    assert_eq!(out.sent[0].0.addr, PEER.parse().unwrap());
}

/// The TCP idle sweep asks which connections are still needed: a call's
/// connection is listed while the dialog lasts (our BYE must go over it,
/// §18) and no longer once the call has ended.
#[test]
fn a_dialog_keeps_its_tcp_connection_in_use() {
    let mut c = core();
    let t0 = Instant::now();
    let tcp = Peer {
        transport: Transport::Tcp { conn: 9 },
        addr: PEER.parse().unwrap(),
    };
    assert!(c.tcp_connections_in_use().is_empty());
    c.handle_message(&invite("z9hG4bK-t1", "+15550100000", "", SDP), tcp, t0);
    let leg = incoming_leg(&drain(&mut c));
    c.handle_command(
        SipCommand::Answer {
            leg,
            sdp: b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n".to_vec(),
        },
        t0,
    );
    let tag = tag_of(drain(&mut c).find("SIP/2.0 200"));
    c.handle_message(&in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", ""), tcp, t0);
    drain(&mut c);
    let later = t0 + Duration::from_secs(120);
    advance(&mut c, later);
    assert_eq!(
        c.tcp_connections_in_use(),
        std::collections::HashSet::from([9])
    );
    c.handle_message(&in_dialog("BYE", "z9hG4bK-b1", &tag, 2, "", ""), tcp, later);
    assert_eq!(drain(&mut c).statuses(), vec![200]);
    advance(&mut c, later + Duration::from_secs(120));
    assert!(c.tcp_connections_in_use().is_empty());
}

// ------------------------------------------------------------ registration

#[path = "tests_register.rs"]
mod register;
// ------------------------------------------------------------------ TLS

fn tls_core() -> SipCore {
    let mut cfg = cfg();
    cfg.trunks[0].tls = true;
    cfg.local.tls_hostport = Some("127.0.0.1:5061".into());
    SipCore::new(cfg, Box::new(|n: &str| n == "+15550100000"))
}

/// RFC 3261 §26 / RFC 5923: toward a TLS trunk the INVITE goes on our
/// trunk connection tagged TLS, Via says TLS with the TLS listener as
/// sent-by and `alias`, Contact names the TLS listener; the 200 that comes
/// back with that Via matches the transaction, and the ACK and BYE stay on
/// the connection.
#[test]
fn uac_over_tls_says_tls_and_matches_its_responses() {
    let mut c = tls_core();
    let t0 = Instant::now();
    let (leg, inv) = dial(&mut c, t0);
    let trunk_tls = Peer {
        transport: Transport::Tls {
            conn: crate::sip::transport::TRUNK_CONN,
        },
        addr: TRUNK.parse().unwrap(),
    };
    assert!(
        inv.contains("\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=")
            && inv.contains(";rport;alias\r\n"),
        "{inv}"
    );
    assert!(
        inv.contains("Contact: <sip:tpswitch@127.0.0.1:5061;transport=tls>"),
        "{inv}"
    );
    c.handle_message(
        &reply(
            &inv,
            200,
            "Contact: <sip:agent@127.0.0.1:5080;transport=tls>\r\n",
            SDP,
        ),
        trunk_tls,
        t0,
    );
    let out = drain(&mut c);
    assert!(
        matches!(&out.events[..], [SipEvent::Answered { leg: l, .. }] if *l == leg),
        "the 200 matched the INVITE: {:?}",
        out.events
    );
    let (peer, ack) = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("ACK "))
        .expect("an ACK");
    assert_eq!(*peer, trunk_tls);
    assert!(ack.contains("Via: SIP/2.0/TLS 127.0.0.1:5061;"), "{ack}");
    c.handle_command(SipCommand::HangUp(leg), t0);
    let out = drain(&mut c);
    let (peer, bye) = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("BYE "))
        .expect("a BYE");
    assert_eq!(*peer, trunk_tls);
    assert!(bye.contains("Via: SIP/2.0/TLS 127.0.0.1:5061;"), "{bye}");
}

/// A call that comes in over TLS is answered on its connection with a
/// Contact naming our TLS listener; one over UDP keeps the plain Contact.
#[test]
fn uas_over_tls_answers_with_a_tls_contact() {
    let mut c = tls_core();
    let t0 = Instant::now();
    let over_tls = Peer {
        transport: Transport::Tls { conn: 7 },
        addr: PEER.parse().unwrap(),
    };
    c.handle_message(
        &invite("z9hG4bK-tls1", "+15550100000", "", SDP),
        over_tls,
        t0,
    );
    let out = drain(&mut c);
    let leg = out
        .events
        .iter()
        .find_map(|e| match e {
            SipEvent::Incoming(call) => Some(call.leg),
            _ => None,
        })
        .expect("an incoming call");
    c.handle_command(
        SipCommand::Answer {
            leg,
            sdp: SDP.as_bytes().to_vec(),
        },
        t0,
    );
    let out = drain(&mut c);
    let (peer, ok) = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("SIP/2.0 200"))
        .expect("a 200");
    assert_eq!(*peer, over_tls);
    assert!(
        ok.contains("Contact: <sip:tpswitch@127.0.0.1:5061;transport=tls>"),
        "{ok}"
    );
}

/// §8.1.3.1: when our connection to the trunk cannot be opened (TCP
/// connect or TLS handshake failed), the INVITE waiting for it fails at
/// once as a 503, the trunk's failure, and is not retried by Timer A/B.
#[test]
fn a_trunk_connection_that_never_opens_fails_the_waiting_invite_as_503() {
    let mut c = tls_core();
    let t0 = Instant::now();
    let (leg, _) = dial(&mut c, t0);
    c.connection_failed(crate::sip::transport::TRUNK_CONN, t0);
    let out = drain(&mut c);
    assert!(
        matches!(
            &out.events[..],
            [SipEvent::Failed { leg: l, outcome: DialOutcome::Unavailable(503) }] if *l == leg
        ),
        "{:?}",
        out.events
    );
    let out = advance(&mut c, t0 + Duration::from_secs(33));
    assert!(
        out.requests().is_empty() && out.events.is_empty(),
        "{out:?}"
    );
    // Another connection's failure touches nothing.
    let (_, _) = dial(&mut c, t0);
    c.connection_failed(99, t0);
    assert!(drain(&mut c).events.is_empty());
}

// ------------------------------------------------ RFC 3263 targets, keepalive

const TARGET_A: &str = "127.0.0.1:5081";
const TARGET_B: &str = "127.0.0.1:5082";
const TARGET_C: &str = "127.0.0.1:5083";

fn weighted(priority: u16, addr: &str) -> crate::sip::dns::Weighted {
    crate::sip::dns::Weighted {
        priority,
        weight: 0,
        targets: vec![crate::sip::dns::Target {
            addr: addr.parse().unwrap(),
            transport: crate::sip::dns::Transport::Udp,
        }],
    }
}

/// A core whose trunk is a name that resolved to `targets`.
fn named_core(keepalive: Option<Duration>, targets: &[(u16, &str)], t0: Instant) -> SipCore {
    let mut c = SipCore::new(
        CoreConfig {
            trunks: vec![TrunkRoute {
                ruri_host: Some("trunk.example.com".into()),
                keepalive,
                ..cfg().trunks[0].clone()
            }],
            ..cfg()
        },
        Box::new(|_: &str| false),
    );
    c.handle_command(
        SipCommand::TrunkTargets {
            trunk: 0,
            records: targets.iter().map(|(p, a)| weighted(*p, a)).collect(),
        },
        t0,
    );
    c
}

/// Places a call; returns the leg and what went out.
fn dial_out(c: &mut SipCore, t0: Instant) -> (LegId, Out) {
    let leg = LegId::next();
    c.handle_command(
        SipCommand::Dial {
            leg,
            request: DialRequest {
                targets: vec!["+12345678910".into()],
                from: vec![Presentation {
                    from_user: "+15550100001".into(),
                    diversion: None,
                }],
                sdp: vec![SDP.as_bytes().to_vec()],
            },
        },
        t0,
    );
    (leg, drain(c))
}

fn invites_to(out: &Out) -> Vec<String> {
    out.sent
        .iter()
        .filter(|(_, m)| m.starts_with("INVITE "))
        .map(|(p, _)| p.addr.to_string())
        .collect()
}

/// RFC 3263 §4.3: Timer B on the first target sends the INVITE to the
/// next one (same Call-ID, new branch); the Request-URI keeps the name.
#[test]
fn uac_fails_over_to_the_next_target_after_timer_b() {
    let t0 = Instant::now();
    let mut c = named_core(None, &[(20, TARGET_B), (10, TARGET_A)], t0);
    let (leg, out) = dial_out(&mut c, t0);
    assert_eq!(invites_to(&out), vec![TARGET_A]);
    let first = out.find("INVITE").to_owned();
    assert!(first.starts_with("INVITE sip:+12345678910@trunk.example.com SIP/2.0"));
    let out = advance(&mut c, t0 + Duration::from_secs(33));
    let to_b: Vec<&(Peer, String)> = out
        .sent
        .iter()
        .filter(|(p, m)| m.starts_with("INVITE ") && p.addr == TARGET_B.parse().unwrap())
        .collect();
    assert!(!to_b.is_empty(), "{:#?}", out.sent);
    assert!(out.events.is_empty(), "no failure yet: {:?}", out.events);
    let second = to_b[0].1.clone();
    let call_id = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("Call-ID:"))
            .map(str::to_owned)
    };
    assert_eq!(call_id(&first), call_id(&second));
    let branch = |m: &str| m.lines().find(|l| l.starts_with("Via:")).map(str::to_owned);
    assert_ne!(branch(&first), branch(&second));
    c.handle_message(
        &reply(&second, 200, "Contact: <sip:agent@127.0.0.1:5082>\r\n", SDP),
        udp(TARGET_B),
        t0 + Duration::from_secs(33),
    );
    let out = drain(&mut c);
    assert!(
        matches!(out.events[..], [SipEvent::Answered { leg: l, .. }] if l == leg),
        "{:?}",
        out.events
    );
}

/// A 503 moves on at once; after the next target rang, its 408 is the
/// agent's no-answer and the third target is not tried.
#[test]
fn uac_503_fails_over_but_not_once_the_target_rang() {
    let t0 = Instant::now();
    let mut c = named_core(None, &[(10, TARGET_A), (20, TARGET_B), (30, TARGET_C)], t0);
    let (leg, out) = dial_out(&mut c, t0);
    let inv = out.find("INVITE").to_owned();
    c.handle_message(&reply(&inv, 503, "", ""), udp(TARGET_A), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK", "INVITE"]);
    assert_eq!(invites_to(&out), vec![TARGET_B]);
    let inv = out.find("INVITE").to_owned();
    c.handle_message(&reply(&inv, 180, "", ""), udp(TARGET_B), t0);
    drain(&mut c);
    c.handle_message(&reply(&inv, 408, "", ""), udp(TARGET_B), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed { leg: l, outcome: DialOutcome::NoAnswer(408) }] if l == leg
    ));
}

/// No target left: the last failure is the outcome.
#[test]
fn uac_503_from_the_last_target_is_the_outcome() {
    let t0 = Instant::now();
    let mut c = named_core(None, &[(10, TARGET_A)], t0);
    let (leg, out) = dial_out(&mut c, t0);
    let inv = out.find("INVITE").to_owned();
    c.handle_message(&reply(&inv, 503, "", ""), udp(TARGET_A), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed { leg: l, outcome: DialOutcome::Unavailable(503) }] if l == leg
    ));
}

/// Unresolved (start_unresolved): a call fails at once as the trunk's.
#[test]
fn uac_without_targets_fails_as_unavailable() {
    let t0 = Instant::now();
    let mut c = named_core(None, &[], t0);
    let (leg, out) = dial_out(&mut c, t0);
    assert!(out.sent.is_empty());
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed { leg: l, outcome: DialOutcome::Unavailable(503) }] if l == leg
    ));
}

/// OPTIONS keepalive: a target that stops answering is skipped by new
/// calls, and used again once it answers; its state is published.
#[test]
fn keepalive_down_target_is_skipped_until_it_answers() {
    let t0 = Instant::now();
    let iv = Duration::from_secs(10);
    let mut c = named_core(Some(iv), &[(10, TARGET_A), (20, TARGET_B)], t0);
    let out = drain(&mut c);
    let probes: Vec<&(Peer, String)> = out
        .sent
        .iter()
        .filter(|(_, m)| m.starts_with("OPTIONS "))
        .collect();
    assert_eq!(probes.len(), 2, "{:#?}", out.sent);
    // Only B answers.
    let to_b = probes
        .iter()
        .find(|(p, _)| p.addr == TARGET_B.parse().unwrap())
        .map(|(_, m)| m.clone())
        .unwrap();
    c.handle_message(
        &reply(&to_b, 200, "", ""),
        udp(TARGET_B),
        t0 + Duration::from_millis(4),
    );
    drain(&mut c);
    let (_, st) = c.target_status();
    assert_eq!(
        st.iter()
            .map(|s| (s.status.target.addr.to_string(), s.status.health))
            .collect::<Vec<_>>(),
        vec![
            (TARGET_A.to_string(), crate::sip::keepalive::Health::Unknown),
            (TARGET_B.to_string(), crate::sip::keepalive::Health::Up)
        ]
    );
    assert_eq!(st[1].status.rtt, Some(Duration::from_millis(4)));
    assert!(st.iter().all(|s| s.trunk == "carrier"));
    // The next round finds A's probe unanswered: A is down.
    let out = advance(&mut c, t0 + iv);
    assert!(c.target_status().1[0].status.health == crate::sip::keepalive::Health::Down);
    let (_, dialled) = dial_out(&mut c, t0 + iv);
    assert_eq!(invites_to(&dialled), vec![TARGET_B], "A is skipped");
    // A answers its new probe (the last OPTIONS to it; earlier ones are
    // retransmissions of the missed probe): calls go to it first again.
    let to_a = out
        .sent
        .iter()
        .rfind(|(p, m)| m.starts_with("OPTIONS ") && p.addr == TARGET_A.parse().unwrap())
        .map(|(_, m)| m.clone())
        .unwrap();
    c.handle_message(&reply(&to_a, 200, "", ""), udp(TARGET_A), t0 + iv);
    drain(&mut c);
    let (_, dialled) = dial_out(&mut c, t0 + iv);
    assert_eq!(invites_to(&dialled), vec![TARGET_A]);
}

#[test]
fn draining_refuses_new_invites_and_options_but_keeps_the_dialog_in_progress() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, tag) = answered(&mut c, t0);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-d1a", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);

    c.handle_command(SipCommand::Drain, t0);
    assert!(c.draining());
    // A new INVITE, even to a mapped number: 503 + Retry-After.
    let msg = String::from_utf8(invite("z9hG4bK-d2", "+15550100000", "", SDP))
        .unwrap()
        .replace("call-1@test", "call-d2@test");
    c.handle_message(msg.as_bytes(), udp(PEER), t0);
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![100, 503]);
    assert!(out.find("SIP/2.0 503").contains("Retry-After: 5"));
    assert!(out.events.is_empty(), "{out:?}");
    // OPTIONS is answered as an INVITE would be (§11.2).
    let opt = String::from_utf8(invite("z9hG4bK-d3", "+15550100000", "", ""))
        .unwrap()
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS")
        .replace("call-1@test", "call-d3@test");
    c.handle_message(opt.as_bytes(), udp(PEER), t0);
    assert_eq!(drain(&mut c).statuses(), vec![503]);
    // The call in progress still ends normally when its caller hangs up.
    c.handle_message(
        &in_dialog("BYE", "z9hG4bK-d1b", &tag, 2, "", ""),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(matches!(
        out.events.as_slice(),
        [SipEvent::Ended {
            cause: EndCause::RemoteBye,
            ..
        }]
    ));
}

#[test]
fn a_reloaded_policy_applies_from_the_next_request() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, tag) = answered(&mut c, t0);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-p1a", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    // The trunk moves to 127.0.0.2 and one call at a time is the limit.
    c.handle_command(
        SipCommand::Policy(Box::new(Policy {
            allow: vec!["127.0.0.2/32".parse().unwrap()],
            untrusted: Untrusted::Reject,
            max_calls: 1,
            max_transactions: 10,
            retry_after: Duration::from_secs(9),
            flood: Default::default(),
        })),
        t0,
    );
    // The old source is a stranger now: 403.
    let msg = String::from_utf8(invite("z9hG4bK-p2", "+15550100000", "", SDP))
        .unwrap()
        .replace("call-1@test", "call-p2@test");
    c.handle_message(msg.as_bytes(), udp(PEER), t0);
    assert_eq!(drain(&mut c).statuses(), vec![403]);
    // The new one is trusted, and meets the new limit with the new Retry-After.
    c.handle_message(msg.as_bytes(), udp("127.0.0.2:5070"), t0);
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![100, 503]);
    assert!(out.find("SIP/2.0 503").contains("Retry-After: 9"));
    // Taken out of the allow-list means untrusted at once, even inside a
    // call it holds.
    c.handle_message(
        &in_dialog("BYE", "z9hG4bK-p1b", &tag, 2, "", ""),
        udp(PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![403]);
}

/// `trunk.srtp = "required"` at the SIP core: a plain offer gets 488 naming the
/// policy; an RTP/SAVP offer is answered with SRTP, and a hold re-INVITE keeps
/// our key (RFC 4568 §7.1.4), so the stream we send is not re-keyed.
#[test]
fn required_srtp_refuses_plain_offers_and_a_reoffer_keeps_our_key() {
    use crate::media::srtp::SrtpPolicy;
    let t0 = Instant::now();
    let required = || {
        let mut cfg = cfg();
        cfg.trunks[0].srtp = SrtpPolicy::Required;
        SipCore::new(cfg, Box::new(|n: &str| n == "+15550100000"))
    };
    let mut c = required();
    c.handle_message(
        &invite("z9hG4bK-p1", "+15550100000", "", SDP),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![100, 488]);
    let reject = out.find("SIP/2.0 488");
    assert!(
        reject.contains("Warning: 399 tpswitch") && reject.contains("required"),
        "{reject}"
    );

    let mut c = required();
    let savp = SDP.replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
    c.handle_message(
        &invite("z9hG4bK-s1", "+15550100000", "", &savp),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    let Some(SipEvent::Incoming(call)) = out.events.first() else {
        panic!("{:?}", out.statuses())
    };
    let neg = call.media.clone().expect("negotiated");
    let ours = neg.stream.srtp.clone().expect("SRTP").local;
    let answer = crate::sdp::build_answer(&neg, "127.0.0.1:20000".parse().unwrap(), 1, 1);
    c.handle_command(
        SipCommand::Answer {
            leg: call.leg,
            sdp: answer,
        },
        t0,
    );
    let tag = tag_of(drain(&mut c).find("SIP/2.0 200"));
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    let hold = format!("{savp}a=sendonly\r\n");
    c.handle_message(
        &in_dialog(
            "INVITE",
            "z9hG4bK-h",
            &tag,
            2,
            "Content-Type: application/sdp\r\n",
            &hold,
        ),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    let [SipEvent::MediaChanged { media, .. }] = &out.events[..] else {
        panic!("{:?}", out.statuses())
    };
    assert_eq!(media.stream.srtp.as_ref().map(|s| &s.local), Some(&ours));
    let ok = out.find("SIP/2.0 200");
    let key = crate::sdp::crypto::build(1, media.stream.srtp.as_ref().unwrap().suite, &ours);
    assert!(ok.contains(&format!("a=crypto:{key}")), "{ok}");
}
#[path = "tests_trunks.rs"]
mod trunks;

#[path = "tests_per_trunk.rs"]
mod per_trunk;
