//! [`EgressRule`]: one destination a phase lets the agent's pods reach —
//! a namespace or a [`Cidr`] — on some TCP ports. DNS is not a rule: the
//! renderer always allows it.

use std::{fmt, net::IpAddr, str::FromStr};

/// Where an egress rule lets traffic go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EgressTarget {
    /// Every pod of this namespace.
    Namespace(String),
    /// An IP block.
    Cidr(Cidr),
}

/// One egress rule of a phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRule {
    /// The destination.
    pub to: EgressTarget,
    /// TCP ports, sorted, no duplicates; empty means every port.
    pub ports: Vec<u16>,
}

impl EgressRule {
    /// Whether every connection `lower` allows, this rule allows too.
    pub fn covers(&self, lower: &EgressRule) -> bool {
        let to = match (&self.to, &lower.to) {
            (EgressTarget::Namespace(a), EgressTarget::Namespace(b)) => a == b,
            (EgressTarget::Cidr(a), EgressTarget::Cidr(b)) => a.contains(b),
            _ => false,
        };
        let ports = self.ports.is_empty()
            || (!lower.ports.is_empty() && lower.ports.iter().all(|p| self.ports.contains(p)));
        to && ports
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.to {
            EgressTarget::Namespace(namespace) => write!(f, "namespace {namespace}")?,
            EgressTarget::Cidr(cidr) => write!(f, "cidr {cidr}")?,
        }
        if self.ports.is_empty() {
            return f.write_str(" on every port");
        }
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        write!(f, " on port(s) {}", ports.join(", "))
    }
}

/// An IPv4 or IPv6 block in canonical form (no host bits set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    address: IpAddr,
    prefix: u8,
}

/// Why a CIDR did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not `address/prefix` with a valid address and prefix length.
    #[error("`{0}` is not a CIDR: write an address and a prefix length, such as 10.20.0.0/16")]
    Syntax(String),
    /// Bits set after the prefix: the author probably meant another block.
    #[error("`{input}` has bits set after the /{prefix} prefix: write {canonical}")]
    HostBits {
        /// As written.
        input: String,
        /// Its prefix length.
        prefix: u8,
        /// The block it denotes, canonically written.
        canonical: String,
    },
    /// An IPv6 block of IPv4-mapped addresses (`::ffff:a.b.c.d/…`): Go's
    /// network code, which most network plugins are written in, reads
    /// `::ffff:0.0.0.0/96` as every IPv4 address, while the block is
    /// narrow as IPv6, so it would pass the checks on egress width.
    #[error(
        "`{0}` is an IPv4-mapped IPv6 block: write the IPv4 block itself, such as 10.20.0.0/16"
    )]
    Ipv4Mapped(String),
}

impl Cidr {
    /// The prefix length.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// Whether this is every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_everything(self) -> bool {
        self.prefix == 0
    }

    /// Whether it holds more addresses than the widest private range of its
    /// family (`10.0.0.0/8`, `fc00::/7`): no named destination is that
    /// wide, and a few such blocks (`0.0.0.0/1` and `128.0.0.0/1`) are
    /// every address.
    pub fn is_wider_than_private(self) -> bool {
        match self.address {
            IpAddr::V4(_) => self.prefix < 8,
            IpAddr::V6(_) => self.prefix < 7,
        }
    }

    /// Whether every address of `other` is in this block.
    pub fn contains(self, other: &Cidr) -> bool {
        if other.prefix < self.prefix {
            return false;
        }
        match (self.address, other.address) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                mask(u128::from(u32::from(a)), self.prefix, 32)
                    == mask(u128::from(u32::from(b)), self.prefix, 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                mask(u128::from(a), self.prefix, 128) == mask(u128::from(b), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// `bits` (an address of `width` bits) with everything after `prefix` cleared.
fn mask(bits: u128, prefix: u8, width: u8) -> u128 {
    let host_bits = u32::from(width.saturating_sub(prefix));
    let ones = 1u128.checked_shl(host_bits).map_or(u128::MAX, |p| p - 1);
    bits & !ones
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Cidr, CidrError> {
        let syntax = || CidrError::Syntax(input.to_owned());
        let (address, prefix) = input.split_once('/').ok_or_else(syntax)?;
        let address: IpAddr = address.parse().map_err(|_| syntax())?;
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        let (bits, width) = match address {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        if prefix > width {
            return Err(syntax());
        }
        if let IpAddr::V6(v6) = address
            && prefix >= 96
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(CidrError::Ipv4Mapped(input.to_owned()));
        }
        let masked = mask(bits, prefix, width);
        if masked != bits {
            let canonical_address = match address {
                IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(
                    u32::try_from(masked).map_err(|_| syntax())?,
                )),
                IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(masked)),
            };
            return Err(CidrError::HostBits {
                input: input.to_owned(),
                prefix,
                canonical: format!("{canonical_address}/{prefix}"),
            });
        }
        Ok(Cidr { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_canonically() {
        assert_eq!(cidr("10.20.0.0/16").to_string(), "10.20.0.0/16");
        assert!(cidr("0.0.0.0/0").is_everything() && cidr("::/0").is_everything());
        assert_eq!(
            "10.20.1.0/16".parse::<Cidr>().unwrap_err().to_string(),
            "`10.20.1.0/16` has bits set after the /16 prefix: write 10.20.0.0/16"
        );
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/-1",
            "x/8",
            "10.0.0.0/",
            "::/129",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(cidr("10.0.0.7/32").prefix(), 32);
        assert_eq!(cidr("fd00::/8").to_string(), "fd00::/8");
        for mapped in [
            "::ffff:0.0.0.0/96",
            "::ffff:10.0.0.0/104",
            "::ffff:a00:1/128",
        ] {
            assert!(
                matches!(mapped.parse::<Cidr>(), Err(CidrError::Ipv4Mapped(_))),
                "{mapped}"
            );
        }
        assert_eq!(cidr("::/96").prefix(), 96);
    }

    #[test]
    fn containment() {
        assert!(cidr("10.0.0.0/8").contains(&cidr("10.20.0.0/16")));
        assert!(!cidr("10.20.0.0/16").contains(&cidr("10.0.0.0/8")));
        assert!(cidr("0.0.0.0/0").contains(&cidr("192.168.1.1/32")));
        assert!(
            !cidr("0.0.0.0/0").contains(&cidr("::/0")),
            "families differ"
        );
        assert!(!cidr("10.0.0.0/8").contains(&cidr("11.0.0.0/8")));
    }

    #[test]
    fn a_rule_covers_a_narrower_destination_on_fewer_ports() {
        let rule = |to: EgressTarget, ports: &[u16]| EgressRule {
            to,
            ports: ports.to_vec(),
        };
        let wide = rule(EgressTarget::Cidr(cidr("10.0.0.0/8")), &[]);
        let narrow = rule(EgressTarget::Cidr(cidr("10.20.0.0/16")), &[443]);
        assert!(wide.covers(&narrow) && !narrow.covers(&wide));
        let ns = |ports: &[u16]| rule(EgressTarget::Namespace("monitoring".into()), ports);
        assert!(ns(&[9090, 9091]).covers(&ns(&[9090])));
        assert!(!ns(&[9090]).covers(&ns(&[])));
        assert!(!wide.covers(&ns(&[9090])));
    }
}
