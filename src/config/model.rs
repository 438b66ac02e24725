//! The validated, typed configuration. Every value here has passed
//! validation, so the rest of tpswitch never re-checks it; enums make the
//! wrong states (a queue flow with a menu, an odd RTP port base)
//! unrepresentable.

use super::e164::{CountryCode, E164};
use super::secret::Pin;
use crate::media::codec::Codec;
use crate::media::srtp::SrtpPolicy;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The absolute path of the file this was loaded from.
    pub source: PathBuf,
    pub sip: SipConfig,
    /// The trunk tried first: `trunks[0]`. Settings that are not yet per
    /// trunk (inbound policy of calls whose source is in no trunk's
    /// `allow`, the caller-ID policy of outbound legs) are read here.
    pub trunk: TrunkConfig,
    /// Every trunk, in the order outbound legs try them: by `priority`
    /// (lower first), then as written in the file. Never empty.
    pub trunks: Vec<TrunkConfig>,
    pub media: MediaConfig,
    pub numbering: NumberingConfig,
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub dns: DnsConfig,
    pub presence: PresenceConfig,
    /// Prompt library: name -> absolute path of the audio file.
    pub prompts: BTreeMap<String, PathBuf>,
    pub users: Vec<User>,
    pub flows: Vec<Flow>,
    pub dispatch_mappings: Vec<DispatchMapping>,
    /// `[[webhooks]]`: where events are POSTed (none: no webhooks).
    pub webhooks: Vec<WebhookConfig>,
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    pub bind: SocketAddr,
    pub advertise: Advertise,
    /// NAT (as Asterisk's PJSIP transport options of the same names): the
    /// public address and port put in Via and Contact toward peers outside
    /// `local_networks`. None: every peer is told `advertise`.
    pub external_signaling_address: Option<IpAddr>,
    /// None: the port SIP listens on.
    pub external_signaling_port: Option<u16>,
    /// The public address put in SDP c= toward peers outside
    /// `local_networks`; None: `external_signaling_address`.
    pub external_media_address: Option<IpAddr>,
    /// Peers in these networks are told the private addresses.
    pub local_networks: Vec<IpNet>,
    pub max_calls: u32,
    /// RFC 3261 §17.1.1.1 RTT estimate.
    pub t1: Duration,
    /// RFC 3261 §17.1.2.2 maximum retransmit interval for non-INVITE.
    pub t2: Duration,
    /// RFC 3261 §17.1.2.2 maximum time a message stays in the network.
    pub t4: Duration,
    pub untrusted: Untrusted,
    pub max_message_bytes: u32,
    pub max_header_bytes: u32,
    /// Inbound TCP connections from `trunk.allow` held at once; more are
    /// refused.
    pub max_tcp_connections: u32,
    /// Inbound TCP connections from sources outside `trunk.allow`: a budget
    /// of their own, so strangers can never take the trunk's slots (0: none
    /// accepted).
    pub max_untrusted_tcp_connections: u32,
    /// A TCP connection that carries no transaction or dialog and receives
    /// nothing (not even an RFC 5626 CRLF keep-alive) for this long is
    /// closed.
    pub tcp_idle_timeout: Duration,
    /// Server transactions held at once (each lingers up to 64*T1 after its
    /// answer); beyond it new requests get a stateless 503.
    pub max_transactions: u32,
    pub tcp: bool,
    pub user_agent: String,
    /// RFC 4028 Session-Expires we ask for.
    pub session_expires: Duration,
    /// RFC 4028 Min-SE we accept.
    pub min_se: Duration,
    /// Retry-After sent with 503 (RFC 3261 §20.33), whole seconds.
    pub retry_after: Duration,
    /// Ring (180) this long before answering an inbound call; 0 answers at
    /// once. Some carriers want ringback before answer supervision.
    pub answer_delay: Duration,
    /// The TLS listener (`sip.tls_bind`), when configured.
    pub tls: Option<TlsListen>,
    /// Our certificate and key (`sip.tls_certificate`, `sip.tls_private_key`):
    /// the listener's, and our client certificate toward a TLS trunk.
    pub tls_identity: Option<TlsIdentity>,
    /// A TLS handshake (either way) not done within this is abandoned.
    pub tls_handshake_timeout: Duration,
    /// The SIP message trace (off by default).
    pub trace: SipTrace,
    /// After the first SIGTERM, calls in progress may finish by themselves
    /// for this long; new INVITEs get 503. What is left then gets BYE.
    pub drain_timeout: Duration,
    /// `[sip.flood]`.
    pub flood: FloodConfig,
}

/// `[sip.flood]`: per-source request limits and bans (like Kamailio's
/// `pike`), scanner user agents, REGISTER. Reloaded live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodConfig {
    pub enabled: bool,
    pub window: Duration,
    pub ban: Duration,
    /// Requests per window per source: INVITE, OPTIONS, REGISTER, other
    /// (0: that class is not limited).
    pub limits: [u32; 4],
    pub apply_to_trunks: bool,
    pub max_sources: u32,
    /// Send a refused request a 403 (true) or nothing.
    pub refuse_403: bool,
    /// Drop REGISTER from anyone (true) or answer it 405.
    pub drop_register: bool,
    /// Lower-case substrings of User-Agent values dropped silently.
    pub scanner_user_agents: Vec<String>,
}

/// SIP over TLS (RFC 3261 §26): where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    pub bind: SocketAddr,
}

/// PEM files, resolved against the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

/// Which calls' SIP messages are logged whole (`tpswitch::sip_trace`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipTrace {
    /// `sip.trace = "all"`: every message.
    pub all: bool,
    /// `sip.trace_numbers`: every message of a call whose INVITE names one
    /// of these (Request-URI, From, To or P-Asserted-Identity).
    pub numbers: Vec<E164>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advertise {
    /// The bind address, or the outgoing interface when bound to 0.0.0.0.
    Auto,
    Ip(IpAddr),
}

/// What to do with a request from a source outside trunk.allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// Answer 403 Forbidden.
    Reject,
    /// Send nothing (scanners learn nothing).
    Drop,
}

#[derive(Debug, Clone)]
pub struct TrunkConfig {
    pub name: String,
    /// Where it is written: `trunk` or `trunks[1]` (for messages).
    pub key: String,
    pub outbound_proxy: SipTarget,
    pub allow: Vec<IpNet>,
    pub username: String,
    /// Name of the environment variable holding the digest password.
    pub password_env: String,
    pub max_outbound_calls: u32,
    pub trust_pai: bool,
    pub number_format: NumberFormat,
    pub allow_dial: Vec<DialPattern>,
    pub follow_redirects: bool,
    pub max_redirects: u32,
    pub caller_id: CallerIdMode,
    /// How far the log-in menu believes a caller ID that came through this
    /// trunk (`caller_id_trust`): the carrier's STIR/SHAKEN attestation, a
    /// PIN, or neither.
    pub caller_id_trust: CallerIdTrust,
    pub inband_dtmf: bool,
    /// In-dialog requests (ACK, BYE, re-INVITE) go to `outbound_proxy` on
    /// legs we place and to the INVITE's source on calls we receive, with
    /// the route set in Route headers, instead of the far end's Contact or
    /// first Record-Route.
    pub in_dialog_via_proxy: bool,
    /// PEM trust anchors for the trunk's TLS certificate; `None`: the
    /// system's roots.
    pub tls_ca_file: Option<PathBuf>,
    /// The name the trunk's TLS certificate must carry; `None`: the
    /// outbound proxy's host (an IP is checked against IP SANs).
    pub tls_server_name: Option<String>,
    /// OPTIONS to each target this often; `None` (the default): off.
    pub keepalive_interval: Option<Duration>,
    /// Outbound REGISTER with the trunk (`register = true`).
    pub register: Option<TrunkRegistration>,
    /// SRTP with SDES keys (RFC 4568) on this trunk's calls: off, optional or required.
    pub srtp: SrtpPolicy,
    /// This trunk's own NAT plan, over `[sip]`'s where a key is given.
    pub nat: TrunkNat,
    /// Outbound legs try trunks by priority, lower first (RFC 2782 style).
    pub priority: u32,
    /// New outbound INVITEs per second at most (a token bucket; carriers
    /// sell 1-3 CPS per trunk). None: no limit.
    pub max_cps: Option<f64>,
    /// The host of the Request-URI, separately from where the INVITE is
    /// sent (a carrier that knows its trunks by domain, such as
    /// `example.pstn.twilio.com`). None: the outbound proxy's host:port.
    pub request_uri_host: Option<String>,
    /// The host of our From URI. None: our advertised address.
    pub from_host: Option<String>,
    /// The host of the To URI. None: the Request-URI's host.
    pub to_host: Option<String>,
    /// Send P-Asserted-Identity (RFC 3325) with our From identity.
    pub pai: bool,
    /// RFC 3323 Privacy header value sent on outbound legs ("id", "none").
    pub privacy: Option<String>,
    /// Extra headers on every outbound INVITE (a carrier's token), checked
    /// to be a token name and a value without control characters.
    pub headers: Vec<(String, String)>,
    /// Prepended to the number in the Request-URI (a carrier's routing
    /// prefix), after `number_format`.
    pub prefix: String,
    /// A header naming the carrier's own source ("ip:port"), written by a
    /// proxy in front of several nodes (deploy/kamailio/front.cfg), which
    /// would otherwise be the source of every call. Believed only on
    /// requests whose real source is in `allow`; `None`: no such header.
    pub source_header: Option<String>,
}

impl TrunkConfig {
    /// SRTP with SDES keys (RFC 4568) toward a trunk reached without TLS:
    /// the keys ride in the SDP, so anyone who sees the signalling can
    /// decrypt the media (RFC 4568 §8.1 asks for secure signalling).
    pub fn srtp_keys_in_clear(&self) -> bool {
        self.srtp != SrtpPolicy::Off && self.outbound_proxy.transport != Transport::Tls
    }

    /// The Request-URI user part for `n` on this trunk.
    pub fn dial_string(&self, n: &E164, cc: &CountryCode) -> String {
        format!("{}{}", self.prefix, self.number_format.render(n, cc))
    }
}

/// A trunk's NAT keys (`external_signaling_address`, ...): what it gives
/// replaces `[sip]`'s for the legs and registrations of that trunk, as an
/// Asterisk PJSIP transport of its own would. When the trunk names an
/// external address, its external addresses are its own (the media one
/// defaulting to its signalling one); `local_networks` on its own keeps
/// `[sip]`'s external addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkNat {
    pub external_signaling_address: Option<IpAddr>,
    /// None: the port SIP listens on.
    pub external_signaling_port: Option<u16>,
    pub external_media_address: Option<IpAddr>,
    /// None: `sip.local_networks`.
    pub local_networks: Option<Vec<IpNet>>,
}

/// What a trunk registers (RFC 3261 §10): `user@domain` as the address of
/// record, `contact_user@<our address>` as the binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkRegistration {
    /// Request-URI host and AOR domain (`register_domain`; default the
    /// outbound proxy's host:port).
    pub domain: String,
    /// AOR user (`register_user`; default `username`).
    pub user: String,
    /// Our Contact's user (`register_contact_user`; default `user`).
    /// INVITEs whose Request-URI carries it are this trunk's.
    pub contact_user: String,
    /// The expiry we ask for; the registrar's grant rules.
    pub expires: Duration,
    /// First back-off after a failure, doubled per failure up to
    /// `retry_max`.
    pub retry: Duration,
    pub retry_max: Duration,
}

/// How trunk host names are resolved (RFC 3263).
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// `None`: the system's resolvers (`/etc/resolv.conf`).
    pub nameserver: Option<SocketAddr>,
    pub timeout: Duration,
    /// Start with a trunk whose name does not resolve (it stays down until
    /// it does) instead of refusing to start.
    pub start_unresolved: bool,
    pub min_refresh: Duration,
    pub max_refresh: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// `;transport=tls` or a `sips:` URI (RFC 3261 §26.2.2).
    Tls,
}

/// A SIP URI naming a next hop, e.g. "sip:127.0.0.1:5080;transport=tcp".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    pub host: Host,
    /// 5060 when the URI has no port, 5061 over TLS (RFC 3261 §19.1.2).
    pub port: u16,
    pub transport: Transport,
    /// Whether the URI wrote the port and the transport: for a host name,
    /// each skips a step of RFC 3263 §4 (NAPTR, SRV).
    pub port_given: bool,
    pub transport_given: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberFormat {
    /// "+12345678910"
    PlusE164,
    /// "12345678910"
    E164,
    /// As dialled inside numbering.default_country_code: "2345678910".
    National,
}

impl NumberFormat {
    /// The user part to dial for `n`.
    pub fn render(self, n: &E164, cc: &CountryCode) -> String {
        match self {
            NumberFormat::PlusE164 => n.as_str().to_string(),
            NumberFormat::E164 => n.digits().to_string(),
            NumberFormat::National => n.national(cc),
        }
    }
}

/// An extra number tpswitch may dial: one exact number, or every number
/// starting with a prefix (written "+4420*").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialPattern {
    Exact(E164),
    /// Digits without '+', e.g. "4420".
    Prefix(String),
}

/// True when tpswitch may place a call to `n`: a configured user's PSTN
/// number, or an `allow_dial` entry of a trunk. Nothing else is ever
/// dialled (toll fraud through a mis-routed queue must be impossible).
pub fn diallable(users: &[User], trunks: &[TrunkConfig], n: &E164) -> bool {
    users.iter().any(|u| u.pstn_numbers().any(|p| p == n))
        || trunks
            .iter()
            .any(|t| t.allow_dial.iter().any(|p| p.matches(n)))
}

impl DialPattern {
    pub fn matches(&self, n: &E164) -> bool {
        match self {
            DialPattern::Exact(e) => e == n,
            DialPattern::Prefix(p) => n.digits().starts_with(p.as_str()),
        }
    }
}

/// Which number an agent sees when a customer call is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerIdMode {
    /// The contact point (dispatch mapping number) the customer called.
    ContactPoint,
    /// The customer's number, with a Diversion header naming the contact point.
    Customer,
}

/// How far the log-in menu trusts a caller ID from a trunk. Caller ID can
/// be forged; carriers that verify the RFC 8224 Identity header pass the
/// result on as `verstat` (ATIS-1000074 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerIdTrust {
    /// The caller ID identifies the agent (the PIN is asked only when
    /// their extension has one): the behaviour before this setting.
    #[default]
    Any,
    /// A number the carrier did not attest (`TN-Validation-Passed`) must
    /// be backed by the PIN; an extension without a PIN is refused.
    Attested,
    /// The PIN is always asked; an extension without a PIN is refused.
    PinAlways,
}

impl CallerIdTrust {
    /// The keyword as the configuration and the log-in record write it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallerIdTrust::Any => "any",
            CallerIdTrust::Attested => "attested",
            CallerIdTrust::PinAlways => "pin-always",
        }
    }

    /// The keyword back (as the log-in record stores it).
    pub fn parse(s: &str) -> Option<Self> {
        [
            CallerIdTrust::Any,
            CallerIdTrust::Attested,
            CallerIdTrust::PinAlways,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where RTP sockets bind; None: the IP of `sip.bind`.
    pub bind_address: Option<IpAddr>,
    pub rtp_ports: PortRange,
    /// In order of preference; the one codec type of the program (media owns it).
    pub codecs: Vec<Codec>,
    pub dtmf_payload_type: u8,
    pub rtp_timeout: Duration,
    pub silence_between_prompts: bool,
    pub latch_window: Duration,
    pub rtcp_interval: Duration,
    pub ptime: Duration,
    /// OS threads that pace prompt RTP; sessions are spread over them. How many
    /// streams one carries depends on the machine's syscall cost: on a 2-vCPU
    /// EPYC KVM guest one thread carries 2 000 in about 65 % of a core and
    /// 3 000 in about 90 %, late at p99 (`bench/cost.sh pacing 3000`,
    /// docs/performance.md "Cost per call"); more need more threads and cores.
    pub pacing_threads: usize,
}

/// RTP ports: `start` is even (RTP on even, RTCP on the next odd port,
/// RFC 3550 §11), `start < end`, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// None unless `start` is even and `start < end`.
    pub fn new(start: u16, end: u16) -> Option<PortRange> {
        (start.is_multiple_of(2) && start < end && start > 0).then_some(PortRange { start, end })
    }
    pub fn start(&self) -> u16 {
        self.start
    }
    pub fn end(&self) -> u16 {
        self.end
    }
    /// How many RTP/RTCP port pairs fit.
    pub fn pairs(&self) -> u32 {
        let ports = u32::from(self.end) - u32::from(self.start) + 1;
        ports / 2
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            start: 20000,
            end: 29999,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NumberingConfig {
    pub default_country_code: CountryCode,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// `store.url = "postgres://…"`: the store is this PostgreSQL database
    /// instead of the SQLite file at `path` (whose folder still holds
    /// uploaded prompts).
    pub postgres: Option<PostgresConfig>,
    /// How this switch takes part in a shared (PostgreSQL) store; unused
    /// with SQLite, which one switch holds alone.
    pub cluster: ClusterConfig,
}

/// `store.node`, `store.heartbeat`, `store.claim_lease`: several switches
/// on one PostgreSQL store (docs/scaling.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's name in the shared store (claims, heartbeats, logs).
    /// Two running switches must not share it: the second refuses to start.
    pub node: String,
    /// How often the node proves it is alive and renews its claims.
    pub heartbeat: std::time::Duration,
    /// How long a claim on an agent outlives its node's last heartbeat:
    /// the bound on how long a dead or frozen node's agents stay taken.
    pub claim_lease: std::time::Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: default_node_name(),
            heartbeat: std::time::Duration::from_secs(2),
            claim_lease: std::time::Duration::from_secs(10),
        }
    }
}

/// The host's name (`/etc/hostname`, then `$HOSTNAME`), or "tpswitch".
pub fn default_node_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "tpswitch".to_owned())
}

impl StoreConfig {
    /// How messages name the store: the SQLite file, or the PostgreSQL
    /// database's label (never its password).
    pub fn name(&self) -> String {
        match &self.postgres {
            Some(pg) => pg.label.clone(),
            None => self.path.display().to_string(),
        }
    }
}

/// Where the PostgreSQL store is. The password is never part of
/// [`PostgresConfig::label`], which is what logs and errors show.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The URL as written (it may carry a password: never log it).
    pub url: String,
    /// `store.password_env`: the variable holding the password, when the
    /// URL does not carry one.
    pub password_env: Option<String>,
    /// `postgres://user@host:port/db`, without the password.
    pub label: String,
}

impl std::fmt::Debug for PostgresConfig {
    // The derived form would print the URL and with it any password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("label", &self.label)
            .field("password_env", &self.password_env)
            .finish()
    }
}

/// SQLite `PRAGMA synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Off,
    Normal,
    Full,
    Extra,
}

impl Synchronous {
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    /// The environment variable of the `admin` token (`http.token_env`,
    /// kept from before roles): it stays the one `tpswitch reload` sends.
    pub token_env: String,
    /// `[[http.tokens]]`: further tokens, each with a role.
    pub tokens: Vec<ApiToken>,
    /// A client that has not sent a whole request header by then is cut
    /// off (and an idle keep-alive connection closed).
    pub header_read_timeout: Duration,
    /// HTTP connections served at once; more are closed at accept.
    pub max_connections: u32,
}

/// What a bearer token of the HTTP API may do. Ordered: each role may do
/// everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ApiRole {
    /// Reads: agents, calls, statistics, the directory.
    Viewer,
    /// Reads, and presence actions on agents' behalf.
    Supervisor,
    /// Everything: the directory, reload.
    Admin,
}

impl ApiRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Viewer => "viewer",
            ApiRole::Supervisor => "supervisor",
            ApiRole::Admin => "admin",
        }
    }
}

impl fmt::Display for ApiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[http.tokens]]` entry: the token itself is read from the
/// environment at start, never from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Who holds it, for the logs and the presence history.
    pub name: String,
    pub role: ApiRole,
    pub token_env: String,
}

#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// How long the "your window ended" call rings the agent.
    pub expiry_notification_ring: Duration,
    /// The agents' time zone unless their profile names one: the status
    /// by phone says the window's end in it.
    pub time_zone: chrono_tz::Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub skills: Vec<String>,
    /// 4 to 8 digits.
    pub pin: Option<Pin>,
    /// Where the agent works; `None` = `presence.time_zone`.
    pub time_zone: Option<chrono_tz::Tz>,
    /// How customers reach the agent: a call per customer, or one call
    /// that stays up from the log-in (issue 14).
    pub connection: Connection,
    pub extensions: Vec<Extension>,
}

/// How the switch reaches an online agent for customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connection {
    /// A new outbound call to the agent's PSTN number for every customer.
    #[default]
    PerCall,
    /// The log-in call stays connected: customers are announced on it by a
    /// tone (and the queue's whisper) and bridged onto it; hanging it up
    /// ends the agent's window (Cisco's "nailed connection", Genesys's
    /// "persistent connection").
    NailedUp,
}

impl Connection {
    /// The keyword as the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Connection::PerCall => "per-call",
            Connection::NailedUp => "nailed-up",
        }
    }
}

impl User {
    /// The zone the agent's local times are said in.
    pub fn time_zone_or(&self, default: chrono_tz::Tz) -> chrono_tz::Tz {
        self.time_zone.unwrap_or(default)
    }

    pub fn has_skill(&self, skill: &str) -> bool {
        self.skills.iter().any(|s| s == skill)
    }
    pub fn pstn_numbers(&self) -> impl Iterator<Item = &E164> {
        self.extensions.iter().map(|e| match e {
            Extension::Pstn { value, .. } => value,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    Pstn {
        value: E164,
        /// DTMF digits sent after the line answers; "" = none.
        ext: String,
        description: String,
    },
}

// Built once at start-up and only read; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    TimedPresence(TimedPresenceFlow),
    Queue(QueueFlow),
}

impl Flow {
    pub fn name(&self) -> &str {
        match self {
            Flow::TimedPresence(f) => &f.name,
            Flow::Queue(f) => &f.name,
        }
    }
}

/// A prompt named by a flow, resolved against the `[prompts]` library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimedPresenceFlow {
    pub name: String,
    /// Hours offered on keys 1..=presets.len() (1 to 4 entries, 1..=168 h).
    pub presets: Vec<u32>,
    /// Key 9 then up to this many digits of hours: 1 or 2.
    pub custom_max_digits: u8,
    pub max_attempts: u32,
    pub digit_timeout: Duration,
    pub notify_on_expiry: bool,
    /// Call the agent this long before their window ends, offering the
    /// first preset again (`None`: no reminder).
    pub remind_before: Option<Duration>,
    pub ext_timeout: Duration,
    pub pin_attempts: u32,
    pub prompts: TimedPresencePrompts,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimedPresencePrompts {
    pub welcome: PromptRef,
    pub resource_lookup_error: PromptRef,
    pub preset_hours: PromptRef,
    pub custom_hours: PromptRef,
    pub invalid_input: PromptRef,
    pub online: PromptRef,
    pub offline: PromptRef,
    pub enter_extension: PromptRef,
    pub enter_pin: PromptRef,
    pub wrong_pin: PromptRef,
    /// Played by the notification call when `max_no_answer` missed offers
    /// set the agent not responding (issue 14).
    pub not_responding: PromptRef,
    /// Said after "online" to a nailed-up agent: stay on the line;
    /// hanging up ends the online time.
    pub stay_on_line: PromptRef,
    /// Said when the trunk's `caller_id_trust` wants a PIN the user does
    /// not have, before hanging up.
    pub caller_id_refused: PromptRef,
    /// Announces a customer on a nailed-up line, before the whisper.
    pub line_tone: PromptRef,
    /// Looped on a nailed-up line between customers; `None` = silence
    /// (RTP silence frames still flow, so carriers' media timers and NAT
    /// bindings stay up).
    pub line_hold: Option<PromptRef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueFlow {
    pub name: String,
    /// An agent needs every one of these; empty = any agent.
    pub skills: Vec<String>,
    pub strategy: Strategy,
    pub ring_timeout: Duration,
    pub accept: Accept,
    pub accept_timeout: Duration,
    pub max_wait: Duration,
    pub wrap_up: Duration,
    pub max_no_answer: u32,
    pub priority: i32,
    /// None = play `unavailable` and hang up.
    pub overflow_number: Option<E164>,
    pub no_agents: NoAgents,
    pub ext_pause: Duration,
    /// A customer answered within this wait counts toward the queue's
    /// service level (`GET /api/v1/queues/stats`); reporting only.
    pub service_level_threshold: Duration,
    pub prompts: QueuePrompts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    LongestIdle,
    RoundRobin,
    FewestCalls,
}

/// How an agent takes an offered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Bridge as soon as the agent's leg answers.
    OnAnswer,
    /// Bridge after the agent presses this DTMF key (0-9, *, #, A-D).
    Digit(char),
}

/// What a queue does when no agent with the skills is online at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAgents {
    /// Hold the caller up to max_wait in case someone logs in.
    Wait,
    /// Go to the overflow (or the unavailable prompt) at once.
    Immediate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueuePrompts {
    /// None when configured as "".
    pub greeting: Option<PromptRef>,
    pub hold: PromptRef,
    /// Played to the agent before bridging; None when configured as "".
    pub whisper: Option<PromptRef>,
    pub unavailable: PromptRef,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DispatchMapping {
    pub name: String,
    pub description: Option<String>,
    /// Only voice / contact-point mappings exist today; the config still
    /// spells them out so other kinds can be added without a format change.
    pub phone_number: E164,
    pub flow: String,
}

/// One `[[webhooks]]` entry: events of `events` kinds are POSTed to `url`,
/// signed with the secret read from `secret_env` at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// For the logs and the `webhook` label of its metrics.
    pub name: String,
    pub url: WebhookUrl,
    pub secret_env: String,
    /// Event kinds sent (`presence.online`) or whole families
    /// (`presence`); empty: every kind.
    pub events: Vec<String>,
    /// One attempt's limit, connection included.
    pub timeout: Duration,
    /// The wait before the first retry; each later one doubles.
    pub retry_initial: Duration,
    /// No wait between retries is longer.
    pub retry_max: Duration,
    /// Attempts per event, the first included, before it is given up.
    pub max_attempts: u32,
    /// Events waiting to be sent; more are dropped (and counted).
    pub max_queued: u32,
    /// PEM trust anchors for an `https://` receiver instead of the
    /// system's (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl WebhookConfig {
    /// Whether an event of `kind` (e.g. `presence.online`) goes here.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty()
            || self.events.iter().any(|k| {
                k == kind
                    || kind
                        .strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
    }
}

/// A webhook's URL, checked: `https://` to any host, `http://` only to a
/// loopback address (events name agents and callers' numbers, which must
/// not cross a network in the clear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// As written, for the logs.
    pub text: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}
