//! Several trunks on a simulated clock: failover on a trunk failure,
//! Retry-After, max_calls and max_cps queueing, per-trunk headers.

use super::*;

const TRUNK_B: &str = "127.0.0.1:5090";

fn two_trunks(a: TrunkRoute, b: TrunkRoute) -> SipCore {
    let cfg = CoreConfig {
        trunks: vec![a, b],
        ..cfg()
    };
    SipCore::new(cfg, Box::new(|_: &str| false))
}

fn a() -> TrunkRoute {
    TrunkRoute::plain("a", TRUNK.parse().unwrap())
}

fn b() -> TrunkRoute {
    TrunkRoute::plain("b", TRUNK_B.parse().unwrap())
}

fn request() -> DialRequest {
    DialRequest {
        targets: vec!["+12345678910".into(), "0012345678910".into()],
        from: vec![Presentation {
            from_user: "+15550100001".into(),
            diversion: None,
        }],
        sdp: vec![SDP.as_bytes().to_vec()],
    }
}

fn place(c: &mut SipCore, now: Instant) -> (LegId, Out) {
    let leg = LegId::next();
    c.handle_command(
        SipCommand::Dial {
            leg,
            request: request(),
        },
        now,
    );
    (leg, drain(c))
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

fn dialling_trunk(out: &Out) -> Vec<String> {
    out.events
        .iter()
        .filter_map(|e| match e {
            SipEvent::Dialling { to, .. } => Some(to.trunk.clone()),
            _ => None,
        })
        .collect()
}

/// From trunk `peer`: a response to `req`.
fn answer_from(
    c: &mut SipCore,
    peer: &str,
    req: &str,
    status: u16,
    extra: &str,
    now: Instant,
) -> Out {
    c.handle_message(&reply(req, status, extra, ""), udp(peer), now);
    drain(c)
}

#[test]
fn a_503_moves_the_leg_to_the_next_trunk_with_a_new_call_id() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    let (leg, out) = place(&mut c, t0);
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
    assert_eq!(dialling_trunk(&out), vec!["a"]);
    let first = out.sent[0].1.clone();
    let out = answer_from(&mut c, TRUNK, &first, 503, "", t0);
    // The 503 is ACKed (§17.1.1.3) and the INVITE goes to trunk b, with
    // b's number format, a new Call-ID and no failure reported.
    assert_eq!(out.requests(), vec!["ACK", "INVITE"]);
    let second = out.find("INVITE");
    assert!(
        second.starts_with("INVITE sip:0012345678910@127.0.0.1:5090 "),
        "{second}"
    );
    assert_ne!(header(&first, "Call-ID"), header(second, "Call-ID"));
    let to_b = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("INVITE"))
        .unwrap();
    assert_eq!(to_b.0.addr, TRUNK_B.parse().unwrap());
    assert_eq!(dialling_trunk(&out), vec!["b"]);
    assert!(!out
        .events
        .iter()
        .any(|e| matches!(e, SipEvent::Failed { .. })));
    // b answers: the leg is up as usual.
    let second = second.to_owned();
    let out = answer_from(
        &mut c,
        TRUNK_B,
        &second,
        200,
        "Contact: <sip:agent@127.0.0.1:5090>\r\n",
        t0,
    );
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, SipEvent::Answered { leg: l, .. } if *l == leg)));
}

#[test]
fn every_trunk_failing_ends_the_leg_as_unavailable() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    let (leg, out) = place(&mut c, t0);
    let out = answer_from(&mut c, TRUNK, out.find("INVITE"), 500, "", t0);
    let out = answer_from(&mut c, TRUNK_B, out.find("INVITE"), 502, "", t0);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed { leg: l, outcome: DialOutcome::Unavailable(502) }] if l == leg
    ));
}

#[test]
fn busy_declined_and_no_answer_after_ringing_are_not_failed_over() {
    for (status, ring, outcome) in [
        (486, false, DialOutcome::Busy(486)),
        (603, false, DialOutcome::Rejected(603)),
        (480, true, DialOutcome::NoAnswer(480)),
        (408, true, DialOutcome::NoAnswer(408)),
    ] {
        let mut c = two_trunks(a(), b());
        let t0 = Instant::now();
        let (leg, out) = place(&mut c, t0);
        let inv = out.find("INVITE").to_owned();
        if ring {
            answer_from(&mut c, TRUNK, &inv, 180, "", t0);
        }
        let out = answer_from(&mut c, TRUNK, &inv, status, "", t0);
        assert_eq!(out.requests(), vec!["ACK"], "{status}");
        assert!(
            matches!(&out.events[..], [SipEvent::Failed { leg: l, outcome: o }] if *l == leg && *o == outcome),
            "{status}: {:?}",
            out.events
        );
    }
}

#[test]
fn a_408_before_any_provisional_is_the_trunks_and_fails_over() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    let (_, out) = place(&mut c, t0);
    let out = answer_from(&mut c, TRUNK, out.find("INVITE"), 408, "", t0);
    assert_eq!(out.requests(), vec!["ACK", "INVITE"]);
    assert_eq!(dialling_trunk(&out), vec!["b"]);
}

#[test]
fn a_silent_trunk_fails_over_after_timer_b() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    place(&mut c, t0);
    let out = advance(&mut c, t0 + Duration::from_secs(33));
    assert_eq!(dialling_trunk(&out), vec!["b"]);
    let last = out
        .sent
        .iter()
        .rfind(|(_, m)| m.starts_with("INVITE"))
        .unwrap();
    assert_eq!(last.0.addr, TRUNK_B.parse().unwrap());
}

#[test]
fn retry_after_on_a_503_skips_the_trunk_for_the_next_legs_until_then() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    let (_, out) = place(&mut c, t0);
    answer_from(
        &mut c,
        TRUNK,
        out.find("INVITE"),
        503,
        "Retry-After: 60\r\n",
        t0,
    );
    // A new leg 10 s later goes straight to b.
    let (_, out) = place(&mut c, t0 + Duration::from_secs(10));
    assert_eq!(dialling_trunk(&out), vec!["b"]);
    // After the minute, a is first again.
    let (_, out) = place(&mut c, t0 + Duration::from_secs(61));
    assert_eq!(dialling_trunk(&out), vec!["a"]);
}

#[test]
fn max_cps_queues_a_burst_instead_of_refusing_it() {
    let mut one = a();
    one.max_cps = Some(1.0);
    let cfg = CoreConfig {
        trunks: vec![one],
        ..cfg()
    };
    let mut c = SipCore::new(cfg, Box::new(|_: &str| false));
    let t0 = Instant::now();
    let (_, out) = place(&mut c, t0);
    assert_eq!(out.requests(), vec!["INVITE"]);
    let (second, out) = place(&mut c, t0);
    // No INVITE yet, no failure: the leg waits for the next token.
    assert!(out.sent.is_empty());
    assert!(matches!(out.events[..], [SipEvent::Queued { leg }] if leg == second));
    assert_eq!(c.stats().outbound_queued, 1);
    // (The first INVITE's Timer A retransmissions are all that goes out.)
    let out = advance(&mut c, t0 + Duration::from_millis(900));
    assert!(dialling_trunk(&out).is_empty());
    let out = advance(&mut c, t0 + Duration::from_millis(1100));
    assert_eq!(dialling_trunk(&out), vec!["a"]);
}

#[test]
fn max_calls_queues_until_a_call_on_the_trunk_ends() {
    let mut one = a();
    one.max_calls = 1;
    let cfg = CoreConfig {
        trunks: vec![one],
        ..cfg()
    };
    let mut c = SipCore::new(cfg, Box::new(|_: &str| false));
    let t0 = Instant::now();
    let (_, out) = place(&mut c, t0);
    let inv = out.find("INVITE").to_owned();
    let (_, out) = place(&mut c, t0);
    assert!(matches!(out.events[..], [SipEvent::Queued { .. }]));
    // The first leg ends busy: its slot goes to the waiting leg.
    let out = answer_from(&mut c, TRUNK, &inv, 486, "", t0);
    assert_eq!(out.requests(), vec!["ACK", "INVITE"]);
}

#[test]
fn a_waiting_leg_that_is_hung_up_never_dials() {
    let mut one = a();
    one.max_cps = Some(1.0);
    let cfg = CoreConfig {
        trunks: vec![one],
        ..cfg()
    };
    let mut c = SipCore::new(cfg, Box::new(|_: &str| false));
    let t0 = Instant::now();
    place(&mut c, t0);
    let (second, _) = place(&mut c, t0);
    c.handle_command(SipCommand::HangUp(second), t0);
    let out = drain(&mut c);
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed { leg, outcome: DialOutcome::Cancelled }] if leg == second
    ));
    let out = advance(&mut c, t0 + Duration::from_secs(5));
    assert!(dialling_trunk(&out).is_empty());
}

#[test]
fn a_cancelled_leg_is_not_failed_over() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    let (leg, out) = place(&mut c, t0);
    let inv = out.find("INVITE").to_owned();
    answer_from(&mut c, TRUNK, &inv, 180, "", t0);
    c.handle_command(SipCommand::HangUp(leg), t0);
    drain(&mut c);
    let out = answer_from(&mut c, TRUNK, &inv, 503, "", t0);
    assert!(!out.requests().contains(&"INVITE".to_owned()));
    assert!(matches!(
        out.events[..],
        [SipEvent::Failed {
            outcome: DialOutcome::Cancelled,
            ..
        }]
    ));
}

#[test]
fn request_uri_from_and_to_hosts_pai_privacy_and_extra_headers_are_per_trunk() {
    let mut twilio = a();
    twilio.ruri_host = Some("example.pstn.twilio.com".into());
    twilio.from_host = Some("tpswitch.example.com".into());
    twilio.to_host = Some("to.example.net".into());
    twilio.pai = true;
    twilio.privacy = Some("id".into());
    twilio.headers = vec![("X-Carrier-Token".into(), "abc123".into())];
    let mut c = two_trunks(twilio, b());
    let t0 = Instant::now();
    let (_, out) = place(&mut c, t0);
    // Sent to the proxy address, named by the carrier's domain.
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
    let inv = out.find("INVITE").to_owned();
    assert!(
        inv.starts_with("INVITE sip:+12345678910@example.pstn.twilio.com SIP/2.0\r\n"),
        "{inv}"
    );
    assert!(header(&inv, "From")
        .unwrap()
        .starts_with("<sip:+15550100001@tpswitch.example.com>;tag="));
    assert_eq!(
        header(&inv, "To"),
        Some("<sip:+12345678910@to.example.net>")
    );
    assert_eq!(
        header(&inv, "P-Asserted-Identity"),
        Some("<sip:+15550100001@tpswitch.example.com>")
    );
    assert_eq!(header(&inv, "Privacy"), Some("id"));
    assert_eq!(header(&inv, "X-Carrier-Token"), Some("abc123"));
    // Trunk b has none of it.
    let out = answer_from(&mut c, TRUNK, &inv, 503, "", t0);
    let to_b = out.find("INVITE");
    assert!(header(to_b, "P-Asserted-Identity").is_none());
    assert!(header(to_b, "X-Carrier-Token").is_none());
    assert!(header(to_b, "From")
        .unwrap()
        .starts_with("<sip:+15550100001@127.0.0.1:5060>"));
}

#[test]
fn an_inbound_call_names_the_trunk_whose_allow_holds_its_source() {
    let mut other = b();
    other.allow = vec!["192.0.2.0/24".parse().unwrap()];
    let mut c = SipCore::new(
        CoreConfig {
            trunks: vec![other, a()],
            allow: vec![
                "127.0.0.1/32".parse().unwrap(),
                "192.0.2.0/24".parse().unwrap(),
            ],
            ..cfg()
        },
        Box::new(|n: &str| n == "+15550100000"),
    );
    let t0 = Instant::now();
    c.handle_message(
        &invite("z9hG4bK-t1", "+15550100000", "", SDP),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    let trunk = out.events.iter().find_map(|e| match e {
        SipEvent::Incoming(call) => Some(call.caller.trunk.clone()),
        _ => None,
    });
    assert_eq!(trunk.as_deref(), Some("a"));
}

#[test]
fn each_trunk_presents_the_caller_its_own_way() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    let leg = LegId::next();
    let mut req = request();
    req.from = vec![
        Presentation {
            from_user: "+15550100001".into(),
            diversion: None,
        },
        Presentation {
            from_user: "+15551234567".into(),
            diversion: Some("<tel:+15550100001>;reason=unconditional".into()),
        },
    ];
    c.handle_command(SipCommand::Dial { leg, request: req }, t0);
    let out = drain(&mut c);
    let inv = out.find("INVITE").to_owned();
    assert!(header(&inv, "From")
        .unwrap()
        .starts_with("<sip:+15550100001@"));
    assert!(header(&inv, "Diversion").is_none());
    let out = answer_from(&mut c, TRUNK, &inv, 503, "", t0);
    let to_b = out.find("INVITE");
    assert!(header(to_b, "From")
        .unwrap()
        .starts_with("<sip:+15551234567@"));
    assert_eq!(
        header(to_b, "Diversion"),
        Some("<tel:+15550100001>;reason=unconditional")
    );
}

#[test]
fn a_transport_error_moves_the_leg_to_the_next_trunk_at_once() {
    let mut c = two_trunks(a(), b());
    let t0 = Instant::now();
    place(&mut c, t0);
    c.trunk_unreachable(TRUNK.parse().unwrap(), t0 + Duration::from_millis(50));
    let out = drain(&mut c);
    assert_eq!(dialling_trunk(&out), vec!["b"]);
    assert_eq!(c.stats().trunk_failures, 1);
}

// ------------------------------------------- servers inside a trunk (RFC 3263)

const SERVER_1: &str = "127.0.0.1:5081";
const SERVER_2: &str = "127.0.0.1:5082";

fn server(priority: u16, addr: &str) -> crate::sip::dns::Weighted {
    crate::sip::dns::Weighted {
        priority,
        weight: 0,
        targets: vec![crate::sip::dns::Target {
            addr: addr.parse().unwrap(),
            transport: crate::sip::dns::Transport::Udp,
        }],
    }
}

/// Trunk a is a name that resolved to two servers; trunk b is one address.
fn named_a_and_b(t0: Instant) -> SipCore {
    let mut c = two_trunks(
        TrunkRoute {
            ruri_host: Some("sbc.example.com".into()),
            ..a()
        },
        b(),
    );
    c.handle_command(
        SipCommand::TrunkTargets {
            trunk: 0,
            records: vec![server(10, SERVER_1), server(20, SERVER_2)],
        },
        t0,
    );
    drain(&mut c);
    c
}

/// The last INVITE that went out (after Timer A retransmissions).
fn invite_to(out: &Out) -> (String, String) {
    out.sent
        .iter()
        .rfind(|(_, m)| m.starts_with("INVITE "))
        .map(|(p, m)| (p.addr.to_string(), m.clone()))
        .expect("an INVITE went out")
}

/// A trunk's servers come first (RFC 3263 §4.3, same Call-ID, no new
/// trunk), the next trunk only once they are exhausted.
#[test]
fn a_trunks_servers_are_tried_before_the_next_trunk() {
    let t0 = Instant::now();
    let mut c = named_a_and_b(t0);
    let (leg, out) = place(&mut c, t0);
    let (to, first) = invite_to(&out);
    assert_eq!(to, SERVER_1);
    assert!(
        first.starts_with("INVITE sip:+12345678910@sbc.example.com "),
        "{first}"
    );
    assert_eq!(dialling_trunk(&out), vec!["a"]);

    let out = answer_from(&mut c, SERVER_1, &first, 503, "", t0);
    let (to, second) = invite_to(&out);
    assert_eq!(to, SERVER_2);
    assert!(
        second.starts_with("INVITE sip:+12345678910@sbc.example.com "),
        "{second}"
    );
    assert_eq!(header(&first, "Call-ID"), header(&second, "Call-ID"));
    assert!(dialling_trunk(&out).is_empty(), "still trunk a");
    assert_eq!(c.stats().trunk_failures, 0);

    let out = answer_from(&mut c, SERVER_2, &second, 503, "", t0);
    let (to, third) = invite_to(&out);
    assert_eq!(to, TRUNK_B);
    assert!(
        third.starts_with("INVITE sip:0012345678910@127.0.0.1:5090 "),
        "{third}"
    );
    assert_ne!(header(&first, "Call-ID"), header(&third, "Call-ID"));
    assert_eq!(dialling_trunk(&out), vec!["b"]);
    assert_eq!(c.stats().trunk_failures, 1);

    // b fails too: the leg ends as the trunks' failure, never a miss.
    let out = answer_from(&mut c, TRUNK_B, &third, 503, "", t0);
    assert!(out.events.iter().any(|e| matches!(
        e,
        SipEvent::Failed { leg: l, outcome: DialOutcome::Unavailable(503) } if *l == leg
    )));
}

/// A 500 is the trunk's failure but says nothing of one server being
/// down (RFC 3263 §4.3 names 503 and time-outs): straight to trunk b.
#[test]
fn a_500_skips_the_trunks_other_servers() {
    let t0 = Instant::now();
    let mut c = named_a_and_b(t0);
    let (_, out) = place(&mut c, t0);
    let (_, first) = invite_to(&out);
    let out = answer_from(&mut c, SERVER_1, &first, 500, "", t0);
    let (to, _) = invite_to(&out);
    assert_eq!(to, TRUNK_B);
    assert_eq!(dialling_trunk(&out), vec!["b"]);
}

/// Timer B on the first server moves to the second server of the same
/// trunk; on the last one, to the next trunk.
#[test]
fn timer_b_walks_the_servers_then_the_trunks() {
    let t0 = Instant::now();
    let mut c = named_a_and_b(t0);
    let (_, out) = place(&mut c, t0);
    assert_eq!(invite_to(&out).0, SERVER_1);
    let b = t0 + Duration::from_secs(33);
    c.handle_timeout(b);
    let out = drain(&mut c);
    assert_eq!(invite_to(&out).0, SERVER_2);
    c.handle_timeout(b + Duration::from_secs(33));
    let out = drain(&mut c);
    assert_eq!(invite_to(&out).0, TRUNK_B);
    assert_eq!(dialling_trunk(&out), vec!["b"]);
}

/// ACK and BYE of a leg go to the trunk (and server) it was placed
/// through, not to the first trunk nor to the far end's Contact.
#[test]
fn in_dialog_requests_go_to_the_trunk_the_leg_was_placed_through() {
    let t0 = Instant::now();
    let mut c = named_a_and_b(t0);
    let (leg, out) = place(&mut c, t0);
    let (_, first) = invite_to(&out);
    let out = answer_from(&mut c, SERVER_1, &first, 500, "", t0);
    let (_, to_b) = invite_to(&out);
    let out = answer_from(
        &mut c,
        TRUNK_B,
        &to_b,
        200,
        "Contact: <sip:agent@198.51.100.66:5099>\r\n",
        t0,
    );
    let ack = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("ACK "))
        .expect("the 2xx is ACKed");
    assert_eq!(ack.0.addr, TRUNK_B.parse().unwrap());
    c.handle_command(SipCommand::HangUp(leg), t0);
    let out = drain(&mut c);
    let bye = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("BYE "))
        .expect("a BYE");
    assert_eq!(bye.0.addr, TRUNK_B.parse().unwrap());
}

/// The same through server 2 of trunk a: in-dialog requests follow the
/// server that answered, and a trunk with `in_dialog_via_proxy = false`
/// sends them to the Contact.
#[test]
fn in_dialog_requests_follow_the_server_and_the_trunks_own_rule() {
    let t0 = Instant::now();
    let mut c = named_a_and_b(t0);
    let (_, out) = place(&mut c, t0);
    let (_, first) = invite_to(&out);
    let out = answer_from(&mut c, SERVER_1, &first, 503, "", t0);
    let (_, second) = invite_to(&out);
    let out = answer_from(
        &mut c,
        SERVER_2,
        &second,
        200,
        "Contact: <sip:agent@127.0.0.1:5099>\r\n",
        t0,
    );
    let ack = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("ACK "))
        .unwrap();
    assert_eq!(ack.0.addr, SERVER_2.parse().unwrap());

    let mut c = two_trunks(
        TrunkRoute {
            via_proxy: false,
            ..a()
        },
        b(),
    );
    let (_, out) = place(&mut c, t0);
    let (_, first) = invite_to(&out);
    let out = answer_from(
        &mut c,
        TRUNK,
        &first,
        200,
        "Contact: <sip:agent@127.0.0.1:5099>\r\n",
        t0,
    );
    let ack = out
        .sent
        .iter()
        .find(|(_, m)| m.starts_with("ACK "))
        .unwrap();
    assert_eq!(ack.0.addr, "127.0.0.1:5099".parse().unwrap());
}

// ------------------------------- every trunk its own servers and keepalive

const B_SERVER_1: &str = "127.0.0.1:5091";
const B_SERVER_2: &str = "127.0.0.1:5092";

/// Both trunks are names: a resolved its two servers, b its own two.
fn named_a_and_named_b(t0: Instant, b_keepalive: Option<Duration>) -> SipCore {
    let mut c = two_trunks(
        TrunkRoute {
            ruri_host: Some("sbc.example.com".into()),
            ..a()
        },
        TrunkRoute {
            ruri_host: Some("backup.example.net".into()),
            keepalive: b_keepalive,
            ..b()
        },
    );
    for (trunk, records) in [
        (0, vec![server(10, SERVER_1), server(20, SERVER_2)]),
        (1, vec![server(10, B_SERVER_1), server(20, B_SERVER_2)]),
    ] {
        c.handle_command(SipCommand::TrunkTargets { trunk, records }, t0);
    }
    c
}

/// Each trunk walks its own resolved servers: after a's two, b's first,
/// then b's second (RFC 3263 §4.3 within b), with b's name in the
/// Request-URI; b's answer never replaced a's servers.
#[test]
fn the_second_trunk_walks_its_own_resolved_servers() {
    let t0 = Instant::now();
    let mut c = named_a_and_named_b(t0, None);
    drain(&mut c);
    let (_, out) = place(&mut c, t0);
    let (to, first) = invite_to(&out);
    assert_eq!(to, SERVER_1);
    let out = answer_from(&mut c, SERVER_1, &first, 503, "", t0);
    let (to, second) = invite_to(&out);
    assert_eq!(to, SERVER_2);
    let out = answer_from(&mut c, SERVER_2, &second, 503, "", t0);
    let (to, third) = invite_to(&out);
    assert_eq!(to, B_SERVER_1);
    assert!(
        third.starts_with("INVITE sip:0012345678910@backup.example.net "),
        "{third}"
    );
    assert_eq!(dialling_trunk(&out), vec!["b"]);
    let out = answer_from(&mut c, B_SERVER_1, &third, 503, "", t0);
    let (to, fourth) = invite_to(&out);
    assert_eq!(to, B_SERVER_2);
    assert_eq!(header(&third, "Call-ID"), header(&fourth, "Call-ID"));
    assert_eq!(
        c.stats().trunk_failures,
        1,
        "only a failed as a trunk so far"
    );

    // A new call still starts at a's servers.
    let (_, out) = place(&mut c, t0);
    assert_eq!(invite_to(&out).0, SERVER_1);
}

/// An unresolved trunk (no records) is down alone: calls go straight to
/// the next trunk's servers.
#[test]
fn an_unresolved_first_trunk_leaves_the_second_trunk_working() {
    let t0 = Instant::now();
    let mut c = named_a_and_named_b(t0, None);
    c.handle_command(
        SipCommand::TrunkTargets {
            trunk: 0,
            records: Vec::new(),
        },
        t0,
    );
    drain(&mut c);
    let (_, out) = place(&mut c, t0);
    assert_eq!(invite_to(&out).0, B_SERVER_1);
    assert_eq!(dialling_trunk(&out), vec!["b"]);
}

/// keepalive per trunk: only b has an interval, so only b's servers get
/// OPTIONS; b's silent server is marked down and skipped, under b's name.
#[test]
fn keepalive_runs_per_trunk_with_its_own_interval() {
    let t0 = Instant::now();
    let iv = Duration::from_secs(7);
    let mut c = named_a_and_named_b(t0, Some(iv));
    let out = drain(&mut c);
    let probed: Vec<String> = out
        .sent
        .iter()
        .filter(|(_, m)| m.starts_with("OPTIONS "))
        .map(|(p, _)| p.addr.to_string())
        .collect();
    assert_eq!(probed, vec![B_SERVER_1, B_SERVER_2], "only b is probed");
    // Only b's second server answers.
    let to_2 = out
        .sent
        .iter()
        .find(|(p, m)| m.starts_with("OPTIONS ") && p.addr == B_SERVER_2.parse().unwrap())
        .map(|(_, m)| m.clone())
        .unwrap();
    c.handle_message(&reply(&to_2, 200, "", ""), udp(B_SERVER_2), t0);
    drain(&mut c);
    advance(&mut c, t0 + iv);
    let (_, st) = c.target_status();
    let seen: Vec<(String, String, crate::sip::keepalive::Health)> = st
        .iter()
        .map(|s| {
            (
                s.trunk.clone(),
                s.status.target.addr.to_string(),
                s.status.health,
            )
        })
        .collect();
    use crate::sip::keepalive::Health;
    assert_eq!(
        seen,
        vec![
            ("b".into(), B_SERVER_1.into(), Health::Down),
            ("b".into(), B_SERVER_2.into(), Health::Up),
        ]
    );
    // a's servers fail; b's down server is skipped.
    let (_, out) = place(&mut c, t0 + iv);
    let (_, first) = invite_to(&out);
    let out = answer_from(&mut c, SERVER_1, &first, 500, "", t0 + iv);
    assert_eq!(invite_to(&out).0, B_SERVER_2);
}

/// Each stream trunk has its own connection: a TCP trunk and a TLS trunk
/// never share one (a failed connection fails only its trunk).
#[test]
fn each_stream_trunk_has_its_own_connection() {
    let t0 = Instant::now();
    let mut c = two_trunks(
        TrunkRoute { tcp: true, ..a() },
        TrunkRoute { tls: true, ..b() },
    );
    let (_, out) = place(&mut c, t0);
    let to_a = out
        .sent
        .iter()
        .rfind(|(_, m)| m.starts_with("INVITE "))
        .map(|(p, _)| *p)
        .unwrap();
    assert_eq!(
        to_a.transport,
        Transport::Tcp {
            conn: crate::sip::transport::trunk_conn(0, 0)
        }
    );
    c.connection_failed(crate::sip::transport::trunk_conn(0, 0), t0);
    let out = drain(&mut c);
    let to_b = out
        .sent
        .iter()
        .rfind(|(_, m)| m.starts_with("INVITE "))
        .map(|(p, _)| *p)
        .unwrap();
    assert_eq!(
        to_b.transport,
        Transport::Tls {
            conn: crate::sip::transport::trunk_conn(1, 0)
        }
    );
    assert_eq!(to_b.addr, TRUNK_B.parse().unwrap());
    assert_eq!(
        crate::sip::transport::trunk_index(crate::sip::transport::trunk_conn(1, 0)),
        Some(1)
    );
    assert_eq!(crate::sip::transport::trunk_index(1), None);
}

/// A TLS trunk whose name resolved to two servers (`_sips._tcp`): after a
/// 503 from the first, the INVITE to the second must not go down the
/// connection to the first (it would reach the same server again). Each
/// server of a stream trunk has its own connection.
#[test]
fn each_server_of_a_stream_trunk_has_its_own_connection() {
    let t0 = Instant::now();
    let tls_server = |priority: u16, addr: &str| crate::sip::dns::Weighted {
        priority,
        weight: 0,
        targets: vec![crate::sip::dns::Target {
            addr: addr.parse().unwrap(),
            transport: crate::sip::dns::Transport::Tls,
        }],
    };
    let mut c = two_trunks(
        TrunkRoute {
            tls: true,
            ruri_host: Some("sbc.example.com".into()),
            ..a()
        },
        b(),
    );
    c.handle_command(
        SipCommand::TrunkTargets {
            trunk: 0,
            records: vec![tls_server(10, SERVER_1), tls_server(20, SERVER_2)],
        },
        t0,
    );
    drain(&mut c);
    let (_, out) = place(&mut c, t0);
    let (first_peer, first) = out
        .sent
        .iter()
        .rfind(|(_, m)| m.starts_with("INVITE "))
        .map(|(p, m)| (*p, m.clone()))
        .unwrap();
    assert_eq!(first_peer.addr, SERVER_1.parse().unwrap());
    let resp = reply(&first, 503, "", "");
    c.handle_message(&resp, first_peer, t0);
    let out = drain(&mut c);
    let second_peer = out
        .sent
        .iter()
        .rfind(|(_, m)| m.starts_with("INVITE "))
        .map(|(p, _)| *p)
        .unwrap();
    assert_eq!(second_peer.addr, SERVER_2.parse().unwrap());
    assert!(matches!(second_peer.transport, Transport::Tls { .. }));
    assert_ne!(
        first_peer.transport.conn(),
        second_peer.transport.conn(),
        "the second server gets a connection of its own"
    );
    // Both are trunk a's connections.
    for p in [first_peer, second_peer] {
        let conn = p.transport.conn().unwrap();
        assert_eq!(crate::sip::transport::trunk_index(conn), Some(0));
    }
}

/// keepalive on a TLS trunk: each server is probed over its own
/// connection (Via TLS), so one that answers is up and one that does not
/// is down and skipped, as over UDP.
#[test]
fn keepalive_probes_each_stream_server_over_its_own_connection() {
    let t0 = Instant::now();
    let iv = Duration::from_secs(5);
    let tls_server = |priority: u16, addr: &str| crate::sip::dns::Weighted {
        priority,
        weight: 0,
        targets: vec![crate::sip::dns::Target {
            addr: addr.parse().unwrap(),
            transport: crate::sip::dns::Transport::Tls,
        }],
    };
    let mut c = two_trunks(
        TrunkRoute {
            tls: true,
            keepalive: Some(iv),
            ..a()
        },
        b(),
    );
    c.handle_command(
        SipCommand::TrunkTargets {
            trunk: 0,
            records: vec![tls_server(10, SERVER_1), tls_server(20, SERVER_2)],
        },
        t0,
    );
    let out = drain(&mut c);
    let probes: Vec<(Peer, String)> = out
        .sent
        .iter()
        .filter(|(_, m)| m.starts_with("OPTIONS "))
        .cloned()
        .collect();
    assert_eq!(probes.len(), 2, "{:#?}", out.sent);
    assert!(probes
        .iter()
        .all(|(p, m)| matches!(p.transport, Transport::Tls { .. })
            && header(m, "Via").is_some_and(|v| v.starts_with("SIP/2.0/TLS "))));
    assert_ne!(probes[0].0.transport.conn(), probes[1].0.transport.conn());
    // Only server 2 answers, on its connection.
    let (peer2, to_2) = probes
        .iter()
        .find(|(p, _)| p.addr == SERVER_2.parse().unwrap())
        .cloned()
        .unwrap();
    c.handle_message(&reply(&to_2, 200, "", ""), peer2, t0);
    drain(&mut c);
    advance(&mut c, t0 + iv);
    use crate::sip::keepalive::Health;
    let health: Vec<(String, Health)> = c
        .target_status()
        .1
        .iter()
        .map(|s| (s.status.target.addr.to_string(), s.status.health))
        .collect();
    assert_eq!(
        health,
        vec![
            (SERVER_1.into(), Health::Down),
            (SERVER_2.into(), Health::Up)
        ]
    );
    let (_, out) = place(&mut c, t0 + iv);
    assert_eq!(invite_to(&out).0, SERVER_2, "the silent server is skipped");
}

/// A re-resolution keeps a stream server's connection; a server new to the
/// answer gets a connection never used before (not the one of a server
/// that left, which may still carry a call).
#[test]
fn a_new_dns_answer_keeps_known_servers_connections_and_never_reuses_one() {
    let t0 = Instant::now();
    const SERVER_3: &str = "127.0.0.1:5083";
    let tcp_server = |priority: u16, addr: &str| crate::sip::dns::Weighted {
        priority,
        weight: 0,
        targets: vec![crate::sip::dns::Target {
            addr: addr.parse().unwrap(),
            transport: crate::sip::dns::Transport::Tcp,
        }],
    };
    let mut c = two_trunks(TrunkRoute { tcp: true, ..a() }, b());
    let conns = |c: &mut SipCore| -> Vec<(String, Option<u64>)> {
        c.hops(0)
            .into_iter()
            .map(|p| (p.addr.to_string(), p.transport.conn()))
            .collect()
    };
    c.handle_command(
        SipCommand::TrunkTargets {
            trunk: 0,
            records: vec![tcp_server(10, SERVER_1), tcp_server(20, SERVER_2)],
        },
        t0,
    );
    let before = conns(&mut c);
    c.handle_command(
        SipCommand::TrunkTargets {
            trunk: 0,
            records: vec![tcp_server(10, SERVER_2), tcp_server(20, SERVER_3)],
        },
        t0,
    );
    let after = conns(&mut c);
    assert_eq!(after[0], before[1], "server 2 keeps its connection");
    assert_eq!(after[1].0, SERVER_3);
    assert!(
        before.iter().all(|(_, conn)| *conn != after[1].1),
        "server 3 shares no connection: {before:?} {after:?}"
    );
}
