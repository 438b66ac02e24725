//! Configuration text through the loader: TOML parsing, validation with
//! its messages (each names the key and the fix), the `[http]` reader that
//! `tpswitch reload` uses on a broken file, and the directory's split of
//! the file into declared users, flows and mappings (what the API joins its
//! own entries with).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tpswitch::config::{directory, Config};

const SHIPPED: &str = include_str!("../../config/tpswitch.toml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/tpswitch/tpswitch.toml");
    match Config::from_toml(text, path) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = Config::http_section(text, path);
    // The text's users, flows, mappings and prompts as if made through the
    // API, joined with the shipped file: the union is validated whole.
    let api = directory::declared_in(text);
    let file = directory::declared_in(SHIPPED);
    if let Err(e) = directory::build(SHIPPED, path, &api) {
        let _ = directory::explain(&e, &file, &api);
    }
});
