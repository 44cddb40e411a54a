//! Who a request comes from: the TCP peer, or, when the peer is a proxy the operator
//! trusts, the address that proxy reports in `X-Forwarded-For`.
//!
//! Without `--trusted-proxy` the header is ignored, so nobody can claim another address.
//! Behind a proxy that is not listed, every client shares the proxy's address: one limit
//! for everyone, which is why `deploy/haproxy.cfg` sends the header and README says to
//! list the proxy.

use std::net::IpAddr;

use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// The address a request is attributed to, and its key for limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The key limits count this address under.
    pub fn key(&self) -> String {
        address_key(self.0)
    }
}

impl TrustedProxies {
    /// Trusts these networks (`10.0.0.0/8`, `127.0.0.1/32`, `::1/128`).
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies { nets }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself, unless it is trusted and the
    /// `X-Forwarded-For` values (in header order) name someone. The list is read from the
    /// right, skipping trusted proxies; the first address that is not one is the client.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> ClientAddress {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return ClientAddress(client);
        }
        let hops = forwarded_for.iter().flat_map(|value| value.split(',')).map(str::trim);
        for hop in hops.collect::<Vec<_>>().into_iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        ClientAddress(client)
    }
}

/// One element of `X-Forwarded-For`: an address, perhaps with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The key an address is limited under: IPv4 addresses as they are, IPv6 addresses by
/// their /64, since one subscriber usually holds a whole /64 and could otherwise take a
/// fresh address for every attempt.
pub fn address_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let check = |peer: &str, header: &[&str], expected: &str| {
            assert_eq!(proxies.client(ip(peer), header), ClientAddress(ip(expected)), "{header:?}");
        };
        check("203.0.113.9", &["198.51.100.1"], "203.0.113.9");
        check("10.0.0.2", &["198.51.100.1"], "198.51.100.1");
        check("10.0.0.2", &[], "10.0.0.2");
        // A client cannot hide behind a forged entry on the left: the list is read from the
        // right, and the first untrusted address is the client.
        check("10.0.0.2", &["1.2.3.4, 198.51.100.1"], "198.51.100.1");
        check("10.0.0.2", &["198.51.100.1, 10.0.0.7"], "198.51.100.1");
        check("10.0.0.2", &["198.51.100.1", "10.0.0.7"], "198.51.100.1");
        check("10.0.0.2", &["garbage"], "10.0.0.2");
        check("10.0.0.2", &["198.51.100.1:4711"], "198.51.100.1");
        check("10.0.0.2", &["[2001:db8::1]:4711"], "2001:db8::1");
        check("::ffff:10.0.0.2", &["198.51.100.1"], "198.51.100.1");
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(address_key(ip("2001:db8:1:2:ffff::9")), address_key(ip("2001:db8:1:2::1")));
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(address_key(ip("192.0.2.1")), "192.0.2.1");
    }
}
