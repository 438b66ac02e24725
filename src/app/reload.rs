//! Reload of the switch's own settings (SIGHUP, `POST /api/v1/reload`,
//! `tpswitch reload`): re-read the file the switch started from, check all
//! of it as start-up does (the file, the environment it names, every prompt
//! file), then install it whole for the next call, or change nothing.
//!
//! "Whole" is two handles swapped one after the other, no lock held across
//! an await: the call context new calls start with (flows, prompts, dialling
//! rules) and the configuration the SIP core's 404 check reads. A call in
//! progress keeps the `Arc` it started with. What the reload reports as
//! needing a restart keeps its running value in both
//! (`config::keep_running`, from the table `config::changes` reports by).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::api::reload::ReloadReport;
use crate::call::CallContext;
use crate::config::{self, keep_running, Config};
use crate::directory::{self, LiveDirectory};
use crate::media::prompt::PromptLibrary;
use crate::presence::Store;
use crate::sip::core::{Policy, Untrusted};
use crate::sip::flood::{FloodPolicy, Refuse, RegisterPolicy};
use crate::sip::SipCommand;

/// Command-line overrides of the file (`--sip-bind`, `--http-bind`): applied
/// at start and again to every reloaded file, so they never read as a
/// change that needs a restart.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub sip_bind: Option<SocketAddr>,
    pub http_bind: Option<SocketAddr>,
}

impl Overrides {
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(b) = self.sip_bind {
            cfg.sip.bind = b;
        }
        if let Some(b) = self.http_bind {
            cfg.http.bind = b;
        }
    }
}

/// Owns the two "current" handles; one reload at a time (the app's main
/// loop awaits each before taking the next request).
pub(super) struct Reloader {
    pub path: PathBuf,
    pub overrides: Overrides,
    /// What the SIP core's dialplan check reads.
    pub dialplan: watch::Sender<Arc<Config>>,
    /// What each new call starts with.
    pub calls: watch::Sender<Arc<CallContext>>,
    /// The SIP core, for the policy a reload may change (allow-list, limits).
    pub sip: mpsc::Sender<SipCommand>,
    /// The file's and the API's users, flows and mappings: a reload
    /// re-reads the first, an API change the second (`Reloader::change`).
    pub directory: LiveDirectory,
    /// Where API-made directory objects are written.
    pub store: Store,
    /// What the API lists, republished after each change or reload.
    pub view: watch::Sender<Arc<directory::View>>,
    /// The prompt library in force, for `/readyz`.
    pub prompts: watch::Sender<Arc<PromptLibrary>>,
}

impl Reloader {
    /// The settings in force now.
    pub fn config(&self) -> Arc<Config> {
        self.calls.borrow().cfg.clone()
    }

    pub async fn reload(&mut self, asked_by: &str) -> ReloadReport {
        let path = self.path.clone();
        let overrides = self.overrides;
        let dir = self.directory.clone();
        info!(file = %path.display(), asked_by = %asked_by, "reloading the configuration");
        // Reading, validating and decoding every prompt is blocking work.
        let checked =
            tokio::task::spawn_blocking(move || load_checked(&path, overrides, dir)).await;
        let file = self.path.display().to_string();
        let (dir, cfg, prompts) = match checked {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(errors)) => {
                for e in &errors {
                    warn!(error = %e, "reload refused");
                }
                warn!(
                    errors = errors.len(),
                    "reload refused: nothing changed, the running settings stay"
                );
                return ReloadReport {
                    applied: false,
                    file,
                    errors,
                    ..ReloadReport::default()
                };
            }
            Err(e) => {
                let errors = vec![format!("the reload task failed: {e}")];
                warn!(error = %e, "reload refused: nothing changed");
                return ReloadReport {
                    applied: false,
                    file,
                    errors,
                    ..ReloadReport::default()
                };
            }
        };
        let old = self.config();
        let changes = config::changes(&old, &cfg);
        self.install(cfg, Arc::new(prompts)).await;
        self.directory = dir;
        self.view.send_replace(Arc::new(self.directory.view()));
        for key in &changes.live {
            info!(setting = %key, "reload: in force from the next call");
        }
        for key in &changes.restart {
            warn!(
                setting = %key,
                "reload: changed in the file, but applies only after a restart"
            );
        }
        info!(
            changed = changes.live.len(),
            restart_needed = changes.restart.len(),
            "configuration reloaded"
        );
        ReloadReport {
            applied: true,
            file,
            changed: changes.live.iter().map(|k| k.to_string()).collect(),
            restart_needed: changes.restart.iter().map(|k| k.to_string()).collect(),
            errors: Vec::new(),
        }
    }
}

impl Reloader {
    /// Install `cfg` for the next call. The call context first: a call the
    /// SIP core lets through on the old mappings and the new context no
    /// longer knows is answered 404 by its call task (call::run_call),
    /// never left in silence. A call in progress keeps its own `Arc`.
    async fn install(&self, cfg: Config, prompts: Arc<PromptLibrary>) {
        // Built against the file or the store as they are now, so it may
        // carry restart-only values the running switch does not have.
        let cfg = Arc::new(keep_running(&self.config(), cfg));
        self.prompts.send_replace(prompts.clone());
        let ctx = self.calls.borrow().with_settings(cfg.clone(), prompts);
        self.calls.send_replace(Arc::new(ctx));
        if self
            .sip
            .send(SipCommand::Policy(Box::new(policy(&cfg))))
            .await
            .is_err()
        {
            warn!("the SIP core has stopped; its policy is unchanged");
        }
        self.dialplan.send_replace(cfg);
    }

    /// An API change of the directory: checked whole, written to the store,
    /// then in force from the next call. The prompt library is the one in
    /// force, plus an uploaded prompt (decoded by `LiveDirectory::apply`).
    pub async fn change(&mut self, req: directory::Request) {
        let directory::Request {
            change,
            actor,
            if_match,
            reply,
        } = req;
        let (kind, key) = match &change {
            directory::Change::Put(d) => (d.kind, d.key.clone()),
            directory::Change::Delete { kind, key } => (*kind, key.clone()),
        };
        let result = match self
            .directory
            .apply(&self.store, &change, if_match.as_deref())
            .await
        {
            Ok((applied, mut cfg, prompt)) => {
                self.overrides.apply(&mut cfg);
                let mut prompts = self.calls.borrow().prompts.clone();
                if let Some(p) = prompt {
                    // An uploaded prompt joins the library calls start with.
                    let mut lib = (*prompts).clone();
                    lib.insert(p);
                    prompts = Arc::new(lib);
                }
                self.install(cfg, prompts).await;
                self.view.send_replace(Arc::new(self.directory.view()));
                info!(kind = %kind, key = %key, actor = %actor, change = applied.as_str(), "directory changed: in force from the next call");
                Ok(applied)
            }
            Err(refusal) => {
                info!(kind = %kind, key = %key, actor = %actor, "directory change refused: nothing changed");
                Err(refusal)
            }
        };
        let _ = reply.send(result);
    }
}

impl Reloader {
    /// Another node may have changed the directory in the shared store:
    /// if the store's objects differ from those in force, check them with
    /// the file as an API change is checked, and put them in force for the
    /// next call. A set that is not valid here (a prompt file this node
    /// cannot read, say) is logged and the running directory stays.
    pub async fn refresh_from_store(&mut self) {
        let api = match self.store.directory_objects().await {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "cannot re-read the directory from the store");
                return;
            }
        };
        if api == self.directory.api {
            return;
        }
        let mut dir = self.directory.clone();
        dir.api = api;
        let conflicts = dir.conflicts_with(&dir.file);
        let built = if conflicts.is_empty() {
            dir.build()
                .map_err(|e| config::directory::explain(&e, &dir.file, &dir.api))
        } else {
            Err(conflicts)
        };
        let mut cfg = match built {
            Ok(c) => c,
            Err(errors) => {
                for e in &errors {
                    warn!(error = %e, "directory changed on another node, not valid here: the running directory stays");
                }
                return;
            }
        };
        self.overrides.apply(&mut cfg);
        let prompts = {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || super::load_prompts(&cfg)).await
        };
        let prompts = match prompts {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                warn!(error = %e, "directory changed on another node, but a prompt cannot be read here (keep uploaded prompts where every node reads them, store.path's folder on shared storage): the running directory stays");
                return;
            }
            Err(e) => {
                warn!(error = %e, "the prompt loading task failed");
                return;
            }
        };
        self.install(cfg, Arc::new(prompts)).await;
        self.directory = dir;
        self.view.send_replace(Arc::new(self.directory.view()));
        info!(
            objects = self.directory.api.len(),
            "directory changed on another node: in force from the next call"
        );
    }
}

/// The start-up checks, collected: the file's every problem, then (for a
/// valid file) the environment's and the prompts'. Each error is one line
/// naming the file and the key. The file must stand on its own (what
/// `check-config` checks), must not declare what the store holds, and
/// joined with the store's objects must still be valid.
fn load_checked(
    path: &std::path::Path,
    overrides: Overrides,
    mut dir: LiveDirectory,
) -> Result<(LiveDirectory, Config, PromptLibrary), Vec<String>> {
    let lines = |e: &dyn std::fmt::Display| -> Vec<String> {
        e.to_string().lines().map(str::to_owned).collect()
    };
    let text = std::fs::read_to_string(path).map_err(|source| {
        lines(&config::ConfigError::Read {
            file: path.display().to_string(),
            source,
        })
    })?;
    Config::from_toml(&text, path).map_err(|e| lines(&e))?;
    let declared = config::directory::declared_in(&text);
    let conflicts = dir.conflicts_with(&declared);
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    dir.file_text = text;
    dir.file = declared;
    let mut cfg = dir
        .build()
        .map_err(|e| config::directory::explain(&e, &dir.file, &dir.api))?;
    overrides.apply(&mut cfg);
    let mut errors = Vec::new();
    if let Err(e) = cfg.check_environment(|name| std::env::var(name).ok()) {
        errors.extend(lines(&e));
    }
    let prompts = match super::load_prompts(&cfg) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(format!("{}: prompts: {e}", cfg.source.display()));
            None
        }
    };
    match prompts {
        Some(p) if errors.is_empty() => Ok((dir, cfg, p)),
        _ => Err(errors),
    }
}

/// The SIP core's reloadable policy, from the configuration: `run` builds
/// the core's first one with it and a reload sends it again. Requests are
/// trusted from every trunk's `allow`, not only the first's.
pub(super) fn policy(cfg: &Config) -> Policy {
    Policy {
        allow: cfg.trunks.iter().flat_map(|t| t.allow.clone()).collect(),
        untrusted: match cfg.sip.untrusted {
            config::Untrusted::Reject => Untrusted::Reject,
            config::Untrusted::Drop => Untrusted::Drop,
        },
        max_calls: cfg.sip.max_calls as usize,
        max_transactions: cfg.sip.max_transactions as usize,
        retry_after: cfg.sip.retry_after,
        flood: flood_policy(&cfg.sip.flood),
    }
}

/// `[sip.flood]` as the SIP core reads it.
fn flood_policy(f: &config::FloodConfig) -> FloodPolicy {
    FloodPolicy {
        enabled: f.enabled,
        window: f.window,
        ban: f.ban,
        limits: f.limits,
        apply_to_trunks: f.apply_to_trunks,
        max_sources: f.max_sources as usize,
        refuse: if f.refuse_403 {
            Refuse::Forbidden
        } else {
            Refuse::Drop
        },
        register: if f.drop_register {
            RegisterPolicy::Drop
        } else {
            RegisterPolicy::Reject
        },
        scanner_agents: f.scanner_user_agents.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reload's policy trusts every trunk's `allow`, as start-up does:
    /// built from the first trunk alone, a reload would have turned a
    /// second carrier's requests into 403s.
    #[test]
    fn the_policy_trusts_every_trunks_allow() {
        let mut cfg = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
        let mut second = cfg.trunks[0].clone();
        second.allow = vec!["192.0.2.0/24".parse().unwrap()];
        cfg.trunks.push(second);
        let p = policy(&cfg);
        assert!(p.allow.contains(&"192.0.2.0/24".parse().unwrap()));
        assert!(p.allow.contains(&cfg.trunks[0].allow[0]));
    }

    const EXAMPLE: &str = include_str!("../../config/tpswitch.toml");

    fn load(text: &str) -> Config {
        Config::from_toml(text, std::path::Path::new("config/tpswitch.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// What a reload reports as needing a restart keeps its running value
    /// in what new calls get: a changed `srtp`, a new trunk and new codecs
    /// are reported under restart_needed and the offers stay as the SIP
    /// core judges them; the trunk's live `allow_dial` is taken at once.
    #[test]
    fn restart_only_trunk_and_media_settings_keep_their_running_values() {
        let running = load(EXAMPLE);
        let text = EXAMPLE
            .replacen("srtp = \"off\"", "srtp = \"optional\"", 1)
            .replacen("allow_dial = []", "allow_dial = [\"+15550109999\"]", 1)
            .replacen("codecs = [\"PCMU\", \"PCMA\"]", "codecs = [\"PCMA\"]", 1)
            .replacen("[trunk]\nname = \"carrier\"", "[[trunks]]\nname = \"carrier\"", 1)
            .replacen(
                "\n[media]\n",
                "\n[[trunks]]\nname = \"backup\"\npriority = 20\nallow = [\"127.0.0.2/32\"]\noutbound_proxy = \"sip:127.0.0.2:5080\"\n\n[media]\n",
                1,
            );
        let new = load(&text);
        assert_eq!(new.trunks.len(), 2, "the edit took");
        let report = config::changes(&running, &new);
        for key in ["trunks", "trunk.srtp", "media.codecs"] {
            assert!(report.restart.contains(&key), "{key}: {report:?}");
        }
        assert!(report.live.contains(&"trunk.allow_dial"), "{report:?}");

        let installed = keep_running(&running, new);
        let names: Vec<_> = installed.trunks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["carrier"]);
        assert_eq!(installed.trunks[0].srtp, running.trunks[0].srtp);
        assert_eq!(installed.trunk.srtp, running.trunk.srtp);
        assert_eq!(installed.media.codecs, running.media.codecs);
        assert_eq!(
            installed.trunk.allow_dial.len(),
            1,
            "a live trunk key stays live"
        );
        assert_eq!(installed.trunks[0].allow_dial.len(), 1);
        // Installed again (the next reload or directory change), nothing
        // is reported as newly changed against what runs.
        assert!(config::changes(&running, &installed).restart.is_empty());
    }

    /// Only live trunk settings changed: the new trunks are taken whole.
    #[test]
    fn live_trunk_settings_are_taken_at_once() {
        let running = load(EXAMPLE);
        let new = load(&EXAMPLE.replacen("trust_pai = true", "trust_pai = false", 1));
        let installed = keep_running(&running, new);
        assert!(!installed.trunk.trust_pai && !installed.trunks[0].trust_pai);
    }
}
