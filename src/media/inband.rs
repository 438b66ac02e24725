//! In-band DTMF detection (Goertzel) on 8 kHz linear samples, sans-IO.
//!
//! For callers whose gateway sends tones as audio instead of RFC 4733 events. Samples are
//! cut into blocks of [`BLOCK`] samples (12.75 ms); each block is tested for exactly one
//! low-group and one high-group tone (ITU-T Q.23 frequencies) with level, twist, relative-peak
//! and tone-to-total-energy checks. A key is reported once, after [`HITS_TO_REPORT`]
//! consecutive matching blocks (a 40 ms tone, ITU-T Q.24's minimum, always covers two whole
//! blocks whatever its alignment; a 20 ms blip never does), and not again until
//! [`MISSES_TO_RELEASE`] blocks without it (a real inter-digit pause, ≥ 40 ms per Q.24,
//! always contains two, while a one-block dropout inside a press does not split it).

use std::collections::VecDeque;

use super::dtmf::Digit;

/// Samples per analysis block. 102 at 8 kHz puts each Goertzel filter's first null close to
/// the neighbouring DTMF frequency (≈78 Hz away), so one tone barely leaks into the next bin,
/// while keeping blocks short enough to time a 40 ms tone.
pub const BLOCK: usize = 102;
/// Consecutive hit blocks before a key is reported.
pub const HITS_TO_REPORT: u32 = 2;
/// Consecutive non-matching blocks that end a press.
pub const MISSES_TO_RELEASE: u32 = 2;

const SAMPLE_RATE: f32 = 8000.0;
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Keypad layout by (row, column), matching `ROWS` x `COLS`.
const KEYS: [[Digit; 4]; 4] = [
    [Digit::D1, Digit::D2, Digit::D3, Digit::A],
    [Digit::D4, Digit::D5, Digit::D6, Digit::B],
    [Digit::D7, Digit::D8, Digit::D9, Digit::C],
    [Digit::Star, Digit::D0, Digit::Hash, Digit::D],
];

/// Minimum power of each tone, as the amplitude of a sine in 16-bit linear: 360 is about
/// -36 dBm0 on a G.711 scale, the quietest level gateways are expected to send.
const MIN_TONE_AMPLITUDE: f32 = 360.0;
/// Allowed level difference between the groups: 8 dB either way (power ratio 6.3), wider
/// than Q.24's typical 4-8 dB so long lines still pass; speech rarely meets the other checks.
const MAX_TWIST: f32 = 6.3;
/// The winning tone of each group must beat every other tone in its group by 8 dB.
const RELATIVE_PEAK: f32 = 6.3;
/// The two tones must carry this share of the block's energy: speech and music spread
/// their energy over many frequencies, a DTMF pair does not.
const TONE_TO_TOTAL: f32 = 0.7;

/// A detected key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InbandDigit {
    pub digit: Digit,
    /// Sample index (since the detector was created) of the end of the block that confirmed
    /// it; divide by 8000 for seconds.
    pub at_sample: u64,
}

/// Goertzel in-band DTMF detector for one 8 kHz stream.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    coeffs: [f32; 8],
    /// Goertzel state (s[n-1], s[n-2]) per filter: rows then columns.
    state: [(f32, f32); 8],
    block_energy: f32,
    in_block: usize,
    samples_seen: u64,
    candidate: Option<Digit>,
    hits: u32,
    reported: Option<Digit>,
    misses: u32,
    out: VecDeque<InbandDigit>,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> Self {
        let mut coeffs = [0.0; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            // Goertzel at the exact frequency (non-integer bin) rather than the nearest DFT bin.
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / SAMPLE_RATE).cos();
        }
        InbandDetector {
            coeffs,
            state: [(0.0, 0.0); 8],
            block_energy: 0.0,
            in_block: 0,
            samples_seen: 0,
            candidate: None,
            hits: 0,
            reported: None,
            misses: 0,
            out: VecDeque::new(),
        }
    }

    /// Feed decoded 8 kHz samples, in any chunk size.
    pub fn push_samples(&mut self, samples: &[i16]) {
        for &s in samples {
            let x = f32::from(s);
            for (st, &c) in self.state.iter_mut().zip(&self.coeffs) {
                let s0 = x + c * st.0 - st.1;
                *st = (s0, st.0);
            }
            self.block_energy += x * x;
            self.in_block += 1;
            self.samples_seen += 1;
            if self.in_block == BLOCK {
                let hit = self.classify_block();
                self.on_block(hit);
                self.state = [(0.0, 0.0); 8];
                self.block_energy = 0.0;
                self.in_block = 0;
            }
        }
    }

    /// Next detected key press, oldest first.
    pub fn poll_digit(&mut self) -> Option<InbandDigit> {
        self.out.pop_front()
    }

    /// Forget any tone in progress (e.g. after the stream was paused or re-negotiated).
    pub fn reset(&mut self) {
        let seen = self.samples_seen;
        let out = std::mem::take(&mut self.out);
        *self = InbandDetector::new();
        self.samples_seen = seen;
        self.out = out;
    }

    /// The digit this block holds, if it passes every check.
    fn classify_block(&self) -> Option<Digit> {
        let mut power = [0.0f32; 8];
        for ((p, &(s1, s2)), &c) in power.iter_mut().zip(&self.state).zip(&self.coeffs) {
            // |X(f)|^2 from the Goertzel state; scaled by 2/N it is the energy of that
            // sinusoid within the block, comparable with `block_energy`.
            *p = (s1 * s1 + s2 * s2 - c * s1 * s2) * 2.0 / BLOCK as f32;
        }
        let (rows, cols) = power.split_at(4);
        let (r, row_p) = strongest(rows)?;
        let (c, col_p) = strongest(cols)?;
        // A sine of amplitude A has energy N*A^2/2 over the block.
        let min = MIN_TONE_AMPLITUDE * MIN_TONE_AMPLITUDE * BLOCK as f32 / 2.0;
        if row_p < min || col_p < min {
            return None;
        }
        if row_p > col_p * MAX_TWIST || col_p > row_p * MAX_TWIST {
            return None;
        }
        let dominates = |group: &[f32], best: usize, p: f32| {
            group
                .iter()
                .enumerate()
                .all(|(i, &q)| i == best || q * RELATIVE_PEAK < p)
        };
        if !dominates(rows, r, row_p) || !dominates(cols, c, col_p) {
            return None;
        }
        if row_p + col_p < TONE_TO_TOTAL * self.block_energy {
            return None;
        }
        KEYS.get(r).and_then(|k| k.get(c)).copied()
    }

    fn on_block(&mut self, hit: Option<Digit>) {
        match hit {
            Some(d) => {
                if self.candidate == Some(d) {
                    self.hits = self.hits.saturating_add(1);
                } else {
                    self.candidate = Some(d);
                    self.hits = 1;
                }
                self.misses = 0;
                if self.hits >= HITS_TO_REPORT && self.reported != Some(d) {
                    self.reported = Some(d);
                    self.out.push_back(InbandDigit {
                        digit: d,
                        at_sample: self.samples_seen,
                    });
                }
            }
            None => {
                self.candidate = None;
                self.hits = 0;
                self.misses = self.misses.saturating_add(1);
                if self.misses >= MISSES_TO_RELEASE {
                    self.reported = None;
                }
            }
        }
    }
}

/// Index and power of the strongest filter in a group.
fn strongest(group: &[f32]) -> Option<(usize, f32)> {
    group
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

#[cfg(test)]
#[path = "inband_tests.rs"]
mod tests;
