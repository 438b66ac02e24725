//! Validation of the product part of the file: the prompt library, users,
//! flows and dispatch mappings, including the checks across entries
//! (unique ids and numbers, shared desk lines, references by name).

use super::e164::E164;
use super::model::*;
use super::raw::*;
use super::validate::V;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn digits_only(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Prompts added after the contract (config.example.toml) was written. A
/// library without them gets "prompts/<name>.wav" next to the config file,
/// so a contract-shaped file keeps loading.
const LATER_PROMPTS: [&str; 8] = [
    "enter_extension",
    "enter_pin",
    "wrong_pin",
    "queue_unavailable",
    "not_responding",
    "stay_on_line",
    "line_tone",
    "caller_id_refused",
];

pub(super) fn prompts(v: &mut V, r: &BTreeMap<String, String>) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for name in LATER_PROMPTS {
        if !r.contains_key(name) {
            out.insert(
                name.to_string(),
                v.path("prompts", &format!("prompts/{name}.wav")),
            );
        }
    }
    for (name, file) in r {
        let path = format!("prompts.{name}");
        if !is_id(name) {
            v.push(
                &path,
                format!("{name:?} is not a valid prompt name"),
                "use letters, digits, '.', '_' and '-'",
            );
        }
        out.insert(name.clone(), v.path(&path, file));
    }
    out
}

/// Resolve a flow's prompt name in the library. `None` from the file means
/// the default, which is reported differently when it is missing.
fn prompt_ref(
    v: &mut V,
    lib: &BTreeMap<String, PathBuf>,
    path: &str,
    name: &Option<String>,
    default: &str,
) -> PromptRef {
    let n = name.as_deref().unwrap_or(default);
    if let Some(p) = lib.get(n) {
        return PromptRef {
            name: n.to_string(),
            path: p.clone(),
        };
    }
    let known: Vec<&str> = lib.keys().map(String::as_str).collect();
    let problem = if name.is_some() {
        format!("prompt {n:?} is not in [prompts]")
    } else {
        format!("the default prompt {n:?} is not in [prompts]")
    };
    v.push(
        path,
        problem,
        format!(
            "add {n} = \"prompts/{n}.wav\" under [prompts], or name one of: {}",
            known.join(", ")
        ),
    );
    PromptRef {
        name: n.to_string(),
        path: PathBuf::new(),
    }
}

/// A prompt that may be switched off with "".
fn optional_prompt(
    v: &mut V,
    lib: &BTreeMap<String, PathBuf>,
    path: &str,
    name: &Option<String>,
    default: &str,
) -> Option<PromptRef> {
    match name.as_deref() {
        Some("") => None,
        _ => Some(prompt_ref(v, lib, path, name, default)),
    }
}

pub(super) fn users(v: &mut V, raw: &[(usize, RawUser)]) -> Vec<User> {
    let mut out = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    // number -> every (user index, extension index, ext) on it, in file order
    let mut lines: BTreeMap<E164, Vec<(usize, usize, String)>> = BTreeMap::new();
    for (i, r) in raw {
        let p = format!("users[{i}]");
        let id = r.id.clone().unwrap_or_default();
        if r.id.is_none() {
            v.missing(&format!("{p}.id"), "\"jsmith\"");
        } else if !is_id(&id) {
            v.push(
                format!("{p}.id"),
                format!("{id:?} is not a valid user id"),
                "use letters, digits, '.', '_' and '-' only, such as \"jsmith\"",
            );
        } else if let Some(first) = ids.get(&id) {
            v.push(
                format!("{p}.id"),
                format!("{id:?} is already the id of users[{first}]"),
                "give each user a different id",
            );
        } else {
            ids.insert(id.clone(), *i);
        }
        let mut skills = Vec::new();
        for (k, s) in r.skills.iter().flatten().enumerate() {
            if s.trim().is_empty() || s.trim() != s {
                v.push(
                    format!("{p}.skills[{k}]"),
                    format!("{s:?} is not a skill name"),
                    "write the skill without surrounding spaces, such as \"billing\"",
                );
            } else if !skills.contains(s) {
                skills.push(s.clone());
            }
        }
        if let Some(pin) = &r.pin {
            if !(4..=8).contains(&pin.len()) || !digits_only(pin.expose()) {
                v.push(
                    format!("{p}.pin"),
                    "is not 4 to 8 digits",
                    "write 4 to 8 digits in quotes, such as \"4321\", or remove the key",
                );
            }
        }
        let mut extensions = Vec::new();
        match &r.extensions {
            None => v.push(format!("{p}.extensions"), "is missing", "add a [[users.extensions]] table with type = \"pstn\" and the agent's number as value"),
            Some(list) if list.is_empty() => v.push(format!("{p}.extensions"), "is empty", "add the agent's PSTN number: the user is recognised by it"),
            Some(list) => {
                for (j, e) in list.iter().enumerate() {
                    if let Some(ext) = extension(v, &format!("{p}.extensions[{j}]"), e) {
                        let Extension::Pstn { value, ext: digits, .. } = &ext;
                        lines.entry(value.clone()).or_default().push((*i, j, digits.clone()));
                        extensions.push(ext);
                    }
                }
            }
        }
        out.push(User {
            id: id.clone(),
            name: r.name.clone().unwrap_or(id),
            skills,
            pin: r.pin.clone(),
            time_zone: super::validate::time_zone(
                v,
                &format!("{p}.time_zone"),
                r.time_zone.as_deref(),
            ),
            connection: v.choice(
                &format!("{p}.connection"),
                &r.connection,
                Connection::PerCall,
                &[
                    ("per-call", Connection::PerCall),
                    ("nailed-up", Connection::NailedUp),
                ],
            ),
            extensions,
        });
    }
    shared_lines(v, &lines);
    out
}

fn extension(v: &mut V, p: &str, e: &RawExtension) -> Option<Extension> {
    match e.kind.as_deref() {
        Some("pstn") => {}
        None => v.missing(&format!("{p}.type"), "\"pstn\""),
        Some(other) => v.push(
            format!("{p}.type"),
            format!("{other:?} is not an extension type"),
            "use type = \"pstn\"",
        ),
    }
    let ext = e.ext.clone().unwrap_or_default();
    if !digits_only(&ext) {
        v.push(
            format!("{p}.ext"),
            format!("{ext:?} is not digits only"),
            "write only the digits 0-9 dialled after the line answers, or \"\" for none",
        );
    }
    let value = match &e.value {
        None => {
            v.missing(&format!("{p}.value"), "\"+12345678910\"");
            None
        }
        Some(s) => v.e164(&format!("{p}.value"), s),
    }?;
    Some(Extension::Pstn {
        value,
        ext,
        description: e.description.clone().unwrap_or_default(),
    })
}

/// Several users may share one PSTN number (desk lines behind a PBX), told
/// apart by the extension they enter; so on a shared number every entry
/// needs its own non-empty ext.
fn shared_lines(v: &mut V, lines: &BTreeMap<E164, Vec<(usize, usize, String)>>) {
    for (number, entries) in lines {
        if entries.len() < 2 {
            continue;
        }
        for (k, (i, j, ext)) in entries.iter().enumerate() {
            let others: Vec<String> = entries
                .iter()
                .filter(|(oi, oj, _)| (oi, oj) != (i, j))
                .map(|(oi, oj, _)| format!("users[{oi}].extensions[{oj}]"))
                .collect();
            if let Some((fi, fj, _)) = entries
                .get(..k)
                .unwrap_or(&[])
                .iter()
                .find(|(_, _, e)| e == ext)
            {
                v.push(
                    format!("users[{i}].extensions[{j}]"),
                    format!("{number} with ext {ext:?} is the same line as users[{fi}].extensions[{fj}]"),
                    "give each user on a shared number a distinct ext, or remove the duplicate",
                );
            } else if ext.is_empty() {
                v.push(
                    format!("users[{i}].extensions[{j}].ext"),
                    format!("is empty but {number} is shared with {}", others.join(", ")),
                    "give each user on a shared number their own ext, such as ext = \"101\"",
                );
            }
        }
    }
}

pub(super) fn flows(
    v: &mut V,
    raw: &[(usize, RawFlow)],
    lib: &BTreeMap<String, PathBuf>,
) -> Vec<Flow> {
    let mut out = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, r) in raw {
        let p = format!("flows[{i}]");
        let (name, kind) = match r {
            RawFlow::TimedPresence(f) => (&f.name, &f.kind),
            RawFlow::Queue(f) => (&f.name, &f.kind),
        };
        match name.as_deref() {
            None => v.missing(&format!("{p}.name"), "\"Billing\""),
            Some(n) if n.trim().is_empty() => v.push(
                format!("{p}.name"),
                "is empty",
                "give the flow a name; dispatch mappings refer to it",
            ),
            Some(n) => {
                if let Some(first) = names.get(n) {
                    v.push(
                        format!("{p}.name"),
                        format!("{n:?} is already the name of flows[{first}]"),
                        "give each flow a different name",
                    );
                } else {
                    names.insert(n.to_string(), *i);
                }
            }
        }
        match kind.as_deref() {
            None | Some("customer") => {}
            Some(other) => v.push(
                format!("{p}.type"),
                format!("{other:?} is not a flow type"),
                "use type = \"customer\"",
            ),
        }
        let name = name.clone().unwrap_or_default();
        out.push(match r {
            RawFlow::TimedPresence(f) => Flow::TimedPresence(timed_presence(v, &p, name, f, lib)),
            RawFlow::Queue(f) => Flow::Queue(queue(v, &p, name, f, lib)),
        });
    }
    out
}

fn timed_presence(
    v: &mut V,
    p: &str,
    name: String,
    f: &RawTimedPresence,
    lib: &BTreeMap<String, PathBuf>,
) -> TimedPresenceFlow {
    let mut presets = Vec::new();
    let raw_presets = f.presets.clone().unwrap_or_else(|| vec![8, 24, 48, 72]);
    if raw_presets.is_empty() || raw_presets.len() > 4 {
        v.push(
            format!("{p}.presets"),
            format!("has {} entries", raw_presets.len()),
            "list 1 to 4 hour counts (keys 1..4), such as [8, 24, 48, 72]",
        );
    }
    for (k, h) in raw_presets.iter().enumerate() {
        presets.push(v.uint(&format!("{p}.presets[{k}]"), Some(*h), 8, 1, 168));
    }
    let digit_timeout = v.duration(
        &format!("{p}.digit_timeout"),
        &f.digit_timeout,
        Duration::from_secs(5),
        Duration::from_secs(1),
    );
    let pr = f.prompts.as_ref();
    let get = |sel: fn(&RawTpPrompts) -> &Option<String>| pr.and_then(|x| sel(x).clone());
    let pp = |k: &str| format!("{p}.prompts.{k}");
    TimedPresenceFlow {
        name,
        presets,
        custom_max_digits: u8::try_from(v.int(
            &format!("{p}.custom_max_digits"),
            f.custom_max_digits,
            2,
            1,
            2,
        ))
        .unwrap_or(2),
        max_attempts: v.uint(&format!("{p}.max_attempts"), f.max_attempts, 3, 1, 20),
        digit_timeout,
        notify_on_expiry: f.notify_on_expiry.unwrap_or(true),
        remind_before: f.remind_before.as_ref().map(|_| {
            v.duration_in(
                &format!("{p}.remind_before"),
                &f.remind_before,
                Duration::from_secs(15 * 60),
                Duration::from_secs(60),
                Duration::from_secs(24 * 3600),
            )
        }),
        ext_timeout: v.duration(
            &format!("{p}.ext_timeout"),
            &f.ext_timeout,
            digit_timeout,
            Duration::from_secs(1),
        ),
        pin_attempts: v.uint(&format!("{p}.pin_attempts"), f.pin_attempts, 3, 1, 20),
        prompts: TimedPresencePrompts {
            welcome: prompt_ref(v, lib, &pp("welcome"), &get(|x| &x.welcome), "welcome"),
            resource_lookup_error: prompt_ref(
                v,
                lib,
                &pp("resource_lookup_error"),
                &get(|x| &x.resource_lookup_error),
                "resource_lookup_error",
            ),
            preset_hours: prompt_ref(
                v,
                lib,
                &pp("preset_hours"),
                &get(|x| &x.preset_hours),
                "preset_hours",
            ),
            custom_hours: prompt_ref(
                v,
                lib,
                &pp("custom_hours"),
                &get(|x| &x.custom_hours),
                "custom_hours",
            ),
            invalid_input: prompt_ref(
                v,
                lib,
                &pp("invalid_input"),
                &get(|x| &x.invalid_input),
                "invalid_input",
            ),
            online: prompt_ref(v, lib, &pp("online"), &get(|x| &x.online), "online"),
            offline: prompt_ref(v, lib, &pp("offline"), &get(|x| &x.offline), "offline"),
            enter_extension: prompt_ref(
                v,
                lib,
                &pp("enter_extension"),
                &get(|x| &x.enter_extension),
                "enter_extension",
            ),
            enter_pin: prompt_ref(
                v,
                lib,
                &pp("enter_pin"),
                &get(|x| &x.enter_pin),
                "enter_pin",
            ),
            wrong_pin: prompt_ref(
                v,
                lib,
                &pp("wrong_pin"),
                &get(|x| &x.wrong_pin),
                "wrong_pin",
            ),
            not_responding: prompt_ref(
                v,
                lib,
                &pp("not_responding"),
                &get(|x| &x.not_responding),
                "not_responding",
            ),
            stay_on_line: prompt_ref(
                v,
                lib,
                &pp("stay_on_line"),
                &get(|x| &x.stay_on_line),
                "stay_on_line",
            ),
            caller_id_refused: prompt_ref(
                v,
                lib,
                &pp("caller_id_refused"),
                &get(|x| &x.caller_id_refused),
                "caller_id_refused",
            ),
            line_tone: prompt_ref(
                v,
                lib,
                &pp("line_tone"),
                &get(|x| &x.line_tone),
                "line_tone",
            ),
            // Silence unless named: "" and absent both mean none.
            line_hold: match get(|x| &x.line_hold) {
                None => None,
                Some(n) if n.is_empty() => None,
                named => Some(prompt_ref(v, lib, &pp("line_hold"), &named, "")),
            },
        },
    }
}

fn queue(
    v: &mut V,
    p: &str,
    name: String,
    f: &RawQueue,
    lib: &BTreeMap<String, PathBuf>,
) -> QueueFlow {
    let skills = match &f.skills {
        None => {
            v.missing(
                &format!("{p}.skills"),
                "[\"billing\"] (or [] for any agent)",
            );
            Vec::new()
        }
        Some(s) => s.clone(),
    };
    let accept = match f.accept_digit.as_deref().unwrap_or("") {
        "" => Accept::OnAnswer,
        d => match d.chars().next().map(|c| c.to_ascii_uppercase()) {
            // RFC 4733 §3.2 events 0-15: 0-9, *, #, A-D.
            Some(c)
                if d.chars().count() == 1
                    && (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) =>
            {
                Accept::Digit(c)
            }
            _ => {
                v.push(
                    format!("{p}.accept_digit"),
                    format!("{d:?} is not one DTMF key"),
                    "use one of 0-9, *, #, A-D, or \"\" to bridge on answer",
                );
                Accept::OnAnswer
            }
        },
    };
    let overflow_number = match f.overflow_number.as_deref() {
        None | Some("") => None,
        Some(s) => v.e164(&format!("{p}.overflow_number"), s),
    };
    let pr = f.prompts.as_ref();
    let get = |sel: fn(&RawQueuePrompts) -> &Option<String>| pr.and_then(|x| sel(x).clone());
    let pp = |k: &str| format!("{p}.prompts.{k}");
    let d = |v: &mut V, key: &str, val: &Option<String>, default: u64, min: Duration| {
        v.duration(
            &format!("{p}.{key}"),
            val,
            Duration::from_secs(default),
            min,
        )
    };
    let one = Duration::from_secs(1);
    QueueFlow {
        name,
        skills,
        strategy: v.choice(
            &format!("{p}.strategy"),
            &f.strategy,
            Strategy::LongestIdle,
            &[
                ("longest-idle", Strategy::LongestIdle),
                ("round-robin", Strategy::RoundRobin),
                ("fewest-calls", Strategy::FewestCalls),
            ],
        ),
        ring_timeout: d(v, "ring_timeout", &f.ring_timeout, 20, one),
        accept,
        accept_timeout: d(v, "accept_timeout", &f.accept_timeout, 10, one),
        max_wait: d(v, "max_wait", &f.max_wait, 300, one),
        wrap_up: d(v, "wrap_up", &f.wrap_up, 10, Duration::ZERO),
        max_no_answer: v.uint(&format!("{p}.max_no_answer"), f.max_no_answer, 3, 1, 1000),
        priority: i32::try_from(v.int(
            &format!("{p}.priority"),
            f.priority,
            0,
            i32::MIN.into(),
            i32::MAX.into(),
        ))
        .unwrap_or(0),
        overflow_number,
        no_agents: v.choice(
            &format!("{p}.no_agents"),
            &f.no_agents,
            NoAgents::Immediate,
            &[("wait", NoAgents::Wait), ("immediate", NoAgents::Immediate)],
        ),
        ext_pause: d(v, "ext_pause", &f.ext_pause, 2, Duration::ZERO),
        service_level_threshold: d(
            v,
            "service_level_threshold",
            &f.service_level_threshold,
            20,
            one,
        ),
        prompts: QueuePrompts {
            greeting: optional_prompt(
                v,
                lib,
                &pp("greeting"),
                &get(|x| &x.greeting),
                "queue_greeting",
            ),
            hold: prompt_ref(v, lib, &pp("hold"), &get(|x| &x.hold), "hold_music"),
            whisper: optional_prompt(
                v,
                lib,
                &pp("whisper"),
                &get(|x| &x.whisper),
                "agent_whisper",
            ),
            unavailable: prompt_ref(
                v,
                lib,
                &pp("unavailable"),
                &get(|x| &x.unavailable),
                "queue_unavailable",
            ),
        },
    }
}

/// An overflow number the dial rule would refuse is never dialled: the
/// customer would hear "unavailable" with no hint why. Say so at load time.
pub(super) fn overflow_diallable(
    v: &mut V,
    raw: &[(usize, RawFlow)],
    flows: &[Flow],
    trunks: &[TrunkConfig],
    users: &[User],
) {
    for ((i, _), flow) in raw.iter().zip(flows) {
        let Flow::Queue(q) = flow else { continue };
        let Some(n) = &q.overflow_number else {
            continue;
        };
        if !diallable(users, trunks, n) {
            v.push(
                format!("flows[{i}].overflow_number"),
                format!("{n} is neither a user's PSTN number nor in trunk.allow_dial, so it would never be dialled"),
                format!("add \"{n}\" to trunk.allow_dial, or set overflow_number = \"\" to play queue_unavailable and hang up"),
            );
        }
    }
}

pub(super) fn mappings(
    v: &mut V,
    raw: &[(usize, RawMapping)],
    flows: &[Flow],
) -> Vec<DispatchMapping> {
    let mut out = Vec::new();
    let mut numbers: HashMap<E164, usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, r) in raw {
        let p = format!("dispatch_mappings[{i}]");
        let name = r.name.clone().unwrap_or_default();
        if r.name.is_none() {
            v.missing(&format!("{p}.name"), "\"Billing line\"");
        } else if let Some(first) = names.get(&name) {
            v.push(
                format!("{p}.name"),
                format!("{name:?} is already the name of dispatch_mappings[{first}]"),
                "give each mapping a different name",
            );
        } else {
            names.insert(name.clone(), *i);
        }
        if let Some(t) = r.interaction_type.as_deref().filter(|t| *t != "voice") {
            v.push(
                format!("{p}.interaction_type"),
                format!("{t:?} is not supported"),
                "use interaction_type = \"voice\"",
            );
        }
        if let Some(m) = r.mapping.as_deref().filter(|m| *m != "contact-point") {
            v.push(
                format!("{p}.mapping"),
                format!("{m:?} is not supported"),
                "use mapping = \"contact-point\"",
            );
        }
        let phone = match &r.phone_number {
            None => {
                v.missing(&format!("{p}.phone_number"), "\"+15550100001\"");
                None
            }
            Some(s) => v.e164(&format!("{p}.phone_number"), s),
        };
        if let Some(n) = &phone {
            if let Some(first) = numbers.get(n) {
                v.push(
                    format!("{p}.phone_number"),
                    format!("{n} is already the number of dispatch_mappings[{first}]"),
                    "map each phone number to one flow only; remove or change one of them",
                );
            } else {
                numbers.insert(n.clone(), *i);
            }
        }
        let flow = r.flow.clone().unwrap_or_default();
        if r.flow.is_none() {
            v.missing(&format!("{p}.flow"), "the name of one of the [[flows]]");
        } else if !flows.iter().any(|f| f.name() == flow) {
            let mut known: Vec<String> = Vec::new();
            for f in flows {
                let quoted = format!("{:?}", f.name());
                if !known.contains(&quoted) {
                    known.push(quoted);
                }
            }
            v.push(
                format!("{p}.flow"),
                format!("{flow:?} is not the name of any flow"),
                format!("use the name of one of the [[flows]]: {}", known.join(", ")),
            );
        }
        if let Some(phone_number) = phone {
            out.push(DispatchMapping {
                name,
                description: r.description.clone(),
                phone_number,
                flow,
            });
        }
    }
    out
}
