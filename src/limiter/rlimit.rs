//! The process's open-file limit: read, raised to the hard limit at start, and what it allows
//! as a connection count when `limits.max_connections = 0` (auto).

/// File descriptors kept back from `max_connections = 0` (auto): the store, its readers,
/// the listening socket, logs and connections refused while full.
pub const FD_RESERVE: u64 = 256;
/// `max_connections` when the open-file limit cannot be read.
const FALLBACK_MAX_CONNECTIONS: usize = 10_000;
/// The soft open-file limit minus [`FD_RESERVE`], as a connection count.
pub(super) fn auto_max_connections() -> usize {
    match nofile_limit() {
        Some(n) if n > 2 * FD_RESERVE => (n - FD_RESERVE) as usize,
        Some(n) => (n / 2).max(1) as usize,
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// The soft limit on open files of this process.
#[cfg(unix)]
pub fn nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and has no other effect.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    // `rlim_t` is u64 on Linux but not on every unix.
    #[allow(clippy::unnecessary_cast)]
    let cur = lim.rlim_cur as u64;
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(cur)
}

#[cfg(not(unix))]
pub fn nofile_limit() -> Option<u64> {
    None
}

/// Raises the soft open-file limit to the hard limit (a server holding thousands of sockets
/// should not stop at a shell's default 1024). Returns the soft limit now in force.
#[cfg(unix)]
pub fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
        }
    }
    nofile_limit()
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> Option<u64> {
    None
}
