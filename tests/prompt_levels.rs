//! The shipped prompt set is at telephone levels, in the format the media engine loads
//! without conversion: the same limits `prompts/levels.sh` checks with sox, here so a
//! regenerated or hand-edited file that breaks them fails `cargo test` (CI has no sox
//! check of its own).
//!
//! Speech: peak at most -3 dBFS, RMS -20 dBFS +/- 3 dB over the speech with leading and
//! trailing silence left out (a clip's 60 ms of closing silence does not count).
//! Hold music: peak only.

use std::path::{Path, PathBuf};

/// Samples quieter than -50 dBFS at either end are silence (as `levels.sh` trims).
const SILENCE: f64 = 32768.0 * 0.003_162_277_7; // 10^(-50/20)

fn prompt_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("clips")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wav") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn db(x: f64) -> f64 {
    20.0 * (x / 32768.0).log10()
}

#[test]
fn every_shipped_prompt_is_at_telephone_levels() {
    let files = prompt_files();
    // 14 prompts and 35 clips today; more may come, fewer would mean a lost file.
    assert!(files.len() >= 49, "only {} prompt files", files.len());
    let mut problems = Vec::new();
    for path in &files {
        let name = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display()
            .to_string();
        let mut reader = hound::WavReader::open(path).unwrap();
        let spec = reader.spec();
        if spec.sample_rate != 8000
            || spec.channels != 1
            || spec.bits_per_sample != 16
            || spec.sample_format != hound::SampleFormat::Int
        {
            problems.push(format!("{name}: not 8 kHz mono 16-bit PCM: {spec:?}"));
            continue;
        }
        let pcm: Vec<f64> = reader
            .samples::<i16>()
            .map(|s| f64::from(s.unwrap()))
            .collect();
        let peak = pcm.iter().fold(0.0f64, |m, s| m.max(s.abs()));
        // -3 dBFS, with the rounding of sox's `norm -3` to a whole sample.
        if db(peak) > -2.99 {
            problems.push(format!("{name}: peak {:.2} dBFS", db(peak)));
        }
        if name.ends_with("hold_music.wav") {
            continue;
        }
        let first = pcm.iter().position(|s| s.abs() > SILENCE);
        let last = pcm.iter().rposition(|s| s.abs() > SILENCE);
        let (Some(first), Some(last)) = (first, last) else {
            problems.push(format!("{name}: silent"));
            continue;
        };
        let speech = &pcm[first..=last];
        let rms = (speech.iter().map(|s| s * s).sum::<f64>() / speech.len() as f64).sqrt();
        if !(-23.0..=-17.0).contains(&db(rms)) {
            problems.push(format!("{name}: speech RMS {:.2} dBFS", db(rms)));
        }
    }
    assert!(
        problems.is_empty(),
        "out of range:\n{}",
        problems.join("\n")
    );
}
