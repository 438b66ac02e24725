//! SDES (RFC 4568) in offer/answer: `a=crypto` lines, good and bad, and the
//! `trunk.srtp` policy matrix for offers we answer and answers we read.

use super::*;
use crate::media::srtp::CryptoSuite;
use std::net::Ipv4Addr;

const OURS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];
/// RFC 4568 §4's example key (30 bytes of key || salt).
const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn sdp(media: &[(&str, &[&str])]) -> Vec<u8> {
    let mut s =
        String::from("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n");
    for (i, (proto, attrs)) in media.iter().enumerate() {
        s += &format!("m=audio {} {proto} 0 101\r\n", 4000 + 2 * i);
        s += "a=rtpmap:101 telephone-event/8000\r\n";
        for a in *attrs {
            s += &format!("a={a}\r\n");
        }
    }
    s.into_bytes()
}

fn crypto80() -> String {
    format!("crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
}

fn local() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20000)
}

fn answer_for(offer: &[u8], policy: SrtpPolicy) -> Result<(Negotiated, Vec<u8>), SdpError> {
    let n = negotiate(&parse_offer(offer, policy)?, &OURS)?;
    let body = build_answer(&n, local(), 1, 1);
    Ok((n, body))
}

fn attrs_of(body: &[u8]) -> (String, Vec<String>) {
    let d = SessionDescription::unmarshal(&mut Cursor::new(body)).unwrap();
    let m = d
        .media_descriptions
        .iter()
        .find(|m| m.media_name.port.value != 0)
        .unwrap();
    let crypto = m
        .attributes
        .iter()
        .filter(|a| a.key == "crypto")
        .map(|a| a.value.clone().unwrap_or_default())
        .collect();
    (m.media_name.protos.join("/"), crypto)
}

#[test]
fn crypto_lines_parse_and_bad_ones_say_why() {
    let c = crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20")).unwrap();
    assert_eq!((c.tag, c.suite), (1, CryptoSuite::AesCm128HmacSha1_80));
    assert_eq!(
        crypto::build(1, c.suite, &c.key),
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}")
    );
    let c = crypto::parse(&format!("123456789 AES_CM_128_HMAC_SHA1_32 inline:{KEY}")).unwrap();
    assert_eq!(
        (c.tag, c.suite),
        (123_456_789, CryptoSuite::AesCm128HmacSha1_32)
    );

    for (line, why) in [
        ("", "empty"),
        ("x AES_CM_128_HMAC_SHA1_80 inline:KEY", "tag"),
        ("1234567890 AES_CM_128_HMAC_SHA1_80 inline:KEY", "tag"),
        ("1", "crypto-suite"),
        (
            "1 AES_256_CM_HMAC_SHA1_80 inline:KEY",
            "AES_256_CM_HMAC_SHA1_80",
        ),
        ("1 F8_128_HMAC_SHA1_80 inline:KEY", "F8_128"),
        ("1 AES_CM_128_HMAC_SHA1_80", "key-params"),
        ("1 AES_CM_128_HMAC_SHA1_80 uri:KEY", "inline"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4", "MKI"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:KEY;inline:KEY", "MKI"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:KEY|forever", "lifetime"),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:KEY UNENCRYPTED_SRTP",
            "UNENCRYPTED_SRTP",
        ),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:KEY KDR=1", "KDR"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64", "base64"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:QUJD", "3 bytes"),
        // Fields out of order: the key lands where a tag, suite or parameter goes.
        ("KEY AES_CM_128_HMAC_SHA1_80", "tag"),
        ("1 inline:KEY", "crypto-suite given"),
        ("1 KEY inline:KEY", "crypto-suite given"),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:KEY inline:KEY",
            "session parameter given",
        ),
    ] {
        let line = line.replace("KEY", KEY);
        let err = crypto::parse(&line).expect_err(&line);
        assert!(err.contains(why), "{line}: {err}");
        assert!(!err.contains(KEY), "the key must not be echoed: {err}");
    }
}

#[test]
fn policy_matrix_for_offers() {
    use SrtpPolicy::*;
    let avp = sdp(&[("RTP/AVP", &[])]);
    let savp = sdp(&[("RTP/SAVP", &[&crypto80()])]);
    let savp_no_keys = sdp(&[("RTP/SAVP", &[])]);
    let avp_keys = sdp(&[("RTP/AVP", &[&crypto80()])]);
    let both = sdp(&[("RTP/SAVP", &[&crypto80()]), ("RTP/AVP", &[])]);
    let savpf = sdp(&[("RTP/SAVPF", &[&crypto80()])]);
    let other_suite = sdp(&[(
        "RTP/SAVP",
        &[&format!(
            "crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}{KEY}"
        )],
    )]);
    // (offer, policy) -> None for 488, else (answered m= line index, SRTP?, answer proto)
    type Want = Option<(usize, bool, &'static str)>;
    let cases: &[(&[u8], SrtpPolicy, Want)] = &[
        (&avp, Off, Some((0, false, "RTP/AVP"))),
        (&avp, Optional, Some((0, false, "RTP/AVP"))),
        (&avp, Required, None),
        (&savp, Off, None),
        (&savp, Optional, Some((0, true, "RTP/SAVP"))),
        (&savp, Required, Some((0, true, "RTP/SAVP"))),
        (&savp_no_keys, Optional, None),
        (&savp_no_keys, Required, None),
        // A best-effort offer: keys on RTP/AVP (RFC 4568 §5.1 lets us ignore them).
        (&avp_keys, Off, Some((0, false, "RTP/AVP"))),
        (&avp_keys, Optional, Some((0, true, "RTP/AVP"))),
        (&avp_keys, Required, Some((0, true, "RTP/AVP"))),
        // SAVP and AVP side by side: off takes the AVP one; the others the first.
        (&both, Off, Some((1, false, "RTP/AVP"))),
        (&both, Optional, Some((0, true, "RTP/SAVP"))),
        (&both, Required, Some((0, true, "RTP/SAVP"))),
        (&savpf, Required, Some((0, true, "RTP/SAVPF"))),
        (&other_suite, Optional, None),
        (&other_suite, Required, None),
    ];
    for (i, (offer, policy, want)) in cases.iter().enumerate() {
        let got = answer_for(offer, *policy);
        match (want, got) {
            (None, Err(e)) => {
                assert_eq!(e.status_code(), 488, "case {i}: {e}");
                assert!(!e.to_string().contains(KEY), "case {i}: key in {e}");
            }
            (Some((index, secure, proto)), Ok((n, body))) => {
                assert_eq!(n.audio_index, *index, "case {i}");
                assert_eq!(n.stream.srtp.is_some(), *secure, "case {i}");
                let (answered_proto, crypto) = attrs_of(&body);
                assert_eq!(answered_proto, *proto, "case {i}");
                assert_eq!(crypto.len(), usize::from(*secure), "case {i}: {crypto:?}");
            }
            (want, got) => panic!("case {i}: wanted {want:?}, got {:?}", got.map(|g| g.0)),
        }
    }
}

#[test]
fn refusals_name_the_reason() {
    let e = answer_for(&sdp(&[("RTP/AVP", &[])]), SrtpPolicy::Required).unwrap_err();
    assert!(e.to_string().contains("required"), "{e}");
    let e = answer_for(&sdp(&[("RTP/SAVP", &[&crypto80()])]), SrtpPolicy::Off).unwrap_err();
    assert!(
        e.to_string().contains("RTP/SAVP") && e.to_string().contains("off"),
        "{e}"
    );
    let bad = format!("crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}");
    let e = answer_for(&sdp(&[("RTP/SAVP", &[&bad])]), SrtpPolicy::Optional).unwrap_err();
    assert!(e.to_string().contains("AES_256_CM_HMAC_SHA1_80"), "{e}");
}

#[test]
fn the_answer_takes_the_first_usable_line_with_a_fresh_key_of_ours() {
    let unknown = format!("crypto:7 AES_256_CM_HMAC_SHA1_80 inline:{KEY}{KEY}");
    let second = format!("crypto:9 AES_CM_128_HMAC_SHA1_32 inline:{KEY}");
    let offer = sdp(&[("RTP/SAVP", &[&unknown, &second, &crypto80()])]);
    let (n, body) = answer_for(&offer, SrtpPolicy::Required).unwrap();
    let s = n.stream.srtp.clone().unwrap();
    assert_eq!((s.tag, s.suite), (9, CryptoSuite::AesCm128HmacSha1_32));
    assert_eq!(
        crypto::parse(&format!("9 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"))
            .unwrap()
            .key,
        s.remote
    );
    assert_ne!(s.local, s.remote);
    let (_, lines) = attrs_of(&body);
    let ours = crypto::parse(&lines[0]).unwrap();
    assert_eq!((ours.tag, ours.suite, &ours.key), (9, s.suite, &s.local));
    // Two answers to the same offer never share a key.
    let (n2, _) = answer_for(&offer, SrtpPolicy::Required).unwrap();
    assert_ne!(n2.stream.srtp.unwrap().local, s.local);
}

#[test]
fn our_offers_follow_the_policy() {
    let key = crate::media::srtp::SrtpKey::random();
    for (policy, proto, lines) in [
        (SrtpPolicy::Off, "RTP/AVP", 0),
        (SrtpPolicy::Optional, "RTP/AVP", 2),
        (SrtpPolicy::Required, "RTP/SAVP", 2),
    ] {
        let body = build_offer(
            local(),
            &OURS,
            101,
            1,
            1,
            Direction::SendRecv,
            &OfferCrypto::with_key(policy, key.clone()),
        );
        let (p, crypto) = attrs_of(&body);
        assert_eq!((p.as_str(), crypto.len()), (proto, lines), "{policy:?}");
        for (i, line) in crypto.iter().enumerate() {
            let c = crypto::parse(line).unwrap();
            assert_eq!(
                (c.tag as usize, c.suite, &c.key),
                (i + 1, CryptoSuite::ALL[i], &key)
            );
        }
        // Our own offer is acceptable to us under the same policy.
        assert!(parse_offer(&body, policy).is_ok(), "{policy:?}");
    }
}

#[test]
fn answers_to_our_offers() {
    let key = crate::media::srtp::SrtpKey::random();
    let offer = |p| {
        build_offer(
            local(),
            &OURS,
            101,
            1,
            1,
            Direction::SendRecv,
            &OfferCrypto::with_key(p, key.clone()),
        )
    };
    let theirs32 = format!("crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}");

    // Required: the answer picks tag 2 (_32); our key is the one we offered.
    let ans = sdp(&[("RTP/SAVP", &[&theirs32])]);
    let n = parse_answer(
        &ans,
        &OURS,
        SrtpPolicy::Required,
        &offer(SrtpPolicy::Required),
    )
    .unwrap();
    let s = n.stream.srtp.unwrap();
    assert_eq!(
        (s.tag, s.suite, &s.local),
        (2, CryptoSuite::AesCm128HmacSha1_32, &key)
    );
    // A tag we never offered, or our tag under another suite, is no answer.
    for bad in [
        format!("crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"),
        format!("crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}"),
    ] {
        let ans = sdp(&[("RTP/SAVP", &[&bad])]);
        let e = parse_answer(
            &ans,
            &OURS,
            SrtpPolicy::Required,
            &offer(SrtpPolicy::Required),
        );
        assert!(matches!(e, Err(SdpError::NoAudio(_))), "{bad}: {e:?}");
    }
    // Required: a plain answer is refused.
    let plain = sdp(&[("RTP/AVP", &[])]);
    assert!(parse_answer(
        &plain,
        &OURS,
        SrtpPolicy::Required,
        &offer(SrtpPolicy::Required)
    )
    .is_err());
    // Optional (best effort): a plain answer is plain RTP, a keyed one is SRTP.
    let n = parse_answer(
        &plain,
        &OURS,
        SrtpPolicy::Optional,
        &offer(SrtpPolicy::Optional),
    )
    .unwrap();
    assert!(n.stream.srtp.is_none());
    let keyed = sdp(&[("RTP/AVP", &[&crypto80()])]);
    let n = parse_answer(
        &keyed,
        &OURS,
        SrtpPolicy::Optional,
        &offer(SrtpPolicy::Optional),
    )
    .unwrap();
    assert_eq!(n.stream.srtp.unwrap().local, key);
    // Off: keys in an answer to our plain offer are ignored.
    let n = parse_answer(&keyed, &OURS, SrtpPolicy::Off, &offer(SrtpPolicy::Off)).unwrap();
    assert!(n.stream.srtp.is_none());
}
