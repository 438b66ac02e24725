//! The directory: who is calling and which flow a called number starts.
//!
//! Pure functions over the validated [`Config`]: the call shell takes what
//! the trunk sent (already reduced to user parts by `sip/`) and gets back the
//! agent for the log-in menu, or the dispatch mapping for a contact point.
//! Numbers are only ever compared as [`E164`], never as raw strings.

use crate::config::{
    Config, CountryCode, DispatchMapping, Extension, PromptRef, TimedPresenceFlow, User, E164,
};
use crate::flows::timed_presence::{AgentRef, CallerMatch, MenuPrompts, MenuSettings, PromptName};
use crate::sip::api::{CallerInfo, Verstat};

/// User parts that mean "no caller ID". RFC 3323 §4.1.1.3 recommends
/// `anonymous`; carriers also send the others (and "withheld",
/// "unavailable") in From when the caller restricted presentation.
const WITHHELD_USERS: &[&str] = &[
    "anonymous",
    "unknown",
    "restricted",
    "private",
    "withheld",
    "unavailable",
];

/// The caller's number as far as the directory can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerNumber {
    /// No caller ID: privacy requested, or an anonymous placeholder.
    Withheld,
    /// A number, normalised (for the call log and the directory lookup).
    Number(E164),
    /// Something that is not a phone number (e.g. `sip:alice@host`), as sent.
    NotANumber(String),
}

/// Who is calling, in the terms of the log-in menu.
///
/// The number is taken from P-Asserted-Identity (RFC 3325 §9.1) when
/// `trunk.trust_pai` is set and the header was present, else from the From
/// user part; see [`caller_number`].
pub fn identify(cfg: &Config, caller: &CallerInfo) -> CallerMatch {
    let readings = match pick(cfg, caller) {
        Picked::Withheld => return CallerMatch::Withheld,
        Picked::NotANumber(_) => return CallerMatch::Unknown,
        Picked::Number(readings) => readings,
    };
    for number in &readings {
        let users = cfg.users_with_pstn(number);
        match users.as_slice() {
            [] => continue,
            [one] => return CallerMatch::One(agent_ref(one)),
            several => {
                let shared = several
                    .iter()
                    .map(|u| (ext_on(u, number), agent_ref(u)))
                    .collect();
                return CallerMatch::Shared(shared);
            }
        }
    }
    CallerMatch::Unknown
}

/// The caller's number (for the call log and tracing): P-Asserted-Identity
/// when trusted and present, else the From user part.
pub fn caller_number(cfg: &Config, caller: &CallerInfo) -> CallerNumber {
    match pick(cfg, caller) {
        Picked::Withheld => CallerNumber::Withheld,
        Picked::NotANumber(raw) => CallerNumber::NotANumber(raw.to_owned()),
        Picked::Number(readings) => match readings.into_iter().next() {
            Some(n) => CallerNumber::Number(n),
            None => CallerNumber::Withheld,
        },
    }
}

/// Whether the carrier attested the number the caller was identified by
/// (`verstat=TN-Validation-Passed`, ATIS-1000074 §5.3.1), for the trunk's
/// `caller_id_trust`.
///
/// The attestation must be on the header the number came from (the same
/// choice as [`identify`]: a trusted PAI, else From). A PAI without
/// `verstat` borrows From's only when From carries the same number: a
/// carrier may mark just one of them, but a verdict on another number
/// proves nothing about this one. A PAI the trunk does not trust lends
/// nothing, whatever it carries.
pub fn caller_attested(cfg: &Config, caller: &CallerInfo) -> bool {
    let from_passed = caller.from_verstat == Verstat::Passed;
    let (pai_numbers, from_numbers) = match (pick(cfg, caller), pai_in_use(cfg, caller)) {
        (Picked::Number(numbers), true) => {
            if caller.asserted_verstat != Verstat::Absent {
                return caller.asserted_verstat == Verstat::Passed;
            }
            let cc = &cfg.numbering.default_country_code;
            let from = caller.from_user.as_deref().map(|f| classify(f, cc));
            match from {
                Some(Picked::Number(from)) => (numbers, from),
                _ => return false,
            }
        }
        (Picked::Number(_), false) => return from_passed,
        (Picked::Withheld | Picked::NotANumber(_), _) => return false,
    };
    from_passed && pai_numbers.iter().any(|n| from_numbers.contains(n))
}

/// True when [`pick`] took the number from P-Asserted-Identity.
fn pai_in_use(cfg: &Config, caller: &CallerInfo) -> bool {
    let trunk = cfg.trunk_named(&caller.trunk).unwrap_or(&cfg.trunk);
    trunk.trust_pai
        && caller.asserted.as_deref().is_some_and(|pai| {
            !matches!(
                classify(pai, &cfg.numbering.default_country_code),
                Picked::NotANumber(_)
            )
        })
}

/// The dispatch mapping (contact point) for a called number, written as the
/// trunk sent it: "+15550100000", "15550100000", "5550100000" or a `tel:`
/// user part such as "+1-555-010-0000".
///
/// The one number matcher for called numbers: the SIP core's "is this
/// number ours" check ([`dialplan`]) and the call task's flow lookup both
/// read through it, so a number one of them finds the other cannot 404.
pub fn called_mapping<'a>(cfg: &'a Config, called: &str) -> Option<&'a DispatchMapping> {
    readings(&clean(called), &cfg.numbering.default_country_code)
        .iter()
        .find_map(|n| cfg.mapping_for(n))
}

/// The SIP core's check before it answers an INVITE (404 when false),
/// against the configuration in force: a reload replaces what `current`
/// holds, and the next INVITE is checked against the new mappings. The
/// guard lives only for the lookup.
pub fn dialplan(
    current: tokio::sync::watch::Receiver<std::sync::Arc<Config>>,
) -> Box<dyn Fn(&str) -> bool + Send> {
    Box::new(move |called: &str| called_mapping(&current.borrow(), called).is_some())
}

/// What the caller ID turned out to be.
enum Picked<'a> {
    Withheld,
    NotANumber(&'a str),
    /// Every plausible reading of the number, preferred first (never empty).
    Number(Vec<E164>),
}

/// A trusted PAI is authoritative (RFC 3325 §9.1), so an anonymous PAI means
/// withheld even if From shows a number. A PAI that is not a number at all
/// (`sip:alice@pbx`) says nothing about the PSTN identity, so From is used.
fn pick<'a>(cfg: &Config, caller: &'a CallerInfo) -> Picked<'a> {
    if caller.withheld {
        return Picked::Withheld;
    }
    let cc = &cfg.numbering.default_country_code;
    // The rules of the trunk the call came through (RFC 3325 §4: PAI is
    // only as good as the trust in who sent it).
    let trunk = cfg.trunk_named(&caller.trunk).unwrap_or(&cfg.trunk);
    if trunk.trust_pai {
        if let Some(pai) = caller.asserted.as_deref() {
            match classify(pai, cc) {
                Picked::NotANumber(_) => {}
                found => return found,
            }
        }
    }
    match caller.from_user.as_deref() {
        Some(from) => classify(from, cc),
        None => Picked::Withheld,
    }
}

/// One user part, classified.
fn classify<'a>(raw: &'a str, cc: &CountryCode) -> Picked<'a> {
    let cleaned = clean(raw);
    if cleaned.is_empty()
        || WITHHELD_USERS
            .iter()
            .any(|w| cleaned.eq_ignore_ascii_case(w))
    {
        return Picked::Withheld;
    }
    let numbers = readings(&cleaned, cc);
    if numbers.is_empty() {
        Picked::NotANumber(raw)
    } else {
        Picked::Number(numbers)
    }
}

/// The E.164 numbers `cleaned` may stand for, preferred first.
///
/// First the reading `E164::parse` gives with the default country code
/// (national forms, "+", "00", "011"). Trunks also send international
/// numbers without '+' ("442079460000"); read nationally that becomes a
/// different number, or none (in the NANP "44..." has the wrong length). So
/// a number with neither '+' nor a leading '0' (a trunk or international
/// prefix) is also read as international — second, so that a real
/// national number always wins. A 10-digit number in the NANP is the plain
/// national form and gets no second reading.
fn readings(cleaned: &str, cc: &CountryCode) -> Vec<E164> {
    let mut out = Vec::with_capacity(2);
    if let Ok(n) = E164::parse(cleaned, cc) {
        out.push(n);
    }
    let digits: String = cleaned.chars().filter(char::is_ascii_digit).collect();
    let nanp_national = cc.as_str() == "1" && digits.len() == 10;
    if !cleaned.starts_with('+') && !digits.starts_with('0') && !nanp_national {
        if let Ok(n) = E164::parse(&["+", cleaned].concat(), cc) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// The log-in menu settings of a timed-presence flow.
pub fn menu_settings(flow: &TimedPresenceFlow) -> MenuSettings {
    let p = &flow.prompts;
    let name = |r: &PromptRef| PromptName::new(r.name.as_str());
    MenuSettings {
        presets: flow.presets.clone(),
        custom_max_digits: flow.custom_max_digits,
        max_attempts: flow.max_attempts,
        digit_timeout: flow.digit_timeout,
        ext_timeout: flow.ext_timeout,
        pin_attempts: flow.pin_attempts,
        prompts: MenuPrompts {
            welcome: name(&p.welcome),
            resource_lookup_error: name(&p.resource_lookup_error),
            preset_hours: name(&p.preset_hours),
            custom_hours: name(&p.custom_hours),
            invalid_input: name(&p.invalid_input),
            online: name(&p.online),
            offline: name(&p.offline),
            enter_extension: name(&p.enter_extension),
            enter_pin: name(&p.enter_pin),
            wrong_pin: name(&p.wrong_pin),
            stay_on_line: name(&p.stay_on_line),
            caller_id_refused: name(&p.caller_id_refused),
        },
    }
}

/// Reduce what the trunk sent to something [`E164::parse`] reads: drop a
/// scheme or host that slipped through, URI parameters (`;user=phone`,
/// `;phone-context=`, RFC 3966 §5.1.4) and the `%2B` escape of '+'
/// (RFC 3261 §19.1.2). Visual separators are left to `E164::parse`.
fn clean(raw: &str) -> String {
    let s = raw.trim().trim_start_matches('<').trim_end_matches('>');
    let s = ["tel:", "sip:", "sips:"]
        .iter()
        .find_map(|scheme| {
            s.get(..scheme.len())
                .filter(|p| p.eq_ignore_ascii_case(scheme))
                .and_then(|_| s.get(scheme.len()..))
        })
        .unwrap_or(s);
    let s = s.split(['@', ';', '?']).next().unwrap_or("");
    let s = s.replace("%2B", "+").replace("%2b", "+");
    s.trim().to_owned()
}

fn agent_ref(user: &User) -> AgentRef {
    AgentRef {
        user_id: user.id.clone(),
        pin: user.pin.clone().filter(|p| !p.is_empty()),
        nailed_up: user.connection == crate::config::Connection::NailedUp,
    }
}

/// The extension digits `user` is told apart by on the shared `number`.
fn ext_on(user: &User, number: &E164) -> String {
    user.extensions
        .iter()
        .find_map(|e| match e {
            Extension::Pstn { value, ext, .. } if value == number => Some(ext.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
