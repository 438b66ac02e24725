use super::*;

/// RFC 3711 Appendix B.3's master key and salt, which libsrtp's `srtp_validate`
/// also uses; the packets below are that test's reference values (SSRC
/// 0xcafebabe, sequence 0x1234, ROC 0, SRTCP index 1), so these tests check the
/// crate against the reference implementation's output byte for byte.
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
    let mut tx = SrtpSender::new(&params(CryptoSuite::AesCm128HmacSha1_80)).unwrap();
    let mut rtp = RTP_PLAIN.to_vec();
    tx.protect_rtp(&mut rtp).unwrap();
    assert_eq!(rtp, SRTP_80);
    let mut rtcp = RTCP_PLAIN.to_vec();
    tx.protect_rtcp(&mut rtcp).unwrap();
    assert_eq!(rtcp, SRTCP_80);

    // _32: the same keystream, the HMAC cut to 4 bytes (RFC 4568 §6.2.2);
    // SRTCP keeps its 80-bit tag.
    let mut tx = SrtpSender::new(&params(CryptoSuite::AesCm128HmacSha1_32)).unwrap();
    let mut rtp = RTP_PLAIN.to_vec();
    tx.protect_rtp(&mut rtp).unwrap();
    assert_eq!(rtp, SRTP_80[..32]);
    let mut rtcp = RTCP_PLAIN.to_vec();
    tx.protect_rtcp(&mut rtcp).unwrap();
    assert_eq!(rtcp, SRTCP_80);
}

#[test]
fn reference_vectors_unprotect_and_replays_are_refused() {
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80)).unwrap();
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
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80)).unwrap();
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
    let mut rx = SrtpReceiver::new(&other).unwrap();
    let mut buf = SRTP_80.to_vec();
    assert!(rx.unprotect_rtp(&mut buf).is_err());
    // The untouched packet still authenticates with the right key.
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80)).unwrap();
    assert!(rx.unprotect_rtp(&mut SRTP_80.to_vec()).is_ok());
}

#[test]
fn a_stream_survives_a_flood_of_new_ssrcs() {
    let p = params(CryptoSuite::AesCm128HmacSha1_80);
    let mut tx = SrtpSender::new(&p).unwrap();
    let mut rx = SrtpReceiver::new(&p).unwrap();
    let mut seq = 100u16;
    let send = |tx: &mut SrtpSender, ssrc: u32, seq: u16| {
        let mut b = RTP_PLAIN.to_vec();
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b[8..12].copy_from_slice(&ssrc.to_be_bytes());
        tx.protect_rtp(&mut b).unwrap();
        b
    };
    for i in 0..100u32 {
        // Forged packets under ever new SSRCs: refused, and the state stays bounded.
        let mut forged = RTP_PLAIN.to_vec();
        forged.extend_from_slice(&[0; 10]);
        forged[8..12].copy_from_slice(&(0x1000 + i).to_be_bytes());
        assert!(rx.unprotect_rtp(&mut forged).is_err());
        assert!(rx.ssrcs.len() <= MAX_RECEIVE_SSRCS);
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
        SrtpSender::new(&p).unwrap(),
        SrtpReceiver::new(&p).unwrap()
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
    let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80)).unwrap();
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
        let mut rx = SrtpReceiver::new(&params(suite)).unwrap();
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

/// Found by the `rtp_receive` fuzz target: an RFC 8285 header extension whose
/// element claims more bytes than its block (and the packet) hold made
/// webrtc's RTP header parser panic inside `encrypt_rtp` and `decrypt_rtp`,
/// before any authentication, so one forged packet to the RTP port (or a
/// plain one relayed into an SRTP leg) took the session's receive task down.
#[test]
fn header_extension_elements_past_their_block_are_refused_not_a_panic() {
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
        let mut out = pkt.clone();
        let mut tx = SrtpSender::new(&params(CryptoSuite::AesCm128HmacSha1_80)).unwrap();
        assert!(tx.protect_rtp(&mut out).is_err(), "{pkt:02x?}");
        let mut rx = SrtpReceiver::new(&params(CryptoSuite::AesCm128HmacSha1_80)).unwrap();
        let mut forged = pkt.clone();
        forged.extend_from_slice(&[0u8; 10]);
        assert!(rx.unprotect_rtp(&mut forged).is_err(), "{pkt:02x?}");
    }
}
