//! What the benches share: pinning a thread to a CPU, its threads' CPU time,
//! an `epoll` set.
// Every bench that includes this module compiles it on its own and uses part of it.
#![allow(dead_code)]

use std::time::Duration;

/// Pins the calling thread to one CPU. Threads it spawns afterwards start
/// with the same affinity.
pub fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only
    // touch the set passed to them.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPU (utime + stime) of this process's threads whose name starts with
/// `prefix`, from /proc (USER_HZ = 100).
pub fn threads_cpu(prefix: &str) -> Duration {
    let mut ticks = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for task in dir.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.trim().starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let f: Vec<&str> = stat
                .get(close + 2..)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let u: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
            let s: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
            ticks += u + s;
        }
    }
    Duration::from_millis(ticks * 10)
}

/// A CPU number from the environment variable `name`, if it is set and a number.
pub fn cpu_from_env(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// An `epoll` set over a list of sockets (level-triggered, readable), that
/// names the ready ones by their index in the list.
pub struct Poller {
    fd: i32,
    events: Vec<libc::epoll_event>,
}

impl Poller {
    pub fn new<S: std::os::fd::AsRawFd>(socks: &[S]) -> Self {
        // SAFETY: epoll_create1 takes no pointer; the descriptor is closed on drop.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        for (i, s) in socks.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: `ev` lives across the call; the caller keeps the sockets
            // open while it waits on the set.
            unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
        }
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        Poller { fd, events }
    }

    /// The indices of the sockets with something to read, waiting up to
    /// `timeout_ms` (0: not at all) for the first.
    pub fn wait(&mut self, timeout_ms: i32) -> impl Iterator<Item = usize> + '_ {
        let room = self.events.len() as i32;
        // SAFETY: `events` has room for the count passed.
        let n = unsafe { libc::epoll_wait(self.fd, self.events.as_mut_ptr(), room, timeout_ms) };
        self.events
            .iter()
            .take(n.max(0) as usize)
            .map(|ev| ev.u64 as usize)
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // SAFETY: the descriptor is this Poller's own, closed once.
        unsafe { libc::close(self.fd) };
    }
}
