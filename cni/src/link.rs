//! The netlink steps, typed (rtnetlink): veth pair, link state, addresses, routes. Each
//! [`Netlink`] is a socket in the netns the calling thread was in when it was opened,
//! driven by its own current-thread runtime so callers stay synchronous.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};
use tokio::runtime::Runtime;

use crate::error::{CniError, NETLINK_FAILURE};

/// A link as this plugin needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex.
    pub index: u32,
    /// MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// `veth` when it is one.
    pub kind: Option<String>,
}

/// One IPv4 route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    /// Destination.
    pub dst: Ipv4Net,
    /// Gateway.
    pub gw: Option<Ipv4Addr>,
    /// Output interface.
    pub oif: Option<u32>,
}

/// A netlink socket and the runtime that drives it.
#[derive(Debug)]
pub struct Netlink {
    rt: Runtime,
    handle: Handle,
}

fn failed(what: String) -> impl FnOnce(rtnetlink::Error) -> CniError {
    move |e| CniError::new(NETLINK_FAILURE, what, e.to_string())
}

/// The errno of a netlink NACK, positive.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

fn mac_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl Netlink {
    /// Opens a socket in the calling thread's current netns.
    pub fn open() -> Result<Self, CniError> {
        let err =
            |e: std::io::Error| CniError::new(NETLINK_FAILURE, "cannot open a netlink socket", e.to_string());
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(err)?;
        let handle = {
            let _ctx = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(err)?;
            rt.spawn(conn);
            handle
        };
        Ok(Netlink { rt, handle })
    }

    /// The link called `name`, if there is one.
    pub fn link(&self, name: &str) -> Result<Option<Link>, CniError> {
        let mut req = self.handle.link().get().match_name(name.to_owned()).execute();
        match self.rt.block_on(req.try_next()) {
            Ok(Some(msg)) => Ok(Some(Self::describe(&msg))),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(failed(format!("looking up link {name}"))(e)),
        }
    }

    /// Every link's name.
    pub fn link_names(&self) -> Result<Vec<String>, CniError> {
        let msgs: Vec<LinkMessage> = self
            .rt
            .block_on(self.handle.link().get().execute().try_collect())
            .map_err(failed("listing links".into()))?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
            })
            .collect())
    }

    fn describe(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            mac: String::new(),
            mtu: 0,
            up: msg.header.flags.contains(LinkFlags::Up),
            kind: None,
        };
        for a in &msg.attributes {
            match a {
                LinkAttribute::Address(mac) => link.mac = mac_string(mac),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }

    /// Creates veth `host` here and its peer `peer` directly inside the netns `peer_ns`
    /// (one request: the peer never appears in this netns), both with `mtu`.
    pub fn add_veth(
        &self,
        host: &str,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
        mtu: u32,
    ) -> Result<(), CniError> {
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_owned())
            .mtu(mtu)
            .setns_by_fd(peer_ns.as_raw_fd())
            .build();
        let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_owned())
            .mtu(mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.rt
            .block_on(self.handle.link().add(msg).execute())
            .map_err(failed(format!("creating veth {host} with peer {peer} in the pod")))
    }

    /// Sets link `index` (called `name`) up.
    pub fn set_up(&self, index: u32, name: &str) -> Result<(), CniError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.rt.block_on(self.handle.link().set(msg).execute()).map_err(failed(format!("setting {name} up")))
    }

    /// Deletes link `name`; absent already is success. Returns whether it existed.
    pub fn del_link(&self, name: &str) -> Result<bool, CniError> {
        let Some(link) = self.link(name)? else { return Ok(false) };
        match self.rt.block_on(self.handle.link().del(link.index).execute()) {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(failed(format!("deleting link {name}"))(e)),
        }
    }

    /// Adds `addr` to link `index` (called `name`).
    pub fn add_address(&self, index: u32, name: &str, addr: Ipv4Net) -> Result<(), CniError> {
        let req = self.handle.address().add(index, addr.addr().into(), addr.prefix_len());
        self.rt.block_on(req.execute()).map_err(failed(format!("adding address {addr} to {name}")))
    }

    /// The IPv4 addresses of link `index`.
    pub fn addresses(&self, index: u32) -> Result<Vec<Ipv4Net>, CniError> {
        let req = self.handle.address().get().set_link_index_filter(index).execute();
        let msgs: Vec<_> = self.rt.block_on(req.try_collect()).map_err(failed("listing addresses".into()))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.family == AddressFamily::Inet && m.header.index == index)
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(std::net::IpAddr::V4(ip)) => {
                        Ipv4Net::new(*ip, m.header.prefix_len).ok()
                    }
                    _ => None,
                })
            })
            .collect())
    }

    /// Adds a route to `dst` out of link `oif`, through `gw` when given.
    pub fn add_route(&self, dst: Ipv4Net, gw: Option<Ipv4Addr>, oif: u32) -> Result<(), CniError> {
        let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst.addr(), dst.prefix_len())
            .output_interface(oif);
        if let Some(gw) = gw {
            b = b.gateway(gw);
        }
        let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
        self.rt
            .block_on(self.handle.route().add(b.build()).execute())
            .map_err(failed(format!("adding route {dst}{via}")))
    }

    /// The IPv4 routes of the main table.
    pub fn routes(&self) -> Result<Vec<RouteEntry>, CniError> {
        let req = self.handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        let msgs: Vec<RouteMessage> =
            self.rt.block_on(req.try_collect()).map_err(failed("listing routes".into()))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.table == rtnetlink::packet_route::route::RouteHeader::RT_TABLE_MAIN)
            .map(|m| {
                let mut r = RouteEntry { dst: Ipv4Net::default(), gw: None, oif: None };
                let mut dst = Ipv4Addr::UNSPECIFIED;
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
                        RouteAttribute::Gateway(RouteAddress::Inet(g)) => r.gw = Some(*g),
                        RouteAttribute::Oif(i) => r.oif = Some(*i),
                        _ => {}
                    }
                }
                r.dst = Ipv4Net::new(dst, m.header.destination_prefix_length).unwrap_or_default();
                r
            })
            .collect())
    }
}
