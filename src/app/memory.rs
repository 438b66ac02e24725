//! Gives freed heap memory back to the operating system.
//!
//! glibc's allocator keeps memory a burst freed (1 000 TCP connections
//! closed at once, a flood's transactions) in its arenas, and with a
//! multi-threaded runtime in many arenas: RSS stays at the burst's peak
//! though nothing uses it. Every [`PERIOD`] this asks glibc how much free
//! memory it holds and, past [`SLACK`], trims it (`malloc_trim(0)`, which
//! since glibc 2.8 also releases free pages inside every arena, not only
//! at the top of the main heap). A quiet switch pays one `mallinfo2` call
//! per period.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the allocator is asked.
pub const PERIOD: Duration = Duration::from_secs(5);
/// Free heap kept without trimming (a switch under steady load reuses it).
pub const SLACK: usize = 8 << 20;

/// Trims until `cancel`.
pub async fn run(cancel: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => trim(),
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: both are plain glibc calls with no pointer arguments;
    // mallinfo2 only reads the allocator's counters under its own locks.
    let info = unsafe { libc::mallinfo2() };
    let free = info.fordblks;
    // Live allocations: small blocks (`uordblks`) and mmapped ones (`hblkhd`).
    crate::telemetry::heap(info.uordblks.saturating_add(info.hblkhd), free);
    if free > SLACK {
        // SAFETY: as above; 0 = keep no padding at the top of the heap.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            free_kib = free / 1024,
            released = released == 1,
            "heap trimmed"
        );
    }
}

/// Other allocators (musl's, say) give memory back by themselves or not at
/// all; nothing to ask them.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
