//! Task IP addresses: the lowest free address of the host's task CIDR.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::network::TaskCidr;

/// Picks the lowest address of `cidr` that is neither the network, the
/// gateway, the broadcast address, nor in `used`.
pub fn allocate<S: std::hash::BuildHasher>(
    cidr: &TaskCidr,
    used: &HashSet<Ipv4Addr, S>,
) -> Option<Ipv4Addr> {
    (2..cidr.size())
        .filter_map(|i| cidr.nth_host(i))
        .find(|ip| cidr.is_task_address(*ip) && !used.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_address() {
        let cidr = TaskCidr::new(Ipv4Addr::new(10, 9, 0, 0), 29).unwrap();
        let mut used = HashSet::new();
        assert_eq!(allocate(&cidr, &used), Some(Ipv4Addr::new(10, 9, 0, 2)));
        used.insert(Ipv4Addr::new(10, 9, 0, 2));
        used.insert(Ipv4Addr::new(10, 9, 0, 4));
        assert_eq!(allocate(&cidr, &used), Some(Ipv4Addr::new(10, 9, 0, 3)));
        for i in 3..=6 {
            used.insert(Ipv4Addr::new(10, 9, 0, i));
        }
        assert_eq!(allocate(&cidr, &used), None);
    }
}
