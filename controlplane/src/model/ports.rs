//! Host ports: `portMappings` and their rules per network mode, the ports a task needs on its instance, the ports an instance has reserved or in use (ECS's `PORTS` and `PORTS_UDP` resources), and `networkBindings`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::task_definition::{ContainerDefinition, NetworkMode, TaskDefinitionError};

/// Ports ECS reserves on every container instance unless the agent says
/// otherwise: SSH, the Docker daemon, the ECS agent and its metadata endpoint.
pub const ECS_RESERVED_TCP_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

pub use berth_ecs::Protocol;

/// A `portMappings` entry; `host_port` None (0 or absent) asks for a dynamic port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

/// A published port as the agent reports it (`networkBindings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkBinding {
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: Protocol,
}

/// A host port: protocol and number.
pub type HostPort = (Protocol, u16);

fn err<T>(msg: String) -> Result<T, TaskDefinitionError> {
    Err(TaskDefinitionError(msg))
}

/// The rules ECS gives for `portMappings` in each network mode: none takes
/// no mappings; awsvpc and host need hostPort absent or equal to
/// containerPort (the container listens on that port itself); bridge takes
/// any hostPort, 0 or absent meaning dynamic. A host port (or, where the
/// containers share one address, a container port) may appear only once
/// per protocol in a task.
pub fn validate(
    containers: &[ContainerDefinition],
    mode: NetworkMode,
) -> Result<(), TaskDefinitionError> {
    let mut host_ports: BTreeSet<HostPort> = BTreeSet::new();
    for c in containers {
        if mode == NetworkMode::None && !c.port_mappings.is_empty() {
            return err(format!(
                "Container '{}': portMappings are not allowed when networkMode is none.",
                c.name
            ));
        }
        for m in &c.port_mappings {
            if m.container_port == 0 {
                return err(format!(
                    "Container '{}': containerPort must be between 1 and 65535.",
                    c.name
                ));
            }
            let shares_address = matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host);
            if shares_address && m.host_port.is_some_and(|h| h != m.container_port) {
                return err(format!(
                    "Container '{}': when networkMode={}, the host ports and container ports in port mappings must match (hostPort {} != containerPort {}).",
                    c.name,
                    mode.as_str(),
                    m.host_port.unwrap_or(0),
                    m.container_port
                ));
            }
            let taken = if shares_address {
                Some(m.container_port)
            } else {
                m.host_port
            };
            if let Some(port) = taken {
                if !host_ports.insert((m.protocol, port)) {
                    return err(format!(
                        "Container '{}': port {port}/{} is mapped more than once in the task definition.",
                        c.name,
                        m.protocol.as_str()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The host ports a task of this mode must have free on its instance:
/// static `hostPort`s in bridge mode, every container port in host mode.
/// awsvpc tasks listen on their own address and take no host port.
pub fn static_host_ports<'a>(
    containers: impl IntoIterator<Item = &'a ContainerDefinition>,
    mode: NetworkMode,
) -> Vec<HostPort> {
    // Awsvpc and none take no host ports: skip the walk (placement asks
    // this of every live task on every call).
    if matches!(mode, NetworkMode::Awsvpc | NetworkMode::None) {
        return Vec::new();
    }
    let mut ports: Vec<HostPort> = containers
        .into_iter()
        .flat_map(|c| &c.port_mappings)
        .filter_map(|m| match mode {
            NetworkMode::Bridge => m.host_port.map(|h| (m.protocol, h)),
            NetworkMode::Host => Some((m.protocol, m.container_port)),
            NetworkMode::Awsvpc | NetworkMode::None => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// ECS `STRINGSET` form of one protocol's ports, sorted.
pub fn string_set(ports: &BTreeSet<HostPort>, protocol: Protocol) -> Vec<String> {
    ports
        .iter()
        .filter(|(p, _)| *p == protocol)
        .map(|(_, n)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task_definition::tests_support::container;

    fn with_ports(name: &str, ports: &[(u16, Option<u16>, Protocol)]) -> ContainerDefinition {
        let mut c = container(name);
        c.port_mappings = ports
            .iter()
            .map(|&(container_port, host_port, protocol)| PortMapping {
                container_port,
                host_port,
                protocol,
            })
            .collect();
        c
    }

    use Protocol::{Tcp, Udp};

    #[test]
    fn bridge_takes_any_host_port_once() {
        let ok = [
            with_ports("a", &[(80, Some(8080), Tcp), (80, None, Tcp)]),
            with_ports("b", &[(80, Some(8080), Udp), (81, None, Tcp)]),
        ];
        assert!(validate(&ok, NetworkMode::Bridge).is_ok());
        let twice = [
            with_ports("a", &[(80, Some(8080), Tcp)]),
            with_ports("b", &[(81, Some(8080), Tcp)]),
        ];
        let e = validate(&twice, NetworkMode::Bridge).unwrap_err();
        assert!(e.0.contains("8080/tcp"), "{e}");
    }

    #[test]
    fn awsvpc_and_host_need_matching_ports() {
        for mode in [NetworkMode::Awsvpc, NetworkMode::Host] {
            assert!(validate(
                &[with_ports("a", &[(80, Some(80), Tcp), (81, None, Tcp)])],
                mode
            )
            .is_ok());
            let e = validate(&[with_ports("a", &[(80, Some(8080), Tcp)])], mode).unwrap_err();
            assert!(e.0.contains("must match"), "{e}");
            // Two containers sharing an address cannot both have port 80.
            let twice = [
                with_ports("a", &[(80, None, Tcp)]),
                with_ports("b", &[(80, None, Tcp)]),
            ];
            assert!(validate(&twice, mode).is_err());
        }
    }

    #[test]
    fn none_takes_no_mappings_and_ports_are_not_zero() {
        let e = validate(&[with_ports("a", &[(80, None, Tcp)])], NetworkMode::None).unwrap_err();
        assert!(e.0.contains("none"), "{e}");
        assert!(validate(&[container("a")], NetworkMode::None).is_ok());
        assert!(validate(&[with_ports("a", &[(0, None, Tcp)])], NetworkMode::Bridge).is_err());
    }

    #[test]
    fn static_ports_per_mode() {
        let cs = [with_ports("a", &[(80, Some(8080), Tcp), (53, None, Udp)])];
        assert_eq!(static_host_ports(&cs, NetworkMode::Bridge), [(Tcp, 8080)]);
        assert_eq!(
            static_host_ports(&cs, NetworkMode::Host),
            [(Tcp, 80), (Udp, 53)]
        );
        assert!(static_host_ports(&cs, NetworkMode::Awsvpc).is_empty());
        let set: BTreeSet<HostPort> = [(Tcp, 22), (Udp, 53), (Tcp, 8080)].into();
        assert_eq!(string_set(&set, Tcp), ["22", "8080"]);
        assert_eq!(string_set(&set, Udp), ["53"]);
    }
}
