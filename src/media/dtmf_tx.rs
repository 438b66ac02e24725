//! RFC 4733 telephone-event sender, sans-IO: the packets for one key press (e.g. to dial an
//! agent's extension), with their send offsets. No clock: the shell maps `index` to pacer
//! ticks (with `interval` equal to the packet time, packet `index` goes out on tick
//! `start_tick + index`) and stamps sequence numbers itself.

use std::time::Duration;

use super::dtmf::{Digit, EventBlock};

/// One key press to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfToneSpec {
    pub digit: Digit,
    /// Tone length. Capped at 0xFFFF timestamp units (8.19 s at 8 kHz): dialing never needs
    /// the long-event segmentation of §2.5.1.3.
    pub duration: Duration,
    /// Power in -dBm0 (§2.3.4), 0-63; larger values are capped at 63.
    pub volume: u8,
    /// RTP timestamp of the tone's start: the timestamp of the packet time it begins in.
    pub start_timestamp: u32,
    /// telephone-event clock rate from the SDP (8000 if 0).
    pub clock_rate: u32,
    /// Time between update packets: the packet time (20 ms) or up to 50 ms (§2.5.1.2).
    pub interval: Duration,
}

impl DtmfToneSpec {
    /// 100 ms at -10 dBm0, 8 kHz, one packet per 20 ms: values PBXs accept everywhere.
    pub fn new(digit: Digit, start_timestamp: u32) -> Self {
        DtmfToneSpec {
            digit,
            duration: Duration::from_millis(100),
            volume: 10,
            start_timestamp,
            clock_rate: 8000,
            interval: Duration::from_millis(20),
        }
    }
}

/// One packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingEvent {
    /// Packet number in this press; send at `index * interval` after the first.
    pub index: u32,
    /// Send time relative to the first packet.
    pub offset: Duration,
    /// Set on the first packet of the event only (§2.5.1.2).
    pub marker: bool,
    /// The event's start timestamp, the same in every packet (§2.5.1.2).
    pub timestamp: u32,
    pub payload: [u8; 4],
    /// Whether this packet carries the E bit.
    pub end: bool,
}

/// Iterator over the packets of one key press: updates every `interval` with the growing
/// duration, then the final duration three times with the E bit (§2.5.1.4 recommends
/// retransmitting the end packet so one loss does not stretch the tone).
#[derive(Debug, Clone)]
pub struct Rfc4733Encoder {
    spec: DtmfToneSpec,
    step: u32,
    total: u16,
    updates: u32,
    next: u32,
}

/// How many times the final (E) packet is sent.
const END_PACKETS: u32 = 3;

impl Rfc4733Encoder {
    pub fn new(spec: DtmfToneSpec) -> Self {
        let rate = if spec.clock_rate == 0 {
            8000
        } else {
            spec.clock_rate
        };
        let to_units = |d: Duration| -> u64 {
            let units = d.as_nanos() * u128::from(rate) / 1_000_000_000;
            u64::try_from(units).unwrap_or(u64::MAX)
        };
        // At least one unit per step and per tone, so a zero config cannot loop forever.
        let step = to_units(spec.interval).clamp(1, 0xFFFF) as u32;
        let total = to_units(spec.duration).clamp(1, 0xFFFF) as u16;
        // Update packets before the end: one per started interval, except the last, whose
        // place the first end packet takes.
        let updates = u32::from(total).div_ceil(step) - 1;
        Rfc4733Encoder {
            spec: DtmfToneSpec {
                clock_rate: rate,
                volume: spec.volume.min(63),
                ..spec
            },
            step,
            total,
            updates,
            next: 0,
        }
    }

    /// Total number of packets this press produces.
    pub fn packet_count(&self) -> u32 {
        self.updates + END_PACKETS
    }
}

impl Iterator for Rfc4733Encoder {
    type Item = OutgoingEvent;

    fn next(&mut self) -> Option<OutgoingEvent> {
        let k = self.next;
        if k >= self.packet_count() {
            return None;
        }
        self.next += 1;
        let end = k >= self.updates;
        // Each update reports the duration through the end of the interval it covers, like an
        // audio packet covers its 20 ms.
        let duration = if end {
            self.total
        } else {
            let d = (k + 1).saturating_mul(self.step).min(u32::from(self.total));
            u16::try_from(d).unwrap_or(u16::MAX)
        };
        let block = EventBlock {
            event: self.spec.digit.event_code(),
            end,
            volume: self.spec.volume,
            duration,
        };
        Some(OutgoingEvent {
            index: k,
            offset: self.spec.interval.saturating_mul(k),
            marker: k == 0,
            timestamp: self.spec.start_timestamp,
            payload: block.to_bytes(),
            end,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.packet_count().saturating_sub(self.next) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Rfc4733Encoder {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::{
        DtmfEvent, Rfc4733Decoder, TelephoneEventPacket, TelephoneEventPayload,
    };
    use std::time::Instant;

    #[test]
    fn hundred_ms_at_20ms_packet_time() {
        let pkts: Vec<_> = Rfc4733Encoder::new(DtmfToneSpec::new(Digit::D5, 0xFFFF_FF00)).collect();
        // 800 units / 160 per packet = 5 intervals: 4 updates, then 3 end packets.
        assert_eq!(pkts.len(), 7);
        let durs: Vec<u16> = pkts
            .iter()
            .map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]]))
            .collect();
        assert_eq!(durs, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = pkts.iter().map(|p| p.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(pkts[0].marker && pkts[1..].iter().all(|p| !p.marker));
        assert!(pkts.iter().all(|p| p.timestamp == 0xFFFF_FF00));
        assert_eq!(pkts[0].payload, [5, 10, 0, 160]);
        assert_eq!(pkts[6].payload, [5, 0x80 | 10, 0x03, 0x20]);
        assert_eq!(pkts[3].offset, Duration::from_millis(60));
        assert_eq!(pkts[6].index, 6);
    }

    #[test]
    fn fifty_ms_updates_and_short_tones() {
        let mut spec = DtmfToneSpec::new(Digit::Hash, 1000);
        spec.interval = Duration::from_millis(50);
        spec.duration = Duration::from_millis(120);
        spec.volume = 200;
        let pkts: Vec<_> = Rfc4733Encoder::new(spec).collect();
        let durs: Vec<u16> = pkts
            .iter()
            .map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]]))
            .collect();
        assert_eq!(durs, [400, 800, 960, 960, 960]);
        assert_eq!(pkts[0].payload[1], 63, "volume capped");

        spec.duration = Duration::from_millis(10);
        let pkts: Vec<_> = Rfc4733Encoder::new(spec).collect();
        assert_eq!(pkts.len(), 3);
        assert!(pkts[0].marker && pkts[0].end);
    }

    #[test]
    fn zero_config_still_terminates() {
        let mut spec = DtmfToneSpec::new(Digit::D0, 0);
        spec.interval = Duration::ZERO;
        spec.duration = Duration::from_secs(3600);
        spec.clock_rate = 0;
        let enc = Rfc4733Encoder::new(spec);
        assert_eq!(enc.len(), 0xFFFF - 1 + 3);
    }

    #[test]
    fn decoder_reads_what_encoder_sends() {
        let t0 = Instant::now();
        let mut dec = Rfc4733Decoder::new(8000);
        for (seq, digit) in [Digit::D7, Digit::Star].into_iter().enumerate() {
            let ts = 50_000 * seq as u32;
            for p in Rfc4733Encoder::new(DtmfToneSpec::new(digit, ts)) {
                let pkt = TelephoneEventPacket {
                    seq: (seq * 10) as u16 + p.index as u16,
                    timestamp: p.timestamp,
                    marker: p.marker,
                    payload: TelephoneEventPayload::parse(&p.payload).unwrap(),
                };
                dec.on_packet(pkt, t0 + p.offset);
            }
        }
        let evs: Vec<_> = std::iter::from_fn(|| dec.poll_event()).collect();
        assert_eq!(
            evs,
            [
                DtmfEvent::Started {
                    digit: Digit::D7,
                    at: t0
                },
                DtmfEvent::Ended {
                    digit: Digit::D7,
                    duration: Duration::from_millis(100)
                },
                DtmfEvent::Started {
                    digit: Digit::Star,
                    at: t0
                },
                DtmfEvent::Ended {
                    digit: Digit::Star,
                    duration: Duration::from_millis(100)
                },
            ]
        );
    }
}
