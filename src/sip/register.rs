//! Outbound registration with a trunk's registrar (RFC 3261 §10), sans-IO.
//!
//! Carriers that deliver calls to a registered contact (credential
//! connections, most ITSPs) need the switch to REGISTER and keep the binding
//! fresh. This machine decides when to send which REGISTER and what each
//! answer means; the SIP core carries the requests in non-INVITE client
//! transactions and feeds back the final responses and time-outs.
//!
//! - It refreshes before the binding expires, honouring what the registrar
//!   granted (the `expires` of our Contact in the 2xx, else its Expires
//!   header, §10.2.4), not what we asked for.
//! - 423 Interval Too Brief: asks again with the Min-Expires (§10.2.8).
//! - 401/407: answers the digest challenge (RFC 8760 algorithms, through
//!   `sip::digest`) once per challenge; refreshes reuse the last challenge
//!   with the next nonce count so a steady registration costs one round
//!   trip, and a registrar that wants a new nonce just challenges again.
//! - Any other failure, a time-out or a transport error: retries after a
//!   bounded exponential back-off with jitter (the scheme of RFC 5626 §4.5:
//!   base · 2^failures, capped, then a random 50–100 % of that).
//! - Shutdown: Expires: 0 for our contact (§10.2.2), then done.
//!
//! `handle` takes events and `now`, `poll_action` gives what to send or
//! report, `deadline` says when to call `handle(Event::Timer)`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::core::Credentials;
use super::digest::{self, Challenge};
use super::message::{self, header_uri, MAGIC_COOKIE};
use super::name_addr::NameAddr;

/// What one trunk registers, and how.
#[derive(Debug, Clone)]
pub struct RegisterConfig {
    /// The trunk's name, for the log and `/metrics`.
    pub trunk: String,
    /// Request-URI: the registrar's domain, no user (§10.2 "Request-URI").
    pub registrar: String,
    /// Address of record, in To and From (§10.2 "To", "From").
    pub aor: String,
    /// The user part of our Contact: inbound INVITEs whose Request-URI
    /// carries it arrived on this registration.
    pub contact_user: String,
    /// host:port of our Contact and Via sent-by.
    pub hostport: String,
    /// Over TCP (Via and Contact say so, §18.1.1, §19.1.1 `transport`).
    pub tcp: bool,
    /// What we ask for (seconds).
    pub expires: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub credentials: Option<Credentials>,
    pub user_agent: String,
}

impl RegisterConfig {
    /// Our Contact as written in the REGISTER.
    pub fn contact_uri(&self) -> String {
        let transport = if self.tcp { ";transport=tcp" } else { "" };
        format!("sip:{}@{}{transport}", self.contact_user, self.hostport)
    }
}

/// Where a registration stands, in words for the log and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A REGISTER is out and no binding is confirmed yet.
    Registering,
    /// The registrar holds our binding.
    Registered,
    /// The last attempt failed; the next one is scheduled.
    Failed,
    /// The Expires: 0 REGISTER is out (shutting down).
    Unregistering,
    /// Unregistered, or gave up at shutdown: nothing more to do.
    Stopped,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Registering,
        State::Registered,
        State::Failed,
        State::Unregistering,
        State::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Registering => "registering",
            State::Registered => "registered",
            State::Failed => "failed",
            State::Unregistering => "unregistering",
            State::Stopped => "stopped",
        }
    }
}

/// A final response to one of our REGISTERs, as the core read it.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub cseq: u32,
    /// Every Contact header value (each may hold a list).
    pub contacts: Vec<String>,
    pub expires: Option<String>,
    pub min_expires: Option<String>,
    /// WWW-Authenticate (401) or Proxy-Authenticate (407) values. The core
    /// leaves them out when the challenge did not come from the trunk.
    pub challenges: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Event {
    Timer,
    Response(Reply),
    /// No final response: timer F fired, or the transport failed.
    Timeout,
    /// Unregister and stop.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this REGISTER (asking for `expires` seconds) to the trunk in a
    /// new client transaction keyed by `branch`.
    Send {
        branch: String,
        expires: u32,
        data: Vec<u8>,
    },
    /// The registrar holds our binding for `expires` seconds.
    Registered { expires: u32 },
    /// An attempt failed (`status` is `None` for a time-out); the next one
    /// goes out after `retry_in`.
    Failed {
        status: Option<u16>,
        retry_in: Duration,
    },
    /// Our binding is removed (or was never there); nothing more will be
    /// sent.
    Stopped,
}

/// The challenge answered last, reused for refreshes.
#[derive(Debug, Clone)]
struct Auth {
    challenge: Challenge,
    proxy: bool,
    nc: u32,
}

#[derive(Debug, Clone)]
struct InFlight {
    cseq: u32,
    expires: u32,
    /// This request answered a challenge received for the previous one; a
    /// second challenge in a row (not `stale`) means wrong credentials.
    answered_challenge: bool,
}

pub struct Registration {
    cfg: RegisterConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    rng: u64,
    state: State,
    in_flight: Option<InFlight>,
    auth: Option<Auth>,
    /// The expiry we ask for next (raised by a 423).
    ask: u32,
    timer: Option<Instant>,
    expires_at: Option<Instant>,
    failures: u32,
    stopping: bool,
    out: VecDeque<Action>,
    /// Successful registrations and refreshes, for `/metrics`.
    pub registered_total: u64,
    /// Failed attempts, for `/metrics`.
    pub failures_total: u64,
}

/// Smallest back-off, whatever the configuration says: a registrar that
/// answers every REGISTER at once with a failure must not be flooded.
const MIN_RETRY: Duration = Duration::from_secs(1);

impl Registration {
    /// A registration that sends its first REGISTER at `now` (the first
    /// `deadline`). `seed` makes Call-ID, tag, branches and jitter unique.
    pub fn new(cfg: RegisterConfig, seed: u64, now: Instant) -> Self {
        let mut rng = seed | 1;
        let call_id = format!("{:016x}-reg@tpswitch", splitmix(&mut rng));
        let from_tag = format!("{:012x}", splitmix(&mut rng) >> 16);
        let ask = cfg.expires;
        Self {
            cfg,
            call_id,
            from_tag,
            // §10.2: one Call-ID for all registrations of this UA to this
            // registrar, CSeq incremented by one each time.
            cseq: 0,
            rng,
            state: State::Registering,
            in_flight: None,
            auth: None,
            ask,
            timer: Some(now),
            expires_at: None,
            failures: 0,
            stopping: false,
            out: VecDeque::new(),
            registered_total: 0,
            failures_total: 0,
        }
    }

    pub fn config(&self) -> &RegisterConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the binding the registrar granted runs out.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.timer
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Timer => {
                if self.timer.is_some_and(|t| t <= now) {
                    self.timer = None;
                    if self.in_flight.is_none() && !self.stopping {
                        self.send(self.ask, now);
                    }
                }
            }
            Event::Response(reply) => self.on_reply(reply, now),
            Event::Timeout => {
                if self.in_flight.take().is_some() {
                    if self.stopping {
                        self.stop();
                    } else {
                        self.fail(None, now);
                    }
                }
            }
            Event::Shutdown => {
                if self.stopping {
                    return;
                }
                self.stopping = true;
                self.timer = None;
                // Only a binding that may exist needs removing; an attempt
                // still out may have created one, so remove that too.
                if self.expires_at.is_some_and(|t| t > now) || self.in_flight.is_some() {
                    self.in_flight = None;
                    self.state = State::Unregistering;
                    self.send(0, now);
                } else {
                    self.stop();
                }
            }
        }
    }

    fn stop(&mut self) {
        self.state = State::Stopped;
        self.timer = None;
        self.in_flight = None;
        self.expires_at = None;
        self.out.push_back(Action::Stopped);
    }

    fn on_reply(&mut self, reply: Reply, now: Instant) {
        // Only the answer to the REGISTER now out counts: a late answer to
        // an earlier one (a retransmission raced a refresh) says nothing
        // about the current binding.
        let Some(sent) = self.in_flight.take_if(|f| f.cseq == reply.cseq) else {
            return;
        };
        match reply.status {
            200..=299 if self.stopping => self.stop(),
            200..=299 => self.registered(&reply, sent.expires, now),
            401 | 407 => self.challenged(&reply, &sent, now),
            // §10.2.8: ask again with at least Min-Expires.
            423 if !self.stopping => {
                match reply
                    .min_expires
                    .as_deref()
                    .and_then(|v| v.trim().parse::<u32>().ok())
                {
                    Some(min) if min > sent.expires => {
                        self.ask = min;
                        self.send(min, now);
                    }
                    _ => self.fail(Some(423), now),
                }
            }
            status if self.stopping => {
                let _ = status;
                self.stop();
            }
            status => self.fail(Some(status), now),
        }
    }

    fn registered(&mut self, reply: &Reply, asked: u32, now: Instant) {
        let ours = self.cfg.contact_uri();
        // §10.2.4: the 2xx lists every binding of the AOR; ours carries the
        // expiry granted to us. Else the Expires header, else what we asked.
        let granted = reply
            .contacts
            .iter()
            .flat_map(|v| message::split_list(v))
            .map(NameAddr::read)
            .find(|c| same_contact(c.uri, &ours))
            .and_then(|c| c.param("expires"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .or_else(|| {
                reply
                    .expires
                    .as_deref()
                    .and_then(|v| v.trim().parse::<u32>().ok())
            })
            .unwrap_or(asked);
        if granted == 0 {
            // A registrar that keeps nothing: treat as a failure and retry.
            self.fail(Some(reply.status), now);
            return;
        }
        self.failures = 0;
        self.registered_total += 1;
        self.state = State::Registered;
        self.expires_at = Some(now + Duration::from_secs(u64::from(granted)));
        self.timer = Some(now + refresh_after(granted));
        self.out.push_back(Action::Registered { expires: granted });
    }

    fn challenged(&mut self, reply: &Reply, sent: &InFlight, now: Instant) {
        let challenges = digest::parse_all(reply.challenges.iter().map(String::as_str));
        let Some(ch) = digest::pick(&challenges).cloned() else {
            return self.give_up_or_fail(reply.status, now);
        };
        // Answer once; again only when the registrar says the nonce was
        // merely stale (RFC 7616 §3.3), never in a loop with a wrong
        // password.
        if sent.answered_challenge && !ch.stale {
            return self.give_up_or_fail(reply.status, now);
        }
        if self.cfg.credentials.is_none() {
            return self.give_up_or_fail(reply.status, now);
        }
        self.auth = Some(Auth {
            challenge: ch,
            proxy: reply.status == 407,
            nc: 0,
        });
        self.send_inner(sent.expires, true, now);
    }

    fn give_up_or_fail(&mut self, status: u16, now: Instant) {
        self.auth = None;
        if self.stopping {
            self.stop();
        } else {
            self.fail(Some(status), now);
        }
    }

    fn fail(&mut self, status: Option<u16>, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.failures_total += 1;
        // A binding that has not run out yet is still there.
        if self.expires_at.is_none_or(|t| t <= now) {
            self.state = State::Failed;
            self.expires_at = None;
        }
        let retry_in = self.backoff();
        self.timer = Some(now + retry_in);
        self.out.push_back(Action::Failed { status, retry_in });
    }

    /// RFC 5626 §4.5's shape: min(max, base · 2^(failures-1)), then a
    /// random 50–100 % of it so many switches behind one registrar do not
    /// retry in step.
    fn backoff(&mut self) -> Duration {
        let base = self.cfg.retry_base.max(MIN_RETRY);
        let max = self.cfg.retry_max.max(base);
        let shift = self.failures.saturating_sub(1).min(20);
        let full = base.saturating_mul(1u32 << shift).min(max);
        let frac = 0.5 + (splitmix(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        // Whole milliseconds: the log shows them and the tests compare them.
        let ms = u64::try_from(full.mul_f64(frac).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(ms).max(MIN_RETRY)
    }

    fn send(&mut self, expires: u32, now: Instant) {
        self.send_inner(expires, false, now);
    }

    fn send_inner(&mut self, expires: u32, answered_challenge: bool, _now: Instant) {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        if self.state != State::Registered && self.state != State::Unregistering {
            self.state = State::Registering;
        }
        let branch = format!("{MAGIC_COOKIE}-tr{:016x}", splitmix(&mut self.rng));
        let authorization = self.authorization();
        let data = self.render(&branch, expires, authorization.as_ref());
        self.in_flight = Some(InFlight {
            cseq: self.cseq,
            expires,
            answered_challenge,
        });
        self.out.push_back(Action::Send {
            branch,
            expires,
            data,
        });
    }

    /// The Authorization / Proxy-Authorization for the next request, from
    /// the last challenge with the next nonce count (RFC 7616 §3.4).
    fn authorization(&mut self) -> Option<(&'static str, String)> {
        let creds = self.cfg.credentials.clone()?;
        let cnonce = format!(
            "{:016x}{:016x}",
            splitmix(&mut self.rng),
            splitmix(&mut self.rng)
        );
        let auth = self.auth.as_mut()?;
        auth.nc = auth.nc.saturating_add(1);
        let value = digest::authorize(
            &auth.challenge,
            "REGISTER",
            &self.cfg.registrar,
            &creds.username,
            &creds.password,
            &cnonce,
            auth.nc,
        );
        let name = if auth.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        Some((name, value))
    }

    fn render(&self, branch: &str, expires: u32, auth: Option<&(&str, String)>) -> Vec<u8> {
        let c = &self.cfg;
        let transport = if c.tcp { "TCP" } else { "UDP" };
        let mut s = String::with_capacity(640);
        let _ = write!(
            s,
            "REGISTER {} SIP/2.0\r\nVia: SIP/2.0/{transport} {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <{}>;tag={}\r\nTo: <{}>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\nContact: <{}>;expires={expires}\r\nExpires: {expires}\r\nAllow: {}\r\nUser-Agent: {}\r\n",
            c.registrar,
            c.hostport,
            c.aor,
            self.from_tag,
            c.aor,
            self.call_id,
            self.cseq,
            c.contact_uri(),
            message::ALLOW,
            c.user_agent,
        );
        if let Some((name, value)) = auth {
            let _ = write!(s, "{name}: {value}\r\n");
        }
        message::finish(s, &[], None)
    }
}

/// When to refresh a binding granted for `granted` seconds: halfway for
/// grants up to 20 minutes, ten minutes before the end for longer ones
/// (the margin RFC 5626 §4.4.1 asks of flow refreshes). Either way there is
/// room for a challenge round trip, retransmissions and one back-off
/// before the binding lapses.
pub fn refresh_after(granted: u32) -> Duration {
    let g = u64::from(granted) * 1000;
    let ms = if g > 1_200_000 { g - 600_000 } else { g / 2 };
    Duration::from_millis(ms.max(500))
}

/// Whether a Contact URI from the registrar names our binding: same user,
/// host and port (§10.2.4 compares URIs by §19.1.4 rules; the registrar
/// may add or reorder parameters, so those are not compared).
fn same_contact(theirs: &str, ours: &str) -> bool {
    fn key(u: &str) -> String {
        let u = header_uri(u);
        let u = u.split(';').next().unwrap_or(u);
        u.to_ascii_lowercase()
    }
    key(theirs) == key(ours)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
