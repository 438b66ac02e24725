use super::*;

fn dest(host: &str, port: Option<u16>, transport: Option<Transport>) -> Destination {
    Destination {
        host: host.into(),
        port,
        transport,
        secure: false,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
    Srv {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

fn naptr(order: u16, pref: u16, service: &str, replacement: &str) -> Naptr {
    Naptr {
        order,
        preference: pref,
        flags: "S".into(),
        service: service.into(),
        replacement: replacement.into(),
    }
}

fn udp(s: &str) -> Target {
    Target {
        addr: s.parse().unwrap(),
        transport: Transport::Udp,
    }
}

#[test]
fn ip_literal_needs_no_query() {
    let r = Resolution::new(dest("192.0.2.1", None, None));
    assert_eq!(r.next_query(), None);
    let out = r.finish().unwrap();
    assert_eq!(out.records[0].targets, vec![udp("192.0.2.1:5060")]);
    assert_eq!(out.ttl, None);
}

/// §4.2: an explicit port skips NAPTR and SRV.
#[test]
fn explicit_port_asks_only_addresses() {
    let mut r = Resolution::new(dest("sbc.example.com", Some(5080), None));
    assert_eq!(
        r.next_query(),
        Some(Query::Addresses("sbc.example.com".into()))
    );
    r.answer(Records::Addresses(vec![ip("192.0.2.7")], 60));
    assert_eq!(r.next_query(), None);
    let out = r.finish().unwrap();
    assert_eq!(out.records[0].targets, vec![udp("192.0.2.7:5080")]);
    assert_eq!(out.ttl, Some(Duration::from_secs(60)));
}

/// §4.1: `;transport=tcp` skips NAPTR and asks SRV for TCP; §4.2: no SRV
/// falls back to A/AAAA at 5060 over that transport.
#[test]
fn explicit_transport_asks_srv_then_falls_back() {
    let mut r = Resolution::new(dest("example.com", None, Some(Transport::Tcp)));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sip._tcp.example.com".into()))
    );
    r.answer(Records::Srv(vec![], 0));
    assert_eq!(r.next_query(), Some(Query::Addresses("example.com".into())));
    r.answer(Records::Addresses(vec![ip("192.0.2.9")], 30));
    let out = r.finish().unwrap();
    assert_eq!(
        out.records[0].targets,
        vec![Target {
            addr: "192.0.2.9:5060".parse().unwrap(),
            transport: Transport::Tcp
        }]
    );
}

/// The full chain: NAPTR (lowest order wins, TLS-only records skipped) →
/// SRV → A for each SRV target; TTL is the smallest seen.
#[test]
fn naptr_srv_a_chain() {
    let mut r = Resolution::new(dest("example.com", None, None));
    assert_eq!(r.next_query(), Some(Query::Naptr("example.com".into())));
    r.answer(Records::Naptr(
        vec![
            naptr(20, 10, "SIP+D2T", "_sip._tcp.example.com."),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com."),
            naptr(10, 20, "SIP+D2U", "_sip._udp.example.com."),
        ],
        300,
    ));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sip._udp.example.com".into()))
    );
    r.answer(Records::Srv(
        vec![
            srv(10, 60, 5070, "a.example.com."),
            srv(20, 0, 5071, "b.example.com."),
        ],
        120,
    ));
    assert_eq!(
        r.next_query(),
        Some(Query::Addresses("a.example.com".into()))
    );
    r.answer(Records::Addresses(vec![ip("127.0.0.2")], 90));
    assert_eq!(
        r.next_query(),
        Some(Query::Addresses("b.example.com".into()))
    );
    r.answer(Records::Addresses(vec![ip("127.0.0.3")], 600));
    assert_eq!(r.next_query(), None);
    let out = r.finish().unwrap();
    assert_eq!(out.ttl, Some(Duration::from_secs(90)));
    assert_eq!(
        out.records,
        vec![
            Weighted {
                priority: 10,
                weight: 60,
                targets: vec![udp("127.0.0.2:5070")]
            },
            Weighted {
                priority: 20,
                weight: 0,
                targets: vec![udp("127.0.0.3:5071")]
            },
        ]
    );
}

/// §4.1: no NAPTR: SRV for UDP, then TCP, then A/AAAA at 5060.
#[test]
fn no_naptr_tries_each_srv_then_addresses() {
    let mut r = Resolution::new(dest("example.com", None, None));
    r.answer(Records::Naptr(vec![], 0));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sip._udp.example.com".into()))
    );
    r.answer(Records::Srv(vec![], 0));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sip._tcp.example.com".into()))
    );
    r.answer(Records::Srv(vec![], 0));
    assert_eq!(r.next_query(), Some(Query::Addresses("example.com".into())));
    r.answer(Records::Addresses(vec![], 0));
    let err = r.finish().unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com does not resolve (asked NAPTR example.com, SRV _sip._udp.example.com, \
         SRV _sip._tcp.example.com, A/AAAA example.com)"
    );
}

/// RFC 2782: a lone "." target says the service is not offered.
#[test]
fn srv_dot_means_not_available() {
    let mut r = Resolution::new(dest("example.com", None, Some(Transport::Udp)));
    r.answer(Records::Srv(vec![srv(0, 0, 0, ".")], 60));
    assert_eq!(r.next_query(), None);
    assert!(r.finish().is_err());
}

/// Lower priority always first; a weight 0 record after a weighted one
/// of the same priority almost always; 3:1 weights give about 3:1 firsts.
#[test]
fn order_honours_priority_and_weight() {
    let records = vec![
        Weighted {
            priority: 20,
            weight: 100,
            targets: vec![udp("127.0.0.9:5060")],
        },
        Weighted {
            priority: 10,
            weight: 30,
            targets: vec![udp("127.0.0.1:5060")],
        },
        Weighted {
            priority: 10,
            weight: 10,
            targets: vec![udp("127.0.0.2:5060")],
        },
    ];
    let mut rng = SplitMix(7);
    let mut first_a = 0;
    for _ in 0..4000 {
        let o = order(&records, &mut || rng.next_u64());
        assert_eq!(o.len(), 3);
        assert_eq!(o[2], udp("127.0.0.9:5060"), "priority 20 comes last");
        if o[0] == udp("127.0.0.1:5060") {
            first_a += 1;
        }
    }
    // Expected 3000 of 4000 (weight 30 of 40); the seed is fixed, so this
    // is deterministic, and the band is wide enough for any fair generator.
    assert!((2800..=3200).contains(&first_a), "{first_a}");
}

#[test]
fn order_with_equal_zero_weights_keeps_everyone() {
    let records = vec![
        Weighted {
            priority: 0,
            weight: 0,
            targets: vec![udp("127.0.0.1:1"), udp("127.0.0.2:1")],
        },
        Weighted {
            priority: 0,
            weight: 0,
            targets: vec![udp("127.0.0.3:1")],
        },
    ];
    let mut rng = SplitMix(1);
    let o = order(&records, &mut || rng.next_u64());
    assert_eq!(o.len(), 3);
}

fn sips(host: &str, port: Option<u16>, transport: Option<Transport>) -> Destination {
    Destination {
        secure: true,
        ..dest(host, port, transport)
    }
}

fn tls(s: &str) -> Target {
    Target {
        addr: s.parse().unwrap(),
        transport: Transport::Tls,
    }
}

/// RFC 3263 §4.1: a sips: URI uses only TLS records. Of the NAPTR records
/// only SIPS+D2T ones count, taken by order then preference.
#[test]
fn sips_uri_takes_only_sips_naptr_by_order_and_preference() {
    let mut r = Resolution::new(sips("example.com", None, None));
    assert_eq!(r.next_query(), Some(Query::Naptr("example.com".into())));
    r.answer(Records::Naptr(
        vec![
            naptr(10, 10, "SIP+D2U", "_sip._udp.example.com."),
            naptr(20, 20, "SIPS+D2T", "_sips._tcp.b.example.com."),
            naptr(20, 10, "SIPS+D2T", "_sips._tcp.a.example.com."),
        ],
        300,
    ));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sips._tcp.a.example.com".into()))
    );
    r.answer(Records::Srv(vec![srv(0, 0, 5071, "edge.example.com.")], 60));
    assert_eq!(
        r.next_query(),
        Some(Query::Addresses("edge.example.com".into()))
    );
    r.answer(Records::Addresses(vec![ip("127.0.0.5")], 60));
    let out = r.finish().unwrap();
    assert_eq!(out.records[0].targets, vec![tls("127.0.0.5:5071")]);
}

/// A sip: URI passes SIPS+D2T over (its trunk has no TLS client), as
/// before; with nothing else it falls back to SRV for UDP and TCP.
#[test]
fn sip_uri_passes_sips_naptr_over() {
    let mut r = Resolution::new(dest("example.com", None, None));
    r.answer(Records::Naptr(
        vec![naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.com.")],
        300,
    ));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sip._udp.example.com".into()))
    );
}

/// §4.1: a sips: URI with no NAPTR asks `_sips._tcp` only; with no SRV
/// either, A/AAAA at 5061 over TLS (RFC 3261 §19.1.2).
#[test]
fn sips_uri_without_naptr_asks_sips_srv_then_5061() {
    let mut r = Resolution::new(sips("example.com", None, None));
    r.answer(Records::Naptr(vec![], 0));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sips._tcp.example.com".into()))
    );
    r.answer(Records::Srv(vec![], 0));
    assert_eq!(r.next_query(), Some(Query::Addresses("example.com".into())));
    r.answer(Records::Addresses(vec![ip("192.0.2.9")], 30));
    let out = r.finish().unwrap();
    assert_eq!(out.records[0].targets, vec![tls("192.0.2.9:5061")]);
}

/// `;transport=tls` skips NAPTR and asks `_sips._tcp` (§4.1); an explicit
/// port with it asks A/AAAA only and keeps TLS (§4.2).
#[test]
fn transport_tls_asks_sips_srv_and_a_port_keeps_tls() {
    let r = Resolution::new(dest("example.com", None, Some(Transport::Tls)));
    assert_eq!(
        r.next_query(),
        Some(Query::Srv("_sips._tcp.example.com".into()))
    );
    let mut r = Resolution::new(sips("example.com", Some(5071), None));
    assert_eq!(r.next_query(), Some(Query::Addresses("example.com".into())));
    r.answer(Records::Addresses(vec![ip("192.0.2.9")], 30));
    assert_eq!(
        r.finish().unwrap().records[0].targets,
        vec![tls("192.0.2.9:5071")]
    );
    let r = Resolution::new(sips("192.0.2.4", None, None));
    assert_eq!(
        r.finish().unwrap().records[0].targets,
        vec![tls("192.0.2.4:5061")]
    );
}
