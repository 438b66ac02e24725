//! An SDP body as an offer (INVITE, re-INVITE) and as an answer to our own
//! offer, under each SRTP policy, including a=crypto lines (RFC 4568).
//! Whatever we negotiate from it, our answer must be SDP we read back
//! ourselves with the same codec, payload types and keys.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use tpswitch::media::codec::Codec;
use tpswitch::media::srtp::{SrtpKey, SrtpPolicy};
use tpswitch::media::stream::Direction;
use tpswitch::sdp::OfferCrypto;
use tpswitch::sdp::{self, build_answer, build_offer, negotiate, parse_answer, parse_offer};

const OURS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

fuzz_target!(|data: &[u8]| {
    let local: SocketAddr = "127.0.0.1:40000".parse().expect("literal address");
    for policy in [SrtpPolicy::Off, SrtpPolicy::Optional, SrtpPolicy::Required] {
        if let Ok(offer) = parse_offer(data, policy) {
            if let Ok(neg) = negotiate(&offer, &OURS) {
                let answer = build_answer(&neg, local, 1, 1);
                let back = parse_offer(&answer, policy).unwrap_or_else(|e| {
                    panic!(
                        "our answer does not parse: {e}\n{}",
                        String::from_utf8_lossy(&answer)
                    )
                });
                assert_eq!(
                    back.codecs.first().map(|(c, pt)| (*c, *pt)),
                    Some((neg.stream.codec, neg.stream.pt)),
                    "our answer names another codec than we chose"
                );
                assert_eq!(back.telephone_event_pt, neg.stream.telephone_event_pt);
                assert_eq!(
                    back.crypto.first().map(|c| c.key.as_bytes().to_vec()),
                    neg.stream
                        .srtp
                        .as_ref()
                        .map(|s| s.local.as_bytes().to_vec()),
                    "our answer carries another key than we protect with"
                );
            }
        }
        let our_offer = build_offer(
            local,
            &OURS,
            101,
            1,
            1,
            Direction::SendRecv,
            &OfferCrypto::with_key(policy, SrtpKey::from_bytes([7; 30])),
        );
        let _ = parse_answer(data, &OURS, policy, &our_offer);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("a=crypto:") {
                let _ = sdp::crypto::parse(v);
            }
        }
    }
});
