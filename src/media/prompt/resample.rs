//! Sample-rate conversion to the 8 kHz G.711 clock with a windowed-sinc resampler.
//!
//! Plain decimation (taking every 6th sample of 48 kHz audio) folds everything above
//! 4 kHz back into the telephone band as audible aliasing; rubato's sinc filter removes
//! it first.

use rubato::{
    calculate_cutoff, Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

/// The G.711 sample rate.
pub(super) const TARGET_RATE: u32 = 8000;

/// Filter length measured in *output* samples. rubato's `sinc_len` counts input samples,
/// so when downsampling it is stretched by the rate ratio to keep the same transition
/// band (~250 Hz at 8 kHz) whatever the input rate.
const SINC_LEN_AT_TARGET: usize = 128;
/// Cap for very high input rates (e.g. 192 kHz) so start-up stays quick.
const MAX_SINC_LEN: usize = 2048;
const CHUNK: usize = 1024;

/// Resample mono audio from `rate_in` to 8 kHz. Returns exactly
/// `max(1, round(len * 8000 / rate_in))` samples, aligned with the input to within one output sample.
pub(super) fn to_8k(samples: &[f32], rate_in: u32) -> Result<Vec<f32>, String> {
    if rate_in == TARGET_RATE || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    if rate_in == 0 {
        return Err("input sample rate is 0 Hz".to_string());
    }
    let ratio = f64::from(TARGET_RATE) / f64::from(rate_in);
    let stretch = (1.0 / ratio).max(1.0);
    let sinc_len = ((SINC_LEN_AT_TARGET as f64 * stretch).ceil() as usize).min(MAX_SINC_LEN);
    let window = WindowFunction::BlackmanHarris2;
    let params = SincInterpolationParameters {
        sinc_len,
        f_cutoff: calculate_cutoff(SINC_LEN_AT_TARGET, window),
        oversampling_factor: 256,
        interpolation: SincInterpolationType::Cubic,
        window,
    };
    let mut resampler = SincFixedIn::<f32>::new(ratio, 1.0, params, CHUNK, 1)
        .map_err(|e| format!("cannot build a resampler for {rate_in} Hz: {e}"))?;

    let expected = ((samples.len() as u128 * u128::from(TARGET_RATE) + u128::from(rate_in) / 2)
        / u128::from(rate_in)) as usize;
    // A non-empty file never becomes empty: it still plays as (at least) one frame.
    let expected = expected.max(1);
    // rubato 0.16.2's SincFixedIn starts with its window already centred on the first
    // input samples (its internal history is pre-shifted by half the filter), so the
    // output needs no delay compensation despite what `output_delay()` reports; the
    // impulse test below pins this down.
    let mut out: Vec<f32> = Vec::with_capacity(expected + CHUNK);
    let fail = |e: rubato::ResampleError| format!("resampling from {rate_in} Hz failed: {e}");

    let mut rest = samples;
    loop {
        let need = resampler.input_frames_next();
        if rest.len() < need {
            break;
        }
        let (chunk, tail) = rest.split_at(need);
        let o = resampler.process(&[chunk], None).map_err(fail)?;
        out.extend(o.iter().flatten());
        rest = tail;
    }
    if !rest.is_empty() {
        let o = resampler
            .process_partial(Some(&[rest]), None)
            .map_err(fail)?;
        out.extend(o.iter().flatten());
    }
    // Flush the filter's tail until every expected sample has come out.
    while out.len() < expected {
        let o = resampler
            .process_partial::<&[f32]>(None, None)
            .map_err(fail)?;
        let before = out.len();
        out.extend(o.iter().flatten());
        if out.len() == before {
            break;
        }
    }
    out.truncate(expected);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn tone(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f32> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| (amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    /// Power of one frequency by a single-bin DFT (the Goertzel sum written directly).
    fn bin_power(x: &[f32], freq: f64, rate: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            let w = 2.0 * PI * freq * i as f64 / rate;
            re += f64::from(s) * w.cos();
            im -= f64::from(s) * w.sin();
        }
        (re * re + im * im) / (x.len() as f64).powi(2)
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn zero_crossings(x: &[f32]) -> usize {
        x.windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count()
    }

    #[test]
    fn one_khz_at_48k_stays_one_khz() {
        let input = tone(1000.0, 48_000, 0.5, 0.5);
        let out = to_8k(&input, 48_000).unwrap();
        assert_eq!(out.len(), 4000);
        // Skip the edges, where the filter sees the start/end of the signal.
        let mid = &out[400..3600];
        // 1 kHz over 0.4 s crosses zero 800 times.
        let zc = zero_crossings(mid);
        assert!((798..=802).contains(&zc), "zero crossings {zc}");
        let p1k = bin_power(mid, 1000.0, 8000.0);
        let p1k1 = bin_power(mid, 1100.0, 8000.0);
        assert!(p1k > 1000.0 * p1k1, "energy not at 1 kHz: {p1k} vs {p1k1}");
        // Amplitude preserved in the passband (0.5 peak -> 0.354 rms), within 0.1 dB.
        let r = rms(mid);
        assert!((r / (0.5 / 2f64.sqrt()) - 1.0).abs() < 0.012, "rms {r}");
    }

    #[test]
    fn six_khz_at_48k_is_suppressed_by_more_than_40_db() {
        let input = tone(6000.0, 48_000, 0.5, 0.5);
        let out = to_8k(&input, 48_000).unwrap();
        let mid = &out[400..3600];
        // Without filtering 6 kHz would alias to 2 kHz at 8 kHz sampling.
        let in_rms = 0.5 / 2f64.sqrt();
        let atten_db = 20.0 * (in_rms / rms(mid).max(1e-12)).log10();
        assert!(atten_db > 40.0, "only {atten_db:.1} dB of suppression");
        let alias = bin_power(mid, 2000.0, 8000.0).sqrt();
        assert!(alias < 0.5 * 0.01, "alias at 2 kHz has amplitude {alias}");
    }

    #[test]
    fn just_above_nyquist_is_suppressed_from_44k1() {
        // 4.6 kHz would alias to 3.4 kHz, inside the telephone band.
        let input = tone(4600.0, 44_100, 0.5, 0.5);
        let out = to_8k(&input, 44_100).unwrap();
        let atten_db = 20.0 * ((0.5 / 2f64.sqrt()) / rms(&out[400..3600]).max(1e-12)).log10();
        assert!(atten_db > 40.0, "only {atten_db:.1} dB");
    }

    fn peak_index(x: &[f32]) -> usize {
        x.iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .unwrap()
    }

    #[test]
    fn length_and_alignment() {
        // An impulse in the middle stays in the middle (within one output sample).
        for rate in [16_000, 44_100, 48_000] {
            let mut input = vec![0.0f32; rate];
            input[rate / 2] = 1.0;
            let out = to_8k(&input, rate as u32).unwrap();
            assert_eq!(out.len(), 8_000);
            let peak = peak_index(&out);
            assert!((3_999..=4_001).contains(&peak), "{rate} Hz: peak at {peak}");
        }
        // Odd lengths round to the nearest output sample.
        assert_eq!(to_8k(&vec![0.0; 441], 44_100).unwrap().len(), 80);
        assert_eq!(to_8k(&[0.25], 48_000).unwrap().len(), 1);
        assert_eq!(to_8k(&[0.25; 3], 48_000).unwrap().len(), 1);
    }

    #[test]
    fn passthrough_at_8k_and_upsampling() {
        let x = vec![0.1, -0.2, 0.3];
        assert_eq!(to_8k(&x, 8000).unwrap(), x);
        let input = tone(500.0, 4000, 0.5, 0.5);
        let out = to_8k(&input, 4000).unwrap();
        assert_eq!(out.len(), 4000);
        let zc = zero_crossings(&out[400..3600]);
        assert!((398..=402).contains(&zc), "zero crossings {zc}");
    }
}
