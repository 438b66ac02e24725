//! Pacing benchmark: N prompt streams to local receivers for a few seconds, then the send
//! lateness distribution and the pacing thread's CPU time.
//!
//! `cargo bench --bench pacing -- 1000 10` (streams, seconds); or PACING_STREAMS /
//! PACING_SECS. PACING_SPIN_US and PACING_GRID_US override `EngineConfig::spin` and
//! `start_granularity`; PACING_THREADS sets `EngineConfig::pacing_threads`. PACING_SINK_CPU
//! pins the receiving threads to that CPU (run the bench under `taskset -c 1` and set it to
//! 0: the pacing thread then has core 1 to itself, as the switch's does in `bench/cost.sh`).
//! Each session holds 2 descriptors (RTP and RTCP), the bare pacer below one per stream:
//! `ulimit -n` must exceed 3 × N + 100.
//!
//! Then, as the floor under those figures, a *bare pacer* runs the same N streams for
//! the same time to the same sinks: one thread with the same timer slack and start grid
//! that sleeps to each millisecond slot and `sendto`s a packet for every stream due in
//! it, with no engine, heap, lock or prompt. Its lateness is what this machine gives
//! any pacer (timer wake-ups, a `sendto` stalled in the kernel); its CPU per packet is
//! the syscalls' alone. `PACING_BARE=0` skips it.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cpu_from_env, pin_to, threads_cpu};
use tpswitch::media::codec::Codec;
use tpswitch::media::engine::{EngineConfig, MediaEngine, MediaStats, SessionOptions};
use tpswitch::media::ports::PortPool;
use tpswitch::media::prompt::Prompt;
use tpswitch::sdp::{negotiate, parse_offer};

const RECEIVERS: usize = 4;

fn arg(i: usize, env: &str, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(i)
        .or_else(|| std::env::var(env).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = arg(1, "PACING_STREAMS", 100) as usize;
    let secs = arg(2, "PACING_SECS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut threads = Vec::new();
    let sink_cpu = cpu_from_env("PACING_SINK_CPU");
    for _ in 0..RECEIVERS {
        let s = UdpSocket::bind("127.0.0.1:0").expect("receiver socket");
        // Drained every millisecond rather than blocked in recv: a receiver waiting
        // in recv makes every send wake it (a cross-CPU wake-up charged to the
        // pacing thread), which a far end on another machine never costs.
        s.set_nonblocking(true).expect("non-blocking receiver");
        addrs.push(s.local_addr().expect("addr"));
        let (stop, received) = (stop.clone(), received.clone());
        threads.push(std::thread::spawn(move || {
            if let Some(cpu) = sink_cpu {
                pin_to(cpu);
            }
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                while s.recv_from(&mut buf).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }));
    }
    let pcm: Vec<i16> = (0..8000 * (secs as usize + 2))
        .map(|i| ((i as f32 * 0.3).sin() * 6000.0) as i16)
        .collect();
    let prompt = Arc::new(Prompt::from_pcm("bench", &pcm));
    let mut cfg = EngineConfig::default();
    if let Some(us) = std::env::var("PACING_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.spin = Duration::from_micros(us);
    }
    if let Some(t) = std::env::var("PACING_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.pacing_threads = t;
    }
    if let Some(us) = std::env::var("PACING_GRID_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.start_granularity = Duration::from_micros(us);
    }
    println!(
        "spin {:?}, start grid {:?}",
        cfg.spin, cfg.start_granularity
    );
    let engine = MediaEngine::start(cfg).expect("engine");
    // Room to skip ports other processes hold.
    let last = (30_000 + 4 * n + 100).min(65_000) as u16;
    let pool = PortPool::new("127.0.0.1".parse().expect("ip"), 30_000, last);

    let engine_per_packet = rt.block_on(async {
        let mut sessions = Vec::with_capacity(n);
        // Spread stream starts over one packet time, as calls arriving at random would.
        for i in 0..n {
            let peer = addrs[i % RECEIVERS];
            let sdp = format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio {} RTP/AVP 0\r\n",
                peer.port()
            );
            let neg = negotiate(
                &parse_offer(sdp.as_bytes(), Default::default()).expect("sdp"),
                &Codec::ALL,
            )
            .expect("neg");
            let ports = pool.allocate().expect("ports (range 30000+)");
            let opts = SessionOptions {
                rtp_timeout: Duration::from_secs(3600),
                ..SessionOptions::default()
            };
            let (s, ev) = engine.open(ports, &neg.stream, opts).expect("open");
            s.play(1, vec![prompt.clone()]).expect("play");
            sessions.push((s, ev));
            // Blocking the runtime briefly is fine here: nothing else runs on it yet.
            std::thread::sleep(Duration::from_micros(20_000 / n as u64));
        }
        // Warm-up: the opening burst is not steady state.
        tokio::time::sleep(Duration::from_secs(1)).await;
        engine.stats().reset_lateness();
        let late0 = engine.stats().snapshot().late_sends;
        let cpu0 = threads_cpu("media-pace");
        let sent0 = engine.stats().snapshot().packets_sent;
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let wall = t0.elapsed();
        let cpu = threads_cpu("media-pace").saturating_sub(cpu0);
        let st = engine.stats().snapshot();
        let sent = st.packets_sent - sent0;
        let q = |p| engine.stats().lateness_quantile(p).unwrap_or_default();
        println!(
            "streams {n}, {:.1} s: sent {sent} ({:.0} pps, expected {:.0})",
            wall.as_secs_f64(),
            sent as f64 / wall.as_secs_f64(),
            n as f64 * 50.0
        );
        println!(
            "lateness p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?} (10 µs buckets, after 1 s warm-up)",
            q(0.5),
            q(0.99),
            q(0.999),
            q(1.0)
        );
        println!(
            "late (>1 ms) {}  send errors {}  skipped ticks {}",
            st.late_sends - late0,
            st.send_errors,
            st.ticks_skipped
        );
        println!(
            "pacing thread CPU {:?} = {:.1} % of a core, {:.2} µs per stream-second",
            cpu,
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / (n as f64 * wall.as_secs_f64())
        );
        drop(sessions);
        cpu.as_secs_f64() * 1e6 / sent.max(1) as f64
    });
    drop(engine);
    if std::env::var("PACING_BARE").map_or(true, |v| v != "0") {
        bare_pacer(n, secs, &addrs, engine_per_packet);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    println!(
        "received at the sinks: {}",
        received.load(Ordering::Relaxed)
    );
}

/// The bare pacer (see the module doc): `n` plain sockets, stream `i` starting at
/// `i × 20 ms / n` rounded up to the 1 ms grid, one `sendto` per stream per 20 ms.
fn bare_pacer(n: usize, secs: u64, sinks: &[SocketAddr], engine_per_packet: f64) {
    const PERIOD_MS: usize = 20;
    let socks: Vec<UdpSocket> = match (0..n).map(|_| UdpSocket::bind("127.0.0.1:0")).collect() {
        Ok(socks) => socks,
        Err(e) => {
            println!("bare pacer: {n} sockets: {e} (ulimit -n must exceed 3 × N + 100)");
            return;
        }
    };
    // Streams by the 1 ms slot of the period they are due in.
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); PERIOD_MS];
    for i in 0..n {
        slots[(i * PERIOD_MS).div_ceil(n.max(1)) % PERIOD_MS].push(i);
    }
    let payload = [0x55u8; 172];
    let sinks = sinks.to_vec();
    let stats = MediaStats::default();
    let handle = std::thread::Builder::new()
        .name("bare-pace".into())
        .spawn(move || {
            // As the engine's pacing thread: wake within the scheduler's latency.
            // SAFETY: PR_SET_TIMERSLACK reads one integer argument and touches no memory.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
            let start = Instant::now() + Duration::from_millis(1);
            let warm = start + Duration::from_secs(1);
            let end = warm + Duration::from_secs(secs);
            let mut cpu0 = None;
            let mut sent = 0u64;
            let (mut longest, mut stalls) = (Duration::ZERO, 0u64);
            let (mut latest_wake, mut late_wakes) = (Duration::ZERO, 0u64);
            for slot in 0.. {
                let ideal = start + Duration::from_millis(slot as u64);
                if ideal >= end {
                    break;
                }
                if cpu0.is_none() && ideal >= warm {
                    cpu0 = Some((threads_cpu("bare-pace"), sent));
                    stats.reset_lateness();
                }
                loop {
                    let now = Instant::now();
                    if now >= ideal {
                        break;
                    }
                    std::thread::park_timeout(ideal - now);
                }
                let mut before = Instant::now();
                if cpu0.is_some() {
                    let woke = before.saturating_duration_since(ideal);
                    latest_wake = latest_wake.max(woke);
                    late_wakes += u64::from(woke > Duration::from_millis(1));
                }
                for &i in &slots[slot % PERIOD_MS] {
                    let _ = socks[i].send_to(&payload, sinks[i % sinks.len()]);
                    sent += 1;
                    let after = Instant::now();
                    stats.record_lateness(after.saturating_duration_since(ideal));
                    // One clock read per packet: the send took at most this.
                    if cpu0.is_some() {
                        let took = after - before;
                        longest = longest.max(took);
                        stalls += u64::from(took > Duration::from_millis(1));
                    }
                    before = after;
                }
            }
            let (cpu_warm, sent_warm) = cpu0.unwrap_or_default();
            let cpu = threads_cpu("bare-pace").saturating_sub(cpu_warm);
            let wakes = (latest_wake, late_wakes);
            (stats, cpu, sent - sent_warm, (longest, stalls), wakes)
        })
        .expect("bare pacer thread");
    let Ok((stats, cpu, sent, (longest, stalls), (latest_wake, late_wakes))) = handle.join() else {
        println!("bare pacer: the thread panicked");
        return;
    };
    let q = |p| stats.lateness_quantile(p).unwrap_or_default();
    let late = stats.lateness_counts().iter().skip(100).sum::<u64>();
    println!(
        "bare pacer, {n} streams {secs} s: sent {sent}; lateness p50 {:?}  p99 {:?}  p99.9 {:?}  max {:?}; late (>1 ms) {late}",
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    );
    println!(
        "bare pacer CPU {:?} = {:.1} % of a core, {:.2} µs per packet",
        cpu,
        100.0 * cpu.as_secs_f64() / secs as f64,
        cpu.as_secs_f64() * 1e6 / sent.max(1) as f64,
    );
    let bare_per_packet = cpu.as_secs_f64() * 1e6 / sent.max(1) as f64;
    println!(
        "engine per packet {engine_per_packet:.2} µs = {:.2}x the bare pacer's {bare_per_packet:.2} µs",
        engine_per_packet / bare_per_packet.max(f64::MIN_POSITIVE)
    );
    println!(
        "bare pacer stalls: latest wake-up {latest_wake:?} ({late_wakes} of {} over 1 ms), longest sendto {longest:?} ({stalls} over 1 ms)",
        secs * 1000
    );
}
