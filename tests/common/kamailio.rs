//! Kamailio for the interop tests, as a carrier's edge
//! (deploy/kamailio/carrier-edge.cfg, [`Kamailio`]) or as the front of
//! several nodes (deploy/kamailio/front.cfg, [`Front`]): the shipped file
//! unchanged beside a local file of the test's site values, started in the
//! foreground on loopback ports of its own, with its control socket in the
//! test's temp dir, stopped by PID on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{await_some, free_udp_port, repo};

pub const KAMAILIO: &str = "/usr/sbin/kamailio";
pub const KAMCMD: &str = "/usr/sbin/kamcmd";

/// What the edge is told about its site (edge-local.cfg).
pub struct EdgeSite {
    /// Where calls from the switch to phone numbers go, e.g.
    /// "sip:127.0.0.1:5090" (add ";transport=tcp" for TCP).
    pub pstn_gw: String,
    pub user: String,
    pub password: String,
    /// Shortest registration granted; shorter asks get 423.
    pub min_expires: u32,
}

pub struct Kamailio {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The socket facing tpswitch (UDP and TCP).
    pub core_port: u16,
    /// The socket facing the PSTN (UDP and TCP).
    pub pstn_port: u16,
}

impl Kamailio {
    pub fn start(site: &EdgeSite) -> Kamailio {
        let core_port = free_udp_port();
        let mut pstn_port = free_udp_port();
        while pstn_port == core_port {
            pstn_port = free_udp_port();
        }
        Self::launch(
            "carrier-edge.cfg",
            "edge-local.cfg",
            core_port,
            pstn_port,
            |ctl| {
                format!(
                    "listen=udp:127.0.0.1:{core_port} name \"core\"\n\
                     listen=tcp:127.0.0.1:{core_port} name \"core_tcp\"\n\
                     listen=udp:127.0.0.1:{pstn_port} name \"pstn\"\n\
                     listen=tcp:127.0.0.1:{pstn_port} name \"pstn_tcp\"\n\
                     #!define EDGE_PSTN_GW \"{}\"\n\
                     #!define EDGE_USER \"{}\"\n\
                     #!define EDGE_PASSWORD \"{}\"\n\
                     #!define EDGE_MIN_EXPIRES {}\n\
                     #!define EDGE_CTL \"unix:{}\"\n",
                    site.pstn_gw,
                    site.user,
                    site.password,
                    site.min_expires,
                    ctl.display()
                )
            },
        )
    }

    /// Runs deploy/kamailio/`cfg`, unchanged, beside a `local` file of this
    /// test's site values (written by `local_text` given the control
    /// socket's path), and waits until its control socket answers.
    fn launch(
        cfg: &str,
        local: &str,
        core_port: u16,
        pstn_port: u16,
        local_text: impl FnOnce(&std::path::Path) -> String,
    ) -> Kamailio {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(
            repo().join("deploy/kamailio").join(cfg),
            dir.path().join(cfg),
        )
        .unwrap_or_else(|e| panic!("copy {cfg}: {e}"));
        let ctl = dir.path().join("kamailio.ctl");
        std::fs::write(dir.path().join(local), local_text(&ctl))
            .unwrap_or_else(|e| panic!("write {local}: {e}"));
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("runtime dir");
        let log = std::fs::File::create(dir.path().join("kamailio.log")).expect("log file");
        let child = Command::new(KAMAILIO)
            .arg("-f")
            .arg(dir.path().join(cfg))
            // Foreground, logging to stderr; small shared memory.
            .args(["-DD", "-E", "-m", "32", "-M", "4"])
            .arg("-Y")
            .arg(&run)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kamailio (apt-get install kamailio)");
        let mut k = Kamailio {
            child: Some(child),
            dir,
            core_port,
            pstn_port,
        };
        // Ready once its control socket answers.
        await_some(
            "kamailio to answer on its control socket",
            Duration::from_secs(15),
            || {
                if let Some(Ok(Some(status))) = k.child.as_mut().map(Child::try_wait) {
                    panic!("kamailio exited: {status}\n{}", k.log());
                }
                k.rpc(&["core.uptime"]).map(|_| ())
            },
        );
        k
    }

    fn ctl(&self) -> PathBuf {
        self.dir.path().join("kamailio.ctl")
    }

    /// Runs a kamcmd RPC; `None` when it fails.
    pub fn rpc(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(KAMCMD)
            .arg("-s")
            .arg(format!("unix:{}", self.ctl().display()))
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The location table (`kamcmd ul.dump`).
    pub fn ul_dump(&self) -> String {
        self.rpc(&["ul.dump"]).unwrap_or_default()
    }

    /// The binding of `contact` in the location table: its CSeq and its
    /// Expires (seconds left), or `None` when there is none.
    pub fn binding(&self, contact: &str) -> Option<(u32, i64)> {
        let dump = self.ul_dump();
        let at = dump.find(&format!("Address: {contact}"))?;
        let rest = &dump[at..];
        let field = |name: &str| {
            rest.lines()
                .find_map(|l| l.trim().strip_prefix(name)?.trim().parse::<i64>().ok())
        };
        Some((u32::try_from(field("CSeq:")?).ok()?, field("Expires:")?))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM lets the main process stop its children; SIGKILL only
            // if it does not go within 5 s.
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the front (deploy/kamailio/front.cfg) is told about its site
/// (front-local.cfg and the dispatcher list).
pub struct FrontSite {
    /// Its socket facing the carrier (UDP and TCP).
    pub carrier_port: u16,
    /// Its socket facing the nodes (UDP and TCP): the nodes'
    /// `outbound_proxy`.
    pub nodes_port: u16,
    /// Where the nodes' own calls go, e.g. "sip:127.0.0.1:5090".
    pub carrier: String,
    /// The nodes' SIP addresses, with their names.
    pub nodes: Vec<(String, std::net::SocketAddr)>,
    /// Seconds between OPTIONS probes of each node.
    pub ping_interval: u32,
    /// Milliseconds a node may stay silent before the next one is tried.
    pub no_answer_ms: u32,
    /// Reach the nodes over TCP (";transport=tcp" on their URIs).
    pub tcp: bool,
}

/// Kamailio as the front of several nodes.
pub struct Front {
    pub k: Kamailio,
    pub carrier_port: u16,
    pub nodes_port: u16,
}

impl Front {
    pub fn start(site: &FrontSite) -> Front {
        let (carrier_port, nodes_port) = (site.carrier_port, site.nodes_port);
        let list = site
            .nodes
            .iter()
            .map(|(name, addr)| {
                let t = if site.tcp { ";transport=tcp" } else { "" };
                format!("1 sip:{addr}{t} 8 0 name={name}\n")
            })
            .collect::<String>();
        let k = Kamailio::launch(
            "front.cfg",
            "front-local.cfg",
            nodes_port,
            carrier_port,
            |ctl| {
                let dir = ctl.parent().expect("the test's folder");
                let list_file = dir.join("nodes.list");
                std::fs::write(&list_file, &list).expect("write the dispatcher list");
                format!(
                    "listen=udp:127.0.0.1:{carrier_port} name \"carrier\"\n\
                 listen=tcp:127.0.0.1:{carrier_port} name \"carrier_tcp\"\n\
                 listen=udp:127.0.0.1:{nodes_port} name \"nodes\"\n\
                 listen=tcp:127.0.0.1:{nodes_port} name \"nodes_tcp\"\n\
                 #!define FRONT_CARRIER \"{}\"\n\
                 #!define FRONT_DISPATCHER_LIST \"{}\"\n\
                 #!define FRONT_PING_INTERVAL {}\n\
                 #!define FRONT_NO_ANSWER_MS {}\n\
                 #!define FRONT_CTL \"unix:{}\"\n",
                    site.carrier,
                    list_file.display(),
                    site.ping_interval,
                    site.no_answer_ms,
                    ctl.display()
                )
            },
        );
        Front {
            k,
            carrier_port,
            nodes_port,
        }
    }

    /// The carrier-facing socket, where customers and agents call.
    pub fn carrier_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.carrier_port))
    }

    /// `kamcmd dispatcher.list`: each node's URI and flags (AP active and
    /// probing, IP inactive and probing, ...).
    pub fn ds_list(&self) -> String {
        self.k.rpc(&["dispatcher.list"]).unwrap_or_default()
    }

    /// The flags of `node` in `dispatcher.list`, e.g. "AP".
    pub fn ds_flags(&self, node: std::net::SocketAddr) -> Option<String> {
        let list = self.ds_list();
        let uri = format!("URI: sip:{node}");
        let at = list.find(&uri)?;
        list[at..]
            .lines()
            .find_map(|l| l.trim().strip_prefix("FLAGS:").map(|f| f.trim().to_owned()))
    }

    pub fn log(&self) -> String {
        self.k.log()
    }
}
