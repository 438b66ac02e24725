//! Which configuration file to read, looked up the way a Unix daemon does:
//! `--config`, then `$TPSWITCH_CONFIG`, then `./config/tpswitch.toml` (a
//! checkout or an unpacked release), then `/etc/tpswitch/tpswitch.toml`.
//!
//! Nothing is baked in at build time: an installed or copied binary must
//! never read the build folder's config and store without saying so.
//! The lookup takes the environment and the file system as arguments so the
//! order is tested without touching either.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::ConfigError;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "TPSWITCH_CONFIG";
/// Relative to the working directory.
pub const LOCAL_CONFIG: &str = "config/tpswitch.toml";
pub const SYSTEM_CONFIG: &str = "/etc/tpswitch/tpswitch.toml";

/// How the file was chosen, for the first line of every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOrigin {
    Flag,
    Env,
    WorkingDir,
    System,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigOrigin::Flag => "--config",
            ConfigOrigin::Env => CONFIG_ENV,
            ConfigOrigin::WorkingDir => "./config/tpswitch.toml",
            ConfigOrigin::System => SYSTEM_CONFIG,
        })
    }
}

/// The configuration file to read and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    pub path: PathBuf,
    pub origin: ConfigOrigin,
}

/// The first candidate that applies. An explicit choice (flag or variable)
/// is taken as given even when the file is missing: reading it then fails
/// with its name, rather than silently falling through to another file.
pub fn locate(
    flag: Option<&Path>,
    env: Option<OsString>,
    exists: impl Fn(&Path) -> bool,
) -> Result<ConfigLocation, ConfigError> {
    let found = |path: PathBuf, origin| Ok(ConfigLocation { path, origin });
    if let Some(p) = flag {
        return found(p.to_path_buf(), ConfigOrigin::Flag);
    }
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        return found(PathBuf::from(p), ConfigOrigin::Env);
    }
    let local = Path::new(".").join(LOCAL_CONFIG);
    if exists(&local) {
        return found(local, ConfigOrigin::WorkingDir);
    }
    if exists(Path::new(SYSTEM_CONFIG)) {
        return found(PathBuf::from(SYSTEM_CONFIG), ConfigOrigin::System);
    }
    Err(ConfigError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &Path) -> bool {
        false
    }

    #[test]
    fn flag_then_env_then_working_dir_then_etc() {
        let all = |_: &Path| true;
        let l = locate(Some(Path::new("x.toml")), Some("y.toml".into()), all).unwrap();
        assert_eq!((l.path, l.origin), ("x.toml".into(), ConfigOrigin::Flag));
        let l = locate(None, Some("y.toml".into()), all).unwrap();
        assert_eq!((l.path, l.origin), ("y.toml".into(), ConfigOrigin::Env));
        let l = locate(None, None, all).unwrap();
        assert_eq!(
            (l.path, l.origin),
            ("./config/tpswitch.toml".into(), ConfigOrigin::WorkingDir)
        );
        let etc = |p: &Path| p == Path::new(SYSTEM_CONFIG);
        let l = locate(None, None, etc).unwrap();
        assert_eq!(
            (l.path, l.origin),
            (SYSTEM_CONFIG.into(), ConfigOrigin::System)
        );
    }

    #[test]
    fn an_explicit_choice_is_not_skipped_when_missing() {
        let l = locate(Some(Path::new("missing.toml")), None, none).unwrap();
        assert_eq!(l.origin, ConfigOrigin::Flag);
        let l = locate(None, Some("missing.toml".into()), none).unwrap();
        assert_eq!(l.origin, ConfigOrigin::Env);
        // An empty variable is no choice at all.
        assert!(matches!(
            locate(None, Some("".into()), none),
            Err(ConfigError::NotFound)
        ));
    }

    #[test]
    fn nothing_found_says_where_it_looked_and_what_to_do() {
        let e = locate(None, None, none).unwrap_err().to_string();
        for part in [
            "--config",
            CONFIG_ENV,
            "./config/tpswitch.toml",
            SYSTEM_CONFIG,
        ] {
            assert!(e.contains(part), "{e}");
        }
    }
}
