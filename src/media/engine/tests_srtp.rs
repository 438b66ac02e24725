//! SRTP through the engine over 127.0.0.1: prompts and RTCP leave protected, only
//! authentic packets are received, and a bridge carries SRTP on one leg and RTP on the
//! other (each leg's keys are its own).

use std::time::Duration;

use rtp_rs::RtpReader;

use super::tests::{engine, params, peer, pool, recv, tone};
use super::*;
use crate::media::codec::Codec;
use crate::media::rtp_stream::RtpStream;
use crate::media::srtp::{CryptoSuite, SrtpKey, SrtpParams, SrtpReceiver, SrtpSender};
use crate::media::stream::Direction;

/// Keys for one SRTP leg, and the phone's side of them (its send key is our receive key).
fn keys(suite: CryptoSuite) -> (SrtpParams, SrtpSender, SrtpReceiver) {
    let ours = SrtpParams {
        suite,
        tag: 1,
        local: SrtpKey::random(),
        remote: SrtpKey::random(),
    };
    let phone = SrtpParams {
        local: ours.remote.clone(),
        remote: ours.local.clone(),
        ..ours.clone()
    };
    (ours, SrtpSender::new(&phone), SrtpReceiver::new(&phone))
}

fn payload(pkt: &[u8]) -> Vec<u8> {
    RtpReader::new(pkt).unwrap().payload().to_vec()
}

#[tokio::test]
async fn prompts_and_rtcp_leave_protected_and_only_authentic_packets_count() {
    let cfg = EngineConfig {
        rtcp_interval: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let e = MediaEngine::start(cfg).unwrap();
    let phone = pool().allocate().unwrap();
    let (srtp, mut phone_tx, mut phone_rx) = keys(CryptoSuite::AesCm128HmacSha1_32);
    let mut n = params(phone.local, Codec::Pcmu, None, Direction::SendRecv);
    n.srtp = Some(srtp);
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts()).unwrap();
    let clip = tone(0.06, 700.0);
    s.play(1, vec![clip.clone()]).unwrap();
    for i in 0..3 {
        let (mut p, _) = recv(&phone.rtp, Duration::from_secs(1)).await.unwrap();
        // 12-byte header + 160 bytes of μ-law + the 4-byte tag of _32.
        assert_eq!(p.len(), 12 + 160 + 4);
        assert_ne!(
            payload(&p[..172]),
            clip.frame(Codec::Pcmu, i).unwrap().to_vec()
        );
        let len = phone_rx
            .unprotect_rtp(&mut p)
            .expect("our SRTP authenticates");
        assert_eq!(
            payload(&p[..len]),
            clip.frame(Codec::Pcmu, i).unwrap().to_vec()
        );
    }
    // SRTCP: E flag and index after the report, then the 80-bit tag (RFC 3711 §3.4).
    let (mut r, _) = recv(&phone.rtcp, Duration::from_secs(2)).await.unwrap();
    let len = phone_rx
        .unprotect_rtcp(&mut r)
        .expect("our SRTCP authenticates");
    let summary = crate::media::rtcp::inspect_rtcp(&r[..len]).unwrap();
    assert_eq!(summary.sender_ssrc, Some(s.ssrc()));

    // A plain packet (a forger without the key) is refused: no RtpStarted, nothing counted.
    let mut stream = RtpStream::with_initial(0x5EC, 1000, 0, 160);
    let mut plain = Vec::new();
    stream
        .build_packet(0, &[0xFF; 160], 0, true, &mut plain)
        .unwrap();
    plain.extend_from_slice(&[0; 4]);
    phone.rtp.send_to(&plain, s.local_addr()).unwrap();
    let started = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            match ev.recv().await {
                Some(MediaEvent::RtpStarted) | None => return,
                Some(_) => {}
            }
        }
    })
    .await;
    assert!(
        started.is_err(),
        "a forged packet must not start the stream"
    );
    // The real phone's packet is accepted.
    let mut p = Vec::new();
    stream
        .build_packet(0, &[0xFF; 160], 1, false, &mut p)
        .unwrap();
    phone_tx.protect_rtp(&mut p).unwrap();
    phone.rtp.send_to(&p, s.local_addr()).unwrap();
    let started = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match ev.recv().await {
                Some(MediaEvent::RtpStarted) => return true,
                None => return false,
                Some(_) => {}
            }
        }
    })
    .await;
    assert_eq!(started, Ok(true));
}

#[tokio::test]
async fn a_bridge_carries_srtp_on_one_leg_and_rtp_on_the_other() {
    let e = engine();
    let ra = peer("127.0.0.1").await; // SRTP phone
    let rb = peer("127.0.0.1").await; // plain RTP phone
    let (srtp, mut a_tx, mut a_rx) = keys(CryptoSuite::AesCm128HmacSha1_80);
    let mut na = params(
        ra.local_addr().unwrap(),
        Codec::Pcmu,
        None,
        Direction::SendRecv,
    );
    na.srtp = Some(srtp);
    let nb = params(
        rb.local_addr().unwrap(),
        Codec::Pcmu,
        None,
        Direction::SendRecv,
    );
    let (a, _ea) = e.open(pool().allocate().unwrap(), &na, opts()).unwrap();
    let (b, _eb) = e.open(pool().allocate().unwrap(), &nb, opts()).unwrap();
    let _bridge = e.bridge(&a, &b).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let voice: Vec<u8> = (0..160).map(|i| (i * 7 % 256) as u8).collect();
    let mut sa = RtpStream::with_initial(0xA, 100, 0, 160);
    let mut sb = RtpStream::with_initial(0xB, 200, 0, 160);
    for tick in 0..3 {
        // SRTP in on A, plain RTP out on B.
        let mut p = Vec::new();
        sa.build_packet(0, &voice, tick, tick == 0, &mut p).unwrap();
        a_tx.protect_rtp(&mut p).unwrap();
        ra.send_to(&p, a.local_addr()).await.unwrap();
        let (got, _) = recv(&rb, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.len(), 12 + 160, "plain on B");
        assert_eq!(payload(&got), voice);
        assert_eq!(RtpReader::new(&got).unwrap().ssrc(), b.ssrc());

        // Plain RTP in on B, SRTP out on A.
        let mut p = Vec::new();
        sb.build_packet(0, &voice, tick, tick == 0, &mut p).unwrap();
        rb.send_to(&p, b.local_addr()).await.unwrap();
        let (mut got, _) = recv(&ra, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.len(), 12 + 160 + 10, "SRTP with an 80-bit tag on A");
        let len = a_rx
            .unprotect_rtp(&mut got)
            .expect("relayed SRTP authenticates");
        assert_eq!(payload(&got[..len]), voice);
        assert_eq!(RtpReader::new(&got[..len]).unwrap().ssrc(), a.ssrc());
    }
    let st = e.stats().snapshot();
    assert!(st.relayed >= 6, "relayed {}", st.relayed);
}

fn opts() -> SessionOptions {
    SessionOptions {
        silence_between_prompts: false,
        ..SessionOptions::default()
    }
}
