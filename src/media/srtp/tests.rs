use super::*;

/// RFC 3711 Appendix B.3's master key and salt, which libsrtp's `srtp_validate`
/// also uses; the packets below are that test's reference values (SSRC
/// 0xcafebabe, sequence 0x1234, ROC 0, SRTCP index 1), so these tests check
/// our transforms against the reference implementation's output byte for byte.
const KEY_SALT: [u8; 30] = [
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
];
const RTP_PLAIN: [u8; 28] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab,
    0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
];
const SRTP_80: [u8; 38] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0x4e, 0x55, 0xdc, 0x4c,
    0xe7, 0x99, 0x78, 0xd8, 0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02, 0xb7, 0x8d, 0x6a, 0xcc,
    0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb,
];
const RTCP_PLAIN: [u8; 24] = [
    0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
    0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
];
const SRTCP_80: [u8; 38] = [
    0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0x71, 0x28, 0x03, 0x5b, 0xe4, 0x87, 0xb9, 0xbd,
    0xbe, 0xf8, 0x90, 0x41, 0xf9, 0x77, 0xa5, 0xa8, 0x80, 0x00, 0x00, 0x01, 0x99, 0x3e, 0x08, 0xcd,
    0x54, 0xd6, 0xc1, 0x23, 0x07, 0x98,
];

fn params(suite: CryptoSuite) -> SrtpParams {
    SrtpParams {
        suite,
        tag: 1,
        local: SrtpKey::from_bytes(KEY_SALT),
        remote: SrtpKey::from_bytes(KEY_SALT),
    }
}

#[test]
fn reference_vectors_protect_byte_for_byte() {
    let mut tx = SrtpSender::new(&params(CryptoSuite::AesCm128HmacSha1_80));
    let mut rtp = RTP_PLAIN.to_vec();
    tx.protect_rtp(&mut rtp).unwrap();
    assert_eq!(rtp, SRTP_80);
    // RFC 3711 §3.4 starts the SRTCP index at 0; libsrtp's vector is its second packet.
    let mut first = RTCP_PLAIN.to_vec();
    tx.protect_rtcp(&mut first).unwrap();
    assert_eq!(first[24..28], [0x80, 0, 0, 0]);
    let mut rtcp = RTCP_PLAIN.to_vec();
    tx.protect_rtcp(&mut rtcp).unwrap();
    assert_eq!(rtcp, SRTCP_80);

    // _32: the same keystream, the HMAC cut to 4 bytes (RFC 4568 §6.2.2);
    // SRTCP keeps its 80-bit tag.
    let mut tx = SrtpSender::new(&params(CryptoSuite::AesCm128HmacSha1_32));
    let mut rtp = RTP_PLAIN.to_vec();
    tx.protect_rtp(&mut rtp).unwrap();
    assert_eq!(rtp, SRTP_80[..32]);
    tx.protect_rtcp(&mut RTCP_PLAIN.to_vec()).unwrap();
    let mut rtcp = RTCP_PLAIN.to_vec();
    tx.protect_rtcp(&mut rtcp).unwrap();
    assert_eq!(rtcp, SRTCP_80);
}

#[test]
fn reference_vectors_unprotect_and_replays_are_refused() {
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80));
    let mut buf = SRTP_80.to_vec();
    let n = rx.unprotect_rtp(&mut buf).unwrap();
    assert_eq!(&buf[..n], RTP_PLAIN);
    // RFC 3711 §3.3.2: the same index again is a replay.
    let mut again = SRTP_80.to_vec();
    assert!(rx.unprotect_rtp(&mut again).is_err());

    let mut buf = SRTCP_80.to_vec();
    let n = rx.unprotect_rtcp(&mut buf).unwrap();
    assert_eq!(&buf[..n], RTCP_PLAIN);
    let mut again = SRTCP_80.to_vec();
    assert!(rx.unprotect_rtcp(&mut again).is_err());
}

#[test]
fn tampered_short_and_wrong_key_packets_are_refused() {
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80));
    let mut flipped = SRTP_80.to_vec();
    flipped[14] ^= 1;
    assert!(rx.unprotect_rtp(&mut flipped).is_err());
    for junk in [&[][..], &[0x80, 0, 0][..], &SRTP_80[..15], &[0x80; 12][..]] {
        let mut j = junk.to_vec();
        assert!(rx.unprotect_rtp(&mut j).is_err());
        let mut j = junk.to_vec();
        assert!(rx.unprotect_rtcp(&mut j).is_err());
    }
    let mut other = params(CryptoSuite::AesCm128HmacSha1_80);
    other.remote = SrtpKey::random();
    let mut rx = SrtpReceiver::new(&other);
    let mut buf = SRTP_80.to_vec();
    assert!(rx.unprotect_rtp(&mut buf).is_err());
    // The untouched packet still authenticates with the right key.
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80));
    assert!(rx.unprotect_rtp(&mut SRTP_80.to_vec()).is_ok());
}

#[test]
fn a_stream_survives_a_flood_of_new_ssrcs() {
    let p = params(CryptoSuite::AesCm128HmacSha1_80);
    let mut tx = SrtpSender::new(&p);
    let mut rx = SrtpReceiver::new(&p);
    let mut seq = 100u16;
    let send = |tx: &mut SrtpSender, ssrc: u32, seq: u16| {
        let mut b = RTP_PLAIN.to_vec();
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b[8..12].copy_from_slice(&ssrc.to_be_bytes());
        tx.protect_rtp(&mut b).unwrap();
        b
    };
    for i in 0..100u32 {
        // Forged packets under ever new SSRCs: refused, and they leave no state.
        let mut forged = RTP_PLAIN.to_vec();
        forged.extend_from_slice(&[0; 10]);
        forged[8..12].copy_from_slice(&(0x1000 + i).to_be_bytes());
        assert!(rx.unprotect_rtp(&mut forged).is_err());
        assert_eq!(rx.streams.len(), usize::from(i > 0));
        let mut real = send(&mut tx, 0xcafe_babe, seq);
        assert!(rx.unprotect_rtp(&mut real).is_ok(), "packet {i}");
        seq = seq.wrapping_add(1);
    }
}

#[test]
fn keys_never_show_in_debug_output() {
    let p = params(CryptoSuite::AesCm128HmacSha1_32);
    let shown = format!(
        "{p:?} {:?} {:?}",
        SrtpSender::new(&p),
        SrtpReceiver::new(&p)
    );
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(
        !shown.contains("225") && !shown.to_lowercase().contains("e1f9"),
        "{shown}"
    );
    assert!(!shown.contains("4fl6"), "{shown}");
}

#[test]
fn suite_names_round_trip() {
    for s in CryptoSuite::ALL {
        assert_eq!(CryptoSuite::from_name(s.name()), Some(s));
    }
    assert_eq!(CryptoSuite::from_name("aes_cm_128_hmac_sha1_80"), None);
    assert_eq!(CryptoSuite::from_name("F8_128_HMAC_SHA1_80"), None);
}

#[test]
fn unencrypted_srtcp_is_refused_unauthenticated_or_not() {
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80));
    // The reference packet with its E flag cleared and any tag: the crate alone
    // would hand it back as authentic.
    let mut forged = SRTCP_80.to_vec();
    forged[24] &= 0x7F;
    assert!(rx.unprotect_rtcp(&mut forged).is_err());
    let mut good = SRTCP_80.to_vec();
    assert!(rx.unprotect_rtcp(&mut good).is_ok());
}

#[test]
fn mutated_packets_never_panic() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3711);
    for suite in CryptoSuite::ALL {
        let mut rx = SrtpReceiver::new(&params(suite));
        for _ in 0..3000 {
            for base in [&SRTP_80[..], &SRTCP_80[..], &RTP_PLAIN[..]] {
                let mut b = base.to_vec();
                b.truncate(rng.random_range(0..=b.len()));
                for _ in 0..rng.random_range(0..4) {
                    if !b.is_empty() {
                        let i = rng.random_range(0..b.len());
                        b[i] = rng.random();
                    }
                }
                let _ = rx.unprotect_rtp(&mut b.clone());
                let _ = rx.unprotect_rtcp(&mut b);
            }
        }
    }
}

/// Found by the `rtp_receive` fuzz target when webrtc-srtp framed our packets:
/// an RFC 8285 header extension whose element claims more bytes than its
/// block holds made that crate's header parser panic before authenticating.
/// Our framing reads only the block's length: the elements are authenticated
/// and passed on untouched, and a block longer than the packet is refused.
#[test]
fn header_extensions_are_opaque_and_a_block_past_the_packet_is_refused() {
    for (profile, element) in [
        // Two-byte form (§4.3): id 1, length 200, in a one-word block.
        ([0x10, 0x00], [0x01, 0xc8, 0x00, 0x00]),
        // One-byte form (§4.2): id 1, length 16, in a one-word block.
        ([0xbe, 0xde], [0x1f, 0x00, 0x00, 0x00]),
        // Two-byte form whose last element has no length byte.
        ([0x10, 0x00], [0x00, 0x00, 0x00, 0x07]),
    ] {
        let mut pkt = vec![0x90, 0x00, 0x00, 0x01, 0, 0, 0, 1, 0xca, 0xfe, 0xba, 0xbe];
        pkt.extend_from_slice(&profile);
        pkt.extend_from_slice(&[0x00, 0x01]);
        pkt.extend_from_slice(&element);
        pkt.extend_from_slice(&[0xd5; 160]);
        let p = params(CryptoSuite::AesCm128HmacSha1_80);
        let mut wire = pkt.clone();
        SrtpSender::new(&p).protect_rtp(&mut wire).unwrap();
        // Header and extension in clear, payload not.
        assert_eq!(wire[..20], pkt[..20]);
        assert_ne!(wire[20..180], pkt[20..]);
        let n = SrtpReceiver::new(&p).unprotect_rtp(&mut wire).unwrap();
        assert_eq!(wire[..n], pkt[..]);

        // The block claims 2 words more than the packet holds.
        let mut short = pkt[..20].to_vec();
        short[15] = 3;
        assert!(SrtpSender::new(&p).protect_rtp(&mut short.clone()).is_err());
        short.extend_from_slice(&[0; 10]);
        assert!(SrtpReceiver::new(&p).unprotect_rtp(&mut short).is_err());
    }
}

/// webrtc-srtp, an independent implementation, as the other end: the same
/// plaintext gives the same SRTP packet byte for byte, through a sequence
/// number wrap, in both suites.
#[test]
fn our_srtp_is_webrtc_srtps_byte_for_byte_through_a_rollover() {
    use webrtc_srtp::context::Context;
    use webrtc_srtp::protection_profile::ProtectionProfile;
    for (suite, profile) in [
        (
            CryptoSuite::AesCm128HmacSha1_80,
            ProtectionProfile::Aes128CmHmacSha1_80,
        ),
        (
            CryptoSuite::AesCm128HmacSha1_32,
            ProtectionProfile::Aes128CmHmacSha1_32,
        ),
    ] {
        let key = SrtpKey::random();
        let p = SrtpParams {
            suite,
            tag: 1,
            local: key.clone(),
            remote: key.clone(),
        };
        let mut ours = SrtpSender::new(&p);
        let mut theirs = Context::new(&key.key(), &key.salt(), profile, None, None).unwrap();
        let mut seq = 65_000u16;
        for i in 0..1_500u32 {
            let pkt = rtp_packet(0x5eed_0001, seq, i);
            let mut mine = pkt.clone();
            ours.protect_rtp(&mut mine).unwrap();
            let want = theirs.encrypt_rtp(&pkt).unwrap();
            assert_eq!(mine, want.as_ref(), "{} seq {seq}", suite.name());
            seq = seq.wrapping_add(1);
        }
    }
}

/// Each side unprotects the other's packets, RTP and RTCP, delivered out of
/// order and duplicated around a rollover; the duplicates are refused by
/// both, and every original is accepted once.
#[test]
fn ours_and_webrtc_srtps_accept_each_others_reordered_packets_once() {
    use webrtc_srtp::context::Context;
    use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
    use webrtc_srtp::protection_profile::ProtectionProfile;
    let key = SrtpKey::random();
    let p = SrtpParams {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        tag: 1,
        local: key.clone(),
        remote: key.clone(),
    };
    let ctx = |replay: bool| {
        let (rtp, rtcp) = if replay {
            (
                Some(srtp_replay_protection(64)),
                Some(srtcp_replay_protection(64)),
            )
        } else {
            (None, None)
        };
        Context::new(
            &key.key(),
            &key.salt(),
            ProtectionProfile::Aes128CmHmacSha1_80,
            rtp,
            rtcp,
        )
        .unwrap()
    };
    let (mut their_tx, mut their_rx) = (ctx(false), ctx(true));
    let (mut our_tx, mut our_rx) = (SrtpSender::new(&p), SrtpReceiver::new(&p));

    // 600 packets from 65 300: swapped in pairs, every fifth sent twice.
    let plain: Vec<Vec<u8>> = (0..600u32)
        .map(|i| rtp_packet(0x0bad_cafe, 65_300u16.wrapping_add(i as u16), i))
        .collect();
    let mut order: Vec<usize> = Vec::new();
    for pair in (0..plain.len()).collect::<Vec<_>>().chunks(2) {
        order.extend(pair.iter().rev());
        if pair[0] % 5 == 0 {
            order.push(pair[0]);
        }
    }
    let ours: Vec<Vec<u8>> = plain
        .iter()
        .map(|pkt| {
            let mut b = pkt.clone();
            our_tx.protect_rtp(&mut b).unwrap();
            b
        })
        .collect();
    let theirs: Vec<Vec<u8>> = plain
        .iter()
        .map(|pkt| their_tx.encrypt_rtp(pkt).unwrap().to_vec())
        .collect();
    let mut seen = vec![0u32; plain.len()];
    for &i in &order {
        let mut b = theirs[i].clone();
        let mine = our_rx.unprotect_rtp(&mut b);
        let other = their_rx.decrypt_rtp(&ours[i]);
        assert_eq!(mine.is_ok(), other.is_ok(), "packet {i}");
        if let Ok(n) = mine {
            assert_eq!(b[..n], plain[i]);
            assert_eq!(other.unwrap().as_ref(), plain[i]);
            seen[i] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "{seen:?}");

    // SRTCP: each side's reports authenticate at the other, each once.
    for i in 0..70u8 {
        let mut report = RTCP_PLAIN.to_vec();
        report[8] = i;
        let mut mine = report.clone();
        our_tx.protect_rtcp(&mut mine).unwrap();
        assert_eq!(their_rx.decrypt_rtcp(&mine).unwrap().as_ref(), report);
        assert!(their_rx.decrypt_rtcp(&mine).is_err(), "report {i} replayed");
        let mut other = their_tx.encrypt_rtcp(&report).unwrap().to_vec();
        let again = other.clone();
        let n = our_rx.unprotect_rtcp(&mut other).unwrap();
        assert_eq!(other[..n], report);
        assert!(
            our_rx.unprotect_rtcp(&mut again.clone()).is_err(),
            "report {i} replayed"
        );
    }
}

/// An RTP packet of `ssrc` and `seq` with a 160-byte payload that differs by `i`.
fn rtp_packet(ssrc: u32, seq: u16, i: u32) -> Vec<u8> {
    let mut b = vec![0x80, 0x00];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&(i * 160).to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend((0..160u32).map(|k| (k + i) as u8));
    b
}

/// The per-SSRC list keeps the most recent first and forgets the one unused
/// longest when full.
#[test]
fn the_stream_list_forgets_the_one_unused_longest() {
    let mut st: Streams<u8> = Streams::default();
    for ssrc in 1..=MAX_SSRCS as u32 {
        *st.get_or_insert(ssrc) = ssrc as u8;
    }
    assert_eq!(st.len(), MAX_SSRCS);
    // 1 used again: 2 is now unused longest, and goes when 100 comes.
    assert_eq!(*st.get_or_insert(1), 1);
    *st.get_or_insert(100) = 100;
    assert_eq!(st.len(), MAX_SSRCS);
    assert_eq!(st.get(2), None);
    assert_eq!(st.get(1), Some(&1));
    assert_eq!(st.get(100), Some(&100));
    assert_eq!(st.get(3), Some(&3));
    // A new entry starts from its default.
    assert_eq!(*st.get_or_insert(200), 0);
    assert_eq!(st.get(3), None);
}

/// RFC 3711 §9.2: a key that has protected 2^48 SRTP or 2^31 SRTCP packets
/// protects no more (the keystream would repeat); and a packet from before a
/// stream's first cannot be given an index.
#[test]
fn a_spent_key_protects_no_more_and_an_index_below_zero_is_refused() {
    let p = params(CryptoSuite::AesCm128HmacSha1_80);
    let mut tx = SrtpSender::new(&p);
    let ssrc = 0xcafe_babe;
    tx.streams.get_or_insert(ssrc).rtp_highest = Some(index::MAX_RTP_INDEX);
    tx.streams.get_or_insert(ssrc).rtcp_sent = Some(index::MAX_RTCP_INDEX);
    let mut rtp = RTP_PLAIN.to_vec();
    rtp[2..4].copy_from_slice(&0u16.to_be_bytes());
    assert!(matches!(
        tx.protect_rtp(&mut rtp),
        Err(SrtpError::KeyUsedUp(_))
    ));
    assert!(matches!(
        tx.protect_rtcp(&mut RTCP_PLAIN.to_vec()),
        Err(SrtpError::KeyUsedUp(_))
    ));

    let mut tx = SrtpSender::new(&p);
    let mut first = RTP_PLAIN.to_vec();
    first[2..4].copy_from_slice(&10u16.to_be_bytes());
    tx.protect_rtp(&mut first).unwrap();
    let mut late = RTP_PLAIN.to_vec();
    late[2..4].copy_from_slice(&65_530u16.to_be_bytes());
    assert!(matches!(
        tx.protect_rtp(&mut late),
        Err(SrtpError::Refused(_))
    ));
}
