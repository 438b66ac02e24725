//! First step of loading: TOML text -> loosely typed `Raw*` structs.
//!
//! Every field is optional and scalar values stay strings/integers here, so
//! that range and format checks happen in `validate.rs`, which reports all
//! of them at once. serde stops at the first error of a value, so each
//! section and each `[[array]]` element is deserialised on its own: one
//! unknown key in `users[0]` does not hide a problem in `users[3]`.

use super::error::Problem;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use toml::de::{DeTable, DeValue, ValueDeserializer};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSip {
    pub bind: Option<String>,
    pub advertise: Option<String>,
    pub external_signaling_address: Option<String>,
    pub external_signaling_port: Option<i64>,
    pub external_media_address: Option<String>,
    pub local_networks: Option<Vec<String>>,
    pub max_calls: Option<i64>,
    pub t1: Option<String>,
    pub t2: Option<String>,
    pub t4: Option<String>,
    pub untrusted: Option<String>,
    pub max_message_bytes: Option<i64>,
    pub max_header_bytes: Option<i64>,
    pub max_tcp_connections: Option<i64>,
    pub max_untrusted_tcp_connections: Option<i64>,
    pub tcp_idle_timeout: Option<String>,
    pub max_transactions: Option<i64>,
    pub tcp: Option<bool>,
    pub user_agent: Option<String>,
    pub session_expires: Option<String>,
    pub min_se: Option<String>,
    pub retry_after: Option<String>,
    pub answer_delay: Option<String>,
    pub tls_bind: Option<String>,
    pub tls_certificate: Option<String>,
    pub tls_private_key: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub trace: Option<String>,
    pub trace_numbers: Option<Vec<String>>,
    pub drain_timeout: Option<String>,
    /// `[sip.flood]`.
    pub flood: Option<RawFlood>,
}

/// `[sip.flood]`: per-source limits, bans, scanners, REGISTER.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlood {
    pub enabled: Option<bool>,
    pub window: Option<String>,
    pub ban: Option<String>,
    pub invite_limit: Option<i64>,
    pub options_limit: Option<i64>,
    pub register_limit: Option<i64>,
    pub other_limit: Option<i64>,
    pub apply_to_trunks: Option<bool>,
    pub max_sources: Option<i64>,
    pub refuse: Option<String>,
    pub register: Option<String>,
    pub scanner_user_agents: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrunk {
    pub name: Option<String>,
    pub outbound_proxy: Option<String>,
    pub allow: Option<Vec<String>>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub max_outbound_calls: Option<i64>,
    pub trust_pai: Option<bool>,
    pub number_format: Option<String>,
    pub allow_dial: Option<Vec<String>>,
    pub follow_redirects: Option<bool>,
    pub max_redirects: Option<i64>,
    pub caller_id: Option<String>,
    pub caller_id_trust: Option<String>,
    pub inband_dtmf: Option<bool>,
    pub in_dialog_via_proxy: Option<bool>,
    pub register: Option<bool>,
    pub register_domain: Option<String>,
    pub register_user: Option<String>,
    pub register_contact_user: Option<String>,
    pub register_expires: Option<String>,
    pub register_retry: Option<String>,
    pub register_retry_max: Option<String>,
    pub tls_ca_file: Option<String>,
    pub tls_server_name: Option<String>,
    pub keepalive_interval: Option<String>,
    pub srtp: Option<String>,
    pub external_signaling_address: Option<String>,
    pub external_signaling_port: Option<i64>,
    pub external_media_address: Option<String>,
    pub local_networks: Option<Vec<String>>,
    /// Lower is tried first (like an SRV priority, RFC 2782).
    pub priority: Option<i64>,
    /// The per-trunk name for `max_outbound_calls`.
    pub max_calls: Option<i64>,
    pub max_cps: Option<f64>,
    pub request_uri_host: Option<String>,
    pub from_host: Option<String>,
    pub to_host: Option<String>,
    pub pai: Option<bool>,
    pub privacy: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub prefix: Option<String>,
    pub source_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub nameserver: Option<String>,
    pub timeout: Option<String>,
    pub start_unresolved: Option<bool>,
    pub min_refresh: Option<String>,
    pub max_refresh: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMedia {
    pub bind_address: Option<String>,
    pub rtp_ports: Option<String>,
    pub codecs: Option<Vec<String>>,
    pub dtmf_payload_type: Option<i64>,
    pub rtp_timeout: Option<String>,
    pub silence_between_prompts: Option<bool>,
    pub latch_window: Option<String>,
    pub rtcp_interval: Option<String>,
    pub ptime: Option<String>,
    pub pacing_threads: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNumbering {
    pub default_country_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub path: Option<String>,
    pub synchronous: Option<String>,
    pub url: Option<String>,
    pub password_env: Option<String>,
    pub node: Option<String>,
    pub heartbeat: Option<String>,
    pub claim_lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub bind: Option<String>,
    pub token_env: Option<String>,
    pub tokens: Option<Vec<RawApiToken>>,
    pub header_read_timeout: Option<String>,
    pub max_connections: Option<i64>,
}

/// `[[http.tokens]]`: one bearer token of the API, with its role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiToken {
    pub name: Option<String>,
    pub role: Option<String>,
    pub token_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPresence {
    pub expiry_notification_ring: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub id: Option<String>,
    pub name: Option<String>,
    pub skills: Option<Vec<String>>,
    pub pin: Option<super::secret::Pin>,
    pub time_zone: Option<String>,
    pub connection: Option<String>,
    pub extensions: Option<Vec<RawExtension>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtension {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Option<String>,
    pub ext: Option<String>,
    pub description: Option<String>,
}

/// A timed-presence flow. `activity` selects this struct before it is
/// deserialised, so queue keys here are unknown keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimedPresence {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[allow(dead_code)] // already read to pick this struct
    pub activity: Option<String>,
    pub presets: Option<Vec<i64>>,
    pub custom_max_digits: Option<i64>,
    pub max_attempts: Option<i64>,
    pub digit_timeout: Option<String>,
    pub notify_on_expiry: Option<bool>,
    pub remind_before: Option<String>,
    pub ext_timeout: Option<String>,
    pub pin_attempts: Option<i64>,
    pub prompts: Option<RawTpPrompts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTpPrompts {
    pub welcome: Option<String>,
    pub resource_lookup_error: Option<String>,
    pub preset_hours: Option<String>,
    pub custom_hours: Option<String>,
    pub invalid_input: Option<String>,
    pub online: Option<String>,
    pub offline: Option<String>,
    pub enter_extension: Option<String>,
    pub enter_pin: Option<String>,
    pub wrong_pin: Option<String>,
    pub not_responding: Option<String>,
    pub stay_on_line: Option<String>,
    pub caller_id_refused: Option<String>,
    pub line_tone: Option<String>,
    pub line_hold: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[allow(dead_code)] // already read to pick this struct
    pub activity: Option<String>,
    pub skills: Option<Vec<String>>,
    pub strategy: Option<String>,
    pub ring_timeout: Option<String>,
    pub accept_digit: Option<String>,
    pub accept_timeout: Option<String>,
    pub max_wait: Option<String>,
    pub wrap_up: Option<String>,
    pub max_no_answer: Option<i64>,
    pub priority: Option<i64>,
    pub overflow_number: Option<String>,
    pub no_agents: Option<String>,
    pub ext_pause: Option<String>,
    pub service_level_threshold: Option<String>,
    pub prompts: Option<RawQueuePrompts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueuePrompts {
    pub greeting: Option<String>,
    pub hold: Option<String>,
    pub whisper: Option<String>,
    pub unavailable: Option<String>,
}

#[derive(Debug)]
pub enum RawFlow {
    TimedPresence(RawTimedPresence),
    Queue(RawQueue),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    pub name: Option<String>,
    pub description: Option<String>,
    pub interaction_type: Option<String>,
    pub mapping: Option<String>,
    pub phone_number: Option<String>,
    pub flow: Option<String>,
}

/// `[[webhooks]]`: where events are POSTed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Option<String>,
    pub url: Option<String>,
    pub secret_env: Option<String>,
    pub events: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub retry_initial: Option<String>,
    pub retry_max: Option<String>,
    pub max_attempts: Option<i64>,
    pub max_queued: Option<i64>,
    pub ca_file: Option<String>,
}

/// The whole file. Array elements keep their index in the file so that
/// messages point at the right `[[users]]` even when an earlier one failed.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub sip: RawSip,
    pub trunk: Option<RawTrunk>,
    /// `[[trunks]]`: several trunks (`[trunk]` is the one-trunk spelling).
    pub trunks: Vec<(usize, RawTrunk)>,
    pub media: RawMedia,
    pub numbering: Option<RawNumbering>,
    pub store: RawStore,
    pub http: RawHttp,
    pub dns: RawDns,
    pub presence: RawPresence,
    pub prompts: BTreeMap<String, String>,
    pub users: Vec<(usize, RawUser)>,
    pub flows: Vec<(usize, RawFlow)>,
    pub dispatch_mappings: Vec<(usize, RawMapping)>,
    pub webhooks: Vec<(usize, RawWebhook)>,
    /// Key path -> 1-based line, to add lines to validation problems.
    pub lines: HashMap<String, usize>,
}

const SECTIONS: &[&str] = &[
    "sip",
    "trunk",
    "trunks",
    "media",
    "numbering",
    "store",
    "http",
    "dns",
    "presence",
    "prompts",
    "users",
    "flows",
    "dispatch_mappings",
    "webhooks",
];

/// Parse `text`; on failure return every problem serde and the TOML parser
/// found. A partially readable file still yields a `RawConfig` so that
/// validation can add its own problems.
pub fn parse(text: &str) -> (RawConfig, Vec<Problem>) {
    let mut out = RawConfig::default();
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // The tree is unreliable after a syntax error; report only those.
        let problems = syntax.iter().map(|e| syntax_problem(text, e)).collect();
        return (out, problems);
    }
    let root = root.into_inner();
    record_lines(text, &root, "", &mut out.lines);
    let mut cx = Cx {
        text,
        root: &root,
        problems: Vec::new(),
    };
    for (key, value) in root.iter() {
        let name: &str = key.get_ref();
        match name {
            "sip" => out.sip = cx.section(value, name).unwrap_or_default(),
            "trunk" => out.trunk = Some(cx.section(value, name).unwrap_or_default()),
            "trunks" => out.trunks = cx.array(value, name, |cx, v, p| cx.section(v, p)),
            "media" => out.media = cx.section(value, name).unwrap_or_default(),
            "numbering" => out.numbering = Some(cx.section(value, name).unwrap_or_default()),
            "store" => out.store = cx.section(value, name).unwrap_or_default(),
            "http" => out.http = cx.section(value, name).unwrap_or_default(),
            "dns" => out.dns = cx.section(value, name).unwrap_or_default(),
            "presence" => out.presence = cx.section(value, name).unwrap_or_default(),
            "prompts" => out.prompts = cx.section(value, name).unwrap_or_default(),
            "users" => out.users = cx.array(value, name, |cx, v, p| cx.section(v, p)),
            "flows" => out.flows = cx.array(value, name, |cx, v, p| cx.flow(v, p)),
            "dispatch_mappings" => {
                out.dispatch_mappings = cx.array(value, name, |cx, v, p| cx.section(v, p))
            }
            "webhooks" => out.webhooks = cx.array(value, name, |cx, v, p| cx.section(v, p)),
            other => cx.problems.push(Problem {
                path: other.to_string(),
                line: Some(line_of(text, key.span().start)),
                problem: "unknown section".to_string(),
                fix: format!(
                    "remove it or correct the spelling; sections are: {}",
                    SECTIONS.join(", ")
                ),
            }),
        }
    }
    (out, cx.problems)
}

struct Cx<'a, 'i> {
    text: &'a str,
    root: &'a DeTable<'i>,
    problems: Vec<Problem>,
}

type Spanned<T> = toml::Spanned<T>;

impl<'i> Cx<'_, 'i> {
    /// Deserialise one section or array element. After an unknown key or a
    /// wrong type, that key is removed and the rest is tried again, so every
    /// such mistake is reported and the remaining keys still get validated.
    fn section<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
        path: &str,
    ) -> Option<T> {
        let mut value = value.clone();
        let first = self.problems.len();
        // Each retry removes one key, so this ends; the cap guards the
        // unforeseen case of an error we cannot pin to a key.
        for _ in 0..64 {
            match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(v) => {
                    if let Some(found) = self.problems.get_mut(first..) {
                        found.sort_by_key(|p| p.line);
                    }
                    return Some(v);
                }
                Err(e) => {
                    self.problems
                        .push(serde_problem(self.text, self.root, &e, path));
                    let removed = e
                        .span()
                        .is_some_and(|s| remove_at(value.get_mut(), s.start));
                    if !removed {
                        break;
                    }
                }
            }
        }
        // The retries find keys in table order, not file order.
        if let Some(found) = self.problems.get_mut(first..) {
            found.sort_by_key(|p| p.line);
        }
        None
    }

    fn array<T>(
        &mut self,
        value: &Spanned<DeValue<'i>>,
        name: &str,
        mut each: impl FnMut(&mut Self, &Spanned<DeValue<'i>>, &str) -> Option<T>,
    ) -> Vec<(usize, T)> {
        let DeValue::Array(items) = value.get_ref() else {
            self.problems.push(Problem {
                path: name.to_string(),
                line: Some(line_of(self.text, value.span().start)),
                problem: format!("is a {}, not a list of tables", value.get_ref().type_str()),
                fix: format!("write each entry as a [[{name}]] table"),
            });
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(v) = each(self, item, &format!("{name}[{i}]")) {
                out.push((i, v));
            }
        }
        out
    }

    /// Pick the flow struct from `activity` first (a two-step parse), so a
    /// queue flow cannot carry menu keys and vice versa.
    fn flow(&mut self, value: &Spanned<DeValue<'i>>, path: &str) -> Option<RawFlow> {
        let activity = value
            .get_ref()
            .get("activity")
            .map(|a| a.get_ref().as_str());
        match activity {
            Some(Some("timed-presence")) => self.section(value, path).map(RawFlow::TimedPresence),
            Some(Some("queue")) => self.section(value, path).map(RawFlow::Queue),
            Some(other) => {
                self.problems.push(Problem::new(
                    format!("{path}.activity"),
                    format!("{:?} is not an activity", other.unwrap_or("(not a string)")),
                    "use \"timed-presence\" or \"queue\"",
                ));
                None
            }
            None => {
                self.problems.push(Problem::new(
                    format!("{path}.activity"),
                    "is missing",
                    "add activity = \"timed-presence\" or activity = \"queue\"",
                ));
                None
            }
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
        + 1
}

fn column_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    let start = text.as_bytes().get(..end).map_or(0, |b| {
        b.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1)
    });
    text.get(start..end).map_or(1, |s| s.chars().count() + 1)
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let at = e.span().map_or(0, |s| s.start);
    let line = line_of(text, at);
    Problem {
        path: format!("line {line}, column {}", column_of(text, at)),
        line: Some(line),
        problem: format!("TOML syntax error: {}", e.message()),
        fix: "fix the TOML at that spot (strings need double quotes, tables [name], lists [a, b])"
            .to_string(),
    }
}

/// Turn a serde error into a problem with the deepest key path its span
/// points at (falling back to the section being read).
fn serde_problem(text: &str, root: &DeTable<'_>, e: &toml::de::Error, section: &str) -> Problem {
    let span = e.span();
    let mut path = span
        .clone()
        .and_then(|s| path_at(root, s.start, ""))
        .unwrap_or_else(|| section.to_string());
    let line = span.map(|s| line_of(text, s.start));
    let msg = e.message();
    let (problem, fix) = if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        if !path.ends_with(field) {
            path = format!("{path}.{field}");
        }
        let valid = expected
            .trim_start_matches(", expected ")
            .trim_start_matches("one of ")
            .replace('`', "");
        (
            "unknown key".to_string(),
            format!("remove it or correct the spelling; valid keys here: {valid}"),
        )
    } else if msg.contains("expected a string") {
        (
            msg.to_string(),
            "put the value in double quotes, e.g. \"...\"".to_string(),
        )
    } else if msg.contains("expected i64") {
        (
            msg.replace("i64", "a whole number"),
            "write a whole number without quotes".to_string(),
        )
    } else if msg.contains("expected a boolean") {
        (
            msg.to_string(),
            "write true or false without quotes".to_string(),
        )
    } else if msg.contains("expected a sequence") {
        (
            msg.to_string(),
            "write a list such as [\"a\", \"b\"]".to_string(),
        )
    } else {
        (
            msg.to_string(),
            "compare with the documented config/tpswitch.toml".to_string(),
        )
    };
    // serde quotes the offending value (`invalid type: integer `1234``);
    // for a PIN that is the secret itself, and these messages reach logs
    // (a refused reload logs every problem).
    let problem = if path.rsplit('.').next() == Some("pin") {
        without_quoted_values(&problem)
    } else {
        problem
    };
    Problem {
        path,
        line,
        problem,
        fix,
    }
}

/// The key path (`users[0].extensions[1].value`) whose key or value span
/// contains `offset`. Table spans only cover their headers, so tables are
/// always searched.
fn path_at(table: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    let within = |r: Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
    for (key, value) in table.iter() {
        let k: &str = key.get_ref();
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        if let Some(found) = path_in_value(value, offset, &path) {
            return Some(found);
        }
        if within(key.span()) || within(value.span()) {
            return Some(path);
        }
    }
    None
}

fn path_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &str) -> Option<String> {
    let within = |r: Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
    match value.get_ref() {
        DeValue::Table(t) => path_at(t, offset, path),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let p = format!("{path}[{i}]");
            path_in_value(item, offset, &p).or_else(|| within(item.span()).then_some(p))
        }),
        _ => None,
    }
}

/// Remove the deepest table entry whose key or value span contains
/// `offset`. Returns whether something was removed.
fn remove_at(value: &mut DeValue<'_>, offset: usize) -> bool {
    let within = |r: Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
    match value {
        DeValue::Table(t) => {
            if t.iter_mut().any(|(_, v)| remove_at(v.get_mut(), offset)) {
                return true;
            }
            let hit = t
                .iter()
                .find(|(k, v)| within(k.span()) || (within(v.span()) && !v.get_ref().is_table()))
                .map(|(k, _)| k.clone());
            hit.is_some_and(|k| t.remove(&k).is_some())
        }
        DeValue::Array(items) => items.iter_mut().any(|v| remove_at(v.get_mut(), offset)),
        _ => false,
    }
}

fn record_lines(text: &str, table: &DeTable<'_>, prefix: &str, out: &mut HashMap<String, usize>) {
    for (key, value) in table.iter() {
        let k: &str = key.get_ref();
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        out.insert(path.clone(), line_of(text, key.span().start));
        match value.get_ref() {
            DeValue::Table(t) => record_lines(text, t, &path, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    out.insert(p.clone(), line_of(text, item.span().start));
                    if let DeValue::Table(t) = item.get_ref() {
                        record_lines(text, t, &p, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// `invalid type: integer `1234`, expected a string` without the value:
/// `invalid type: integer, expected a string`.
fn without_quoted_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut parts = msg.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // Odd parts were between backticks.
    for (i, part) in parts.enumerate() {
        if i % 2 == 1 {
            out.push_str(part);
        }
    }
    out.replace(" ,", ",").replace("  ", " ")
}
