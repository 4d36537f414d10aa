//! Host ports of `portMappings`: the dynamic range, ECS's reserved ports, and choosing a task's host ports (static ones checked, dynamic ones picked). Pure.

use std::fmt;
use std::str::FromStr;

use crate::model::{PortMapping, Protocol};

/// Ports ECS reserves on every container instance: SSH, the Docker daemon
/// (plain and TLS), the ECS agent's introspection API and the task metadata
/// endpoint.
pub const ECS_RESERVED_TCP_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

/// An inclusive range of host ports for dynamic `hostPort`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPortRange {
    pub first: u16,
    pub last: u16,
}

impl HostPortRange {
    /// ECS's default dynamic range (Docker's ephemeral range on Linux).
    pub const ECS_DEFAULT: Self = Self {
        first: 32768,
        last: 61000,
    };

    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl Default for HostPortRange {
    fn default() -> Self {
        Self::ECS_DEFAULT
    }
}

impl fmt::Display for HostPortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for HostPortRange {
    type Err = String;

    /// `FIRST-LAST`, both 1..=65535, FIRST <= LAST.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("port range {s:?} must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first == 0 || first > last {
            return Err(bad());
        }
        Ok(Self { first, last })
    }
}

/// How a task's containers are reached, as far as host ports go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    /// Containers have their own addresses; host ports are forwarded (DNAT).
    Bridge,
    /// Containers listen on the host's own ports: host port = container port.
    Host,
}

/// One mapping with its host port decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignedPort {
    /// Index of the container in the task.
    pub container: usize,
    pub protocol: Protocol,
    pub container_port: u16,
    pub host_port: u16,
}

/// Why a task's ports cannot be had on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// host port {port}/{protocol} is already in use on this host
    #[error("host port {port}/{} is already in use on this host", protocol.as_str())]
    InUse { protocol: Protocol, port: u16 },
    /// host port {port}/{protocol} is asked for twice by the task
    #[error("host port {port}/{} is asked for twice by the task", protocol.as_str())]
    Duplicate { protocol: Protocol, port: u16 },
    /// `hostPort` {`host_port`} must equal `containerPort` {`container_port`} in host network mode
    #[error("hostPort {host_port} must equal containerPort {container_port} in host network mode")]
    HostModeMismatch { container_port: u16, host_port: u16 },
    /// no free host port left in the dynamic range {range}
    #[error("no free {} host port left in the dynamic range {range}", protocol.as_str())]
    RangeExhausted {
        protocol: Protocol,
        range: HostPortRange,
    },
}

/// Decides the host port of every mapping of a task (`mappings` holds the
/// container index with each). Static ports (and, in host mode, the
/// container ports) must not be `taken`; dynamic ones are the first free
/// port of `range` at or after `start`, wrapping round, so a port just
/// released is not handed out again at once. All or nothing.
pub fn assign(
    mappings: &[(usize, PortMapping)],
    mode: PortMode,
    range: HostPortRange,
    start: u16,
    mut taken: impl FnMut(Protocol, u16) -> bool,
) -> Result<Vec<AssignedPort>, PortError> {
    let mut mine: Vec<(Protocol, u16)> = Vec::new();
    let mut out = Vec::with_capacity(mappings.len());
    // Static ports first, so a dynamic pick never steals one the task names.
    let fixed = |m: &PortMapping| match mode {
        PortMode::Host => Some(m.container_port),
        PortMode::Bridge => m.host_port,
    };
    for (container, m) in mappings {
        let Some(port) = fixed(m) else { continue };
        if mode == PortMode::Host && m.host_port.is_some_and(|h| h != m.container_port) {
            return Err(PortError::HostModeMismatch {
                container_port: m.container_port,
                host_port: m.host_port.unwrap_or(0),
            });
        }
        if mine.contains(&(m.protocol, port)) {
            return Err(PortError::Duplicate {
                protocol: m.protocol,
                port,
            });
        }
        if taken(m.protocol, port) {
            return Err(PortError::InUse {
                protocol: m.protocol,
                port,
            });
        }
        mine.push((m.protocol, port));
        out.push(AssignedPort {
            container: *container,
            protocol: m.protocol,
            container_port: m.container_port,
            host_port: port,
        });
    }
    let span = u32::from(range.last) - u32::from(range.first) + 1;
    let start = if range.contains(start) {
        start
    } else {
        range.first
    };
    let mut next = u32::from(start - range.first);
    for (container, m) in mappings.iter().filter(|(_, m)| fixed(m).is_none()) {
        let mut found = None;
        for _ in 0..span {
            let port = u16::try_from(u32::from(range.first) + next % span).unwrap_or(range.last);
            next = (next + 1) % span;
            if !mine.contains(&(m.protocol, port)) && !taken(m.protocol, port) {
                found = Some(port);
                break;
            }
        }
        let port = found.ok_or(PortError::RangeExhausted {
            protocol: m.protocol,
            range,
        })?;
        mine.push((m.protocol, port));
        out.push(AssignedPort {
            container: *container,
            protocol: m.protocol,
            container_port: m.container_port,
            host_port: port,
        });
    }
    out.sort_by_key(|a| (a.container, a.container_port, a.protocol));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(container_port: u16, host_port: Option<u16>) -> PortMapping {
        PortMapping {
            container_port,
            host_port,
            protocol: Protocol::Tcp,
        }
    }

    const SMALL: HostPortRange = HostPortRange {
        first: 40000,
        last: 40003,
    };

    #[test]
    fn ranges_parse_and_reject_nonsense() {
        assert_eq!(
            "32768-61000".parse::<HostPortRange>().unwrap(),
            HostPortRange::ECS_DEFAULT
        );
        assert_eq!(HostPortRange::ECS_DEFAULT.to_string(), "32768-61000");
        for bad in ["", "5", "0-10", "10-5", "1-70000", "a-b"] {
            assert!(bad.parse::<HostPortRange>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn static_ports_are_kept_and_dynamic_ones_picked_from_the_range() {
        let maps = [
            (0, tcp(80, Some(8080))),
            (0, tcp(443, None)),
            (1, tcp(80, None)),
        ];
        let got = assign(&maps, PortMode::Bridge, SMALL, 40000, |_, p| p == 40000).unwrap();
        let ports: Vec<(usize, u16, u16)> = got
            .iter()
            .map(|a| (a.container, a.container_port, a.host_port))
            .collect();
        assert_eq!(ports, [(0, 80, 8080), (0, 443, 40001), (1, 80, 40002)]);
    }

    #[test]
    fn dynamic_search_starts_at_the_cursor_and_wraps() {
        let maps = [(0, tcp(80, None)), (0, tcp(81, None))];
        let got = assign(&maps, PortMode::Bridge, SMALL, 40003, |_, _| false).unwrap();
        let hosts: Vec<u16> = got.iter().map(|a| a.host_port).collect();
        assert_eq!(hosts, [40003, 40000]);
        // A cursor outside the range starts at its beginning.
        let got = assign(&maps[..1], PortMode::Bridge, SMALL, 9, |_, _| false).unwrap();
        assert_eq!(got[0].host_port, 40000);
    }

    #[test]
    fn a_full_range_and_a_taken_static_port_are_errors() {
        let maps = [(0, tcp(80, None))];
        assert_eq!(
            assign(&maps, PortMode::Bridge, SMALL, 40000, |_, _| true),
            Err(PortError::RangeExhausted {
                protocol: Protocol::Tcp,
                range: SMALL
            })
        );
        let maps = [(0, tcp(80, Some(22)))];
        let err = assign(&maps, PortMode::Bridge, SMALL, 40000, |_, p| p == 22).unwrap_err();
        assert_eq!(
            err.to_string(),
            "host port 22/tcp is already in use on this host"
        );
    }

    #[test]
    fn protocols_have_separate_ports() {
        let maps = [
            (0, tcp(53, Some(5353))),
            (
                0,
                PortMapping {
                    container_port: 53,
                    host_port: Some(5353),
                    protocol: Protocol::Udp,
                },
            ),
        ];
        assert_eq!(
            assign(&maps, PortMode::Bridge, SMALL, 0, |_, _| false)
                .unwrap()
                .len(),
            2
        );
        let twice = [(0, tcp(80, Some(8080))), (1, tcp(81, Some(8080)))];
        assert!(matches!(
            assign(&twice, PortMode::Bridge, SMALL, 0, |_, _| false),
            Err(PortError::Duplicate { port: 8080, .. })
        ));
    }

    #[test]
    fn host_mode_uses_the_container_port() {
        let maps = [(0, tcp(8080, None)), (1, tcp(9090, Some(9090)))];
        let got = assign(&maps, PortMode::Host, SMALL, 0, |_, _| false).unwrap();
        assert_eq!(got[0].host_port, 8080);
        assert_eq!(got[1].host_port, 9090);
        let bad = [(0, tcp(8080, Some(8081)))];
        assert!(matches!(
            assign(&bad, PortMode::Host, SMALL, 0, |_, _| false),
            Err(PortError::HostModeMismatch { .. })
        ));
    }
}
