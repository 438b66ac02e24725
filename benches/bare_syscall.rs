//! This machine's bare cost of the syscalls the switch's media path makes, measured in
//! the same run as a figure so that every figure can be stated as a ratio to it
//! (machines of one kind differ by 2x or more; issue 15).
//!
//! `cargo bench --bench bare_syscall` (run it pinned, `taskset -c 1`, as the switch is
//! pinned in `bench/cost.sh`). Prints, per 172-byte datagram on loopback (a 20 ms G.711
//! RTP packet), the CPU time of this thread (user + sys, from `getrusage(RUSAGE_THREAD)`):
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
//! Only syscalls, no switch code: the floor under what the switch can cost per packet.

use std::mem::zeroed;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

const SIZE: usize = 172;
const PACKETS: usize = 200_000;
const BATCH: usize = 32;
const SOCKETS: usize = 1000;

fn thread_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
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
    let start = thread_cpu();
    let mut sent = 0;
    while sent < PACKETS {
        sent += f();
    }
    let per = (thread_cpu() - start).as_secs_f64() * 1e6 / sent as f64;
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
    Ok(())
}
