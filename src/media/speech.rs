//! The short clips spoken sentences are assembled from ("press", "4", "for", "72",
//! "hours"): their names and files.
//!
//! Clip names are the file stems under `prompts/clips/`; the flow asks the prompt
//! library for them by name like any other prompt. Which clips say a number is decided
//! in one place, `flows::prompt_plan::say_number`.

use std::path::{Path, PathBuf};

/// Clips saying 0..=20, indexed by value.
const UNITS: [&str; 21] = [
    "num_0", "num_1", "num_2", "num_3", "num_4", "num_5", "num_6", "num_7", "num_8", "num_9",
    "num_10", "num_11", "num_12", "num_13", "num_14", "num_15", "num_16", "num_17", "num_18",
    "num_19", "num_20",
];

/// Clips saying 20, 30, ... 90, indexed by tens digit − 2.
const TENS: [&str; 8] = [
    "num_20", "num_30", "num_40", "num_50", "num_60", "num_70", "num_80", "num_90",
];

/// Word and phrase clips besides the numbers.
const WORDS: [&str; 34] = [
    "press",
    "for",
    "hours",
    "hour",
    "custom_option",
    "offline_option",
    "goodbye",
    // The status of an online agent (flows::agent_status) and the options
    // that follow it (flows::prompt_plan::extend_menu_clips).
    "online_until",
    "am",
    "pm",
    "oh",
    "tomorrow",
    "on",
    "more_minute",
    "more_minutes",
    "more_hour",
    "more_hours",
    "more_days",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "to_add",
    "new_hours_option",
    "extended",
    // The reminder before a window ends (flows::reminder::question).
    "ends_in",
    "minute",
    "minutes",
    "stay_online",
    "or_hang_up",
    // An online nailed-up agent's extra option (flows::timed_presence).
    "keep_time_option",
];

/// Every clip name the flows' sentence builders may use (numbers 0-20, the tens to 90,
/// and the words), in a stable order. Which clips a sentence needs is the flows' business
/// (`flows::prompt_plan`), whose tests check that it asks only for these.
pub fn clip_names() -> impl Iterator<Item = &'static str> {
    UNITS
        .iter()
        .chain(TENS.iter().skip(1))
        .chain(WORDS.iter())
        .copied()
}

/// `(clip name, file)` for every clip, e.g. ("num_8", `<dir>/clips/num_8.wav`), ready for
/// [`crate::media::prompt::PromptLibrary::load`].
pub fn default_clip_entries(prompts_dir: &Path) -> Vec<(String, PathBuf)> {
    let clips = prompts_dir.join("clips");
    clip_names()
        .map(|n| (n.to_string(), clips.join(format!("{n}.wav"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::prompt::PromptLibrary;
    use std::collections::HashSet;

    /// The main prompts shipped in `prompts/` (file stem = prompt name).
    const DEFAULT_PROMPTS: [&str; 15] = [
        "welcome",
        "resource_lookup_error",
        "preset_hours",
        "custom_hours",
        "invalid_input",
        "online",
        "offline",
        "enter_extension",
        "enter_pin",
        "wrong_pin",
        "queue_greeting",
        "hold_music",
        "agent_whisper",
        "queue_unavailable",
        "not_responding",
    ];

    /// `(prompt name, file)` for the main prompts in `prompts_dir` (see [`DEFAULT_PROMPTS`]).
    fn default_prompt_entries(prompts_dir: &Path) -> Vec<(String, PathBuf)> {
        DEFAULT_PROMPTS
            .iter()
            .map(|n| (n.to_string(), prompts_dir.join(format!("{n}.wav"))))
            .collect()
    }

    fn prompts_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")
    }

    #[test]
    fn clip_entries_are_unique_and_named_by_stem() {
        let entries = default_clip_entries(Path::new("/p"));
        assert_eq!(entries.len(), 21 + 7 + WORDS.len());
        let names: HashSet<&String> = entries.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), entries.len());
        assert!(entries.contains(&("num_8".to_string(), PathBuf::from("/p/clips/num_8.wav"))));
        assert!(entries.contains(&("hours".to_string(), PathBuf::from("/p/clips/hours.wav"))));
    }

    #[test]
    fn shipped_clips_exist_and_load() {
        let entries = default_clip_entries(&prompts_dir());
        for (_, path) in &entries {
            assert!(path.is_file(), "missing {}", path.display());
        }
        let lib = PromptLibrary::load(entries).unwrap_or_else(|e| panic!("{e}"));
        for name in clip_names() {
            let p = lib.get(name).unwrap();
            // Trimmed words: short, but not empty.
            assert!(
                p.frame_count() >= 5,
                "{name} is only {} frames",
                p.frame_count()
            );
            assert!(p.duration().as_secs() < 6, "{name} is {:?}", p.duration());
        }
    }

    #[test]
    fn shipped_prompts_exist_and_load() {
        let lib = PromptLibrary::load(default_prompt_entries(&prompts_dir()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lib.len(), DEFAULT_PROMPTS.len());
        let hold = lib.get("hold_music").unwrap();
        let secs = hold.duration().as_secs_f64();
        assert!((7.5..=10.5).contains(&secs), "hold music is {secs} s");
        // The loop point is seamless: last -> first sample is no bigger a step than the
        // largest step inside the file (a cut would show as a jump).
        let pcm: Vec<i32> = hound::WavReader::open(prompts_dir().join("hold_music.wav"))
            .unwrap()
            .into_samples::<i16>()
            .map(|s| i32::from(s.unwrap()))
            .collect();
        let max_step = pcm.windows(2).map(|w| (w[1] - w[0]).abs()).max().unwrap();
        let seam = (pcm[0] - pcm[pcm.len() - 1]).abs();
        assert!(seam * 4 < max_step, "seam step {seam}, max step {max_step}");
        let menu = lib.get("preset_hours").unwrap();
        assert!(menu.duration().as_secs() >= 5);
    }
}
