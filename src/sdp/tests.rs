use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

const OURS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

fn crlf(s: &str) -> Vec<u8> {
    s.lines()
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        .into_bytes()
}

fn local() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 20000)
}

/// Re-parse our output with the `sdp` crate, so the tests check what a peer would read.
fn reparse(body: &[u8]) -> SessionDescription {
    SessionDescription::unmarshal(&mut Cursor::new(body)).expect("our own SDP must parse")
}

/// What we write, the `sdp` crate reads and prints back byte for byte: our writer
/// follows the crate's own line order and spelling (it wrote our SDP until issue 15).
fn assert_crate_prints_it_back(body: &[u8]) {
    let text = String::from_utf8(body.to_vec()).expect("our SDP is UTF-8");
    assert_eq!(reparse(body).marshal(), text);
}

fn corpora() -> PathBuf {
    let dir = std::env::var_os("TPSWITCH_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpora")));
    assert!(
        dir.is_dir(),
        "test corpora not found at {}: they ship in tests/corpora/ (or set TPSWITCH_CORPORA to \
         a folder holding rfc4475/ and rfc5118/; tests/corpora/README.md says how to rebuild them)",
        dir.display()
    );
    dir
}

/// The body of a SIP message from the corpora (everything after the blank line).
fn corpus_body(rel: &str) -> Vec<u8> {
    let path = corpora().join(rel);
    let msg = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let at = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("blank line")
        + 4;
    msg[at..].to_vec()
}

// SIPp's built-in uac scenario offer.
const SIPP: &str = "v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000";

#[test]
fn sipp_default_offer() {
    let offer = parse_offer(&crlf(SIPP), SrtpPolicy::Off).unwrap();
    assert_eq!(offer.addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(offer.port, 6000);
    assert_eq!(offer.codecs, vec![(Codec::Pcmu, 0)]);
    assert_eq!(offer.telephone_event_pt, None);
    assert_eq!(offer.direction, Direction::SendRecv);
    assert!(!offer.hold);
    assert_eq!(
        (offer.session_id, offer.session_version),
        (53655765, 2353687637)
    );
    let neg = negotiate(&offer, &OURS).unwrap();
    assert_eq!((neg.stream.codec, neg.stream.pt), (Codec::Pcmu, 0));
    assert_eq!(neg.stream.remote, "127.0.0.1:6000".parse().unwrap());
    assert!(neg.stream.may_send() && neg.stream.may_receive());
}

#[test]
fn static_payload_types_need_no_rtpmap() {
    let body = crlf(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 8 0",
    );
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert_eq!(offer.codecs, vec![(Codec::Pcma, 8), (Codec::Pcmu, 0)]);
}

#[test]
fn answer_text_is_exact() {
    let neg = negotiate(&parse_offer(&crlf(SIPP), SrtpPolicy::Off).unwrap(), &OURS).unwrap();
    let answer = String::from_utf8(build_answer(&neg, local(), 42, 7)).unwrap();
    assert_eq!(
        answer,
        "v=0\r\no=tpswitch 42 7 IN IP4 10.0.0.5\r\ns=tpswitch\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
         m=audio 20000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    );
}

// Linphone-style: opus, speex, G.729 and three telephone-event rates. Only the 8 kHz one
// matches G.711, and it is *not* 101.
const LINPHONE: &str = "v=0
o=alice 3456 3456 IN IP4 192.168.1.20
s=Talk
c=IN IP4 192.168.1.20
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000";

#[test]
fn linphone_multi_codec_takes_dtmf_pt_from_rtpmap() {
    let offer = parse_offer(&crlf(LINPHONE), SrtpPolicy::Off).unwrap();
    assert_eq!(offer.codecs, vec![(Codec::Pcmu, 0), (Codec::Pcma, 8)]);
    assert_eq!(offer.telephone_event_pt, Some(100));
    let neg = negotiate(&offer, &[Codec::Pcma, Codec::Pcmu]).unwrap();
    // Caller's preference wins over ours.
    assert_eq!(neg.stream.codec, Codec::Pcmu);
    let ans = reparse(&build_answer(&neg, local(), 1, 1));
    let m = &ans.media_descriptions[0];
    assert_eq!(m.media_name.formats, vec!["0", "100"]);
    assert_eq!(m.attribute("fmtp"), Some(Some("100 0-16")));
}

#[test]
fn telephone_event_on_96_and_101() {
    let body = crlf(
        "v=0\no=- 9 9 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n\
         m=audio 5000 RTP/AVP 0 96 101\na=rtpmap:0 PCMU/8000\n\
         a=rtpmap:96 telephone-event/8000\na=fmtp:96 0-15\na=rtpmap:101 telephone-event/8000",
    );
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    // The first one listed in m= wins.
    assert_eq!(offer.telephone_event_pt, Some(96));
}

#[test]
fn pcma_first_offer_is_answered_with_pcma() {
    let body = crlf(
        "v=0\no=- 5 5 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\n\
         m=audio 30000 RTP/AVP 8 0 101\na=rtpmap:8 pcma/8000\na=rtpmap:0 pcmu/8000\n\
         a=rtpmap:101 Telephone-Event/8000\na=fmtp:101 0-16\na=ptime:30",
    );
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert_eq!(offer.ptime, Some(30));
    let neg = negotiate(&offer, &OURS).unwrap();
    assert_eq!(
        (
            neg.stream.codec,
            neg.stream.pt,
            neg.stream.telephone_event_pt
        ),
        (Codec::Pcma, 8, Some(101))
    );
    let ans = reparse(&build_answer(&neg, local(), 1, 1));
    assert_eq!(
        ans.media_descriptions[0].media_name.formats,
        vec!["8", "101"]
    );
    assert_eq!(
        ans.media_descriptions[0].attribute("ptime"),
        Some(Some("20"))
    );
}

#[test]
fn dynamic_pt_for_pcmu_is_kept_in_answer() {
    let body = crlf("v=0\no=- 5 5 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 112\na=rtpmap:112 PCMU/8000/1");
    let neg = negotiate(&parse_offer(&body, SrtpPolicy::Off).unwrap(), &OURS).unwrap();
    assert_eq!((neg.stream.codec, neg.stream.pt), (Codec::Pcmu, 112));
    let ans = reparse(&build_answer(&neg, local(), 1, 1));
    assert_eq!(
        ans.media_descriptions[0].attribute("rtpmap"),
        Some(Some("112 PCMU/8000"))
    );
}

#[test]
fn wideband_pcmu_rtpmap_is_not_g711() {
    let body = crlf("v=0\no=- 5 5 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/16000");
    assert!(parse_offer(&body, SrtpPolicy::Off)
        .unwrap()
        .codecs
        .is_empty());
}

#[test]
fn ipv6_connection_and_ipv6_answer() {
    let body = crlf(
        "v=0\no=- 5 5 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\nm=audio 4000 RTP/AVP 0",
    );
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert_eq!(offer.addr, "2001:db8::1".parse::<IpAddr>().unwrap());
    let neg = negotiate(&offer, &OURS).unwrap();
    let local6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 4002);
    let text = String::from_utf8(build_answer(&neg, local6, 3, 4)).unwrap();
    assert!(text.contains("o=tpswitch 3 4 IN IP6 ::1\r\n"), "{text}");
    assert!(text.contains("c=IN IP6 ::1\r\n"), "{text}");
}

#[test]
fn media_level_c_overrides_session_level() {
    let body = crlf(
        "v=0\no=- 5 5 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=audio 4000 RTP/AVP 0\nc=IN IP4 192.0.2.99",
    );
    assert_eq!(
        parse_offer(&body, SrtpPolicy::Off).unwrap().addr,
        "192.0.2.99".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn session_level_c_only() {
    let offer = parse_offer(&crlf(SIPP), SrtpPolicy::Off).unwrap();
    assert_eq!(offer.addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn missing_c_everywhere_is_malformed() {
    let body = crlf("v=0\no=- 5 5 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0");
    let err = parse_offer(&body, SrtpPolicy::Off).unwrap_err();
    assert!(matches!(err, SdpError::Malformed(_)), "{err}");
    assert_eq!(err.status_code(), 400);
}

#[test]
fn video_before_audio_is_rejected_in_place() {
    let body = crlf(
        "v=0\no=- 5 5 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=video 5002 RTP/AVP 96\na=rtpmap:96 H264/90000\n\
         m=audio 5000 RTP/AVP 0 8\n\
         m=audio 5004 RTP/AVP 8",
    );
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert_eq!((offer.audio_index, offer.port), (1, 5000));
    let ans = reparse(&build_answer(
        &negotiate(&offer, &OURS).unwrap(),
        local(),
        1,
        1,
    ));
    let ports: Vec<(String, isize)> = ans
        .media_descriptions
        .iter()
        .map(|m| (m.media_name.media.clone(), m.media_name.port.value))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("video".into(), 0),
            ("audio".into(), 20000),
            ("audio".into(), 0)
        ]
    );
    assert_eq!(ans.media_descriptions[0].media_name.formats, vec!["96"]);
}

#[test]
fn disabled_audio_line_is_skipped() {
    let body = crlf(
        "v=0\no=- 5 5 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=audio 0 RTP/AVP 0\nm=audio 6000 RTP/AVP 8",
    );
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert_eq!(
        (offer.audio_index, offer.codecs.clone()),
        (1, vec![(Codec::Pcma, 8)])
    );
}

#[test]
fn sendonly_is_hold_and_answered_recvonly() {
    let body = crlf(
        "v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=sendrecv\n\
         m=audio 4000 RTP/AVP 0\na=sendonly",
    );
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert_eq!(offer.direction, Direction::SendOnly);
    assert!(offer.hold);
    let neg = negotiate(&offer, &OURS).unwrap();
    assert_eq!(neg.stream.direction, Direction::RecvOnly);
    assert!(!neg.stream.may_send() && neg.stream.may_receive());
    let ans = reparse(&build_answer(&neg, local(), 1, 2));
    assert!(ans.media_descriptions[0].has_attribute("recvonly"));
}

#[test]
fn session_level_direction_applies_without_media_level() {
    let body = crlf("v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=inactive\na=ptime:40\nm=audio 4000 RTP/AVP 0");
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert_eq!(
        (offer.direction, offer.hold, offer.ptime),
        (Direction::Inactive, true, Some(40))
    );
    assert_eq!(
        negotiate(&offer, &OURS).unwrap().stream.direction,
        Direction::Inactive
    );
}

#[test]
fn recvonly_offer_is_answered_sendonly() {
    let body = crlf("v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=recvonly");
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert!(!offer.hold);
    assert_eq!(
        negotiate(&offer, &OURS).unwrap().stream.direction,
        Direction::SendOnly
    );
}

#[test]
fn zero_address_is_legacy_hold() {
    let body =
        crlf("v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0");
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert!(offer.hold);
    assert_eq!(offer.direction, Direction::SendRecv);
    let neg = negotiate(&offer, &OURS).unwrap();
    assert!(!neg.stream.may_send(), "never send RTP to 0.0.0.0");
    assert!(neg.stream.may_receive());
}

#[test]
fn garbage_is_malformed() {
    let cases: [&[u8]; 9] = [
        b"",
        b"   \r\n",
        b"hello world",
        b"\xff\xfe\x00garbage",
        b"v=0\r\n",
        b"v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
        b"v=0\r\no=- 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio abc RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
    ];
    for body in cases {
        let err = parse_offer(body, SrtpPolicy::Off).unwrap_err();
        assert!(matches!(err, SdpError::Malformed(_)), "{body:?}: {err:?}");
        assert_eq!(err.status_code(), 400);
    }
}

#[test]
fn address_family_mismatch_is_malformed() {
    let body = crlf(
        "v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 2001:db8::1\nt=0 0\nm=audio 4000 RTP/AVP 0",
    );
    assert!(matches!(
        parse_offer(&body, SrtpPolicy::Off),
        Err(SdpError::Malformed(_))
    ));
}

#[test]
fn domain_name_and_multicast_are_unsupported() {
    for c in ["c=IN IP4 host.example.com", "c=IN IP4 224.2.1.1/127"] {
        let body = crlf(&format!(
            "v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\n{c}\nt=0 0\nm=audio 4000 RTP/AVP 0"
        ));
        let err = parse_offer(&body, SrtpPolicy::Off).unwrap_err();
        assert!(matches!(err, SdpError::Unsupported(_)), "{c}: {err:?}");
        assert_eq!(err.status_code(), 488);
    }
}

#[test]
fn only_g729_is_no_common_codec() {
    let body = crlf("v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 18 101\na=rtpmap:18 G729/8000\na=rtpmap:101 telephone-event/8000");
    let offer = parse_offer(&body, SrtpPolicy::Off).unwrap();
    assert!(offer.codecs.is_empty());
    let err = negotiate(&offer, &OURS).unwrap_err();
    assert!(matches!(err, SdpError::NoCommonCodec(_)));
    assert_eq!(err.status_code(), 488);
    assert!(err.to_string().contains("[18 101]"), "{err}");
}

#[test]
fn our_codec_list_restricts_choice() {
    let offer = parse_offer(&crlf(SIPP), SrtpPolicy::Off).unwrap();
    assert!(matches!(
        negotiate(&offer, &[Codec::Pcma]),
        Err(SdpError::NoCommonCodec(_))
    ));
    assert!(matches!(
        negotiate(&offer, &[]),
        Err(SdpError::NoCommonCodec(_))
    ));
}

#[test]
fn srtp_only_or_no_audio_is_488() {
    let srtp = crlf(
        "v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/SAVP 0",
    );
    let video = crlf(
        "v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=video 4000 RTP/AVP 31",
    );
    let none = crlf("v=0\no=- 5 6 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0");
    for body in [srtp, video, none] {
        let err = parse_offer(&body, SrtpPolicy::Off).unwrap_err();
        assert!(matches!(err, SdpError::NoAudio(_)), "{err:?}");
        assert_eq!(err.status_code(), 488);
    }
}

#[test]
fn lf_only_line_endings_are_accepted() {
    let offer = parse_offer(SIPP.as_bytes(), SrtpPolicy::Off).unwrap();
    assert_eq!(offer.port, 6000);
}

#[test]
fn offer_round_trips_and_answer_is_parsed() {
    let offer = build_offer(
        local(),
        &[Codec::Pcma, Codec::Pcmu, Codec::Pcma],
        101,
        77,
        1,
        Direction::SendRecv,
        &OfferCrypto::None,
    );
    let text = String::from_utf8(offer.clone()).unwrap();
    assert!(text.contains("m=audio 20000 RTP/AVP 8 0 101\r\n"), "{text}");
    assert!(
        text.contains("a=fmtp:101 0-16\r\n") && text.contains("t=0 0\r\n"),
        "{text}"
    );
    let back = parse_offer(&offer, SrtpPolicy::Off).unwrap();
    assert_eq!(back.codecs, vec![(Codec::Pcma, 8), (Codec::Pcmu, 0)]);
    assert_eq!(
        (back.telephone_event_pt, back.ptime, back.session_id),
        (Some(101), Some(20), 77)
    );

    // The agent's phone answers PCMU with its own telephone-event number.
    let answer = crlf("v=0\no=phone 1 1 IN IP4 192.0.2.50\ns=-\nc=IN IP4 192.0.2.50\nt=0 0\nm=audio 8000 RTP/AVP 0 96\na=rtpmap:96 telephone-event/8000\na=sendrecv");
    let neg = parse_answer(&answer, &[Codec::Pcma, Codec::Pcmu], SrtpPolicy::Off, b"").unwrap();
    assert_eq!(
        (
            neg.stream.codec,
            neg.stream.pt,
            neg.stream.telephone_event_pt
        ),
        (Codec::Pcmu, 0, Some(96))
    );
    assert_eq!(neg.stream.remote, "192.0.2.50:8000".parse().unwrap());
    assert_eq!(neg.stream.direction, Direction::SendRecv);
}

#[test]
fn answer_outside_our_offer_or_rejected_fails() {
    let pcma = crlf(
        "v=0\no=p 1 1 IN IP4 192.0.2.50\ns=-\nc=IN IP4 192.0.2.50\nt=0 0\nm=audio 8000 RTP/AVP 8",
    );
    assert!(matches!(
        parse_answer(&pcma, &[Codec::Pcmu], SrtpPolicy::Off, b""),
        Err(SdpError::NoCommonCodec(_))
    ));
    let rejected = crlf(
        "v=0\no=p 1 1 IN IP4 192.0.2.50\ns=-\nc=IN IP4 192.0.2.50\nt=0 0\nm=audio 0 RTP/AVP 0",
    );
    assert!(matches!(
        parse_answer(&rejected, &OURS, SrtpPolicy::Off, b""),
        Err(SdpError::NoAudio(_))
    ));
}

/// RFC 4475 "sdp01" (Unacceptable Accept Offering): Accept lists only
/// text/nobodyKnowsThis, so no SDP answer may be sent and the RFC expects 406, not 415 or
/// 488. That decision needs the Accept header and belongs to the caller; the SDP itself is
/// fine (PCMU plus a video stream): it parses and video would be refused in place.
#[test]
fn rfc4475_sdp01_body() {
    let offer = parse_offer(&corpus_body("rfc4475/sdp01.dat"), SrtpPolicy::Off).unwrap();
    assert_eq!(offer.addr, "192.0.2.5".parse::<IpAddr>().unwrap());
    assert_eq!(
        (offer.port, offer.codecs.clone()),
        (49217, vec![(Codec::Pcmu, 0)])
    );
    let ans = reparse(&build_answer(
        &negotiate(&offer, &OURS).unwrap(),
        local(),
        1,
        1,
    ));
    assert_eq!(ans.media_descriptions.len(), 2);
    assert_eq!(ans.media_descriptions[1].media_name.port.value, 0);
    assert_eq!(ans.media_descriptions[1].media_name.media, "video");
}

/// RFC 5118 §4.5: IPv6 in SDP. Audio is G.726-32 only, so we must answer 488.
#[test]
fn rfc5118_ipv6_in_sdp() {
    let offer = parse_offer(&corpus_body("rfc5118/ipv6-in-sdp"), SrtpPolicy::Off).unwrap();
    assert_eq!(offer.addr, "2001:db8::20".parse::<IpAddr>().unwrap());
    assert_eq!(offer.port, 6000);
    assert!(offer.codecs.is_empty());
    assert_eq!(negotiate(&offer, &OURS).unwrap_err().status_code(), 488);
}

/// RFC 5118 §4.6: IPv4 audio and IPv6 video, c= at media level only.
#[test]
fn rfc5118_mult_ip_in_sdp() {
    let offer = parse_offer(&corpus_body("rfc5118/mult-ip-in-sdp"), SrtpPolicy::Off).unwrap();
    assert_eq!(offer.addr, "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!((offer.port, offer.media_lines.len()), (22334, 2));
}

/// Random byte edits of a valid offer must give Ok or Err, never a panic.
#[test]
fn mutated_offers_never_panic() {
    let base = crlf(LINPHONE);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"=:/ \r\n0189aAmcv-.";
    for _ in 0..3000 {
        let mut body = base.clone();
        for _ in 0..(next() % 6 + 1) {
            let at = (next() as usize) % body.len();
            match next() % 3 {
                0 => body[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    body.remove(at);
                }
                _ => body.truncate(at),
            }
            if body.is_empty() {
                break;
            }
        }
        if let Ok(offer) = parse_offer(&body, SrtpPolicy::Off) {
            if let Ok(neg) = negotiate(&offer, &OURS) {
                assert_crate_prints_it_back(&build_answer(&neg, local(), 1, 1));
            }
        }
    }
}

/// Issue 15: answers and offers are written without the crate's builder; every
/// shape we send must still be exactly what the crate would have printed.
#[test]
fn the_sdp_we_write_is_what_the_crate_prints() {
    let local6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 4002);
    let offers = [
        crlf(SIPP),
        crlf(LINPHONE),
        corpus_body("rfc4475/sdp01.dat"),
        corpus_body("rfc5118/mult-ip-in-sdp"),
        crlf("v=0\no=- 5 5 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\nm=video 5000 RTP/AVP 31\nm=audio 4000 RTP/AVP 8 96\na=rtpmap:96 telephone-event/8000\na=sendonly"),
    ];
    let mut answers = 0;
    for body in &offers {
        let Ok(neg) = negotiate(&parse_offer(body, SrtpPolicy::Off).unwrap(), &OURS) else {
            continue;
        };
        for at in [local(), local6] {
            for (sid, version) in [(0, 0), (1, 1), (u64::MAX, 4_294_967_296)] {
                assert_crate_prints_it_back(&build_answer(&neg, at, sid, version));
                answers += 1;
            }
        }
    }
    assert_eq!(answers, 5 * 2 * 3, "every offer above is answerable");
    // An SRTP answer: our key on the tag we accepted (RFC 4568 §7.1.2).
    let savp = crlf("v=0\no=- 1 1 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\nm=audio 4000 RTP/SAVP 0 101\na=rtpmap:101 telephone-event/8000\na=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR");
    let neg = negotiate(&parse_offer(&savp, SrtpPolicy::Required).unwrap(), &OURS).unwrap();
    let body = build_answer(&neg, local(), 1, 1);
    assert!(String::from_utf8_lossy(&body).contains("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:"));
    assert_crate_prints_it_back(&body);
    let key = crate::media::srtp::SrtpKey::random();
    for srtp in [
        OfferCrypto::None,
        OfferCrypto::with_key(SrtpPolicy::Optional, key.clone()),
        OfferCrypto::with_key(SrtpPolicy::Required, key),
    ] {
        for direction in [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::Inactive,
        ] {
            for codecs in [
                &OURS[..],
                &[Codec::Pcma],
                &[Codec::Pcma, Codec::Pcma, Codec::Pcmu],
            ] {
                for at in [local(), local6] {
                    assert_crate_prints_it_back(&build_offer(
                        at, codecs, 101, 9, 10, direction, &srtp,
                    ));
                }
            }
        }
    }
}
