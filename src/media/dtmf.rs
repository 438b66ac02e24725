//! RFC 4733 telephone-event: digits, payload parsing and a sans-IO receiver.
//!
//! The receiver turns a stream of telephone-event packets into exactly one
//! [`DtmfEvent::Started`] (on the first packet seen, so a prompt can stop at once) and exactly
//! one [`DtmfEvent::Ended`] per key press, however packets are lost, duplicated or reordered.
//! Events are identified by their RTP timestamp (RFC 4733 §2.5.1.2), never by the marker bit,
//! which some senders never set and which is lost with the first packet anyway.
//!
//! RFC 2198 redundancy (a different payload type) is not handled here; events packed into one
//! payload (§2.5.1.5) are. The sending side lives in [`super::dtmf_tx`].

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

pub use super::dtmf_tx::{DtmfToneSpec, OutgoingEvent, Rfc4733Encoder};

/// One DTMF symbol: can only hold the 16 valid keys (RFC 4733 §3.2, event codes 0-15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digit {
    D0,
    D1,
    D2,
    D3,
    D4,
    D5,
    D6,
    D7,
    D8,
    D9,
    Star,
    Hash,
    A,
    B,
    C,
    D,
}

impl Digit {
    /// All digits in event-code order.
    pub const ALL: [Digit; 16] = [
        Digit::D0,
        Digit::D1,
        Digit::D2,
        Digit::D3,
        Digit::D4,
        Digit::D5,
        Digit::D6,
        Digit::D7,
        Digit::D8,
        Digit::D9,
        Digit::Star,
        Digit::Hash,
        Digit::A,
        Digit::B,
        Digit::C,
        Digit::D,
    ];

    /// The digit for an RFC 4733 event code; `None` for codes other than 0-15 (flash, etc.).
    pub fn from_event_code(code: u8) -> Option<Digit> {
        Digit::ALL.get(usize::from(code)).copied()
    }

    /// The RFC 4733 event code (0-9, `*` = 10, `#` = 11, A-D = 12-15).
    pub fn event_code(self) -> u8 {
        self as u8
    }

    /// The key as a character: `0`-`9`, `*`, `#`, `A`-`D`.
    pub fn to_char(self) -> char {
        b"0123456789*#ABCD"
            .get(usize::from(self.event_code()))
            .map_or('?', |&b| char::from(b))
    }

    /// Parse a key character; `a`-`d` are accepted as `A`-`D`.
    pub fn from_char(c: char) -> Option<Digit> {
        let code = match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => l as u8 - b'A' + 12,
            _ => return None,
        };
        Digit::from_event_code(code)
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_char())
    }
}

/// Why a telephone-event payload could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error(
        "telephone-event payload is {len} bytes; RFC 4733 §2.3 needs one or more 4-byte event \
         blocks (check that the payload type negotiated for telephone-event is right)"
    )]
    Length { len: usize },
}

/// One 4-byte event block (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBlock {
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl EventBlock {
    /// Encode as the 4 wire bytes (the R bit is always sent as zero, §2.3).
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        let e = if self.end { 0x80 } else { 0 };
        [self.event, e | (self.volume & 0x3F), d[0], d[1]]
    }
}

/// A parsed telephone-event payload: usually one block; several when events are packed (§2.5.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephoneEventPayload {
    pub blocks: Vec<EventBlock>,
}

impl TelephoneEventPayload {
    /// Parse the RTP payload (after any RTP padding was removed).
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
            return Err(PayloadError::Length { len: bytes.len() });
        }
        let blocks = bytes
            .chunks_exact(4)
            .map(|b| EventBlock {
                event: b[0],
                end: b[1] & 0x80 != 0,
                volume: b[1] & 0x3F,
                duration: u16::from_be_bytes([b[2], b[3]]),
            })
            .collect();
        Ok(TelephoneEventPayload { blocks })
    }
}

/// What the receiver needs from one RTP packet carrying telephone-event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephoneEventPacket {
    pub seq: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: TelephoneEventPayload,
}

/// What the receiver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// The first packet of a key press arrived (barge-in can act now).
    Started { digit: Digit, at: Instant },
    /// The press is over: E bit seen, a newer event began, or the end timed out.
    Ended { digit: Digit, duration: Duration },
}

/// How long after the last packet of a press we give up waiting for its end packets.
/// Updates arrive every 50 ms or faster (§2.5.1.2), so 250 ms means ~5 updates were lost.
pub const DEFAULT_END_TIMEOUT: Duration = Duration::from_millis(250);

/// Packets whose sequence number is at most this far behind the newest seen are "late"
/// (reordered/duplicated) and may not start a new event; farther behind means the sender
/// restarted its sequence, and they are accepted.
const REORDER_WINDOW: i16 = 64;

/// How many finished events (timestamp, key) we remember to reject replays and late end
/// packets.
const FINISHED_MEMORY: usize = 64;

#[derive(Debug)]
struct Active {
    digit: Digit,
    /// RTP timestamp of the current segment (changes for long events, §2.5.1.3).
    seg_ts: u32,
    /// Samples in earlier segments and duration-field wraps.
    earlier: u64,
    /// Largest duration seen in the current segment since the last wrap.
    dur_hi: u16,
    last_packet: Instant,
}

impl Active {
    fn total_samples(&self) -> u64 {
        self.earlier + u64::from(self.dur_hi)
    }
}

/// Sans-IO RFC 4733 receiver for one RTP stream.
#[derive(Debug)]
pub struct Rfc4733Decoder {
    clock_rate: u32,
    end_timeout: Duration,
    active: Option<Active>,
    /// Finished events by (RTP timestamp, key). A timestamp alone is not enough: some
    /// senders (and SIPp's `dtmf_2833_*.pcap` captures) reuse one timestamp for
    /// different keys, which are different presses.
    finished: VecDeque<(u32, Digit)>,
    highest_seq: Option<u16>,
    events: VecDeque<DtmfEvent>,
}

impl Rfc4733Decoder {
    /// `clock_rate` is the telephone-event rate from the SDP (`8000` when absent; 0 is treated
    /// as 8000 so a bad SDP cannot cause a division by zero).
    pub fn new(clock_rate: u32) -> Self {
        Rfc4733Decoder {
            clock_rate: if clock_rate == 0 { 8000 } else { clock_rate },
            end_timeout: DEFAULT_END_TIMEOUT,
            active: None,
            // Grows with the digits (up to FINISHED_MEMORY): a leg that
            // never gets one (a held or bridged call) keeps no 512 bytes.
            finished: VecDeque::new(),
            highest_seq: None,
            events: VecDeque::new(),
        }
    }

    /// Override [`DEFAULT_END_TIMEOUT`].
    pub fn with_end_timeout(mut self, timeout: Duration) -> Self {
        self.end_timeout = timeout;
        self
    }

    /// Feed one received telephone-event packet.
    pub fn on_packet(&mut self, pkt: TelephoneEventPacket, now: Instant) {
        let late = self.note_seq(pkt.seq);
        // §2.5.1.5: packed events follow each other without gaps; each block's start is the
        // packet timestamp plus the durations of the blocks before it.
        let mut ts = pkt.timestamp;
        for block in &pkt.payload.blocks {
            self.on_block(ts, *block, late, pkt.marker, now);
            ts = ts.wrapping_add(u32::from(block.duration));
        }
    }

    /// Next event to act on, oldest first.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::on_timeout`]: the end timeout of the press in progress, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.active
            .as_ref()
            .map(|a| a.last_packet + self.end_timeout)
    }

    /// End a press whose end packets were all lost.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.deadline().is_some_and(|d| now >= d) {
            self.finish_active();
        }
    }

    /// Track the newest sequence number; returns whether `seq` is a late/duplicate packet.
    fn note_seq(&mut self, seq: u16) -> bool {
        let Some(high) = self.highest_seq else {
            self.highest_seq = Some(seq);
            return false;
        };
        // Wrapping difference handles the 65535 -> 0 rollover.
        let diff = seq.wrapping_sub(high) as i16;
        if (-REORDER_WINDOW..=0).contains(&diff) {
            true
        } else {
            self.highest_seq = Some(seq);
            false
        }
    }

    fn on_block(&mut self, ts: u32, block: EventBlock, late: bool, pkt_marker: bool, now: Instant) {
        // Codes outside 0-15 (flash, modem tones, ...) are not ours; they change nothing.
        let Some(digit) = Digit::from_event_code(block.event) else {
            return;
        };
        // A retransmitted end packet or a replay of a press that is over.
        if self.finished.contains(&(ts, digit)) {
            return;
        }
        if let Some(active) = self.active.as_mut() {
            if active.seg_ts == ts && active.digit == digit {
                update_duration(active, block.duration);
                active.last_packet = now;
                if block.end {
                    self.finish_active();
                }
                return;
            }
            if active.digit == digit && is_next_segment(active, ts) {
                // §2.5.1.3: a long press continues in a new segment with a new timestamp; it
                // is still one key press. Remember the old segment so that its retransmissions
                // are not mistaken for a new press.
                // The timestamp step is the old segment's length, even if we lost the
                // packet that reported it.
                let old_ts = active.seg_ts;
                active.earlier += u64::from(ts.wrapping_sub(old_ts));
                active.seg_ts = ts;
                active.dur_hi = block.duration;
                active.last_packet = now;
                self.remember_finished(old_ts, digit);
                if block.end {
                    self.finish_active();
                }
                return;
            }
        }
        // An event we have not seen. A late packet with an unknown timestamp is normally a
        // reordered leftover of an older event we no longer track, and must not start a
        // press; but one that carries the marker bit is the start of an event (§2.5.1.1)
        // from a sender whose sequence numbers jumped back, as when captures are replayed
        // (SIPp's `dtmf_2833_*.pcap` each have their own timestamp, with sequence numbers
        // that rise in key order, so "4" then "3" goes backwards).
        if late && !pkt_marker && !self.finished.iter().any(|(t, _)| *t == ts) {
            return;
        }
        // §2.5.1.2: a new timestamp is a new event, so whatever was active is over.
        self.finish_active();
        self.events.push_back(DtmfEvent::Started { digit, at: now });
        self.active = Some(Active {
            digit,
            seg_ts: ts,
            earlier: 0,
            dur_hi: block.duration,
            last_packet: now,
        });
        if block.end {
            self.finish_active();
        }
    }

    fn finish_active(&mut self) {
        if let Some(a) = self.active.take() {
            self.remember_finished(a.seg_ts, a.digit);
            let nanos = a.total_samples() * 1_000_000_000 / u64::from(self.clock_rate);
            self.events.push_back(DtmfEvent::Ended {
                digit: a.digit,
                duration: Duration::from_nanos(nanos),
            });
        }
    }

    fn remember_finished(&mut self, ts: u32, digit: Digit) {
        if self.finished.len() == FINISHED_MEMORY {
            self.finished.pop_front();
        }
        self.finished.push_back((ts, digit));
    }
}

/// Fold a block's duration into the running maximum, counting wraps of the 16-bit field from
/// senders that let it overflow instead of segmenting (§2.5.1.3 says they should segment).
fn update_duration(active: &mut Active, d: u16) {
    const HALF: u32 = 0x8000;
    if u32::from(d) + HALF < u32::from(active.dur_hi) {
        // Dropped by more than half the range: the field wrapped.
        active.earlier += 0x1_0000;
        active.dur_hi = d;
    } else if u32::from(d) > u32::from(active.dur_hi) + HALF {
        // A reordered pre-wrap packet arriving after the wrap: ignore its duration.
    } else {
        active.dur_hi = active.dur_hi.max(d);
    }
}

/// Whether `ts` starts the segment after the active one (§2.5.1.3: the new segment's timestamp
/// is where the previous one ended, after a duration of 0xFFFF). A small tolerance accepts
/// senders that cut segments a little early; a new press of the same key while the old one is
/// still active cannot start exactly there unless its end packets were all lost.
fn is_next_segment(active: &Active, ts: u32) -> bool {
    const TOLERANCE: u32 = 0x0400;
    let delta = ts.wrapping_sub(active.seg_ts);
    (0xFFFF - TOLERANCE..=0x1_0000).contains(&delta)
}

#[cfg(test)]
#[path = "dtmf_tests.rs"]
mod tests;
