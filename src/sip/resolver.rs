//! The DNS shell around [`super::dns`]: asks `hickory-resolver` the
//! questions an RFC 3263 resolution names, and keeps each trunk's targets
//! fresh in the background, re-resolving when the shortest TTL runs out.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::api::SipCommand;
use super::dns::{Destination, Naptr, Query, Records, Resolution, Resolved, Srv, Unresolved};

/// Where to ask, and for how long.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// `None`: the system's resolvers (`/etc/resolv.conf`).
    pub nameserver: Option<SocketAddr>,
    /// One query's time limit.
    pub timeout: Duration,
    /// Re-resolve no sooner than this after an answer (a TTL of 0 must not
    /// make us ask in a loop), and this long after a failed refresh.
    pub min_refresh: Duration,
    /// Re-resolve at least this often, whatever the TTL.
    pub max_refresh: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot read the system's DNS configuration ({0}); set dns.nameserver")]
    System(String),
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// A resolver for trunk names; cheap to clone (the cache is shared).
#[derive(Clone)]
pub struct TrunkResolver {
    inner: TokioResolver,
    settings: DnsSettings,
}

impl TrunkResolver {
    pub fn new(settings: DnsSettings) -> Result<Self, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match settings.nameserver {
            Some(ns) => {
                let mut conn = ConnectionConfig::udp();
                conn.port = ns.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = ns.port();
                let server = NameServerConfig::new(ns.ip(), true, vec![conn, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                    provider,
                )
            }
            None => {
                TokioResolver::builder(provider).map_err(|e| DnsError::System(e.to_string()))?
            }
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = settings.timeout;
        opts.attempts = 1;
        let inner = builder
            .build()
            .map_err(|e| DnsError::Build(e.to_string()))?;
        Ok(TrunkResolver { inner, settings })
    }

    /// Runs one RFC 3263 resolution to the end.
    pub async fn resolve(&self, dest: &Destination) -> Result<Resolved, Unresolved> {
        let mut r = Resolution::new(dest.clone());
        // Bounded: a resolution asks at most NAPTR, two SRV per NAPTR
        // record and one A/AAAA per SRV record; this cap only guards
        // against a hostile zone with thousands of records.
        for _ in 0..64 {
            let Some(q) = r.next_query() else {
                break;
            };
            let records = self.ask(&q).await;
            r.answer(records);
        }
        r.finish()
    }

    /// One question; a failure, NXDOMAIN or no data are all "no records"
    /// to RFC 3263 (the reason is logged at debug).
    async fn ask(&self, q: &Query) -> Records {
        match q {
            Query::Naptr(name) => {
                let (list, ttl) = self
                    .lookup(name, RecordType::NAPTR, |d| match d {
                        RData::NAPTR(n) => Some(Naptr {
                            order: n.order,
                            preference: n.preference,
                            flags: String::from_utf8_lossy(&n.flags).into_owned(),
                            service: String::from_utf8_lossy(&n.services).into_owned(),
                            replacement: n.replacement.to_string(),
                        }),
                        _ => None,
                    })
                    .await;
                Records::Naptr(list, ttl)
            }
            Query::Srv(name) => {
                let (list, ttl) = self
                    .lookup(name, RecordType::SRV, |d| match d {
                        RData::SRV(s) => Some(Srv {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: s.target.to_string(),
                        }),
                        _ => None,
                    })
                    .await;
                Records::Srv(list, ttl)
            }
            Query::Addresses(name) => {
                let (mut v4, t4) = self
                    .lookup(name, RecordType::A, |d| match d {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        _ => None,
                    })
                    .await;
                let (v6, t6) = self
                    .lookup(name, RecordType::AAAA, |d| match d {
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    })
                    .await;
                let ttl = match (v4.is_empty(), v6.is_empty()) {
                    (false, false) => t4.min(t6),
                    (false, true) => t4,
                    _ => t6,
                };
                v4.extend(v6);
                Records::Addresses(v4, ttl)
            }
        }
    }

    async fn lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> (Vec<T>, u32) {
        // A trailing dot: the name is absolute, never tried with the
        // search domains of resolv.conf.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.inner.lookup(fqdn.as_str(), rtype).await {
            Ok(lookup) => {
                let mut ttl = u32::MAX;
                let mut out = Vec::new();
                for rec in lookup.answers() {
                    if let Some(v) = pick(&rec.data) {
                        ttl = ttl.min(rec.ttl);
                        out.push(v);
                    }
                }
                let ttl = if out.is_empty() { 0 } else { ttl };
                (out, ttl)
            }
            Err(e) => {
                debug!(name = %fqdn, rtype = %rtype, error = %e, "DNS lookup gave nothing");
                (Vec::new(), 0)
            }
        }
    }

    /// When to look again after an answer (or after a failure, `None`).
    pub fn refresh_after(&self, resolved: Option<&Resolved>) -> Duration {
        match resolved.and_then(|r| r.ttl) {
            Some(ttl) => ttl.clamp(self.settings.min_refresh, self.settings.max_refresh),
            None if resolved.is_some() => self.settings.max_refresh,
            None => self.settings.min_refresh,
        }
    }
}

/// What [`keep_fresh`] keeps fresh: one trunk's name, with its own
/// resolver (and cache).
pub struct Fresh {
    /// The trunk's index in priority order, as the core knows it.
    pub trunk: usize,
    /// The trunk's name, for the log.
    pub name: String,
    pub resolver: TrunkResolver,
    pub dest: Destination,
}

/// Keeps one trunk's targets in the core in step with DNS: re-resolves
/// when the TTL runs out and sends [`SipCommand::TrunkTargets`] when the
/// answer changes. A failed refresh keeps the last good targets (a DNS
/// outage must not take a working trunk down) and tries again soon.
pub async fn keep_fresh(
    fresh: Fresh,
    mut last: Option<Resolved>,
    commands: mpsc::Sender<SipCommand>,
    cancel: CancellationToken,
) {
    let Fresh {
        trunk,
        name,
        resolver,
        dest,
    } = fresh;
    loop {
        let wait = resolver.refresh_after(last.as_ref());
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match resolver.resolve(&dest).await {
            Ok(r) => {
                let changed = last.as_ref().map(|l| &l.records) != Some(&r.records);
                if changed {
                    info!(
                        trunk = %name,
                        name = %dest,
                        targets = %describe(&r),
                        "trunk DNS answer changed"
                    );
                    if commands
                        .send(SipCommand::TrunkTargets {
                            trunk,
                            records: r.records.clone(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                last = Some(r);
            }
            Err(e) if last.is_some() => {
                warn!(trunk = %name, name = %dest, error = %e, "trunk DNS refresh failed; keeping the last answer");
                // Retry soon, but keep the records: their TTL is a cache
                // hint, not a promise that the servers went away.
                if let Some(l) = last.as_mut() {
                    l.ttl = Some(Duration::ZERO);
                }
            }
            Err(e) => {
                warn!(trunk = %name, name = %dest, error = %e, "trunk still does not resolve; calls to it fail");
            }
        }
    }
}

/// "udp 127.0.0.1:5070 (priority 10, weight 60), ..." for the log.
pub fn describe(r: &Resolved) -> String {
    let mut parts = Vec::new();
    for w in &r.records {
        for t in &w.targets {
            parts.push(format!(
                "{t} (priority {}, weight {})",
                w.priority, w.weight
            ));
        }
    }
    parts.join(", ")
}
