//! Checks that depend on the process environment, not only on the file:
//! the secrets a configuration names by variable. `check-config` and `run`
//! both call them, so a problem `run` would hit is never a surprise.
//!
//! The variables are passed in as a lookup so the rules are tested without
//! touching the real environment. No check ever puts a secret's value in a
//! message: only the variable's name.

use super::error::{ConfigError, Problem};
use super::model::Config;

impl Config {
    /// Every problem with the variables this configuration names.
    pub fn check_environment(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for trunk in &self.trunks {
            if trunk.username.is_empty() || var(&trunk.password_env).is_some_and(|p| !p.is_empty())
            {
                continue;
            }
            // Without the password every digest challenge (RFC 3261 §22.2)
            // fails, so each call to an agent would end 401/407: refuse to
            // start rather than find out on the first customer call. A trunk
            // that needs no authentication says so with username = "".
            let at = &trunk.key;
            problems.push(Problem::new(
                format!("{at}.password_env"),
                format!(
                    "names {}, which is not set (or empty), but {at}.username is {:?}: \
                     the trunk's 401/407 challenges could not be answered",
                    trunk.password_env, trunk.username
                ),
                format!(
                    "set {} in the switch's environment, or set {at}.username = \"\" if the \
                     trunk needs no authentication",
                    trunk.password_env
                ),
            ));
        }
        let token_env = &self.http.token_env;
        if var(token_env).is_some_and(|t| t.trim().is_empty()) {
            // An unset variable means "no token" (documented, local use); an
            // empty one is most likely a deployment mistake, and accepting it
            // would open the admin API to everyone without a word.
            problems.push(Problem::new(
                "http.token_env",
                format!("names {token_env}, which is set but empty, so the HTTP API would have no authentication"),
                format!("put a token in {token_env}, or unset it to run without one (then keep http.bind on a loopback address)"),
            ));
        }
        for (i, t) in self.http.tokens.iter().enumerate() {
            if var(&t.token_env).is_some_and(|v| v.trim().is_empty()) {
                problems.push(Problem::new(
                    format!("http.tokens[{i}].token_env"),
                    format!(
                        "names {}, which is set but empty: the {} token {:?} would be refused anyway",
                        t.token_env, t.role, t.name
                    ),
                    format!("put the token in {}, or unset it to disable this token", t.token_env),
                ));
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            if var(&w.secret_env).is_some_and(|v| !v.trim().is_empty()) {
                continue;
            }
            // Unsigned events could be forged by anyone who can reach the
            // receiver: no secret, no webhook.
            problems.push(Problem::new(
                format!("webhooks[{i}].secret_env"),
                format!(
                    "names {}, which is not set (or empty): the webhook {:?} could not sign its events",
                    w.secret_env, w.name
                ),
                format!(
                    "set {} to a long random secret the receiver shares, or remove the webhook",
                    w.secret_env
                ),
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                file: self.source.display().to_string(),
                problems,
            })
        }
    }
}
