//! Which library clips a log-in menu prompt is made of.
//!
//! The menu can only use a single recorded "preset hours" prompt when the
//! configuration matches what was recorded; any other preset list is spoken
//! by stringing short clips together ("press" "one" "for" "eight" "hours").
//! The clip names below are library prompt names the deployment must provide
//! (`[prompts]` in the configuration) whenever presets are customised.

use std::fmt;
use std::sync::Arc;

/// The name of a prompt in the shared prompt library.
///
/// A cheap-to-clone handle: flows hand lists of these to the media layer on
/// every `Play`, so cloning must not copy the string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PromptName(Arc<str>);

impl PromptName {
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        PromptName(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PromptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for PromptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PromptName {
    fn from(name: &str) -> Self {
        PromptName(name.into())
    }
}

impl From<String> for PromptName {
    fn from(name: String) -> Self {
        PromptName(name.into())
    }
}

impl AsRef<str> for PromptName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for PromptName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for PromptName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// Clip names used to assemble menus and confirmations.
pub const CLIP_PRESS: &str = "press";
pub const CLIP_FOR: &str = "for";
pub const CLIP_HOURS: &str = "hours";
pub const CLIP_HOUR: &str = "hour";
pub const CLIP_CUSTOM_OPTION: &str = "custom_option";
pub const CLIP_OFFLINE_OPTION: &str = "offline_option";
/// "to add", as in "press 1 to add 8 hours" (an online agent's options).
pub const CLIP_TO_ADD: &str = "to_add";
/// "Press 9 to set new hours."
pub const CLIP_NEW_HOURS_OPTION: &str = "new_hours_option";
/// "Your online time is extended."
pub const CLIP_EXTENDED: &str = "extended";

/// The presets the recorded `preset_hours` prompt speaks (keys 1..4), which
/// also announces a two-digit custom entry on key 9.
pub const RECORDED_PRESETS: [u32; 4] = [8, 24, 48, 72];
pub const RECORDED_CUSTOM_DIGITS: u8 = 2;

/// Highest number the clip library can say (`num_0`..`num_20`, `num_30`..`num_90`).
pub const MAX_SPOKEN: u32 = 99;

/// `num_<n>`. The clips 0..=99 are named once per process: every log-in
/// call's menu says its presets, and a clone is a reference count where
/// formatting the name was an allocation and some 500 instructions.
fn num_clip(n: u32) -> PromptName {
    static NAMES: std::sync::LazyLock<Vec<PromptName>> = std::sync::LazyLock::new(|| {
        (0..=MAX_SPOKEN)
            .map(|n| PromptName::from(format!("num_{n}")))
            .collect()
    });
    usize::try_from(n)
        .ok()
        .and_then(|i| NAMES.get(i))
        .cloned()
        .unwrap_or_else(|| PromptName::from(format!("num_{n}")))
}

/// The clips that say `n`: 0..=20 have their own clip, 21..=99 are tens + units
/// (48 → `num_40`, `num_8`).
///
/// The library has no clip for hundreds; a larger `n` (which configuration
/// validation rejects) is read digit by digit rather than failing mid-call.
pub fn say_number(n: u32) -> Vec<PromptName> {
    match n {
        0..=20 => vec![num_clip(n)],
        21..=MAX_SPOKEN => {
            let (tens, units) = (n / 10 * 10, n % 10);
            if units == 0 {
                vec![num_clip(tens)]
            } else {
                vec![num_clip(tens), num_clip(units)]
            }
        }
        _ => n
            .to_string()
            .chars()
            .filter_map(|c| c.to_digit(10))
            .map(num_clip)
            .collect(),
    }
}

/// "hour" for exactly one, "hours" otherwise.
pub fn hours_word(hours: u32) -> PromptName {
    PromptName::from(if hours == 1 { CLIP_HOUR } else { CLIP_HOURS })
}

/// The menu announcement: the recorded prompt when the settings are the ones
/// it was recorded for, otherwise assembled from clips. Only the first
/// `max_keys` presets are announced, since only those have keys.
pub fn preset_menu_clips(
    presets: &[u32],
    custom_max_digits: u8,
    max_keys: usize,
    recorded: &PromptName,
) -> Vec<PromptName> {
    if presets == RECORDED_PRESETS && custom_max_digits == RECORDED_CUSTOM_DIGITS {
        return vec![recorded.clone()];
    }
    let mut clips = Vec::with_capacity(presets.len().min(max_keys) * 6 + 2);
    for (key, &hours) in (1u32..).zip(presets.iter().take(max_keys)) {
        clips.push(PromptName::from(CLIP_PRESS));
        clips.extend(say_number(key));
        clips.push(PromptName::from(CLIP_FOR));
        clips.extend(say_number(hours));
        clips.push(hours_word(hours));
    }
    clips.push(PromptName::from(CLIP_CUSTOM_OPTION));
    clips.push(PromptName::from(CLIP_OFFLINE_OPTION));
    clips
}

/// The options of an agent already online: "press 1 to add 8 hours", ...,
/// "press 9 to set new hours", "press 0 to go offline". The keys are the
/// offline menu's: 1..N add a preset to the window, 9 starts a new one from
/// now, 0 ends it.
pub fn extend_menu_clips(presets: &[u32], max_keys: usize) -> Vec<PromptName> {
    let mut clips = Vec::with_capacity(presets.len().min(max_keys) * 6 + 2);
    for (key, &hours) in (1u32..).zip(presets.iter().take(max_keys)) {
        clips.push(PromptName::from(CLIP_PRESS));
        clips.extend(say_number(key));
        clips.push(PromptName::from(CLIP_TO_ADD));
        clips.extend(say_number(hours));
        clips.push(hours_word(hours));
    }
    clips.push(PromptName::from(CLIP_NEW_HOURS_OPTION));
    clips.push(PromptName::from(CLIP_OFFLINE_OPTION));
    clips
}

/// "You are now online" "for" `<hours>` "hours".
pub fn online_confirmation(online: &PromptName, hours: u32) -> Vec<PromptName> {
    let mut clips = vec![online.clone(), PromptName::from(CLIP_FOR)];
    clips.extend(say_number(hours));
    clips.push(hours_word(hours));
    clips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(clips: &[PromptName]) -> Vec<&str> {
        clips.iter().map(PromptName::as_str).collect()
    }

    #[test]
    fn say_number_reference_vectors() {
        let cases: &[(u32, &[&str])] = &[
            (0, &["num_0"]),
            (1, &["num_1"]),
            (13, &["num_13"]),
            (20, &["num_20"]),
            (21, &["num_20", "num_1"]),
            (30, &["num_30"]),
            (48, &["num_40", "num_8"]),
            (72, &["num_70", "num_2"]),
            (90, &["num_90"]),
            (99, &["num_90", "num_9"]),
            (100, &["num_1", "num_0", "num_0"]),
            (168, &["num_1", "num_6", "num_8"]),
        ];
        for (n, want) in cases {
            assert_eq!(names(&say_number(*n)), *want, "say_number({n})");
        }
    }

    /// Every clip a sentence may ask for is one the shipped clip set provides
    /// (`media::speech::clip_names`, which is what gets loaded at start-up).
    #[test]
    fn every_clip_asked_for_is_in_the_shipped_set() {
        use crate::media::speech::clip_names;
        let shipped: std::collections::HashSet<&str> = clip_names().collect();
        for n in 0..=MAX_SPOKEN + 200 {
            for clip in say_number(n) {
                assert!(
                    shipped.contains(clip.as_str()),
                    "{n} uses unknown clip {clip}"
                );
            }
        }
        for word in [
            CLIP_PRESS,
            CLIP_FOR,
            CLIP_HOURS,
            CLIP_HOUR,
            CLIP_CUSTOM_OPTION,
            CLIP_OFFLINE_OPTION,
            CLIP_TO_ADD,
            CLIP_NEW_HOURS_OPTION,
            CLIP_EXTENDED,
            crate::flows::timed_presence::CLIP_KEEP_TIME_OPTION,
        ]
        .into_iter()
        .chain(crate::flows::agent_status::clip_words())
        .chain(crate::flows::reminder::clip_words())
        {
            assert!(shipped.contains(word), "unknown clip {word}");
        }
    }

    #[test]
    fn recorded_menu_only_for_recorded_settings() {
        let rec = PromptName::from("preset_hours");
        assert_eq!(
            names(&preset_menu_clips(&[8, 24, 48, 72], 2, 4, &rec)),
            ["preset_hours"]
        );
        // Same presets but a one-digit custom entry: the recording would lie.
        assert_ne!(
            names(&preset_menu_clips(&[8, 24, 48, 72], 1, 4, &rec)),
            ["preset_hours"]
        );
    }

    #[test]
    fn assembled_menu() {
        let rec = PromptName::from("preset_hours");
        let got = preset_menu_clips(&[1, 36], 2, 4, &rec);
        assert_eq!(
            names(&got),
            [
                "press",
                "num_1",
                "for",
                "num_1",
                "hour",
                "press",
                "num_2",
                "for",
                "num_30",
                "num_6",
                "hours",
                "custom_option",
                "offline_option"
            ]
        );
    }

    #[test]
    fn assembled_menu_announces_only_keyed_presets() {
        let rec = PromptName::from("preset_hours");
        let got = preset_menu_clips(&[1, 2, 3, 4, 5], 2, 4, &rec);
        assert_eq!(got.iter().filter(|c| **c == "press").count(), 4);
        assert!(!got.contains(&PromptName::from("num_5")));
        // No presets at all: only custom and offline remain.
        assert_eq!(
            names(&preset_menu_clips(&[], 2, 4, &rec)),
            ["custom_option", "offline_option"]
        );
    }

    #[test]
    fn confirmation_singular_and_plural() {
        let online = PromptName::from("online");
        assert_eq!(
            names(&online_confirmation(&online, 1)),
            ["online", "for", "num_1", "hour"]
        );
        assert_eq!(
            names(&online_confirmation(&online, 24)),
            ["online", "for", "num_20", "num_4", "hours"]
        );
    }

    #[test]
    fn prompt_name_is_cheap_and_comparable() {
        let a = PromptName::from("welcome");
        let b = a.clone();
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(a, "welcome");
        assert_eq!(format!("{a}"), "welcome");
        assert_eq!(format!("{a:?}"), "\"welcome\"");
    }
}
