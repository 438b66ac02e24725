//! Packet indices: SRTP's 48-bit index estimated from the 16-bit sequence
//! number (RFC 3711 §3.3.1, Appendix A), and the replay list every receiver
//! keeps (§3.3.2).

/// SRTP's packet index is 48 bits: ROC (32) || SEQ (16) (RFC 3711 §3.3.1).
pub(super) const MAX_RTP_INDEX: u64 = (1 << 48) - 1;
/// SRTCP's index is 31 bits (RFC 3711 §3.4).
pub(super) const MAX_RTCP_INDEX: u64 = (1 << 31) - 1;

/// The index of a packet with sequence number `seq`, given the highest index
/// seen so far in its stream (`None`: its first packet, ROC 0 as SDES starts
/// every stream, RFC 4568 §6.4). RFC 3711 Appendix A: the guess among ROC - 1,
/// ROC and ROC + 1 nearest the highest sequence number. `None` when the guess
/// falls before index 0 or past 2^48, where no key may be used (§9.2).
pub(super) fn estimate(highest: Option<u64>, seq: u16) -> Option<u64> {
    let Some(highest) = highest else {
        return Some(u64::from(seq));
    };
    let roc = highest >> 16;
    let s_l = highest & 0xffff;
    let seq = u64::from(seq);
    let v = if s_l < 32_768 {
        if seq > s_l + 32_768 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if seq + 32_768 < s_l {
        roc + 1
    } else {
        roc
    };
    let index = v << 16 | seq;
    (index <= MAX_RTP_INDEX).then_some(index)
}

/// The replay list of one stream (RFC 3711 §3.3.2): the highest index
/// authenticated so far and which of the 63 before it were, a sliding window
/// of 64, the RFC's minimum (a telephone stream reordered by more than 1.28 s
/// is lost anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReplayWindow {
    highest: u64,
    /// Bit `d` set: index `highest - d` was received.
    seen: u64,
}

/// Why the replay list refused an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// Received before.
    Again,
    /// Older than the window: it cannot be told from a replay.
    TooOld,
}

impl ReplayWindow {
    const SIZE: u64 = 64;

    /// Record an authentic `index` in a stream's list, making the list at
    /// the stream's first authentic packet.
    pub(super) fn record(list: &mut Option<ReplayWindow>, index: u64) {
        match list {
            Some(w) => w.accept(index),
            None => *list = Some(ReplayWindow::first(index)),
        }
    }

    /// The list after the first authentic packet of a stream.
    pub(super) fn first(index: u64) -> ReplayWindow {
        ReplayWindow {
            highest: index,
            seen: 1,
        }
    }

    pub(super) fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `index` may be accepted; checked before authentication, and
    /// recorded by [`Self::accept`] only after it (§3.3: an unauthenticated
    /// packet must not move the window).
    pub(super) fn check(&self, index: u64) -> Result<(), Replay> {
        if index > self.highest {
            return Ok(());
        }
        let d = self.highest - index;
        if d >= Self::SIZE {
            Err(Replay::TooOld)
        } else if self.seen & (1 << d) != 0 {
            Err(Replay::Again)
        } else {
            Ok(())
        }
    }

    pub(super) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.seen = if shift >= Self::SIZE {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            let d = self.highest - index;
            if d < Self::SIZE {
                self.seen |= 1 << d;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_packet_has_roc_zero() {
        assert_eq!(estimate(None, 0), Some(0));
        assert_eq!(estimate(None, 65_535), Some(65_535));
    }

    #[test]
    fn sequence_numbers_near_the_highest_keep_its_roc() {
        let h = 5 << 16 | 1000;
        assert_eq!(estimate(Some(h), 1001), Some(5 << 16 | 1001));
        assert_eq!(estimate(Some(h), 900), Some(5 << 16 | 900));
        assert_eq!(estimate(Some(h), 1000 + 32_768), Some(5 << 16 | 33_768));
    }

    #[test]
    fn a_wrap_forward_takes_the_next_roc_and_a_late_packet_the_one_before() {
        // Highest 65 530 in ROC 5: 3 comes after the wrap.
        let h = 5 << 16 | 65_530;
        assert_eq!(estimate(Some(h), 3), Some(6 << 16 | 3));
        // Highest 3 in ROC 6: 65 530 is a late packet from ROC 5.
        let h = 6 << 16 | 3;
        assert_eq!(estimate(Some(h), 65_530), Some(5 << 16 | 65_530));
    }

    #[test]
    fn no_index_before_zero_or_past_two_to_the_48() {
        // ROC 0, highest 10: 65 530 would be ROC -1.
        assert_eq!(estimate(Some(10), 65_530), None);
        assert_eq!(estimate(Some(MAX_RTP_INDEX), 3), None);
        assert_eq!(estimate(Some(MAX_RTP_INDEX), 65_535), Some(MAX_RTP_INDEX));
    }

    #[test]
    fn a_stream_counted_through_many_wraps_keeps_its_index() {
        let mut highest = None;
        for i in 0..300_000u64 {
            let got = estimate(highest, i as u16).unwrap();
            assert_eq!(got, i);
            highest = Some(got);
        }
    }

    #[test]
    fn the_window_refuses_replays_and_the_too_old_and_takes_the_reordered() {
        let mut w = ReplayWindow::first(100);
        assert_eq!(w.check(100), Err(Replay::Again));
        assert_eq!(w.check(101), Ok(()));
        assert_eq!(w.check(99), Ok(()));
        w.accept(99);
        assert_eq!(w.check(99), Err(Replay::Again));
        w.accept(170);
        assert_eq!(w.highest(), 170);
        // 170 - 63 is the oldest the window still knows; 100 and 99 fell out.
        assert_eq!(w.check(107), Ok(()));
        assert_eq!(w.check(106), Err(Replay::TooOld));
        assert_eq!(w.check(100), Err(Replay::TooOld));
        w.accept(107);
        assert_eq!(w.check(107), Err(Replay::Again));
        // A jump of more than the window clears it.
        w.accept(1_000);
        assert_eq!(w.check(999), Ok(()));
        assert_eq!(w.check(1_000), Err(Replay::Again));
    }
}
