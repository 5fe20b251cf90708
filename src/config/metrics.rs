//! `[metrics]`: who may read `/metrics`, and where it is served.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

/// `/metrics` is served on the main listener to the peers in `allow`, or, when `listen` is
/// set, only on that address (again to the peers in `allow`). `/healthz` and `/readyz` are
/// served to everyone on both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Addresses or networks (`10.0.0.5`, `10.0.0.0/24`, `::1`) whose connections may read
    /// `/metrics`. Matched against the TCP peer, never X-Forwarded-For. Default: loopback.
    pub allow: Vec<AllowedNet>,
    /// A separate listen address for `/metrics` (and the probes), e.g. `127.0.0.1:9090`;
    /// then the main listener does not serve `/metrics` at all.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                AllowedNet::new(IpAddr::from([127, 0, 0, 0]), 8),
                AllowedNet::new(IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
            ],
            listen: None,
        }
    }
}

impl MetricsConfig {
    /// Whether a connection from `peer` may read `/metrics`.
    pub fn allows(&self, peer: IpAddr) -> bool {
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        self.allow.iter().any(|n| n.contains(peer))
    }
}

/// An address with a prefix length: `10.0.0.0/8`, or one address (`10.0.0.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AllowedNet {
    addr: IpAddr,
    prefix: u8,
}

impl AllowedNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        Self { addr, prefix }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
            let keep = u32::from(prefix.min(width));
            let drop = u32::from(width) - keep;
            bits.checked_shr(drop).unwrap_or(0)
        }
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), 32, self.prefix)
                    == masked(u32::from(a).into(), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

impl TryFrom<String> for AllowedNet {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "[metrics] allow: {s:?} is not an address or network; write e.g. \"10.0.0.5\" or \
                 \"10.0.0.0/24\""
            )
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.as_str(), None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
            None => width,
        };
        Ok(Self { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> AllowedNet {
        AllowedNet::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn networks_match_their_addresses_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(net("10.1.0.0/16").contains(ip("10.1.200.3")));
        assert!(!net("10.1.0.0/16").contains(ip("10.2.0.1")));
        assert!(net("10.0.0.5").contains(ip("10.0.0.5")));
        assert!(!net("10.0.0.5").contains(ip("10.0.0.6")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:1::1")));
        assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
        let c = MetricsConfig::default();
        assert!(c.allows(ip("127.0.0.1")));
        assert!(c.allows(ip("::ffff:127.0.0.1")));
        assert!(c.allows(ip("::1")));
        assert!(!c.allows(ip("192.0.2.1")));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/x", ""] {
            let e = AllowedNet::try_from(bad.to_string()).unwrap_err();
            assert!(e.contains("[metrics] allow"), "{e}");
        }
    }
}
