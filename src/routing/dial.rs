//! Which numbers the switch may ever dial: a guard against toll fraud
//! through a mis-routed queue or a mistyped configuration.

use crate::config::{Config, E164};

/// True when tpswitch may place a call to `n`: a configured user's PSTN
/// number, or an `allow_dial` entry of a trunk. Nothing else is ever
/// dialled (toll fraud through a mis-routed queue must be impossible).
pub fn dial_allowed(cfg: &Config, n: &E164) -> bool {
    cfg.may_dial(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_users_numbers_and_allow_dial_are_diallable() {
        let mut cfg = Config::embedded_default().unwrap();
        let cc = cfg.numbering.default_country_code.clone();
        let n = |s: &str| E164::parse(s, &cc).unwrap();
        // jsmith, and the desk line mgarcia and akim share.
        assert!(dial_allowed(&cfg, &n("+12345678910")));
        assert!(dial_allowed(&cfg, &n("+12345678000")));
        // The contact points and anything else are never dialled.
        assert!(!dial_allowed(&cfg, &n("+15550100001")));
        assert!(!dial_allowed(&cfg, &n("+442071234567")));
        cfg.trunks[0].allow_dial = vec![
            crate::config::DialPattern::Exact(n("+15550109999")),
            crate::config::DialPattern::Prefix("4420".into()),
        ];
        assert!(dial_allowed(&cfg, &n("+15550109999")));
        assert!(dial_allowed(&cfg, &n("+442071234567")));
        assert!(!dial_allowed(&cfg, &n("+15550109998")));
        assert!(!dial_allowed(&cfg, &n("+443001234567")));
    }
}
