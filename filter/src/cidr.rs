//! IP prefixes (CIDRs) and sets of them, for client-address rules.
//!
//! Addresses are compared in one 128-bit space: IPv4 `a.b.c.d` is the IPv4-mapped IPv6 address
//! `::ffff:a.b.c.d`, so a v4 rule also matches a client that Envoy reports in v4-mapped form on a
//! dual-stack listener, and vice versa.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network prefix such as `10.0.0.0/8` or `2001:db8::/32`, stored as a mapped 128-bit range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: u128,
    /// Prefix length in the 128-bit space (an IPv4 `/8` is stored as `/104`).
    len: u8,
}

/// Widens an address to the 128-bit space, mapping IPv4 to `::ffff:0:0/96`.
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// Why a CIDR string was refused; shown in configuration errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    Address,
    PrefixLength,
    /// Bits set after the prefix (`10.1.2.3/8`): almost always a typo for a narrower rule.
    HostBits,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CidrError::Address => "not an IP address",
            CidrError::PrefixLength => "prefix length out of range",
            CidrError::HostBits => "address has bits set beyond the prefix length",
        })
    }
}

impl Cidr {
    /// The prefix of the given length that contains `ip` (host bits cleared).
    pub fn containing(ip: IpAddr, prefix_len: u8) -> Cidr {
        let (offset, max) = match ip {
            IpAddr::V4(_) => (96u8, 32u8),
            IpAddr::V6(_) => (0, 128),
        };
        let len = offset + prefix_len.min(max);
        Cidr {
            network: to_u128(ip) & mask(len),
            len,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        to_u128(ip) & mask(self.len) == self.network
    }

    fn is_v4(&self) -> bool {
        self.len >= 96 && self.network >> 32 == 0xffff
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Accepts `addr/len` or a bare address (a host route). Host bits must be zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| CidrError::Address)?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => {
                // Leading '+' or zeros are accepted by u8::from_str; refuse them for clarity.
                if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CidrError::PrefixLength);
                }
                let n: u8 = l.parse().map_err(|_| CidrError::PrefixLength)?;
                if n > max {
                    return Err(CidrError::PrefixLength);
                }
                n
            }
        };
        let cidr = Cidr::containing(ip, len);
        if cidr.network != to_u128(ip) {
            return Err(CidrError::HostBits);
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_v4() {
            // The low 32 bits of a mapped address are the IPv4 address.
            let v4 = Ipv4Addr::from((self.network & 0xffff_ffff) as u32);
            write!(f, "{}/{}", v4, self.len - 96)
        } else {
            write!(f, "{}/{}", Ipv6Addr::from(self.network), self.len)
        }
    }
}

/// A set of prefixes with a membership test. Small sets (the common case) are scanned; the scan
/// is over 17-byte entries and branch-free per entry, which beats a trie below a few hundred rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CidrSet {
    prefixes: Vec<Cidr>,
}

impl CidrSet {
    pub fn new(mut prefixes: Vec<Cidr>) -> CidrSet {
        // Sorted and deduplicated so that equal configurations compare equal.
        prefixes.sort_by_key(|c| (c.network, c.len));
        prefixes.dedup();
        CidrSet { prefixes }
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let addr = to_u128(ip);
        self.prefixes
            .iter()
            .any(|c| addr & mask(c.len) == c.network)
    }
}

/// Parses Envoy's `source.address` property: `1.2.3.4:5678` or `[2001:db8::1]:5678`.
/// Anything else (a pipe path, garbage) is `None`, which IP rules treat as "not allowed".
///
/// An IPv4-mapped address (`[::ffff:10.7.7.7]:0`, from an `x-forwarded-for` entry or a
/// dual-stack socket) is returned as the IPv4 address it maps: this is the one place the client
/// address is read, so IP rules, rate-limit keys (`v4_prefix`, not `v6_prefix`) and logs all see
/// an IPv4 client. The IPv4-compatible form `::a.b.c.d` (deprecated) and NAT64 stay IPv6.
pub fn parse_socket_ip(s: &str) -> Option<IpAddr> {
    parse_socket_ip_as_sent(s).map(|ip| ip.to_canonical())
}

fn parse_socket_ip_as_sent(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, _) = rest.split_once(']')?;
        return addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    // A bare address (IPv6 without brackets has no port), else `v4:port`.
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let (addr, port) = s.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_matches_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            // A v4 /0 matches every IPv4 client but no native IPv6 client.
            ("0.0.0.0/0", "2001:db8::1", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "2001:db8::1", true),
            // v4-mapped v6 clients match v4 rules, and v6-mapped rules match v4 clients.
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("::ffff:10.0.0.0/104", "10.1.2.3", true),
            ("127.0.0.1/32", "::1", false),
        ];
        for (cidr, addr, want) in cases {
            let c: Cidr = cidr.parse().unwrap();
            assert_eq!(c.contains(ip(addr)), *want, "{cidr} contains {addr}");
        }
    }

    #[test]
    fn rejects_malformed_table() {
        let cases: &[(&str, CidrError)] = &[
            ("10.0.0.300/8", CidrError::Address),
            ("10.0.0.0/33", CidrError::PrefixLength),
            ("10.0.0.0/", CidrError::PrefixLength),
            ("10.0.0.0/-1", CidrError::PrefixLength),
            ("10.0.0.0/+8", CidrError::PrefixLength),
            ("10.0.0.0/0008", CidrError::PrefixLength),
            ("2001:db8::/129", CidrError::PrefixLength),
            ("10.1.2.3/8", CidrError::HostBits),
            ("", CidrError::Address),
            ("localhost/8", CidrError::Address),
            ("10.0.0.0/8/8", CidrError::PrefixLength),
            (" 10.0.0.0/8", CidrError::Address),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Cidr>().unwrap_err(), *want, "{s:?}");
        }
    }

    #[test]
    fn displays_in_family() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "2001:db8::/32".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::/32"
        );
    }

    #[test]
    fn parses_envoy_source_addresses() {
        assert_eq!(parse_socket_ip("127.0.0.1:5555"), Some(ip("127.0.0.1")));
        assert_eq!(parse_socket_ip("[::1]:5555"), Some(ip("::1")));
        // IPv4-mapped clients are IPv4 clients (rate-limit keys, logs, IP rules).
        assert_eq!(parse_socket_ip("[::ffff:10.0.0.1]:0"), Some(ip("10.0.0.1")));
        assert_eq!(parse_socket_ip("::ffff:10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(parse_socket_ip("[::FFFF:a00:1]:80"), Some(ip("10.0.0.1")));
        // Not mapped: the deprecated IPv4-compatible form and NAT64 stay IPv6.
        assert_eq!(parse_socket_ip("[::10.0.0.1]:80"), Some(ip("::a00:1")));
        assert_eq!(
            parse_socket_ip("[64:ff9b::10.0.0.1]:80"),
            Some(ip("64:ff9b::a00:1"))
        );
        assert_eq!(parse_socket_ip("10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(parse_socket_ip("::1"), Some(ip("::1")));
        assert_eq!(parse_socket_ip("/tmp/envoy.sock"), None);
        assert_eq!(parse_socket_ip("[::1"), None);
        assert_eq!(parse_socket_ip(""), None);
    }

    #[test]
    fn set_is_empty_and_matches_any() {
        let set = CidrSet::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(!set.is_empty());
        assert!(set.contains(ip("10.9.9.9")));
        assert!(set.contains(ip("::1")));
        assert!(!set.contains(ip("127.0.0.1")));
        assert!(!CidrSet::default().contains(ip("10.0.0.1")));
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
            any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        ]
    }

    proptest! {
        /// A prefix contains exactly the addresses that agree with it on the first `len` bits.
        #[test]
        fn containment_is_prefix_agreement(a in any_ip(), b in any_ip(), len in 0u8..=128) {
            let c = Cidr::containing(a, len);
            prop_assert!(c.contains(a));
            let bits = c.len;
            let agree = to_u128(a) & mask(bits) == to_u128(b) & mask(bits);
            prop_assert_eq!(c.contains(b), agree);
        }

        /// Display then parse is the identity for every valid prefix.
        #[test]
        fn display_round_trips(a in any_ip(), len in 0u8..=128) {
            let c = Cidr::containing(a, len);
            let back: Cidr = c.to_string().parse().unwrap();
            prop_assert_eq!(back, c);
        }

        /// Shorter prefixes of the same address contain longer ones.
        #[test]
        fn shorter_prefix_contains_longer(a in any_ip(), b in any_ip(), l1 in 0u8..=128, l2 in 0u8..=128) {
            let (short, long) = (l1.min(l2), l1.max(l2));
            if Cidr::containing(a, long).contains(b) {
                prop_assert!(Cidr::containing(a, short).contains(b));
            }
        }

        /// Set membership is the disjunction of its members.
        #[test]
        fn set_is_union(addrs in proptest::collection::vec((any_ip(), 0u8..=128), 0..8), probe in any_ip()) {
            let cidrs: Vec<Cidr> = addrs.iter().map(|(a, l)| Cidr::containing(*a, *l)).collect();
            let set = CidrSet::new(cidrs.clone());
            prop_assert_eq!(set.contains(probe), cidrs.iter().any(|c| c.contains(probe)));
        }

        /// Whatever the form Envoy reports, a mapped client comes out as its IPv4 address, and
        /// a client never comes out in mapped form.
        #[test]
        fn mapped_clients_parse_as_ipv4(v4 in any::<u32>(), port in any::<u16>()) {
            let a = Ipv4Addr::from(v4);
            let want = Some(IpAddr::V4(a));
            prop_assert_eq!(parse_socket_ip(&format!("[{}]:{port}", a.to_ipv6_mapped())), want);
            prop_assert_eq!(parse_socket_ip(&format!("[::ffff:{a}]:{port}")), want);
            prop_assert_eq!(parse_socket_ip(&format!("{a}:{port}")), want);
            prop_assert_eq!(parse_socket_ip(&a.to_ipv6_mapped().to_string()), want);
        }

        #[test]
        fn parsed_addresses_are_canonical(ip in any_ip(), port in any::<u16>()) {
            let source = match ip {
                IpAddr::V4(a) => format!("{a}:{port}"),
                IpAddr::V6(a) => format!("[{a}]:{port}"),
            };
            let parsed = parse_socket_ip(&source);
            prop_assert_eq!(parsed, Some(ip.to_canonical()));
            prop_assert!(!matches!(parsed, Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some()));
        }

        #[test]
        fn parse_never_panics(s in ".{0,48}") {
            let _ = s.parse::<Cidr>();
            let _ = parse_socket_ip(&s);
        }
    }
}
