//! The base URL of printed links and QR codes when `server.public_url` is not set: the bound
//! address, or, when bound to every interface (`0.0.0.0`, `[::]`), this machine's address on
//! the local network, since no phone can open `http://0.0.0.0:8080`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Interfaces that are not the network people's phones are on (containers, virtual bridges).
const VIRTUAL_PREFIXES: &[&str] = &["docker", "br-", "veth", "virbr", "cni", "flannel", "lo"];

/// How the base URL was chosen, for the startup banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `server.public_url`.
    Configured,
    /// The address the server is bound to.
    Bound,
    /// Bound to every interface: the machine's address on the local network.
    Lan,
    /// Bound to every interface but no network address found: only this machine can open it.
    NoLan,
}

/// The base URL (no trailing slash) and how it was chosen.
pub fn public_url(configured: Option<&str>, local: SocketAddr, tls: bool) -> (String, Origin) {
    if let Some(url) = configured {
        return (url.trim_end_matches('/').to_string(), Origin::Configured);
    }
    let scheme = if tls { "https" } else { "http" };
    if !local.ip().is_unspecified() {
        return (format!("{scheme}://{local}"), Origin::Bound);
    }
    match lan_address(local.ip()) {
        Some(ip) => (
            format!("{scheme}://{}", SocketAddr::new(ip, local.port())),
            Origin::Lan,
        ),
        None => {
            let loopback = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port());
            (format!("{scheme}://{loopback}"), Origin::NoLan)
        }
    }
}

/// The address phones on the same network most likely reach this machine at: a private IPv4
/// address (home and venue Wi-Fi) first, then any other routable IPv4, then a global IPv6
/// (only when bound to `[::]`). Virtual interfaces (Docker, bridges) are passed over.
pub fn lan_address(bound: IpAddr) -> Option<IpAddr> {
    let mut best: Option<(u8, IpAddr)> = None;
    for (name, ip) in interface_addresses() {
        if VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let rank = match ip {
            IpAddr::V4(v4) if v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() => {
                continue
            }
            IpAddr::V4(v4) if v4.is_private() => 0,
            IpAddr::V4(_) => 1,
            IpAddr::V6(v6)
                if bound.is_ipv6()
                    && !v6.is_loopback()
                    && !v6.is_unspecified()
                    && (v6.segments()[0] & 0xffc0) != 0xfe80 =>
            {
                2
            }
            IpAddr::V6(_) => continue,
        };
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, ip));
        }
    }
    best.map(|(_, ip)| ip)
}

/// Every address of every interface that is up, with the interface's name.
#[cfg(unix)]
fn interface_addresses() -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read, then free once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while let Some(ifa) = cur.as_ref() {
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) == 0 {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let ip = match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::from(sin6.sin6_addr.s6_addr)
                }
                _ => continue,
            };
            out.push((name, ip));
        }
        libc::freeifaddrs(list);
    }
    out
}

#[cfg(not(unix))]
fn interface_addresses() -> Vec<(String, IpAddr)> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_and_bound_addresses_are_kept() {
        let a: SocketAddr = "192.168.1.5:8080".parse().unwrap();
        assert_eq!(
            public_url(Some("https://cap.example/"), a, false),
            ("https://cap.example".into(), Origin::Configured)
        );
        assert_eq!(
            public_url(None, a, true),
            ("https://192.168.1.5:8080".into(), Origin::Bound)
        );
    }

    #[test]
    fn every_interface_becomes_a_reachable_address() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let (url, origin) = public_url(None, any, false);
        assert!(!url.contains("0.0.0.0"), "{url}");
        assert!(url.ends_with(":8080"), "{url}");
        match origin {
            Origin::Lan => {
                let ip = lan_address(any.ip()).unwrap();
                assert!(!ip.is_loopback() && !ip.is_unspecified());
                // An address of this machine: it can be bound.
                std::net::TcpListener::bind((ip, 0)).expect("bind the LAN address");
            }
            Origin::NoLan => assert_eq!(url, "http://127.0.0.1:8080"),
            other => panic!("{other:?}"),
        }
    }
}
