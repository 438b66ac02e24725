//! Every branch of the log-in menu, driven by a simulated clock.

use super::*;

const DIGIT_TIMEOUT: Duration = Duration::from_secs(5);
const EXT_TIMEOUT: Duration = Duration::from_secs(3);

fn prompts() -> MenuPrompts {
    MenuPrompts {
        welcome: "welcome".into(),
        resource_lookup_error: "resource_lookup_error".into(),
        preset_hours: "preset_hours".into(),
        custom_hours: "custom_hours".into(),
        invalid_input: "invalid_input".into(),
        online: "online".into(),
        offline: "offline".into(),
        enter_extension: "enter_extension".into(),
        enter_pin: "enter_pin".into(),
        wrong_pin: "wrong_pin".into(),
        stay_on_line: "stay_on_line".into(),
        caller_id_refused: "caller_id_refused".into(),
    }
}

fn settings() -> MenuSettings {
    MenuSettings {
        presets: vec![8, 24, 48, 72],
        custom_max_digits: 2,
        max_attempts: 3,
        digit_timeout: DIGIT_TIMEOUT,
        ext_timeout: EXT_TIMEOUT,
        pin_attempts: 3,
        prompts: prompts(),
    }
}

fn agent(user_id: &str, pin: Option<&str>) -> AgentRef {
    AgentRef {
        user_id: user_id.into(),
        pin: pin.map(Into::into),
        nailed_up: false,
    }
}

fn jsmith() -> CallerMatch {
    CallerMatch::One(agent("jsmith", None))
}

fn online(user: &str, hours: u32) -> Action {
    Action::WritePresence(PresenceChange::Online {
        user_id: user.into(),
        hours,
    })
}

fn offline(user: &str) -> Action {
    Action::WritePresence(PresenceChange::Offline {
        user_id: user.into(),
    })
}

/// One call against a simulated clock.
struct Call {
    menu: LoginMenu,
    now: Instant,
    /// The last Play handed out, so tests can finish it.
    playing: Option<PlayId>,
    /// How `LookUpStatus` is answered: at once with this (the agent's
    /// standing), or (`None`) left to the test.
    status: Option<Option<AgentStatus>>,
    /// How many `LookUpStatus` were answered at once.
    looked_up: usize,
    /// Users named by `Action::Identified`, kept apart from the other
    /// actions so the play-by-play tests need not list it.
    identified: Vec<String>,
}

impl Call {
    /// A call whose dialog is already confirmed (the ACK came with the 2xx's
    /// round trip, long before any key).
    fn new(settings: &MenuSettings, caller: CallerMatch) -> Self {
        let mut call = Self::unconfirmed(settings, caller);
        assert!(call.send(Event::Confirmed).is_empty());
        call
    }

    fn unconfirmed(settings: &MenuSettings, caller: CallerMatch) -> Self {
        let now = Instant::now();
        Call {
            menu: LoginMenu::new(settings, caller, now),
            now,
            playing: None,
            status: Some(None),
            looked_up: 0,
            identified: Vec::new(),
        }
    }

    fn send(&mut self, event: Event) -> Vec<Action> {
        self.menu.handle(event, self.now);
        let mut out = Vec::new();
        while let Some(action) = self.menu.poll_action() {
            if let (Action::LookUpStatus { .. }, Some(status)) = (&action, self.status) {
                self.looked_up += 1;
                self.menu.handle(Event::Status(status), self.now);
                continue;
            }
            if let Action::Play { id, .. } = &action {
                self.playing = Some(*id);
            }
            if let Action::Identified { user_id } = action {
                self.identified.push(user_id);
                continue;
            }
            out.push(action);
        }
        out
    }

    fn key(&mut self, key: char) -> Vec<Action> {
        self.send(Event::Digit(key))
    }

    fn keys(&mut self, keys: &str) -> Vec<Action> {
        keys.chars().flat_map(|k| self.key(k)).collect()
    }

    /// The current playback reaches its end.
    fn finish(&mut self) -> Vec<Action> {
        let id = self.playing.expect("something is playing");
        assert_eq!(self.menu.deadline(), None, "no timer during playback");
        self.send(Event::PromptFinished(id))
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Jump to the deadline and fire it.
    fn timeout(&mut self) -> Vec<Action> {
        self.now = self.menu.deadline().expect("a deadline is set");
        self.send(Event::Timer)
    }

    fn written(&mut self, result: Result<(), String>) -> Vec<Action> {
        assert_eq!(self.menu.deadline(), None, "no timer while storing");
        self.send(Event::PresenceWritten(result))
    }
}

/// The clip names of a single Play action, and whether it allows barge-in.
fn play(actions: &[Action]) -> (Vec<&str>, bool) {
    let plays: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Play {
                clips, barge_in, ..
            } => Some((clips.iter().map(PromptName::as_str).collect(), *barge_in)),
            _ => None,
        })
        .collect();
    assert_eq!(plays.len(), 1, "exactly one Play in {actions:?}");
    plays.into_iter().next().unwrap()
}

/// Started → Welcome + menu → finished; ready for a menu key.
fn at_menu(settings: &MenuSettings, caller: CallerMatch) -> Call {
    let mut call = Call::new(settings, caller);
    let started = call.send(Event::Started);
    assert!(play(&started).1);
    assert!(call.finish().is_empty());
    assert_eq!(call.menu.deadline(), Some(call.now + DIGIT_TIMEOUT));
    call
}

/// From a WritePresence, confirm the write and expect `confirm` then HangUp.
fn confirm(call: &mut Call, confirm: &[&str], outcome: Outcome) {
    let acts = call.written(Ok(()));
    assert_eq!(play(&acts), (confirm.to_vec(), false));
    assert!(!call.menu.is_done());
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert!(call.menu.is_done());
    assert_eq!(call.menu.outcome(), Some(outcome));
    assert_eq!(call.menu.deadline(), None);
}

#[test]
fn preset_keys_go_online_after_durable_write() {
    let cases = [
        ('1', 8, ["online", "for", "num_8", "hours"].as_slice()),
        ('2', 24, &["online", "for", "num_20", "num_4", "hours"]),
        ('3', 48, &["online", "for", "num_40", "num_8", "hours"]),
        ('4', 72, &["online", "for", "num_70", "num_2", "hours"]),
    ];
    for (key, hours, clips) in cases {
        let mut call = Call::new(&settings(), jsmith());
        assert_eq!(call.menu.deadline(), None, "nothing before Started");
        let started = call.send(Event::Started);
        assert_eq!(play(&started), (vec!["welcome", "preset_hours"], true));
        call.finish();
        call.advance(Duration::from_secs(2));
        // Written first, and nothing is confirmed until the shell says so.
        assert_eq!(call.key(key), vec![online("jsmith", hours)]);
        assert_eq!(call.menu.outcome(), None);
        confirm(&mut call, clips, Outcome::Online(hours));
    }
}

#[test]
fn custom_two_digits_complete_at_the_second() {
    let mut call = at_menu(&settings(), jsmith());
    assert_eq!(play(&call.key('9')), (vec!["custom_hours"], true));
    call.finish();
    assert!(call.key('3').is_empty());
    assert_eq!(call.menu.deadline(), Some(call.now + DIGIT_TIMEOUT));
    assert_eq!(call.key('6'), vec![online("jsmith", 36)]);
    confirm(
        &mut call,
        &["online", "for", "num_30", "num_6", "hours"],
        Outcome::Online(36),
    );
}

#[test]
fn custom_one_digit_then_hash() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('9');
    call.finish();
    assert!(call.key('5').is_empty());
    assert_eq!(call.key('#'), vec![online("jsmith", 5)]);
    confirm(
        &mut call,
        &["online", "for", "num_5", "hours"],
        Outcome::Online(5),
    );
}

#[test]
fn custom_timeout_after_one_digit_uses_it() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('9');
    call.finish();
    call.advance(Duration::from_secs(1));
    call.key('1');
    // An early timer (before the inter-digit deadline) changes nothing.
    call.advance(Duration::from_secs(1));
    assert!(call.send(Event::Timer).is_empty());
    assert_eq!(call.timeout(), vec![online("jsmith", 1)]);
    confirm(
        &mut call,
        &["online", "for", "num_1", "hour"],
        Outcome::Online(1),
    );
}

#[test]
fn custom_timeout_without_digit_is_invalid() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('9');
    call.finish();
    let acts = call.timeout();
    assert_eq!(play(&acts), (vec!["invalid_input", "preset_hours"], true));
}

#[test]
fn custom_hash_alone_or_star_is_invalid() {
    for keys in ["#", "*", "4*"] {
        let mut call = at_menu(&settings(), jsmith());
        call.key('9');
        call.finish();
        let acts = call.keys(keys);
        assert_eq!(
            play(&acts),
            (vec!["invalid_input", "preset_hours"], true),
            "9 then {keys}"
        );
        assert!(!acts.iter().any(|a| matches!(a, Action::WritePresence(_))));
    }
}

#[test]
fn custom_zero_means_offline() {
    for (keys, by_timeout) in [("0", true), ("00", false), ("0#", false)] {
        let mut call = at_menu(&settings(), jsmith());
        call.key('9');
        call.finish();
        let mut acts = call.keys(keys);
        if by_timeout {
            assert!(acts.is_empty());
            acts = call.timeout();
        }
        assert_eq!(acts, vec![offline("jsmith")], "9 then {keys}");
        confirm(&mut call, &["offline"], Outcome::Offline);
    }
}

#[test]
fn key_zero_goes_offline() {
    let mut call = at_menu(&settings(), jsmith());
    assert_eq!(call.key('0'), vec![offline("jsmith")]);
    confirm(&mut call, &["offline"], Outcome::Offline);
}

#[test]
fn invalid_keys_replay_the_menu() {
    for key in ['5', '6', '7', '8', '*', '#', 'A', 'x'] {
        let mut call = at_menu(&settings(), jsmith());
        let acts = call.key(key);
        assert_eq!(play(&acts), (vec!["invalid_input", "preset_hours"], true));
        assert_eq!(call.menu.outcome(), None, "key {key}");
    }
}

#[test]
fn invalid_then_valid() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('5');
    call.finish();
    assert_eq!(call.menu.deadline(), Some(call.now + DIGIT_TIMEOUT));
    assert_eq!(call.key('2'), vec![online("jsmith", 24)]);
}

#[test]
fn silence_after_menu_is_invalid_and_counts() {
    let mut call = at_menu(&settings(), jsmith());
    let acts = call.timeout();
    assert_eq!(play(&acts), (vec!["invalid_input", "preset_hours"], true));
    call.finish();
    call.timeout();
    call.finish();
    let acts = call.timeout();
    assert_eq!(play(&acts), (vec!["invalid_input"], false));
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::TooManyAttempts));
}

#[test]
fn max_attempts_counted_across_menu_and_custom() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('7'); // 1: bad menu key
    call.finish();
    call.key('9');
    call.finish();
    call.key('#'); // 2: empty custom entry
    call.finish();
    let acts = call.timeout(); // 3: silence
    assert_eq!(play(&acts), (vec!["invalid_input"], false));
    // The final prompt cannot be keyed through.
    assert!(call.key('1').is_empty());
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::TooManyAttempts));
    assert!(call.key('1').is_empty(), "keys after Done are ignored");
}

#[test]
fn one_attempt_allowed() {
    let mut s = settings();
    s.max_attempts = 1;
    let mut call = at_menu(&s, jsmith());
    assert_eq!(play(&call.key('5')), (vec!["invalid_input"], false));
}

#[test]
fn unknown_and_withheld_callers_hear_the_error_and_are_hung_up() {
    for (caller, outcome) in [
        (CallerMatch::Unknown, Outcome::UnknownCaller),
        (CallerMatch::Withheld, Outcome::Withheld),
        (CallerMatch::Shared(Vec::new()), Outcome::UnknownCaller),
    ] {
        let mut call = Call::new(&settings(), caller);
        let acts = call.send(Event::Started);
        assert_eq!(play(&acts), (vec!["resource_lookup_error"], false));
        assert!(call.key('1').is_empty(), "no barge-in");
        assert_eq!(call.menu.deadline(), None);
        assert_eq!(call.finish(), vec![Action::HangUp]);
        assert_eq!(call.menu.outcome(), Some(outcome));
    }
}

#[test]
fn pin_right_leads_to_menu() {
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some("1234"))));
    let acts = call.send(Event::Started);
    assert_eq!(play(&acts), (vec!["welcome", "enter_pin"], true));
    call.finish();
    assert!(call.keys("123").is_empty());
    assert_eq!(play(&call.key('4')), (vec!["preset_hours"], true));
    call.finish();
    assert_eq!(call.key('1'), vec![online("jsmith", 8)]);
}

/// Issue 14: the caller is named to the shell (which clears a
/// not-responding mark) once they are identified, just before the menu:
/// after the PIN, never before it, and once however often the menu plays.
#[test]
fn identification_is_told_once_before_the_menu() {
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some("1234"))));
    call.send(Event::Started);
    call.finish();
    assert!(call.identified.is_empty(), "not before the PIN");
    call.keys("9999");
    call.finish();
    assert!(call.identified.is_empty(), "not on a wrong PIN");
    // Told before the menu's Play, in the same batch of actions.
    let mut order = Vec::new();
    for key in "1234".chars() {
        call.menu.handle(Event::Digit(key), call.now);
        while let Some(a) = call.menu.poll_action() {
            order.push(a);
        }
    }
    // (The window is read first: status by phone.)
    assert!(
        matches!(order.as_slice(), [Action::LookUpStatus { user_id }] if user_id == "jsmith"),
        "{order:?}"
    );
    call.menu.handle(Event::Status(None), call.now);
    let order: Vec<Action> = std::iter::from_fn(|| call.menu.poll_action()).collect();
    assert!(
        matches!(order.as_slice(), [Action::Identified { user_id }, Action::Play { .. }] if user_id == "jsmith"),
        "{order:?}"
    );
    // Without a PIN: at once after the welcome; an invalid key replays
    // the menu without telling again.
    let mut call = at_menu(&settings(), jsmith());
    assert_eq!(call.identified, ["jsmith"]);
    call.key('7');
    call.finish();
    assert_eq!(call.identified, ["jsmith"]);
    // An unknown caller is never identified.
    let mut call = Call::new(&settings(), CallerMatch::Unknown);
    call.send(Event::Started);
    assert!(call.identified.is_empty());
}

#[test]
fn pin_wrong_three_times_hangs_up_without_writing() {
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some("1234"))));
    call.send(Event::Started);
    call.finish();
    // Wrong digits, '#' before the length, and silence all count.
    assert_eq!(
        play(&call.keys("9999")),
        (vec!["wrong_pin", "enter_pin"], true)
    );
    call.finish();
    assert_eq!(
        play(&call.keys("12#")),
        (vec!["wrong_pin", "enter_pin"], true)
    );
    call.finish();
    call.key('1');
    let acts = call.timeout();
    assert_eq!(play(&acts), (vec!["wrong_pin"], false));
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::WrongPin));
}

#[test]
fn pin_typed_during_welcome() {
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some("42"))));
    call.send(Event::Started);
    assert_eq!(call.key('4'), vec![Action::StopPlayback]);
    assert_eq!(play(&call.key('2')), (vec!["preset_hours"], true));
}

#[test]
fn empty_pin_means_no_pin() {
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some(""))));
    assert_eq!(
        play(&call.send(Event::Started)),
        (vec!["welcome", "preset_hours"], true)
    );
}

fn shared() -> CallerMatch {
    CallerMatch::Shared(vec![
        ("1".into(), agent("anna", None)),
        ("20".into(), agent("bob", None)),
        ("21".into(), agent("carol", Some("7"))),
    ])
}

#[test]
fn shared_number_extension_by_hash() {
    let mut call = Call::new(&settings(), shared());
    let acts = call.send(Event::Started);
    assert_eq!(play(&acts), (vec!["welcome", "enter_extension"], true));
    call.finish();
    assert!(call.key('2').is_empty());
    assert_eq!(call.menu.deadline(), Some(call.now + EXT_TIMEOUT));
    assert_eq!(play(&call.keys("0#")), (vec!["preset_hours"], true));
    call.finish();
    assert_eq!(call.key('0'), vec![offline("bob")]);
}

#[test]
fn shared_number_extension_ends_on_silence() {
    // "1" is a prefix-free match only once the caller stops keying.
    let mut call = Call::new(&settings(), shared());
    call.send(Event::Started);
    call.finish();
    assert!(call.key('1').is_empty());
    assert_eq!(play(&call.timeout()), (vec!["preset_hours"], true));
    call.finish();
    assert_eq!(call.key('3'), vec![online("anna", 48)]);
}

#[test]
fn shared_number_then_pin() {
    let mut call = Call::new(&settings(), shared());
    call.send(Event::Started);
    call.finish();
    assert_eq!(play(&call.keys("21#")), (vec!["enter_pin"], true));
    call.finish();
    assert_eq!(play(&call.key('7')), (vec!["preset_hours"], true));
    call.finish();
    assert_eq!(call.key('4'), vec![online("carol", 72)]);
}

#[test]
fn shared_number_mismatch_retries_then_hangs_up() {
    let mut call = Call::new(&settings(), shared());
    call.send(Event::Started);
    call.finish();
    // Unknown extension, too long (ends at once), and nothing at all.
    let retry = (vec!["invalid_input", "enter_extension"], true);
    assert_eq!(play(&call.keys("9#")), retry);
    call.finish();
    assert_eq!(play(&call.keys("123")), retry);
    call.finish();
    let acts = call.timeout();
    assert_eq!(play(&acts), (vec!["invalid_input"], false));
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::TooManyAttempts));
}

#[test]
fn hang_up_mid_menu_writes_nothing() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('9');
    assert!(call.send(Event::HungUp).is_empty());
    assert!(call.menu.is_done());
    assert_eq!(call.menu.deadline(), None);
    assert_eq!(call.menu.outcome(), Some(Outcome::AbandonedByCaller));
    assert!(call.keys("12").is_empty());
    assert!(call.send(Event::Timer).is_empty());
    let stale = call.playing.unwrap();
    assert!(call.send(Event::PromptFinished(stale)).is_empty());
}

#[test]
fn hang_up_before_start() {
    let mut call = Call::new(&settings(), jsmith());
    assert!(call.send(Event::HungUp).is_empty());
    assert!(call.send(Event::Started).is_empty());
    assert_eq!(call.menu.outcome(), Some(Outcome::AbandonedByCaller));
}

#[test]
fn hang_up_voids_a_write_the_shell_has_not_taken() {
    let mut call = at_menu(&settings(), jsmith());
    // The key and the hang-up arrive before the shell drains the queue.
    call.menu.handle(Event::Digit('1'), call.now);
    assert!(call.send(Event::HungUp).is_empty());
    assert_eq!(call.menu.outcome(), Some(Outcome::AbandonedByCaller));
}

#[test]
fn hang_up_during_write_leaves_it_to_the_shell() {
    let mut call = at_menu(&settings(), jsmith());
    assert_eq!(call.key('2'), vec![online("jsmith", 24)]);
    assert!(call.send(Event::HungUp).is_empty());
    assert_eq!(call.menu.outcome(), Some(Outcome::Online(24)));
    assert!(call.send(Event::PresenceWritten(Ok(()))).is_empty());
    assert_eq!(call.menu.outcome(), Some(Outcome::Online(24)));

    let mut call = at_menu(&settings(), jsmith());
    call.key('2');
    call.send(Event::HungUp);
    assert!(call
        .send(Event::PresenceWritten(Err("disk full".into())))
        .is_empty());
    assert_eq!(call.menu.outcome(), Some(Outcome::StoreFailed));
}

#[test]
fn hang_up_during_confirmation_keeps_outcome() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('0');
    call.written(Ok(()));
    assert!(call.send(Event::HungUp).is_empty());
    assert_eq!(call.menu.outcome(), Some(Outcome::Offline));
}

#[test]
fn barge_in_during_welcome() {
    let mut call = Call::new(&settings(), jsmith());
    let acts = call.send(Event::Started);
    let welcome = call.playing.unwrap();
    assert!(play(&acts).1);
    assert_eq!(
        call.key('2'),
        vec![Action::StopPlayback, online("jsmith", 24)]
    );
    // The stopped playback reporting late is ignored.
    assert!(call.send(Event::PromptFinished(welcome)).is_empty());
    confirm(
        &mut call,
        &["online", "for", "num_20", "num_4", "hours"],
        Outcome::Online(24),
    );
}

#[test]
fn barge_in_during_preset_hours_and_invalid_input() {
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some("1"))));
    call.send(Event::Started);
    call.finish();
    assert_eq!(play(&call.key('1')), (vec!["preset_hours"], true));
    // '9' cuts the menu short and asks for hours.
    let acts = call.key('9');
    assert_eq!(acts[0], Action::StopPlayback);
    assert_eq!(play(&acts[1..]), (vec!["custom_hours"], true));
    // A key during custom_hours is the first digit of the entry.
    assert_eq!(call.key('4'), vec![Action::StopPlayback]);
    assert_eq!(
        play(&call.key('*')),
        (vec!["invalid_input", "preset_hours"], true)
    );
    // Keying through the invalid-input replay works too.
    assert_eq!(call.key('0'), vec![Action::StopPlayback, offline("jsmith")]);
}

#[test]
fn store_failure_is_never_confirmed() {
    let mut call = at_menu(&settings(), jsmith());
    call.key('1');
    let acts = call.written(Err("database is locked".into()));
    assert_eq!(play(&acts), (vec!["resource_lookup_error"], false));
    assert!(call.key('1').is_empty());
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::StoreFailed));
}

#[test]
fn unsolicited_store_result_is_ignored() {
    let mut call = at_menu(&settings(), jsmith());
    assert!(call.send(Event::PresenceWritten(Ok(()))).is_empty());
    assert_eq!(call.key('1'), vec![online("jsmith", 8)]);
    // Keys while the store is being written do nothing.
    assert!(call.key('0').is_empty());
    confirm(
        &mut call,
        &["online", "for", "num_8", "hours"],
        Outcome::Online(8),
    );
}

#[test]
fn custom_presets_are_assembled_from_clips() {
    let mut s = settings();
    s.presets = vec![2, 1, 36];
    s.custom_max_digits = 1;
    let mut call = Call::new(&s, jsmith());
    let acts = call.send(Event::Started);
    let expected = [
        "welcome",
        "press",
        "num_1",
        "for",
        "num_2",
        "hours",
        "press",
        "num_2",
        "for",
        "num_1",
        "hour",
        "press",
        "num_3",
        "for",
        "num_30",
        "num_6",
        "hours",
        "custom_option",
        "offline_option",
    ];
    assert_eq!(play(&acts), (expected.to_vec(), true));
    call.finish();
    // Only three presets: key 4 is invalid.
    assert_eq!(play(&call.key('4')).0[0], "invalid_input");
    call.finish();
    assert_eq!(call.key('3'), vec![online("jsmith", 36)]);

    // One custom digit completes the entry.
    let mut call = at_menu(&s, jsmith());
    call.key('9');
    call.finish();
    assert_eq!(call.key('7'), vec![online("jsmith", 7)]);
}

#[test]
fn more_than_four_presets_are_clamped() {
    let mut s = settings();
    s.presets = vec![1, 2, 3, 4, 5];
    assert!(s.validate().is_err());
    let mut call = at_menu(&s, jsmith());
    assert_eq!(play(&call.key('5')).0[0], "invalid_input");
}

#[test]
fn stale_prompt_finished_is_ignored() {
    let mut call = at_menu(&settings(), jsmith());
    let menu_play = call.playing.unwrap();
    call.key('5');
    let replay = call.playing.unwrap();
    assert_ne!(menu_play, replay);
    assert!(call.send(Event::PromptFinished(menu_play)).is_empty());
    assert_eq!(call.menu.deadline(), None, "still waiting for the replay");
    assert!(call.finish().is_empty());
    assert!(call.menu.deadline().is_some());
    // A duplicate of the finished event does not restart the timer.
    let deadline = call.menu.deadline();
    call.advance(Duration::from_secs(1));
    assert!(call.send(Event::PromptFinished(replay)).is_empty());
    assert_eq!(call.menu.deadline(), deadline);
}

#[test]
fn second_started_is_ignored() {
    let mut call = Call::new(&settings(), jsmith());
    call.send(Event::Started);
    assert!(call.send(Event::Started).is_empty());
}

#[test]
fn validate_names_the_field() {
    assert_eq!(settings().validate(), Ok(()));
    type Change = Box<dyn Fn(&mut MenuSettings)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|s| s.presets = vec![8, 0]), "flows.presets[1]"),
        (Box::new(|s| s.presets = vec![100]), "flows.presets[0]"),
        (
            Box::new(|s| s.custom_max_digits = 3),
            "flows.custom_max_digits",
        ),
        (Box::new(|s| s.max_attempts = 0), "flows.max_attempts"),
        (Box::new(|s| s.pin_attempts = 0), "flows.pin_attempts"),
        (
            Box::new(|s| s.digit_timeout = Duration::ZERO),
            "flows.digit_timeout",
        ),
        (
            Box::new(|s| s.ext_timeout = Duration::ZERO),
            "flows.ext_timeout",
        ),
    ];
    for (change, field) in cases {
        let mut s = settings();
        change(&mut s);
        let msg = s.validate().unwrap_err().to_string();
        assert!(msg.starts_with(field), "{msg}");
    }
}

#[test]
fn keys_are_secret_exactly_while_a_pin_is_collected() {
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some("1234"))));
    assert!(!call.menu.collecting_secret(), "before the call starts");
    call.send(Event::Started);
    // Welcome + enter_pin plays with barge-in: a key now is the PIN's first.
    assert!(call.menu.collecting_secret());
    call.finish();
    assert!(call.menu.collecting_secret());
    call.keys("12");
    assert!(call.menu.collecting_secret());
    call.keys("34");
    // Right PIN: the menu, whose keys are not secret.
    assert!(!call.menu.collecting_secret());
    call.finish();
    assert!(!call.menu.collecting_secret());
    // Wrong PIN: the retry is secret again.
    let mut call = Call::new(&settings(), CallerMatch::One(agent("jsmith", Some("1234"))));
    call.send(Event::Started);
    call.finish();
    call.keys("9999");
    assert!(call.menu.collecting_secret(), "wrong_pin, enter_pin plays");
    // No PIN configured: nothing is secret.
    let mut call = at_menu(&settings(), jsmith());
    assert!(!call.menu.collecting_secret());
    call.key('9');
    assert!(!call.menu.collecting_secret());
}

#[test]
fn the_caller_logs_as_words_without_the_pin() {
    let one = CallerMatch::One(agent("jsmith", Some("2468")));
    assert_eq!(one.to_string(), "jsmith (with PIN)");
    assert!(!format!("{one:?}").contains("2468"), "{one:?}");
    let shared = CallerMatch::Shared(vec![
        ("201".into(), agent("mgarcia", Some("2468"))),
        ("202".into(), agent("akim", None)),
    ]);
    assert_eq!(shared.to_string(), "shared line: 201=mgarcia 202=akim");
    assert!(!format!("{shared:?}").contains("2468"));
    assert_eq!(CallerMatch::Withheld.to_string(), "withheld");
    assert_eq!(Outcome::Online(8).to_string(), "online 8 h");
    assert_eq!(Outcome::WrongPin.to_string(), "PIN failed");
}

/// Issue 9 ("blind log-in by a forged source"): keys that arrive before the
/// ACK for our 2xx must not be acted on, so a sender who never saw our
/// answer cannot log anyone in. Prompts still play; the keys wait for the
/// ACK, and a dialog never confirmed writes nothing.
#[test]
fn keys_before_the_ack_are_not_acted_on() {
    let mut call = Call::unconfirmed(&settings(), jsmith());
    let started = call.send(Event::Started);
    assert!(play(&started).1, "the welcome plays before the ACK");
    // Barge-in and a whole preset choice while unconfirmed: nothing.
    assert!(call.keys("1").is_empty());
    assert!(call.keys("91#").is_empty());
    assert!(call.finish().is_empty());
    assert_eq!(call.menu.outcome(), None);
    // Never confirmed: the caller (or a forger) goes, nothing is written.
    assert!(!call
        .send(Event::HungUp)
        .iter()
        .any(|a| matches!(a, Action::WritePresence(_))));
}

/// Issue 12 ("loss"): a lost ACK or 2xx confirms the dialog only when a
/// retransmission gets through (T1 later, RFC 3261 §13.3.1.4); keys the
/// agent pressed meanwhile count then, in order. Dropping them changed
/// what the later keys meant: 9, 1, # with the 9 lost is preset 1, 8 hours.
#[test]
fn keys_before_the_ack_count_once_it_arrives() {
    let mut call = Call::unconfirmed(&settings(), jsmith());
    call.send(Event::Started);
    assert!(call.keys("91#").is_empty());
    let acts = call.send(Event::Confirmed);
    let writes: Vec<&Action> = acts
        .iter()
        .filter(|a| matches!(a, Action::WritePresence(_)))
        .collect();
    assert_eq!(writes, [&online("jsmith", 1)], "{acts:?}");
}

// Status by phone (issue 14): an agent already online hears where they
// stand, then options that add to the window.

use crate::flows::agent_status::EndDay;

/// 5 PM today, 3 hours left.
fn five_pm() -> AgentStatus {
    AgentStatus {
        hour: 17,
        minute: 0,
        day: EndDay::Today,
        left: Duration::from_secs(3 * 3600),
    }
}

const STATUS: [&str; 6] = ["online_until", "num_5", "pm", "for", "num_3", "more_hours"];
const EXTEND_OPTIONS: [&str; 24] = [
    "press",
    "num_1",
    "to_add",
    "num_8",
    "hours",
    "press",
    "num_2",
    "to_add",
    "num_20",
    "num_4",
    "hours",
    "press",
    "num_3",
    "to_add",
    "num_40",
    "num_8",
    "hours",
    "press",
    "num_4",
    "to_add",
    "num_70",
    "num_2",
    "hours",
    "new_hours_option",
];

fn with(lead: &[&str], tail: &[&str]) -> Vec<String> {
    lead.iter().chain(tail).map(|s| s.to_string()).collect()
}

fn owned(clips: Vec<&str>) -> Vec<String> {
    clips.into_iter().map(str::to_owned).collect()
}

fn extend(user: &str, hours: u32) -> Action {
    Action::WritePresence(PresenceChange::Extend {
        user_id: user.into(),
        hours,
    })
}

/// An online agent at the options, the status heard.
fn online_at_menu() -> Call {
    let mut call = Call::new(&settings(), jsmith());
    call.status = Some(Some(five_pm()));
    let started = call.send(Event::Started);
    let (clips, barge_in) = play(&started);
    let mut want = with(&["welcome"], &STATUS);
    want.extend(with(&EXTEND_OPTIONS, &["offline_option"]));
    assert_eq!(owned(clips), want);
    assert!(barge_in, "an agent who knows the menu keys through it");
    assert_eq!(call.looked_up, 1);
    call.finish();
    call
}

#[test]
fn an_online_agent_hears_the_status_then_adds_a_preset() {
    let mut call = online_at_menu();
    // Key 2 adds 24 hours to the window: written before anything is said.
    assert_eq!(call.key('2'), vec![extend("jsmith", 24)]);
    assert_eq!(call.menu.outcome(), None);
    assert_eq!(call.menu.deadline(), None, "no timer while storing");
    // The shell answers with the window it made: said back in full.
    let later = AgentStatus {
        hour: 17,
        minute: 0,
        day: EndDay::Tomorrow,
        left: Duration::from_secs(27 * 3600),
    };
    let acts = call.send(Event::Extended(Ok(later)));
    let (clips, barge_in) = play(&acts);
    assert_eq!(
        clips,
        [
            "extended",
            "online_until",
            "num_5",
            "pm",
            "tomorrow",
            "for",
            "num_20",
            "num_7",
            "more_hours"
        ]
    );
    assert!(!barge_in);
    assert_eq!(call.finish(), vec![Action::HangUp]);
    assert_eq!(call.menu.outcome(), Some(Outcome::Extended(24)));
    assert_eq!(call.menu.outcome().and_then(Outcome::hours), Some(24));
}

#[test]
fn an_online_agent_sets_new_hours_or_goes_offline() {
    // 9: a new window from now, as an offline agent's custom entry.
    let mut call = online_at_menu();
    assert_eq!(play(&call.key('9')), (vec!["custom_hours"], true));
    call.finish();
    assert_eq!(call.keys("4#"), vec![online("jsmith", 4)]);
    confirm(
        &mut call,
        &["online", "for", "num_4", "hours"],
        Outcome::Online(4),
    );
    // 0: offline.
    let mut call = online_at_menu();
    assert_eq!(call.key('0'), vec![offline("jsmith")]);
    confirm(&mut call, &["offline"], Outcome::Offline);
}

#[test]
fn an_online_agent_keying_wrong_hears_the_options_again_not_the_status() {
    let mut call = online_at_menu();
    let acts = call.key('7');
    let (clips, _) = play(&acts);
    let mut want = owned(vec!["invalid_input"]);
    want.extend(with(&EXTEND_OPTIONS, &["offline_option"]));
    assert_eq!(owned(clips), want);
    call.finish();
    // Silence counts as a failure too; the third ends the call.
    call.timeout();
    call.finish();
    let acts = call.timeout();
    assert_eq!(play(&acts), (vec!["invalid_input"], false));
    assert_eq!(call.menu.outcome(), Some(Outcome::TooManyAttempts));
}

#[test]
fn a_failed_extension_is_never_confirmed() {
    let mut call = online_at_menu();
    call.key('1');
    let acts = call.send(Event::Extended(Err("disk full".into())));
    assert_eq!(play(&acts), (vec!["resource_lookup_error"], false));
    assert_eq!(call.menu.outcome(), Some(Outcome::StoreFailed));
}

#[test]
fn the_status_is_read_only_after_the_pin() {
    let mut call = Call::new(
        &settings(),
        CallerMatch::One(agent("mgarcia", Some("2468"))),
    );
    call.status = None;
    let started = call.send(Event::Started);
    assert_eq!(play(&started), (vec!["welcome", "enter_pin"], true));
    call.finish();
    // Who is calling is not told anything before the PIN is right.
    assert_eq!(
        call.keys("246"),
        Vec::<Action>::new(),
        "nothing while the PIN is keyed"
    );
    assert_eq!(
        call.key('8'),
        vec![Action::LookUpStatus {
            user_id: "mgarcia".into()
        }]
    );
    let acts = call.send(Event::Status(Some(five_pm())));
    let (clips, _) = play(&acts);
    assert_eq!(owned(clips[..6].to_vec()), owned(STATUS.to_vec()));
}

#[test]
fn keys_pressed_while_the_status_is_read_count_after_it() {
    let mut call = Call::new(&settings(), jsmith());
    call.status = None;
    assert_eq!(
        call.send(Event::Started),
        vec![Action::LookUpStatus {
            user_id: "jsmith".into()
        }]
    );
    assert_eq!(call.menu.deadline(), None, "no timer while reading");
    // A quick agent keys 1 before anything plays.
    assert!(call.key('1').is_empty());
    let acts = call.send(Event::Status(Some(five_pm())));
    // The menu starts, and the held key barges in and chooses.
    assert!(matches!(acts.first(), Some(Action::Play { .. })));
    assert_eq!(acts[1..], [Action::StopPlayback, extend("jsmith", 8)]);
}

#[test]
fn a_caller_who_leaves_while_the_status_is_read_hung_up() {
    let mut call = Call::new(&settings(), jsmith());
    call.status = None;
    call.send(Event::Started);
    assert!(call.send(Event::HungUp).is_empty());
    assert!(call.send(Event::Status(Some(five_pm()))).is_empty());
    assert_eq!(call.menu.outcome(), Some(Outcome::AbandonedByCaller));
}

#[test]
fn an_offline_agent_hears_the_menu_as_before() {
    let mut call = Call::new(&settings(), jsmith());
    call.status = Some(None);
    let started = call.send(Event::Started);
    assert_eq!(play(&started), (vec!["welcome", "preset_hours"], true));
    assert_eq!(call.looked_up, 1);
    call.finish();
    assert_eq!(call.key('1'), vec![online("jsmith", 8)]);
}

#[test]
fn on_a_shared_line_the_status_is_of_the_agent_keyed() {
    let shared = CallerMatch::Shared(vec![
        ("201".into(), agent("mgarcia", None)),
        ("202".into(), agent("akim", None)),
    ]);
    let mut call = Call::new(&settings(), shared);
    call.status = None;
    call.send(Event::Started);
    call.finish();
    call.keys("202");
    assert_eq!(
        call.key('#'),
        vec![Action::LookUpStatus {
            user_id: "akim".into()
        }]
    );
}
#[path = "tests_trust.rs"]
mod trust;

/// A nailed-up agent (issue 14): once online, told to stay on the line,
/// and the call is handed over as their line instead of hung up.
fn nailed_jsmith() -> CallerMatch {
    CallerMatch::One(AgentRef {
        nailed_up: true,
        ..agent("jsmith", None)
    })
}

#[test]
fn a_nailed_up_agent_going_online_keeps_the_call_as_their_line() {
    let mut call = at_menu(&settings(), nailed_jsmith());
    assert_eq!(call.key('1'), vec![online("jsmith", 8)]);
    let acts = call.written(Ok(()));
    assert_eq!(
        play(&acts),
        (
            vec!["online", "for", "num_8", "hours", "stay_on_line"],
            false
        )
    );
    assert_eq!(
        call.finish(),
        vec![Action::HoldLine {
            user_id: "jsmith".into()
        }]
    );
    assert!(call.menu.is_done());
    assert_eq!(call.menu.outcome(), Some(Outcome::Online(8)));
}

#[test]
fn a_nailed_up_agent_going_offline_or_failing_is_hung_up_as_anyone() {
    let mut call = at_menu(&settings(), nailed_jsmith());
    assert_eq!(call.key('0'), vec![offline("jsmith")]);
    confirm(&mut call, &["offline"], Outcome::Offline);
    // A write that fails: no line is kept for a window that is not there.
    let mut call = at_menu(&settings(), nailed_jsmith());
    call.key('1');
    let acts = call.written(Err("disk full".into()));
    assert!(!acts.iter().any(|a| matches!(a, Action::HoldLine { .. })));
    call.finish();
    assert_eq!(call.menu.outcome(), Some(Outcome::StoreFailed));
}

#[test]
fn a_nailed_up_agent_who_extends_keeps_the_call_as_their_line() {
    let mut call = Call::new(&settings(), nailed_jsmith());
    call.status = Some(Some(five_pm()));
    call.send(Event::Started);
    call.finish();
    assert_eq!(call.key('2'), vec![extend("jsmith", 24)]);
    let acts = call.send(Event::Extended(Ok(five_pm())));
    let (clips, _) = play(&acts);
    assert_eq!(clips.first(), Some(&"extended"));
    assert_eq!(clips.last(), Some(&"stay_on_line"));
    assert_eq!(
        call.finish(),
        vec![Action::HoldLine {
            user_id: "jsmith".into()
        }]
    );
}

#[test]
fn an_online_nailed_up_agent_may_keep_the_window_and_rejoin_the_line() {
    let mut call = Call::new(&settings(), nailed_jsmith());
    call.status = Some(Some(five_pm()));
    let started = call.send(Event::Started);
    let (clips, _) = play(&started);
    assert_eq!(clips.last(), Some(&"keep_time_option"), "{clips:?}");
    call.finish();
    // '#': nothing written, told to stay, and the call becomes the line.
    let acts = call.key('#');
    assert!(!acts.iter().any(|a| matches!(a, Action::WritePresence(_))));
    assert_eq!(play(&acts), (vec!["stay_on_line"], false));
    assert_eq!(
        call.finish(),
        vec![Action::HoldLine {
            user_id: "jsmith".into()
        }]
    );
    assert_eq!(call.menu.outcome(), Some(Outcome::Rejoined));
}

#[test]
fn keep_is_offered_only_to_online_nailed_up_agents() {
    // An online per-call agent: no keep option, '#' is an invalid key.
    let mut call = online_at_menu();
    let acts = call.key('#');
    let (clips, _) = play(&acts);
    assert_eq!(clips.first(), Some(&"invalid_input"), "{clips:?}");
    assert!(!clips.contains(&"keep_time_option"));
    // An offline nailed-up agent: the ordinary menu.
    let mut call = Call::new(&settings(), nailed_jsmith());
    let started = call.send(Event::Started);
    assert!(!play(&started).0.contains(&"keep_time_option"));
}
