//! tpswitch configuration: the TOML model, validation with precise messages,
//! E.164 normalisation.
//!
//! Loading is two steps: `raw` reads the TOML into loosely typed structs
//! (reporting syntax errors, unknown keys and wrong types), then `validate`
//! turns them into the typed model in `model`, collecting every problem.

pub mod changes;
pub mod directory;
pub mod duration;
pub mod e164;
mod environment;
mod error;
pub mod locate;
pub mod model;
mod raw;
pub mod secret;
mod validate;
mod validate_flood;
mod validate_flows;
mod validate_register;
mod validate_webhooks;

#[cfg(test)]
mod tests;

pub use changes::{changes, keep_running, Changes};
pub use duration::{format_duration, parse_duration, DurationError};
pub use e164::{CountryCode, E164Error, E164};
pub use error::{ConfigError, Problem};
pub use locate::{locate, ConfigLocation, ConfigOrigin};
pub use model::*;
pub use secret::Pin;

use std::path::{Path, PathBuf};

/// The default configuration shipped with tpswitch, anchored in the source
/// tree. Tests only: the program looks its file up with [`locate`], so a
/// binary never carries the build folder's path.
#[cfg(any(test, feature = "fuzzing"))]
const DEFAULT_TOML: &str = include_str!("../../config/tpswitch.toml");
#[cfg(any(test, feature = "fuzzing"))]
const DEFAULT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tpswitch.toml");

impl Config {
    /// Read and validate the file at `path`. Relative paths inside it
    /// resolve against the file's own folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// The built-in config/tpswitch.toml, as if loaded from the source tree.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::from_toml(DEFAULT_TOML, Path::new(DEFAULT_PATH))
    }

    /// Validate `text` as if it had been read from `path` (which names the
    /// file in messages and anchors relative paths; it is not read).
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let source = absolute(path);
        let base = source.parent().map(Path::to_path_buf).unwrap_or_default();
        let (raw, mut problems) = raw::parse(text);
        let mut v = validate::V {
            base: &base,
            problems: Vec::new(),
            // Replaced by numbering() when the file has a valid one; kept
            // only so the other numbers can still be checked when it has not.
            cc: CountryCode::nanp(),
        };
        let numbering = validate::numbering(&mut v, raw.numbering.as_ref());
        let sip = validate::sip(&mut v, &raw.sip);
        let trunks = validate::trunks(&mut v, raw.trunk.as_ref(), &raw.trunks);
        let media = validate::media(&mut v, &raw.media);
        let store = validate::store(&mut v, &raw.store);
        let http = validate::http(&mut v, &raw.http);
        let dns = validate::dns(&mut v, &raw.dns);
        let presence = validate::presence(&mut v, &raw.presence);
        let prompts = validate_flows::prompts(&mut v, &raw.prompts);
        let users = validate_flows::users(&mut v, &raw.users);
        let flows = validate_flows::flows(&mut v, &raw.flows, &prompts);
        let dispatch_mappings = validate_flows::mappings(&mut v, &raw.dispatch_mappings, &flows);
        validate_flows::overflow_diallable(&mut v, &raw.flows, &flows, &trunks, &users);
        let webhooks = validate_webhooks::webhooks(&mut v, &raw.webhooks);
        // With a syntax error the tree was not read, so the "missing"
        // problems validation finds would only be noise.
        if problems.iter().any(|p| p.path.starts_with("line ")) {
            return Err(ConfigError::Invalid { file, problems });
        }
        // A key already reported as unknown or of the wrong type was dropped
        // before validation; do not report it again as missing.
        v.problems.retain(|vp| {
            !problems
                .iter()
                .any(|rp| vp.path == rp.path || vp.path.starts_with(&format!("{}.", rp.path)))
        });
        for p in &mut v.problems {
            p.line = line_for(&raw.lines, &p.path);
        }
        problems.append(&mut v.problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { file, problems });
        }
        let Some(trunk) = trunks.first().cloned() else {
            // validate::trunks always yields one unless it reported why.
            return Err(ConfigError::Invalid { file, problems });
        };
        Ok(Config {
            source,
            sip,
            trunk,
            trunks,
            media,
            numbering,
            store,
            http,
            dns,
            presence,
            prompts,
            users,
            flows,
            dispatch_mappings,
            webhooks,
        })
    }

    /// Only the `[http]` section of `text`, with the defaults for anything
    /// missing or wrong in it: how `tpswitch reload` finds the running
    /// switch's API even when the rest of the file is broken (which is what
    /// the switch's answer must then report).
    pub fn http_section(text: &str, path: &Path) -> HttpConfig {
        let base = absolute(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let (raw, _) = raw::parse(text);
        let mut v = validate::V {
            base: &base,
            problems: Vec::new(),
            cc: CountryCode::nanp(),
        };
        validate::http(&mut v, &raw.http)
    }

    /// The flow with this name.
    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.name() == name)
    }

    /// The dispatch mapping for a called number (contact point).
    pub fn mapping_for(&self, number: &E164) -> Option<&DispatchMapping> {
        self.dispatch_mappings
            .iter()
            .find(|m| &m.phone_number == number)
    }

    /// Users with a PSTN extension on `number`: one, or several sharing a
    /// desk line (then told apart by their `ext`).
    pub fn users_with_pstn(&self, number: &E164) -> Vec<&User> {
        self.users
            .iter()
            .filter(|u| u.pstn_numbers().any(|n| n == number))
            .collect()
    }

    /// The user with this id.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The audio file of a library prompt.
    pub fn prompt_path(&self, name: &str) -> Option<&Path> {
        self.prompts.get(name).map(PathBuf::as_path)
    }

    /// True when tpswitch may place a call to `n` (see [`diallable`]).
    pub fn may_dial(&self, n: &E164) -> bool {
        diallable(&self.users, &self.trunks, n)
    }

    /// How to write `n` in the Request-URI towards the first trunk.
    pub fn dial_string(&self, n: &E164) -> String {
        self.trunk
            .dial_string(n, &self.numbering.default_country_code)
    }

    /// Whether the file's PINs are open to every local user, given the
    /// file's permission bits (`mode`): world-readable with a user's PIN in
    /// it. Group read is left alone: a service group is how a daemon user
    /// is often given the file.
    pub fn pins_readable_by_others(&self, mode: u32) -> bool {
        mode & 0o004 != 0 && self.users.iter().any(|u| u.pin.is_some())
    }

    /// The trunk with this name.
    pub fn trunk_named(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }
}

/// Absolute without touching the disk (the file may be virtual, as for the
/// embedded default); falls back to the path as given.
fn absolute(path: &Path) -> PathBuf {
    validate::normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// The line of `path`, or of its nearest ancestor that is in the file (a
/// missing key is best looked for in its table).
fn line_for(lines: &std::collections::HashMap<String, usize>, path: &str) -> Option<usize> {
    let mut p = path;
    loop {
        if let Some(l) = lines.get(p) {
            return Some(*l);
        }
        p = p.get(..p.rfind(['.', '['])?)?;
    }
}
