//! `tpswitch agents` against temporary databases and the default users:
//! jsmith (+12345678910), mgarcia and akim (+12345678000).

use super::*;
use crate::presence::agent_state::{set_activity, Activity};
use crate::presence::{PresenceStore, Store};
use chrono::{Duration, TimeZone};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

const H: i64 = 3600;

fn cfg_with_db(dir: &tempfile::TempDir) -> Config {
    let mut c = Config::embedded_default().unwrap();
    c.store.path = dir.path().join("data/tpswitch.db");
    c
}

#[tokio::test]
async fn no_database_yet_means_everyone_is_offline() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    let rows = agent_rows(&cfg, t(0)).await.unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["jsmith", "mgarcia", "akim"]);
    assert!(rows
        .iter()
        .all(|r| r.state == "offline" && r.window.is_none() && r.remaining_seconds == 0));
    assert!(
        !cfg.store.path.exists(),
        "a report must not create the store"
    );

    let json: serde_json::Value =
        serde_json::from_str(&agents_report(&cfg, true, t(0)).await.unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[1]["pstn"], "+12345678000");
    assert!(json[1]["window"].is_null());
}

/// jsmith online 8 h, mgarcia's 1 h window ended but not closed, akim busy,
/// and "gone" (no longer configured) online; the report runs at 2 h.
async fn populated(cfg: &Config) {
    let store = Store::open(&cfg.store.path).await.unwrap();
    store
        .set_online("jsmith", t(0), t(8 * H), Some("c1@x"), "m")
        .await
        .unwrap();
    store
        .set_online("mgarcia", t(0), t(H), None, "m")
        .await
        .unwrap();
    store
        .set_online("akim", t(H), t(4 * H), None, "m")
        .await
        .unwrap();
    store
        .set_online("gone", t(0), t(3 * H), None, "m")
        .await
        .unwrap();
    set_activity(&store, "akim", Activity::Busy, t(H + 60))
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn json_lists_every_user_with_state_window_and_remaining() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    populated(&cfg).await;
    let now = t(2 * H) + Duration::milliseconds(500);
    let out = agents_report(&cfg, true, now).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json[0],
        serde_json::json!({
            "id": "jsmith",
            "name": "John Smith",
            "pstn": "+12345678910",
            "skills": ["billing", "spanish"],
            "state": "online",
            "not_responding": null,
            "window": {"start": "2023-11-14T22:13:20Z", "end": "2023-11-15T06:13:20Z"},
            "remaining_seconds": 6 * H,
            // Online since 22:13:20 yesterday: today (UTC) is 800 s of it.
            "today": {"offered": 0, "accepted": 0, "missed": 0, "talk_seconds": 0, "online_seconds": 800},
        })
    );
    // Ended, not yet closed: offline, and no window shown.
    assert_eq!(json[1]["id"], "mgarcia");
    assert_eq!(json[1]["state"], "offline");
    assert!(json[1]["window"].is_null());
    assert_eq!(json[1]["remaining_seconds"], 0);
    assert_eq!(json[2]["state"], "busy");
    assert_eq!(json[2]["window"]["end"], "2023-11-15T02:13:20Z");
    assert_eq!(json[2]["remaining_seconds"], 2 * H);
    assert_eq!(json[3]["id"], "gone");
    assert_eq!(json[3]["name"], "");
    assert_eq!(json[3]["state"], "online");
    assert_eq!(json.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn table_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    populated(&cfg).await;
    let out = agents_report(&cfg, false, t(2 * H)).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "NAME", "PSTN", "STATE", "WINDOW", "END", "REMAINING"]
    );
    let jsmith: Vec<&str> = lines[1].split("  ").filter(|s| !s.is_empty()).collect();
    assert_eq!(
        jsmith.iter().map(|s| s.trim()).collect::<Vec<_>>(),
        [
            "jsmith",
            "John Smith",
            "+12345678910",
            "online",
            "2023-11-15T06:13:20Z",
            "6h"
        ]
    );
    assert!(
        lines[2].contains("offline") && lines[2].ends_with('-'),
        "{out}"
    );
    assert!(
        lines[3].contains("busy") && lines[3].ends_with("2h"),
        "{out}"
    );
    // Columns line up: every row has STATE where the header has it.
    let col = lines[0].find("STATE").unwrap();
    for l in &lines[1..4] {
        assert!(
            l[col..].starts_with("online")
                || l[col..].starts_with("offline")
                || l[col..].starts_with("busy"),
            "{out}"
        );
    }
}

#[tokio::test]
async fn wrap_up_shows_only_inside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    let store = Store::open(&cfg.store.path).await.unwrap();
    store
        .set_online("jsmith", t(0), t(H), None, "m")
        .await
        .unwrap();
    set_activity(&store, "jsmith", Activity::WrapUp, t(10))
        .await
        .unwrap();
    set_activity(&store, "akim", Activity::Busy, t(10))
        .await
        .unwrap();
    let rows = agent_rows(&cfg, t(100)).await.unwrap();
    assert_eq!(rows[0].state, "wrap-up");
    assert_eq!(rows[2].state, "offline", "busy without a window is offline");
    let rows = agent_rows(&cfg, t(H)).await.unwrap();
    assert_eq!(rows[0].state, "offline");
    assert_eq!(rows[0].remaining_seconds, 0);
}

#[tokio::test]
async fn a_file_that_is_not_a_tpswitch_store_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    std::fs::create_dir_all(cfg.store.path.parent().unwrap()).unwrap();
    std::fs::write(&cfg.store.path, b"").unwrap();
    let err = agents_report(&cfg, false, t(0)).await.unwrap_err();
    assert!(
        matches!(err, AgentsError::Store(StoreError::OldSchema { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("tpswitch.db"), "{err}");
}

/// A user made through the API (the store's directory) is listed with the
/// file's, online when their window says so.
#[tokio::test]
async fn users_made_through_the_api_are_listed() {
    use crate::config::directory::{Declared, Kind};
    use crate::presence::sqlite_directory::DirectoryWrite;
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    let store = Store::open(&cfg.store.path).await.unwrap();
    let table: toml::Table = "id = \"newbie\"\nname = \"New Agent\"\n\
         [[extensions]]\ntype = \"pstn\"\nvalue = \"+12345670042\"\n"
        .parse()
        .unwrap();
    store
        .write_directory(&DirectoryWrite::Put(Declared::new(Kind::Users, table)))
        .await
        .unwrap();
    store
        .set_online("newbie", t(0), t(H), None, "m")
        .await
        .unwrap();
    store.close().await;
    let rows = agent_rows(&cfg, t(60)).await.unwrap();
    let newbie = rows
        .iter()
        .find(|r| r.id == "newbie")
        .expect("newbie listed");
    assert_eq!(newbie.state, "online");
    assert_eq!(newbie.pstn, "+12345670042");
    assert_eq!(rows.len(), 4);
}
