//! rtnetlink requests: the host bridge and its address, the task veth pair, and the addresses and routes inside a task's namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use tokio::task::JoinHandle;

use super::NetworkError;

/// Name of the task's interface inside its namespace.
pub(crate) const TASK_IFACE: &str = "eth0";

/// One rtnetlink connection, bound to the network namespace of the thread
/// that opened it.
pub(crate) struct Netlink {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(-msg.raw_code()),
        _ => None,
    }
}

fn is_missing(e: &rtnetlink::Error) -> bool {
    errno(e) == Some(libc_errno::ENODEV)
}

fn is_exists(e: &rtnetlink::Error) -> bool {
    errno(e) == Some(libc_errno::EEXIST)
}

mod libc_errno {
    use nix::errno::Errno;
    pub(super) const ENODEV: i32 = Errno::ENODEV as i32;
    pub(super) const EEXIST: i32 = Errno::EEXIST as i32;
}

/// A locally administered unicast MAC derived from an IPv4 address, so an
/// address handed to a new task keeps its MAC and ARP caches stay right.
pub(crate) fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0xbe, a, b, c, d]
}

pub(crate) fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace. Must
    /// run inside a tokio runtime.
    pub(crate) fn connect(context: &str) -> Result<Self, NetworkError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetworkError::NetlinkSocket {
                context: context.to_owned(),
                source,
            })?;
        Ok(Self {
            handle,
            connection: tokio::spawn(connection),
        })
    }

    /// The link called `name`, if there is one.
    pub(crate) async fn link(&self, name: &str) -> Result<Option<LinkMessage>, NetworkError> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(link) => Ok(link),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(NetworkError::netlink("get link", name)(e)),
        }
    }

    /// Creates the bridge if it is missing, brings it up, and returns its index.
    pub(crate) async fn ensure_bridge(
        &self,
        name: &str,
        mac: [u8; 6],
        mtu: u32,
    ) -> Result<u32, NetworkError> {
        let link = if let Some(link) = self.link(name).await? {
            link
        } else {
            // An explicit MAC stops the kernel from switching the bridge to
            // its lowest port's MAC, which would change the gateway's MAC
            // whenever tasks come and go.
            let bridge = LinkBridge::new(name)
                .mtu(mtu)
                .address(mac.to_vec())
                .forward_delay(0)
                .build();
            if let Err(e) = self.handle.link().add(bridge).execute().await {
                if !is_exists(&e) {
                    return Err(NetworkError::netlink("create bridge", name)(e));
                }
            }
            self.link(name)
                .await?
                .ok_or_else(|| NetworkError::BridgeMissing {
                    bridge: name.to_owned(),
                })?
        };
        if !is_bridge(&link) {
            return Err(NetworkError::NotABridge {
                interface: name.to_owned(),
            });
        }
        let index = link.header.index;
        self.set_up(index, name).await?;
        Ok(index)
    }

    pub(crate) async fn set_up(&self, index: u32, name: &str) -> Result<(), NetworkError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(NetworkError::netlink("set link up", name))
    }

    /// Adds `ip/prefix_len` to the link unless it is already there.
    pub(crate) async fn ensure_address(
        &self,
        index: u32,
        name: &str,
        ip: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetworkError> {
        let addresses: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(NetworkError::netlink("list addresses", name))?;
        let present = addresses.iter().any(|msg| {
            msg.header.prefix_len == prefix_len
                && msg.attributes.iter().any(
                    |a| matches!(a, AddressAttribute::Address(addr) if *addr == IpAddr::V4(ip)),
                )
        });
        if present {
            return Ok(());
        }
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(ip), prefix_len)
            .execute()
            .await
        {
            Err(e) if !is_exists(&e) => Err(NetworkError::netlink("add address", name)(e)),
            _ => Ok(()),
        }
    }

    /// Deletes the link called `name`; returns whether it existed.
    pub(crate) async fn delete_link(&self, name: &str) -> Result<bool, NetworkError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.header.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(NetworkError::netlink("delete link", name)(e)),
        }
    }

    /// Creates the veth pair: `host_veth` enslaved to the bridge and up,
    /// its peer born inside `netns` as `eth0` with the given MAC, so no
    /// interface with the task's name ever appears on the host.
    pub(crate) async fn add_task_veth(
        &self,
        host_veth: &str,
        bridge_index: u32,
        netns: BorrowedFd<'_>,
        mac: [u8; 6],
        mtu: u32,
    ) -> Result<(), NetworkError> {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(TASK_IFACE)
            .mtu(mtu)
            .address(mac.to_vec())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let veth = LinkVeth::new(host_veth, TASK_IFACE)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .mtu(mtu)
            .controller(bridge_index)
            .up()
            .build();
        self.handle
            .link()
            .add(veth)
            .execute()
            .await
            .map_err(NetworkError::netlink("create veth", host_veth))
    }

    /// Inside the task's namespace: lo up, the address on eth0, eth0 up, and
    /// the default route via the gateway. Returns eth0's MAC.
    pub(crate) async fn configure_task_side(
        &self,
        ip: Ipv4Addr,
        prefix_len: u8,
        gateway: Ipv4Addr,
    ) -> Result<String, NetworkError> {
        let lo = self.existing_link("lo").await?;
        self.set_up(lo.header.index, "lo").await?;
        let eth0 = self.existing_link(TASK_IFACE).await?;
        let index = eth0.header.index;
        self.ensure_address(index, TASK_IFACE, ip, prefix_len)
            .await?;
        self.set_up(index, TASK_IFACE).await?;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        match self.handle.route().add(route).execute().await {
            Err(e) if !is_exists(&e) => {
                return Err(NetworkError::netlink("add default route", TASK_IFACE)(e))
            }
            _ => {}
        }
        let mac = eth0.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(mac) => Some(format_mac(mac)),
            _ => None,
        });
        Ok(mac.unwrap_or_default())
    }

    async fn existing_link(&self, name: &str) -> Result<LinkMessage, NetworkError> {
        self.link(name).await?.ok_or_else(|| NetworkError::Netlink {
            op: "get link",
            interface: name.to_owned(),
            source: rtnetlink::Error::RequestFailed,
        })
    }
}

/// Index of the link's controller (the bridge it is a port of), if any.
pub(crate) fn controller(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(index) => Some(*index),
        _ => None,
    })
}

fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_local_unicast_and_follows_the_address() {
        let mac = mac_for(Ipv4Addr::new(10, 251, 7, 2));
        assert_eq!(format_mac(&mac), "02:be:0a:fb:07:02");
        assert_eq!(mac[0] & 0b11, 0b10, "locally administered, unicast");
    }
}
