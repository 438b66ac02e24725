use std::time::Duration;

use super::*;

/// The value of the sample line that starts with `series ` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[test]
fn helpers_render_gauges_counters_and_bucketed_histograms() {
    let recorder = builder().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let call = InProgress::call("Billing");
        let leg = InProgress::outbound_leg();
        queue_waiting("Billing", 1.0);
        queue_wait("Billing", Duration::from_millis(1_500));
        attempt_ended(
            "accepted",
            Duration::from_millis(700),
            Some(Duration::from_millis(300)),
        );
        agent_state(None, "offline");
        agent_state(Some("offline"), "available");
        presence_changed("online");
        store_write("insert_call", Duration::from_micros(800));
        trunk_up("carrier", true);
        trunk_registration("carrier", "registered");
        call_ended("Billing", "bridged");
        let during = handle.render();
        assert_eq!(
            sample(&during, r#"tpswitch_calls_active{flow="Billing"}"#),
            Some(1.0),
            "{during}"
        );
        assert_eq!(
            sample(&during, r#"tpswitch_legs_active{direction="outbound"}"#),
            Some(1.0)
        );
        drop((call, leg));
    });
    let text = handle.render();
    for (series, want) in [
        (r#"tpswitch_calls_active{flow="Billing"}"#, 0.0),
        (r#"tpswitch_legs_active{direction="outbound"}"#, 0.0),
        (r#"tpswitch_queue_waiting{queue="Billing"}"#, 1.0),
        (
            r#"tpswitch_queue_wait_seconds_bucket{queue="Billing",le="1"}"#,
            0.0,
        ),
        (
            r#"tpswitch_queue_wait_seconds_bucket{queue="Billing",le="2"}"#,
            1.0,
        ),
        (r#"tpswitch_queue_wait_seconds_count{queue="Billing"}"#, 1.0),
        (r#"tpswitch_ring_time_seconds_bucket{le="1"}"#, 1.0),
        (r#"tpswitch_accept_latency_seconds_bucket{le="0.25"}"#, 0.0),
        (r#"tpswitch_accept_latency_seconds_bucket{le="0.5"}"#, 1.0),
        (r#"tpswitch_attempts_total{cause="accepted"}"#, 1.0),
        (r#"tpswitch_agents{state="offline"}"#, 0.0),
        (r#"tpswitch_agents{state="available"}"#, 1.0),
        (r#"tpswitch_presence_changes_total{reason="online"}"#, 1.0),
        (
            r#"tpswitch_store_write_seconds_bucket{op="insert_call",le="0.001"}"#,
            1.0,
        ),
        (r#"tpswitch_trunk_up{trunk="carrier"}"#, 1.0),
        (
            r#"tpswitch_trunk_registration{trunk="carrier",state="registered"}"#,
            1.0,
        ),
        (
            r#"tpswitch_trunk_registration{trunk="carrier",state="failed"}"#,
            0.0,
        ),
        (
            r#"tpswitch_calls_total{flow="Billing",outcome="bridged"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(want), "{series} in\n{text}");
    }
}

#[test]
fn pacing_lateness_buckets_are_cumulative_and_count_everything() {
    // 10 µs buckets as the pacing thread keeps them; the last collects the rest.
    let mut counts = vec![0u64; 1001];
    counts[0] = 90; // [0, 10) µs
    counts[7] = 5; // [70, 80) µs
    counts[150] = 3; // [1.5, 1.51) ms
    counts[1000] = 2; // 10 ms or later
    let text = render_pacing_lateness(&counts, Duration::from_micros(10));
    let b = |le: &str| {
        sample(
            &text,
            &format!("tpswitch_pacing_lateness_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    assert_eq!(b("0.00001"), Some(90.0), "{text}");
    assert_eq!(b("0.00005"), Some(90.0));
    assert_eq!(b("0.0001"), Some(95.0));
    assert_eq!(b("0.001"), Some(95.0));
    assert_eq!(b("0.002"), Some(98.0));
    assert_eq!(b("0.01"), Some(98.0));
    assert_eq!(b("+Inf"), Some(100.0));
    assert_eq!(
        sample(&text, "tpswitch_pacing_lateness_seconds_count"),
        Some(100.0)
    );
    let sum = sample(&text, "tpswitch_pacing_lateness_seconds_sum").unwrap_or(0.0);
    // 90*5 µs + 5*75 µs + 3*1505 µs + 2*10 ms, each send at its bucket's middle.
    let want = (90.0 * 5.0 + 5.0 * 75.0 + 3.0 * 1505.0 + 2.0 * 10_000.0) / 1e6;
    assert!((sum - want).abs() < 1e-9, "sum {sum}, want {want}");
    assert!(text.contains("# TYPE tpswitch_pacing_lateness_seconds histogram"));
}

#[test]
fn pacing_lateness_with_no_sends_is_an_empty_histogram() {
    let text = render_pacing_lateness(&[], Duration::from_micros(10));
    assert_eq!(
        sample(&text, "tpswitch_pacing_lateness_seconds_count"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"tpswitch_pacing_lateness_seconds_bucket{le="+Inf"}"#
        ),
        Some(0.0)
    );
}
