//! `TaskCidr`: the IPv4 subnet that task addresses come from, and its address arithmetic.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::NetworkError;

/// An IPv4 subnet such as `10.131.0.0/16`. The first host address is the
/// bridge's (the tasks' gateway); tasks get addresses after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskCidr {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl TaskCidr {
    /// Checks that the subnet has room for a gateway and at least one task
    /// (prefix 8..=30) and that `network` has no host bits set.
    pub fn new(network: Ipv4Addr, prefix_len: u8) -> Result<Self, NetworkError> {
        let invalid = |reason| NetworkError::InvalidCidr {
            cidr: format!("{network}/{prefix_len}"),
            reason,
        };
        if !(8..=30).contains(&prefix_len) {
            return Err(invalid("prefix length must be between 8 and 30"));
        }
        let cidr = Self {
            network,
            prefix_len,
        };
        if u32::from(network) & !cidr.mask() != 0 {
            return Err(invalid("host bits are set"));
        }
        Ok(cidr)
    }

    /// The netmask as a number, e.g. `0xffff_ff00` for a /24.
    #[must_use]
    pub fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }

    /// Number of addresses in the subnet, network and broadcast included.
    #[must_use]
    pub fn size(&self) -> u32 {
        (!self.mask()).wrapping_add(1)
    }

    /// The bridge's address: the first host address (`.1` in a /24).
    #[must_use]
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    #[must_use]
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The address `i` places after the network address, if it is a host
    /// address (not the network or broadcast address). `nth_host(1)` is the
    /// gateway, so task addresses start at `nth_host(2)`.
    #[must_use]
    pub fn nth_host(&self, i: u32) -> Option<Ipv4Addr> {
        if i == 0 || i >= self.size() - 1 {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.network) + i))
    }

    #[must_use]
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Whether `ip` may be given to a task: inside the subnet and not its
    /// network, broadcast or gateway address.
    #[must_use]
    pub fn is_task_address(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.network && ip != self.broadcast() && ip != self.gateway()
    }
}

impl fmt::Display for TaskCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for TaskCidr {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| NetworkError::InvalidCidr {
            cidr: s.to_owned(),
            reason,
        };
        let (network, prefix_len) = s
            .split_once('/')
            .ok_or_else(|| invalid("expected ADDRESS/PREFIX"))?;
        let network = network
            .parse()
            .map_err(|_| invalid("not an IPv4 address"))?;
        let prefix_len = prefix_len
            .parse()
            .map_err(|_| invalid("prefix length is not a number"))?;
        Self::new(network, prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> TaskCidr {
        s.parse().unwrap()
    }

    #[test]
    fn slash_24_math() {
        let c = cidr("10.251.7.0/24");
        assert_eq!(c.mask(), 0xffff_ff00);
        assert_eq!(c.size(), 256);
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 251, 7, 1));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 251, 7, 255));
        assert_eq!(c.nth_host(0), None);
        assert_eq!(c.nth_host(1), Some(c.gateway()));
        assert_eq!(c.nth_host(2), Some(Ipv4Addr::new(10, 251, 7, 2)));
        assert_eq!(c.nth_host(254), Some(Ipv4Addr::new(10, 251, 7, 254)));
        assert_eq!(c.nth_host(255), None);
        assert_eq!(c.to_string(), "10.251.7.0/24");
    }

    #[test]
    fn slash_16_crosses_octets() {
        let c = cidr("10.131.0.0/16");
        assert_eq!(c.nth_host(256), Some(Ipv4Addr::new(10, 131, 1, 0)));
        assert_eq!(c.nth_host(65534), Some(Ipv4Addr::new(10, 131, 255, 254)));
        assert_eq!(c.nth_host(65535), None);
        assert!(c.contains(Ipv4Addr::new(10, 131, 200, 3)));
        assert!(!c.contains(Ipv4Addr::new(10, 132, 0, 3)));
    }

    #[test]
    fn smallest_subnet_has_one_task_address() {
        let c = cidr("192.168.5.4/30");
        assert_eq!(c.gateway(), Ipv4Addr::new(192, 168, 5, 5));
        assert_eq!(c.nth_host(2), Some(Ipv4Addr::new(192, 168, 5, 6)));
        assert_eq!(c.nth_host(3), None);
    }

    #[test]
    fn task_addresses_exclude_reserved_ones() {
        let c = cidr("10.0.0.0/24");
        assert!(c.is_task_address(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(!c.is_task_address(Ipv4Addr::new(10, 0, 0, 0)));
        assert!(!c.is_task_address(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!c.is_task_address(Ipv4Addr::new(10, 0, 0, 255)));
        assert!(!c.is_task_address(Ipv4Addr::new(10, 0, 1, 2)));
    }

    #[test]
    fn rejects_bad_cidrs() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0/24",
            "10.0.0.1/24",
            "10.0.0.0/31",
            "10.0.0.0/7",
            "10.0.0.0/x",
        ] {
            assert!(
                matches!(
                    bad.parse::<TaskCidr>(),
                    Err(NetworkError::InvalidCidr { .. })
                ),
                "{bad} should be rejected"
            );
        }
    }
}
