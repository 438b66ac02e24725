//! The registration machine on a simulated clock: every timer is checked
//! in milliseconds from the start, no test waits.

use super::*;

const T0_SECS: u64 = 0;

fn cfg() -> RegisterConfig {
    RegisterConfig {
        trunk: "carrier".into(),
        registrar: "sip:carrier.test".into(),
        aor: "sip:tpswitch@carrier.test".into(),
        contact_user: "tp1".into(),
        hostport: "127.0.0.1:5060".into(),
        tcp: false,
        expires: 600,
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(1800),
        credentials: Some(Credentials {
            username: "tpswitch".into(),
            password: "s3cret".into(),
        }),
        user_agent: "tpswitch-test".into(),
    }
}

/// One REGISTER the machine sent, as text.
struct Sent {
    text: String,
}

impl Sent {
    fn header(&self, name: &str) -> Option<&str> {
        self.text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    fn cseq(&self) -> u32 {
        self.header("CSeq")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("CSeq")
    }
    fn expires(&self) -> u32 {
        self.header("Expires")
            .and_then(|v| v.parse().ok())
            .expect("Expires")
    }
}

struct Harness {
    reg: Registration,
    t0: Instant,
}

impl Harness {
    fn new(cfg: RegisterConfig) -> Self {
        let t0 = Instant::now() + Duration::from_secs(T0_SECS);
        Harness {
            reg: Registration::new(cfg, 42, t0),
            t0,
        }
    }
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }
    /// Milliseconds from the start to the next deadline.
    fn deadline_ms(&self) -> Option<u64> {
        self.reg
            .deadline()
            .map(|d| d.duration_since(self.t0).as_millis() as u64)
    }
    fn handle(&mut self, ev: Event, ms: u64) -> Vec<Action> {
        let now = self.at(ms);
        self.reg.handle(ev, now);
        std::iter::from_fn(|| self.reg.poll_action()).collect()
    }
    /// Fires the timer at its deadline; returns the time and the actions.
    fn fire(&mut self) -> (u64, Vec<Action>) {
        let ms = self.deadline_ms().expect("a deadline");
        (ms, self.handle(Event::Timer, ms))
    }
    fn reply(&mut self, ms: u64, r: Reply) -> Vec<Action> {
        self.handle(Event::Response(r), ms)
    }
}

fn sent(actions: &[Action]) -> Sent {
    let data = actions
        .iter()
        .find_map(|a| match a {
            Action::Send { data, .. } => Some(data.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no REGISTER sent: {actions:?}"));
    Sent {
        text: String::from_utf8(data).expect("utf-8"),
    }
}

fn ok(cseq: u32, contact_expires: u32) -> Reply {
    Reply {
        status: 200,
        cseq,
        contacts: vec![format!(
            "<sip:other@192.0.2.9:5060>;expires=3000, <sip:tp1@127.0.0.1:5060>;expires={contact_expires}"
        )],
        ..Reply::default()
    }
}

fn challenge(status: u16, cseq: u32, nonce: &str, stale: bool) -> Reply {
    let stale = if stale { ", stale=true" } else { "" };
    Reply {
        status,
        cseq,
        challenges: vec![format!(
            "Digest realm=\"carrier.test\", nonce=\"{nonce}\", qop=\"auth\", algorithm=SHA-256{stale}"
        )],
        ..Reply::default()
    }
}

fn status(status: u16, cseq: u32) -> Reply {
    Reply {
        status,
        cseq,
        ..Reply::default()
    }
}

#[test]
fn first_register_goes_out_at_once_and_is_well_formed() {
    let mut h = Harness::new(cfg());
    assert_eq!(h.deadline_ms(), Some(0));
    let (_, a) = h.fire();
    let s = sent(&a);
    assert!(
        s.text.starts_with("REGISTER sip:carrier.test SIP/2.0\r\n"),
        "{}",
        s.text
    );
    assert_eq!(s.header("To"), Some("<sip:tpswitch@carrier.test>"));
    assert!(s
        .header("From")
        .unwrap()
        .starts_with("<sip:tpswitch@carrier.test>;tag="));
    assert_eq!(
        s.header("Contact"),
        Some("<sip:tp1@127.0.0.1:5060>;expires=600")
    );
    assert_eq!(s.expires(), 600);
    assert_eq!(s.cseq(), 1);
    assert!(s.header("Authorization").is_none());
    assert!(s
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"));
    assert_eq!(h.reg.state(), State::Registering);
    // Nothing more until an answer comes.
    assert_eq!(h.deadline_ms(), None);
}

#[test]
fn tcp_says_so_in_via_and_contact() {
    let mut h = Harness::new(RegisterConfig { tcp: true, ..cfg() });
    let (_, a) = h.fire();
    let s = sent(&a);
    assert!(s.header("Via").unwrap().starts_with("SIP/2.0/TCP "));
    assert_eq!(
        s.header("Contact"),
        Some("<sip:tp1@127.0.0.1:5060;transport=tcp>;expires=600")
    );
}

#[test]
fn refresh_follows_the_granted_expiry_of_our_contact() {
    let mut h = Harness::new(cfg());
    let (_, a) = h.fire();
    let first = sent(&a);
    // Asked 600, the registrar grants 120 to our contact (and lists another
    // binding of the AOR with 3000, which is not ours).
    let a = h.reply(40, ok(1, 120));
    assert_eq!(a, vec![Action::Registered { expires: 120 }]);
    assert_eq!(h.reg.state(), State::Registered);
    // Halfway through the grant.
    assert_eq!(h.deadline_ms(), Some(40 + 60_000));
    let (ms, a) = h.fire();
    assert_eq!(ms, 60_040);
    let refresh = sent(&a);
    assert_eq!(refresh.cseq(), 2);
    assert_eq!(refresh.header("Call-ID"), first.header("Call-ID"));
    assert_eq!(refresh.header("From"), first.header("From"));
    assert_ne!(refresh.header("Via"), first.header("Via"), "new branch");
    // Still registered while the refresh is out.
    assert_eq!(h.reg.state(), State::Registered);
}

#[test]
fn expires_header_when_our_contact_is_not_listed_and_long_grants_refresh_ten_minutes_early() {
    let mut h = Harness::new(cfg());
    h.fire();
    let a = h.reply(
        10,
        Reply {
            status: 200,
            cseq: 1,
            contacts: vec![],
            expires: Some("3600".into()),
            ..Reply::default()
        },
    );
    assert_eq!(a, vec![Action::Registered { expires: 3600 }]);
    assert_eq!(h.deadline_ms(), Some(10 + 3_000_000));
}

#[test]
fn challenge_then_200_answers_with_digest_and_refreshes_reuse_it() {
    let mut h = Harness::new(cfg());
    h.fire();
    let a = h.reply(5, challenge(401, 1, "n1", false));
    let s = sent(&a);
    assert_eq!(s.cseq(), 2, "§8.1.3.5: a new CSeq for the answered request");
    let auth = s.header("Authorization").expect("Authorization");
    assert!(auth.starts_with("Digest username=\"tpswitch\", realm=\"carrier.test\", nonce=\"n1\", uri=\"sip:carrier.test\""), "{auth}");
    assert!(
        auth.contains("algorithm=SHA-256") && auth.contains("nc=00000001"),
        "{auth}"
    );
    assert!(
        !s.text.contains("s3cret"),
        "the password never goes on the wire"
    );
    let a = h.reply(9, ok(2, 60));
    assert_eq!(a, vec![Action::Registered { expires: 60 }]);
    let (_, a) = h.fire();
    let refresh = sent(&a);
    let auth = refresh
        .header("Authorization")
        .expect("refresh carries credentials");
    assert!(
        auth.contains("nonce=\"n1\"") && auth.contains("nc=00000002"),
        "{auth}"
    );
}

#[test]
fn proxy_challenge_is_answered_with_proxy_authorization() {
    let mut h = Harness::new(cfg());
    h.fire();
    let a = h.reply(5, challenge(407, 1, "p1", false));
    let s = sent(&a);
    assert!(s.header("Proxy-Authorization").is_some());
    assert!(s.header("Authorization").is_none());
}

#[test]
fn a_second_challenge_in_a_row_is_a_failure_not_a_loop_unless_stale() {
    let mut h = Harness::new(cfg());
    h.fire();
    sent(&h.reply(5, challenge(401, 1, "n1", false)));
    // Stale nonce: answered again.
    let s = sent(&h.reply(10, challenge(401, 2, "n2", true)));
    assert!(s.header("Authorization").unwrap().contains("nonce=\"n2\""));
    // Wrong password: the registrar challenges again, not stale.
    let a = h.reply(15, challenge(401, 3, "n3", false));
    assert!(
        matches!(
            a.as_slice(),
            [Action::Failed {
                status: Some(401),
                ..
            }]
        ),
        "{a:?}"
    );
    assert_eq!(h.reg.state(), State::Failed);
}

#[test]
fn no_credentials_means_a_challenge_is_a_failure() {
    let mut h = Harness::new(RegisterConfig {
        credentials: None,
        ..cfg()
    });
    h.fire();
    let a = h.reply(5, challenge(401, 1, "n1", false));
    assert!(
        matches!(
            a.as_slice(),
            [Action::Failed {
                status: Some(401),
                ..
            }]
        ),
        "{a:?}"
    );
}

#[test]
fn interval_too_brief_asks_again_with_min_expires() {
    let mut h = Harness::new(RegisterConfig {
        expires: 2,
        ..cfg()
    });
    let (_, a) = h.fire();
    assert_eq!(sent(&a).expires(), 2);
    let a = h.reply(
        5,
        Reply {
            min_expires: Some("5".into()),
            ..status(423, 1)
        },
    );
    let s = sent(&a);
    assert_eq!(s.expires(), 5);
    assert_eq!(s.cseq(), 2);
    assert_eq!(
        h.reply(8, ok(2, 5)),
        vec![Action::Registered { expires: 5 }]
    );
    // Refreshes keep asking for the raised interval.
    assert_eq!(h.deadline_ms(), Some(8 + 2_500));
    let (_, a) = h.fire();
    assert_eq!(sent(&a).expires(), 5);
    // A 423 without a usable Min-Expires is a failure.
    let a = h.reply(2_600, status(423, 3));
    assert!(
        matches!(
            a.as_slice(),
            [Action::Failed {
                status: Some(423),
                ..
            }]
        ),
        "{a:?}"
    );
}

#[test]
fn failures_back_off_exponentially_with_jitter_up_to_the_cap_and_success_resets() {
    let mut h = Harness::new(RegisterConfig {
        retry_base: Duration::from_secs(30),
        retry_max: Duration::from_secs(240),
        ..cfg()
    });
    let mut now = 0;
    let mut cseq = 0;
    // Full windows: 30, 60, 120, 240, 240 s; each retry 50–100 % of it.
    for full in [30_000u64, 60_000, 120_000, 240_000, 240_000] {
        let (ms, a) = h.fire();
        now = ms;
        cseq += 1;
        assert_eq!(sent(&a).cseq(), cseq);
        let a = if cseq % 2 == 0 {
            h.handle(Event::Timeout, now + 32_000)
        } else {
            h.reply(now + 3, status(503, cseq))
        };
        let Some(Action::Failed { retry_in, .. }) = a.first() else {
            panic!("{a:?}")
        };
        let r = retry_in.as_millis() as u64;
        assert!(
            r >= full / 2 && r <= full,
            "retry {r} ms outside {}..={full}",
            full / 2
        );
        assert_eq!(h.reg.state(), State::Failed);
        assert!(h.reg.failures_total >= cseq as u64);
    }
    let (ms, a) = h.fire();
    cseq += 1;
    assert_eq!(sent(&a).cseq(), cseq);
    h.reply(ms + 2, ok(cseq, 60));
    // The next failure starts from the base again.
    let (ms, _) = h.fire();
    cseq += 1;
    let a = h.reply(ms + 2, status(500, cseq));
    let Some(Action::Failed { retry_in, .. }) = a.first() else {
        panic!("{a:?}")
    };
    assert!(retry_in.as_millis() <= 30_000, "{retry_in:?}");
    let _ = now;
}

#[test]
fn a_failed_refresh_keeps_the_binding_until_it_runs_out() {
    let mut h = Harness::new(cfg());
    h.fire();
    h.reply(0, ok(1, 120));
    let (ms, _) = h.fire();
    assert_eq!(ms, 60_000);
    h.reply(60_010, status(503, 2));
    // The registrar still holds us until 120 s.
    assert_eq!(h.reg.state(), State::Registered);
    assert_eq!(h.reg.expires_at(), Some(h.at(120_000)));
}

#[test]
fn late_answers_to_an_earlier_register_are_ignored() {
    let mut h = Harness::new(cfg());
    h.fire();
    sent(&h.reply(5, challenge(401, 1, "n1", false)));
    // A retransmitted 401 for CSeq 1 arrives after we answered it.
    assert!(h.reply(6, challenge(401, 1, "n1", false)).is_empty());
    assert_eq!(
        h.reply(7, ok(2, 60)),
        vec![Action::Registered { expires: 60 }]
    );
}

#[test]
fn shutdown_unregisters_with_expires_zero_then_stops() {
    let mut h = Harness::new(cfg());
    h.fire();
    h.reply(5, challenge(401, 1, "n1", false));
    h.reply(9, ok(2, 60));
    let a = h.handle(Event::Shutdown, 1_000);
    let s = sent(&a);
    assert_eq!(s.expires(), 0);
    assert_eq!(
        s.header("Contact"),
        Some("<sip:tp1@127.0.0.1:5060>;expires=0")
    );
    assert!(
        s.header("Authorization").is_some(),
        "the unregister carries credentials too"
    );
    assert_eq!(h.reg.state(), State::Unregistering);
    assert_eq!(h.deadline_ms(), None, "no refresh after shutdown");
    assert_eq!(h.reply(1_004, ok(3, 0)), vec![Action::Stopped]);
    assert_eq!(h.reg.state(), State::Stopped);
    // A second shutdown does nothing.
    assert!(h.handle(Event::Shutdown, 1_100).is_empty());
}

#[test]
fn shutdown_answers_one_challenge_and_stops_on_a_time_out() {
    let mut h = Harness::new(RegisterConfig {
        credentials: Some(Credentials {
            username: "tpswitch".into(),
            password: "s3cret".into(),
        }),
        ..cfg()
    });
    h.fire();
    h.reply(2, ok(1, 60));
    sent(&h.handle(Event::Shutdown, 100));
    // The registrar wants a fresh challenge answered for the unregister.
    let s = sent(&h.reply(101, challenge(401, 2, "u1", false)));
    assert_eq!(s.expires(), 0);
    assert_eq!(h.handle(Event::Timeout, 32_101), vec![Action::Stopped]);
}

#[test]
fn shutdown_without_a_binding_sends_nothing() {
    let mut h = Harness::new(cfg());
    h.fire();
    h.reply(5, status(503, 1));
    assert_eq!(h.handle(Event::Shutdown, 10), vec![Action::Stopped]);
    assert_eq!(h.deadline_ms(), None);
}

#[test]
fn refresh_rule() {
    assert_eq!(refresh_after(5), Duration::from_millis(2_500));
    assert_eq!(refresh_after(1200), Duration::from_secs(600));
    assert_eq!(refresh_after(3600), Duration::from_secs(3000));
    assert_eq!(refresh_after(1), Duration::from_millis(500));
}
