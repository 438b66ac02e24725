//! Reception statistics of one RTP source, as RFC 3550 Appendix A specifies them: sequence
//! validation and wrap counting (A.1), expected/lost packets and the fraction lost per
//! report interval (A.3), interarrival jitter (A.8), and the last-SR fields (§6.4.1). They
//! fill the report block of our RTCP reports and the call's media-quality summary.
//!
//! Sans-IO: packets and their arrival instants go in; report blocks come out.

use std::time::{Duration, Instant};

const RTP_SEQ_MOD: u32 = 1 << 16;
/// A.1: a jump forward of less than this is packet loss, not a restarted source.
const MAX_DROPOUT: u16 = 3000;
/// A.1: a jump backward of up to this is a late packet.
const MAX_MISORDER: u16 = 100;
/// A.1: a new source is believed after this many packets in sequence.
const MIN_SEQUENTIAL: u8 = 2;

/// One report block (RFC 3550 §6.4.1), about the source we receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Lost / expected since the previous report, as a fixed-point fraction of 256.
    pub fraction_lost: u8,
    /// Cumulative lost (expected − received), clamped to the signed 24-bit field.
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the source's last SR, 0 if none.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s, 0 if none.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// The 24-byte wire form.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        // 24-bit two's complement, after the 8-bit fraction (§6.4.1).
        let lost = (self.cumulative_lost as u32) & 0x00FF_FFFF;
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        for word in [
            self.extended_highest_seq,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }
}

/// Totals over the whole session (every source it had), for the call-end log and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReceptionSummary {
    pub received: u64,
    /// Expected minus received; never negative here (duplicates do not cancel loss).
    pub lost: u64,
    /// Jitter of the last source, in milliseconds.
    pub jitter_ms: f64,
}

impl ReceptionSummary {
    /// Lost as a share of expected, in per cent.
    pub fn loss_percent(&self) -> f64 {
        let expected = self.received + self.lost;
        if expected == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / expected as f64
        }
    }
}

/// A.1 state of the current source.
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// A.8, in timestamp units (kept as f64: the estimator is a running average).
    jitter: f64,
    prev_transit: Option<i64>,
    last_sr: Option<(u32, Instant)>,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Self {
        // A.1: a new source is on probation; its first packet only primes max_seq.
        Source {
            ssrc,
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter: 0.0,
            prev_transit: None,
            last_sr: None,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A.1 `update_seq`: whether the packet counts.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: believe it only when the next packet follows it (the
            // sender restarted its sequence without changing SSRC).
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        }
        // Otherwise a duplicate or late packet: counted, max_seq unchanged.
        self.received = self.received.wrapping_add(1);
        true
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u32 {
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    fn lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    fn valid(&self) -> bool {
        self.probation == 0
    }
}

/// Reception statistics of a session: the current source, plus totals of earlier ones.
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    clock_rate: u32,
    /// Arrival times are measured from here (any fixed instant works, A.8).
    epoch: Instant,
    source: Option<Source>,
    /// An SR that came before any RTP (RTP and RTCP arrive on two sockets, in either
    /// order): kept for the source it names.
    early_sr: Option<(u32, u32, Instant)>,
    earlier_received: u64,
    earlier_lost: u64,
}

impl ReceptionStats {
    pub fn new(clock_rate: u32, epoch: Instant) -> Self {
        ReceptionStats {
            clock_rate,
            epoch,
            source: None,
            early_sr: None,
            earlier_received: 0,
            earlier_lost: 0,
        }
    }

    /// An RTP packet of `ssrc` arrived at `arrival`. `timed` is false for packets whose
    /// timestamp does not advance with their sending time: every packet of an RFC 4733
    /// event carries the event's start (§2.5.1.2), so they would read as jitter.
    pub fn on_packet(
        &mut self,
        ssrc: u32,
        seq: u16,
        rtp_timestamp: u32,
        arrival: Instant,
        timed: bool,
    ) {
        if self.source.as_ref().is_none_or(|s| s.ssrc != ssrc) {
            // A new SSRC is a new source (§8.2): keep what the old one lost and start over.
            if let Some(old) = self.source.take() {
                self.earlier_received += u64::from(old.received);
                self.earlier_lost += u64::try_from(old.lost()).unwrap_or(0);
            }
            let mut source = Source::new(ssrc, seq);
            source.last_sr = self
                .early_sr
                .take()
                .filter(|(sr_ssrc, ..)| *sr_ssrc == ssrc)
                .map(|(_, ntp, at)| (ntp, at));
            self.source = Some(source);
        }
        let Some(s) = self.source.as_mut() else {
            return;
        };
        if !s.update_seq(seq) || !timed {
            return;
        }
        // A.8: transit time in timestamp units; its change between packets feeds the jitter.
        let since = arrival.saturating_duration_since(self.epoch);
        // In u64 (no u128 division on the per-packet path); wraps only after centuries.
        let rate = u64::from(self.clock_rate);
        let arrival_ts = since
            .as_secs()
            .wrapping_mul(rate)
            .wrapping_add(u64::from(since.subsec_nanos()) * rate / 1_000_000_000)
            as i64;
        let transit = arrival_ts - i64::from(rtp_timestamp);
        if let Some(prev) = s.prev_transit {
            // Timestamps wrap at 2^32: the difference is taken modulo, as a signed value.
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            s.jitter += (f64::from(d) - s.jitter) / 16.0;
        }
        s.prev_transit = Some(transit);
    }

    /// The source sent an SR whose NTP timestamp's middle 32 bits are `ntp_middle32`.
    pub fn on_sender_report(&mut self, ssrc: u32, ntp_middle32: u32, arrival: Instant) {
        match self.source.as_mut() {
            Some(s) if s.ssrc == ssrc => s.last_sr = Some((ntp_middle32, arrival)),
            Some(_) => {}
            None => self.early_sr = Some((ssrc, ntp_middle32, arrival)),
        }
    }

    /// The report block for a report sent at `now`; starts the next report interval (the
    /// fraction lost is per interval, A.3). `None` until a source is validated.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let s = self.source.as_mut().filter(|s| s.valid())?;
        let expected = s.expected();
        let expected_interval = expected.wrapping_sub(s.expected_prior);
        s.expected_prior = expected;
        let received_interval = s.received.wrapping_sub(s.received_prior);
        s.received_prior = s.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match s.last_sr {
            Some((lsr, at)) => (lsr, to_1_65536(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: s.ssrc,
            fraction_lost,
            cumulative_lost: s.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_seq: s.extended_max(),
            jitter: s.jitter as u32,
            last_sr,
            delay_since_last_sr,
        })
    }

    /// Totals over every source so far.
    pub fn summary(&self) -> ReceptionSummary {
        let (received, lost, jitter) = match &self.source {
            Some(s) => (
                u64::from(s.received),
                u64::try_from(s.lost()).unwrap_or(0),
                s.jitter,
            ),
            None => (0, 0, 0.0),
        };
        ReceptionSummary {
            received: self.earlier_received + received,
            lost: self.earlier_lost + lost,
            jitter_ms: jitter * 1000.0 / f64::from(self.clock_rate.max(1)),
        }
    }
}

/// A duration in the 1/65536 s units of DLSR, saturating.
fn to_1_65536(d: Duration) -> u32 {
    u32::try_from(d.as_nanos() * 65_536 / 1_000_000_000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS20: Duration = Duration::from_millis(20);

    /// Feeds `seqs` from one source, 20 ms apart with matching timestamps (no jitter).
    fn feed(stats: &mut ReceptionStats, t0: Instant, seqs: &[u16]) {
        for (i, &seq) in seqs.iter().enumerate() {
            let at = t0 + MS20 * i as u32;
            stats.on_packet(0xAB, seq, 160 * u32::from(seq), at, true);
        }
    }

    #[test]
    fn a_new_source_is_believed_after_two_packets_in_sequence() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        r.on_packet(1, 100, 0, t0, true);
        assert_eq!(r.report_block(t0), None, "one packet is still on probation");
        r.on_packet(1, 101, 160, t0 + MS20, true);
        let b = r.report_block(t0 + MS20).expect("validated");
        assert_eq!(
            (b.ssrc, b.extended_highest_seq, b.cumulative_lost),
            (1, 101, 0)
        );
        assert_eq!(
            r.summary().received,
            1,
            "A.1 counts from the packet that validates"
        );
    }

    #[test]
    fn loss_is_counted_per_interval_and_in_total() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        // Packet 0 primes probation, 1 validates: from base 1 to 10, 4 and 7 are missing.
        feed(&mut r, t0, &[0, 1, 2, 3, 5, 6, 8, 9, 10]);
        let b = r.report_block(t0).expect("valid");
        assert_eq!(b.extended_highest_seq, 10);
        assert_eq!(b.cumulative_lost, 2);
        // 2 of 10 expected = 51.2/256.
        assert_eq!(b.fraction_lost, 51);
        // Next interval: 11..=20 all there: nothing lost in it, the total stays.
        let more: Vec<u16> = (11..=20).collect();
        feed(&mut r, t0, &more);
        let b = r.report_block(t0).expect("valid");
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 2));
        let sum = r.summary();
        assert_eq!((sum.received, sum.lost), (18, 2));
        assert!((sum.loss_percent() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn sequence_wrap_extends_the_highest_number() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        feed(&mut r, t0, &[65533, 65534, 65535, 0, 1]);
        let b = r.report_block(t0).expect("valid");
        assert_eq!(b.extended_highest_seq, (1 << 16) + 1);
        assert_eq!(b.cumulative_lost, 0);
    }

    #[test]
    fn late_and_duplicate_packets_do_not_move_the_highest_number() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        feed(&mut r, t0, &[1, 2, 3, 5, 4, 5]);
        let b = r.report_block(t0).expect("valid");
        assert_eq!(b.extended_highest_seq, 5);
        // Duplicates count as received (A.3), so loss can go negative; the field is signed.
        assert_eq!(b.cumulative_lost, -1);
        assert_eq!(b.fraction_lost, 0);
        assert_eq!(r.summary().lost, 0);
    }

    #[test]
    fn a_restarted_sequence_is_believed_on_its_second_packet() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        feed(&mut r, t0, &[1, 2, 3, 40_000]);
        assert_eq!(r.report_block(t0).expect("valid").extended_highest_seq, 3);
        feed(&mut r, t0, &[40_001, 40_002]);
        let b = r.report_block(t0).expect("valid");
        assert_eq!((b.extended_highest_seq, b.cumulative_lost), (40_002, 0));
    }

    #[test]
    fn jitter_follows_a_8() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        // Perfectly paced: no jitter.
        feed(&mut r, t0, &[0, 1, 2, 3]);
        assert_eq!(r.report_block(t0).expect("valid").jitter, 0);
        // One packet 10 ms late (80 timestamp units): J += (80 - J) / 16 = 5, then the next
        // on time is 80 units early against it: J = 5 + (80 - 5) / 16 = 9.6875.
        r.on_packet(
            0xAB,
            4,
            640,
            t0 + MS20 * 4 + Duration::from_millis(10),
            true,
        );
        assert_eq!(r.report_block(t0).expect("valid").jitter, 5);
        r.on_packet(0xAB, 5, 800, t0 + MS20 * 5, true);
        assert_eq!(r.report_block(t0).expect("valid").jitter, 9);
        let ms = r.summary().jitter_ms;
        assert!((ms - 9.6875 / 8.0).abs() < 1e-9, "{ms}");
        // Event packets repeat their start timestamp: counted, but not jitter.
        for k in 0..3u16 {
            r.on_packet(0xAB, 6 + k, 960, t0 + MS20 * (6 + u32::from(k)), false);
        }
        let b = r.report_block(t0).expect("valid");
        assert_eq!(
            (b.jitter, b.extended_highest_seq, b.cumulative_lost),
            (9, 8, 0)
        );
    }

    #[test]
    fn last_sr_and_its_delay() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        feed(&mut r, t0, &[1, 2]);
        assert_eq!(r.report_block(t0).expect("valid").last_sr, 0);
        r.on_sender_report(0xAB, 0x1234_5678, t0);
        r.on_sender_report(0xCD, 0xFFFF_FFFF, t0); // another source's SR: ignored
        let b = r
            .report_block(t0 + Duration::from_millis(1500))
            .expect("valid");
        assert_eq!(b.last_sr, 0x1234_5678);
        assert_eq!(b.delay_since_last_sr, 98_304); // 1.5 s in 1/65536 s
    }

    #[test]
    fn an_sr_before_the_first_rtp_is_still_echoed() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        r.on_sender_report(0xAB, 0x0102_0304, t0);
        feed(&mut r, t0, &[1, 2]);
        let b = r.report_block(t0 + Duration::from_secs(1)).expect("valid");
        assert_eq!((b.last_sr, b.delay_since_last_sr), (0x0102_0304, 65_536));
        // Another source's early SR is not taken for this one.
        let mut r = ReceptionStats::new(8000, t0);
        r.on_sender_report(0xCD, 0x0102_0304, t0);
        feed(&mut r, t0, &[1, 2]);
        assert_eq!(r.report_block(t0).expect("valid").last_sr, 0);
    }

    #[test]
    fn a_new_ssrc_starts_over_but_the_summary_keeps_the_old_loss() {
        let t0 = Instant::now();
        let mut r = ReceptionStats::new(8000, t0);
        feed(&mut r, t0, &[1, 2, 4]);
        for (i, seq) in [500u16, 501, 502].into_iter().enumerate() {
            r.on_packet(0xCD, seq, 0, t0 + MS20 * i as u32, true);
        }
        let b = r.report_block(t0).expect("valid");
        assert_eq!(
            (b.ssrc, b.extended_highest_seq, b.cumulative_lost),
            (0xCD, 502, 0)
        );
        let sum = r.summary();
        assert_eq!((sum.received, sum.lost), (2 + 2, 1));
    }

    #[test]
    fn report_block_wire_form() {
        let b = ReportBlock {
            ssrc: 0x0102_0304,
            fraction_lost: 0x40,
            cumulative_lost: -2,
            extended_highest_seq: 0x0001_0005,
            jitter: 7,
            last_sr: 0xAABB_CCDD,
            delay_since_last_sr: 65_536,
        };
        let mut out = Vec::new();
        b.write(&mut out);
        assert_eq!(
            out,
            [
                1, 2, 3, 4, 0x40, 0xFF, 0xFF, 0xFE, 0, 1, 0, 5, 0, 0, 0, 7, 0xAA, 0xBB, 0xCC, 0xDD,
                0, 1, 0, 0
            ]
        );
    }
}
