//! This machine's bare cost of the syscalls the switch's media path makes, measured in
//! the same run as a figure so that every figure can be stated as a ratio to it
//! (machines of one kind differ by 2x or more; issue 15).
//!
//! `cargo bench --bench bare_syscall` (run it pinned, `taskset -c 1`, as the switch is
//! pinned in `bench/cost.sh`). Prints, per 172-byte datagram on loopback (a 20 ms G.711
//! RTP packet), the CPU time of this process (user + sys, from `getrusage(RUSAGE_SELF)`:
//! the one thread, and any `io_uring` kernel worker it hands a send to):
//!
//! * `sendto`: one `sendto` to a socket nobody reads (once its buffer is full the kernel
//!   drops on delivery, as it does for a far end that is slow: the sender's cost is the same);
//! * `sendto+recv`: one `sendto` and the `recvfrom` that drains it (a relayed packet's
//!   two syscalls, receive and send, on one core);
//! * `sendmmsg32+recv`: `sendmmsg` of 32 datagrams and their drain, per datagram;
//! * `sendto x1000`: unconnected `sendto`s round-robin over 1 000 sockets, each to its own
//!   receiver nobody reads, as a pacing thread sends one packet per stream: the same
//!   syscall with a working set of 1 000 sockets and destinations instead of one hot one
//!   (the kernel's socket, route and receiving-socket lookups miss the cache).
//!
//! * `io_uring x1000 bN`: the same 1 000 sockets and destinations, but N `sendmsg`s
//!   queued on an `io_uring` and submitted with one `io_uring_enter`, as a pacing thread
//!   could send one tick's packets across all its streams (`sendmmsg` cannot: it batches
//!   on one socket only, and each stream has its own). N = 32 is about one tick's worth at
//!   1 500 streams (a packet per stream per 20 ms, ticks of 0.5 ms), N = 256 a busy tick.
//!
//! Only syscalls, no switch code: the floor under what the switch can cost per packet.

use std::mem::zeroed;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

const SIZE: usize = 172;
const PACKETS: usize = 200_000;
const BATCH: usize = 32;
const SOCKETS: usize = 1000;

fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(us(ru.ru_utime) + us(ru.ru_stime))
}

fn pair() -> std::io::Result<(UdpSocket, UdpSocket)> {
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    rx.set_nonblocking(true)?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    tx.connect(rx.local_addr()?)?;
    Ok((tx, rx))
}

fn drain(rx: &UdpSocket, buf: &mut [u8]) {
    while rx.recv_from(buf).is_ok() {}
}

/// Per-packet CPU of `f`, run over PACKETS packets (f returns how many it sent).
fn measure(what: &str, mut f: impl FnMut() -> usize) {
    let start = process_cpu();
    let mut sent = 0;
    while sent < PACKETS {
        sent += f();
    }
    let per = (process_cpu() - start).as_secs_f64() * 1e6 / sent as f64;
    println!("bare {what:<16} {per:.2} us CPU per {SIZE}-byte datagram");
}

fn main() -> std::io::Result<()> {
    let payload = [0x55u8; SIZE];
    let mut buf = [0u8; 2048];

    let (tx, _rx) = pair()?;
    measure("sendto", || {
        let _ = tx.send(&payload);
        1
    });

    let (tx, rx) = pair()?;
    measure("sendto+recv", || {
        let _ = tx.send(&payload);
        let _ = rx.recv_from(&mut buf);
        1
    });

    let (tx, rx) = pair()?;
    let fd = tx.as_raw_fd();
    measure("sendmmsg32+recv", || {
        let mut iov: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: SIZE,
        });
        // SAFETY: the headers point at iovecs and a payload that outlive the call.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), BATCH as u32, 0) };
        drain(&rx, &mut buf);
        n.max(0) as usize
    });

    let senders: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let sinks: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let dests: Vec<_> = sinks
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<Result<_, _>>()?;
    let mut i = 0;
    measure("sendto x1000", || {
        let _ = senders[i].send_to(&payload, dests[i]);
        i = (i + 1) % SOCKETS;
        1
    });

    for batch in [32, 256] {
        match uring_round_robin(&senders, &dests, &payload, batch) {
            Ok(()) => {}
            // A kernel or sandbox without io_uring: say so, the other rows stand.
            Err(e) => println!("bare io_uring x1000 b{batch}: not available here ({e})"),
        }
    }
    Ok(())
}

/// `sendmsg`s round-robin over `senders`, `batch` per `io_uring_enter`.
fn uring_round_robin(
    senders: &[UdpSocket],
    dests: &[std::net::SocketAddr],
    payload: &[u8],
    batch: usize,
) -> std::io::Result<()> {
    use io_uring::{opcode, types, IoUring};
    let mut ring = IoUring::new(batch.next_power_of_two() as u32)?;
    // One header, address and iovec per socket, fixed in memory while the ring may read them.
    let names: Vec<libc::sockaddr_in> = dests
        .iter()
        .map(|d| {
            // SAFETY: sockaddr_in is plain data; every field used is set below.
            let mut sa: libc::sockaddr_in = unsafe { zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = d.port().to_be();
            if let std::net::IpAddr::V4(ip) = d.ip() {
                sa.sin_addr.s_addr = u32::from_ne_bytes(ip.octets());
            }
            sa
        })
        .collect();
    let mut iovs: Vec<libc::iovec> = (0..senders.len())
        .map(|_| libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        })
        .collect();
    let hdrs: Vec<libc::msghdr> = names
        .iter()
        .zip(iovs.iter_mut())
        .map(|(n, v)| {
            // SAFETY: msghdr is plain data; name, iov and their lengths are set.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_name = n as *const libc::sockaddr_in as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_iov = v;
            h.msg_iovlen = 1;
            h
        })
        .collect();
    let mut i = 0;
    let mut failed = 0u64;
    let what = format!("io_uring x1000 b{batch}");
    measure(&what, || {
        for _ in 0..batch {
            let sqe = opcode::SendMsg::new(types::Fd(senders[i].as_raw_fd()), &hdrs[i])
                .build()
                .user_data(i as u64);
            // SAFETY: the header, its address and iovec live until the completions are reaped below.
            if unsafe { ring.submission().push(&sqe) }.is_err() {
                break;
            }
            i = (i + 1) % senders.len();
        }
        let n = ring.submit_and_wait(batch).unwrap_or(0);
        failed += ring.completion().filter(|c| c.result() < 0).count() as u64;
        n
    });
    if failed > 0 {
        println!("  ({failed} sends failed)");
    }
    Ok(())
}
