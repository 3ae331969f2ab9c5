//! The network guard: which addresses a scan may connect to.
//!
//! hashscan crawls the open web only. A page can point the crawler at
//! `http://10.0.0.1/`, at `169.254.169.254` (cloud metadata) or at a name that
//! resolves to loopback; following such links would turn the crawler into a
//! probe of the network it runs in. The fetcher asks a [`NetPolicy`] about
//! every address **after resolution** (its resolver filters the answers), so a
//! DNS answer that changes between checks cannot slip past.
//!
//! Decision: the policy is deny-by-range with an explicit allow-list of CIDRs
//! per scan (`--allow-net`). The tests' loopback web is reached only because
//! the tests allow exactly the loopback range they serve on.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// Why an address is not part of the open web. Named in every refusal so an
/// operator can see which rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// 0.0.0.0/8, `::` — "this network".
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// RFC 1918 ranges 10/8, 172.16/12, 192.168/16.
    Private,
    /// Carrier-grade NAT 100.64.0.0/10.
    SharedCgnat,
    /// 169.254.0.0/16 (including the metadata address 169.254.169.254), fe80::/10.
    LinkLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 240.0.0.0/4 and 255.255.255.255.
    Reserved,
    /// Unique local IPv6 fc00::/7.
    UniqueLocal,
    /// Documentation and benchmarking ranges (192.0.2/24, 198.18/15, 2001:db8::/32 …): never real hosts.
    Documentation,
}

impl Forbidden {
    /// Short name used in failure reasons and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedCgnat => "cgnat",
            Self::LinkLocal => "link-local",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
            Self::UniqueLocal => "unique-local",
            Self::Documentation => "documentation",
        }
    }
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Classifies an address; `None` means it is a public, routable address.
///
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`) forms are judged by the IPv4
/// address they carry, so an IPv6 spelling cannot smuggle a private target.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let o = ip.octets();
    if o[0] == 0 {
        Some(Forbidden::Unspecified)
    } else if o[0] == 127 {
        Some(Forbidden::Loopback)
    } else if o[0] == 10 || (o[0] == 172 && (16..=31).contains(&o[1])) || (o[0] == 192 && o[1] == 168) {
        Some(Forbidden::Private)
    } else if o[0] == 100 && (64..=127).contains(&o[1]) {
        Some(Forbidden::SharedCgnat)
    } else if o[0] == 169 && o[1] == 254 {
        Some(Forbidden::LinkLocal)
    } else if (224..=239).contains(&o[0]) {
        Some(Forbidden::Multicast)
    } else if o[0] >= 240 {
        Some(Forbidden::Reserved)
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 2)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
        || (o[0] == 198 && (18..=19).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
    {
        Some(Forbidden::Documentation)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(&ip) {
        return classify_v4(v4);
    }
    if ip.is_unspecified() {
        Some(Forbidden::Unspecified)
    } else if ip.is_loopback() {
        Some(Forbidden::Loopback)
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some(Forbidden::LinkLocal)
    } else if seg[0] & 0xff00 == 0xff00 {
        Some(Forbidden::Multicast)
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Some(Forbidden::UniqueLocal)
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some(Forbidden::Documentation)
    } else if seg[0] & 0xffc0 == 0xfec0 {
        // Deprecated site-local fec0::/10: private by intent.
        Some(Forbidden::Private)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address carries in a form a host may route to.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated, but still parsed by stacks); not :: or ::1.
    if seg[..6].iter().all(|s| *s == 0) && !(seg[6] == 0 && seg[7] <= 1) {
        return Some(tail);
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0) {
        return Some(tail);
    }
    // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8));
    }
    None
}

/// A refused address, with the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by network policy: {ip} is {kind} (allow it with --allow-net)")]
pub struct Refused {
    /// The address that was refused.
    pub ip: IpAddr,
    /// The forbidden range it falls in.
    pub kind: Forbidden,
}

/// Which addresses a scan may connect to: every public address, plus the
/// ranges a scan explicitly allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetPolicy {
    allow: Vec<IpNet>,
}

impl NetPolicy {
    /// The default: the open web only.
    pub fn open_web() -> Self {
        Self::default()
    }

    /// The open web plus the given ranges (e.g. the tests' loopback range).
    pub fn with_allowed(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// The allowed extra ranges, recorded on the scan.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether a connection to `ip` is permitted.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        match classify(ip) {
            None => Ok(()),
            Some(_) if self.allow.iter().any(|net| net.contains(&ip)) => Ok(()),
            Some(kind) => Err(Refused { ip, kind }),
        }
    }
}

/// IPv4-mapped IPv6 addresses are compared with allow-lists as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// A malformed `--resolve` or `--allow-net` value; says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `--resolve` must be `HOST=IP`.
    #[error("invalid --resolve {0:?}: expected HOST=IP (e.g. www.example.test=127.0.0.2)")]
    Resolve(String),
    /// `--allow-net` must be a CIDR or a single address.
    #[error("invalid --allow-net {0:?}: expected a CIDR such as 127.0.0.0/8 or an address")]
    Net(String),
}

/// Parses an `--allow-net` value: a CIDR or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, SpecError> {
    let s = s.trim();
    if let Ok(net) = IpNet::from_str(s) {
        return Ok(net.trunc());
    }
    IpAddr::from_str(s).map(IpNet::from).map_err(|_| SpecError::Net(s.to_string()))
}

/// Host-name overrides (`--resolve HOST=IP`), like curl's: used by tests and
/// by operators who must pin a host to one address. The answer still passes
/// the [`NetPolicy`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Overrides {
    map: HashMap<String, IpAddr>,
}

impl Overrides {
    /// Parses `HOST=IP` entries; host names are compared case-insensitively.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, SpecError> {
        let mut map = HashMap::new();
        for spec in specs {
            let spec = spec.as_ref();
            let (host, ip) = spec.split_once('=').ok_or_else(|| SpecError::Resolve(spec.to_string()))?;
            let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
            let ip = ip.trim().trim_start_matches('[').trim_end_matches(']');
            let ip = IpAddr::from_str(ip).map_err(|_| SpecError::Resolve(spec.to_string()))?;
            if host.is_empty() {
                return Err(SpecError::Resolve(spec.to_string()));
            }
            map.insert(host, ip);
        }
        Ok(Self { map })
    }

    /// Adds one override.
    pub fn insert(&mut self, host: &str, ip: IpAddr) {
        self.map.insert(host.trim_end_matches('.').to_ascii_lowercase(), ip);
    }

    /// The pinned address of a host, if any.
    pub fn get(&self, host: &str) -> Option<IpAddr> {
        self.map.get(host.trim_end_matches('.').to_ascii_lowercase().as_str()).copied()
    }

    /// True when nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_forbidden_range_is_refused_by_default() {
        let cases = [
            ("0.0.0.0", Forbidden::Unspecified),
            ("0.1.2.3", Forbidden::Unspecified),
            ("127.0.0.1", Forbidden::Loopback),
            ("127.77.3.4", Forbidden::Loopback),
            ("10.1.2.3", Forbidden::Private),
            ("172.16.0.1", Forbidden::Private),
            ("172.31.255.255", Forbidden::Private),
            ("192.168.1.1", Forbidden::Private),
            ("100.64.0.1", Forbidden::SharedCgnat),
            ("100.127.255.254", Forbidden::SharedCgnat),
            ("169.254.169.254", Forbidden::LinkLocal),
            ("224.0.0.1", Forbidden::Multicast),
            ("239.255.255.250", Forbidden::Multicast),
            ("240.0.0.1", Forbidden::Reserved),
            ("255.255.255.255", Forbidden::Reserved),
            ("192.0.2.10", Forbidden::Documentation),
            ("::", Forbidden::Unspecified),
            ("::1", Forbidden::Loopback),
            ("fe80::1", Forbidden::LinkLocal),
            ("ff02::1", Forbidden::Multicast),
            ("fc00::1", Forbidden::UniqueLocal),
            ("fd12:3456::1", Forbidden::UniqueLocal),
            ("2001:db8::1", Forbidden::Documentation),
            ("::ffff:127.0.0.1", Forbidden::Loopback),
            ("::ffff:10.0.0.1", Forbidden::Private),
            ("::ffff:169.254.169.254", Forbidden::LinkLocal),
            ("::127.0.0.1", Forbidden::Loopback),
            ("::10.0.0.1", Forbidden::Private),
            ("64:ff9b::a00:1", Forbidden::Private),
            ("2002:c0a8:0101::1", Forbidden::Private),
        ];
        let policy = NetPolicy::open_web();
        for (addr, kind) in cases {
            assert_eq!(classify(ip(addr)), Some(kind), "{addr}");
            let err = policy.check(ip(addr)).unwrap_err();
            assert_eq!(err.kind, kind, "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = NetPolicy::open_web();
        for addr in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(policy.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allow_list_opens_exactly_its_range() {
        let policy = NetPolicy::with_allowed(vec![parse_net("127.77.0.0/16").unwrap()]);
        assert!(policy.check(ip("127.77.0.5")).is_ok());
        assert!(policy.check(ip("::ffff:127.77.0.5")).is_ok());
        assert!(policy.check(ip("127.0.0.1")).is_err());
        assert!(policy.check(ip("10.0.0.1")).is_err());
    }

    #[test]
    fn parse_net_accepts_cidr_and_single_address_and_rejects_garbage() {
        assert_eq!(parse_net("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(parse_net("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
        assert!(matches!(parse_net("10.0.0.0/33"), Err(SpecError::Net(_))));
        assert!(matches!(parse_net("localhost"), Err(SpecError::Net(_))));
    }

    #[test]
    fn overrides_parse_and_reject_bad_specs() {
        let o = Overrides::parse(&["WWW.Site.test=127.77.0.1", "v6.test=[::1]"]).unwrap();
        assert_eq!(o.get("www.site.test"), Some(ip("127.77.0.1")));
        assert_eq!(o.get("www.site.test."), Some(ip("127.77.0.1")));
        assert_eq!(o.get("v6.test"), Some(ip("::1")));
        assert_eq!(o.get("other.test"), None);
        for bad in ["nohost", "=127.0.0.1", "a.test=notanip", "a.test=127.0.0.1:80"] {
            assert!(Overrides::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
