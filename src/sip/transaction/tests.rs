//! Timer behaviour of §17 on a simulated clock.

use super::*;

fn udp() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5070".parse().unwrap(),
    }
}

fn tcp() -> Peer {
    Peer {
        transport: Transport::Tcp { conn: 7 },
        addr: "127.0.0.1:5070".parse().unwrap(),
    }
}

fn key(method: TxMethod) -> TxKey {
    TxKey {
        branch: "z9hG4bK-1".into(),
        sent_by: "127.0.0.1:5070".into(),
        method,
    }
}

fn drain(l: &mut TransactionLayer) -> Vec<TxEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn transmits(events: &[TxEvent]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            TxEvent::Transmit { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// Advances the clock to each deadline up to `until`, collecting events with
/// the time they happened.
fn run_until(l: &mut TransactionLayer, until: Instant) -> Vec<(Instant, TxEvent)> {
    let mut out = Vec::new();
    while let Some(d) = l.deadline() {
        if d > until {
            break;
        }
        l.handle_timeout(d);
        out.extend(drain(l).into_iter().map(|e| (d, e)));
    }
    out
}

#[test]
fn invite_retransmission_gets_last_response_again() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    assert_eq!(l.on_request(&k, false, udp(), t0), ServerMatch::New);
    assert!(l.respond(&k, 100, Bytes::from_static(b"100"), t0));
    drain(&mut l);
    assert_eq!(
        l.on_request(&k, false, udp(), t0),
        ServerMatch::Retransmission
    );
    assert_eq!(transmits(&drain(&mut l)), vec![Bytes::from_static(b"100")]);
}

#[test]
fn non_2xx_final_retransmits_with_timer_g_until_ack() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    l.on_request(&k, false, udp(), t0);
    l.respond(&k, 486, Bytes::from_static(b"486"), t0);
    drain(&mut l);
    // Timer G: 0.5, 1, 2, 4, 4 s ... (T1 doubling, capped at T2).
    let ev = run_until(&mut l, t0 + Duration::from_millis(11_600));
    let times: Vec<u128> = ev
        .iter()
        .filter(|(_, e)| matches!(e, TxEvent::Transmit { .. }))
        .map(|(at, _)| (*at - t0).as_millis())
        .collect();
    assert_eq!(times, vec![500, 1500, 3500, 7500, 11500]);
    // The ACK stops it: Confirmed, then Timer I (T4) ends the transaction.
    let now = t0 + Duration::from_millis(11_600);
    assert_eq!(l.on_request(&k, true, udp(), now), ServerMatch::AckAbsorbed);
    let ev = run_until(&mut l, now + Duration::from_secs(60));
    assert!(transmits(&ev.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()).is_empty());
    let (at, last) = ev.last().unwrap();
    assert!(matches!(
        last,
        TxEvent::Terminated {
            side: Side::Server,
            ..
        }
    ));
    assert_eq!(*at - now, Duration::from_secs(5));
    assert_eq!(l.server_count(), 0);
}

#[test]
fn lost_ack_ends_with_timer_h() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    l.on_request(&k, false, udp(), t0);
    l.respond(&k, 487, Bytes::from_static(b"487"), t0);
    drain(&mut l);
    let ev = run_until(&mut l, t0 + Duration::from_secs(40));
    let h = ev
        .iter()
        .find(|(_, e)| matches!(e, TxEvent::ServerAckTimeout { .. }))
        .expect("timer H");
    assert_eq!(h.0 - t0, Duration::from_secs(32));
    assert_eq!(l.server_count(), 0);
}

#[test]
fn reliable_transport_sends_no_retransmissions() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    l.on_request(&k, false, tcp(), t0);
    l.respond(&k, 486, Bytes::from_static(b"486"), t0);
    drain(&mut l);
    let ev = run_until(&mut l, t0 + Duration::from_secs(10));
    assert!(ev
        .iter()
        .all(|(_, e)| !matches!(e, TxEvent::Transmit { .. })));
    assert_eq!(l.on_request(&k, true, tcp(), t0), ServerMatch::AckAbsorbed);
    // Timer I is zero on reliable transports.
    let ev = run_until(&mut l, t0);
    assert!(ev
        .iter()
        .any(|(_, e)| matches!(e, TxEvent::Terminated { .. })));
}

#[test]
fn invite_2xx_is_accepted_and_retransmitted_invite_absorbed() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    l.on_request(&k, false, udp(), t0);
    l.respond(&k, 200, Bytes::from_static(b"200"), t0);
    drain(&mut l);
    // RFC 6026: the transaction absorbs the retransmitted INVITE; 2xx
    // retransmission is the TU's job.
    assert_eq!(
        l.on_request(&k, false, udp(), t0 + Duration::from_millis(600)),
        ServerMatch::Retransmission
    );
    assert!(drain(&mut l).is_empty());
    // No Timer G for a 2xx.
    let ev = run_until(&mut l, t0 + Duration::from_secs(31));
    assert!(ev.is_empty());
    // Timer L then ends it; a late duplicate is then a new transaction the
    // dialog layer recognises by its To tag.
    let ev = run_until(&mut l, t0 + Duration::from_secs(33));
    assert_eq!(ev.len(), 1);
    assert!(!l.respond(&k, 200, Bytes::new(), t0));
}

#[test]
fn ack_without_transaction_is_for_the_dialog() {
    let mut l = TransactionLayer::new(Timers::default());
    let k = key(TxMethod::Invite);
    assert_eq!(
        l.on_request(&k, true, udp(), Instant::now()),
        ServerMatch::AckForDialog
    );
}

#[test]
fn non_invite_server_linger_is_timer_j() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Other(1));
    l.on_request(&k, false, udp(), t0);
    l.respond(&k, 200, Bytes::from_static(b"200"), t0);
    drain(&mut l);
    let at = t0 + Duration::from_secs(10);
    assert_eq!(
        l.on_request(&k, false, udp(), at),
        ServerMatch::Retransmission
    );
    assert_eq!(transmits(&drain(&mut l)).len(), 1);
    let ev = run_until(&mut l, t0 + Duration::from_secs(40));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0 - t0, Duration::from_secs(32));
}

#[test]
fn client_invite_timer_a_doubles_until_timer_b() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    l.send_request(k.clone(), udp(), Bytes::from_static(b"INVITE"), t0);
    assert_eq!(transmits(&drain(&mut l)).len(), 1);
    let ev = run_until(&mut l, t0 + Duration::from_secs(40));
    let retx: Vec<u128> = ev
        .iter()
        .filter(|(_, e)| matches!(e, TxEvent::Transmit { .. }))
        .map(|(at, _)| (*at - t0).as_millis())
        .collect();
    // A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
    assert_eq!(retx, vec![500, 1500, 3500, 7500, 15500, 31500]);
    let b = ev
        .iter()
        .find(|(_, e)| matches!(e, TxEvent::ClientTimeout { .. }))
        .unwrap();
    assert_eq!(b.0 - t0, Duration::from_secs(32));
    assert_eq!(l.client_count(), 0);
}

#[test]
fn client_invite_provisional_stops_timer_a_and_final_is_acked_once_per_retransmit() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    l.send_request(k.clone(), udp(), Bytes::from_static(b"INVITE"), t0);
    drain(&mut l);
    assert_eq!(
        l.on_response(&k, 180, t0 + Duration::from_millis(100), || None),
        ClientMatch::Deliver
    );
    assert!(run_until(&mut l, t0 + Duration::from_secs(5)).is_empty());
    let mut acks = 0;
    assert_eq!(
        l.on_response(&k, 486, t0 + Duration::from_secs(5), || {
            acks += 1;
            Some(Bytes::from_static(b"ACK"))
        }),
        ClientMatch::Deliver
    );
    assert_eq!(acks, 1);
    assert_eq!(transmits(&drain(&mut l)), vec![Bytes::from_static(b"ACK")]);
    // The retransmitted 486 is absorbed and re-ACKed from the stored ACK.
    assert_eq!(
        l.on_response(&k, 486, t0 + Duration::from_secs(6), || unreachable!()),
        ClientMatch::Absorbed
    );
    assert_eq!(transmits(&drain(&mut l)), vec![Bytes::from_static(b"ACK")]);
    // Timer D: 32 s.
    let ev = run_until(&mut l, t0 + Duration::from_secs(60));
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0].0 - (t0 + Duration::from_secs(5)),
        Duration::from_secs(32)
    );
}

#[test]
fn client_invite_2xx_retransmissions_reach_the_tu() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Invite);
    l.send_request(k.clone(), udp(), Bytes::from_static(b"INVITE"), t0);
    drain(&mut l);
    assert_eq!(l.on_response(&k, 200, t0, || None), ClientMatch::Deliver);
    // The TU re-sends its ACK for each retransmitted 2xx (§13.2.2.4).
    assert_eq!(l.on_response(&k, 200, t0, || None), ClientMatch::Deliver);
    assert!(transmits(&drain(&mut l)).is_empty());
}

#[test]
fn client_non_invite_timer_e_caps_at_t2_and_uses_t2_in_proceeding() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Other(2));
    l.send_request(k.clone(), udp(), Bytes::from_static(b"BYE"), t0);
    drain(&mut l);
    let ev = run_until(&mut l, t0 + Duration::from_millis(11_600));
    let retx: Vec<u128> = ev
        .iter()
        .filter(|(_, e)| matches!(e, TxEvent::Transmit { .. }))
        .map(|(at, _)| (*at - t0).as_millis())
        .collect();
    assert_eq!(retx, vec![500, 1500, 3500, 7500, 11500]);
    // A provisional response: Timer E continues at T2.
    let now = t0 + Duration::from_millis(11_600);
    l.on_response(&k, 100, now, || None);
    let ev = run_until(&mut l, t0 + Duration::from_millis(20_000));
    let retx: Vec<u128> = ev
        .iter()
        .filter(|(_, e)| matches!(e, TxEvent::Transmit { .. }))
        .map(|(at, _)| (*at - t0).as_millis())
        .collect();
    assert_eq!(retx, vec![15500, 19500]);
    // Final response: Timer K (T4) then gone; a retransmitted final is absorbed.
    let now = t0 + Duration::from_secs(20);
    assert_eq!(l.on_response(&k, 200, now, || None), ClientMatch::Deliver);
    assert_eq!(l.on_response(&k, 200, now, || None), ClientMatch::Absorbed);
    let ev = run_until(&mut l, now + Duration::from_secs(10));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0 - now, Duration::from_secs(5));
}

#[test]
fn client_non_invite_timeout_is_timer_f() {
    let mut l = TransactionLayer::new(Timers {
        t1: Duration::from_millis(100),
        ..Timers::default()
    });
    let t0 = Instant::now();
    let k = key(TxMethod::Other(2));
    l.send_request(k.clone(), tcp(), Bytes::from_static(b"BYE"), t0);
    drain(&mut l);
    let ev = run_until(&mut l, t0 + Duration::from_secs(10));
    // Reliable: no retransmissions, F at 64*T1 = 6.4 s.
    assert!(matches!(ev[0].1, TxEvent::ClientTimeout { .. }));
    assert_eq!(ev[0].0 - t0, Duration::from_millis(6400));
}

#[test]
fn unmatched_response_is_reported() {
    let mut l = TransactionLayer::new(Timers::default());
    assert_eq!(
        l.on_response(&key(TxMethod::Invite), 200, Instant::now(), || None),
        ClientMatch::Unmatched
    );
}

/// The idle sweep must not close a connection a transaction still answers
/// on (§18.2.2): it is listed until the transaction ends.
#[test]
fn tcp_connections_in_use_are_listed_until_the_transaction_ends() {
    let mut l = TransactionLayer::new(Timers::default());
    let t0 = Instant::now();
    let k = key(TxMethod::Other(0));
    l.on_request(&k, false, tcp(), t0);
    l.on_request(
        &TxKey {
            branch: "z9hG4bK-2".into(),
            ..key(TxMethod::Other(0))
        },
        false,
        udp(),
        t0,
    );
    let listed = |l: &TransactionLayer| {
        let mut set = std::collections::HashSet::new();
        l.tcp_connections(&mut set);
        set
    };
    assert_eq!(listed(&l), std::collections::HashSet::from([7]));
    l.respond(&k, 200, Bytes::from_static(b"200"), t0);
    // Over TCP Timer J is zero (§17.2.2): the transaction ends at once.
    run_until(&mut l, t0 + Duration::from_secs(1));
    drain(&mut l);
    assert!(listed(&l).is_empty());
}
