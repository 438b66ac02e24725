//! `sip.flood` in the core: what a flooding, scanning or registering source
//! gets (on a simulated clock), and that a refused request leaves nothing
//! behind.

use std::time::{Duration, Instant};

use super::tests::{cfg, core, drain, invite, udp, SDP};
use super::*;
use crate::sip::flood::{Refuse, RegisterPolicy};

const STRANGER: &str = "10.9.9.9:5060";

fn request(method: &str, branch: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} sip:+15550100000@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:+12345678910@127.0.0.1>;tag=ft1\r\nTo: <sip:+15550100000@127.0.0.1>\r\nCall-ID: {branch}@test\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn with_flood(edit: impl FnOnce(&mut FloodPolicy)) -> SipCore {
    let mut c = core();
    let mut p = FloodPolicy::default();
    edit(&mut p);
    c.set_flood(p);
    c
}

#[test]
fn a_stranger_past_the_limit_is_banned_and_gets_nothing_more() {
    let t0 = Instant::now();
    let mut c = core();
    let mut statuses = Vec::new();
    // 1 000 INVITEs a second for a second, each a new call.
    for i in 0..1000u32 {
        let at = t0 + Duration::from_millis(u64::from(i));
        c.handle_message(
            &invite(&format!("z9hG4bK-f{i}"), "+15550100000", "", SDP),
            udp(STRANGER),
            at,
        );
        let out = drain(&mut c);
        assert!(out.events.is_empty(), "no call for a stranger");
        statuses.extend(out.statuses());
    }
    // The first 16 meet the untrusted policy (403), the rest nothing.
    assert_eq!(statuses, vec![403; 16]);
    let s = c.stats();
    assert_eq!((s.flood_rate, s.flood_banned), (1, 983));
    assert_eq!(s.rejected_untrusted, 16, "banned requests are not parsed");
    assert_eq!(c.txl.server_count(), 0);
    // Still banned a minute on, even for a request the gate would answer 400.
    c.handle_message(
        b"INVITE sip:x@y SIP/2.0\r\n\r\n",
        udp(STRANGER),
        t0 + Duration::from_secs(60),
    );
    assert!(drain(&mut c).sent.is_empty());
    assert_eq!(c.stats().bad_requests, 0);
    // Another stranger is not banned by it.
    c.handle_message(
        &invite("z9hG4bK-other", "+15550100000", "", SDP),
        udp("10.9.9.10:5060"),
        t0 + Duration::from_secs(60),
    );
    assert_eq!(drain(&mut c).statuses(), vec![403]);
    // The ban ends after five minutes.
    c.handle_message(
        &invite("z9hG4bK-later", "+15550100000", "", SDP),
        udp(STRANGER),
        t0 + Duration::from_secs(301),
    );
    assert_eq!(drain(&mut c).statuses(), vec![403]);
}

#[test]
fn a_banned_source_gets_403_when_configured() {
    let t0 = Instant::now();
    let mut c = with_flood(|p| p.refuse = Refuse::Forbidden);
    c.cfg.untrusted = Untrusted::Drop;
    for i in 0..20u32 {
        c.handle_message(
            &request("OPTIONS", &format!("z9hG4bK-o{i}"), ""),
            udp(STRANGER),
            t0,
        );
    }
    // 16 dropped by the untrusted policy, then 403s from the ban, stateless.
    assert_eq!(drain(&mut c).statuses(), vec![403; 4]);
    assert_eq!(c.txl.server_count(), 0);
    let s = c.stats();
    assert_eq!((s.flood_rate, s.flood_banned), (1, 3));
}

#[test]
fn the_trunk_is_not_limited_unless_configured_and_then_per_class() {
    let t0 = Instant::now();
    let mut c = core();
    c.cfg.max_transactions = 1000;
    for i in 0..100u32 {
        c.handle_message(
            &request("OPTIONS", &format!("z9hG4bK-o{i}"), ""),
            udp(super::tests::PEER),
            t0,
        );
    }
    assert_eq!(drain(&mut c).statuses(), vec![200; 100]);
    let mut c = with_flood(|p| p.apply_to_trunks = true);
    c.cfg.max_transactions = 1000;
    for i in 0..100u32 {
        c.handle_message(
            &request("OPTIONS", &format!("z9hG4bK-o{i}"), ""),
            udp(super::tests::PEER),
            t0,
        );
    }
    assert_eq!(drain(&mut c).statuses(), vec![200; 16]);
    // Its OPTIONS are banned; its INVITEs still make calls.
    c.handle_message(
        &invite("z9hG4bK-call", "+15550100000", "", SDP),
        udp(super::tests::PEER),
        t0,
    );
    let out = drain(&mut c);
    assert_eq!(out.statuses(), vec![100]);
    assert_eq!(out.events.len(), 1, "{:?}", out.events);
}

#[test]
fn scanners_are_dropped_from_anyone_without_a_word() {
    let t0 = Instant::now();
    let mut c = core();
    for (i, ua) in [
        "friendly-scanner",
        "sipvicious",
        "SIPCLI/v1.8",
        "VaxSIPUserAgent/3.1",
        "pplsip",
    ]
    .iter()
    .enumerate()
    {
        let m = request(
            "OPTIONS",
            &format!("z9hG4bK-s{i}"),
            &format!("User-Agent: {ua}\r\n"),
        );
        c.handle_message(&m, udp(super::tests::PEER), t0);
        c.handle_message(&m, udp(STRANGER), t0);
    }
    assert!(drain(&mut c).sent.is_empty());
    assert_eq!(c.stats().flood_scanner, 10);
    assert_eq!(c.stats().requests, 0, "never parsed");
    // A phone's User-Agent is answered.
    c.handle_message(
        &request("OPTIONS", "z9hG4bK-ok", "User-Agent: Linphone/5\r\n"),
        udp(super::tests::PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![200]);
}

#[test]
fn register_is_answered_405_or_dropped_per_config() {
    let t0 = Instant::now();
    let mut c = core();
    c.handle_message(
        &request("REGISTER", "z9hG4bK-r1", ""),
        udp(super::tests::PEER),
        t0,
    );
    assert_eq!(drain(&mut c).statuses(), vec![405]);
    assert_eq!(c.stats().flood_register, 1);
    let mut c = with_flood(|p| p.register = RegisterPolicy::Drop);
    for peer in [super::tests::PEER, STRANGER] {
        c.handle_message(&request("REGISTER", "z9hG4bK-r2", ""), udp(peer), t0);
    }
    assert!(drain(&mut c).sent.is_empty());
    assert_eq!(c.stats().flood_register, 2);
    assert_eq!(c.txl.server_count(), 0);
}

#[test]
fn a_reload_changes_the_limits_and_the_table_empties_by_itself() {
    let t0 = Instant::now();
    let mut c = core();
    for i in 0..17u32 {
        c.handle_message(
            &request("OPTIONS", &format!("z9hG4bK-o{i}"), ""),
            udp(STRANGER),
            t0,
        );
    }
    drain(&mut c);
    assert_eq!(c.flood.len(), 1);
    // The core's deadline includes the ban's end; after it the source is forgotten.
    super::tests::advance(&mut c, t0 + Duration::from_secs(301));
    assert!(c.flood.is_empty());
    let mut policy = Policy {
        allow: cfg().allow,
        untrusted: Untrusted::Reject,
        max_calls: 2,
        max_transactions: 10,
        retry_after: Duration::from_secs(5),
        flood: FloodPolicy::default(),
    };
    policy.flood.limits = [2, 2, 2, 2];
    c.handle_command(SipCommand::Policy(Box::new(policy)), t0);
    let t1 = t0 + Duration::from_secs(400);
    for i in 0..5u32 {
        c.handle_message(
            &request("OPTIONS", &format!("z9hG4bK-n{i}"), ""),
            udp(STRANGER),
            t1,
        );
    }
    assert_eq!(drain(&mut c).statuses(), vec![403, 403]);
}
