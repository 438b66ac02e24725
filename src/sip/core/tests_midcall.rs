//! Mid-call behaviour on a simulated clock: where in-dialog requests go
//! (the trunk's proxy, the route set, §12.2.1.1 and §16.12), what re-INVITEs
//! and UPDATEs carriers send get (RFC 3261 §14, RFC 3311, RFC 4028), and
//! which of our addresses a peer is told behind a NAT.

use std::time::{Duration, Instant};

use super::tests::*;
use super::*;
use crate::sip::api::EndCause;
use crate::sip::nat::Nat;

/// The Call-ID and our From tag of the INVITE we sent.
fn ids(inv: &str) -> (String, String) {
    let call_id = inv
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID:"))
        .unwrap()
        .trim()
        .to_owned();
    let ours = inv
        .lines()
        .find(|l| l.starts_with("From:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    (call_id, ours)
}

/// A request from the far end of a leg we placed (its tag is `agent1`).
fn from_agent(
    inv: &str,
    method: &str,
    branch: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let (call_id, ours) = ids(inv);
    format!(
        "{method} sip:tpswitch@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch={branch}\r\n\
         From: <sip:+12345678910@127.0.0.1>;tag=agent1\r\nTo: <sip:+15550100001@127.0.0.1>;tag={ours}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn routes(msg: &str) -> Vec<&str> {
    msg.lines()
        .filter_map(|l| l.strip_prefix("Route: "))
        .collect()
}

/// A leg we placed, answered with `extra` headers in the 200; its ACK.
fn placed(c: &mut SipCore, t0: Instant, extra: &str) -> (LegId, String, Out) {
    let (leg, inv) = dial(c, t0);
    c.handle_message(&reply(&inv, 200, extra, SDP), udp(TRUNK), t0);
    (leg, inv, drain(c))
}

#[test]
fn ack_and_bye_go_to_the_proxy_when_the_2xx_contact_points_elsewhere() {
    let mut c = core();
    let t0 = Instant::now();
    // A hostile (or merely unreachable) Contact: a third party's address.
    let (leg, inv, out) = placed(&mut c, t0, "Contact: <sip:agent@198.51.100.66:5099>\r\n");
    let ack = out.find("ACK ");
    assert!(
        ack.starts_with("ACK sip:agent@198.51.100.66:5099 SIP/2.0"),
        "{ack}"
    );
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
    // A retransmitted 200 gets the ACK at the proxy again.
    c.handle_message(
        &reply(
            &inv,
            200,
            "Contact: <sip:agent@198.51.100.66:5099>\r\n",
            SDP,
        ),
        udp(TRUNK),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
    c.handle_command(SipCommand::HangUp(leg), t0);
    let out = drain(&mut c);
    let bye = out.find("BYE ");
    assert!(
        bye.starts_with("BYE sip:agent@198.51.100.66:5099 SIP/2.0"),
        "{bye}"
    );
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
}

#[test]
fn record_route_becomes_route_headers_behind_the_proxy() {
    let mut c = core();
    let t0 = Instant::now();
    // §12.1.2: the UAC's route set is the Record-Route in reverse order.
    let (leg, _, out) = placed(
        &mut c,
        t0,
        "Record-Route: <sip:edge2.example.net;lr>, <sip:198.51.100.1:5060;lr>\r\nContact: <sip:agent@198.51.100.66:5099>\r\n",
    );
    let ack = out.find("ACK ");
    // §16.12: loose routing keeps the remote target in the Request-URI.
    assert!(
        ack.starts_with("ACK sip:agent@198.51.100.66:5099 SIP/2.0"),
        "{ack}"
    );
    assert_eq!(
        routes(ack),
        vec!["<sip:198.51.100.1:5060;lr>", "<sip:edge2.example.net;lr>"]
    );
    // Not to the first route: the proxy takes the route set from there.
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
    c.handle_command(SipCommand::HangUp(leg), t0);
    let out = drain(&mut c);
    let bye = out.find("BYE ");
    assert_eq!(
        routes(bye),
        vec!["<sip:198.51.100.1:5060;lr>", "<sip:edge2.example.net;lr>"]
    );
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
}

#[test]
fn a_strict_router_takes_the_request_uri() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, _, out) = placed(
        &mut c,
        t0,
        "Record-Route: <sip:198.51.100.1:5060>\r\nContact: <sip:agent@198.51.100.66:5099>\r\n",
    );
    let ack = out.find("ACK ");
    // §12.2.1.1: no `lr`: the route goes in the Request-URI and the remote
    // target last in Route.
    assert!(
        ack.starts_with("ACK sip:198.51.100.1:5060 SIP/2.0"),
        "{ack}"
    );
    assert_eq!(routes(ack), vec!["<sip:agent@198.51.100.66:5099>"]);
    assert_eq!(out.sent[0].0.addr, TRUNK.parse().unwrap());
}

#[test]
fn without_the_proxy_rule_the_first_route_is_the_next_hop() {
    let mut c = SipCore::new(
        CoreConfig {
            trunks: vec![TrunkRoute {
                via_proxy: false,
                ..cfg().trunks[0].clone()
            }],
            ..cfg()
        },
        Box::new(|_: &str| true),
    );
    let t0 = Instant::now();
    let (_, _, out) = placed(
        &mut c,
        t0,
        "Record-Route: <sip:127.0.0.1:5090;lr>\r\nContact: <sip:agent@127.0.0.1:5099>\r\n",
    );
    out.find("ACK ");
    assert_eq!(out.sent[0].0.addr, "127.0.0.1:5090".parse().unwrap());
}

#[test]
fn a_carrier_hold_reinvite_on_a_placed_leg_is_answered() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, inv, _) = placed(&mut c, t0, "Contact: <sip:agent@127.0.0.1:5080>\r\n");
    let hold = format!("{SDP}a=sendonly\r\n");
    c.handle_message(
        &from_agent(
            &inv,
            "INVITE",
            "z9hG4bK-rh",
            2,
            "Content-Type: application/sdp\r\n",
            &hold,
        ),
        udp(TRUNK),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    let ok = out.find("SIP/2.0 200");
    assert!(ok.contains("a=recvonly"), "{ok}");
    // Our answer keeps our offer's address and o= session id, version up
    // (RFC 3264 §8).
    assert!(
        ok.contains("c=IN IP4 127.0.0.1") && ok.contains("m=audio 6000 "),
        "{ok}"
    );
    assert!(ok.contains("o=tpswitch 1 2 IN IP4"), "{ok}");
    assert!(
        matches!(&out.events[..], [SipEvent::MediaChanged { leg: l, media }] if *l == leg && media.stream.hold)
    );
}

#[test]
fn a_codec_change_gets_488_and_the_call_goes_on() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, tag) = answered(&mut c, t0);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    // The call runs PCMU; an offer of PCMA only would change it.
    let pcma = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8 101");
    c.handle_message(
        &in_dialog(
            "INVITE",
            "z9hG4bK-c1",
            &tag,
            2,
            "Content-Type: application/sdp\r\n",
            &pcma,
        ),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![488]);
    assert!(out.find("SIP/2.0 488").contains("Warning: 305 tpswitch"));
    assert!(out.events.is_empty(), "{:?}", out.events);
    // An offer that still lists PCMU keeps it, even after PCMA.
    let both = SDP.replace("RTP/AVP 0 101", "RTP/AVP 8 0 101");
    c.handle_message(
        &in_dialog(
            "INVITE",
            "z9hG4bK-c2",
            &tag,
            3,
            "Content-Type: application/sdp\r\n",
            &both,
        ),
        udp(PEER),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(
        matches!(&out.events[..], [SipEvent::MediaChanged { leg: l, media }] if *l == leg && media.stream.codec == Codec::Pcmu)
    );
    // The dialog is intact: the caller's BYE ends it.
    their_bye_ends_the_call(&mut c, &tag, "z9hG4bK-c3", 4, t0);
}

/// A call with an RFC 4028 session timer of 120 s, acknowledged at `t0`.
fn timed_call(c: &mut SipCore, t0: Instant) -> String {
    c.handle_message(
        &invite(
            "z9hG4bK-t",
            "+15550100000",
            "Session-Expires: 120\r\nSupported: timer\r\n",
            SDP,
        ),
        udp(PEER),
        t0,
    );
    let leg = incoming_leg(&drain(c));
    c.handle_command(
        SipCommand::Answer {
            leg,
            sdp: SDP.as_bytes().to_vec(),
        },
        t0,
    );
    let tag = tag_of(drain(c).find("SIP/2.0 200"));
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-ta", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(c);
    tag
}

#[test]
fn a_hold_reinvite_keeps_the_call_and_refreshes_its_timer() {
    let mut c = core();
    let t0 = Instant::now();
    let tag = timed_call(&mut c, t0);
    let t60 = t0 + Duration::from_secs(60);
    let hold = SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    // No Session-Expires in the re-INVITE: the interval stays and the
    // accepted re-INVITE is the refresh (RFC 4028 §9).
    c.handle_message(
        &in_dialog(
            "INVITE",
            "z9hG4bK-th",
            &tag,
            2,
            "Content-Type: application/sdp\r\n",
            &hold,
        ),
        udp(PEER),
        t60,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(out
        .find("SIP/2.0 200")
        .contains("Session-Expires: 120;refresher=uac"));
    assert!(matches!(&out.events[..], [SipEvent::MediaChanged { media, .. }] if media.stream.hold));
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-tha", &tag, 2, "", ""),
        udp(PEER),
        t60,
    );
    // Held past the first deadline, the call is still up...
    let out = advance(&mut c, t0 + Duration::from_secs(170));
    assert!(out.sent.is_empty() && out.events.is_empty(), "{out:?}");
    // ...and ends only when the refreshed interval runs out unrefreshed.
    let out = advance(&mut c, t60 + Duration::from_secs(121));
    assert!(out.requests().contains(&"BYE".to_owned()));
}

#[test]
fn an_update_refresh_without_sdp_is_answered_without_sdp() {
    let mut c = core();
    let t0 = Instant::now();
    let tag = timed_call(&mut c, t0);
    let t60 = t0 + Duration::from_secs(60);
    c.handle_message(
        &in_dialog(
            "UPDATE",
            "z9hG4bK-tu",
            &tag,
            2,
            "Session-Expires: 120;refresher=uac\r\nSupported: timer\r\n",
            "",
        ),
        udp(PEER),
        t60,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    let ok = out.find("SIP/2.0 200");
    // RFC 3311 §5.2: no offer came, so no SDP goes back.
    assert!(
        !ok.contains("application/sdp") && ok.contains("Content-Length: 0"),
        "{ok}"
    );
    assert!(ok.contains("Session-Expires: 120;refresher=uac"), "{ok}");
    assert!(out.events.is_empty());
    assert!(advance(&mut c, t0 + Duration::from_secs(170))
        .events
        .is_empty());
}

#[test]
fn a_carrier_update_refresh_on_a_placed_leg_gets_a_timer() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, inv, _) = placed(&mut c, t0, "Contact: <sip:agent@127.0.0.1:5080>\r\n");
    c.handle_message(
        &from_agent(
            &inv,
            "UPDATE",
            "z9hG4bK-ru",
            2,
            "Session-Expires: 90\r\nSupported: timer\r\n",
            "",
        ),
        udp(TRUNK),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![200]);
    assert!(out
        .find("SIP/2.0 200")
        .contains("Session-Expires: 90;refresher=uac"));
    // The carrier refreshes; when it stops, the leg is ended (RFC 4028 §10).
    let out = advance(&mut c, t0 + Duration::from_secs(91));
    assert!(out.requests().contains(&"BYE".to_owned()), "{out:?}");
}

fn natted() -> SipCore {
    let mut cfg = cfg();
    cfg.local.hostport = "10.0.0.5:5060".into();
    cfg.local.nat = Nat {
        external_signaling: Some("203.0.113.10:5060".parse().unwrap()),
        external_media: None,
        local_networks: vec!["127.0.0.1/32".parse().unwrap()],
    };
    cfg.allow = vec!["127.0.0.0/8".parse().unwrap()];
    SipCore::new(cfg, Box::new(|n: &str| n == "+15550100000"))
}

#[test]
fn a_local_caller_is_told_the_private_contact_and_others_the_external_one() {
    for (src, want) in [
        ("127.0.0.1:5070", "10.0.0.5:5060"),
        ("127.0.0.2:5070", "203.0.113.10:5060"),
    ] {
        let mut c = natted();
        let t0 = Instant::now();
        let inv = String::from_utf8(invite("z9hG4bK-n", "+15550100000", "", SDP)).unwrap();
        let inv = inv.replace(
            "<sip:caller@127.0.0.1:5070>",
            &format!("<sip:caller@{src}>"),
        );
        c.handle_message(inv.as_bytes(), udp(src), t0);
        let leg = incoming_leg(&drain(&mut c));
        c.handle_command(SipCommand::Ringing(leg), t0);
        let ringing = drain(&mut c);
        assert!(ringing
            .find("SIP/2.0 180")
            .contains(&format!("Contact: <sip:tpswitch@{want}>")));
        c.handle_command(
            SipCommand::Answer {
                leg,
                sdp: SDP.as_bytes().to_vec(),
            },
            t0,
        );
        let out = drain(&mut c);
        let ok = out.find("SIP/2.0 200");
        assert!(
            ok.contains(&format!("Contact: <sip:tpswitch@{want}>")),
            "{src}: {ok}"
        );
        let tag = tag_of(ok);
        c.handle_message(
            &in_dialog("ACK", "z9hG4bK-na", &tag, 1, "", ""),
            udp(src),
            t0,
        );
        drain(&mut c);
        c.handle_command(SipCommand::HangUp(leg), t0);
        let bye = drain(&mut c);
        let bye = bye.find("BYE ");
        assert!(
            bye.contains(&format!("Via: SIP/2.0/UDP {want};")),
            "{src}: {bye}"
        );
        assert!(
            bye.contains(&format!("Contact: <sip:tpswitch@{want}>")),
            "{src}: {bye}"
        );
    }
}

#[test]
fn the_trunk_outside_local_networks_is_told_the_external_address() {
    let mut c = natted();
    let t0 = Instant::now();
    // TRUNK is 127.0.0.1, a local network here; make it foreign.
    let mut cfg = cfg();
    cfg.local = c.cfg.local.clone();
    cfg.local.nat.local_networks = vec!["10.0.0.0/8".parse().unwrap()];
    c = SipCore::new(cfg, Box::new(|_: &str| true));
    let (_, inv) = dial(&mut c, t0);
    assert!(inv.contains("Via: SIP/2.0/UDP 203.0.113.10:5060;"), "{inv}");
    assert!(
        inv.contains("Contact: <sip:tpswitch@203.0.113.10:5060>"),
        "{inv}"
    );
    assert!(
        inv.contains("From: <sip:+15550100001@203.0.113.10:5060>"),
        "{inv}"
    );
    // Its responses match our transaction by that sent-by (§17.1.3).
    c.handle_message(&reply(&inv, 486, "", ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    assert_eq!(out.requests(), vec!["ACK"]);
    assert!(matches!(out.events[..], [SipEvent::Failed { .. }]));
}

#[test]
fn a_reinvite_2xx_is_resent_until_its_ack() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, tag) = answered(&mut c, t0);
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
            "z9hG4bK-rr",
            &tag,
            2,
            "Content-Type: application/sdp\r\n",
            &hold,
        ),
        udp(PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![200]);
    // Lost: T1 later it goes again (§13.3.1.4), then 2*T1 after that.
    let out = advance(&mut c, t0 + Duration::from_millis(1600));
    assert_eq!(out.statuses(), vec![200, 200]);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-ra", &tag, 2, "", ""),
        udp(PEER),
        t0 + Duration::from_millis(1600),
    );
    drain(&mut c);
    let out = advance(&mut c, t0 + Duration::from_secs(60));
    assert!(out.sent.is_empty() && out.events.is_empty(), "{out:?}");
}

#[test]
fn a_reinvite_2xx_never_acknowledged_ends_the_call() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, tag) = answered(&mut c, t0);
    c.handle_message(
        &in_dialog("ACK", "z9hG4bK-a1", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    c.handle_message(
        &in_dialog(
            "INVITE",
            "z9hG4bK-rn",
            &tag,
            2,
            "Content-Type: application/sdp\r\n",
            SDP,
        ),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    let out = advance(&mut c, t0 + Duration::from_secs(33));
    assert!(out.requests().contains(&"BYE".to_owned()), "{out:?}");
    assert!(out.events.iter().any(|e| matches!(
        e,
        SipEvent::Ended {
            cause: EndCause::NoAck,
            ..
        }
    )));
}

#[test]
fn our_bye_on_a_received_call_goes_back_to_its_source() {
    let mut c = core();
    let t0 = Instant::now();
    // The carrier's edge sends from PEER but names an inner host in
    // Contact and does not record-route itself; a proxy behind it does.
    let text = String::from_utf8(invite(
        "z9hG4bK-in",
        "+15550100000",
        "Record-Route: <sip:198.51.100.1;lr>\r\n",
        SDP,
    ))
    .unwrap();
    let text = text.replace("<sip:caller@127.0.0.1:5070>", "<sip:caller@10.9.9.9:5060>");
    c.handle_message(text.as_bytes(), udp(PEER), t0);
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
        &in_dialog("ACK", "z9hG4bK-ina", &tag, 1, "", ""),
        udp(PEER),
        t0,
    );
    drain(&mut c);
    c.handle_command(SipCommand::HangUp(leg), t0);
    let out = drain(&mut c);
    let bye = out.find("BYE ");
    assert!(
        bye.starts_with("BYE sip:caller@10.9.9.9:5060 SIP/2.0"),
        "{bye}"
    );
    // §12.1.1: the UAS keeps Record-Route in order.
    assert_eq!(routes(bye), vec!["<sip:198.51.100.1;lr>"]);
    assert_eq!(out.sent[0].0.addr, PEER.parse().unwrap());
}
