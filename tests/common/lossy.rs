//! A lossy network path between SIPp and the switch, for SIP and RTP: a UDP
//! relay in the test process that drops, reorders and duplicates datagrams
//! with a seeded pseudo-random generator.
//!
//! SIPp sends its requests to [`LossyPath::sip`]; the relay forwards them to
//! the switch from a socket of its own and rewrites the addresses in the
//! message (Via, Contact, From, To, Request-URI) so that the switch answers
//! and calls back through the relay, as a NAT's SIP helper would. SDP bodies
//! get their `m=audio` port replaced by a per-call relay port on each side,
//! so RTP goes through the relay both ways too (RFC 4566 §5.14: the port in
//! `m=` is where the peer must send).
//!
//! Impairment is decided per datagram, per socket, from a generator seeded by
//! the path's seed and the socket's number: the same seed makes the same
//! decisions for the same sequence of datagrams. (Which datagram comes first
//! between two sockets still depends on scheduling, so a run is repeatable in
//! its rates, not bit for bit.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

/// What the path does to each datagram.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    /// Fraction of datagrams dropped (0.05 = 5 %).
    pub loss: f64,
    /// Fraction of the datagrams kept that are sent twice.
    pub duplicate: f64,
    /// Fraction of the datagram copies held back by a delay in `delay`, so
    /// that datagrams sent after them overtake them.
    pub reorder: f64,
    /// Range of that delay.
    pub delay: (Duration, Duration),
    pub seed: u64,
}

impl Impairment {
    /// Issue 12's figures: 5 % loss, 1 % duplication, 5 % of datagrams
    /// held back 10-40 ms (two RTP packet times at 20 ms: they arrive after
    /// one or two that were sent later).
    pub fn issue_12(seed: u64) -> Self {
        Impairment {
            loss: 0.05,
            duplicate: 0.01,
            reorder: 0.05,
            delay: (Duration::from_millis(10), Duration::from_millis(40)),
            seed,
        }
    }

    /// A path that changes nothing (for targeted drops only).
    pub fn clean(seed: u64) -> Self {
        Impairment {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: (Duration::ZERO, Duration::ZERO),
            seed,
        }
    }
}

/// SplitMix64: tiny, seedable, good enough to pick drops.
struct Prng(u64);

/// SplitMix64's output function: a full 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Prng {
    /// Each stream's start is mixed from the seed and its number: states
    /// that differed only by a multiple of the step would give one
    /// sequence shifted, the same drops on every call.
    fn new(seed: u64, stream: u64) -> Self {
        Prng(mix(seed ^ mix(stream.wrapping_add(0x9E37_79B9_7F4A_7C15))))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Which way a datagram travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ToSwitch,
    ToSipp,
}

/// One SIP message the relay received, before impairment.
#[derive(Clone, Debug)]
pub struct SipSeen {
    pub at: Instant,
    pub dir: Dir,
    /// Request method, or the status code as text for a response.
    pub what: String,
    pub call_id: String,
    /// The CSeq method (INVITE, ACK, BYE, ...).
    pub cseq_method: String,
    /// Copies sent on (0 = dropped, 2 = duplicated).
    pub copies: u8,
}

/// Counters per kind of datagram.
#[derive(Default, Debug)]
pub struct Counts {
    pub sip_in: AtomicU64,
    pub sip_dropped: AtomicU64,
    pub sip_duplicated: AtomicU64,
    pub sip_delayed: AtomicU64,
    pub rtp_in: AtomicU64,
    pub rtp_dropped: AtomicU64,
    pub rtp_duplicated: AtomicU64,
    pub rtp_delayed: AtomicU64,
}

/// Per call: RTP datagrams the relay got from each side, and how many of
/// SIPp's were telephone-events (payload type 101).
#[derive(Default, Debug)]
pub struct CallMedia {
    pub from_switch: AtomicU64,
    pub from_sipp: AtomicU64,
    pub from_sipp_events: AtomicU64,
    /// Senders other than the one the SDP names (stale or stray RTP).
    pub from_elsewhere: AtomicU64,
    /// The switch's BYE for the call has reached the relay.
    pub switch_said_bye: std::sync::atomic::AtomicBool,
    /// RTP from the switch after its BYE (RFC 3261 §15.1.1: none but
    /// what was already in flight).
    pub from_switch_after_bye: AtomicU64,
}

type MediaMap = Arc<Mutex<HashMap<String, Arc<CallMedia>>>>;

/// A targeted rule consulted before the random impairment: return true to
/// drop the SIP message (e.g. "every ACK of this call").
pub type SipRule = Box<dyn FnMut(Dir, &SipSeen) -> bool + Send>;

/// The running relay; stops when dropped.
pub struct LossyPath {
    /// Where SIPp sends its requests.
    pub sip: SocketAddr,
    seen: Arc<Mutex<Vec<SipSeen>>>,
    pub counts: Arc<Counts>,
    media: MediaMap,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LossyPath {
    /// Starts a relay in front of the switch at `switch` for one SIPp
    /// bound to `sipp_port` on 127.0.0.1.
    pub fn start(
        switch: SocketAddr,
        sipp_port: u16,
        imp: Impairment,
        rule: Option<SipRule>,
    ) -> Self {
        let std_a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind relay SIP socket");
        let std_b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind relay SIP socket");
        std_a.set_nonblocking(true).expect("nonblocking");
        std_b.set_nonblocking(true).expect("nonblocking");
        let sip = std_a.local_addr().expect("relay address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counts = Arc::new(Counts::default());
        let media: MediaMap = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (seen2, counts2, media2) = (seen.clone(), counts.clone(), media.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("relay runtime");
            rt.block_on(async move {
                let a = Arc::new(UdpSocket::from_std(std_a).expect("tokio socket"));
                let b = Arc::new(UdpSocket::from_std(std_b).expect("tokio socket"));
                let relay = SipRelay {
                    sipp: SocketAddr::from(([127, 0, 0, 1], sipp_port)),
                    switch,
                    a,
                    b,
                    imp,
                    rng_a: Prng::new(imp.seed, 1),
                    rng_b: Prng::new(imp.seed, 2),
                    rule,
                    seen: seen2,
                    counts: counts2,
                    calls: HashMap::new(),
                    media: media2,
                    next_stream: 3,
                };
                tokio::select! {
                    _ = relay.run() => {}
                    _ = stopped => {}
                }
            });
        });
        LossyPath {
            sip,
            seen,
            counts,
            media,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The SIP messages seen so far, in arrival order.
    pub fn seen(&self) -> Vec<SipSeen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// One call's RTP as the relay saw it: (from the switch, from SIPp,
    /// of which telephone-events, from an unexpected sender).
    pub fn media_of(&self, call_id: &str) -> Option<(u64, u64, u64, u64)> {
        let m = self.media.lock().ok()?.get(call_id)?.clone();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some((
            g(&m.from_switch),
            g(&m.from_sipp),
            g(&m.from_sipp_events),
            g(&m.from_elsewhere),
        ))
    }

    /// RTP datagrams from the switch that reached the relay after the
    /// switch's first BYE of the call.
    pub fn switch_rtp_after_its_bye(&self, call_id: &str) -> Option<u64> {
        let m = self.media.lock().ok()?.get(call_id)?.clone();
        Some(m.from_switch_after_bye.load(Ordering::Relaxed))
    }

    /// The counters, as (name, value) lines for a report.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "sip: {} in, {} dropped, {} duplicated, {} held back; rtp: {} in, {} dropped, {} duplicated, {} held back",
            g(&c.sip_in),
            g(&c.sip_dropped),
            g(&c.sip_duplicated),
            g(&c.sip_delayed),
            g(&c.rtp_in),
            g(&c.rtp_dropped),
            g(&c.rtp_duplicated),
            g(&c.rtp_delayed),
        )
    }
}

impl Drop for LossyPath {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The per-call media relay: `x` faces the switch (named in the offer the
/// switch gets), `y` faces SIPp (named in the answer SIPp gets).
struct MediaPair {
    x_port: u16,
    y_port: u16,
    /// Where SIPp receives RTP (its offer) and where the switch does (its
    /// answer), once known.
    sipp_rtp: Arc<Mutex<Option<SocketAddr>>>,
    switch_rtp: Arc<Mutex<Option<SocketAddr>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for MediaPair {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct SipRelay {
    sipp: SocketAddr,
    switch: SocketAddr,
    /// Faces SIPp.
    a: Arc<UdpSocket>,
    /// Faces the switch.
    b: Arc<UdpSocket>,
    imp: Impairment,
    rng_a: Prng,
    rng_b: Prng,
    rule: Option<SipRule>,
    seen: Arc<Mutex<Vec<SipSeen>>>,
    counts: Arc<Counts>,
    calls: HashMap<String, MediaPair>,
    media: MediaMap,
    next_stream: u64,
}

/// Copies to send and the delay of each, per the impairment.
fn decide(imp: &Impairment, rng: &mut Prng) -> Vec<Duration> {
    if rng.unit() < imp.loss {
        return Vec::new();
    }
    let n = if rng.unit() < imp.duplicate { 2 } else { 1 };
    (0..n)
        .map(|_| {
            if rng.unit() < imp.reorder {
                let (lo, hi) = imp.delay;
                lo + (hi.saturating_sub(lo)).mul_f64(rng.unit())
            } else {
                Duration::ZERO
            }
        })
        .collect()
}

/// Sends `data` to `to` from `sock` after each delay (none: at once).
fn send_copies(sock: &Arc<UdpSocket>, to: SocketAddr, data: Vec<u8>, delays: &[Duration]) {
    for d in delays {
        if d.is_zero() {
            let _ = sock.try_send_to(&data, to);
        } else {
            let (sock, data, d) = (sock.clone(), data.clone(), *d);
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                let _ = sock.send_to(&data, to).await;
            });
        }
    }
}

impl SipRelay {
    async fn run(mut self) {
        let mut buf_a = vec![0u8; 65_535];
        let mut buf_b = vec![0u8; 65_535];
        let (a, b) = (self.a.clone(), self.b.clone());
        loop {
            tokio::select! {
                r = a.recv_from(&mut buf_a) => {
                    if let Ok((n, from)) = r {
                        self.sipp = from;
                        let msg = buf_a[..n].to_vec();
                        self.forward(Dir::ToSwitch, msg).await;
                    }
                }
                r = b.recv_from(&mut buf_b) => {
                    if let Ok((n, _)) = r {
                        let msg = buf_b[..n].to_vec();
                        self.forward(Dir::ToSipp, msg).await;
                    }
                }
            }
        }
    }

    async fn forward(&mut self, dir: Dir, msg: Vec<u8>) {
        let Ok(text) = String::from_utf8(msg) else {
            return;
        };
        let relay_a = self.a.local_addr().map(|a| a.port()).unwrap_or(0);
        let relay_b = self.b.local_addr().map(|a| a.port()).unwrap_or(0);
        // As a NAT's SIP helper: SIPp's address becomes the relay's switch
        // side, the relay's SIPp side becomes the switch's address.
        let (text, stream_sock, to) = match dir {
            Dir::ToSwitch => {
                let t = replace_addr(&text, self.sipp.port(), relay_b);
                let t = replace_addr(&t, relay_a, self.switch.port());
                (t, self.b.clone(), self.switch)
            }
            Dir::ToSipp => {
                let t = replace_addr(&text, relay_b, self.sipp.port());
                let t = replace_addr(&t, self.switch.port(), relay_a);
                (t, self.a.clone(), self.sipp)
            }
        };
        let mut seen = SipSeen {
            at: Instant::now(),
            dir,
            what: first_token(&text),
            call_id: header(&text, &["Call-ID", "i"]).unwrap_or_default(),
            cseq_method: header(&text, &["CSeq"])
                .and_then(|c| c.split_whitespace().nth(1).map(str::to_owned))
                .unwrap_or_default(),
            copies: 0,
        };
        let text = self.rewrite_sdp(dir, &seen, text).await;
        let targeted = self.rule.as_mut().is_some_and(|r| r(dir, &seen));
        let delays = if targeted {
            Vec::new()
        } else {
            let rng = match dir {
                Dir::ToSwitch => &mut self.rng_a,
                Dir::ToSipp => &mut self.rng_b,
            };
            decide(&self.imp, rng)
        };
        seen.copies = delays.len() as u8;
        let c = &self.counts;
        c.sip_in.fetch_add(1, Ordering::Relaxed);
        match delays.len() {
            0 => c.sip_dropped.fetch_add(1, Ordering::Relaxed),
            2 => c.sip_duplicated.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if delays.iter().any(|d| !d.is_zero()) {
            c.sip_delayed.fetch_add(1, Ordering::Relaxed);
        }
        // From here on the switch's RTP for the call is counted as after
        // its BYE (marked before the BYE is passed on: never undercounted).
        if seen.what == "BYE" && dir == Dir::ToSipp {
            if let Some(m) = self
                .media
                .lock()
                .ok()
                .and_then(|m| m.get(&seen.call_id).cloned())
            {
                m.switch_said_bye.store(true, Ordering::Relaxed);
            }
        }
        // A call's media relay goes a while after its BYE (late RTP and
        // retransmissions still find it).
        if seen.what == "BYE" {
            if let Some(pair) = self.calls.get_mut(&seen.call_id) {
                let tasks = std::mem::take(&mut pair.tasks);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    for t in tasks {
                        t.abort();
                    }
                });
            }
        }
        if let Ok(mut s) = self.seen.lock() {
            s.push(seen);
        }
        send_copies(&stream_sock, to, text.into_bytes(), &delays);
    }

    /// Points each side's `m=audio` at the relay and fixes Content-Length.
    async fn rewrite_sdp(&mut self, dir: Dir, seen: &SipSeen, text: String) -> String {
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return text;
        };
        let Some(port) = media_port(body) else {
            return text;
        };
        let ip = sdp_ip(body).unwrap_or([127, 0, 0, 1].into());
        if !self.calls.contains_key(&seen.call_id) {
            let Some(pair) = self.media_pair(&seen.call_id).await else {
                return text;
            };
            self.calls.insert(seen.call_id.clone(), pair);
        }
        let Some(pair) = self.calls.get(&seen.call_id) else {
            return text;
        };
        let (slot, relay_port) = match dir {
            Dir::ToSwitch => (&pair.sipp_rtp, pair.x_port),
            Dir::ToSipp => (&pair.switch_rtp, pair.y_port),
        };
        if let Ok(mut s) = slot.lock() {
            *s = Some(SocketAddr::new(ip, port));
        }
        let body = body.replacen(
            &format!("m=audio {port} "),
            &format!("m=audio {relay_port} "),
            1,
        );
        let head: Vec<String> = head
            .split("\r\n")
            .map(|l| {
                let name = l.split(':').next().unwrap_or("").trim();
                if name.eq_ignore_ascii_case("Content-Length") || name == "l" {
                    format!("Content-Length: {}", body.len())
                } else {
                    l.to_owned()
                }
            })
            .collect();
        format!("{}\r\n\r\n{}", head.join("\r\n"), body)
    }

    async fn media_pair(&mut self, call_id: &str) -> Option<MediaPair> {
        let stats = Arc::new(CallMedia::default());
        if let Ok(mut m) = self.media.lock() {
            m.insert(call_id.to_owned(), stats.clone());
        }
        let x = Arc::new(UdpSocket::bind("127.0.0.1:0").await.ok()?);
        let y = Arc::new(UdpSocket::bind("127.0.0.1:0").await.ok()?);
        let sipp_rtp = Arc::new(Mutex::new(None));
        let switch_rtp = Arc::new(Mutex::new(None));
        let stream = self.next_stream;
        self.next_stream += 2;
        let tasks = vec![
            // From the switch (on x) to SIPp (from y).
            tokio::spawn(media_leg(
                x.clone(),
                y.clone(),
                sipp_rtp.clone(),
                self.imp,
                Prng::new(self.imp.seed, stream),
                self.counts.clone(),
                stats.clone(),
                switch_rtp.clone(),
                false,
            )),
            // From SIPp (on y) to the switch (from x).
            tokio::spawn(media_leg(
                y.clone(),
                x.clone(),
                switch_rtp.clone(),
                self.imp,
                Prng::new(self.imp.seed, stream + 1),
                self.counts.clone(),
                stats.clone(),
                sipp_rtp.clone(),
                true,
            )),
        ];
        Some(MediaPair {
            x_port: x.local_addr().ok()?.port(),
            y_port: y.local_addr().ok()?.port(),
            sipp_rtp,
            switch_rtp,
            tasks,
        })
    }
}

// One task per direction; each piece is the task's own (a struct would only
// be unpacked again on the first line).
#[allow(clippy::too_many_arguments)]
async fn media_leg(
    from: Arc<UdpSocket>,
    out: Arc<UdpSocket>,
    to: Arc<Mutex<Option<SocketAddr>>>,
    imp: Impairment,
    mut rng: Prng,
    counts: Arc<Counts>,
    stats: Arc<CallMedia>,
    // The sender the SDP names for this side (its own offer or answer).
    expected: Arc<Mutex<Option<SocketAddr>>>,
    from_sipp: bool,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, src)) = from.recv_from(&mut buf).await else {
            continue;
        };
        if from_sipp {
            stats.from_sipp.fetch_add(1, Ordering::Relaxed);
            if buf.get(1).is_some_and(|b| b & 0x7f == 101) {
                stats.from_sipp_events.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            stats.from_switch.fetch_add(1, Ordering::Relaxed);
            if stats.switch_said_bye.load(Ordering::Relaxed) {
                stats.from_switch_after_bye.fetch_add(1, Ordering::Relaxed);
            }
            if expected
                .lock()
                .ok()
                .and_then(|e| *e)
                .is_some_and(|e| e != src)
            {
                stats.from_elsewhere.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some(dest) = to.lock().ok().and_then(|t| *t) else {
            continue;
        };
        counts.rtp_in.fetch_add(1, Ordering::Relaxed);
        let delays = decide(&imp, &mut rng);
        match delays.len() {
            0 => counts.rtp_dropped.fetch_add(1, Ordering::Relaxed),
            2 => counts.rtp_duplicated.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if delays.iter().any(|d| !d.is_zero()) {
            counts.rtp_delayed.fetch_add(1, Ordering::Relaxed);
        }
        send_copies(&out, dest, buf[..n].to_vec(), &delays);
    }
}

/// Replaces `127.0.0.1:FROM` by `127.0.0.1:TO` where FROM is the whole port
/// (not the start of a longer number).
pub fn replace_addr(text: &str, from: u16, to: u16) -> String {
    let pat = format!("127.0.0.1:{from}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&pat) {
        let end = i + pat.len();
        let whole = !rest[end..].starts_with(|c: char| c.is_ascii_digit());
        out.push_str(&rest[..i]);
        if whole {
            out.push_str(&format!("127.0.0.1:{to}"));
        } else {
            out.push_str(&pat);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn first_token(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.strip_prefix("SIP/2.0 ") {
        Some(r) => r.split_whitespace().next().unwrap_or("").to_owned(),
        None => line.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

/// The value of the first header named one of `names` (case-insensitive).
fn header(text: &str, names: &[&str]) -> Option<String> {
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        names
            .iter()
            .any(|x| n.trim().eq_ignore_ascii_case(x))
            .then(|| v.trim().to_owned())
    })
}

fn media_port(body: &str) -> Option<u16> {
    body.lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sdp_ip(body: &str) -> Option<std::net::IpAddr> {
    body.lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()
}
