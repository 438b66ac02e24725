//! Gives a table's memory back after a peak. At the crate's root, beside
//! nothing it depends on, so `sip/` and `media/` both use it.
//!
//! A `HashMap` or `BinaryHeap` keeps the room of its fullest moment for
//! good. After 2 000 held calls had hung up, the SIP core's tables still
//! held their peak's buckets, megabytes with no call up: most of the RSS a
//! run left behind (issue 15). Called once the removals of a round are done,
//! these shrink a table that uses under a quarter of its room to twice its
//! length. A shrink costs O(len) and the next one needs the length to halve
//! again, so the cost stays O(1) per removal amortised, and a load that
//! swings by less than 4× never reallocates.

use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash};

/// Below this room a table is not worth a reallocation.
const FLOOR: usize = 256;

fn target(len: usize, capacity: usize) -> Option<usize> {
    (capacity > FLOOR && len < capacity / 4).then(|| len.saturating_mul(2).max(FLOOR / 2))
}

/// Shrinks `map` when it is under a quarter full (see the module).
pub fn shrink_map<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if let Some(to) = target(map.len(), map.capacity()) {
        map.shrink_to(to);
    }
}

/// Shrinks `heap` when it is under a quarter full (see the module).
pub fn shrink_heap<T: Ord>(heap: &mut BinaryHeap<T>) {
    if let Some(to) = target(heap.len(), heap.capacity()) {
        heap.shrink_to(to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_emptied_after_a_peak_gives_its_room_back() {
        let mut m: HashMap<u32, [u8; 64]> = HashMap::new();
        m.extend((0..10_000).map(|i| (i, [0; 64])));
        let peak = m.capacity();
        m.retain(|k, _| *k < 10);
        shrink_map(&mut m);
        assert!(m.capacity() < 256, "room {} of {peak} kept", m.capacity());
        assert_eq!(m.len(), 10);
        assert!((0..10).all(|k| m.contains_key(&k)));

        let mut h: BinaryHeap<u32> = (0..10_000).collect();
        while h.len() > 10 {
            h.pop();
        }
        shrink_heap(&mut h);
        assert!(h.capacity() < 256);
        assert_eq!(h.into_sorted_vec(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_table_over_a_quarter_full_or_small_keeps_its_room() {
        let mut m: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        m.retain(|k, _| *k < 4_000);
        // (Removals leave tombstones, so the room reported moves a little.)
        let room = m.capacity();
        assert!(room > 13_000);
        shrink_map(&mut m);
        assert_eq!(m.capacity(), room, "a swing under 4x must not reallocate");

        let mut small: HashMap<u32, u32> = (0..200).map(|i| (i, i)).collect();
        let room = small.capacity();
        small.clear();
        shrink_map(&mut small);
        assert_eq!(small.capacity(), room);
    }

    #[test]
    fn shrinking_after_each_removal_costs_few_reallocations() {
        // Emptying 100 000 entries one by one, shrinking after each: the
        // room halves (at least) each time, so a few dozen shrinks at most.
        let mut m: HashMap<u32, u32> = (0..100_000).map(|i| (i, i)).collect();
        let mut shrinks = 0;
        for k in 0..100_000 {
            m.remove(&k);
            let before = m.capacity();
            shrink_map(&mut m);
            if m.capacity() != before {
                shrinks += 1;
            }
        }
        assert!(shrinks <= 12, "{shrinks} shrinks");
        assert!(m.capacity() <= 256);
    }
}
