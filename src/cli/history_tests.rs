//! `tpswitch history` against temporary databases.

use chrono::TimeZone;

use super::*;
use crate::presence::Store;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn cfg_with_db(dir: &tempfile::TempDir) -> Config {
    let mut c = Config::embedded_default().unwrap();
    c.store.path = dir.path().join("data/tpswitch.db");
    c
}

/// jsmith: online from the phone, extended by "floor", ended by "floor".
async fn story(cfg: &Config) {
    let store = Store::open(&cfg.store.path).await.unwrap();
    store
        .set_online("jsmith", t(0), t(3600), Some("c1@x"), "log-in menu")
        .await
        .unwrap();
    store
        .set_window("jsmith", t(600), t(7200), "floor", "busy day")
        .await
        .unwrap();
    store
        .end_window("jsmith", t(1200), "floor", "went home")
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn the_table_lists_each_change_newest_first_with_actor_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    story(&cfg).await;
    let out = history_report(&cfg, "jsmith", None, DEFAULT_LIMIT, false)
        .await
        .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("AT") && lines[0].contains("ACTOR"),
        "{out}"
    );
    let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[1])[..4],
        [
            "2023-11-14T22:33:20Z",
            "forced-offline",
            "floor",
            "2023-11-14T22:13:20Z"
        ]
    );
    assert!(lines[1].ends_with("went home"), "{out}");
    assert_eq!(cells(lines[2])[1..3], ["extended", "floor"]);
    assert!(lines[2].ends_with("busy day"), "{out}");
    assert_eq!(cells(lines[3])[1..3], ["online", "agent"]);
}

#[tokio::test]
async fn json_since_and_limit_choose_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    story(&cfg).await;
    let out = history_report(&cfg, "jsmith", None, 2, true).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, ["forced-offline", "extended"]);
    assert_eq!(v[0]["actor"], "floor");
    assert_eq!(v[0]["reason"], "went home");
    assert_eq!(v[0]["window"]["end"], "2023-11-15T00:13:20Z");

    let out = history_report(&cfg, "jsmith", Some(t(600)), 100, true)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
}

#[tokio::test]
async fn unknown_agents_bad_limits_and_a_missing_store_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg_with_db(&dir);
    // No database yet: a configured agent simply has no history.
    let out = history_report(&cfg, "jsmith", None, 10, false)
        .await
        .unwrap();
    assert!(out.contains("(no presence history)"), "{out}");
    assert!(
        !cfg.store.path.exists(),
        "a reader must not create the store"
    );
    let e = history_report(&cfg, "nobody", None, 10, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nobody") && e.contains("tpswitch agents"), "{e}");
    for limit in [0, MAX_LIMIT + 1] {
        let e = history_report(&cfg, "jsmith", None, limit, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("--limit"), "{e}");
    }
    // An agent no longer configured keeps their history readable.
    story(&cfg).await;
    let mut gone = cfg.clone();
    gone.users.retain(|u| u.id != "jsmith");
    let out = history_report(&gone, "jsmith", None, 10, true)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
}
