//! File descriptors: the soft `RLIMIT_NOFILE` is raised to the hard limit at
//! start, and inbound SIP TCP gets only what is left once media, HTTP and a
//! fixed reserve are counted, so no TCP peer can starve RTP sockets (log-ins
//! answered 503) or the HTTP API.

use tracing::{info, warn};

use crate::config::Config;

/// Descriptors kept for everything that is neither SIP TCP, RTP nor an HTTP
/// connection: stdin/out/err, the SIP UDP socket and TCP listener, the HTTP
/// listener, epoll and tokio's wakers, the SQLite pool (database, WAL and
/// shared-memory file per pooled connection), prompt files read at start,
/// our own TCP connection to the trunk, and slack for the runtime.
const RESERVE: u64 = 64;

/// However tight the limit, the trunk keeps this many TCP slots: with none
/// at all a TCP trunk could never reach us.
const MIN_TRUSTED_TCP: u64 = 16;

/// How the descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft `RLIMIT_NOFILE` we run with.
    pub limit: u64,
    /// Descriptors media may need at once.
    pub media: u64,
    /// Inbound TCP slots for `trunk.allow` and for everyone else.
    pub tcp_trusted: usize,
    pub tcp_untrusted: usize,
}

/// Linux refuses an unlimited RLIMIT_NOFILE (above `fs.nr_open`); this is
/// that sysctl's default.
const NR_OPEN: u64 = 1 << 20;

/// Raises the soft limit to the hard one (best effort) and returns the soft
/// limit now in force.
pub fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let target = now.maximum.unwrap_or(NR_OPEN);
    if now.current.is_some_and(|c| c < target) {
        let raised = Rlimit {
            current: Some(target),
            maximum: now.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            warn!(error = %e, target, "cannot raise the open-file limit to its hard limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(NR_OPEN)
}

/// The arithmetic, from the configuration and the limit:
///
/// ```text
/// media = min(RTP ports in media.rtp_ports,
///             2 * (sip.max_calls + every trunk's max_calls))
///         (one RTP and one RTCP socket per call leg; no more legs than
///          those two caps allow, no more sockets than ports)
/// room  = limit - RESERVE - media - http.max_connections
/// trusted   = min(sip.max_tcp_connections, max(room, MIN_TRUSTED_TCP))
/// untrusted = min(sip.max_untrusted_tcp_connections, room - trusted)
/// ```
///
/// (subtractions saturate at 0). Strangers are served last: they get only
/// what the trunk's share leaves.
pub fn budget(cfg: &Config, limit: u64) -> FdBudget {
    let ports = u64::from(cfg.media.rtp_ports.pairs()) * 2;
    let outbound: u64 = cfg
        .trunks
        .iter()
        .map(|t| u64::from(t.max_outbound_calls))
        .sum();
    let legs = u64::from(cfg.sip.max_calls).saturating_add(outbound);
    let media = ports.min(legs.saturating_mul(2));
    let room = limit
        .saturating_sub(RESERVE)
        .saturating_sub(media)
        .saturating_sub(u64::from(cfg.http.max_connections));
    let trusted = u64::from(cfg.sip.max_tcp_connections).min(room.max(MIN_TRUSTED_TCP));
    let untrusted =
        u64::from(cfg.sip.max_untrusted_tcp_connections).min(room.saturating_sub(trusted));
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    FdBudget {
        limit,
        media,
        tcp_trusted: to_usize(trusted),
        tcp_untrusted: to_usize(untrusted),
    }
}

/// Raises the limit, works out the budget and says so in the log.
pub fn plan(cfg: &Config) -> FdBudget {
    let limit = raise_nofile_limit();
    let b = budget(cfg, limit);
    info!(
        open_files = b.limit,
        media = b.media,
        http = cfg.http.max_connections,
        reserve = RESERVE,
        tcp_trusted = b.tcp_trusted,
        tcp_untrusted = b.tcp_untrusted,
        "file descriptor budget"
    );
    if b.tcp_trusted < cfg.sip.max_tcp_connections as usize
        || b.tcp_untrusted < cfg.sip.max_untrusted_tcp_connections as usize
    {
        warn!(
            open_files = b.limit,
            tcp_trusted = b.tcp_trusted,
            tcp_untrusted = b.tcp_untrusted,
            "the open-file limit cannot hold sip.max_tcp_connections and \
             sip.max_untrusted_tcp_connections beside media and HTTP; TCP slots lowered \
             (raise the hard limit, e.g. LimitNOFILE= in the systemd unit, or lower \
             sip.max_calls or media.rtp_ports)"
        );
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortRange;

    fn cfg(edit: impl FnOnce(&mut Config)) -> Config {
        let mut c = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
        edit(&mut c);
        c
    }

    #[test]
    fn a_large_limit_gives_tcp_what_it_asks_for() {
        let c = cfg(|_| {});
        let b = budget(&c, 1 << 20);
        // 2 * (2000 calls + 100 outbound) legs' sockets, fewer than 10 000 ports.
        assert_eq!(b.media, 4200);
        assert_eq!((b.tcp_trusted, b.tcp_untrusted), (1024, 8));
    }

    #[test]
    fn a_tight_limit_keeps_media_and_http_whole() {
        // 1 024 descriptors, 200 RTP ports, 64 HTTP: 1024 - 64 - 200 - 64 = 696.
        let c = cfg(|c| {
            c.media.rtp_ports = PortRange::new(20000, 20199).unwrap_or_default();
        });
        assert_eq!(c.media.rtp_ports.pairs(), 100);
        let b = budget(&c, 1024);
        assert_eq!(b.media, 200);
        assert_eq!((b.tcp_trusted, b.tcp_untrusted), (696, 0));
        // Strangers get only what the trunk leaves.
        let c = cfg(|c| {
            c.media.rtp_ports = PortRange::new(20000, 20199).unwrap_or_default();
            c.sip.max_tcp_connections = 690;
        });
        assert_eq!(budget(&c, 1024).tcp_untrusted, 6);
    }

    #[test]
    fn the_trunk_keeps_a_floor_when_nothing_is_left() {
        let b = budget(&cfg(|_| {}), 1024);
        assert_eq!((b.tcp_trusted, b.tcp_untrusted), (16, 0));
    }
}
