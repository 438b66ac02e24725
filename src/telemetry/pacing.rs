//! Pacing lateness as a Prometheus histogram, rendered from the pacing
//! thread's own fixed buckets (10 µs wide, see `media/engine/stats.rs`).
//! The thread already counts every paced send in one relaxed atomic; going
//! through the `metrics` facade instead would add a registry lookup and a
//! second atomic per packet on the hottest path, for the same figure.

use std::fmt::Write as _;
use std::time::Duration;

use super::PACING_LATENESS;

/// Upper bounds (µs) of the exported buckets: from "on time" to the 10 ms a
/// late packet already sounds like a gap at. Each is a multiple of the
/// thread's 10 µs buckets, so every count falls wholly into one.
const BOUNDS_US: [u64; 9] = [10, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000];

/// The histogram in Prometheus text format (0.0.4). `counts[i]` is the
/// number of sends whose lateness was in `[i, i+1) * width`; the last entry
/// collects everything later. `_sum` is accurate to half a bucket per send
/// (each send counts at its bucket's middle): the thread keeps no sum, and
/// adding one would cost another atomic per packet.
pub fn render_pacing_lateness(counts: &[u64], width: Duration) -> String {
    let width_us = u64::try_from(width.as_micros()).unwrap_or(u64::MAX).max(1);
    let last = counts.len().saturating_sub(1);
    let mut cumulative = vec![0u64; BOUNDS_US.len()];
    let (mut total, mut sum) = (0u64, 0f64);
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        total = total.saturating_add(c);
        let low_us = (i as u64).saturating_mul(width_us);
        // The catch-all last bucket has no upper edge: count it at its low edge.
        let mid_us = if i == last {
            low_us as f64
        } else {
            low_us as f64 + width_us as f64 / 2.0
        };
        sum += c as f64 * mid_us / 1e6;
        let high_us = low_us.saturating_add(width_us);
        for (b, bound) in BOUNDS_US.iter().enumerate() {
            if i != last && high_us <= *bound {
                cumulative[b] = cumulative[b].saturating_add(c);
            }
        }
    }
    let mut out = String::with_capacity(1024);
    let _ = writeln!(
        out,
        "# HELP {PACING_LATENESS} How late each paced RTP packet left, after its ideal send time"
    );
    let _ = writeln!(out, "# TYPE {PACING_LATENESS} histogram");
    for (b, bound) in BOUNDS_US.iter().enumerate() {
        let le = *bound as f64 / 1e6;
        let _ = writeln!(
            out,
            "{PACING_LATENESS}_bucket{{le=\"{le}\"}} {}",
            cumulative[b]
        );
    }
    let _ = writeln!(out, "{PACING_LATENESS}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{PACING_LATENESS}_sum {sum}");
    let _ = writeln!(out, "{PACING_LATENESS}_count {total}");
    out
}
