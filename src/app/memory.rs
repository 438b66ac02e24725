//! The heap's figures on `/metrics`.
//!
//! The switch runs on jemalloc (`main.rs`; why in docs/decisions.md,
//! "jemalloc as the allocator"), built with its background threads on: pages
//! nothing has used for `dirty_decay_ms` (10 s by default) go back to the
//! operating system from those threads, whole pages out of runs that still
//! hold live blocks included. So a switch that has carried a peak returns
//! near its resting RSS by itself, without a trim from here (glibc's
//! `malloc_trim`, which this module used to call, cannot release the free
//! runs of pages that also hold live blocks). Operators tune it with
//! jemalloc's own `MALLOC_CONF`, e.g. `MALLOC_CONF=dirty_decay_ms:2000`.
//!
//! Every [`PERIOD`] this reads jemalloc's counters and publishes them.

use std::time::Duration;

use tikv_jemalloc_ctl::{epoch, stats};
use tokio_util::sync::CancellationToken;

/// How often the allocator is asked.
pub const PERIOD: Duration = Duration::from_secs(5);

/// What the allocator holds, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heap {
    /// Bytes the program has allocated and not freed.
    pub in_use: usize,
    /// Resident bytes the allocator holds beyond them: free runs, pages
    /// not yet decayed, its own metadata.
    pub free: usize,
}

/// Reports until `cancel`.
pub async fn run(cancel: CancellationToken) {
    if !returns_pages_by_itself() {
        tracing::warn!(
            "jemalloc's background threads are off (MALLOC_CONF): memory a peak \
             freed stays resident until its arena allocates again"
        );
    }
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => match read() {
                Ok(h) => crate::telemetry::heap(h.in_use, h.free),
                Err(e) => tracing::debug!(error = %e, "heap figures unavailable"),
            },
        }
    }
}

/// The allocator's counters now. jemalloc caches its statistics until its
/// epoch is advanced, so this advances it first (a merge of every arena's
/// counters: microseconds, once a period).
pub fn read() -> Result<Heap, tikv_jemalloc_ctl::Error> {
    epoch::advance()?;
    let in_use = stats::allocated::read()?;
    let resident = stats::resident::read()?;
    Ok(Heap {
        in_use,
        free: resident.saturating_sub(in_use),
    })
}

/// Whether jemalloc returns unused pages from its background threads (the
/// build's default; `MALLOC_CONF=background_thread:false` turns it off).
pub fn returns_pages_by_itself() -> bool {
    tikv_jemalloc_ctl::background_thread::read().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build enables the background threads: without them a peak's
    /// pages stay resident until the next allocation in their arena.
    #[test]
    fn pages_are_returned_by_background_threads() {
        assert!(returns_pages_by_itself());
    }

    /// The counters move with what this process allocates (the crate links
    /// jemalloc unprefixed, so even a test binary's `malloc` is jemalloc's).
    #[test]
    fn a_large_allocation_shows_in_use_until_it_is_freed() {
        const SIZE: usize = 256 << 20;
        let before = read().expect("jemalloc's counters");
        let block = vec![1u8; SIZE];
        let during = read().expect("jemalloc's counters");
        // Other tests allocate and free meanwhile, far less than this.
        assert!(
            during.in_use >= before.in_use + SIZE / 2,
            "{before:?} -> {during:?}"
        );
        drop(std::hint::black_box(block));
        let after = read().expect("jemalloc's counters");
        assert!(
            after.in_use + SIZE / 2 <= during.in_use,
            "{during:?} -> {after:?}"
        );
    }
}
