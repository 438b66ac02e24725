//! Bridge benchmark: N customer↔agent media bridges relaying RTP both ways
//! for a few seconds; reports the latency the relay adds per packet (from the
//! moment a packet is sent to the switch's socket to the moment it arrives at
//! the far end, both on 127.0.0.1) and the engine's CPU per bridged call.
//!
//! `cargo bench --bench bridge -- 100 10` (bridged calls, seconds); add `srtp`
//! (`-- 100 10 srtp`) for SRTP (AES_CM_128_HMAC_SHA1_80) on both legs: the phones
//! protect and unprotect on this process's own threads, the engine's CPU is what
//! is reported. Each call holds six descriptors (two phones, two sessions of two):
//! `ulimit -n` must exceed 6 × N + 100. It first prints the bare cost of one loopback
//! `sendto` of 172 bytes, measured in the same run. BRIDGE_ENGINE_CPU and BRIDGE_LOAD_CPU
//! pin the engine's threads and the harness's to one CPU each.
//!
//! Senders and receivers are plain sockets on this process's other threads;
//! one 20 ms packet per direction per call, each carrying its send time, the
//! calls' sends spread over the 20 ms in 1 ms slots as independent calls' are.
//! The receiving thread waits in `epoll` for the endpoint sockets, so the
//! latency includes its wake-up: an upper bound on what the relay adds.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cpu_from_env, pin_to, threads_cpu, Poller};
use tpswitch::media::codec::Codec;
use tpswitch::media::engine::{EngineConfig, MediaEngine, SessionOptions};
use tpswitch::media::ports::PortPool;
use tpswitch::media::srtp::{CryptoSuite, SrtpKey, SrtpParams, SrtpReceiver, SrtpSender};
use tpswitch::media::stream::StreamParams;
use tpswitch::sdp::{negotiate, parse_offer};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(i)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rtp(seq: u16, sent_ns: u64) -> Vec<u8> {
    let mut p = vec![0u8; 12 + 160];
    p[0] = 0x80;
    p[1] = 0; // PCMU
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p[12..20].copy_from_slice(&sent_ns.to_be_bytes());
    p
}

/// One phone's SRTP: the switch-side parameters of its leg, and its own contexts.
fn srtp_leg() -> (SrtpParams, SrtpSender, SrtpReceiver) {
    let switch = SrtpParams {
        suite: CryptoSuite::AesCm128HmacSha1_80,
        tag: 1,
        local: SrtpKey::random(),
        remote: SrtpKey::random(),
    };
    let phone = SrtpParams {
        local: switch.remote.clone(),
        remote: switch.local.clone(),
        ..switch.clone()
    };
    let tx = SrtpSender::new(&phone);
    let rx = SrtpReceiver::new(&phone);
    (switch, tx, rx)
}

/// Mean cost of one `sendto` of a 172-byte packet over loopback, for scale.
fn bare_sendto() -> Duration {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = b.local_addr().expect("addr");
    let p = rtp(0, 0);
    let rounds = 20_000u32;
    let t = Instant::now();
    let mut buf = [0u8; 256];
    b.set_nonblocking(true).expect("nonblocking");
    for i in 0..rounds {
        let _ = a.send_to(&p, to);
        if i % 64 == 63 {
            while b.recv_from(&mut buf).is_ok() {}
        }
    }
    // The drain's receives are counted in too; they are a small share.
    t.elapsed() / rounds
}

fn main() {
    let n = arg(1, 100) as usize;
    let secs = arg(2, 10);
    let srtp = std::env::args().any(|a| a == "srtp");
    println!(
        "bare loopback sendto of 172 bytes: {:.2} µs; media: {}",
        bare_sendto().as_secs_f64() * 1e6,
        if srtp { "SRTP both legs" } else { "plain RTP" }
    );
    // BRIDGE_ENGINE_CPU / BRIDGE_LOAD_CPU: the engine's threads (the runtime's
    // worker and the pacing thread, started below from this thread) on one
    // CPU, this thread (the senders) and the receivers on another, as
    // `bench/cost.sh` pins the switch and its load; otherwise the harness's
    // threads preempt the relay and their delay counts as its latency.
    let load_cpu = cpu_from_env("BRIDGE_LOAD_CPU");
    if let Some(cpu) = cpu_from_env("BRIDGE_ENGINE_CPU") {
        pin_to(cpu);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("media-rt")
        .enable_all()
        .build()
        .expect("tokio runtime");
    let engine = MediaEngine::start(EngineConfig::default()).expect("engine");
    if let Some(cpu) = load_cpu {
        pin_to(cpu);
    }
    let last = (31_000 + 8 * n + 200).min(65_000) as u16;
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 31_000, last);

    // Two endpoint sockets per call: the customer's phone and the agent's.
    let mut pairs: Vec<(UdpSocket, UdpSocket)> = Vec::with_capacity(n);
    for _ in 0..n {
        let c = UdpSocket::bind("127.0.0.1:0").expect("customer socket");
        let a = UdpSocket::bind("127.0.0.1:0").expect("agent socket");
        pairs.push((c, a));
    }
    let sdp_for = |peer: SocketAddr| -> StreamParams {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
            peer.port()
        );
        negotiate(
            &parse_offer(sdp.as_bytes(), Default::default()).expect("sdp"),
            &Codec::ALL,
        )
        .expect("neg")
        .stream
    };
    let opts = SessionOptions {
        rtp_timeout: Duration::from_secs(3600),
        silence_between_prompts: false,
        ..SessionOptions::default()
    };
    // Where each endpoint sends: its own switch-side session.
    let mut targets: Vec<(SocketAddr, SocketAddr)> = Vec::with_capacity(n);
    // Per endpoint (customer, agent of each call, in `socks` order): its SRTP.
    let mut senders: Vec<Option<SrtpSender>> = Vec::with_capacity(2 * n);
    let mut receivers: Vec<Option<SrtpReceiver>> = Vec::with_capacity(2 * n);
    let _keep = rt.block_on(async {
        let mut keep = Vec::with_capacity(n);
        for (c, a) in &pairs {
            let cs = pool.allocate().expect("ports");
            let asx = pool.allocate().expect("ports");
            let mut cp = sdp_for(c.local_addr().expect("addr"));
            let mut ap = sdp_for(a.local_addr().expect("addr"));
            for p in [&mut cp, &mut ap] {
                if srtp {
                    let (params, tx, rx) = srtp_leg();
                    p.srtp = Some(params);
                    senders.push(Some(tx));
                    receivers.push(Some(rx));
                } else {
                    senders.push(None);
                    receivers.push(None);
                }
            }
            let (cust, _e1) = engine
                .open(cs, &cp, opts.clone())
                .expect("open customer leg");
            let (agent, _e2) = engine.open(asx, &ap, opts.clone()).expect("open agent leg");
            let bridge = engine.bridge(&cust, &agent).expect("bridge");
            targets.push((cust.local_addr(), agent.local_addr()));
            keep.push((cust, agent, bridge, _e1, _e2));
        }
        keep
    });

    let run = drive(
        &pairs,
        &targets,
        &mut senders,
        receivers,
        secs,
        load_cpu,
        &|| threads_cpu("media-rt") + threads_cpu("media-pace"),
    );
    let (cpu, wall) = (run.cpu, run.wall);
    let expected = 2.0 * n as f64 * 50.0 * wall.as_secs_f64();
    println!(
        "bridged calls {n}, {:.1} s: {} packets relayed end to end ({:.1} % of {:.0} sent)",
        wall.as_secs_f64(),
        run.latencies.len(),
        100.0 * run.latencies.len() as f64 / expected,
        expected
    );
    println!(
        "added latency (send to socket → arrival at the far end): p50 {:.0} µs  p99 {:.0} µs  p99.9 {:.0} µs  max {:.0} µs",
        run.q(0.5),
        run.q(0.99),
        run.q(0.999),
        run.q(1.0)
    );
    let st = engine.stats().snapshot();
    println!(
        "engine: received {} relayed {} refused/malformed {} send errors {}",
        st.packets_received, st.relayed, st.malformed, st.send_errors
    );
    println!(
        "engine CPU (receive/relay tasks + pacing thread) {:?} = {:.1} % of a core; {:.1} µs per bridged call-second ({:.3} % of a core per call)",
        cpu,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / (n as f64 * wall.as_secs_f64()),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64() / n as f64
    );
    if srtp || std::env::var("BRIDGE_BARE").is_ok_and(|v| v == "0") {
        return;
    }
    drop(_keep);
    let phones: Vec<(SocketAddr, SocketAddr)> = pairs
        .iter()
        .filter_map(|(c, a)| Some((c.local_addr().ok()?, a.local_addr().ok()?)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let engine_cpu = cpu_from_env("BRIDGE_ENGINE_CPU");
    let (targets, relay) = match bare_relay(&phones, stop.clone(), engine_cpu) {
        Ok(r) => r,
        Err(e) => {
            println!("bare relay: {e} (ulimit -n must exceed 8 × N + 100)");
            return;
        }
    };
    let mut none: Vec<Option<SrtpSender>> = (0..2 * n).map(|_| None).collect();
    let plain: Vec<Option<SrtpReceiver>> = (0..2 * n).map(|_| None).collect();
    let bare = drive(&pairs, &targets, &mut none, plain, secs, load_cpu, &|| {
        threads_cpu("bare-relay")
    });
    stop.store(true, Ordering::Relaxed);
    let _ = relay.join();
    println!(
        "bare relay, {n} calls: {} packets relayed end to end; added latency p50 {:.0} µs  p99 {:.0} µs  p99.9 {:.0} µs; CPU {:.1} % of a core",
        bare.latencies.len(),
        bare.q(0.5),
        bare.q(0.99),
        bare.q(0.999),
        100.0 * bare.cpu.as_secs_f64() / bare.wall.as_secs_f64()
    );
    println!(
        "engine per relayed packet {:.2} µs = {:.2}x the bare relay's {:.2} µs",
        run.per_packet(),
        run.per_packet() / bare.per_packet().max(f64::MIN_POSITIVE),
        bare.per_packet()
    );
}

/// What one run of the phones measured.
struct Run {
    /// Added latency of every packet relayed end to end in the window, sorted (ns).
    latencies: Vec<u64>,
    /// CPU of the relay's threads over the window.
    cpu: Duration,
    wall: Duration,
}

impl Run {
    /// Quantile `p` of the added latency, in µs.
    fn q(&self, p: f64) -> f64 {
        let l = &self.latencies;
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(f64::NAN, |v| *v as f64 / 1000.0)
    }

    /// CPU per packet relayed end to end, in µs.
    fn per_packet(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.latencies.len().max(1) as f64
    }
}

/// The phones: every call's two endpoint sockets in `pairs` send to their
/// `targets` (one 20 ms packet each way per call, for `secs` after a 1 s
/// warm-up) and receive what the relay forwards; `cpu_of` reads the CPU of
/// the relay's threads.
fn drive(
    pairs: &[(UdpSocket, UdpSocket)],
    targets: &[(SocketAddr, SocketAddr)],
    senders: &mut [Option<SrtpSender>],
    receivers: Vec<Option<SrtpReceiver>>,
    secs: u64,
    load_cpu: Option<usize>,
    cpu_of: &dyn Fn() -> Duration,
) -> Run {
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::<(u64, u64)>::with_capacity(
        pairs.len() * 100 * secs as usize,
    )));
    // Receivers: every endpoint socket, polled by one thread each direction.
    let mut threads = Vec::new();
    let socks: Vec<UdpSocket> = pairs
        .iter()
        .flat_map(|(c, a)| [c.try_clone().expect("clone"), a.try_clone().expect("clone")])
        .collect();
    for s in &socks {
        s.set_nonblocking(true).expect("nonblocking");
    }
    {
        let (stop, lat) = (stop.clone(), latencies.clone());
        let mut receivers = receivers;
        threads.push(std::thread::spawn(move || {
            if let Some(cpu) = load_cpu {
                pin_to(cpu);
            }
            let mut buf = [0u8; 2048];
            let mut local = Vec::new();
            // Told by epoll which sockets have something, not by scanning all
            // 2 N of them (a scan's time counted as latency), and never asleep
            // in it: a receiver asleep makes every relayed packet's `sendto`
            // wake it on the other CPU, a cost charged to the relay that no
            // phone on another machine imposes.
            let mut poller = Poller::new(&socks);
            while !stop.load(Ordering::Relaxed) {
                let mut any = false;
                for i in poller.wait(0) {
                    any = true;
                    let (Some(s), Some(rx)) = (socks.get(i), receivers.get_mut(i)) else {
                        continue;
                    };
                    while let Ok((len, _)) = s.recv_from(&mut buf) {
                        let len = match rx.as_mut() {
                            Some(rx) => match rx.unprotect_rtp(&mut buf[..len]) {
                                Ok(n) => n,
                                Err(_) => continue,
                            },
                            None => len,
                        };
                        if len >= 20 {
                            let mut t = [0u8; 8];
                            t.copy_from_slice(&buf[12..20]);
                            let sent = u64::from_be_bytes(t);
                            let now = epoch.elapsed().as_nanos() as u64;
                            local.push((sent, now.saturating_sub(sent)));
                        }
                    }
                }
                if !any {
                    std::hint::spin_loop();
                }
            }
            if let Ok(mut l) = lat.lock() {
                l.extend(local);
            }
        }));
    }
    // Sender: every 20 ms, one packet each way per call, the calls spread
    // over the 20 ms in 1 ms slots as independent calls' phases are. Sent all
    // at once, each burst queued the whole box's packets behind each other
    // in the relay, and that queue was most of the latency measured.
    const SLOTS: usize = 20;
    let mut slot = 0usize;
    let warmup = Duration::from_secs(1);
    // The relay's CPU and the time when the warm-up ends.
    let mut cpu0: Option<(Duration, Instant)> = None;
    let start = Instant::now();
    let mut seq = 0u16;
    let mut next = Instant::now();
    while start.elapsed() < warmup + Duration::from_secs(secs) {
        if cpu0.is_none() && start.elapsed() >= warmup {
            cpu0 = Some((cpu_of(), Instant::now()));
        }
        let due = pairs.iter().zip(targets).enumerate().skip(slot);
        for (i, ((c, a), (to_c, to_a))) in due.step_by(SLOTS) {
            let t = epoch.elapsed().as_nanos() as u64;
            let mut pc = rtp(seq, t);
            let mut pa = rtp(seq, t);
            if let Some(tx) = senders[2 * i].as_mut() {
                let _ = tx.protect_rtp(&mut pc);
            }
            if let Some(tx) = senders[2 * i + 1].as_mut() {
                let _ = tx.protect_rtp(&mut pa);
            }
            let _ = c.send_to(&pc, to_c);
            let _ = a.send_to(&pa, to_a);
        }
        slot = (slot + 1) % SLOTS;
        if slot == 0 {
            seq = seq.wrapping_add(1);
        }
        next += Duration::from_millis(1);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let (cpu_start, t_start) = cpu0.unwrap_or((Duration::ZERO, start));
    let cpu = cpu_of().saturating_sub(cpu_start);
    let wall = t_start.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    // Only packets sent after the warm-up and before the end of the window.
    let from = t_start.duration_since(epoch).as_nanos() as u64;
    let to = from + wall.as_nanos() as u64;
    let mut l: Vec<u64> = latencies
        .lock()
        .expect("lock")
        .iter()
        .filter(|(sent, _)| (from..to).contains(sent))
        .map(|(_, lat)| *lat)
        .collect();
    l.sort_unstable();
    Run {
        latencies: l,
        cpu,
        wall,
    }
}

/// Where a call's customer and agent phones send.
type Targets = (SocketAddr, SocketAddr);

/// The bare relay, the floor under the engine's figures: for every call two
/// sockets, one facing each phone, and one thread that waits in `epoll` for
/// them (asleep when nothing is waiting, as the engine's runtime is) and
/// forwards each datagram out of the other socket with one `sendto`: no
/// task, lock, latch, statistics or SRTP.
fn bare_relay(
    phones: &[(SocketAddr, SocketAddr)],
    stop: Arc<AtomicBool>,
    cpu: Option<usize>,
) -> std::io::Result<(Vec<Targets>, std::thread::JoinHandle<()>)> {
    let socks = (0..2 * phones.len())
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let addrs = socks
        .chunks(2)
        .map(|p| Ok((p[0].local_addr()?, p[1].local_addr()?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let phones = phones.to_vec();
    let relay = std::thread::Builder::new()
        .name("bare-relay".into())
        .spawn(move || {
            if let Some(cpu) = cpu {
                pin_to(cpu);
            }
            let mut poller = Poller::new(&socks);
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                for i in poller.wait(10) {
                    // Socket 2k faces call k's customer, 2k + 1 its agent.
                    let (out, dest) = match (i % 2, phones.get(i / 2)) {
                        (0, Some((_, agent))) => (i + 1, *agent),
                        (_, Some((customer, _))) => (i - 1, *customer),
                        _ => continue,
                    };
                    let (Some(from), Some(out)) = (socks.get(i), socks.get(out)) else {
                        continue;
                    };
                    while let Ok((len, _)) = from.recv_from(&mut buf) {
                        let _ = out.send_to(&buf[..len], dest);
                    }
                }
            }
        })?;
    Ok((addrs, relay))
}
