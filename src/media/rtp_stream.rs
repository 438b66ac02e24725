//! Outbound RTP stream state: SSRC, sequence numbers, timestamps derived from pacer ticks,
//! talkspurt marker bits, and sender statistics for RTCP.
//!
//! Packets are written with `rtp-rs`'s `RtpPacketBuilder`. rtp-rs only builds into a slice,
//! so the output `Vec` is resized (zero-filled) before each build; it has no RTCP support,
//! hence the hand-written [`super::rtcp`].

use rand::Rng;
use rtp_rs::{RtpPacketBuilder, Seq};

/// Why an RTP packet could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpBuildError {
    #[error(
        "RTP payload type {0} is outside 0-127 (RFC 3550 §5.1); check the payload type \
         negotiated in the SDP"
    )]
    PayloadType(u8),
    /// rtp-rs refused the packet (its error type is not `Clone`, so it is kept as text).
    #[error("could not build RTP packet: {0}")]
    Builder(String),
}

/// State of one outbound RTP stream (one SSRC).
#[derive(Debug, Clone)]
pub struct RtpStream {
    ssrc: u32,
    next_seq: u16,
    ts_base: u32,
    samples_per_tick: u32,
    last_tick: Option<u64>,
    last_timestamp: Option<u32>,
}

impl RtpStream {
    /// A stream with random SSRC, initial sequence number and initial timestamp, as RFC 3550
    /// §5.1 asks (unpredictable starting points make known-plaintext attacks harder and keep
    /// streams of restarted calls apart). `samples_per_tick` is 160 for 20 ms at 8 kHz.
    pub fn new<R: Rng + ?Sized>(rng: &mut R, samples_per_tick: u32) -> Self {
        let ssrc = rng.next_u32();
        let seq = (rng.next_u32() >> 16) as u16;
        let ts = rng.next_u32();
        Self::with_initial(ssrc, seq, ts, samples_per_tick)
    }

    /// [`RtpStream::new`] with the thread-local generator.
    pub fn random(samples_per_tick: u32) -> Self {
        Self::new(&mut rand::rng(), samples_per_tick)
    }

    /// A stream with fixed starting values (tests, or continuing a known stream).
    pub fn with_initial(ssrc: u32, first_seq: u16, ts_base: u32, samples_per_tick: u32) -> Self {
        RtpStream {
            ssrc,
            next_seq: first_seq,
            ts_base,
            samples_per_tick,
            last_tick: None,
            last_timestamp: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sequence number the next packet will carry.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// RTP timestamp of pacer tick `tick`: the ideal schedule, so timestamps never drift from
    /// the sample clock whatever the wake-up jitter. Wraps modulo 2^32 (RFC 3550 §5.1).
    pub fn timestamp_for_tick(&self, tick: u64) -> u32 {
        let offset = tick.wrapping_mul(u64::from(self.samples_per_tick)) as u32;
        self.ts_base.wrapping_add(offset)
    }

    /// Timestamp of the last packet sent (for RTCP sender reports).
    pub fn last_timestamp(&self) -> Option<u32> {
        self.last_timestamp
    }

    /// Build the audio packet for pacer `tick` into `out` (cleared first).
    ///
    /// The marker bit is set when `marker` is true, on the stream's first packet, and on the
    /// first packet after ticks that sent nothing (silence suppression, a pause, skipped
    /// ticks): RFC 3551 §4.1 marks the first packet of each talkspurt.
    pub fn build_packet(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        tick: u64,
        marker: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), RtpBuildError> {
        let talkspurt = self.last_tick.is_none_or(|t| tick != t.wrapping_add(1));
        let ts = self.timestamp_for_tick(tick);
        self.build(payload_type, payload, tick, ts, marker || talkspurt, out)
    }

    /// Build a packet with an explicit timestamp, sent on pacer `tick`: telephone-event
    /// packets carry the event's start timestamp in every packet (RFC 4733 §2.5.1.2), and
    /// their marker is the event's own (set only on its first packet).
    pub fn build_event_packet(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        tick: u64,
        timestamp: u32,
        marker: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), RtpBuildError> {
        self.build(payload_type, payload, tick, timestamp, marker, out)
    }

    fn build(
        &mut self,
        payload_type: u8,
        payload: &[u8],
        tick: u64,
        ts: u32,
        marker: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), RtpBuildError> {
        if payload_type > 127 {
            return Err(RtpBuildError::PayloadType(payload_type));
        }
        let builder = RtpPacketBuilder::new()
            .payload_type(payload_type)
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.next_seq))
            .timestamp(ts)
            .marked(marker)
            .payload(payload);
        out.clear();
        out.resize(builder.target_length(), 0);
        let len = builder
            .build_into(out)
            .map_err(|e| RtpBuildError::Builder(format!("{e:?}")))?;
        out.truncate(len);
        // Only a packet actually built advances the stream.
        self.next_seq = self.next_seq.wrapping_add(1);
        self.last_tick = Some(tick);
        self.last_timestamp = Some(ts);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rtp_rs::RtpReader;

    #[test]
    fn packets_follow_ticks() {
        let mut s = RtpStream::with_initial(0xDEAD_BEEF, 65534, u32::MAX - 200, 160);
        let mut out = Vec::new();
        let payload = [0xFFu8; 160];
        let mut got = Vec::new();
        for tick in 0..4 {
            s.build_packet(0, &payload, tick, false, &mut out).unwrap();
            assert_eq!(out.len(), 12 + 160);
            let r = RtpReader::new(&out).unwrap();
            got.push((u16::from(r.sequence_number()), r.timestamp(), r.mark()));
            assert_eq!(r.ssrc(), 0xDEAD_BEEF);
            assert_eq!(r.payload_type(), 0);
            assert_eq!(r.version(), 2);
            assert_eq!(r.payload(), &payload[..]);
        }
        // Sequence and timestamp both wrap; only the first packet is marked.
        assert_eq!(
            got,
            [
                (65534, u32::MAX - 200, true),
                (65535, u32::MAX - 40, false),
                (0, 119, false),
                (1, 279, false)
            ]
        );
        assert_eq!(s.last_timestamp(), Some(279));
    }

    #[test]
    fn marker_on_each_talkspurt() {
        let mut s = RtpStream::with_initial(1, 100, 0, 160);
        let mut out = Vec::new();
        let mut marks = Vec::new();
        // Ticks 0-2 talk, 3-5 silence suppressed, 6-7 talk, then an explicit marker.
        for (tick, force) in [
            (0, false),
            (1, false),
            (2, false),
            (6, false),
            (7, false),
            (8, true),
        ] {
            s.build_packet(8, &[0xD5; 160], tick, force, &mut out)
                .unwrap();
            let r = RtpReader::new(&out).unwrap();
            marks.push((r.mark(), r.timestamp(), u16::from(r.sequence_number())));
        }
        assert_eq!(
            marks,
            [
                (true, 0, 100),
                (false, 160, 101),
                (false, 320, 102),
                // Timestamp jumps with the gap; the sequence number does not (§5.1).
                (true, 960, 103),
                (false, 1120, 104),
                (true, 1280, 105)
            ]
        );
    }

    #[test]
    fn event_packets_keep_their_timestamp_and_sequence() {
        let mut s = RtpStream::with_initial(1, 10, 1000, 160);
        let mut out = Vec::new();
        s.build_packet(0, &[0; 160], 0, false, &mut out).unwrap();
        s.build_event_packet(101, &[5, 10, 0, 160], 1, 1160, true, &mut out)
            .unwrap();
        s.build_event_packet(101, &[5, 10, 1, 64], 2, 1160, false, &mut out)
            .unwrap();
        let r = RtpReader::new(&out).unwrap();
        assert_eq!(
            (r.timestamp(), r.mark(), r.payload_type()),
            (1160, false, 101)
        );
        assert_eq!(u16::from(r.sequence_number()), 12);
        // Audio resumes on the next tick: contiguous, no marker.
        s.build_packet(0, &[0; 160], 3, false, &mut out).unwrap();
        let r = RtpReader::new(&out).unwrap();
        assert_eq!((r.timestamp(), r.mark()), (1480, false));
    }

    #[test]
    fn bad_payload_type_is_an_error_and_changes_nothing() {
        let mut s = RtpStream::with_initial(1, 10, 0, 160);
        let mut out = Vec::new();
        let err = s
            .build_packet(200, &[0; 4], 0, false, &mut out)
            .unwrap_err();
        assert_eq!(err, RtpBuildError::PayloadType(200));
        assert!(err.to_string().contains("SDP"));
        assert_eq!((s.next_seq(), s.last_timestamp()), (10, None));
    }

    #[test]
    fn random_starting_points_differ() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = RtpStream::new(&mut rng, 160);
        let b = RtpStream::new(&mut rng, 160);
        assert_ne!(a.ssrc(), b.ssrc());
        assert_ne!(a.timestamp_for_tick(0), b.timestamp_for_tick(0));
        let c = RtpStream::random(160);
        assert_eq!(
            c.timestamp_for_tick(3),
            c.timestamp_for_tick(0).wrapping_add(480)
        );
    }

    #[test]
    fn timestamp_for_huge_tick_wraps() {
        let s = RtpStream::with_initial(1, 0, 5, 160);
        // 2^32 / 160 ticks after the start the timestamp is back where it began (+ wrap).
        let period = (1u64 << 32) / 32; // 160 = 32 * 5: 2^27 ticks * 160 = 5 * 2^32
        assert_eq!(s.timestamp_for_tick(period), 5);
        assert_eq!(s.timestamp_for_tick(1), 165);
    }
}
