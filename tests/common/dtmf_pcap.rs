//! RFC 4733 key presses written as a pcap for SIPp's `play_pcap_audio`.
//!
//! Debian's `dtmf_2833_*.pcap` captures hold one key each with its own RTP
//! timestamp, so the same capture played twice in a call is rightly one key
//! press (RFC 4733 §2.5.1.2: an event is identified by its timestamp). A
//! test that needs a key twice, or a duplicate to change the outcome, needs
//! presses with distinct timestamps in one stream: this writes them.
//! SIPp rewrites only the addresses and ports; RTP headers go as written.

use std::path::Path;

/// One key press: the key and when it starts, in ms from the first.
pub struct Press {
    pub key: char,
    pub at_ms: u32,
}

fn event_code(key: char) -> u8 {
    match key {
        '0'..='9' => key as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => key as u8 - b'A' + 12,
        _ => panic!("no RFC 4733 event for key {key:?}"),
    }
}

/// Writes `presses` as telephone-event packets (payload type `pt`, one
/// SSRC, rising sequence numbers, 8 kHz timestamps from each press's start)
/// in the shape of Debian's captures: an update every 20 ms for 160 ms, then
/// the end packet three times (RFC 4733 §2.5.1.4) with one sequence number.
pub fn write(path: &Path, presses: &[Press], pt: u8) {
    let mut out = Vec::new();
    // pcap global header: microsecond timestamps, Ethernet link type.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let ssrc: u32 = 0x5eed_0001;
    let base_ts: u32 = 16_000;
    let mut seq: u16 = 1000;
    for p in presses {
        let ts = base_ts + p.at_ms * 8;
        let code = event_code(p.key);
        // Updates at 0, 20, ... 140 ms; durations 0, 160, ... 1120.
        for i in 0..8u32 {
            let dur = (i * 160) as u16;
            let payload = [code, 10, (dur >> 8) as u8, dur as u8];
            let rtp = rtp(pt, i == 0, seq, ts, ssrc, &payload);
            record(&mut out, (p.at_ms + i * 20) * 1000, &rtp);
            seq = seq.wrapping_add(1);
        }
        let dur: u16 = 8 * 160;
        let payload = [code, 0x80 | 10, (dur >> 8) as u8, dur as u8];
        let rtp = rtp(pt, false, seq, ts, ssrc, &payload);
        for k in 0..3u32 {
            record(&mut out, (p.at_ms + 160) * 1000 + k * 50, &rtp);
        }
        seq = seq.wrapping_add(1);
    }
    std::fs::write(path, out).expect("write DTMF pcap");
}

fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | (pt & 0x7f)];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// One Ethernet/IPv4/UDP frame around `udp_payload`, at `micros`.
fn record(out: &mut Vec<u8>, micros: u32, udp_payload: &[u8]) {
    let udp_len = 8 + udp_payload.len();
    let ip_len = 20 + udp_len;
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00]);
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&6000u16.to_be_bytes());
    f.extend_from_slice(&6000u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (IPv4 allows it)
    f.extend_from_slice(udp_payload);
    out.extend_from_slice(&(micros / 1_000_000).to_le_bytes());
    out.extend_from_slice(&(micros % 1_000_000).to_le_bytes());
    out.extend_from_slice(&(f.len() as u32).to_le_bytes());
    out.extend_from_slice(&(f.len() as u32).to_le_bytes());
    out.extend_from_slice(&f);
}
