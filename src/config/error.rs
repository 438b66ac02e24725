//! Configuration errors: every problem names the file, the key path (TOML
//! names with [index]) and what to do about it.

use std::fmt;
use thiserror::Error;

use super::locate::{CONFIG_ENV, SYSTEM_CONFIG};

/// One thing wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `users[2].extensions[0].value`, or `line 3, column 7`
    /// for a TOML syntax error.
    pub path: String,
    /// 1-based line, when known (syntax errors, unknown keys, wrong types).
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    pub fn new(
        path: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Problem {
            path: path.into(),
            line: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)?;
        // The line is part of the problem text only when the path is a key
        // path; syntax errors already carry it in their path.
        if let (Some(line), false) = (self.line, self.path.starts_with("line ")) {
            write!(f, " (line {line})")?;
        }
        write!(f, "; {}", self.fix)
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the configuration file: {source}; check the path (for example the --config argument) and its permissions")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no configuration file: no --config, {CONFIG_ENV} is not set, and neither ./config/tpswitch.toml nor {SYSTEM_CONFIG} exists; pass --config PATH or set {CONFIG_ENV} (the source tree's config/tpswitch.toml documents every key)")]
    NotFound,
    /// Every problem found, in file order where possible.
    #[error("{}", render(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems found (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } | ConfigError::NotFound => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

fn render(file: &str, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
    lines.join("\n")
}
