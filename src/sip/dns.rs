//! Locating a trunk's servers per RFC 3263 §4, sans-IO: the shell
//! (`sip/resolver.rs`) asks the queries [`Resolution::next_query`] names and
//! feeds the records back; out come the weighted records to call, and the
//! TTL after which they must be looked up again. No socket, no clock: `now`
//! is never needed, only the TTLs the answers carry.
//!
//! Which server a call tries first is decided per call by [`order`]
//! (RFC 2782 priorities and weighted random choice), so the weights spread
//! calls even while one answer is cached.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The transports tpswitch speaks to a trunk. TLS is asked for only for a
/// trunk configured for it (`sips:` or `;transport=tls`), the only ones with
/// a TLS client (its CA and server name); other trunks pass `SIPS+D2T`
/// records over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP (RFC 3261 §26; SRV `_sips._tcp`, NAPTR `SIPS+D2T`).
    Tls,
}

impl Transport {
    /// RFC 3263 §4.1 SRV prefix.
    fn srv_prefix(self) -> &'static str {
        match self {
            Transport::Udp => "_sip._udp",
            Transport::Tcp => "_sip._tcp",
            Transport::Tls => "_sips._tcp",
        }
    }

    /// RFC 3263 §4.1 NAPTR service field (RFC 3403 registration in §10).
    fn from_naptr_service(service: &str) -> Option<Self> {
        if service.eq_ignore_ascii_case("SIP+D2U") {
            Some(Transport::Udp)
        } else if service.eq_ignore_ascii_case("SIP+D2T") {
            Some(Transport::Tcp)
        } else if service.eq_ignore_ascii_case("SIPS+D2T") {
            Some(Transport::Tls)
        } else {
            None
        }
    }

    /// RFC 3261 §19.1.2: 5061 for TLS, 5060 otherwise.
    fn default_port(self) -> u16 {
        match self {
            Transport::Tls => SIPS_PORT,
            _ => SIP_PORT,
        }
    }

    /// Reached over a stream (our own connection to the trunk).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// One address to send requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.transport, self.addr)
    }
}

/// The addresses of one SRV record (or of a plain A/AAAA lookup), with the
/// record's priority and weight (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted {
    pub priority: u16,
    pub weight: u16,
    pub targets: Vec<Target>,
}

/// What the configuration names: the host, port and transport of the
/// trunk's URI, with the port and transport only when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    pub port: Option<u16>,
    pub transport: Option<Transport>,
    /// A `sips:` URI (RFC 3263 §4.1): only TLS records are used — NAPTR
    /// `SIPS+D2T`, SRV `_sips._tcp`, else A/AAAA at 5061 over TLS.
    pub secure: bool,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secure {
            f.write_str("sips:")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(t) = self.transport {
            write!(f, ";transport={t}")?;
        }
        Ok(())
    }
}

/// A question for the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Naptr(String),
    Srv(String),
    /// A and AAAA, both.
    Addresses(String),
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Naptr(n) => write!(f, "NAPTR {n}"),
            Query::Srv(n) => write!(f, "SRV {n}"),
            Query::Addresses(n) => write!(f, "A/AAAA {n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub service: String,
    pub replacement: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The records an answer held (empty for NXDOMAIN, no data, or a failed
/// lookup: RFC 3263 treats all three as "none found") and the smallest TTL
/// among them, in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    Naptr(Vec<Naptr>, u32),
    Srv(Vec<Srv>, u32),
    Addresses(Vec<IpAddr>, u32),
}

/// The result of a lookup: records to try, and how long they stay valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub records: Vec<Weighted>,
    /// The smallest TTL of the records used; `None` for an IP literal.
    pub ttl: Option<Duration>,
}

/// A name that gave no address: what was asked, for the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub name: String,
    pub tried: Vec<String>,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} does not resolve (asked {})",
            self.name,
            self.tried.join(", ")
        )
    }
}

/// SIP's default port for UDP and TCP, and for TLS (RFC 3261 §19.1.2).
const SIP_PORT: u16 = 5060;
const SIPS_PORT: u16 = 5061;

#[derive(Debug)]
enum Step {
    Naptr,
    /// SRV names still to ask, in order.
    Srv(VecDeque<(String, Transport)>),
    /// A/AAAA lookups still to make, one per SRV record (or one for the
    /// host), each with the record it fills.
    Addresses(VecDeque<(String, u16, Transport, u16, u16)>),
    Done,
}

/// One RFC 3263 §4 lookup, from the configured URI to the records to try.
#[derive(Debug)]
pub struct Resolution {
    dest: Destination,
    step: Step,
    tried: Vec<String>,
    ttl: Option<u32>,
    records: Vec<Weighted>,
}

impl Resolution {
    pub fn new(dest: Destination) -> Self {
        let mut r = Resolution {
            step: Step::Done,
            tried: Vec::new(),
            ttl: None,
            records: Vec::new(),
            dest,
        };
        let host = r.dest.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            // §4.1/§4.2: a numeric IP needs no lookup; UDP and 5060 unless
            // the URI says otherwise (TLS and 5061 for a sips: URI).
            let t = r.dest.default_transport();
            r.records.push(Weighted {
                priority: 0,
                weight: 0,
                targets: vec![Target {
                    addr: SocketAddr::new(ip, r.dest.port.unwrap_or(t.default_port())),
                    transport: t,
                }],
            });
            return r;
        }
        r.step = match (r.dest.port, r.dest.transport) {
            // §4.2: a port in the URI means A/AAAA only, no SRV; §4.1: and
            // UDP when no transport is named.
            (Some(port), _) => Step::Addresses(VecDeque::from([(
                r.dest.host.clone(),
                port,
                r.dest.default_transport(),
                0,
                0,
            )])),
            // §4.1: `;transport=` skips NAPTR; SRV for that transport.
            (None, Some(t)) => Step::Srv(VecDeque::from([(srv_name(t, &r.dest.host), t)])),
            (None, None) => Step::Naptr,
        };
        r
    }

    /// The next question, or `None` when [`Resolution::finish`] may be called.
    pub fn next_query(&self) -> Option<Query> {
        match &self.step {
            Step::Naptr => Some(Query::Naptr(self.dest.host.clone())),
            Step::Srv(q) => q.front().map(|(n, _)| Query::Srv(n.clone())),
            Step::Addresses(q) => q.front().map(|(h, ..)| Query::Addresses(h.clone())),
            Step::Done => None,
        }
    }

    /// The answer to the last question. An answer of the wrong kind is
    /// ignored (the shell asked something else).
    pub fn answer(&mut self, records: Records) {
        if let Some(q) = self.next_query() {
            self.tried.push(q.to_string());
        }
        let step = std::mem::replace(&mut self.step, Step::Done);
        self.step = match (step, records) {
            (Step::Naptr, Records::Naptr(list, ttl)) => {
                let secure = self.dest.secure;
                let mut usable: Vec<(u16, u16, String, Transport)> = list
                    .into_iter()
                    .filter(|n| n.flags.eq_ignore_ascii_case("s"))
                    .filter_map(|n| {
                        Transport::from_naptr_service(&n.service)
                            .map(|t| (n.order, n.preference, n.replacement, t))
                    })
                    // §4.1: a sips: URI uses only SIPS+D2T; a sip: one
                    // only what its trunk can speak without a TLS client.
                    .filter(|(.., t)| (*t == Transport::Tls) == secure)
                    .collect();
                if usable.is_empty() {
                    // §4.1: no (usable) NAPTR: SRV for each transport we
                    // support, UDP first; for a sips: URI, `_sips._tcp`.
                    let transports: &[Transport] = if secure {
                        &[Transport::Tls]
                    } else {
                        &[Transport::Udp, Transport::Tcp]
                    };
                    Step::Srv(
                        transports
                            .iter()
                            .map(|&t| (srv_name(t, &self.dest.host), t))
                            .collect(),
                    )
                } else {
                    self.keep_ttl(ttl);
                    // §4.1: lowest order first, then lowest preference.
                    usable.sort_by_key(|(o, p, ..)| (*o, *p));
                    Step::Srv(
                        usable
                            .into_iter()
                            .map(|(_, _, name, t)| (name.trim_end_matches('.').to_owned(), t))
                            .collect(),
                    )
                }
            }
            (Step::Srv(mut queue), Records::Srv(list, ttl)) => {
                let Some((_, transport)) = queue.pop_front() else {
                    return;
                };
                if list.is_empty() {
                    if queue.is_empty() {
                        // §4.2: no SRV: A/AAAA of the host at the default
                        // port, over the transport the URI names; §4.1:
                        // UDP for a sip: URI that names none, TLS for sips:.
                        let t = self.dest.default_transport();
                        Step::Addresses(VecDeque::from([(
                            self.dest.host.clone(),
                            t.default_port(),
                            t,
                            0,
                            0,
                        )]))
                    } else {
                        Step::Srv(queue)
                    }
                } else if list.len() == 1 && list[0].target.trim_end_matches('.').is_empty() {
                    // RFC 2782: a lone target "." means the service is
                    // decidedly not available here.
                    self.keep_ttl(ttl);
                    Step::Done
                } else {
                    self.keep_ttl(ttl);
                    Step::Addresses(
                        list.into_iter()
                            .filter(|s| !s.target.trim_end_matches('.').is_empty())
                            .map(|s| {
                                (
                                    s.target.trim_end_matches('.').to_owned(),
                                    s.port,
                                    transport,
                                    s.priority,
                                    s.weight,
                                )
                            })
                            .collect(),
                    )
                }
            }
            (Step::Addresses(mut queue), Records::Addresses(ips, ttl)) => {
                if let Some((_, port, transport, priority, weight)) = queue.pop_front() {
                    if !ips.is_empty() {
                        self.keep_ttl(ttl);
                        self.records.push(Weighted {
                            priority,
                            weight,
                            targets: ips
                                .into_iter()
                                .map(|ip| Target {
                                    addr: SocketAddr::new(ip, port),
                                    transport,
                                })
                                .collect(),
                        });
                    }
                }
                if queue.is_empty() {
                    Step::Done
                } else {
                    Step::Addresses(queue)
                }
            }
            (step, _) => {
                self.tried.pop();
                step
            }
        };
    }

    fn keep_ttl(&mut self, ttl: u32) {
        self.ttl = Some(self.ttl.map_or(ttl, |t| t.min(ttl)));
    }

    pub fn finish(self) -> Result<Resolved, Unresolved> {
        if self.records.is_empty() {
            return Err(Unresolved {
                name: self.dest.to_string(),
                tried: self.tried,
            });
        }
        let mut records = self.records;
        // Lowest priority first, for the log and for comparing answers
        // (DNS servers rotate record order; `order` does not care).
        records.sort_by(|x, y| {
            (x.priority, std::cmp::Reverse(x.weight), &x.targets).cmp(&(
                y.priority,
                std::cmp::Reverse(y.weight),
                &y.targets,
            ))
        });
        Ok(Resolved {
            records,
            ttl: self.ttl.map(|t| Duration::from_secs(u64::from(t))),
        })
    }
}

impl Destination {
    /// The transport when no record names one: the URI's, else TLS for a
    /// sips: URI and UDP for a sip: one (RFC 3263 §4.1).
    fn default_transport(&self) -> Transport {
        match self.transport {
            Some(t) => t,
            None if self.secure => Transport::Tls,
            None => Transport::Udp,
        }
    }
}

fn srv_name(t: Transport, host: &str) -> String {
    format!("{}.{}", t.srv_prefix(), host.trim_end_matches('.'))
}

/// The order in which one call tries the records' addresses: RFC 2782 —
/// lowest priority first; within a priority, repeatedly a weighted random
/// pick among those left (zero weights first in the running sum, so they are
/// chosen only rarely). `random` gives uniformly distributed numbers; tests
/// seed it.
pub fn order(records: &[Weighted], random: &mut dyn FnMut() -> u64) -> Vec<Target> {
    let mut by_priority: Vec<&Weighted> = records.iter().collect();
    by_priority.sort_by_key(|w| w.priority);
    let mut out = Vec::new();
    let mut i = 0;
    while i < by_priority.len() {
        let p = by_priority[i].priority;
        let mut group: Vec<&Weighted> = by_priority[i..]
            .iter()
            .take_while(|w| w.priority == p)
            .copied()
            .collect();
        i += group.len();
        // "all those with weight 0 are placed at the beginning of the list"
        group.sort_by_key(|w| w.weight != 0);
        while !group.is_empty() {
            let sum: u64 = group.iter().map(|w| u64::from(w.weight)).sum();
            // "a uniform random number between 0 and the sum ... (inclusive)"
            let r = random() % (sum + 1);
            let mut running = 0u64;
            let mut pick = group.len() - 1;
            for (k, w) in group.iter().enumerate() {
                running += u64::from(w.weight);
                if running >= r {
                    pick = k;
                    break;
                }
            }
            let chosen = group.remove(pick);
            for t in &chosen.targets {
                if !out.contains(t) {
                    out.push(*t);
                }
            }
        }
    }
    out
}

/// A small seedable generator for [`order`] (splitmix64).
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests;
