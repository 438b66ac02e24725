//! The event stream and webhooks on the real binary (issue 11): an agent
//! logs in through SIPp; an SSE client (a raw TCP reader, as a browser's
//! EventSource would read it) sees `presence.online` and can resume after
//! an id; a webhook receiver (a small HTTP server here) gets the event
//! signed, after answering 500 twice.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use common::Step::{Key, Wait};
use common::*;
use hmac::{KeyInit, Mac};

const CONTACT_POINT: &str = "+15550100000";
/// jsmith in config/tpswitch.toml.
const JSMITH: &str = "+12345678910";
const TOKEN: &str = "events-test-token";
const SECRET: &str = "whsec-events-test";

/// One POST the receiver got.
struct Delivery {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Delivery {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 receiver on loopback that answers each POST with the next
/// of `statuses` (then 200) and hands every request over `tx`.
fn receiver(statuses: Vec<u16>) -> (SocketAddr, mpsc::Receiver<Delivery>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let addr = listener.local_addr().expect("receiver address");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let Some(d) = read_request(&stream) else {
                continue;
            };
            let status = statuses.next().unwrap_or(200);
            let mut w = &stream;
            let _ = write!(
                w,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if tx.send(d).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

fn read_request(stream: &TcpStream) -> Option<Delivery> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if !line.starts_with("POST ") {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Delivery { headers, body })
}

/// Stripe-style check, written here from the description (not with the
/// switch's own code): v1 = hex(HMAC-SHA256(secret, "<t>.<body>")).
fn signature_ok(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => v1 = Some(v.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    if t.parse::<i64>().map_or(true, |t| (now - t).abs() > 300) {
        return false;
    }
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(t.as_bytes());
    m.update(b".");
    m.update(body);
    let want: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    want == v1
}

#[test]
fn a_log_in_reaches_the_event_stream_and_a_signed_retried_webhook() {
    // 500, 500, then 200: the one event is delivered on the third attempt.
    let (hook, deliveries) = receiver(vec![500, 500]);
    let sw = Switch::start_env(
        free_udp_port(),
        &[
            ("TPSWITCH_API_TOKEN", TOKEN),
            ("TPSWITCH_TEST_WEBHOOK_SECRET", SECRET),
        ],
        |t| {
            format!(
                "{t}\n[[webhooks]]\nname = \"test\"\nurl = \"http://{hook}/hooks/tpswitch\"\nsecret_env = \"TPSWITCH_TEST_WEBHOOK_SECRET\"\nevents = [\"presence.online\"]\nretry_initial = \"100ms\"\n"
            )
        },
    );
    let stream = sse_lines(sw.http, Some(TOKEN), None);
    // The response head first: the stream is open before the log-in.
    let status = stream
        .recv_timeout(Duration::from_secs(10))
        .expect("a response");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}\n{}", sw.log());

    let dir = tempfile::tempdir().unwrap();
    // The switch confirms and hangs up; wait for its BYE rather than racing it with
    // ours after a pause (a pause there assumed how long the confirmation speaks).
    let sc = login_scenario(dir.path(), JSMITH, &[Wait(1000), Key('2')], true);
    sipp(
        sc.to_str().unwrap(),
        Some(sw.sip),
        1,
        &["-s", CONTACT_POINT],
    )
    .assert_ok(&sw);

    let (id, data) = sse_event_of(&stream, "presence.online");
    let id = id.expect("the event has an id");
    assert_eq!(data["agent"], "jsmith", "{data}");
    assert_eq!(data["id"], id);
    assert!(data["window"]["end"].is_string(), "{data}");

    // Resume after the id before it: the same event again, by id.
    let resumed = sse_lines(sw.http, Some(TOKEN), Some(id - 1));
    assert_eq!(sse_event_of(&resumed, "presence.online").0, Some(id));

    // Three deliveries of that one event, each signed, numbered 1, 2, 3.
    let got: Vec<Delivery> = (0..3)
        .map(|i| {
            deliveries
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("delivery {} of 3 missing\n{}", i + 1, sw.log()))
        })
        .collect();
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d.header("x-tpswitch-event"), "presence.online");
        assert_eq!(d.header("x-tpswitch-event-id"), id.to_string());
        assert_eq!(d.header("x-tpswitch-delivery-attempt"), (i + 1).to_string());
        assert_eq!(d.header("content-type"), "application/json");
        assert!(
            signature_ok(d.header("x-tpswitch-signature"), &d.body),
            "bad signature {:?}",
            d.header("x-tpswitch-signature")
        );
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(
            (body["id"].as_u64(), &body["agent"]),
            (Some(id), &"jsmith".into())
        );
    }
    // A tampered body does not pass the receiver's check.
    assert!(!signature_ok(got[0].header("x-tpswitch-signature"), b"{}"));
    await_some("the delivery counted", Duration::from_secs(10), || {
        (metric(
            &sw,
            "tpswitch_webhook_delivered_total{webhook=\"test\"}",
            Some(TOKEN),
        ) == 1)
            .then_some(())
    });
    assert_eq!(
        metric(
            &sw,
            "tpswitch_webhook_failed_attempts_total{webhook=\"test\"}",
            Some(TOKEN)
        ),
        2
    );
    // The secret is in no log line.
    assert!(!sw.log().contains(SECRET));
}
