//! The UAC leg toward the trunk, against SIPp playing the trunk as UAS:
//! answered (200), busy (486), a digest challenge (401) then 200, and a
//! 200 whose Contact and Record-Route name another host.
//! The library's SIP endpoint runs in-process on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::*;
use tpswitch::media::codec::Codec;
use tpswitch::sip::core::{CoreConfig, Credentials, Local, SipCore, TrunkRoute, Untrusted};
use tpswitch::sip::endpoint::{self, EndpointConfig};
use tpswitch::sip::inspect::Limits;
use tpswitch::sip::transaction::Timers;
use tpswitch::sip::transport::{FrameLimits, TcpAdmission};
use tpswitch::sip::{DialOutcome, DialRequest, LegId, Presentation, SipCommand, SipEvent};

const OFFER: &str = "v=0\r\no=tpswitch 1 1 IN IP4 127.0.0.1\r\ns=tpswitch\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n";

struct Uac {
    commands: mpsc::Sender<SipCommand>,
    events: mpsc::Receiver<SipEvent>,
    cancel: CancellationToken,
}

async fn uac(trunk: SocketAddr, creds: Option<Credentials>) -> Uac {
    uac_over(trunk, creds, false).await
}

async fn uac_over(trunk: SocketAddr, creds: Option<Credentials>, tcp: bool) -> Uac {
    uac_routes(vec![TrunkRoute {
        tcp,
        credentials: creds,
        ..TrunkRoute::plain("carrier", trunk)
    }])
    .await
}

async fn uac_routes(trunks: Vec<TrunkRoute>) -> Uac {
    let port = free_udp_port();
    let cfg = CoreConfig {
        timers: Timers::default(),
        local: Local {
            hostport: format!("127.0.0.1:{port}"),
            user_agent: "tpswitch-test".into(),
            nat: Default::default(),
            tls_hostport: None,
        },
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        untrusted: Untrusted::Reject,
        max_calls: 10,
        max_transactions: 1000,
        retry_after: Duration::from_secs(5),
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        dtmf_payload_type: 101,
        session_expires: 1800,
        min_se: 90,
        trunks,
        limits: Limits::default(),
        registrations: Vec::new(),
    };
    let core = SipCore::new(cfg, Box::new(|_: &str| false));
    let (tx, rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let (handle, _task) = endpoint::start(
        EndpointConfig {
            bind: format!("127.0.0.1:{port}").parse().unwrap(),
            tcp: false,
            frame: FrameLimits {
                max_message_bytes: 65535,
                max_header_bytes: 16384,
            },
            admission: TcpAdmission {
                allow: vec!["127.0.0.1/32".parse().unwrap()],
                trusted: 16,
                untrusted: 0,
            },
            tcp_idle_timeout: Duration::from_secs(32),
            tls: None,
            trunk_tls: Vec::new(),
            trace: tpswitch::sip::trace::SipTracer::off(),
        },
        |_| core,
        tx,
        cancel.clone(),
    )
    .await
    .expect("endpoint");
    Uac {
        commands: handle.commands,
        events: rx,
        cancel,
    }
}

async fn dial(u: &Uac) -> LegId {
    let leg = LegId::next();
    u.commands
        .send(SipCommand::Dial {
            leg,
            request: DialRequest {
                targets: vec!["+12345678910".into()],
                from: vec![Presentation {
                    from_user: "+15550100001".into(),
                    diversion: None,
                }],
                sdp: vec![OFFER.as_bytes().to_vec()],
            },
        })
        .await
        .unwrap();
    leg
}

/// The next event that is not a provisional (nor the Call-ID report of
/// the INVITE going out), within `limit`.
async fn outcome(u: &mut Uac, limit: Duration) -> SipEvent {
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, u.events.recv()).await {
            Ok(Some(SipEvent::Progress { .. } | SipEvent::Dialling { .. })) => continue,
            Ok(Some(ev)) => return ev,
            other => panic!("no outcome: {other:?}"),
        }
    }
}

/// We hang up; the leg ends with our BYE and SIPp completes its scenario.
async fn hang_up_and_finish(u: &mut Uac, leg: LegId, sipp: &mut BackgroundSipp) {
    u.commands.send(SipCommand::HangUp(leg)).await.unwrap();
    match outcome(u, Duration::from_secs(10)).await {
        SipEvent::Ended { leg: l, .. } => assert_eq!(l, leg),
        other => panic!("expected Ended, got {other:?}"),
    }
    let status = sipp.wait(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "sipp: {status:?}\n{}\n{}",
        sipp.errors(),
        sipp.messages()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_answers_then_we_hang_up() {
    let port = free_udp_port();
    let mut sipp = BackgroundSipp::start("uas_answer.xml", port, 1, &[]);
    let mut u = uac(format!("127.0.0.1:{port}").parse().unwrap(), None).await;
    let leg = dial(&u).await;
    match outcome(&mut u, Duration::from_secs(10)).await {
        SipEvent::Answered { leg: l, media } => {
            assert_eq!(l, leg);
            let m = media.expect("an SDP answer");
            assert_eq!(m.stream.telephone_event_pt, Some(101));
            assert_eq!(m.stream.codec, Codec::Pcmu);
        }
        other => panic!("expected Answered, got {other:?}\n{}", sipp.messages()),
    }
    hang_up_and_finish(&mut u, leg, &mut sipp).await;
    u.cancel.cancel();
}

/// Issue 10: per trunk, the Request-URI, From and To hosts are set apart
/// from where the INVITE goes (127.0.0.1:port), with P-Asserted-Identity,
/// Privacy and a carrier token; SIPp fails the call unless each is on the
/// wire as configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_hosts_pai_privacy_and_token_are_on_the_wire() {
    let port = free_udp_port();
    let mut sipp = BackgroundSipp::start("uas_carrier_headers.xml", port, 1, &[]);
    let trunk: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut u = uac_routes(vec![TrunkRoute {
        ruri_host: Some("example.pstn.twilio.com".into()),
        from_host: Some("tpswitch.example.com".into()),
        to_host: Some("example.pstn.twilio.com".into()),
        pai: true,
        privacy: Some("id".into()),
        headers: vec![("X-Carrier-Token".into(), "abc123".into())],
        ..TrunkRoute::plain("twilio", trunk)
    }])
    .await;
    let leg = dial(&u).await;
    match outcome(&mut u, Duration::from_secs(10)).await {
        SipEvent::Answered { leg: l, .. } => assert_eq!(l, leg),
        other => panic!(
            "expected Answered, got {other:?}\n{}\n{}",
            sipp.errors(),
            sipp.messages()
        ),
    }
    hang_up_and_finish(&mut u, leg, &mut sipp).await;
    u.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_busy_is_a_typed_outcome() {
    let port = free_udp_port();
    let mut sipp = BackgroundSipp::start("uas_busy.xml", port, 1, &[]);
    let mut u = uac(format!("127.0.0.1:{port}").parse().unwrap(), None).await;
    let leg = dial(&u).await;
    match outcome(&mut u, Duration::from_secs(10)).await {
        SipEvent::Failed { leg: l, outcome } => {
            assert_eq!(l, leg);
            assert_eq!(outcome, DialOutcome::Busy(486));
        }
        other => panic!("expected Failed(Busy), got {other:?}"),
    }
    let status = sipp.wait(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{}", sipp.errors());
    u.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_challenge_is_answered_once_with_digest() {
    let port = free_udp_port();
    let mut sipp = BackgroundSipp::start("uas_auth.xml", port, 1, &[]);
    let mut u = uac(
        format!("127.0.0.1:{port}").parse().unwrap(),
        Some(Credentials {
            username: "alice".into(),
            password: "secret".into(),
        }),
    )
    .await;
    let leg = dial(&u).await;
    match outcome(&mut u, Duration::from_secs(10)).await {
        SipEvent::Answered { leg: l, .. } => assert_eq!(l, leg),
        other => panic!(
            "expected Answered after the challenge, got {other:?}\n{}\n{}",
            sipp.errors(),
            sipp.messages()
        ),
    }
    hang_up_and_finish(&mut u, leg, &mut sipp).await;
    u.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_over_tcp_answers_then_we_hang_up() {
    let port = free_udp_port();
    let mut sipp = BackgroundSipp::start("uas_answer.xml", port, 1, &["-t", "t1"]);
    let mut u = uac_over(format!("127.0.0.1:{port}").parse().unwrap(), None, true).await;
    let leg = dial(&u).await;
    match outcome(&mut u, Duration::from_secs(10)).await {
        SipEvent::Answered { leg: l, .. } => assert_eq!(l, leg),
        other => panic!(
            "expected Answered over TCP, got {other:?}\n{}\n{}",
            sipp.errors(),
            sipp.messages()
        ),
    }
    hang_up_and_finish(&mut u, leg, &mut sipp).await;
    assert!(
        sipp.messages().contains("SIP/2.0/TCP"),
        "the INVITE went over TCP"
    );
    u.cancel.cancel();
}

/// A carrier whose 200 names another host in Contact and Record-Route (a
/// decoy socket here): the ACK and our BYE still reach the trunk, with the
/// route set in Route headers (SIPp checks both), nothing reaches the
/// decoy, and the carrier's hold re-INVITE midway is answered without
/// dropping the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_and_bye_reach_the_trunk_when_the_2xx_points_elsewhere() {
    let decoy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    decoy.set_nonblocking(true).unwrap();
    let elsewhere = decoy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("uas_contact_elsewhere.xml");
    let text = std::fs::read_to_string(sipp_dir().join("uas_contact_elsewhere.xml")).unwrap();
    std::fs::write(&scenario, text.replace("@ELSEWHERE@", &elsewhere)).unwrap();

    let port = free_udp_port();
    let mut sipp = BackgroundSipp::start(scenario.to_str().unwrap(), port, 1, &[]);
    let mut u = uac(format!("127.0.0.1:{port}").parse().unwrap(), None).await;
    let leg = dial(&u).await;
    match outcome(&mut u, Duration::from_secs(10)).await {
        SipEvent::Answered { leg: l, .. } => assert_eq!(l, leg),
        other => panic!("expected Answered, got {other:?}\n{}", sipp.messages()),
    }
    // The carrier's hold: answered, and the call goes on.
    match outcome(&mut u, Duration::from_secs(10)).await {
        SipEvent::MediaChanged { leg: l, media } => {
            assert_eq!(l, leg);
            assert!(media.stream.hold);
        }
        other => panic!(
            "expected the hold re-INVITE, got {other:?}\n{}\n{}",
            sipp.errors(),
            sipp.messages()
        ),
    }
    hang_up_and_finish(&mut u, leg, &mut sipp).await;
    let mut buf = [0u8; 2048];
    match decoy.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!(
            "the address in the 200's Contact got a message: {other:?} {}",
            String::from_utf8_lossy(&buf)
        ),
    }
    u.cancel.cancel();
}
