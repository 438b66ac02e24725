//! Tests for the RFC 4733 receiver (kept apart so `dtmf.rs` stays readable).

use super::*;

const MS: Duration = Duration::from_millis(1);

fn block(code: u8, end: bool, duration: u16) -> EventBlock {
    EventBlock {
        event: code,
        end,
        volume: 10,
        duration,
    }
}

fn pkt(seq: u16, ts: u32, marker: bool, code: u8, end: bool, dur: u16) -> TelephoneEventPacket {
    TelephoneEventPacket {
        seq,
        timestamp: ts,
        marker,
        payload: TelephoneEventPayload {
            blocks: vec![block(code, end, dur)],
        },
    }
}

/// A well-behaved press: start with marker, an update every 20 ms, three end packets.
/// Returns (packet, arrival offset in ms).
fn press(seq0: u16, ts: u32, code: u8, dur: u16) -> Vec<(TelephoneEventPacket, u64)> {
    let mut out = Vec::new();
    let mut d = 160u16;
    let mut seq = seq0;
    let mut t = 0;
    while d < dur {
        out.push((pkt(seq, ts, seq == seq0, code, false, d), t));
        seq = seq.wrapping_add(1);
        d += 160;
        t += 20;
    }
    for _ in 0..3 {
        out.push((pkt(seq, ts, false, code, true, dur), t));
        seq = seq.wrapping_add(1);
        t += 20;
    }
    out
}

fn feed(dec: &mut Rfc4733Decoder, t0: Instant, pkts: &[(TelephoneEventPacket, u64)]) {
    for (p, at) in pkts {
        dec.on_packet(p.clone(), t0 + MS * (*at as u32));
    }
}

fn drain(dec: &mut Rfc4733Decoder) -> Vec<DtmfEvent> {
    std::iter::from_fn(|| dec.poll_event()).collect()
}

fn digits_started(evs: &[DtmfEvent]) -> String {
    evs.iter()
        .filter_map(|e| match e {
            DtmfEvent::Started { digit, .. } => Some(digit.to_char()),
            _ => None,
        })
        .collect()
}

fn digits_ended(evs: &[DtmfEvent]) -> String {
    evs.iter()
        .filter_map(|e| match e {
            DtmfEvent::Ended { digit, .. } => Some(digit.to_char()),
            _ => None,
        })
        .collect()
}

fn ended_durations(evs: &[DtmfEvent]) -> Vec<Duration> {
    evs.iter()
        .filter_map(|e| match e {
            DtmfEvent::Ended { duration, .. } => Some(*duration),
            _ => None,
        })
        .collect()
}

#[test]
fn digit_codes_and_chars() {
    for (i, c) in "0123456789*#ABCD".chars().enumerate() {
        let d = Digit::from_event_code(i as u8).unwrap();
        assert_eq!(d.to_char(), c);
        assert_eq!(Digit::from_char(c), Some(d));
        assert_eq!(d.event_code(), i as u8);
        assert_eq!(d.to_string(), c.to_string());
    }
    assert_eq!(Digit::from_char('c'), Some(Digit::C));
    assert_eq!(Digit::from_char('E'), None);
    assert_eq!(Digit::from_char('x'), None);
    assert_eq!(Digit::from_event_code(16), None);
    assert_eq!(Digit::from_event_code(255), None);
}

#[test]
fn payload_parse() {
    let p = TelephoneEventPayload::parse(&[11, 0x8A, 0x03, 0x20]).unwrap();
    assert_eq!(p.blocks, vec![block(11, true, 800)]);
    // The R bit is ignored on receipt (§2.3.3).
    let p = TelephoneEventPayload::parse(&[1, 0x4A, 0, 160, 2, 0x00, 1, 0]).unwrap();
    assert_eq!(
        p.blocks,
        vec![
            block(1, false, 160),
            EventBlock {
                volume: 0,
                ..block(2, false, 256)
            }
        ]
    );
    for bad in [&[][..], &[1, 2, 3], &[1, 2, 3, 4, 5]] {
        let err = TelephoneEventPayload::parse(bad).unwrap_err();
        assert_eq!(err, PayloadError::Length { len: bad.len() });
        assert!(err.to_string().contains("4-byte"));
    }
    assert_eq!(block(9, true, 0x1234).to_bytes(), [9, 0x8A, 0x12, 0x34]);
}

#[test]
fn clean_press_gives_one_start_and_one_end() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    let pkts = press(100, 4000, 5, 800);
    dec.on_packet(pkts[0].0.clone(), t0);
    // Started comes out on the very first packet.
    assert_eq!(
        drain(&mut dec),
        [DtmfEvent::Started {
            digit: Digit::D5,
            at: t0
        }]
    );
    assert_eq!(dec.deadline(), Some(t0 + DEFAULT_END_TIMEOUT));
    feed(&mut dec, t0, &pkts[1..]);
    assert_eq!(
        drain(&mut dec),
        [DtmfEvent::Ended {
            digit: Digit::D5,
            duration: 100 * MS
        }]
    );
    assert_eq!(dec.deadline(), None);
}

#[test]
fn all_sixteen_digits() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    for code in 0..16u8 {
        feed(
            &mut dec,
            t0,
            &press(u16::from(code) * 20, u32::from(code) * 8000, code, 640),
        );
    }
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "0123456789*#ABCD");
    assert_eq!(digits_ended(&evs), "0123456789*#ABCD");
}

#[test]
fn other_event_codes_are_ignored() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    // Flash (16) and a modem tone (32) alone produce nothing.
    feed(&mut dec, t0, &press(1, 1000, 16, 800));
    feed(&mut dec, t0, &press(20, 9000, 32, 800));
    assert!(drain(&mut dec).is_empty());
    assert_eq!(dec.deadline(), None);
    // Nor do they disturb a digit in progress.
    let p = press(40, 20_000, 3, 800);
    feed(&mut dec, t0, &p[..2]);
    dec.on_packet(pkt(42, 21_000, true, 16, false, 160), t0 + 30 * MS);
    feed(&mut dec, t0, &p[2..]);
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "3");
    assert_eq!(ended_durations(&evs), [100 * MS]);
}

#[test]
fn duplicates_and_reordering() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    let mut p = press(500, 77_000, 9, 960);
    // Duplicate every packet, then swap some neighbours, including the end packets.
    p = p.into_iter().flat_map(|x| [x.clone(), x]).collect();
    p.swap(2, 5);
    p.swap(9, 12);
    p.swap(10, 15);
    assert_eq!(p.len(), 16);
    feed(&mut dec, t0, &p);
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "9");
    assert_eq!(digits_ended(&evs), "9");
    assert_eq!(ended_durations(&evs), [120 * MS]);
}

#[test]
fn lost_start_packets() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    // First seen packet is mid-event.
    feed(&mut dec, t0, &press(10, 1000, 1, 800)[3..]);
    // First seen packet is an end packet (all updates lost) — and then its retransmissions.
    feed(&mut dec, t0, &press(30, 9000, 2, 800)[4..]);
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "12");
    assert_eq!(digits_ended(&evs), "12");
}

#[test]
fn lost_end_packets_end_by_timeout() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    let p = press(10, 1000, 4, 800);
    feed(&mut dec, t0, &p[..4]); // last update at 60 ms, duration 640
    assert_eq!(digits_started(&drain(&mut dec)), "4");
    let deadline = dec.deadline().unwrap();
    assert_eq!(deadline, t0 + 60 * MS + DEFAULT_END_TIMEOUT);
    dec.on_timeout(deadline - MS);
    assert!(drain(&mut dec).is_empty(), "not before the deadline");
    dec.on_timeout(deadline);
    assert_eq!(
        drain(&mut dec),
        [DtmfEvent::Ended {
            digit: Digit::D4,
            duration: 80 * MS
        }]
    );
    assert_eq!(dec.deadline(), None);
    // The end packets turn up late after all: still one press.
    feed(&mut dec, t0 + Duration::from_secs(1), &p[4..]);
    assert!(drain(&mut dec).is_empty());
}

#[test]
fn custom_end_timeout() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000).with_end_timeout(400 * MS);
    dec.on_packet(pkt(1, 0, true, 0, false, 160), t0);
    assert_eq!(dec.deadline(), Some(t0 + 400 * MS));
}

#[test]
fn new_timestamp_ends_previous_event() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    // '6' loses its end packets; '7' starts with a new timestamp and no marker.
    feed(&mut dec, t0, &press(1, 1000, 6, 800)[..3]);
    dec.on_packet(pkt(10, 3000, false, 7, false, 160), t0 + 200 * MS);
    let evs = drain(&mut dec);
    assert_eq!(
        evs,
        [
            DtmfEvent::Started {
                digit: Digit::D6,
                at: t0
            },
            DtmfEvent::Ended {
                digit: Digit::D6,
                duration: 60 * MS
            },
            DtmfEvent::Started {
                digit: Digit::D7,
                at: t0 + 200 * MS
            },
        ]
    );
}

#[test]
fn repeated_key_with_distinct_timestamps_is_two_digits() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    feed(&mut dec, t0, &press(1, 1000, 8, 800));
    feed(&mut dec, t0, &press(20, 3000, 8, 800));
    // Even when the first press's end packets were lost.
    feed(&mut dec, t0, &press(40, 6000, 8, 800)[..2]);
    feed(&mut dec, t0, &press(60, 8000, 8, 800));
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "8888");
    assert_eq!(digits_ended(&evs), "8888");
}

#[test]
fn replay_of_finished_event_is_not_a_new_digit() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    let p = press(1, 1000, 0, 800);
    feed(&mut dec, t0, &p);
    feed(&mut dec, t0, &press(20, 5000, 1, 800));
    // The whole first press again, with fresh sequence numbers and marker, much later.
    let replay: Vec<_> = p
        .iter()
        .map(|(x, t)| {
            (
                TelephoneEventPacket {
                    seq: x.seq + 100,
                    ..x.clone()
                },
                t + 5000,
            )
        })
        .collect();
    feed(&mut dec, t0, &replay);
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "01");
    assert_eq!(digits_ended(&evs), "01");
}

#[test]
fn senders_without_marker() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    for (seq0, ts, code) in [(1u16, 100u32, 1u8), (20, 2000, 1), (40, 4000, 2)] {
        let p: Vec<_> = press(seq0, ts, code, 800)
            .into_iter()
            .map(|(x, t)| (TelephoneEventPacket { marker: false, ..x }, t))
            .collect();
        feed(&mut dec, t0, &p);
    }
    assert_eq!(digits_ended(&drain(&mut dec)), "112");
}

#[test]
fn sequence_and_timestamp_wraparound() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    // Sequence wraps mid-press; the next press's timestamp has wrapped past zero.
    feed(&mut dec, t0, &press(65533, u32::MAX - 500, 5, 800));
    feed(&mut dec, t0, &press(7, 300, 5, 800));
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "55");
    assert_eq!(ended_durations(&evs), [100 * MS, 100 * MS]);
}

#[test]
fn late_packet_of_unknown_old_event_is_ignored() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    feed(&mut dec, t0, &press(100, 50_000, 3, 800));
    // A straggler from before (seq 90), timestamp never seen: reordered junk, not a press.
    dec.on_packet(pkt(90, 40_000, false, 9, false, 320), t0 + 200 * MS);
    // The sender restarts its sequence far away: accepted.
    dec.on_packet(pkt(40_000, 90_000, true, 4, true, 800), t0 + 300 * MS);
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "34");
}

#[test]
fn segmented_long_press_is_one_digit() {
    // §2.5.1.3: 10 s at 8 kHz = 80 000 units: one segment of 0xFFFF, then a segment starting
    // at ts + 0xFFFF, without marker, ending with E.
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    let ts0 = u32::MAX - 20_000; // the segment boundary also crosses the timestamp wrap
    let mut seq = 1u16;
    let mut d: u32 = 160;
    let mut at = 0u64;
    while d < 0xFFFF {
        dec.on_packet(
            pkt(seq, ts0, seq == 1, 11, false, d as u16),
            t0 + MS * at as u32,
        );
        seq += 1;
        d += 160;
        at += 20;
    }
    dec.on_packet(pkt(seq, ts0, false, 11, false, 0xFFFF), t0 + MS * at as u32);
    // A retransmission of the segment's last packet after the new segment began.
    let late_old = pkt(seq, ts0, false, 11, false, 0xFFFF);
    let ts1 = ts0.wrapping_add(0xFFFF);
    let rest: u32 = 80_000 - 0xFFFF;
    let mut d2 = 160u32;
    while d2 < rest {
        seq += 1;
        at += 20;
        dec.on_packet(
            pkt(seq, ts1, false, 11, false, d2 as u16),
            t0 + MS * at as u32,
        );
        if d2 == 320 {
            dec.on_packet(late_old.clone(), t0 + MS * at as u32);
        }
        d2 += 160;
    }
    for _ in 0..3 {
        seq += 1;
        at += 20;
        dec.on_packet(
            pkt(seq, ts1, false, 11, true, rest as u16),
            t0 + MS * at as u32,
        );
    }
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "#");
    assert_eq!(ended_durations(&evs), [Duration::from_secs(10)]);
}

#[test]
fn duration_field_wrap_from_nonconforming_sender() {
    // Some senders keep the timestamp and let the 16-bit duration wrap instead of segmenting.
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    let total: u32 = 90_000;
    let mut d = 160u32;
    let mut seq = 1u16;
    while d < total {
        dec.on_packet(
            pkt(seq, 1234, seq == 1, 1, false, d as u16),
            t0 + MS * seq as u32 * 20,
        );
        if seq == 420 {
            // A reordered packet from before the wrap (duration ~65 000) after it.
            dec.on_packet(pkt(seq - 10, 1234, false, 1, false, 65_120), t0);
        }
        seq += 1;
        d += 160;
    }
    dec.on_packet(
        pkt(seq, 1234, false, 1, true, total as u16),
        t0 + MS * seq as u32 * 20,
    );
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "1");
    assert_eq!(ended_durations(&evs), [Duration::from_millis(11_250)]);
}

#[test]
fn packed_events_in_one_payload() {
    // §2.5.1.5: '1' (ended, 800 units) then '2' starting at ts + 800, in one packet.
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    let packed = TelephoneEventPacket {
        seq: 1,
        timestamp: 1000,
        marker: true,
        payload: TelephoneEventPayload {
            blocks: vec![block(1, true, 800), block(2, false, 320)],
        },
    };
    dec.on_packet(packed, t0);
    // The next packet updates '2' by its own timestamp and ends it.
    dec.on_packet(pkt(2, 1800, false, 2, true, 480), t0 + 20 * MS);
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "12");
    assert_eq!(ended_durations(&evs), [100 * MS, 60 * MS]);
}

#[test]
fn other_clock_rate() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(48_000);
    dec.on_packet(pkt(1, 0, true, 12, true, 4800), t0);
    assert_eq!(
        drain(&mut dec)[1],
        DtmfEvent::Ended {
            digit: Digit::A,
            duration: 100 * MS
        }
    );
    // Zero rate from a bad SDP falls back to 8000 instead of dividing by zero.
    let mut dec = Rfc4733Decoder::new(0);
    dec.on_packet(pkt(1, 0, true, 12, true, 800), t0);
    assert_eq!(ended_durations(&drain(&mut dec)), [100 * MS]);
}

/// SIPp's `dtmf_2833_*.pcap` captures all carry RTP timestamp 13280 and the
/// same sequence numbers: played one after another they are different keys
/// (different presses); the same capture twice is one press.
#[test]
fn replayed_captures_sharing_timestamp_and_sequence() {
    let mut dec = Rfc4733Decoder::new(8000);
    let t0 = Instant::now();
    let mut at = 0u64;
    let mut feed_at = |dec: &mut Rfc4733Decoder, code: u8| {
        let pkts: Vec<_> = press(7984, 13280, code, 1280)
            .into_iter()
            .map(|(p, ms)| (p, ms + at))
            .collect();
        feed(dec, t0, &pkts);
        at += 1000;
    };
    for code in [1u8, 2, 3, 11, 10, 2] {
        feed_at(&mut dec, code);
    }
    let evs = drain(&mut dec);
    // 1, 2, 3, #, *, then 2 again: "2" at 13280 already finished: one press.
    assert_eq!(digits_started(&evs), "123#*");
    assert_eq!(digits_ended(&evs), "123#*");
}

/// SIPp's captures played "4" then "3": the second has its own timestamp but
/// sequence numbers ~34 behind the first. Its marked start packet is a new
/// press; an unmarked straggler would not be.
#[test]
fn marked_start_behind_in_sequence_is_a_new_press() {
    let t0 = Instant::now();
    let mut dec = Rfc4733Decoder::new(8000);
    feed(&mut dec, t0, &press(8121, 37120, 4, 1280));
    let later: Vec<_> = press(8087, 31040, 3, 1280)
        .into_iter()
        .map(|(p, ms)| (p, ms + 500))
        .collect();
    feed(&mut dec, t0, &later);
    let evs = drain(&mut dec);
    assert_eq!(digits_started(&evs), "43");
    assert_eq!(digits_ended(&evs), "43");
}

/// Issue 12: presses through a path with 5 % loss, 1 % duplication and 5 %
/// of packets held back 10-40 ms (so later ones overtake them), for many
/// seeds: every press is one digit, the same key twice included. The
/// presses are 150 ms apart and last 120 ms, so a held-back end packet of
/// one press arrives after the next press has begun.
#[test]
fn lossy_path_gives_each_press_once() {
    // SplitMix64, as the lossy relay of tests/lossy_path.rs.
    fn next(s: &mut u64) -> f64 {
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    let keys = [9u8, 1, 1, 11];
    let mut sent = Vec::new();
    for (i, code) in keys.iter().enumerate() {
        let at = 150 * i as u64;
        let p = press(100 + 10 * i as u16, 8000 + 1200 * i as u32, *code, 800);
        sent.extend(p.into_iter().map(|(p, t)| (p, t + at)));
    }
    for seed in 0..2000u64 {
        let mut s = seed;
        let mut arrived: Vec<(TelephoneEventPacket, u64)> = Vec::new();
        for (p, t) in &sent {
            if next(&mut s) < 0.05 {
                continue;
            }
            let copies = if next(&mut s) < 0.01 { 2 } else { 1 };
            for _ in 0..copies {
                let held = if next(&mut s) < 0.05 {
                    10 + (30.0 * next(&mut s)) as u64
                } else {
                    0
                };
                arrived.push((p.clone(), t + held));
            }
        }
        // Stable: packets with the same arrival time keep their send order.
        arrived.sort_by_key(|(_, t)| *t);
        let t0 = Instant::now();
        let mut dec = Rfc4733Decoder::new(8000);
        feed(&mut dec, t0, &arrived);
        dec.on_timeout(t0 + 10_000 * MS);
        let evs = drain(&mut dec);
        assert_eq!(digits_started(&evs), "911#", "seed {seed}: {arrived:?}");
        assert_eq!(digits_ended(&evs), "911#", "seed {seed}");
    }
}
