//! Where an online agent stands, as the log-in line says it: "You are
//! online until five thirty PM tomorrow, for twenty more hours."
//!
//! Pure: the window's end, `now` and the agent's time zone in; the local
//! end and the time left out, and the clips that say them. The shell reads
//! the window and the clock; the menu only plays what this returns, so the
//! spoken status is tested without a clock or a store.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::prompt_plan::{say_number, PromptName};

/// Clip names of the status sentence (files under `prompts/clips/`).
pub const CLIP_ONLINE_UNTIL: &str = "online_until";
pub const CLIP_AM: &str = "am";
pub const CLIP_PM: &str = "pm";
/// "oh", as in "five oh five".
pub const CLIP_OH: &str = "oh";
pub const CLIP_TOMORROW: &str = "tomorrow";
pub const CLIP_ON: &str = "on";
pub const CLIP_MORE_MINUTE: &str = "more_minute";
pub const CLIP_MORE_MINUTES: &str = "more_minutes";
pub const CLIP_MORE_HOUR: &str = "more_hour";
pub const CLIP_MORE_HOURS: &str = "more_hours";
pub const CLIP_MORE_DAYS: &str = "more_days";
/// Weekday clips, Monday first (as `Weekday::num_days_from_monday`).
pub const CLIP_WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Time left is said in minutes below this, in hours up to [`DAYS_FROM`].
const HOURS_FROM: Duration = Duration::from_secs(90 * 60);
/// Time left is said in days from here on (whole hours would pass 47).
const DAYS_FROM: Duration = Duration::from_secs(48 * 3600);

/// The day the window ends, seen from the agent's today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndDay {
    Today,
    Tomorrow,
    /// Two to six days ahead: the weekday names it without doubt.
    On(Weekday),
    /// A week or more ahead: the weekday alone would be ambiguous, so the
    /// sentence gives only the time left ("for 9 more days").
    Later,
}

/// An online agent's window as the agent should hear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentStatus {
    /// The end in the agent's local time, 0..=23 and 0..=59, rounded to
    /// the minute.
    pub hour: u8,
    pub minute: u8,
    pub day: EndDay,
    /// From now to the end (zero once it has passed).
    pub left: Duration,
}

impl AgentStatus {
    /// The window ending at `end`, seen at `now` by an agent in `tz`.
    pub fn at(end: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> Self {
        let left = (end - now).to_std().unwrap_or(Duration::ZERO);
        // Rounded to the nearest minute: a window set "for 8 hours" at
        // 09:00:40 ends at 17:00:40, which the agent knows as 5 PM.
        let end = end + chrono::Duration::seconds(30);
        let local_end = end.with_timezone(&tz);
        let local_now = now.with_timezone(&tz);
        let days = (local_end.date_naive() - local_now.date_naive()).num_days();
        let day = match days {
            i64::MIN..=0 => EndDay::Today,
            1 => EndDay::Tomorrow,
            2..=6 => EndDay::On(local_end.weekday()),
            _ => EndDay::Later,
        };
        AgentStatus {
            // chrono keeps both in range (0..24, 0..60).
            hour: u8::try_from(local_end.hour()).unwrap_or(0),
            minute: u8::try_from(local_end.minute()).unwrap_or(0),
            day,
            left,
        }
    }

    /// "online until" `<time>` `[<day>]` "for" `<n>` "more hours".
    pub fn sentence(&self) -> Vec<PromptName> {
        let mut clips = Vec::with_capacity(12);
        if self.day != EndDay::Later {
            clips.push(PromptName::from(CLIP_ONLINE_UNTIL));
            clips.extend(self.clock_clips());
            match self.day {
                EndDay::Today | EndDay::Later => {}
                EndDay::Tomorrow => clips.push(PromptName::from(CLIP_TOMORROW)),
                EndDay::On(weekday) => {
                    clips.push(PromptName::from(CLIP_ON));
                    clips.push(weekday_clip(weekday));
                }
            }
        }
        clips.extend(self.left_clips());
        clips
    }

    /// The time left: "for" `<n>` "more minutes" / "more hours" / "more days".
    ///
    /// Rounded to the nearest unit, as a person would say it: 2 h 50 min
    /// is "3 more hours". Below 90 minutes it is minutes (at least one), so
    /// that "1 more hour" is never said of 31 minutes.
    pub fn left_clips(&self) -> Vec<PromptName> {
        let mut clips = vec![PromptName::from(super::prompt_plan::CLIP_FOR)];
        let secs = self.left.as_secs();
        if self.left < HOURS_FROM {
            let minutes = u32::try_from(secs.div_ceil(60)).unwrap_or(1).max(1);
            clips.extend(say_number(minutes));
            clips.push(PromptName::from(if minutes == 1 {
                CLIP_MORE_MINUTE
            } else {
                CLIP_MORE_MINUTES
            }));
        } else if self.left < DAYS_FROM {
            let hours = u32::try_from((secs + 1800) / 3600).unwrap_or(u32::MAX);
            clips.extend(say_number(hours));
            clips.push(PromptName::from(if hours == 1 {
                CLIP_MORE_HOUR
            } else {
                CLIP_MORE_HOURS
            }));
        } else {
            let days = u32::try_from((secs + 43_200) / 86_400).unwrap_or(u32::MAX);
            clips.extend(say_number(days));
            clips.push(PromptName::from(CLIP_MORE_DAYS));
        }
        clips
    }

    /// "five PM", "five oh five PM", "twelve thirty AM" (12-hour clock, as
    /// spoken in the prompts' language).
    fn clock_clips(&self) -> Vec<PromptName> {
        let h12 = match self.hour % 12 {
            0 => 12,
            h => h,
        };
        let mut clips = say_number(u32::from(h12));
        match self.minute {
            0 => {}
            m @ 1..=9 => {
                clips.push(PromptName::from(CLIP_OH));
                clips.extend(say_number(u32::from(m)));
            }
            m => clips.extend(say_number(u32::from(m))),
        }
        clips.push(PromptName::from(if self.hour < 12 {
            CLIP_AM
        } else {
            CLIP_PM
        }));
        clips
    }
}

fn weekday_clip(day: Weekday) -> PromptName {
    let index = usize::try_from(day.num_days_from_monday()).unwrap_or(0);
    PromptName::from(CLIP_WEEKDAYS.get(index).copied().unwrap_or("monday"))
}

/// Every clip [`AgentStatus::sentence`] may ask for besides the numbers.
pub fn clip_words() -> impl Iterator<Item = &'static str> {
    [
        CLIP_ONLINE_UNTIL,
        CLIP_AM,
        CLIP_PM,
        CLIP_OH,
        CLIP_TOMORROW,
        CLIP_ON,
        CLIP_MORE_MINUTE,
        CLIP_MORE_MINUTES,
        CLIP_MORE_HOUR,
        CLIP_MORE_HOURS,
        CLIP_MORE_DAYS,
    ]
    .into_iter()
    .chain(CLIP_WEEKDAYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid")
    }

    fn words(s: &AgentStatus) -> Vec<String> {
        s.sentence().iter().map(|c| c.as_str().to_owned()).collect()
    }

    #[test]
    fn three_hours_left_until_five_pm_today() {
        // 14:00 UTC is 09:00 in New York (EST, December); the window ends
        // at 22:00 UTC = 5 PM there.
        let now = utc(2026, 12, 4, 14, 0, 0);
        let s = AgentStatus::at(
            now + chrono::Duration::hours(8),
            now,
            chrono_tz::America::New_York,
        );
        assert_eq!(
            words(&s),
            ["online_until", "num_5", "pm", "for", "num_8", "more_hours"]
        );
        let s = AgentStatus::at(
            utc(2026, 12, 4, 22, 0, 0),
            utc(2026, 12, 4, 19, 10, 0),
            chrono_tz::America::New_York,
        );
        assert_eq!(
            words(&s),
            ["online_until", "num_5", "pm", "for", "num_3", "more_hours"]
        );
    }

    #[test]
    fn minutes_of_the_end_and_half_hour_zones() {
        // India is UTC+5:30: 10:05 UTC ends at 15:35 there.
        let now = utc(2026, 12, 4, 9, 0, 0);
        let s = AgentStatus::at(utc(2026, 12, 4, 10, 5, 0), now, chrono_tz::Asia::Kolkata);
        assert_eq!((s.hour, s.minute, s.day), (15, 35, EndDay::Today));
        assert_eq!(
            words(&s),
            [
                "online_until",
                "num_3",
                "num_30",
                "num_5",
                "pm",
                "for",
                "num_60",
                "num_5",
                "more_minutes"
            ]
        );
        // "five oh five AM" and midnight / noon as twelve.
        let s = AgentStatus::at(
            utc(2026, 12, 4, 5, 5, 0),
            utc(2026, 12, 4, 4, 0, 0),
            Tz::UTC,
        );
        assert_eq!(
            s.clock_clips(),
            ["num_5", "oh", "num_5", "am"].map(PromptName::from)
        );
        let s = AgentStatus::at(
            utc(2026, 12, 4, 0, 0, 0),
            utc(2026, 12, 3, 23, 0, 0),
            Tz::UTC,
        );
        assert_eq!(s.clock_clips(), ["num_12", "am"].map(PromptName::from));
        let s = AgentStatus::at(
            utc(2026, 12, 4, 12, 0, 0),
            utc(2026, 12, 4, 11, 0, 0),
            Tz::UTC,
        );
        assert_eq!(s.clock_clips(), ["num_12", "pm"].map(PromptName::from));
    }

    #[test]
    fn the_end_is_rounded_to_the_nearest_minute() {
        let now = utc(2026, 12, 4, 9, 0, 40);
        let s = AgentStatus::at(utc(2026, 12, 4, 16, 59, 40), now, Tz::UTC);
        assert_eq!((s.hour, s.minute), (17, 0));
        let s = AgentStatus::at(utc(2026, 12, 4, 16, 59, 20), now, Tz::UTC);
        assert_eq!((s.hour, s.minute), (16, 59));
    }

    #[test]
    fn tomorrow_a_weekday_and_later() {
        // Friday 4 December 2026, 20:00 in Paris (UTC+1).
        let now = utc(2026, 12, 4, 19, 0, 0);
        let paris = chrono_tz::Europe::Paris;
        let s = AgentStatus::at(now + chrono::Duration::hours(8), now, paris);
        assert_eq!(s.day, EndDay::Tomorrow);
        assert_eq!(
            words(&s),
            [
                "online_until",
                "num_4",
                "am",
                "tomorrow",
                "for",
                "num_8",
                "more_hours"
            ]
        );
        // 72 hours: Monday at 8 PM, said as days.
        let s = AgentStatus::at(now + chrono::Duration::hours(72), now, paris);
        assert_eq!(
            words(&s),
            [
                "online_until",
                "num_8",
                "pm",
                "on",
                "monday",
                "for",
                "num_3",
                "more_days"
            ]
        );
        // Ten days: only the time left.
        let s = AgentStatus::at(now + chrono::Duration::days(10), now, paris);
        assert_eq!(s.day, EndDay::Later);
        assert_eq!(words(&s), ["for", "num_10", "more_days"]);
    }

    #[test]
    fn the_same_instant_is_today_in_one_zone_and_tomorrow_in_another() {
        // 23:00 UTC: the window ends at 01:00 UTC (tomorrow in London) but
        // 20:00 in Los Angeles (today).
        let now = utc(2026, 12, 4, 23, 0, 0);
        let end = utc(2026, 12, 5, 1, 0, 0);
        assert_eq!(
            AgentStatus::at(end, now, chrono_tz::Europe::London).day,
            EndDay::Tomorrow
        );
        assert_eq!(
            AgentStatus::at(end, now, chrono_tz::America::Los_Angeles).day,
            EndDay::Today
        );
    }

    #[test]
    fn time_left_rounds_to_the_unit_a_person_would_use() {
        let cases: &[(u64, &[&str])] = &[
            (0, &["num_1", "more_minute"]),
            (59, &["num_1", "more_minute"]),
            (61, &["num_2", "more_minutes"]),
            (31 * 60, &["num_30", "num_1", "more_minutes"]),
            (89 * 60 + 1, &["num_90", "more_minutes"]),
            (90 * 60, &["num_2", "more_hours"]),
            (2 * 3600 + 50 * 60, &["num_3", "more_hours"]),
            (47 * 3600, &["num_40", "num_7", "more_hours"]),
            (48 * 3600, &["num_2", "more_days"]),
        ];
        for (secs, want) in cases {
            let s = AgentStatus {
                hour: 0,
                minute: 0,
                day: EndDay::Today,
                left: Duration::from_secs(*secs),
            };
            let got: Vec<String> = s.left_clips().iter().map(|c| c.to_string()).collect();
            let mut expect = vec!["for".to_owned()];
            expect.extend(want.iter().map(|w| w.to_string()));
            assert_eq!(got, expect, "{secs} s left");
        }
    }

    #[test]
    fn a_passed_end_is_no_time_left() {
        let now = utc(2026, 12, 4, 9, 0, 0);
        let s = AgentStatus::at(utc(2026, 12, 4, 8, 0, 0), now, Tz::UTC);
        assert_eq!(s.left, Duration::ZERO);
    }
}
