//! Admission limits: open connections per node and per client address and the new-connection
//! rate per address; `limiter/bucket.rs` is the token bucket (which also paces each
//! publisher's messages), `limiter/rlimit.rs` the open-file limit.
//!
//! The accept loop asks [`ConnLimiter::permit`] for a [`ConnPermit`] before it serves a single
//! byte; the permit is held for the connection's whole life (HTTP keep-alive and WebSocket
//! alike) and gives its slot back on drop. Addresses are keyed per IPv4 address and per IPv6
//! /64 (one phone on IPv6 usually owns a whole /64). Loopback is exempt from the per-address
//! limits by default: load tests run from 127.0.0.x, and a reverse proxy on the same host
//! makes every client look like 127.0.0.1 (the proxy then does per-client limiting, see
//! docs/deploy.md).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Limits;
use crate::metrics::{Metrics, Refused};
use crate::protocol::ErrorCode;

mod bucket;
mod rlimit;

pub use bucket::TokenBucket;
use rlimit::auto_max_connections;
pub use rlimit::{nofile_limit, raise_nofile_limit, FD_RESERVE};

/// The per-address table is swept of idle entries once it holds this many.
const SWEEP_AT: usize = 4096;

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// `limits.max_connections` connections are open (HTTP 503).
    NodeFull,
    /// `limits.per_ip_max_connections` connections are open from this address (HTTP 429).
    IpConnections,
    /// The address opened connections faster than `limits.per_ip_connect_rate` (HTTP 429).
    IpRate,
}

impl Denied {
    /// The HTTP status the refused connection is answered with.
    pub fn http_status(self) -> u16 {
        match self {
            Denied::NodeFull => 503,
            Denied::IpConnections | Denied::IpRate => 429,
        }
    }

    /// The error code in the JSON body.
    pub fn code(self) -> ErrorCode {
        match self {
            Denied::NodeFull => ErrorCode::ServerFull,
            Denied::IpConnections => ErrorCode::TooManyConnections,
            Denied::IpRate => ErrorCode::ConnectingTooFast,
        }
    }

    /// A message for people.
    pub fn message(self) -> &'static str {
        match self {
            Denied::NodeFull => "this server is at its connection limit; retry shortly",
            Denied::IpConnections => "too many open connections from your address",
            Denied::IpRate => "too many new connections from your address; slow down",
        }
    }

    /// Seconds a client should wait before retrying (`Retry-After`).
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Denied::NodeFull => 5,
            Denied::IpConnections => 10,
            Denied::IpRate => 1,
        }
    }

    fn refused(self) -> Refused {
        match self {
            Denied::NodeFull => Refused::NodeFull,
            Denied::IpConnections => Refused::IpConnections,
            Denied::IpRate => Refused::IpRate,
        }
    }
}

#[derive(Debug)]
struct AddrState {
    open: usize,
    bucket: TokenBucket,
}

/// Counts open connections and enforces the connection limits of `[limits]`.
#[derive(Debug)]
pub struct ConnLimiter {
    max: usize,
    open: AtomicUsize,
    per_ip_max: usize,
    rate: f64,
    burst: f64,
    exempt_loopback: bool,
    addrs: Mutex<HashMap<IpAddr, AddrState>>,
    metrics: Arc<Metrics>,
}

/// One admitted connection; gives its slots back when dropped.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    /// The address key, when the connection counts against a per-address limit.
    addr: Option<IpAddr>,
}

impl ConnPermit {
    /// The metrics the permit reports to.
    pub fn metrics(&self) -> &Metrics {
        &self.limiter.metrics
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limiter.open.fetch_sub(1, Ordering::Relaxed);
        self.limiter.metrics.http_connection_closed();
        if let Some(key) = self.addr {
            let mut addrs = self.limiter.addrs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = addrs.get_mut(&key) {
                s.open = s.open.saturating_sub(1);
                if s.open == 0 && s.bucket.is_full(Instant::now()) {
                    addrs.remove(&key);
                }
            }
        }
    }
}

/// The per-address key: the IPv4 address, or the IPv6 /64.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl ConnLimiter {
    /// A limiter for `limits`; `max_connections = 0` is resolved from the open-file limit.
    pub fn new(limits: &Limits, metrics: Arc<Metrics>) -> ConnLimiter {
        let max = match limits.max_connections {
            0 => auto_max_connections(),
            n => n,
        };
        metrics.set_max_connections(max as u64);
        ConnLimiter {
            max,
            open: AtomicUsize::new(0),
            per_ip_max: limits.per_ip_max_connections,
            rate: limits.per_ip_connect_rate,
            burst: limits.per_ip_connect_burst as f64,
            exempt_loopback: limits.per_ip_exempt_loopback,
            addrs: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The node-wide connection limit in force.
    pub fn max_connections(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits a new connection from `ip`, or says why not (and counts the refusal).
    pub fn permit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Denied> {
        let result = self.try_permit(ip);
        if let Err(d) = result {
            self.metrics.refuse(d.refused());
        }
        result
    }

    fn try_permit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Denied> {
        if self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(Denied::NodeFull);
        }
        let per_addr = (self.per_ip_max > 0 || self.rate > 0.0)
            && !(self.exempt_loopback && ip.to_canonical().is_loopback());
        let mut permit = ConnPermit {
            limiter: self.clone(),
            addr: None,
        };
        self.metrics.http_connection_opened();
        if !per_addr {
            return Ok(permit);
        }
        let key = addr_key(ip);
        let now = Instant::now();
        let mut addrs = self.addrs.lock().unwrap_or_else(|e| e.into_inner());
        if addrs.len() >= SWEEP_AT {
            addrs.retain(|_, s| s.open > 0 || !s.bucket.is_full(now));
        }
        let state = addrs.entry(key).or_insert_with(|| AddrState {
            open: 0,
            bucket: TokenBucket::new(self.rate, self.burst, now),
        });
        if self.per_ip_max > 0 && state.open >= self.per_ip_max {
            return Err(Denied::IpConnections);
        }
        if self.rate > 0.0 && !state.bucket.try_take(now) {
            return Err(Denied::IpRate);
        }
        state.open += 1;
        permit.addr = Some(key);
        Ok(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(f: impl FnOnce(&mut Limits)) -> Arc<ConnLimiter> {
        let mut l = Limits::default();
        f(&mut l);
        Arc::new(ConnLimiter::new(&l, Arc::new(Metrics::default())))
    }

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 3.0, t0);
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
        assert!(b.is_full(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn node_limit_counts_open_connections() {
        let l = limiter(|l| l.max_connections = 2);
        let a = l.permit("10.0.0.1".parse().unwrap()).unwrap();
        let _b = l.permit("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            l.permit("10.0.0.3".parse().unwrap()).unwrap_err(),
            Denied::NodeFull
        );
        drop(a);
        assert!(l.permit("10.0.0.3".parse().unwrap()).is_ok());
    }

    #[test]
    fn per_address_limits_and_loopback_exemption() {
        let l = limiter(|l| {
            l.per_ip_max_connections = 2;
            l.per_ip_connect_rate = 0.0;
        });
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let a = l.permit(ip).unwrap();
        let _b = l.permit(ip).unwrap();
        assert_eq!(l.permit(ip).unwrap_err(), Denied::IpConnections);
        assert!(l.permit("10.0.0.10".parse().unwrap()).is_ok());
        drop(a);
        assert!(l.permit(ip).is_ok());
        // Loopback is exempt by default.
        let lo: IpAddr = "127.0.0.5".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| l.permit(lo).unwrap()).collect();
        assert_eq!(held.len(), 5);
    }

    #[test]
    fn per_address_rate() {
        let l = limiter(|l| {
            l.per_ip_connect_rate = 1.0;
            l.per_ip_connect_burst = 3;
        });
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| l.permit(ip).unwrap()).collect();
        assert_eq!(l.permit(same_64).unwrap_err(), Denied::IpRate);
        drop(held);
        assert!(l.permit("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn mapped_ipv4_is_keyed_as_ipv4() {
        assert_eq!(
            addr_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }
}
