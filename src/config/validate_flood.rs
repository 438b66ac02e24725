//! `[sip.flood]`: per-source request limits, the ban, scanner user agents
//! and REGISTER (read by `sip::flood`).

use super::model::FloodConfig;
use super::raw::RawFlood;
use super::validate::V;
use std::time::Duration;

/// The scanners' User-Agent words dropped by default.
const SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "VaxSIPUserAgent",
    "pplsip",
];

pub(super) fn flood(v: &mut V, r: Option<&RawFlood>) -> FloodConfig {
    let default = RawFlood::default();
    let r = r.unwrap_or(&default);
    let window = v.duration_in(
        "sip.flood.window",
        &r.window,
        Duration::from_secs(2),
        Duration::from_millis(100),
        Duration::from_secs(3600),
    );
    let ban = v.duration_in(
        "sip.flood.ban",
        &r.ban,
        Duration::from_secs(300),
        Duration::ZERO,
        Duration::from_secs(7 * 86_400),
    );
    let mut limit =
        |key: &str, n: Option<i64>| v.uint(&format!("sip.flood.{key}"), n, 16, 0, 1_000_000);
    let limits = [
        limit("invite_limit", r.invite_limit),
        limit("options_limit", r.options_limit),
        limit("register_limit", r.register_limit),
        limit("other_limit", r.other_limit),
    ];
    let mut scanner_user_agents = Vec::new();
    let given = r.scanner_user_agents.as_deref();
    let words: Vec<&str> = match given {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => SCANNERS.to_vec(),
    };
    for (i, w) in words.iter().enumerate() {
        let w = w.trim();
        if w.is_empty() || !w.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            v.push(
                format!("sip.flood.scanner_user_agents[{i}]"),
                "is empty or not printable ASCII",
                "write a word of the scanner's User-Agent, such as \"friendly-scanner\", or remove it",
            );
            continue;
        }
        scanner_user_agents.push(w.to_ascii_lowercase());
    }
    FloodConfig {
        enabled: r.enabled.unwrap_or(true),
        window,
        ban,
        limits,
        apply_to_trunks: r.apply_to_trunks.unwrap_or(false),
        max_sources: v.uint("sip.flood.max_sources", r.max_sources, 4096, 16, 1_000_000),
        refuse_403: v.choice(
            "sip.flood.refuse",
            &r.refuse,
            false,
            &[("drop", false), ("403", true)],
        ),
        drop_register: v.choice(
            "sip.flood.register",
            &r.register,
            false,
            &[("405", false), ("drop", true)],
        ),
        scanner_user_agents,
    }
}
