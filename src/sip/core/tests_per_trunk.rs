//! What is per trunk beyond routing: each trunk's own registration (its
//! registrar, credentials and contact user), its SRTP policy on the calls
//! it brings and the legs placed on it, and its NAT plan in Via, Contact
//! and From.

use super::*;
use crate::media::srtp::SrtpPolicy;
use crate::sip::nat::Nat;
use crate::sip::register::{RegisterConfig, State as RegState};

const TRUNK_B: &str = "127.0.0.1:5090";

fn creds(user: &str) -> Option<Credentials> {
    Some(Credentials {
        username: user.into(),
        password: "pw".into(),
    })
}

fn registration(trunk: &str, contact_user: &str, user: &str) -> RegisterConfig {
    RegisterConfig {
        trunk: trunk.into(),
        registrar: "sip:carrier.test".into(),
        aor: format!("sip:{user}@carrier.test"),
        contact_user: contact_user.into(),
        hostport: String::new(),
        tcp: false,
        user_agent: String::new(),
        expires: 60,
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(600),
        credentials: creds(user),
    }
}

/// Trunks "a" (5080) and "b" (5090), both from 127.0.0.1 (one carrier
/// edge in front of two accounts), both registering.
fn two_registering(b: TrunkRoute) -> SipCore {
    let mut cfg = cfg();
    cfg.trunks = vec![
        TrunkRoute {
            credentials: creds("alice"),
            ..TrunkRoute::plain("a", TRUNK.parse().unwrap())
        },
        TrunkRoute {
            credentials: creds("bob"),
            ..b
        },
    ];
    cfg.registrations = vec![
        registration("a", "tp-a", "alice"),
        registration("b", "tp-b", "bob"),
    ];
    SipCore::new(cfg, Box::new(|n: &str| n == "+15550100000"))
}

fn trunk_b() -> TrunkRoute {
    TrunkRoute::plain("b", TRUNK_B.parse().unwrap())
}

/// The REGISTER sent to `to` in `out`.
fn register_to<'a>(out: &'a Out, to: &str) -> &'a str {
    out.sent
        .iter()
        .find(|(p, m)| p.addr == to.parse().unwrap() && m.starts_with("REGISTER "))
        .map(|(_, m)| m.as_str())
        .unwrap_or_else(|| panic!("no REGISTER to {to} in {:#?}", out.sent))
}

const CHALLENGE: &str =
    "WWW-Authenticate: Digest realm=\"carrier.test\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"\r\n";

/// The incoming call `msg` became, or the statuses sent instead.
fn incoming(c: &mut SipCore, msg: &str, t0: Instant) -> Result<crate::sip::IncomingCall, Vec<u16>> {
    c.handle_message(msg.as_bytes(), udp(PEER), t0);
    let out = drain(c);
    out.events
        .iter()
        .find_map(|e| match e {
            SipEvent::Incoming(call) => Some((**call).clone()),
            _ => None,
        })
        .ok_or_else(|| out.statuses())
}

/// An INVITE to our contact user `user` for +15550100000 (in To).
fn invite_to_contact(branch: &str, user: &str, call_id: &str, body: &str) -> String {
    String::from_utf8(invite(branch, user, "", body))
        .unwrap()
        .replace(
            &format!("To: <sip:{user}@127.0.0.1>"),
            "To: <sip:+15550100000@carrier.test>",
        )
        .replace("call-1@test", call_id)
}

#[test]
fn each_trunk_registers_with_its_own_registrar_and_credentials() {
    let mut c = two_registering(trunk_b());
    let t0 = Instant::now();
    c.start(t0);
    let out = advance(&mut c, t0);
    let reg_a = register_to(&out, TRUNK).to_owned();
    let reg_b = register_to(&out, TRUNK_B).to_owned();
    assert!(
        reg_a.contains("Contact: <sip:tp-a@127.0.0.1:5060>"),
        "{reg_a}"
    );
    assert!(
        reg_b.contains("Contact: <sip:tp-b@127.0.0.1:5060>"),
        "{reg_b}"
    );
    assert!(reg_b.contains("To: <sip:bob@carrier.test>"), "{reg_b}");

    // b's challenge from a's address is not b's registrar's: no answer.
    c.handle_message(&reply(&reg_b, 401, CHALLENGE, ""), udp(TRUNK), t0);
    assert!(drain(&mut c).requests().is_empty());
    assert_eq!(c.registration_status(t0)[1].state, RegState::Failed);

    // a's challenge from a's registrar is answered with a's account.
    c.handle_message(&reply(&reg_a, 401, CHALLENGE, ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    let auth_a = register_to(&out, TRUNK);
    assert!(auth_a.contains("username=\"alice\""), "{auth_a}");

    // b retries after its back-off; its registrar's challenge gets bob's.
    let out = advance(&mut c, t0 + Duration::from_secs(30));
    let retry_b = register_to(&out, TRUNK_B).to_owned();
    c.handle_message(
        &reply(&retry_b, 401, CHALLENGE, ""),
        udp(TRUNK_B),
        t0 + Duration::from_secs(30),
    );
    let out = drain(&mut c);
    let auth_b = register_to(&out, TRUNK_B).to_owned();
    assert!(auth_b.contains("username=\"bob\""), "{auth_b}");
    c.handle_message(
        &reply(
            &auth_b,
            200,
            "Contact: <sip:tp-b@127.0.0.1:5060>;expires=60\r\n",
            "",
        ),
        udp(TRUNK_B),
        t0 + Duration::from_secs(30),
    );
    drain(&mut c);
    let st = c.registration_status(t0 + Duration::from_secs(30));
    assert_eq!(
        (st[1].trunk.as_str(), st[1].state),
        ("b", RegState::Registered)
    );
}

/// Both trunks share a source (one carrier edge): the Request-URI user,
/// the registration's contact, says whose call it is.
#[test]
fn a_call_to_a_trunks_contact_is_that_trunks_even_from_a_shared_source() {
    let mut c = two_registering(trunk_b());
    let t0 = Instant::now();
    c.start(t0);
    advance(&mut c, t0);
    let call = incoming(
        &mut c,
        &invite_to_contact("z9hG4bK-b1", "tp-b", "c1@test", SDP),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert_eq!(call.caller.trunk, "b");
    assert_eq!(call.via_registration.as_deref(), Some("b"));
    assert_eq!(call.called, "+15550100000");
    let call = incoming(
        &mut c,
        &invite_to_contact("z9hG4bK-a1", "tp-a", "c2@test", SDP),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert_eq!(call.caller.trunk, "a");
}

/// Trunk b requires SRTP, a does not: a plain offer on b's contact gets
/// 488, the same offer on a's is taken.
#[test]
fn an_inbound_call_follows_the_srtp_policy_of_its_trunk() {
    let mut c = two_registering(TrunkRoute {
        srtp: SrtpPolicy::Required,
        ..trunk_b()
    });
    let t0 = Instant::now();
    c.start(t0);
    advance(&mut c, t0);
    let refused = incoming(
        &mut c,
        &invite_to_contact("z9hG4bK-b1", "tp-b", "c1@test", SDP),
        t0,
    );
    assert_eq!(refused.map(|_| ()), Err(vec![100, 488]));
    let savp = SDP.replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
    let call = incoming(
        &mut c,
        &invite_to_contact("z9hG4bK-b2", "tp-b", "c2@test", &savp),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert!(call.media.and_then(|m| m.stream.srtp).is_some());
    let call = incoming(
        &mut c,
        &invite_to_contact("z9hG4bK-a1", "tp-a", "c3@test", SDP),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert_eq!(call.caller.trunk, "a");
}

/// A leg that fails over from a (plain RTP, no NAT plan of its own) to b
/// (SRTP required, behind its own NAT) offers b's SDP and names b's
/// external address in Via, Contact and From; b's SRTP answer is taken.
#[test]
fn a_leg_failing_over_offers_and_advertises_as_the_new_trunk_needs() {
    let b = TrunkRoute {
        srtp: SrtpPolicy::Required,
        nat: Some(Nat {
            external_signaling: Some("203.0.113.9:5070".parse().unwrap()),
            external_media: None,
            local_networks: Vec::new(),
        }),
        ..trunk_b()
    };
    let mut cfg = cfg();
    cfg.trunks = vec![TrunkRoute::plain("a", TRUNK.parse().unwrap()), b];
    let mut c = SipCore::new(cfg, Box::new(|_: &str| false));
    let plain = SDP.to_owned();
    let savp = SDP
        .replace("RTP/AVP", "RTP/SAVP")
        .replace("127.0.0.1", "203.0.113.9")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
    let t0 = Instant::now();
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
                sdp: vec![plain.clone().into_bytes(), savp.clone().into_bytes()],
            },
        },
        t0,
    );
    let out = drain(&mut c);
    let on_a = out.find("INVITE ").to_owned();
    assert!(on_a.ends_with(&plain), "{on_a}");
    assert!(on_a.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;"), "{on_a}");

    c.handle_message(&reply(&on_a, 503, "", ""), udp(TRUNK), t0);
    let out = drain(&mut c);
    let on_b = out.find("INVITE ").to_owned();
    assert_eq!(
        out.sent.last().map(|(p, _)| p.addr),
        Some(TRUNK_B.parse().unwrap())
    );
    assert!(on_b.ends_with(&savp), "{on_b}");
    for (header, value) in [
        ("Via: ", "SIP/2.0/UDP 203.0.113.9:5070;"),
        ("Contact: ", "<sip:tpswitch@203.0.113.9:5070>"),
        ("From: ", "@203.0.113.9:5070>"),
    ] {
        let line = on_b
            .lines()
            .find(|l| l.starts_with(header))
            .unwrap_or_else(|| panic!("no {header} in {on_b}"));
        assert!(line.contains(value), "{line}");
    }

    // b answers with SRTP: matched against b's offer, the key kept.
    let answer = SDP.replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
    c.handle_message(
        &reply(
            &on_b,
            200,
            "Contact: <sip:agent@127.0.0.1:5090>\r\n",
            &answer,
        ),
        udp(TRUNK_B),
        t0,
    );
    let out = drain(&mut c);
    let media = out
        .events
        .iter()
        .find_map(|e| match e {
            SipEvent::Answered { media, .. } => Some(media.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("not answered: {:?}", out.events));
    assert!(
        media.and_then(|m| m.stream.srtp).is_some(),
        "b's SRTP answer to b's offer"
    );
    // The ACK, too, names b's side of its NAT.
    assert!(out
        .find("ACK ")
        .contains("Via: SIP/2.0/UDP 203.0.113.9:5070;"));
}

/// A trunk behind its own NAT registers its external address (RFC 3261
/// §10.2.1: the Contact is where the registrar sends our calls), in Via
/// too, and the answer to that REGISTER is still matched to it.
#[test]
fn a_trunk_behind_its_own_nat_registers_its_external_address() {
    let mut c = two_registering(TrunkRoute {
        nat: Some(Nat {
            external_signaling: Some("203.0.113.9:5070".parse().unwrap()),
            external_media: None,
            local_networks: Vec::new(),
        }),
        ..trunk_b()
    });
    let t0 = Instant::now();
    c.start(t0);
    let out = advance(&mut c, t0);
    assert!(register_to(&out, TRUNK).contains("Contact: <sip:tp-a@127.0.0.1:5060>"));
    let reg_b = register_to(&out, TRUNK_B).to_owned();
    assert!(
        reg_b.contains("Contact: <sip:tp-b@203.0.113.9:5070>")
            && reg_b.contains("Via: SIP/2.0/UDP 203.0.113.9:5070;"),
        "{reg_b}"
    );
    c.handle_message(
        &reply(
            &reg_b,
            200,
            "Contact: <sip:tp-b@203.0.113.9:5070>;expires=60\r\n",
            "",
        ),
        udp(TRUNK_B),
        t0,
    );
    drain(&mut c);
    assert_eq!(c.registration_status(t0)[1].state, RegState::Registered);
}

/// A second trunk over TCP registers down its own connection (trunk 1,
/// server 0), not the first trunk's: with TLS that connection carries the
/// second trunk's own server name and CA.
#[test]
fn a_stream_trunk_registers_over_its_own_connection() {
    let mut c = two_registering(TrunkRoute {
        tcp: true,
        ..trunk_b()
    });
    let t0 = Instant::now();
    c.start(t0);
    let out = advance(&mut c, t0);
    let (peer, _) = out
        .sent
        .iter()
        .find(|(p, m)| p.addr == TRUNK_B.parse().unwrap() && m.starts_with("REGISTER "))
        .unwrap_or_else(|| panic!("no REGISTER to b in {:#?}", out.sent));
    assert_eq!(
        peer.transport,
        Transport::Tcp {
            conn: crate::sip::transport::trunk_conn(1, 0)
        }
    );
}

/// A front proxy (deploy/kamailio/front.cfg) names the carrier's own
/// address in the trunk's `source_header`: believed from a source in that
/// trunk's `allow`, ignored when it is not an address, and ignored on a
/// trunk whose `allow` does not hold the source (here: the call is b's by
/// its registered contact, but it came from a's address) or that names no
/// such header.
#[test]
fn the_carriers_source_is_read_from_the_header_only_from_the_trunks_own_sources() {
    let header = Some("X-Tpswitch-Source".to_owned());
    let mut cfg = cfg();
    // Four calls stay up at once.
    cfg.max_calls = 4;
    cfg.trunks = vec![
        TrunkRoute {
            credentials: creds("alice"),
            source_header: header.clone(),
            ..TrunkRoute::plain("a", TRUNK.parse().unwrap())
        },
        TrunkRoute {
            credentials: creds("bob"),
            allow: vec!["192.0.2.0/24".parse().unwrap()],
            source_header: header,
            ..trunk_b()
        },
    ];
    cfg.registrations = vec![
        registration("a", "tp-a", "alice"),
        registration("b", "tp-b", "bob"),
    ];
    let mut c = SipCore::new(cfg, Box::new(|n: &str| n == "+15550100000"));
    let t0 = Instant::now();
    c.start(t0);
    advance(&mut c, t0);
    let with = |branch: &str, user: &str, call_id: &str, value: &str| {
        invite_to_contact(branch, user, call_id, SDP).replace(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\nX-Tpswitch-Source: {value}\r\n"),
        )
    };
    let call = incoming(
        &mut c,
        &with("z9hG4bK-s1", "tp-a", "s1@test", "203.0.113.7:5062"),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert_eq!(call.caller.trunk, "a");
    assert_eq!(
        call.carrier_source,
        Some("203.0.113.7:5062".parse().unwrap())
    );
    assert_eq!(call.source, PEER.parse().unwrap(), "the real source stays");
    let call = incoming(
        &mut c,
        &with("z9hG4bK-s2", "tp-a", "s2@test", "[2001:db8::7]:5060"),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert_eq!(
        call.carrier_source,
        Some("[2001:db8::7]:5060".parse().unwrap())
    );
    let call = incoming(
        &mut c,
        &with("z9hG4bK-s3", "tp-a", "s3@test", "somewhere"),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert_eq!(call.carrier_source, None, "not an address: ignored");
    let call = incoming(
        &mut c,
        &with("z9hG4bK-s4", "tp-b", "s4@test", "203.0.113.7:5062"),
        t0,
    )
    .unwrap_or_else(|s| panic!("{s:?}"));
    assert_eq!(call.caller.trunk, "b");
    assert_eq!(call.carrier_source, None, "127.0.0.1 is not in b's allow");
}
