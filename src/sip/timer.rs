//! A deadline queue for sans-IO state machines.
//!
//! Entries are never removed eagerly: cancelling a timer is done by the owner
//! forgetting it, and a popped entry is checked against the owner's current
//! state (lazy deletion). That keeps arming and cancelling O(log n) / O(1)
//! without a handle type leaking into every state.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// One armed deadline carrying `T` (usually a key plus which timer it is).
#[derive(Debug)]
struct Entry<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Ties broken by insertion order so equal deadlines fire FIFO.
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Min-heap of deadlines.
#[derive(Debug)]
pub struct TimerQueue<T> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    seq: u64,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> TimerQueue<T> {
    pub fn arm(&mut self, at: Instant, item: T) {
        self.seq = self.seq.wrapping_add(1);
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            item,
        }));
    }

    /// The earliest armed deadline, stale entries included (a stale entry
    /// only costs one spurious wake-up).
    pub fn deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Gives the heap's room back after a peak (`capacity`).
    pub fn shrink(&mut self) {
        crate::capacity::shrink_heap(&mut self.heap);
    }

    /// Pops one entry whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            self.heap.pop().map(|Reverse(e)| (e.at, e.item))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_then_fifo() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.arm(t0 + Duration::from_millis(20), "b");
        q.arm(t0 + Duration::from_millis(10), "a");
        q.arm(t0 + Duration::from_millis(20), "c");
        assert_eq!(q.deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(q.pop_due(t0).is_none());
        let now = t0 + Duration::from_millis(25);
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(now).map(|(_, x)| x)).collect();
        assert_eq!(order, vec!["a", "b", "c"]);
        assert!(q.deadline().is_none());
    }
}
