//! Registration through the core: REGISTERs go to the trunk in client
//! transactions, the trunk's challenge is answered, a shutdown unregisters,
//! and INVITEs to the registered contact are attributed to the trunk.

use super::*;
use crate::sip::register::RegisterConfig;

fn reg_cfg(credentials: Option<Credentials>) -> RegisterConfig {
    RegisterConfig {
        trunk: "carrier".into(),
        registrar: "sip:carrier.test".into(),
        aor: "sip:alice@carrier.test".into(),
        contact_user: "tp1".into(),
        hostport: String::new(),
        tcp: false,
        user_agent: String::new(),
        expires: 60,
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(600),
        credentials,
    }
}

fn reg_core() -> SipCore {
    let mut cfg = cfg();
    cfg.registrations
        .push(reg_cfg(cfg.trunks[0].credentials.clone()));
    SipCore::new(cfg, Box::new(|n: &str| n == "+15550100000"))
}

fn registered(c: &mut SipCore, t0: Instant) {
    c.start(t0);
    let out = advance(c, t0);
    let reg = out.find("REGISTER ").to_owned();
    assert_eq!(out.sent[0].0, udp(TRUNK), "REGISTER goes to the trunk");
    assert!(
        reg.contains("Contact: <sip:tp1@127.0.0.1:5060>;expires=60"),
        "{reg}"
    );
    let challenge =
        "WWW-Authenticate: Digest realm=\"carrier.test\", nonce=\"r1\", algorithm=SHA-256, qop=\"auth\"\r\n";
    c.handle_message(&reply(&reg, 401, challenge, ""), udp(TRUNK), t0);
    let out = drain(c);
    let reg2 = out.find("REGISTER ").to_owned();
    assert!(
        reg2.contains("Authorization: Digest username=\"alice\""),
        "{reg2}"
    );
    assert!(reg2.contains("CSeq: 2 REGISTER"));
    c.handle_message(
        &reply(
            &reg2,
            200,
            "Contact: <sip:tp1@127.0.0.1:5060>;expires=40\r\n",
            "",
        ),
        udp(TRUNK),
        t0,
    );
    drain(c);
    let st = c.registration_status(t0);
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].state, crate::sip::register::State::Registered);
    assert_eq!(st[0].expires_in, 40);
}

#[test]
fn registers_with_the_trunk_answers_its_challenge_and_refreshes() {
    let mut c = reg_core();
    let t0 = Instant::now();
    registered(&mut c, t0);
    // Nothing before half the grant; the refresh at 20 s.
    assert!(advance(&mut c, t0 + Duration::from_millis(19_999))
        .sent
        .is_empty());
    let out = advance(&mut c, t0 + Duration::from_secs(20));
    let refresh = out.find("REGISTER ");
    assert!(
        refresh.contains("CSeq: 3 REGISTER") && refresh.contains("nc=00000002"),
        "{refresh}"
    );
}

#[test]
fn a_challenge_from_elsewhere_is_not_answered_for_register() {
    let mut cfg = cfg();
    cfg.allow = vec!["127.0.0.0/8".parse().unwrap()];
    cfg.registrations
        .push(reg_cfg(cfg.trunks[0].credentials.clone()));
    let mut c = SipCore::new(cfg, Box::new(|_: &str| true));
    let t0 = Instant::now();
    c.start(t0);
    let reg = advance(&mut c, t0).find("REGISTER ").to_owned();
    let challenge = "WWW-Authenticate: Digest realm=\"x\", nonce=\"r1\", qop=\"auth\"\r\n";
    c.handle_message(&reply(&reg, 401, challenge, ""), udp("127.0.0.2:5080"), t0);
    let out = drain(&mut c);
    assert!(out.requests().is_empty(), "{:?}", out.sent);
    assert_eq!(
        c.registration_status(t0)[0].state,
        crate::sip::register::State::Failed
    );
}

#[test]
fn shutdown_unregisters_and_reports_done() {
    let mut c = reg_core();
    let t0 = Instant::now();
    registered(&mut c, t0);
    assert!(!c.registrations_done());
    c.shutdown_registrations(t0 + Duration::from_secs(1));
    let out = drain(&mut c);
    let unreg = out.find("REGISTER ").to_owned();
    assert!(
        unreg.contains("Expires: 0\r\n") && unreg.contains(";expires=0"),
        "{unreg}"
    );
    c.handle_message(
        &reply(&unreg, 200, "", ""),
        udp(TRUNK),
        t0 + Duration::from_secs(1),
    );
    drain(&mut c);
    assert!(c.registrations_done());
}

#[test]
fn a_register_without_answer_times_out_into_a_retry() {
    let mut c = reg_core();
    let t0 = Instant::now();
    c.start(t0);
    advance(&mut c, t0);
    // Timer F: 64*T1 = 32 s without a final response.
    advance(&mut c, t0 + Duration::from_secs(32));
    let st = c.registration_status(t0 + Duration::from_secs(32));
    assert_eq!(st[0].state, crate::sip::register::State::Failed);
    assert_eq!(st[0].failures_total, 1);
    // The retry goes out within the first back-off window (15–30 s).
    let out = advance(&mut c, t0 + Duration::from_secs(62));
    assert!(out.find("REGISTER ").contains("CSeq: 2 REGISTER"));
}

#[test]
fn an_invite_to_the_registered_contact_is_the_trunks_and_called_comes_from_to() {
    let mut c = reg_core();
    let t0 = Instant::now();
    registered(&mut c, t0);
    let msg = String::from_utf8(invite("z9hG4bKr1", "tp1", "", SDP))
        .unwrap()
        .replace(
            "To: <sip:tp1@127.0.0.1>",
            "To: <sip:+15550100000@carrier.test>",
        );
    c.handle_message(msg.as_bytes(), udp("127.0.0.1:5070"), t0);
    let out = drain(&mut c);
    let call = out
        .events
        .iter()
        .find_map(|e| match e {
            SipEvent::Incoming(call) => Some(call.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no incoming call: {:?}", out.sent));
    assert_eq!(call.called, "+15550100000");
    assert_eq!(call.via_registration.as_deref(), Some("carrier"));
    // Another user part is not the registration's.
    let other = invite("z9hG4bKr2", "+15550100000", "", SDP);
    let other = String::from_utf8(other)
        .unwrap()
        .replace("call-1@test", "call-2@test");
    c.handle_message(other.as_bytes(), udp("127.0.0.1:5070"), t0);
    let out = drain(&mut c);
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, SipEvent::Incoming(call) if call.via_registration.is_none())));
}

/// §12.1.1: a response that creates a dialog copies the request's
/// Record-Route, in order, so the caller's ACK and BYE go through the
/// proxies that asked to stay in the path (a carrier edge).
#[test]
fn dialog_creating_responses_copy_record_route() {
    let mut c = core();
    let t0 = Instant::now();
    let rr = "Record-Route: <sip:127.0.0.1:5070;lr;r2=on>, <sip:127.0.0.1:5072;lr;r2=on>\r\n";
    c.handle_message(
        &invite("z9hG4bKrr1", "+15550100000", rr, SDP),
        udp("127.0.0.1:5070"),
        t0,
    );
    let out = drain(&mut c);
    let leg = incoming_leg(&out);
    c.handle_command(SipCommand::Ringing(leg), t0);
    c.handle_command(
        SipCommand::Answer {
            leg,
            sdp: SDP.as_bytes().to_vec(),
        },
        t0,
    );
    let out = drain(&mut c);
    for status in ["SIP/2.0 180", "SIP/2.0 200"] {
        let resp = out.find(status);
        let rrs: Vec<&str> = resp
            .lines()
            .filter(|l| l.starts_with("Record-Route:"))
            .collect();
        assert_eq!(
            rrs.join("|"),
            "Record-Route: <sip:127.0.0.1:5070;lr;r2=on>|Record-Route: <sip:127.0.0.1:5072;lr;r2=on>",
            "{resp}"
        );
    }
}
