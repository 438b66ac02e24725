//! `tpswitch export`: the running directory — the file's users, flows and
//! dispatch mappings and those made through the API (the store) — as one
//! TOML text that `check-config` accepts: the file as written, then the
//! store's objects as `[[users]]`, `[[flows]]` and `[[dispatch_mappings]]`
//! tables (`config::directory::compose`, the very text the switch runs).
//!
//! Relative paths in it (prompts) are the file's, so the output belongs in
//! the file's folder. A PIN made through the API is in the output, as the
//! file's PINs are in the file: it goes to stdout only, never to a log.

use crate::config::directory;
use crate::config::Config;
use crate::presence::{Store, StoreError};

/// The text, or why there is none.
pub async fn export(cfg: &Config) -> Result<String, String> {
    let text = std::fs::read_to_string(&cfg.source)
        .map_err(|e| format!("{}: cannot read the file: {e}", cfg.source.display()))?;
    let api = match Store::open_reader(&cfg.store).await {
        Ok(store) => {
            let objects = store.directory_objects().await;
            store.close().await;
            objects.map_err(|e| e.to_string())?
        }
        // No store yet: the directory is the file's.
        Err(StoreError::Missing { .. }) => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let conflicts = directory::conflicts(
        &directory::declared_in(&text),
        &api,
        &cfg.source.display().to_string(),
        &cfg.store.name(),
    );
    if !conflicts.is_empty() {
        return Err(conflicts.join("\n"));
    }
    let out = directory::compose(&text, &api);
    // What is printed must be what check-config accepts.
    directory::build(&text, &cfg.source, &api).map_err(|e| e.to_string())?;
    Ok(out)
}
