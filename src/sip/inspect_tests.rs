use super::*;
use crate::sip::access::{called_number_user, caller_candidates, sdp_body, top_via, uri_verstat};
use crate::sip::api::Verstat;
use crate::sip::differential::readers_agree;
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Host, Method, Transport};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Request,
    Response,
    Reject(u16),
    Drop,
}
use Outcome::*;

fn outcome(i: &Inspection) -> Outcome {
    match i {
        Inspection::Request(_) => Request,
        Inspection::Response(_) => Response,
        Inspection::Reject { status, .. } => Reject(*status),
        Inspection::Drop { .. } => Drop,
    }
}

fn limits() -> Limits {
    Limits::default()
}

/// The RFC 4475 / RFC 5118 vectors: `tests/corpora/` of this project, or the
/// folder `TPSWITCH_CORPORA` names (an override, e.g. for a newer copy).
fn corpora() -> PathBuf {
    let dir = std::env::var_os("TPSWITCH_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpora")));
    assert!(
        dir.join("rfc4475").is_dir(),
        "torture-test corpora not found at {}: they ship in tests/corpora/ (or set TPSWITCH_CORPORA \
         to a folder holding rfc4475/ and rfc5118/). To make rfc4475/: take RFC 4475's text, keep \
         the lines between -- BEGIN MESSAGE ARCHIVE -- and -- END MESSAGE ARCHIVE -- that are a \
         single token, join them, base64 -d | tar xz",
        dir.display()
    );
    dir
}

/// The shipped vectors are byte-exact copies: a checkout that rewrote line
/// ends (or a truncated copy) would make every outcome below meaningless.
#[test]
fn corpora_match_their_checksums() {
    use sha2::{Digest, Sha256};
    let dir = corpora();
    let mut checked = 0;
    for set in ["rfc4475", "rfc5118"] {
        let sums = std::fs::read_to_string(dir.join(format!("{set}.SHA256SUMS")))
            .unwrap_or_else(|e| panic!("{set}.SHA256SUMS: {e}"));
        for line in sums.lines().filter(|l| !l.trim().is_empty()) {
            let (want, name) = line.split_once("  ").expect("sha256sum line: HASH  NAME");
            let bytes = std::fs::read(dir.join(set).join(name))
                .unwrap_or_else(|e| panic!("{set}/{name}: {e}"));
            let got: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, want, "{set}/{name} differs from {set}.SHA256SUMS");
            checked += 1;
        }
    }
    assert_eq!(checked, 62, "50 RFC 4475 files and 12 RFC 5118 files");
}

/// Expected outcome per file, decided from each RFC 4475 / RFC 5118 section (see the
/// report for the reasoning; `inspect.rs` cites the rule behind each).
const TABLE: &[(&str, Outcome)] = &[
    // RFC 4475 §3.1.1: valid messages.
    ("rfc4475/wsinv.dat", Request),
    ("rfc4475/intmeth.dat", Reject(501)), // valid, but an extension method we do not implement
    ("rfc4475/esc01.dat", Request),
    ("rfc4475/escnull.dat", Request),
    ("rfc4475/esc02.dat", Reject(501)), // RE%47IST%45R is not REGISTER
    ("rfc4475/lwsdisp.dat", Request),
    ("rfc4475/longreq.dat", Request),
    ("rfc4475/dblreq.dat", Request),
    ("rfc4475/semiuri.dat", Request),
    ("rfc4475/transports.dat", Request),
    ("rfc4475/mpart01.dat", Request),
    ("rfc4475/unreason.dat", Response),
    ("rfc4475/noreason.dat", Response),
    // RFC 4475 §3.1.2: invalid messages.
    ("rfc4475/badinv01.dat", Reject(400)),
    ("rfc4475/clerr.dat", Reject(400)),
    ("rfc4475/ncl.dat", Reject(400)),
    ("rfc4475/scalar02.dat", Reject(400)),
    ("rfc4475/scalarlg.dat", Drop), // response: nobody to answer
    ("rfc4475/quotbal.dat", Reject(400)),
    ("rfc4475/ltgtruri.dat", Reject(400)),
    ("rfc4475/lwsruri.dat", Reject(400)),
    ("rfc4475/lwsstart.dat", Reject(400)),
    ("rfc4475/trws.dat", Reject(400)),
    ("rfc4475/escruri.dat", Reject(400)),
    ("rfc4475/baddate.dat", Request), // Date is irrelevant to us: ignore it
    ("rfc4475/regbadct.dat", Reject(400)),
    ("rfc4475/badaspec.dat", Reject(400)),
    ("rfc4475/baddn.dat", Drop), // archive copy lacks the empty line: truncated
    ("rfc4475/badvers.dat", Reject(505)),
    ("rfc4475/mismatch01.dat", Reject(400)),
    ("rfc4475/mismatch02.dat", Reject(501)), // RFC prefers 501 (400 acceptable)
    ("rfc4475/bigcode.dat", Drop),
    // §3.2 transaction layer.
    ("rfc4475/badbranch.dat", Reject(400)),
    // §3.3 application layer.
    ("rfc4475/insuf.dat", Reject(400)),
    ("rfc4475/unkscm.dat", Reject(416)),
    ("rfc4475/novelsc.dat", Reject(416)),
    ("rfc4475/unksm2.dat", Request),
    ("rfc4475/bext01.dat", Reject(420)),
    ("rfc4475/invut.dat", Reject(415)),
    ("rfc4475/regaut01.dat", Request),
    ("rfc4475/multi01.dat", Reject(400)),
    ("rfc4475/mcl01.dat", Reject(400)),
    ("rfc4475/bcast.dat", Response),
    ("rfc4475/zeromf.dat", Request), // OPTIONS at Max-Forwards 0 is answered locally
    ("rfc4475/cparam01.dat", Request),
    ("rfc4475/cparam02.dat", Request),
    ("rfc4475/regescrt.dat", Request),
    ("rfc4475/sdp01.dat", Reject(406)),
    // §3.4 backward compatibility.
    ("rfc4475/inv2543.dat", Request),
    // Not named by any section: no SIP-Version and no Via.
    ("rfc4475/test.dat", Drop),
    // RFC 5118.
    ("rfc5118/ipv4-mapped-ipv6", Request),
    ("rfc5118/ipv6-bad", Reject(400)),
    ("rfc5118/ipv6-bug-abnf-3-colons", Reject(400)),
    ("rfc5118/ipv6-correct-abnf-2-colons", Request),
    ("rfc5118/ipv6-good", Request),
    ("rfc5118/ipv6-in-sdp", Request),
    ("rfc5118/mult-ip-in-header", Request),
    ("rfc5118/mult-ip-in-sdp", Request),
    ("rfc5118/port-ambiguous", Request),
    ("rfc5118/port-unambiguous", Request),
    ("rfc5118/via-received-param-no-delim", Request),
    ("rfc5118/via-received-param-with-delim", Request),
];

fn read(name: &str) -> Vec<u8> {
    let p = corpora().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

#[test]
fn corpus_outcomes() {
    let dir = corpora();
    // Every file in the folders is in the table, and vice versa.
    let mut on_disk = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("corpus folder") {
            let name = e
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .to_string();
            on_disk.push(format!("{sub}/{name}"));
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "corpus files and table differ");
    assert_eq!(TABLE.len(), 62);

    let mut failures = Vec::new();
    for (name, want) in TABLE {
        let got = inspect(&read(name), &limits());
        if outcome(&got) != *want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
        // A Request we hand on must survive rsipstack's own serialisation unchanged in
        // meaning: re-inspecting its bytes gives a Request again.
        if let Inspection::Request(req) = &got {
            let again = inspect(&req.req.to_bytes(), &limits());
            if outcome(&again) != Request {
                failures.push(format!("{name}: re-serialised request gives {again:?}"));
            }
            if let Err(e) = readers_agree(req) {
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn reject(name: &str) -> (u16, String, String) {
    match inspect(&read(name), &limits()) {
        Inspection::Reject {
            status,
            reason,
            response,
        } => (status, reason, String::from_utf8(response).expect("utf-8")),
        other => panic!("{name}: expected Reject, got {other:?}"),
    }
}

#[test]
fn corpus_reject_reasons_and_responses() {
    let cases = [
        ("rfc4475/clerr.dat", "Content-Length"),
        ("rfc4475/ncl.dat", "Malformed Content-Length"),
        ("rfc4475/insuf.dat", "Missing From Header"),
        ("rfc4475/mismatch01.dat", "CSeq method does not match"),
        ("rfc4475/multi01.dat", "Multiple"),
        ("rfc4475/mcl01.dat", "Multiple Content-Length"),
        ("rfc4475/scalar02.dat", "CSeq"),
        ("rfc4475/quotbal.dat", "To"),
        ("rfc4475/badinv01.dat", "Via"),
        ("rfc4475/lwsstart.dat", "Request-Line"),
        ("rfc4475/escruri.dat", "Request-URI"),
        ("rfc5118/ipv6-bad", "Request-URI"),
    ];
    for (name, needle) in cases {
        let (status, reason, _) = reject(name);
        assert_eq!(status, 400, "{name}");
        assert!(
            reason.starts_with("Bad Request - ") && reason.contains(needle),
            "{name}: {reason}"
        );
    }
    let (_, _, r) = reject("rfc4475/bext01.dat");
    assert!(
        r.contains("\r\nUnsupported: nothingSupportsThis, nothingSupportsThisEither\r\n"),
        "{r}"
    );
    let (_, _, r) = reject("rfc4475/invut.dat");
    assert!(r.contains("\r\nAccept: application/sdp\r\n"), "{r}");
    // Our own error responses are well-formed responses for the same transaction.
    for name in [
        "rfc4475/clerr.dat",
        "rfc4475/ncl.dat",
        "rfc4475/badvers.dat",
        "rfc4475/bext01.dat",
        "rfc4475/invut.dat",
        "rfc4475/sdp01.dat",
        "rfc4475/mismatch01.dat",
        "rfc4475/unkscm.dat",
        "rfc4475/novelsc.dat",
        "rfc4475/mcl01.dat",
        "rfc4475/multi01.dat",
        "rfc4475/lwsstart.dat",
        "rfc4475/trws.dat",
        "rfc4475/ltgtruri.dat",
        "rfc4475/escruri.dat",
        "rfc4475/badbranch.dat",
        "rfc5118/ipv6-bad",
    ] {
        let (status, _, r) = reject(name);
        let Inspection::Response(resp) = inspect(r.as_bytes(), &limits()) else {
            panic!("{name}: our {status} does not parse: {r}");
        };
        assert_eq!(resp.status_code.code(), status, "{name}");
        let req = String::from_utf8_lossy(&read(name)).to_string();
        let call_id = resp.call_id_header().expect("Call-ID").value().to_string();
        assert!(req.contains(&call_id), "{name}: Call-ID not copied");
        let to = resp.to_header().expect("To").typed().expect("typed To");
        assert!(to.tag().is_some(), "{name}: no To tag");
    }
    // The baddn message with its missing empty line restored is a 400 (RFC 4475 §3.1.2.15).
    let mut fixed = read("rfc4475/baddn.dat");
    fixed.extend_from_slice(b"\r\n");
    assert_eq!(outcome(&inspect(&fixed, &limits())), Reject(400));
}

#[test]
fn stateless_to_tag_is_stable() {
    let a = reject("rfc4475/clerr.dat").2;
    let b = reject("rfc4475/clerr.dat").2;
    assert_eq!(a, b);
    let (_, _, r) = reject("rfc4475/mcl01.dat");
    assert!(r.contains("\r\nVia: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423\r\n"));
    assert!(r.ends_with("Content-Length: 0\r\n\r\n"));
}

fn req(text: &str) -> Box<rsipstack::sip::Request> {
    match inspect(text.as_bytes(), &limits()) {
        Inspection::Request(r) => Box::new(r.req),
        other => panic!("expected Request, got {other:?}\n{text}"),
    }
}

fn msg(start: &str, headers: &[&str], body: &str) -> String {
    let mut s = format!("{start}\r\n");
    for h in headers {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

#[test]
fn compact_forms_give_typed_headers() {
    let text = format!(
        "INVITE sip:+4930123@example.com SIP/2.0\r\n\
         v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport\r\n\
         f: \"Alice\" <sip:+4930555@example.com>;tag=a1\r\n\
         t: <sip:+4930123@example.com>\r\n\
         i: abc@192.0.2.1\r\n\
         CSeq: 1 INVITE\r\n\
         m: <sip:alice@192.0.2.1:5060>\r\n\
         c: application/sdp\r\n\
         k: timer\r\n\
         l: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let r = req(&text);
    let via = r.top_via_header().unwrap().typed().unwrap();
    assert_eq!(via.transport, Transport::Udp);
    assert_eq!(via.branch().unwrap().value(), "z9hG4bKabc");
    assert_eq!(via.rport(), Some(None));
    let from = r.from_header().unwrap().typed().unwrap();
    assert_eq!(from.tag().unwrap().value(), "a1");
    assert_eq!(from.uri.user(), Some("+4930555"));
    assert_eq!(
        r.to_header().unwrap().typed().unwrap().uri.user(),
        Some("+4930123")
    );
    assert_eq!(r.call_id_header().unwrap().value(), "abc@192.0.2.1");
    assert_eq!(r.cseq_header().unwrap().seq().unwrap(), 1);
    assert_eq!(r.cseq_header().unwrap().method().unwrap(), Method::Invite);
    assert!(r.contact_header().is_ok());
    assert_eq!(r.body, SDP.as_bytes());
    assert_eq!(sdp_body(&r), Some(SDP.as_bytes()));
    assert!(r.header_contains_token("Supported", "timer"));
}

#[test]
fn whitespace_before_colon_and_folding_are_accepted() {
    let r = req(&msg(
        "OPTIONS sip:bob@example.com SIP/2.0",
        &[
            "Via   : SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
            "From\t: <sip:alice@example.com>",
            " ;tag=77",
            "To :",
            "\t<sip:bob@example.com>",
            "Call-ID  : c1@x",
            "CSeq: 7",
            "  OPTIONS",
            "Max-Forwards : 70",
            "Subject: one",
            "\t two",
        ],
        "",
    ));
    assert_eq!(
        r.from_header()
            .unwrap()
            .typed()
            .unwrap()
            .tag()
            .unwrap()
            .value(),
        "77"
    );
    assert_eq!(
        r.to_header().unwrap().typed().unwrap().uri.user(),
        Some("bob")
    );
    assert_eq!(r.cseq_header().unwrap().seq().unwrap(), 7);
    assert_eq!(r.header_value("Subject").as_deref(), Some("one two"));
    assert_eq!(
        r.top_via_header()
            .unwrap()
            .typed()
            .unwrap()
            .branch()
            .unwrap()
            .value(),
        "z9hG4bK1"
    );
}

#[test]
fn tel_request_uri_is_accepted() {
    let r = req(&msg(
        "INVITE tel:+12345678910 SIP/2.0",
        &[
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2",
            "From: <sip:+15550001@trunk.example>;tag=1",
            "To: <tel:+12345678910>",
            "Call-ID: t1",
            "CSeq: 1 INVITE",
            "Max-Forwards: 70",
        ],
        "",
    ));
    assert_eq!(called_number_user(&r).as_deref(), Some("+12345678910"));
    assert_eq!(r.uri.to_string(), "tel:+12345678910");
    let r = req(&msg(
        "INVITE tel:+1-234-567;phone-context=example.com SIP/2.0",
        &[
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK3",
            "From: <sip:a@b>;tag=1",
            "To: <sip:x@y>",
            "Call-ID: t2",
            "CSeq: 1 INVITE",
        ],
        "",
    ));
    assert_eq!(called_number_user(&r).as_deref(), Some("+1234567"));
}

#[test]
fn ipv6_via_is_typed() {
    let r = req(&msg(
        "BYE sip:bob@[2001:db8::1]:5060 SIP/2.0",
        &[
            "Via: SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKv6;rport=5062;received=[2001:db8::9:255]",
            "From: <sip:a@example.com>;tag=1",
            "To: <sip:b@example.com>;tag=2",
            "Call-ID: v6",
            "CSeq: 2 BYE",
            "Max-Forwards: 70",
        ],
        "",
    ));
    let via = r.top_via_header().unwrap().typed().unwrap();
    assert!(matches!(via.uri.host_with_port.host, Host::IpAddr(ip) if ip.is_ipv6()));
    let info = top_via(&r).unwrap();
    assert_eq!(info.host, "2001:db8::9:1");
    assert_eq!(info.port, Some(5060));
    assert_eq!(info.transport, "UDP");
    assert_eq!(info.branch.as_deref(), Some("z9hG4bKv6"));
    assert_eq!(info.rport, Some(Some(5062)));
    assert_eq!(info.received.as_deref(), Some("2001:db8::9:255"));
}

#[test]
fn wsinv_headers_are_canonical() {
    let Inspection::Request(accepted) = inspect(&read("rfc4475/wsinv.dat"), &limits()) else {
        panic!("wsinv")
    };
    let r = &accepted.req;
    let from = r.from_header().unwrap().typed().unwrap();
    assert_eq!(from.tag().unwrap().value(), "98asjd8");
    assert_eq!(
        r.to_header()
            .unwrap()
            .typed()
            .unwrap()
            .tag()
            .unwrap()
            .value(),
        "1918181833n"
    );
    assert_eq!(r.cseq_header().unwrap().seq().unwrap(), 9);
    assert_eq!(r.max_forwards_header().unwrap().value(), "68");
    let c = caller_candidates(r);
    assert_eq!(c.from_display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(c.from_user.as_deref(), Some("jdrosen"));
    let info = top_via(r).unwrap();
    assert_eq!(
        (info.host.as_str(), info.branch.as_deref()),
        ("192.0.2.2", Some("390skdjuw"))
    );
    assert_eq!(r.body.len(), 150);
}

#[test]
fn escaped_user_parts_are_decoded_and_round_trip() {
    let Inspection::Request(accepted) = inspect(&read("rfc4475/esc01.dat"), &limits()) else {
        panic!("esc01")
    };
    let r = &accepted.req;
    assert_eq!(r.uri.user(), Some("sips:user@example.com"));
    assert_eq!(
        r.uri.to_string(),
        "sip:sips%3Auser%40example.com@example.net"
    );
    assert_eq!(
        called_number_user(r).as_deref(),
        Some("sips:user@example.com")
    );
    assert_eq!(
        caller_candidates(r).from_user.as_deref(),
        Some("I have spaces")
    );
    let Inspection::Request(accepted) = inspect(&read("rfc4475/semiuri.dat"), &limits()) else {
        panic!("semiuri")
    };
    let r = &accepted.req;
    assert_eq!(r.uri.user(), Some("user;par=u@example.net"));
    assert_eq!(r.uri.host().to_string(), "example.com");
}

#[test]
fn verstat_is_read_from_the_user_part_or_after_the_host_in_any_case() {
    use Verstat::*;
    let cases = [
        // ATIS-1000074 §5.3.1: in the telephone-subscriber of user=phone.
        (
            "sip:+15551234567;verstat=TN-Validation-Passed@carrier.example;user=phone",
            Passed,
        ),
        (
            "sip:+15551234567;verstat=TN-Validation-Failed@carrier.example;user=phone",
            Failed,
        ),
        (
            "sip:+15551234567;verstat=No-TN-Validation@carrier.example;user=phone",
            NoValidation,
        ),
        ("tel:+15551234567;verstat=TN-Validation-Passed", Passed),
        (
            "tel:+1-555-123-4567;phone-context=x;verstat=No-TN-Validation",
            NoValidation,
        ),
        // After the host, as some carriers write it.
        (
            "sip:+15551234567@carrier.example;user=phone;verstat=TN-Validation-Passed",
            Passed,
        ),
        (
            "sips:+15551234567@carrier.example;verstat=TN-Validation-Passed",
            Passed,
        ),
        // Names and values in any case; escapes decoded.
        (
            "sip:+15551234567;VerStat=tn-validation-passed@carrier.example",
            Passed,
        ),
        (
            "sip:+15551234567@carrier.example;VERSTAT=TN-VALIDATION-PASSED",
            Passed,
        ),
        (
            "sip:+15551234567;verstat=TN%2dValidation-Passed@c.example",
            Passed,
        ),
        // Absent, empty, unknown, or a look-alike name.
        ("sip:+15551234567@carrier.example;user=phone", Absent),
        ("tel:+15551234567", Absent),
        ("sip:+15551234567;verstat=@c.example", Other),
        ("sip:+15551234567;verstat=Passed@c.example", Other),
        (
            "sip:+15551234567;xverstat=TN-Validation-Passed@c.example",
            Absent,
        ),
        (
            "sip:+15551234567@c.example?verstat=TN-Validation-Passed",
            Absent,
        ),
        ("mailto:verstat=TN-Validation-Passed@c.example", Absent),
        ("sip:c.example;verstat=TN-Validation-Passed", Passed),
        // Two that disagree: the weaker counts, whichever comes first.
        (
            "sip:+1555;verstat=TN-Validation-Passed@c.example;verstat=TN-Validation-Failed",
            Failed,
        ),
        (
            "sip:+1555;verstat=No-TN-Validation@c.example;verstat=TN-Validation-Passed",
            NoValidation,
        ),
    ];
    for (uri, want) in cases {
        assert_eq!(uri_verstat(uri), want, "{uri}");
    }
}

#[test]
fn verstat_comes_from_both_headers_and_the_pai_entry_the_number_came_from() {
    let base = |extra: &[&str], from: &str| {
        let mut h = vec![
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK9",
            from,
            "To: <sip:100@switch.example>",
            "Call-ID: cc",
            "CSeq: 1 INVITE",
        ];
        h.extend_from_slice(extra);
        req(&msg("INVITE sip:100@switch.example SIP/2.0", &h, ""))
    };
    let r = base(
        &["P-Asserted-Identity: <sip:+15551234567;verstat=TN-Validation-Passed@carrier.example;user=phone>"],
        "From: <sip:+15551234567;verstat=No-TN-Validation@carrier.example;user=phone>;tag=x",
    );
    let c = caller_candidates(&r);
    assert_eq!(c.pai.as_deref(), Some("+15551234567"));
    assert_eq!(c.from_user.as_deref(), Some("+15551234567"));
    assert_eq!(
        (c.pai_verstat, c.from_verstat),
        (Verstat::Passed, Verstat::NoValidation)
    );
    // The tel: entry gives the number, so its verstat is the one that counts.
    let r = base(
        &["P-Asserted-Identity: <sip:+15551234567;verstat=TN-Validation-Passed@c.example;user=phone>, <tel:+15551234567;verstat=TN-Validation-Failed>"],
        "From: <sip:+15551234567@carrier.example;user=phone>;tag=x",
    );
    let c = caller_candidates(&r);
    assert_eq!(
        (c.pai_verstat, c.from_verstat),
        (Verstat::Failed, Verstat::Absent)
    );
    // A header parameter of From is not the URI's (RFC 3261 §20.10).
    let r = base(
        &[],
        "From: <sip:+15551234567@c.example>;verstat=TN-Validation-Passed;tag=x",
    );
    let c = caller_candidates(&r);
    assert_eq!(
        (c.pai_verstat, c.from_verstat),
        (Verstat::Absent, Verstat::Absent)
    );
    let r = base(
        &[],
        "From: <sip:+15551234567@c.example;verstat=TN-Validation-Passed>;tag=x",
    );
    assert_eq!(caller_candidates(&r).from_verstat, Verstat::Passed);
}

#[test]
fn caller_candidates_pai_and_privacy() {
    let base = |extra: &[&str], from: &str| {
        let mut h = vec![
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK9",
            from,
            "To: <sip:100@switch.example>",
            "Call-ID: cc",
            "CSeq: 1 INVITE",
        ];
        h.extend_from_slice(extra);
        req(&msg("INVITE sip:100@switch.example SIP/2.0", &h, ""))
    };
    let r = base(
        &["P-Asserted-Identity: \"Bob\" <sip:+4930111@carrier.example;user=phone>, <tel:+49-30-222>"],
        "From: \"Bob B\" <sip:+4930333@carrier.example;user=phone>;tag=x",
    );
    let c = caller_candidates(&r);
    assert_eq!(c.pai.as_deref(), Some("+4930222"));
    assert_eq!(c.from_user.as_deref(), Some("+4930333"));
    assert_eq!(c.from_display.as_deref(), Some("Bob B"));
    assert!(!c.anonymous);
    let r = base(
        &[
            "P-Asserted-Identity: <sip:+4930111@carrier.example;user=phone>",
            "Privacy: id",
        ],
        "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=y",
    );
    let c = caller_candidates(&r);
    assert_eq!(c.pai.as_deref(), Some("+4930111"));
    assert!(c.anonymous);
    let r = base(&[], "From: <sip:anonymous@carrier.example>;tag=z");
    assert!(caller_candidates(&r).anonymous);
    let r = base(
        &["Privacy: none"],
        "From: <sip:0301234@carrier.example>;tag=z",
    );
    let c = caller_candidates(&r);
    assert!(!c.anonymous);
    assert_eq!(c.pai, None);
    // Request-URI without a user: the called number comes from To.
    let r = req(&msg(
        "INVITE sip:switch.example SIP/2.0",
        &[
            "Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK8",
            "From: <sip:a@b>;tag=1",
            "To: <sip:+4930999@switch.example;user=phone>",
            "Call-ID: nu",
            "CSeq: 1 INVITE",
        ],
        "",
    ));
    assert_eq!(called_number_user(&r).as_deref(), Some("+4930999"));
}

fn status_of(text: &str) -> Outcome {
    outcome(&inspect(text.as_bytes(), &limits()))
}

const H: [&str; 5] = [
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr",
    "From: <sip:a@example.com>;tag=1",
    "To: <sip:b@example.com>",
    "Call-ID: rules",
    "CSeq: 1 INVITE",
];

/// RFC 3261 §20.42/§25.1: one branch per Via, and it is a token. A second branch
/// would leave the transaction to whichever reader looks (found by
/// `mutations_never_panic` comparing the two Via readers).
#[test]
fn via_with_two_branches_or_a_non_token_branch_is_a_400() {
    let with_via = |via: &str| {
        let mut h = H.to_vec();
        h[0] = via;
        status_of(&msg("INVITE sip:b@example.com SIP/2.0", &h, ""))
    };
    let ok = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa;foo=1;foo=2";
    assert_eq!(with_via(ok), Request, "an extension parameter may repeat");
    for bad in [
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa;branch=z9hG4bKb",
        "Via: SIP/2.0/UDP 192.0.2.1;BRANCH=z9hG4bKa;branch=z9hG4bKa",
        "Via: SIP/2.0/UDP 192.0.2.1;rport;rport=5060;branch=z9hG4bKa",
        "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKa[2001:db8::9:1]",
        "Via: SIP/2.0/UDP 192.0.2.1;branch",
    ] {
        assert_eq!(with_via(bad), Reject(400), "{bad}");
    }
}

/// RFC 3261 §18.2.2: a response goes back by the top Via's transport, so a top Via
/// naming one we do not know is refused (400 for a request, dropped for a response);
/// a lower Via is the upstream's business. Lower case is the same transport.
#[test]
fn an_unknown_top_via_transport_is_refused() {
    let with_vias = |vias: &[&str]| {
        let mut h = H.to_vec();
        h.remove(0);
        let mut all: Vec<&str> = vias.to_vec();
        all.extend(h);
        status_of(&msg("INVITE sip:b@example.com SIP/2.0", &all, ""))
    };
    assert_eq!(
        with_vias(&["Via: SIP/2.0/FOO 192.0.2.1;branch=z9hG4bKa"]),
        Reject(400)
    );
    for ok in [
        "Via: SIP/2.0/udp 192.0.2.1;branch=z9hG4bKa",
        "Via: SIP/2.0/TLS-SCTP 192.0.2.1;branch=z9hG4bKa",
        "Via: SIP/2.0/WSS 192.0.2.1;branch=z9hG4bKa",
    ] {
        assert_eq!(with_vias(&[ok]), Request, "{ok}");
    }
    assert_eq!(
        with_vias(&[
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa, SIP/2.0/FOO 192.0.2.2;branch=z9hG4bKb"
        ]),
        Request
    );
    let Inspection::Reject { reason, .. } = inspect(
        msg(
            "INVITE sip:b@example.com SIP/2.0",
            &[&["Via: SIP/2.0/FOO 192.0.2.1;branch=z9hG4bKa"], &H[1..]].concat(),
            "",
        )
        .as_bytes(),
        &limits(),
    ) else {
        panic!("not rejected")
    };
    assert_eq!(reason, "Bad Request - Unsupported Via Transport");
    let response = msg(
        "SIP/2.0 200 OK",
        &[&["Via: SIP/2.0/FOO 192.0.2.1;branch=z9hG4bKa"], &H[1..]].concat(),
        "",
    );
    assert_eq!(status_of(&response), Drop);
}

/// The head the gate hands the core comes from its own parse of each header: every
/// via-parm in order as canonical text, the top one's transport, sent-by, branch and
/// rport, the tags, the first Contact element and every Record-Route element, and is
/// what the core's readers read off the request handed on beside it.
#[test]
fn the_gate_hands_on_the_head_from_its_own_parse() {
    let text = msg(
        "INVITE sip:b@example.com SIP/2.0",
        &[
            "v: SIP / 2.0 / udp  [2001:db8::1] : 5062 ; rport ; branch = z9hG4bKh1",
            "Via: SIP/2.0/TCP p1.example.com;branch=z9hG4bKp1, SIP/2.0/UDP p2.example.com",
            "f: \"A\" <sip:a@example.com> ; tag = 7",
            "t: <sip:b@example.com>",
            "i: head-1",
            "CSeq: 0042  INVITE",
            "m: <sip:a@192.0.2.7:5070>;expires=60, <sip:a2@192.0.2.8>",
            "Contact: <sip:later@192.0.2.9>",
            "Record-Route: <sip:r1.example.com;lr>, <sip:r2.example.com;lr>",
            "Record-Route: <sip:r3.example.com;lr>",
        ],
        "",
    );
    let Inspection::Request(accepted) = inspect(text.as_bytes(), &limits()) else {
        panic!("not accepted")
    };
    let head = &accepted.head;
    assert_eq!(head.method, Method::Invite);
    assert_eq!(
        head.vias,
        [
            "SIP/2.0/udp [2001:db8::1]:5062;rport;branch=z9hG4bKh1",
            "SIP/2.0/TCP p1.example.com;branch=z9hG4bKp1",
            "SIP/2.0/UDP p2.example.com",
        ]
    );
    assert_eq!(head.top_via.transport, "UDP");
    assert_eq!(head.top_via.sent_by, "[2001:db8::1]:5062");
    assert_eq!(head.top_via.branch.as_deref(), Some("z9hG4bKh1"));
    assert!(head.top_via.rport);
    assert_eq!(head.from, "\"A\" <sip:a@example.com>;tag=7");
    assert_eq!(head.from_tag.as_deref(), Some("7"));
    assert_eq!(head.to, "<sip:b@example.com>");
    assert_eq!(head.to_tag, None);
    assert_eq!(head.call_id, "head-1");
    assert_eq!((head.cseq, head.cseq_method.as_str()), (42, "INVITE"));
    assert_eq!(
        head.contact.as_deref(),
        Some("<sip:a@192.0.2.7:5070>;expires=60")
    );
    assert_eq!(
        head.record_route,
        [
            "<sip:r1.example.com;lr>",
            "<sip:r2.example.com;lr>",
            "<sip:r3.example.com;lr>",
        ]
    );
    readers_agree(&accepted).unwrap();
    // A REGISTER's `*` Contact is the head's Contact as written.
    let mut h = H.to_vec();
    h[4] = "CSeq: 1 REGISTER";
    h.push("Contact: *");
    h.push("Expires: 0");
    let Inspection::Request(register) = inspect(
        msg("REGISTER sip:example.com SIP/2.0", &h, "").as_bytes(),
        &limits(),
    ) else {
        panic!("REGISTER not accepted")
    };
    assert_eq!(register.head.contact.as_deref(), Some("*"));
    readers_agree(&register).unwrap();
}

/// RFC 3261 §25.1: `tag-param = "tag" EQUAL token`, once.
#[test]
fn from_or_to_with_a_bare_or_second_tag_is_a_400() {
    let with = |from: &str, to: &str| {
        let mut h = H.to_vec();
        h[1] = from;
        h[2] = to;
        status_of(&msg("INVITE sip:b@example.com SIP/2.0", &h, ""))
    };
    let to = "To: <sip:b@example.com>";
    assert_eq!(with("From: <sip:a@example.com>;TAG=x1", to), Request);
    assert_eq!(with("From: sip:a@example.com;tag=x1", to), Request);
    for (from, to) in [
        ("From: sip:a@example.com;tag;x1", to),
        ("From: <sip:a@example.com>;tag=1;tag=2", to),
        ("From: <sip:a@example.com>;tag=\"q\"", to),
        (
            "From: <sip:a@example.com>;tag=1",
            "To: <sip:b@example.com>;tag",
        ),
    ] {
        assert_eq!(with(from, to), Reject(400), "{from} / {to}");
    }
}

/// A Call-ID is one run of visible characters; a stray CR or other control is a 400
/// (found by the reader cross-check: the core trimmed it, the gate kept it).
#[test]
fn call_id_with_a_control_character_is_a_400() {
    let with = |call_id: &str| {
        let mut h = H.to_vec();
        h[3] = call_id;
        status_of(&msg("INVITE sip:b@example.com SIP/2.0", &h, ""))
    };
    assert_eq!(
        with("Call-ID: a{b}<c>@[::1]"),
        Request,
        "outside `word` but visible"
    );
    for bad in [
        "Call-ID: \rab@host",
        "Call-ID: ab\r@host",
        "Call-ID: a\x01b",
    ] {
        assert_eq!(with(bad), Reject(400), "{bad:?}");
    }
}

/// Issue 9: `Contact: *` in an INVITE was accepted and later became the BYE's
/// Request-URI. It is only for a REGISTER (§10.2.2); elsewhere a 400.
#[test]
fn contact_star_outside_register_is_a_400() {
    let with = |start: &str, method: &str| {
        let mut h = H.to_vec();
        let cseq = format!("CSeq: 1 {method}");
        h[4] = &cseq;
        h.push("Contact: *");
        status_of(&msg(start, &h, ""))
    };
    assert_eq!(
        with("INVITE sip:b@example.com SIP/2.0", "INVITE"),
        Reject(400)
    );
    assert_eq!(
        with("OPTIONS sip:b@example.com SIP/2.0", "OPTIONS"),
        Reject(400)
    );
    assert_eq!(
        with("REGISTER sip:example.com SIP/2.0", "REGISTER"),
        Request
    );
}

/// Issue 9: quoted header parameters with `<` and `>` in them (RFC 5626's
/// `+sip.instance`, RFC 5627's `pub-gruu`) and display names holding `<`,
/// `>`, `;` and `\"` pass the gate, and the core reads the right URI.
#[test]
fn contacts_with_quoted_brackets_are_read_right() {
    for contact in [
        r#"<sip:127.0.0.1:40326;transport=udp>;+sip.instance="<urn:uuid:d5f18820-4b8e-4a2c-9a6a-1b2c3d4e5f60>""#,
        r#"<sip:callee@192.0.2.1>;pub-gruu="sip:callee@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>""#,
        r#""A <b> \"c;d\"" <sip:127.0.0.1:40326;transport=udp>;reg-id=1"#,
    ] {
        let mut h = H.to_vec();
        let line = format!("Contact: {contact}");
        h.push(&line);
        let text = msg("INVITE sip:b@example.com SIP/2.0", &h, "");
        let Inspection::Request(r) = inspect(text.as_bytes(), &limits()) else {
            panic!("not accepted: {contact}");
        };
        readers_agree(&r).unwrap();
        let head = &r.head;
        let uri = crate::sip::message::header_uri(head.contact.as_deref().unwrap());
        assert!(
            uri == "sip:127.0.0.1:40326;transport=udp" || uri == "sip:callee@192.0.2.1",
            "{uri}"
        );
    }
}

#[test]
fn request_rules() {
    let inv = |extra: &[&str], body: &str| {
        let mut h = H.to_vec();
        h.extend_from_slice(extra);
        status_of(&msg("INVITE sip:b@example.com SIP/2.0", &h, body))
    };
    assert_eq!(inv(&["Max-Forwards: 0"], ""), Reject(483));
    assert_eq!(inv(&["Max-Forwards: 300"], ""), Request); // treated as absent
    assert_eq!(inv(&["Max-Forwards: x"], ""), Reject(400));
    assert_eq!(inv(&["Require: timer"], ""), Request);
    assert_eq!(inv(&["Require: 100rel"], ""), Reject(420));
    assert_eq!(inv(&["Content-Type: application/sdp"], SDP), Request);
    assert_eq!(inv(&["Content-Type: text/plain"], "hi"), Reject(415));
    assert_eq!(inv(&[], "hi"), Reject(400)); // body without Content-Type
    assert_eq!(
        inv(
            &["Content-Type: application/sdp", "Content-Encoding: gzip"],
            SDP
        ),
        Reject(415)
    );
    assert_eq!(
        inv(&["Accept: application/sdp, application/isup"], ""),
        Request
    );
    assert_eq!(inv(&["Accept: text/html"], ""), Reject(406));
    let mp = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\nxx\r\n--b1--\r\n"
    );
    let r = req(&msg(
        "INVITE sip:b@example.com SIP/2.0",
        &[
            H[0],
            H[1],
            H[2],
            H[3],
            H[4],
            "Content-Type: multipart/mixed;boundary=b1",
        ],
        &mp,
    ));
    assert_eq!(sdp_body(&r), Some(SDP.as_bytes()));
    // Method names are case-sensitive (RFC 3261 §7.1): `invite` is an unknown method.
    let lower = msg(
        "invite sip:b@example.com SIP/2.0",
        &[H[0], H[1], H[2], H[3], "CSeq: 1 invite"],
        "",
    );
    assert_eq!(status_of(&lower), Reject(501));
    // CSeq numbers must stay below 2**31.
    let big = msg(
        "INVITE sip:b@example.com SIP/2.0",
        &[H[0], H[1], H[2], H[3], "CSeq: 2147483648 INVITE"],
        "",
    );
    assert_eq!(status_of(&big), Reject(400));
    // ACK is never answered.
    let ack = msg(
        "ACK sip:b@example.com SIP/2.0",
        &[H[0], H[1], H[2], H[3], "CSeq: 1 INVITE"],
        "",
    );
    assert_eq!(status_of(&ack), Drop);
    let ack_mf0 = msg(
        "ACK sip:b@example.com SIP/2.0",
        &[H[0], H[1], H[2], H[3], "CSeq: 1 ACK", "Max-Forwards: 0"],
        "",
    );
    assert_eq!(status_of(&ack_mf0), Drop);
    // CANCEL ignores Require (RFC 3261 §8.2.2.3).
    let cancel = msg(
        "CANCEL sip:b@example.com SIP/2.0",
        &[H[0], H[1], H[2], H[3], "CSeq: 1 CANCEL", "Require: foo"],
        "",
    );
    assert_eq!(status_of(&cancel), Request);
    // Content-Length smaller than the body: the rest is ignored.
    let mut short = msg(
        "OPTIONS sip:b@example.com SIP/2.0",
        &[H[0], H[1], H[2], H[3], "CSeq: 1 OPTIONS"],
        "",
    );
    short.push_str("garbage");
    assert_eq!(status_of(&short), Request);
    // No Via: nobody to answer.
    let novia = msg(
        "INVITE sip:b@example.com SIP/2.0",
        &[H[1], H[2], H[3], H[4]],
        "",
    );
    assert_eq!(status_of(&novia), Drop);
}

#[test]
fn keepalive_garbage_and_size() {
    assert_eq!(
        inspect(b"\r\n\r\n", &limits()),
        Inspection::Drop {
            why: "keep-alive".into()
        }
    );
    assert_eq!(status_of("\r\n"), Drop);
    assert_eq!(status_of(""), Drop);
    assert_eq!(status_of("hello world\r\n\r\n"), Drop);
    assert_eq!(
        status_of("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"),
        Drop
    );
    let small = Limits {
        max_message_bytes: 100,
        ..Limits::default()
    };
    let text = msg(
        "OPTIONS sip:b@example.com SIP/2.0",
        &[H[0], H[1], H[2], H[3], "CSeq: 1 OPTIONS"],
        "",
    );
    assert_eq!(outcome(&inspect(text.as_bytes(), &small)), Reject(513));
    // Leading CRLFs before the start line are ignored (RFC 3261 §7.5).
    assert_eq!(status_of(&format!("\r\n\r\n{text}")), Request);
}

#[test]
fn responses() {
    let ok = msg(
        "SIP/2.0 200 OK",
        &[H[0], H[1], "To: <sip:b@example.com>;tag=9", H[3], H[4]],
        "",
    );
    assert_eq!(status_of(&ok), Response);
    let custom = msg(
        "SIP/2.0 403 Caller Not Allowed",
        &[H[0], H[1], H[2], H[3], H[4]],
        "",
    );
    match inspect(custom.as_bytes(), &limits()) {
        Inspection::Response(r) => {
            assert_eq!(r.status_code.code(), 403);
            assert_eq!(r.wire_reason.as_deref(), Some("Caller Not Allowed"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status_of(&ok.replace("200 OK", "2000 OK")), Drop);
    assert_eq!(status_of(&ok.replace("SIP/2.0 200", "SIP/3.0 200")), Drop);
    assert_eq!(
        status_of(&ok.replace("Content-Length: 0", "Content-Length: 5")),
        Drop
    );
    assert_eq!(status_of(&ok.replace("Call-ID: rules\r\n", "")), Drop);
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutations_never_panic() {
    let mut seeds: Vec<Vec<u8>> = vec![
        msg(
            "INVITE sip:b@example.com SIP/2.0",
            &[
                H[0],
                H[1],
                H[2],
                H[3],
                H[4],
                "Content-Type: application/sdp",
            ],
            SDP,
        )
        .into_bytes(),
        msg("SIP/2.0 200 OK", &[H[0], H[1], H[2], H[3], H[4]], "").into_bytes(),
    ];
    let dir = corpora();
    for (name, _) in TABLE {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            seeds.push(b);
        }
    }
    let specials = b":;,<>\"\\\r\n @[]%=/\t\x00\xff";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut counts = [0usize; 4];
    for i in 0..4000 {
        let mut m = seeds[i % seeds.len()].clone();
        for _ in 0..=rng.below(4) {
            let len = m.len();
            match rng.below(6) {
                0 => m.truncate(rng.below(len + 1)),
                1 if len > 0 => {
                    let p = rng.below(len);
                    m[p] = specials[rng.below(specials.len())];
                }
                2 => {
                    let p = rng.below(len + 1);
                    m.insert(p, specials[rng.below(specials.len())]);
                }
                3 if len > 0 => {
                    let a = rng.below(len);
                    let b = (a + rng.below(40)).min(len);
                    m.drain(a..b);
                }
                4 if len > 0 => {
                    let a = rng.below(len);
                    let b = (a + rng.below(60)).min(len);
                    let chunk = m[a..b].to_vec();
                    let p = rng.below(len + 1);
                    m.splice(p..p, chunk);
                }
                _ if len > 0 => {
                    let p = rng.below(len);
                    m[p] = (rng.next() & 0xff) as u8;
                }
                _ => {}
            }
        }
        let got = inspect(&m, &limits());
        counts[match outcome(&got) {
            Request => 0,
            Response => 1,
            Reject(_) => 2,
            Drop => 3,
        }] += 1;
        if let Inspection::Request(accepted) = &got {
            if let Err(e) = readers_agree(accepted) {
                panic!("{e}\n{}", String::from_utf8_lossy(&m));
            }
            let r = &accepted.req;
            let _ = (called_number_user(r), caller_candidates(r), sdp_body(r));
            let again = inspect(&r.to_bytes(), &limits());
            assert!(
                matches!(again, Inspection::Request(_)),
                "re-serialised request rejected: {again:?}\n{}",
                String::from_utf8_lossy(&r.to_bytes())
            );
        }
        if let Inspection::Reject { response, .. } = &got {
            let _ = inspect(response, &limits());
        }
    }
    // The mutations reach every outcome, so the loop really exercises the gate.
    assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
}

#[test]
fn collapse_lws_keeps_single_spaces_and_collapses_runs_outside_quotes() {
    use super::grammar::collapse_lws;
    // Nothing to collapse: the value as it is, trimmed.
    assert_eq!(collapse_lws("  INVITE, ACK, BYE\t"), "INVITE, ACK, BYE");
    assert_eq!(
        collapse_lws("\"J Smith\" <sip:a@b>"),
        "\"J Smith\" <sip:a@b>"
    );
    // Runs of SP and HTAB become one SP outside quotes, and stay inside them.
    assert_eq!(collapse_lws("a  b\tc \t d"), "a b c d");
    assert_eq!(collapse_lws("\"x  y\"  z"), "\"x  y\" z");
    assert_eq!(collapse_lws("\"x\ty\" z"), "\"x\ty\" z");
    assert_eq!(collapse_lws("\"a\\\"  b\"  c"), "\"a\\\"  b\" c");
    assert_eq!(collapse_lws(" \t "), "");
}

/// Every method rsipstack can represent is read by its exact name, and only by
/// it: method names are case-sensitive (RFC 3261 §7.1).
#[test]
fn method_names_are_read_exactly() {
    for m in Method::all() {
        let name = m.to_string();
        assert_eq!(method_of(&name), Some(m), "{name}");
        assert_eq!(method_of(&name.to_ascii_lowercase()), None, "{name}");
        assert_eq!(method_of(&format!("{name} ")), None, "{name}");
    }
    assert_eq!(method_of("FOO"), None);
    assert_eq!(method_of(""), None);
}
