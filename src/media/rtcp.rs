//! Minimal RTCP by hand (rtp-rs has none): sender and receiver reports with our one
//! reception report block and an SDES CNAME to send, and a tolerant look at what arrives.

use std::time::Duration;

use super::reception::ReportBlock;

/// How long after `interval` began a stream's next report is due: `interval` times
/// a factor drawn uniformly from [0.5, 1.5] (RFC 3550 §6.3.1), and half of that
/// before the first report (§6.2). Without the draw, streams started together
/// report together for as long as they last: calls that arrive in a burst
/// (a campaign, a failover) would send the carrier their reports in bursts
/// every 5 s, the synchronisation §6.2 warns of. The factor e - 3/2 of
/// §6.3.1 is not applied: it compensates for timer reconsideration, which a
/// two-party session at the 5 s minimum does not do.
pub fn report_delay(interval: Duration, first: bool, rng: &mut impl rand::RngExt) -> Duration {
    let base = if first { interval / 2 } else { interval };
    base.mul_f64(rng.random_range(0.5..1.5))
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 and a binary fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpTime {
    pub seconds: u32,
    pub fraction: u32,
}

impl NtpTime {
    /// From time since the Unix epoch (the shell reads `SystemTime::now()`); the seconds
    /// wrap in 2036 exactly as the wire field does.
    pub fn from_unix(since_epoch: Duration) -> Self {
        let seconds = (since_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET)) as u32;
        let fraction = ((u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000) as u32;
        NtpTime { seconds, fraction }
    }

    /// The middle 32 bits, as used in "last SR" of reception reports (§6.4.1).
    pub fn middle32(self) -> u32 {
        (self.seconds << 16) | (self.fraction >> 16)
    }
}

/// RTCP packet types (RFC 3550 §12.1, RFC 4585 for feedback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacketType {
    SenderReport,
    ReceiverReport,
    SourceDescription,
    Bye,
    App,
    Other(u8),
}

impl RtcpPacketType {
    fn from_u8(pt: u8) -> Self {
        match pt {
            200 => RtcpPacketType::SenderReport,
            201 => RtcpPacketType::ReceiverReport,
            202 => RtcpPacketType::SourceDescription,
            203 => RtcpPacketType::Bye,
            204 => RtcpPacketType::App,
            other => RtcpPacketType::Other(other),
        }
    }
}

/// Append a sender report (RFC 3550 §6.4.1) with a report block about the source we
/// receive, when there is one.
pub fn write_sender_report(
    ssrc: u32,
    ntp: NtpTime,
    rtp_timestamp: u32,
    packet_count: u32,
    octet_count: u32,
    block: Option<&ReportBlock>,
    out: &mut Vec<u8>,
) {
    // V=2, P=0, RC; PT=200; length in words - 1: 6 for the sender info, 6 per block.
    let rc = u8::from(block.is_some());
    out.extend_from_slice(&[0x80 | rc, 200, 0, 6 + 6 * rc]);
    for word in [
        ssrc,
        ntp.seconds,
        ntp.fraction,
        rtp_timestamp,
        packet_count,
        octet_count,
    ] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    if let Some(b) = block {
        b.write(out);
    }
}

/// Append a receiver report (RFC 3550 §6.4.2): what we send before we have sent RTP, with
/// the report block when we receive a source (an empty RR otherwise, §6.4).
pub fn write_receiver_report(ssrc: u32, block: Option<&ReportBlock>, out: &mut Vec<u8>) {
    let rc = u8::from(block.is_some());
    out.extend_from_slice(&[0x80 | rc, 201, 0, 1 + 6 * rc]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(b) = block {
        b.write(out);
    }
}

/// Append an SDES packet with one chunk carrying the CNAME (RFC 3550 §6.5.1). A compound
/// RTCP packet must contain a CNAME (§6.1) and strict receivers drop SRs without one.
/// CNAMEs longer than 255 bytes are cut (the item length is one byte).
pub fn write_sdes_cname(ssrc: u32, cname: &str, out: &mut Vec<u8>) {
    let name = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC + item type + item length + text, then at least one zero byte (end of items),
    // padded to a 32-bit boundary (§6.5).
    let chunk_len = 4 + 2 + name.len();
    let padded = (chunk_len + 1).div_ceil(4) * 4;
    let words = (4 + padded) / 4 - 1;
    out.extend_from_slice(&[0x81, 202]);
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&[1, name.len() as u8]);
    out.extend_from_slice(name);
    out.extend(std::iter::repeat_n(0u8, padded - chunk_len));
}

/// RFC 5761 §4 demultiplexing: with RTP and RTCP on one port (rtcp-mux), a version-2 packet
/// whose second byte is 192-223 is RTCP (no RTP payload type maps there when the marker is
/// folded in).
pub fn is_rtcp(buf: &[u8]) -> bool {
    matches!(buf, [first, second, ..] if first >> 6 == 2 && (192..=223).contains(second))
}

/// Summary of an inbound compound RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcpSummary {
    /// Packet types in order, up to where the compound packet stopped making sense.
    pub types: Vec<RtcpPacketType>,
    /// SSRC of the first packet's sender, if it had one.
    pub sender_ssrc: Option<u32>,
    /// Whether the peer said BYE.
    pub bye: bool,
    /// The first SR's sender SSRC and the middle 32 bits of its NTP timestamp: what our
    /// report echoes as LSR (§6.4.1).
    pub sender_report: Option<(u32, u32)>,
}

/// Walk a compound RTCP packet tolerantly: stop (without failing) at the first header that
/// is not version 2 or whose length runs past the buffer. Returns `None` when not even the
/// first packet is RTCP, so the caller can count and drop it.
pub fn inspect_rtcp(buf: &[u8]) -> Option<RtcpSummary> {
    if !is_rtcp(buf) {
        return None;
    }
    let mut summary = RtcpSummary::default();
    let mut rest = buf;
    while let [first, pt, l0, l1, body @ ..] = rest {
        if first >> 6 != 2 {
            break;
        }
        // Length counts 32-bit words after the 4-byte header (§6.4.1).
        let len = usize::from(u16::from_be_bytes([*l0, *l1])) * 4;
        let Some(packet_body) = body.get(..len) else {
            break;
        };
        let kind = RtcpPacketType::from_u8(*pt);
        if summary.types.is_empty() {
            summary.sender_ssrc = packet_body
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        }
        if kind == RtcpPacketType::SenderReport && summary.sender_report.is_none() {
            if let Some(b) = packet_body.get(..12) {
                let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                let ntp = NtpTime {
                    seconds: word(4),
                    fraction: word(8),
                };
                summary.sender_report = Some((word(0), ntp.middle32()));
            }
        }
        summary.bye |= kind == RtcpPacketType::Bye;
        summary.types.push(kind);
        rest = body.get(len..).unwrap_or(&[]);
    }
    Some(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3550 §6.3.1: every delay within [0.5, 1.5] of its interval (half
    /// that for the first report), and spread across that range, not fixed.
    #[test]
    fn report_delays_are_drawn_across_half_to_one_and_a_half_intervals() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3550);
        let interval = Duration::from_secs(5);
        for (first, base) in [(false, interval), (true, interval / 2)] {
            let draws: Vec<Duration> = (0..2000)
                .map(|_| report_delay(interval, first, &mut rng))
                .collect();
            let (lo, hi) = (base.mul_f64(0.5), base.mul_f64(1.5));
            assert!(draws.iter().all(|d| (lo..=hi).contains(d)), "{first}");
            let min = draws.iter().min().copied().unwrap_or_default();
            let max = draws.iter().max().copied().unwrap_or_default();
            assert!(
                min < base.mul_f64(0.55) && max > base.mul_f64(1.45),
                "{first}: {min:?}..{max:?}"
            );
            let ticks: std::collections::HashSet<u128> =
                draws.iter().map(|d| d.as_millis() / 20).collect();
            // Spread over the range's 20 ms ticks (250 of them for 5 s), not bunched.
            assert!(
                ticks.len() * 10 > (hi - lo).as_millis() as usize / 20 * 9,
                "{first}: {}",
                ticks.len()
            );
        }
    }

    #[test]
    fn ntp_conversion() {
        let t = NtpTime::from_unix(Duration::new(1_700_000_000, 500_000_000));
        assert_eq!(t.seconds, (1_700_000_000u64 + 2_208_988_800) as u32);
        assert_eq!(t.fraction, 0x8000_0000);
        assert_eq!(NtpTime::from_unix(Duration::ZERO).seconds, 2_208_988_800);
        let m = NtpTime {
            seconds: 0x1234_5678,
            fraction: 0x9ABC_DEF0,
        }
        .middle32();
        assert_eq!(m, 0x5678_9ABC);
    }

    #[test]
    fn sender_report_layout() {
        let mut out = Vec::new();
        let ntp = NtpTime {
            seconds: 0xE000_0001,
            fraction: 0x4000_0000,
        };
        write_sender_report(0x0102_0304, ntp, 0xAABB_CCDD, 50, 8000, None, &mut out);
        assert_eq!(
            out,
            [
                0x80, 200, 0, 6, 1, 2, 3, 4, 0xE0, 0, 0, 1, 0x40, 0, 0, 0, 0xAA, 0xBB, 0xCC, 0xDD,
                0, 0, 0, 50, 0, 0, 0x1F, 0x40
            ]
        );
    }

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0x0A0B_0C0D,
            fraction_lost: 1,
            cumulative_lost: 2,
            extended_highest_seq: 3,
            jitter: 4,
            last_sr: 5,
            delay_since_last_sr: 6,
        }
    }

    #[test]
    fn reports_carry_the_reception_block() {
        let b = block();
        let mut block_bytes = Vec::new();
        b.write(&mut block_bytes);
        // SR: RC = 1, length 12 words - 1 after the header (sender info + one block).
        let mut sr = Vec::new();
        let ntp = NtpTime::from_unix(Duration::ZERO);
        write_sender_report(9, ntp, 0, 0, 0, Some(&b), &mut sr);
        assert_eq!(&sr[..4], &[0x81, 200, 0, 12]);
        assert_eq!(sr.len(), 4 + 24 + 24);
        assert_eq!(&sr[28..], &block_bytes[..]);
        // RR: RC = 1, our SSRC then the block; without a source, the empty RR of §6.4.
        let mut rr = Vec::new();
        write_receiver_report(9, Some(&b), &mut rr);
        assert_eq!(&rr[..8], &[0x81, 201, 0, 7, 0, 0, 0, 9]);
        assert_eq!(&rr[8..], &block_bytes[..]);
        let mut empty = Vec::new();
        write_receiver_report(9, None, &mut empty);
        assert_eq!(empty, [0x80, 201, 0, 1, 0, 0, 0, 9]);
        // Both walk cleanly.
        assert_eq!(
            inspect_rtcp(&rr).unwrap().types,
            [RtcpPacketType::ReceiverReport]
        );
        assert_eq!(
            inspect_rtcp(&sr).unwrap().sender_report,
            Some((9, ntp.middle32()))
        );
    }

    #[test]
    fn sdes_cname_is_padded_to_words() {
        for name in ["", "a", "ab", "abc", "tpswitch@10.0.0.1"] {
            let mut out = Vec::new();
            write_sdes_cname(7, name, &mut out);
            assert_eq!(out.len() % 4, 0, "{name:?}");
            let words = usize::from(u16::from_be_bytes([out[2], out[3]]));
            assert_eq!((words + 1) * 4, out.len());
            assert_eq!(&out[8..10], &[1, name.len() as u8]);
            assert_eq!(&out[10..10 + name.len()], name.as_bytes());
            assert!(out[10 + name.len()..].iter().all(|&b| b == 0));
            assert!(out.len() > 10 + name.len(), "at least one terminating zero");
        }
        let mut out = Vec::new();
        write_sdes_cname(7, &"x".repeat(300), &mut out);
        assert_eq!(out[9], 255);
    }

    #[test]
    fn inspect_our_own_compound_packet() {
        let mut out = Vec::new();
        let ntp = NtpTime::from_unix(Duration::from_millis(1500));
        write_sender_report(99, ntp, 1, 2, 3, None, &mut out);
        write_sdes_cname(99, "me@host", &mut out);
        // A BYE with one SSRC.
        out.extend_from_slice(&[0x81, 203, 0, 1, 0, 0, 0, 99]);
        let s = inspect_rtcp(&out).unwrap();
        assert_eq!(
            s.types,
            [
                RtcpPacketType::SenderReport,
                RtcpPacketType::SourceDescription,
                RtcpPacketType::Bye
            ]
        );
        assert_eq!(s.sender_ssrc, Some(99));
        assert_eq!(s.sender_report, Some((99, ntp.middle32())));
        assert!(s.bye);
    }

    #[test]
    fn tolerant_of_junk() {
        // RTP (PT 0 / marked PT 8) is not RTCP.
        assert!(inspect_rtcp(&[0x80, 0x00, 0, 1]).is_none());
        assert!(inspect_rtcp(&[0x80, 0x88, 0, 1]).is_none());
        assert!(inspect_rtcp(&[]).is_none());
        assert!(inspect_rtcp(&[0x80]).is_none());
        // Truncated RR: recognised as RTCP, nothing parsed past the bad length.
        let s = inspect_rtcp(&[0x81, 201, 0, 7, 0, 0, 0, 1]).unwrap();
        assert!(s.types.is_empty());
        // RR (feedback type after it is unknown to us but fine), then a version-1 header.
        let s = inspect_rtcp(&[
            0x80, 201, 0, 1, 0, 0, 0, 5, 0x81, 205, 0, 0, 0x40, 200, 0, 0,
        ])
        .unwrap();
        assert_eq!(
            s.types,
            [RtcpPacketType::ReceiverReport, RtcpPacketType::Other(205)]
        );
        assert_eq!(s.sender_ssrc, Some(5));
        assert!(!s.bye);
        assert!(is_rtcp(&[0x80, 200]));
        assert!(!is_rtcp(&[0x40, 200]));
    }
}
