//! The registration keys of a trunk (`register`, `register_*`): outbound
//! REGISTER (RFC 3261 §10) for carriers that deliver calls to a registered
//! contact.

use super::model::{Host, SipTarget, TrunkRegistration};
use super::raw::RawTrunk;
use super::validate::V;
use ipnet::IpNet;
use std::time::Duration;

/// `None` unless `register = true`. `prefix` is the trunk's path in the
/// file ("trunk"), so messages name the key as written.
pub(super) fn registration(
    v: &mut V,
    prefix: &str,
    r: &RawTrunk,
    username: &str,
    proxy: &SipTarget,
    allow: &[IpNet],
) -> Option<TrunkRegistration> {
    let key = |k: &str| format!("{prefix}.{k}");
    if !r.register.unwrap_or(false) {
        for (name, set) in [
            ("register_domain", r.register_domain.is_some()),
            ("register_user", r.register_user.is_some()),
            ("register_contact_user", r.register_contact_user.is_some()),
            ("register_expires", r.register_expires.is_some()),
        ] {
            if set {
                v.push(
                    key(name),
                    format!("is set but {prefix}.register is not"),
                    format!("add {prefix}.register = true, or remove {name}"),
                );
            }
        }
        return None;
    }
    // Responses from outside the allow-list are dropped unread, so a
    // registrar outside it would never be heard.
    if let Host::Ip(ip) = proxy.host {
        if !allow.is_empty() && !allow.iter().any(|n| n.contains(&ip)) {
            v.push(
                key("register"),
                format!("the registrar {ip} (outbound_proxy) is not in {prefix}.allow, so its answers would be dropped"),
                format!("add \"{ip}\" to {prefix}.allow"),
            );
        }
    }
    let user = r
        .register_user
        .clone()
        .unwrap_or_else(|| username.to_owned());
    if user.is_empty() {
        v.push(
            key("register_user"),
            "is missing and trunk.username is empty",
            "set username (the account the carrier gave you) or register_user",
        );
    } else if !is_user(&user) {
        v.push(
            key("register_user"),
            format!("{user:?} is not a SIP user part"),
            "use letters, digits and - _ . + ! ~ * ' ( ) & = $ only",
        );
    }
    let contact_user = r.register_contact_user.clone().unwrap_or(user.clone());
    if !is_user(&contact_user) {
        v.push(
            key("register_contact_user"),
            format!("{contact_user:?} is not a SIP user part"),
            "use letters, digits and - _ . + ! ~ * ' ( ) & = $ only",
        );
    }
    // §10.2: the Request-URI names the registrar's domain; by default the
    // address we send to.
    let domain = match &r.register_domain {
        Some(d) if is_hostport(d) => d.to_ascii_lowercase(),
        Some(d) => {
            v.push(
                key("register_domain"),
                format!("{d:?} is not a host[:port]"),
                "write the carrier's SIP domain, such as \"sip.carrier.example\"",
            );
            String::new()
        }
        None if proxy.port == 5060 => proxy.host.to_string(),
        None => format!("{}:{}", proxy.host, proxy.port),
    };
    let expires = v.duration_in(
        &key("register_expires"),
        &r.register_expires,
        Duration::from_secs(600),
        Duration::from_secs(1),
        // Expires is 32-bit delta-seconds; a day is more than any carrier
        // grants.
        Duration::from_secs(86_400),
    );
    let retry = v.duration_in(
        &key("register_retry"),
        &r.register_retry,
        Duration::from_secs(30),
        Duration::from_secs(1),
        Duration::from_secs(3600),
    );
    let retry_max = v.duration_in(
        &key("register_retry_max"),
        &r.register_retry_max,
        Duration::from_secs(1800),
        Duration::from_secs(1),
        Duration::from_secs(86_400),
    );
    if retry_max < retry {
        v.push(
            key("register_retry_max"),
            "is shorter than register_retry",
            "make register_retry_max at least register_retry",
        );
    }
    Some(TrunkRegistration {
        domain,
        user,
        contact_user,
        expires,
        retry,
        retry_max,
    })
}

/// RFC 3261 §25.1 `user`: unreserved / escaped / user-unreserved, without
/// `;`, `?`, `/` and `,` (which carriers choke on), never CR/LF or spaces.
fn is_user(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+!~*'()&=$".contains(&b))
}

fn is_hostport(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}
