//! The trunk's registration keys: defaults, what they need, and messages
//! that name the key and the fix.

use super::*;

const TRUNK: &str = "username = \"\"";

fn with(keys: &str) -> String {
    edit(EXAMPLE, TRUNK, &format!("username = \"acct1\"\n{keys}"))
}

#[test]
fn register_defaults_from_the_trunk() {
    let c = load(&with("register = true")).unwrap_or_else(|e| panic!("{e}"));
    let r = c.trunk.register.expect("registration");
    assert_eq!(r.user, "acct1");
    assert_eq!(r.contact_user, "acct1");
    assert_eq!(r.domain, "127.0.0.1:5080", "the outbound proxy's host:port");
    assert_eq!(r.expires, Duration::from_secs(600));
    assert_eq!(r.retry, Duration::from_secs(30));
    assert_eq!(r.retry_max, Duration::from_secs(1800));
    let off = load(&with("")).unwrap_or_else(|e| panic!("{e}"));
    assert!(off.trunk.register.is_none());
}

#[test]
fn register_keys_are_read() {
    let c = load(&with(
        "register = true\nregister_domain = \"Sip.Carrier.Example\"\nregister_user = \"u1\"\nregister_contact_user = \"c1\"\nregister_expires = \"1h\"\nregister_retry = \"5s\"\nregister_retry_max = \"1m\"",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let r = c.trunk.register.expect("registration");
    assert_eq!(
        (r.domain.as_str(), r.user.as_str(), r.contact_user.as_str()),
        ("sip.carrier.example", "u1", "c1")
    );
    assert_eq!(r.expires, Duration::from_secs(3600));
    assert_eq!(
        (r.retry, r.retry_max),
        (Duration::from_secs(5), Duration::from_secs(60))
    );
}

#[test]
fn register_problems_name_the_key_and_the_fix() {
    let p = at(
        &edit(EXAMPLE, TRUNK, "username = \"\"\nregister = true"),
        "trunk.register_user",
    );
    assert!(p.problem.contains("username is empty"), "{}", p.problem);
    let p = at(
        &with("register = true\nregister_contact_user = \"a b\""),
        "trunk.register_contact_user",
    );
    assert!(p.problem.contains("not a SIP user part"), "{}", p.problem);
    let p = at(
        &with("register = true\nregister_domain = \"x\\r\\ny\""),
        "trunk.register_domain",
    );
    assert!(p.fix.contains("SIP domain"), "{}", p.fix);
    let p = at(
        &with("register = true\nregister_expires = \"48h\""),
        "trunk.register_expires",
    );
    assert!(p.problem.contains("too long"), "{}", p.problem);
    let p = at(
        &with("register = true\nregister_retry = \"1m\"\nregister_retry_max = \"10s\""),
        "trunk.register_retry_max",
    );
    assert!(p.fix.contains("at least register_retry"), "{}", p.fix);
    let p = at(&with("register_user = \"u1\""), "trunk.register_user");
    assert_eq!(p.problem, "is set but trunk.register is not");
}

#[test]
fn a_registrar_outside_the_allow_list_is_refused() {
    let text = edit(
        &with("register = true"),
        "allow = [\"127.0.0.1/32\", \"::1/128\"]",
        "allow = [\"192.0.2.0/24\"]",
    );
    let p = at(&text, "trunk.register");
    assert!(p.problem.contains("127.0.0.1"), "{}", p.problem);
    assert_eq!(p.fix, "add \"127.0.0.1\" to trunk.allow");
}
