//! Rewriting one leg's inbound RTP for the other leg (the bridge), in place.
//!
//! We act as an RTP translator that hides itself: the far end of leg B must see one stream
//! from B's SSRC whatever happens on leg A (prompts, then the agent's phone, a re-INVITE
//! that changes A's SSRC). So the SSRC is replaced by B's, and sequence numbers and
//! timestamps are shifted by offsets fixed at the first packet of each inbound source:
//! the sequence continues from the last one B sent, the timestamp from B's current tick.
//! Shifting (instead of renumbering) keeps A's gaps and reordering visible to B's jitter
//! buffer and keeps the loss statistics honest (RFC 3550 §7.1). A new inbound source gets
//! the marker bit so B's jitter buffer resynchronises (RFC 3551 §4.1).

use rtp_rs::RtpReader;

use super::shared::Tx;
use crate::media::codec::Codec;
use crate::media::g711;

/// Relay state of a session's outbound side while it is bridged.
#[derive(Debug, Clone)]
pub(crate) struct RelayOut {
    pub bridge_id: u64,
    /// Sequence number after the newest one sent (where prompt mode resumes).
    pub next_seq: u16,
    source: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
}

impl RelayOut {
    pub fn new(bridge_id: u64, next_seq: u16) -> Self {
        RelayOut {
            bridge_id,
            next_seq,
            source: None,
            seq_offset: 0,
            ts_offset: 0,
        }
    }
}

/// What an inbound packet carries, as the receiving leg's SDP says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Audio(Codec),
    Event,
}

/// Rewrite `buf` (a packet received on the other leg) to go out on `out`'s leg. `now_tick`
/// is `out`'s current pacer tick. Returns the payload length sent, or `None` when the packet
/// cannot be carried (not RTP, or an event the far leg did not negotiate).
pub(crate) fn rewrite(buf: &mut [u8], kind: Kind, out: &mut Tx, now_tick: u64) -> Option<usize> {
    let (ssrc, seq, ts, marker, offset, len) = {
        let r = RtpReader::new(buf).ok()?;
        (
            r.ssrc(),
            u16::from(r.sequence_number()),
            r.timestamp(),
            r.mark(),
            r.payload_offset(),
            r.payload().len(),
        )
    };
    let pt = match kind {
        Kind::Audio(from) => {
            if from != out.codec {
                let payload = buf.get_mut(offset..offset.checked_add(len)?)?;
                g711::transcode_in_place(from, out.codec, payload);
            }
            out.pt
        }
        // The event PT is whatever each leg negotiated (never assume 101).
        Kind::Event => out.te_pt?,
    };
    let now_ts = out.ts_for_tick(now_tick);
    let ssrc_out = out.stream.ssrc();
    let relay = out.relay.as_mut()?;
    let new_source = relay.source != Some(ssrc);
    if new_source {
        relay.source = Some(ssrc);
        relay.seq_offset = relay.next_seq.wrapping_sub(seq);
        relay.ts_offset = now_ts.wrapping_sub(ts);
    }
    let seq_out = seq.wrapping_add(relay.seq_offset);
    // Only a newer packet moves `next_seq`; a reordered one keeps its shifted number.
    if (seq_out.wrapping_sub(relay.next_seq) as i16) >= 0 {
        relay.next_seq = seq_out.wrapping_add(1);
    }
    let ts_out = ts.wrapping_add(relay.ts_offset);
    let header = buf.get_mut(1..12)?;
    header[0] = (u8::from(marker || new_source) << 7) | (pt & 0x7F);
    header[1..3].copy_from_slice(&seq_out.to_be_bytes());
    header[3..7].copy_from_slice(&ts_out.to_be_bytes());
    header[7..11].copy_from_slice(&ssrc_out.to_be_bytes());
    out.count_sent(len);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp_stream::RtpStream;
    use crate::media::stream::{Direction, StreamParams};
    use rtp_rs::RtpPacketBuilder;

    fn tx(codec: Codec, te: Option<u8>) -> Tx {
        let params = StreamParams {
            codec,
            pt: codec.payload_type(),
            telephone_event_pt: te,
            remote: "127.0.0.1:5000".parse().unwrap(),
            remote_ptime: None,
            direction: Direction::SendRecv,
            hold: false,
            srtp: None,
        };
        let stream = RtpStream::with_initial(0xB0B0_B0B0, 500, 10_000, 160);
        let mut t = Tx::new(stream, &params, params.remote, params.remote);
        t.relay = Some(RelayOut::new(1, 500));
        t
    }

    fn pkt(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(pt)
            .sequence(seq.into())
            .timestamp(ts)
            .ssrc(ssrc)
            .payload(payload)
            .build()
            .unwrap()
    }

    fn fields(b: &[u8]) -> (u8, bool, u16, u32, u32, Vec<u8>) {
        let r = RtpReader::new(b).unwrap();
        let seq = u16::from(r.sequence_number());
        let p = r.payload().to_vec();
        (r.payload_type(), r.mark(), seq, r.timestamp(), r.ssrc(), p)
    }

    #[test]
    fn transcodes_and_shifts_into_the_out_timeline() {
        let mut out = tx(Codec::Pcma, Some(96));
        let ulaw: Vec<u8> = (0..160u8).collect();
        let alaw: Vec<u8> = ulaw.iter().map(|&u| g711::ulaw_to_alaw(u)).collect();
        let mut got = Vec::new();
        // Inbound 65535, 0, 2 (1 lost), then 1 late.
        for (seq, ts) in [(65535u16, 7000u32), (0, 7160), (2, 7480), (1, 7320)] {
            let mut b = pkt(0, seq, ts, 0xAAAA, &ulaw);
            assert_eq!(
                rewrite(&mut b, Kind::Audio(Codec::Pcmu), &mut out, 3),
                Some(160)
            );
            got.push(fields(&b));
        }
        let base = 10_000 + 3 * 160;
        for (i, (seq, ts, mark)) in [
            (500u16, base, true),
            (501, base + 160, false),
            (503, base + 480, false),
            (502, base + 320, false),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(got[i], (8, mark, seq, ts, 0xB0B0_B0B0, alaw.clone()));
        }
        assert_eq!(out.relay.as_ref().unwrap().next_seq, 504);
        assert_eq!((out.packets, out.octets), (4, 640));
    }

    #[test]
    fn events_are_remapped_or_dropped() {
        let mut out = tx(Codec::Pcmu, Some(96));
        let mut b = pkt(101, 10, 100, 1, &[5, 10, 0, 160]);
        assert_eq!(rewrite(&mut b, Kind::Event, &mut out, 0), Some(4));
        let (pt, mark, seq, ts, _, p) = fields(&b);
        assert_eq!(
            (pt, mark, seq, ts, p),
            (96, true, 500, 10_000, vec![5, 10, 0, 160])
        );

        let mut none = tx(Codec::Pcmu, None);
        let mut b = pkt(101, 10, 100, 1, &[5, 10, 0, 160]);
        assert_eq!(rewrite(&mut b, Kind::Event, &mut none, 0), None);
    }

    #[test]
    fn new_source_resyncs_with_marker_and_garbage_is_refused() {
        let mut out = tx(Codec::Pcmu, None);
        let mut b = pkt(0, 100, 0, 1, &[0xFF; 160]);
        rewrite(&mut b, Kind::Audio(Codec::Pcmu), &mut out, 0).unwrap();
        let mut b = pkt(0, 9000, 123_456, 2, &[0xFF; 160]);
        rewrite(&mut b, Kind::Audio(Codec::Pcmu), &mut out, 50).unwrap();
        let (_, mark, seq, ts, ..) = fields(&b);
        assert_eq!((mark, seq, ts), (true, 501, 10_000 + 50 * 160));
        for junk in [&[][..], &[0x80, 0, 0][..], &[0x40; 20][..], &[0x9F; 12][..]] {
            let mut j = junk.to_vec();
            assert_eq!(rewrite(&mut j, Kind::Audio(Codec::Pcmu), &mut out, 0), None);
        }
    }
}
