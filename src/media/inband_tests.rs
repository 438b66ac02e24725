//! Tests for the in-band detector: synthetic tone pairs and a real speech fixture.

use super::*;
use crate::media::g711;

/// Deterministic noise so failures reproduce.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> f32 {
        // xorshift64*, summed four times for a roughly Gaussian shape in [-2, 2].
        let mut acc = 0.0;
        for _ in 0..4 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            acc += (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        acc
    }
}

fn freqs(d: Digit) -> (f32, f32) {
    for (r, row) in KEYS.iter().enumerate() {
        for (c, k) in row.iter().enumerate() {
            if *k == d {
                return (ROWS[r], COLS[c]);
            }
        }
    }
    unreachable!()
}

/// Signal builder: tones and gaps with additive noise of the given amplitude.
struct Gen {
    samples: Vec<i16>,
    noise: Noise,
    noise_amp: f32,
}

impl Gen {
    fn new(noise_amp: f32) -> Self {
        Gen {
            samples: Vec::new(),
            noise: Noise(0x9E37_79B9_7F4A_7C15),
            noise_amp,
        }
    }
    fn push(&mut self, ms: u32, tones: &[(f32, f32)]) -> &mut Self {
        let n = (ms * 8) as usize;
        let start = self.samples.len();
        for i in 0..n {
            let t = (start + i) as f32 / 8000.0;
            let mut v = self.noise.next() * self.noise_amp;
            for &(f, a) in tones {
                v += a * (2.0 * std::f32::consts::PI * f * t).sin();
            }
            self.samples.push(v.clamp(-32768.0, 32767.0) as i16);
        }
        self
    }
    fn key(&mut self, d: Digit, ms: u32, low_amp: f32, high_amp: f32) -> &mut Self {
        let (r, c) = freqs(d);
        self.push(ms, &[(r, low_amp), (c, high_amp)])
    }
    fn gap(&mut self, ms: u32) -> &mut Self {
        self.push(ms, &[])
    }
}

/// Run through a G.711 μ-law round trip (what a real call delivers) in uneven chunks.
fn detect(samples: &[i16]) -> Vec<InbandDigit> {
    let mut codes = Vec::new();
    g711::encode_ulaw(samples, &mut codes);
    let mut lin = Vec::new();
    g711::decode_ulaw(&codes, &mut lin);
    let mut det = InbandDetector::new();
    let mut out = Vec::new();
    for chunk in lin.chunks(37) {
        det.push_samples(chunk);
        out.extend(std::iter::from_fn(|| det.poll_digit()));
    }
    out
}

fn keys(found: &[InbandDigit]) -> String {
    found.iter().map(|d| d.digit.to_char()).collect()
}

#[test]
fn all_sixteen_digits_with_noise() {
    // -20 dBm0-ish tones with 2 dB twist, noise ~25 dB below the pair.
    for d in Digit::ALL {
        let mut g = Gen::new(150.0);
        g.gap(100).key(d, 80, 2800.0, 3500.0).gap(100);
        let found = detect(&g.samples);
        assert_eq!(keys(&found), d.to_char().to_string(), "digit {d}");
        // Confirmed within the tone (800..1440 samples), not before it started.
        assert!(
            (800 + u64::from(HITS_TO_REPORT) * BLOCK as u64..=1440 + BLOCK as u64)
                .contains(&found[0].at_sample)
        );
    }
}

#[test]
fn a_dialled_sequence_and_repeated_keys() {
    let mut g = Gen::new(100.0);
    g.gap(50);
    for c in "1559#0*D".chars() {
        g.key(Digit::from_char(c).unwrap(), 60, 4000.0, 4000.0)
            .gap(50);
    }
    assert_eq!(keys(&detect(&g.samples)), "1559#0*D");
}

#[test]
fn forty_ms_tones_at_any_alignment() {
    for offset_samples in [0u32, 13, 51, 77, 101] {
        let mut g = Gen::new(50.0);
        g.samples
            .extend(std::iter::repeat_n(0, offset_samples as usize));
        g.key(Digit::D8, 40, 5000.0, 5000.0)
            .gap(40)
            .key(Digit::D8, 40, 5000.0, 5000.0)
            .gap(60);
        assert_eq!(keys(&detect(&g.samples)), "88", "offset {offset_samples}");
    }
}

#[test]
fn long_press_is_reported_once() {
    let mut g = Gen::new(200.0);
    g.key(Digit::D3, 2000, 3000.0, 3000.0).gap(100);
    assert_eq!(keys(&detect(&g.samples)), "3");
}

#[test]
fn short_blip_is_ignored() {
    let mut g = Gen::new(50.0);
    g.gap(50).key(Digit::D6, 20, 5000.0, 5000.0).gap(100);
    assert!(detect(&g.samples).is_empty());
}

#[test]
fn single_tones_and_bad_twist_are_ignored() {
    let mut g = Gen::new(50.0);
    // Only the low tone, only the high tone, then a pair 12 dB apart.
    g.push(200, &[(770.0, 6000.0)]).gap(60);
    g.push(200, &[(1336.0, 6000.0)]).gap(60);
    g.key(Digit::D5, 200, 8000.0, 2000.0).gap(60);
    assert!(detect(&g.samples).is_empty());
}

#[test]
fn too_quiet_is_ignored_and_quiet_enough_is_found() {
    let mut g = Gen::new(0.0);
    g.key(Digit::D2, 200, 200.0, 200.0).gap(60);
    assert!(detect(&g.samples).is_empty());
    let mut g = Gen::new(0.0);
    g.key(Digit::D2, 200, 600.0, 600.0).gap(60);
    assert_eq!(keys(&detect(&g.samples)), "2");
}

#[test]
fn noisy_line_without_tones_is_silent() {
    let mut g = Gen::new(4000.0);
    g.gap(3000);
    assert!(detect(&g.samples).is_empty());
}

fn speech() -> Vec<i16> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/media/testdata/speech_8k.wav"
    );
    let mut r = hound::WavReader::open(path).unwrap();
    assert_eq!(r.spec().sample_rate, 8000);
    r.samples::<i16>().map(Result::unwrap).collect()
}

#[test]
fn speech_gives_no_false_digits() {
    let s = speech();
    assert!(s.len() > 80_000, "fixture is ~11 s of speech");
    assert_eq!(keys(&detect(&s)), "");
    // Louder (clipping) speech must not trip it either.
    let loud: Vec<i16> = s.iter().map(|&x| x.saturating_mul(3)).collect();
    assert_eq!(keys(&detect(&loud)), "");
}

#[test]
fn digit_over_speech_pause_is_found() {
    // A key pressed between two phrases still comes through.
    let s = speech();
    let mut g = Gen::new(30.0);
    g.samples.extend_from_slice(&s[..16_000]);
    g.key(Digit::Hash, 100, 4000.0, 4500.0);
    g.samples.extend_from_slice(&s[16_000..32_000]);
    assert_eq!(keys(&detect(&g.samples)), "#");
}

#[test]
fn reset_forgets_tone_in_progress() {
    let mut g = Gen::new(0.0);
    g.key(Digit::D9, 200, 4000.0, 4000.0);
    let mut det = InbandDetector::new();
    det.push_samples(&g.samples[..800]);
    assert_eq!(det.poll_digit().map(|d| d.digit), Some(Digit::D9));
    det.reset();
    // Same press continues after a reset: reported again (the state was forgotten) but
    // only once, and sample positions keep counting.
    det.push_samples(&g.samples[800..]);
    let again = det.poll_digit().unwrap();
    assert_eq!(again.digit, Digit::D9);
    assert!(again.at_sample > 800);
    assert_eq!(det.poll_digit(), None);
}
