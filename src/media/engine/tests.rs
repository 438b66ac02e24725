//! Engine tests over 127.0.0.1: real sockets, real pacing thread. Timing figures are printed,
//! never asserted tightly (the machine is shared).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rtp_rs::RtpReader;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::*;
use crate::media::codec::Codec;
use crate::media::dtmf::{Digit, DtmfToneSpec, EventBlock, Rfc4733Encoder, TelephoneEventPayload};
use crate::media::g711;
use crate::media::ports::PortPool;
use crate::media::rtp_stream::RtpStream;
use crate::media::stream::{Direction, StreamParams};

pub(super) fn pool() -> &'static PortPool {
    static POOL: OnceLock<PortPool> = OnceLock::new();
    POOL.get_or_init(|| PortPool::new("127.0.0.1".parse().unwrap(), 42000, 42999))
}

/// The stream an offer from `peer` in direction `remote` negotiates to (RFC 3264 §6.1:
/// our direction mirrors theirs; sendonly or inactive from them is hold).
pub(super) fn params(
    peer: SocketAddr,
    codec: Codec,
    te: Option<u8>,
    remote: Direction,
) -> StreamParams {
    StreamParams {
        codec,
        pt: codec.payload_type(),
        telephone_event_pt: te,
        remote: peer,
        remote_ptime: None,
        direction: remote.mirrored(),
        hold: matches!(remote, Direction::SendOnly | Direction::Inactive),
        srtp: None,
    }
}

fn opts(silence: bool) -> SessionOptions {
    SessionOptions {
        silence_between_prompts: silence,
        ..SessionOptions::default()
    }
}

pub(super) fn engine() -> MediaEngine {
    MediaEngine::start(EngineConfig::default()).unwrap()
}

pub(super) async fn peer(ip: &str) -> UdpSocket {
    UdpSocket::bind(format!("{ip}:0")).await.unwrap()
}

/// A socket a test phone receives on: a plain tokio socket, or a session's own
/// receive-only [`RtpSocket`](crate::media::ports::RtpSocket).
pub(super) trait RecvFrom {
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)>;
}

impl RecvFrom for UdpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf).await
    }
}

impl RecvFrom for crate::media::ports::RtpSocket {
    async fn recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        crate::media::ports::RtpSocket::recv_from(self, buf).await
    }
}

/// One datagram, or `None` after `wait`.
pub(super) async fn recv(sock: &impl RecvFrom, wait: Duration) -> Option<(Vec<u8>, Instant)> {
    let mut buf = vec![0u8; 2048];
    let (n, _) = timeout(wait, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    buf.truncate(n);
    Some((buf, Instant::now()))
}

/// Everything already queued on `sock`.
fn drain(sock: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while sock.try_recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// The next event other than `RtpStarted` (which `rtp_started_is_reported_once`
/// checks on its own).
async fn next_event(rx: &mut mpsc::Receiver<MediaEvent>, wait: Duration) -> Option<MediaEvent> {
    loop {
        match timeout(wait, rx.recv()).await.ok().flatten() {
            Some(MediaEvent::RtpStarted) => continue,
            other => return other,
        }
    }
}

struct Hdr {
    pt: u8,
    mark: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn hdr(b: &[u8]) -> Hdr {
    let r = RtpReader::new(b).unwrap();
    Hdr {
        pt: r.payload_type(),
        mark: r.mark(),
        seq: u16::from(r.sequence_number()),
        ts: r.timestamp(),
        ssrc: r.ssrc(),
        payload: r.payload().to_vec(),
    }
}

pub(super) fn tone(seconds: f32, hz: f32) -> Arc<Prompt> {
    let n = (8000.0 * seconds) as usize;
    let pcm: Vec<i16> = (0..n)
        .map(|i| ((i as f32 * hz * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16)
        .collect();
    Arc::new(Prompt::from_pcm("tone", &pcm))
}

/// RFC 4733 packets for one key press, as a phone would send them.
fn dtmf_packets(stream: &mut RtpStream, pt: u8, digit: Digit, start_ts: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, ev) in Rfc4733Encoder::new(DtmfToneSpec::new(digit, start_ts)).enumerate() {
        let mut b = Vec::new();
        stream
            .build_event_packet(pt, &ev.payload, i as u64, ev.timestamp, ev.marker, &mut b)
            .unwrap();
        out.push(b);
    }
    out
}

#[tokio::test]
async fn plays_a_prompt_paced_and_reports_finished() {
    let e = engine();
    let rx_sock = peer("127.0.0.1").await;
    let n = params(
        rx_sock.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        Direction::SendRecv,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts(false)).unwrap();
    let prompt = tone(1.0, 440.0);
    assert_eq!(prompt.frame_count(), 50);
    s.play(7, vec![prompt.clone()]).unwrap();

    let mut got = Vec::new();
    while got.len() < 50 {
        let (b, at) = recv(&rx_sock, Duration::from_secs(2))
            .await
            .expect("packet");
        got.push((hdr(&b), at));
    }
    for (i, (h, _)) in got.iter().enumerate() {
        assert_eq!(h.pt, 0);
        assert_eq!(
            h.payload,
            prompt.frame(Codec::Pcmu, i).unwrap().to_vec(),
            "frame {i}"
        );
        assert_eq!(h.ssrc, s.ssrc());
        assert_eq!(h.mark, i == 0, "marker on the first packet only ({i})");
        if i > 0 {
            let prev = &got[i - 1].0;
            assert_eq!(h.seq, prev.seq.wrapping_add(1));
            assert_eq!(h.ts, prev.ts.wrapping_add(160));
        }
    }
    let mut jitter: Vec<Duration> = got
        .windows(2)
        .map(|w| {
            let d = w[1].1 - w[0].1;
            d.abs_diff(Duration::from_millis(20))
        })
        .collect();
    jitter.sort();
    let p99 = jitter[(jitter.len() * 99 / 100).min(jitter.len() - 1)];
    println!(
        "inter-arrival deviation from 20 ms: p50 {:?} p99 {:?}",
        jitter[jitter.len() / 2],
        p99
    );
    // No timing bound here (a loaded machine only makes packets later; the
    // figures live in docs/performance.md). What a load cannot fake is a
    // burst: paced packets span at least most of their ideal schedule.
    let span = got[got.len() - 1].1 - got[0].1;
    let ideal = Duration::from_millis(20) * (got.len() as u32 - 1);
    assert!(span >= ideal / 2, "sent as a burst: {span:?} for {ideal:?}");

    assert_eq!(
        next_event(&mut ev, Duration::from_secs(1)).await,
        Some(MediaEvent::PlaybackFinished(7))
    );
    // No silence requested: nothing follows the prompt.
    assert!(recv(&rx_sock, Duration::from_millis(100)).await.is_none());
    let st = e.stats().snapshot();
    assert_eq!((st.packets_sent, st.send_errors), (50, 0));
}

/// Sessions are spread over the pacing threads; each thread paces its own share.
#[tokio::test]
async fn sessions_on_several_pacing_threads_are_all_paced() {
    let e = MediaEngine::start(EngineConfig {
        pacing_threads: 3,
        ..EngineConfig::default()
    })
    .unwrap();
    let prompt = tone(0.2, 440.0);
    let mut calls = Vec::new();
    for id in 0..6u64 {
        let sock = peer("127.0.0.1").await;
        let n = params(
            sock.local_addr().unwrap(),
            Codec::Pcmu,
            None,
            Direction::SendRecv,
        );
        let (s, ev) = e.open(pool().allocate().unwrap(), &n, opts(false)).unwrap();
        s.play(id, vec![prompt.clone()]).unwrap();
        calls.push((sock, s, ev, id));
    }
    for (sock, s, mut ev, id) in calls {
        for i in 0..prompt.frame_count() {
            let (b, _) = recv(&sock, Duration::from_secs(2)).await.expect("packet");
            let h = hdr(&b);
            assert_eq!(h.ssrc, s.ssrc());
            assert_eq!(h.payload, prompt.frame(Codec::Pcmu, i).unwrap().to_vec());
        }
        assert_eq!(
            next_event(&mut ev, Duration::from_secs(1)).await,
            Some(MediaEvent::PlaybackFinished(id))
        );
    }
}

#[tokio::test]
async fn stop_playback_is_prompt_and_silence_follows() {
    let e = engine();
    let rx_sock = peer("127.0.0.1").await;
    let n = params(
        rx_sock.local_addr().unwrap(),
        Codec::Pcma,
        None,
        Direction::SendRecv,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts(true)).unwrap();
    // Silence before any prompt.
    let (b, _) = recv(&rx_sock, Duration::from_secs(1)).await.unwrap();
    assert_eq!(hdr(&b).payload, vec![0xD5; 160]);
    let prompt = tone(5.0, 1000.0);
    s.play(1, vec![prompt.clone()]).unwrap();
    // Wait for prompt audio.
    loop {
        let (b, _) = recv(&rx_sock, Duration::from_secs(1)).await.unwrap();
        let h = hdr(&b);
        if h.payload != vec![0xD5; 160] {
            assert!(h.mark, "the prompt starts a talkspurt");
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    drain(&rx_sock);
    s.stop_playback().unwrap();
    // Count prompt frames that still arrive after the stop.
    let mut late_frames = 0;
    let mut silence = 0;
    while silence < 3 {
        let (b, _) = recv(&rx_sock, Duration::from_secs(1)).await.unwrap();
        if hdr(&b).payload == vec![0xD5; 160] {
            silence += 1;
        } else {
            assert_eq!(silence, 0, "no prompt audio after silence resumed");
            late_frames += 1;
        }
    }
    println!("prompt packets after stop_playback: {late_frames}");
    assert!(late_frames <= 2, "{late_frames} packets after stop");
    assert_eq!(next_event(&mut ev, Duration::from_millis(50)).await, None);
}

/// A flood of RTP from the phone keeps none of the receive task's other work
/// waiting: a digit whose end packets never come still ends on its timer, and
/// closing the session still ends the task, so its ports come back.
#[tokio::test]
async fn a_flood_of_packets_keeps_neither_a_timer_nor_the_end_waiting() {
    let e = engine();
    let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let n = params(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        Direction::SendRecv,
    );
    let p = PortPool::new("127.0.0.1".parse().unwrap(), 41920, 41921);
    let (s, mut ev) = e.open(p.allocate().unwrap(), &n, opts(false)).unwrap();
    let to = s.local_addr();
    let mut st = RtpStream::with_initial(0x1234, 100, 5000, 160);
    // The press starts, and its later packets and end are lost.
    let press = dtmf_packets(&mut st, 101, Digit::D5, 5000);
    phone.send_to(&press[0], to).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let t = Instant::now();
            let mut sent = 0u64;
            let mut pkt = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && t.elapsed() < Duration::from_secs(10)
            {
                st.build_packet(0, &[0xFF; 160], sent + 10, false, &mut pkt)
                    .unwrap();
                let _ = phone.send_to(&pkt, to);
                sent += 1;
            }
            sent
        }
    });
    let w = Duration::from_secs(3);
    assert_eq!(
        next_event(&mut ev, w).await,
        Some(MediaEvent::DigitStarted('5'))
    );
    assert!(
        matches!(
            next_event(&mut ev, w).await,
            Some(MediaEvent::DigitEnded { digit: '5', .. })
        ),
        "the press ends on its timer"
    );
    drop(s);
    let t = Instant::now();
    while p.available() == 0 && t.elapsed() < w {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.join().unwrap();
    println!("{sent} packets flooded; ports back after {:?}", t.elapsed());
    assert_eq!(p.available(), 1, "the receive task ended under the flood");
}

#[tokio::test]
async fn rfc4733_digits_reported_once() {
    let e = engine();
    let phone = peer("127.0.0.1").await;
    // PT 97, not 101: the engine must take it from the SDP.
    let n = params(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        Some(97),
        Direction::SendRecv,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts(false)).unwrap();
    let mut st = RtpStream::with_initial(0x1234, 100, 5000, 160);
    for p in dtmf_packets(&mut st, 97, Digit::D5, 5000) {
        phone.send_to(&p, s.local_addr()).await.unwrap();
    }
    // The same press on the wrong PT is not a digit.
    for p in dtmf_packets(&mut st, 101, Digit::D9, 9000) {
        phone.send_to(&p, s.local_addr()).await.unwrap();
    }
    let w = Duration::from_secs(1);
    assert_eq!(
        next_event(&mut ev, w).await,
        Some(MediaEvent::DigitStarted('5'))
    );
    assert_eq!(
        next_event(&mut ev, w).await,
        Some(MediaEvent::DigitEnded {
            digit: '5',
            duration: Duration::from_millis(100)
        })
    );
    assert_eq!(next_event(&mut ev, Duration::from_millis(400)).await, None);
    assert!(
        e.stats().snapshot().malformed >= 1,
        "PT 101 counted as unusable"
    );
}

#[tokio::test]
async fn latch_drops_foreign_sources_and_follows_the_real_one() {
    let e = engine();
    let sdp_sock = peer("127.0.0.1").await; // what the SDP says
    let real = peer("127.0.0.1").await; // where the phone really sends from (NAT)
    let foreign = peer("127.0.0.2").await;
    let same_host = peer("127.0.0.1").await;
    let n = params(
        sdp_sock.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        Direction::SendRecv,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts(true)).unwrap();
    let to = s.local_addr();
    let mut st = RtpStream::with_initial(1, 1, 0, 160);

    // An outsider sprays digits first: dropped, and it does not take the latch.
    for p in dtmf_packets(&mut st, 101, Digit::D1, 0) {
        foreign.send_to(&p, to).await.unwrap();
    }
    // The real phone's audio latches.
    let mut b = Vec::new();
    st.build_packet(0, &[0xFF; 160], 20, false, &mut b).unwrap();
    real.send_to(&b, to).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // After latching, even the SDP host's other ports are foreign.
    for p in dtmf_packets(&mut st, 101, Digit::D2, 4000) {
        same_host.send_to(&p, to).await.unwrap();
    }
    assert_eq!(next_event(&mut ev, Duration::from_millis(400)).await, None);
    let st_now = e.stats().snapshot();
    assert!(st_now.dropped_foreign >= 12, "{st_now:?}");
    assert_eq!(st_now.packets_received, 1);
    // Our media now goes to where the phone really is.
    drain(&real);
    assert!(recv(&real, Duration::from_secs(1)).await.is_some());
}

/// Issue 12: the soak's agent phones kept sending to a bridged leg's port
/// after the leg ended; the next log-in given that port latched to the
/// stray (same IP, another port) and dropped its caller's key. The stream
/// from the announced address takes the latch back and its key is heard.
#[tokio::test]
async fn a_stray_stream_on_a_reused_port_does_not_keep_the_callers_key_out() {
    let e = engine();
    let phone = peer("127.0.0.1").await; // the SDP address, sending for real
    let stray = peer("127.0.0.1").await; // the port's previous call, still talking
    let n = params(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        Direction::SendRecv,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts(true)).unwrap();
    let to = s.local_addr();
    let mut old = RtpStream::with_initial(7, 1, 0, 160);
    let mut b = Vec::new();
    old.build_packet(0, &[0xFF; 160], 20, false, &mut b)
        .unwrap();
    for _ in 0..3 {
        stray.send_to(&b, to).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut st = RtpStream::with_initial(0x1234, 100, 5000, 160);
    for p in dtmf_packets(&mut st, 101, Digit::D1, 5000) {
        phone.send_to(&p, to).await.unwrap();
    }
    let w = Duration::from_secs(1);
    assert_eq!(
        next_event(&mut ev, w).await,
        Some(MediaEvent::DigitStarted('1'))
    );
    // The stray, now foreign, is dropped; our media goes to the phone.
    stray.send_to(&b, to).await.unwrap();
    drain(&phone);
    assert!(recv(&phone, Duration::from_secs(1)).await.is_some());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(e.stats().snapshot().dropped_foreign >= 1);
}

#[tokio::test]
async fn rtp_timeout_reported_once_and_suspended_on_hold() {
    let e = engine();
    let phone = peer("127.0.0.1").await;
    let n = params(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        None,
        Direction::SendRecv,
    );
    let o = SessionOptions {
        rtp_timeout: Duration::from_millis(200),
        ..opts(false)
    };
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, o.clone()).unwrap();
    assert_eq!(
        next_event(&mut ev, Duration::from_secs(2)).await,
        Some(MediaEvent::RtpTimeout)
    );
    assert_eq!(next_event(&mut ev, Duration::from_millis(500)).await, None);
    drop(s);

    // On hold (the peer sent a=sendonly): no timeout, and we send nothing.
    let held = params(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        None,
        Direction::SendOnly,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, o).unwrap();
    s.update_remote(&held).unwrap();
    s.play(3, vec![tone(0.2, 500.0)]).unwrap();
    assert_eq!(
        next_event(&mut ev, Duration::from_secs(1)).await,
        Some(MediaEvent::PlaybackFinished(3)),
        "a prompt keeps time while held"
    );
    assert_eq!(next_event(&mut ev, Duration::from_millis(500)).await, None);
    drain(&phone);
    assert!(recv(&phone, Duration::from_millis(100)).await.is_none());
}

#[tokio::test]
async fn bridge_transcodes_remaps_and_continues_streams() {
    let e = engine();
    let ra = peer("127.0.0.1").await; // customer, PCMU, telephone-event 101
    let rb = peer("127.0.0.1").await; // agent, PCMA, telephone-event 96
    let na = params(
        ra.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        Direction::SendRecv,
    );
    let nb = params(
        rb.local_addr().unwrap(),
        Codec::Pcma,
        Some(96),
        Direction::SendRecv,
    );
    let (a, _ea) = e
        .open(pool().allocate().unwrap(), &na, opts(false))
        .unwrap();
    let (b, mut eb) = e
        .open(pool().allocate().unwrap(), &nb, opts(false))
        .unwrap();

    // A prompt on B first: the bridge must continue its sequence and timeline.
    b.play(1, vec![tone(0.06, 700.0)]).unwrap();
    let mut last_b = None;
    for _ in 0..3 {
        let (p, _) = recv(&rb, Duration::from_secs(1)).await.unwrap();
        last_b = Some(hdr(&p));
    }
    let last_b = last_b.unwrap();
    assert_eq!(
        next_event(&mut eb, Duration::from_secs(1)).await,
        Some(MediaEvent::PlaybackFinished(1))
    );

    let bridge = e.bridge(&a, &b).unwrap();
    assert!(matches!(
        b.play(2, vec![tone(0.1, 700.0)]),
        Err(MediaError::Bridged)
    ));
    assert!(matches!(e.bridge(&a, &b), Err(MediaError::Bridged)));
    tokio::time::sleep(Duration::from_millis(20)).await;

    let ulaw: Vec<u8> = (0..160).map(|i| (i * 3 % 256) as u8).collect();
    let mut cust = RtpStream::with_initial(0xC0FFEE, 40_000, 77, 160);
    for tick in 0..5 {
        let mut p = Vec::new();
        cust.build_packet(0, &ulaw, tick, false, &mut p).unwrap();
        ra.send_to(&p, a.local_addr()).await.unwrap();
    }
    for p in dtmf_packets(&mut cust, 101, Digit::Hash, 77 + 5 * 160)
        .iter()
        .take(1)
    {
        ra.send_to(p, a.local_addr()).await.unwrap();
    }
    let alaw: Vec<u8> = ulaw.iter().map(|&u| g711::ulaw_to_alaw(u)).collect();
    let mut prev: Option<Hdr> = None;
    for i in 0..5 {
        let (p, _) = recv(&rb, Duration::from_secs(1))
            .await
            .expect("relayed audio");
        let h = hdr(&p);
        assert_eq!((h.pt, h.ssrc), (8, b.ssrc()));
        assert_eq!(h.payload, alaw, "transcoded μ-law → A-law");
        assert_eq!(h.mark, i == 0);
        match &prev {
            None => {
                assert_eq!(
                    h.seq,
                    last_b.seq.wrapping_add(1),
                    "sequence continues the prompt"
                );
                let gap = h.ts.wrapping_sub(last_b.ts);
                assert!(
                    (160..8000 * 5).contains(&gap),
                    "timestamp moves on with the clock: {gap}"
                );
            }
            Some(pr) => {
                assert_eq!(h.seq, pr.seq.wrapping_add(1));
                assert_eq!(h.ts, pr.ts.wrapping_add(160));
            }
        }
        prev = Some(h);
    }
    let (p, _) = recv(&rb, Duration::from_secs(1))
        .await
        .expect("relayed event");
    let h = hdr(&p);
    assert_eq!(h.pt, 96, "telephone-event PT remapped 101 → 96");
    assert_eq!(
        TelephoneEventPayload::parse(&h.payload).unwrap().blocks[0].event,
        11
    );
    let prev = prev.unwrap();
    assert_eq!(
        (h.seq, h.ts),
        (prev.seq.wrapping_add(1), prev.ts.wrapping_add(160))
    );

    // The other way: agent's A-law reaches the customer as μ-law from A's SSRC.
    let mut agent = RtpStream::with_initial(0xA6E7, 9, 1, 160);
    let mut p = Vec::new();
    agent.build_packet(8, &alaw, 0, false, &mut p).unwrap();
    rb.send_to(&p, b.local_addr()).await.unwrap();
    let (p, _) = recv(&ra, Duration::from_secs(1))
        .await
        .expect("relayed to A");
    let h = hdr(&p);
    assert_eq!((h.pt, h.ssrc, h.mark), (0, a.ssrc(), true));
    let back: Vec<u8> = alaw.iter().map(|&x| g711::alaw_to_ulaw(x)).collect();
    assert_eq!(h.payload, back);

    // Unbridged: prompts again, same SSRC, sequence continues after the relayed packets.
    bridge.unbridge();
    b.play(4, vec![tone(0.04, 700.0)]).unwrap();
    let (p, _) = recv(&rb, Duration::from_secs(1)).await.unwrap();
    let h = hdr(&p);
    assert_eq!((h.pt, h.ssrc, h.mark), (8, b.ssrc(), true));
    assert_eq!(h.seq, prev.seq.wrapping_add(2));
    assert!(e.stats().snapshot().relayed >= 7);
}

#[tokio::test]
async fn send_dtmf_produces_rfc4733_packets() {
    let e = engine();
    let pbx = peer("127.0.0.1").await;
    let n = params(
        pbx.local_addr().unwrap(),
        Codec::Pcmu,
        Some(98),
        Direction::SendRecv,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts(false)).unwrap();
    assert!(matches!(
        s.send_dtmf("1x", Duration::ZERO),
        Err(MediaError::InvalidDigit('x'))
    ));
    s.send_dtmf("1#", Duration::from_millis(40)).unwrap();
    let mut presses: Vec<Vec<(Hdr, EventBlock)>> = Vec::new();
    let mut last_ts = None;
    // 100 ms tones: 4 updates + 3 end packets each.
    for _ in 0..14 {
        let (p, _) = recv(&pbx, Duration::from_secs(1))
            .await
            .expect("event packet");
        let h = hdr(&p);
        assert_eq!(h.pt, 98);
        let block = TelephoneEventPayload::parse(&h.payload).unwrap().blocks[0];
        if last_ts != Some(h.ts) {
            presses.push(Vec::new());
            last_ts = Some(h.ts);
        }
        presses.last_mut().unwrap().push((h, block));
    }
    assert_eq!(presses.len(), 2);
    for (press, code) in presses.iter().zip([1u8, 11]) {
        assert_eq!(press.len(), 7);
        for (i, (h, blk)) in press.iter().enumerate() {
            assert_eq!(blk.event, code);
            assert_eq!(h.mark, i == 0, "marker on the first packet of the event");
            assert_eq!(blk.end, i >= 4, "E bit on the last three");
            let want = if i >= 4 { 800 } else { 160 * (i as u16 + 1) };
            assert_eq!(blk.duration, want);
            if i > 0 {
                assert_eq!(h.seq, press[i - 1].0.seq.wrapping_add(1));
            }
        }
    }
    // The second press starts after the 100 ms gap, on the same timeline.
    let gap = presses[1][0].0.ts.wrapping_sub(presses[0][0].0.ts);
    assert_eq!(gap, 160 * (7 + 5));
    assert_eq!(
        next_event(&mut ev, Duration::from_secs(1)).await,
        Some(MediaEvent::DtmfSent)
    );

    // A peer without telephone-event: an error event, nothing sent.
    let plain = params(
        pbx.local_addr().unwrap(),
        Codec::Pcmu,
        None,
        Direction::SendRecv,
    );
    s.update_remote(&plain).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.send_dtmf("5", Duration::ZERO).unwrap();
    assert_eq!(
        next_event(&mut ev, Duration::from_secs(1)).await,
        Some(MediaEvent::DtmfFailed(DtmfFailure::NoTelephoneEvent))
    );
}

#[tokio::test]
async fn closing_returns_the_ports() {
    let e = engine();
    let phone = peer("127.0.0.1").await;
    let n = params(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        None,
        Direction::SendRecv,
    );
    let p = PortPool::new("127.0.0.1".parse().unwrap(), 41900, 41901);
    let (s, _ev) = e.open(p.allocate().unwrap(), &n, opts(true)).unwrap();
    assert_eq!(p.available(), 0);
    s.close();
    assert!(s.play(1, vec![]).is_err());
    drop(s);
    let t0 = Instant::now();
    while p.available() == 0 && t0.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        p.available(),
        1,
        "port returned once thread and task let go"
    );
    assert!(p.allocate().is_ok(), "and it can be bound again");
}

/// A bridged leg is left to its relay: the pacing thread serves it only for
/// its RTCP reports (5 s apart here). Ending the bridge brings its silence
/// back at the next tick, and a leg that hung up gives its ports back as soon
/// as its bridge ends, not at its next report.
#[tokio::test]
async fn a_bridged_leg_waits_for_its_report_but_not_to_resume_or_hang_up() {
    let e = engine();
    let pa = peer("127.0.0.1").await;
    let pb = peer("127.0.0.1").await;
    let p = PortPool::new("127.0.0.1".parse().unwrap(), 41910, 41913);
    let open = |phone: &UdpSocket| {
        let n = params(
            phone.local_addr().unwrap(),
            Codec::Pcmu,
            None,
            Direction::SendRecv,
        );
        e.open(p.allocate().unwrap(), &n, opts(true)).unwrap()
    };
    let ((a, _ea), (b, _eb)) = (open(&pa), open(&pb));
    assert!(recv(&pa, Duration::from_secs(1)).await.is_some(), "silence");

    let bridge = e.bridge(&a, &b).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(a.shared.tx().deferred && b.shared.tx().deferred);
    drain(&pa);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(drain(&pa), 0, "nobody talks: nothing to relay, no silence");

    bridge.unbridge();
    let t = Instant::now();
    let (pkt, at) = recv(&pa, Duration::from_secs(1))
        .await
        .expect("silence again after the bridge");
    assert_eq!(hdr(&pkt).payload, vec![0xFF; 160]);
    println!("silence back {:?} after the bridge ended", at - t);
    assert!(!a.shared.tx().deferred);

    let bridge = e.bridge(&a, &b).unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(a.shared.tx().deferred && b.shared.tx().deferred);
    // Both hang up, then the call ends the bridge, which held both sessions.
    drop((a, b));
    drop(bridge);
    let t = Instant::now();
    while p.available() < 2 && t.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(p.available(), 2, "both legs' ports back within a second");
}

#[tokio::test]
async fn rtcp_reports_go_out_and_inbound_rtcp_keeps_the_call_alive() {
    let cfg = EngineConfig {
        rtcp_interval: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let e = MediaEngine::start(cfg).unwrap();
    // The phone: an RTP/RTCP pair on adjacent ports, as RFC 3550 §11 expects.
    let phone = pool().allocate().unwrap();
    let n = params(phone.local, Codec::Pcmu, None, Direction::SendRecv);
    let o = SessionOptions {
        rtp_timeout: Duration::from_millis(300),
        ..opts(true)
    };
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, o).unwrap();
    let our_rtcp = SocketAddr::new(s.local_addr().ip(), s.local_addr().port() + 1);
    let (sr, _) = recv(&phone.rtcp, Duration::from_secs(2))
        .await
        .expect("RTCP report");
    let summary = crate::media::rtcp::inspect_rtcp(&sr).unwrap();
    use crate::media::rtcp::RtcpPacketType as T;
    assert_eq!(summary.types, [T::SenderReport, T::SourceDescription]);
    assert_eq!(summary.sender_ssrc, Some(s.ssrc()));
    // The phone sends only RTCP (e.g. VAD silence): no timeout for 3 timeouts' worth.
    let mut rr = vec![0x80, 201, 0, 1];
    rr.extend_from_slice(&0x5151_u32.to_be_bytes());
    crate::media::rtcp::write_sdes_cname(0x5151, "phone", &mut rr);
    for _ in 0..9 {
        phone.rtcp.send_to(&rr, our_rtcp).unwrap();
        assert_eq!(next_event(&mut ev, Duration::from_millis(100)).await, None);
    }
    assert!(e.stats().snapshot().rtcp_received >= 9);
    // Then it stops: the timeout fires.
    assert_eq!(
        next_event(&mut ev, Duration::from_secs(2)).await,
        Some(MediaEvent::RtpTimeout)
    );
}

#[tokio::test]
async fn rtcp_reports_what_arrives_and_the_loss_is_counted_at_the_end() {
    use crate::media::rtcp::{write_sdes_cname, write_sender_report, NtpTime};
    let cfg = EngineConfig {
        rtcp_interval: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let e = MediaEngine::start(cfg).unwrap();
    let phone = pool().allocate().unwrap();
    let n = params(phone.local, Codec::Pcmu, None, Direction::SendRecv);
    // No silence frames: we send no RTP, so our reports are RRs (RFC 3550 §6.4.2).
    let (s, _ev) = e.open(pool().allocate().unwrap(), &n, opts(false)).unwrap();
    let our_rtcp = SocketAddr::new(s.local_addr().ip(), s.local_addr().port() + 1);
    // The phone sends 10..=29 but 15 and 20 never arrive; then an SR.
    let mut stream = RtpStream::with_initial(0x7070, 10, 0, 160);
    let mut pkt = Vec::new();
    for tick in 0..20u64 {
        stream
            .build_packet(0, &[0xFF; 160], tick, false, &mut pkt)
            .unwrap();
        if ![15, 20].contains(&hdr(&pkt).seq) {
            phone.rtp.send_to(&pkt, s.local_addr()).unwrap();
        }
    }
    let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let mut sr = Vec::new();
    write_sender_report(0x7070, ntp, 0, 20, 3200, None, &mut sr);
    write_sdes_cname(0x7070, "phone", &mut sr);
    phone.rtcp.send_to(&sr, our_rtcp).unwrap();
    // A report that has seen all of it: RC = 1, the block about 0x7070.
    let t0 = Instant::now();
    let block = loop {
        assert!(t0.elapsed() < Duration::from_secs(3), "no report block");
        let Some((r, _)) = recv(&phone.rtcp, Duration::from_secs(1)).await else {
            continue;
        };
        assert_eq!(r[1], 201, "a receiver report: we sent no RTP");
        // RTP and RTCP arrive on two sockets: wait for a report that has seen both.
        let seen_all = r[16..20] == 29_u32.to_be_bytes() && r[24..28] != [0; 4];
        if r[0] & 0x1F == 1 && r[8..12] == 0x7070_u32.to_be_bytes() && seen_all {
            break r[8..32].to_vec();
        }
    };
    let word = |i: usize| u32::from_be_bytes([block[i], block[i + 1], block[i + 2], block[i + 3]]);
    assert_eq!(word(4) & 0x00FF_FFFF, 2, "cumulative lost");
    assert_eq!(word(8), 29, "extended highest sequence number");
    assert_eq!(word(16), ntp.middle32(), "LSR echoes the phone's SR");
    // At the end the session's loss goes to the engine's counter (and the call's log).
    s.close();
    drop(s);
    let t0 = Instant::now();
    while e.stats().snapshot().packets_lost == 0 && t0.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.stats().snapshot().packets_lost, 2);
}

#[tokio::test]
async fn inband_tones_are_detected_when_enabled() {
    let e = engine();
    let phone = peer("127.0.0.1").await;
    let n = params(
        phone.local_addr().unwrap(),
        Codec::Pcma,
        None,
        Direction::SendRecv,
    );
    let o = SessionOptions {
        inband_dtmf: true,
        ..opts(false)
    };
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, o).unwrap();
    // '6': 770 Hz + 1477 Hz for 100 ms, then 100 ms of silence, as A-law RTP.
    let pcm: Vec<i16> = (0..1600)
        .map(|i| {
            if i >= 800 {
                return 0;
            }
            let t = i as f32 / 8000.0;
            let tau = std::f32::consts::TAU;
            (((tau * 770.0 * t).sin() + (tau * 1477.0 * t).sin()) * 6000.0) as i16
        })
        .collect();
    let mut st = RtpStream::with_initial(3, 1, 0, 160);
    for (tick, chunk) in pcm.chunks(160).enumerate() {
        let mut frame = Vec::new();
        g711::encode(Codec::Pcma, chunk, &mut frame);
        let mut b = Vec::new();
        st.build_packet(8, &frame, tick as u64, false, &mut b)
            .unwrap();
        phone.send_to(&b, s.local_addr()).await.unwrap();
    }
    let w = Duration::from_secs(1);
    assert_eq!(
        next_event(&mut ev, w).await,
        Some(MediaEvent::DigitStarted('6'))
    );
    assert_eq!(
        next_event(&mut ev, w).await,
        Some(MediaEvent::DigitEnded {
            digit: '6',
            duration: Duration::ZERO
        })
    );
    assert_eq!(next_event(&mut ev, Duration::from_millis(200)).await, None);
}

#[tokio::test]
async fn rtp_started_is_reported_once() {
    let e = engine();
    let phone = peer("127.0.0.1").await;
    let n = params(
        phone.local_addr().unwrap(),
        Codec::Pcmu,
        Some(101),
        Direction::SendRecv,
    );
    let (s, mut ev) = e.open(pool().allocate().unwrap(), &n, opts(false)).unwrap();
    let mut st = RtpStream::with_initial(0x4321, 10, 1000, 160);
    for tick in 0..3 {
        let mut b = Vec::new();
        st.build_packet(0, &[0xFF; 160], tick, false, &mut b)
            .unwrap();
        phone.send_to(&b, s.local_addr()).await.unwrap();
    }
    let w = Duration::from_millis(500);
    assert_eq!(
        timeout(w, ev.recv()).await.ok().flatten(),
        Some(MediaEvent::RtpStarted)
    );
    // Once only.
    assert_eq!(
        timeout(Duration::from_millis(200), ev.recv())
            .await
            .ok()
            .flatten(),
        None
    );
}

/// The receive task's requests (`shared::Control`) are a state: the latest
/// of each kind wins, the end of a bridge the task never took cancels it,
/// a late end of an older bridge does not cancel a newer one, a request
/// made while the task is busy wakes it later, and a bridge nobody takes
/// does not keep its peer alive.
#[tokio::test]
async fn control_keeps_the_latest_request_of_each_kind_and_holds_no_peer() {
    let now = Instant::now();
    let first = params(
        "127.0.0.1:40000".parse().unwrap(),
        Codec::Pcmu,
        Some(101),
        Direction::SendRecv,
    );
    let second = params(
        "127.0.0.1:40002".parse().unwrap(),
        Codec::Pcma,
        None,
        Direction::SendOnly,
    );
    let (a, _a_events) = fuzzing::shared(pool(), &first, now).expect("ports");
    let (b, _b_events) = fuzzing::shared(pool(), &first, now).expect("ports");
    let control = &a.control;

    // Two re-INVITEs before the task looks, then a bridge that ended first.
    control.set_remote(first.clone());
    control.set_remote(second.clone());
    control.bridge(&b, 5);
    control.unbridged(5);
    // The requests woke the task even though it was not waiting yet.
    timeout(Duration::from_secs(5), control.changed())
        .await
        .expect("a request made before the wait wakes it");
    let p = control.take();
    assert_eq!(p.remote.as_deref(), Some(&second));
    assert!(p.bridge.is_none(), "bridge 5 ended before the task took it");
    assert!(p.unbridged);
    let p = control.take();
    assert!(
        p.remote.is_none() && p.bridge.is_none() && !p.unbridged,
        "taken once"
    );

    // The end of bridge 5 arriving after bridge 6 leaves bridge 6 to take.
    control.bridge(&b, 6);
    control.unbridged(5);
    let p = control.take();
    let (peer, id) = p.bridge.expect("bridge 6");
    assert_eq!(id, 6);
    assert!(peer.upgrade().is_some_and(|peer| Arc::ptr_eq(&peer, &b)));

    // A bridge never taken holds its peer weakly: no cycle between sessions.
    control.bridge(&b, 7);
    b.control.bridge(&a, 7);
    let gone = Arc::downgrade(&b);
    drop(b);
    drop(_b_events);
    assert!(
        gone.upgrade().is_none(),
        "a pending bridge kept its peer alive"
    );
}
