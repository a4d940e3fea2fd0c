//! Loads weft's XDP programs (bpf/weft_filter.c, compiled by build.rs) and
//! attaches them to an interface through a BPF link, so the kernel detaches
//! them when the owning process exits — also when it crashes.
//!
//! Parameters (PublicIP, VXLAN port, pod subnet) are read-only globals written
//! at load time: every node runs the same object without recompiling.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use aya::maps::XskMap;
use aya::programs::xdp::XdpLinkId;
use aya::programs::{Xdp, XdpFlags};
use aya::{Ebpf, EbpfLoader};

use super::error::{NEEDS_XDP, PortError};

/// The compiled object; every program of it is loaded from here.
pub(super) static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/weft_filter.o"));

/// What the uplink filter steers to the engine (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterParams {
    /// Our PublicIP: VXLAN and IPIP to it go to the engine, the rest to the kernel.
    pub public_ip: Ipv4Addr,
    /// The UDP port to our PublicIP the engine terminates: VXLAN's (flannel 8472, Calico 4789)
    /// or WireGuard's listen port (51820); `None`: none.
    pub vxlan_port: Option<u16>,
    /// The pod subnet (address, prefix length 1..=32); `None`: no pod subnet.
    pub pod_subnet: Option<(Ipv4Addr, u8)>,
}

/// Which program to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpProgram {
    /// The uplink filter with its parameters.
    Filter(FilterParams),
    /// Everything to the AF_XDP socket of the queue (benchmarks, tests; the daemon's pod
    /// veths share one [`super::pod_program::PodProgram`] instead).
    All,
    /// XDP_DROP everything (benchmark baseline).
    Drop,
}

impl XdpProgram {
    fn section_name(&self) -> &'static str {
        match self {
            XdpProgram::Filter(_) => "weft_filter",
            XdpProgram::All => "weft_all",
            XdpProgram::Drop => "weft_drop",
        }
    }
}

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Driver (native) mode, falling back to generic (SKB) mode if the driver
    /// refuses. [`XdpAttachment::is_native`] says which one was used.
    #[default]
    Auto,
    /// Driver mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

/// An attached XDP program. Dropping it detaches the program (closing the
/// link); if the process dies the kernel closes the link fd and detaches too.
/// The kernel releases the link on a workqueue, so the program leaves the
/// interface shortly after the last fd closes, not within `drop` itself.
#[derive(Debug)]
pub struct XdpAttachment {
    ebpf: Ebpf,
    ifname: String,
    program: &'static str,
    native: bool,
}

/// Attaches the loaded `prog` (named `name`) to `ifindex` in `mode`; the link's id and whether
/// it runs in driver (native) mode.
pub(super) fn attach_in_mode(
    prog: &mut Xdp,
    name: &'static str,
    ifindex: u32,
    ifname: &str,
    mode: XdpMode,
) -> Result<(XdpLinkId, bool), PortError> {
    match mode {
        XdpMode::Native => prog
            .attach_to_if_index(ifindex, XdpFlags::DRV_MODE)
            .map(|id| (id, true))
            .map_err(|e| xdp_error(name, ifname, "attach in native mode", &e)),
        XdpMode::Generic => prog
            .attach_to_if_index(ifindex, XdpFlags::SKB_MODE)
            .map(|id| (id, false))
            .map_err(|e| xdp_error(name, ifname, "attach in generic mode", &e)),
        XdpMode::Auto => match prog.attach_to_if_index(ifindex, XdpFlags::DRV_MODE) {
            Ok(id) => Ok((id, true)),
            Err(native_err) => {
                let id = prog.attach_to_if_index(ifindex, XdpFlags::SKB_MODE).map_err(|e| {
                    let step = format!("attach (native mode: {native_err}; generic mode)");
                    xdp_error(name, ifname, &step, &e)
                })?;
                log::warn!(
                    "XDP program {name} on {ifname}: native mode refused ({native_err}); using generic (SKB) mode"
                );
                Ok((id, false))
            }
        },
    }
}

/// Why an aya error happened, if it was a plain OS error.
fn os_error(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return io.raw_os_error();
        }
        cur = err.source();
    }
    None
}

pub(super) fn xdp_error(
    program: &'static str,
    ifname: &str,
    step: &str,
    e: &(dyn std::error::Error + 'static),
) -> PortError {
    match os_error(e) {
        Some(libc::EPERM | libc::EACCES) => PortError::Permission {
            what: format!("XDP program {program} ({step})"),
            ifname: ifname.to_owned(),
            needs: NEEDS_XDP,
        },
        _ => {
            let mut detail = format!("{step}: {e}");
            let mut src = e.source();
            while let Some(s) = src {
                detail.push_str(&format!(": {s}"));
                src = s.source();
            }
            PortError::Xdp { program, ifname: ifname.to_owned(), detail }
        }
    }
}

impl XdpAttachment {
    /// Loads `program` and attaches it to `ifname` in `mode`.
    pub fn attach(ifname: &str, program: XdpProgram, mode: XdpMode) -> Result<Self, PortError> {
        let name = program.section_name();
        let ifindex = super::afxdp::sys::if_index(ifname)
            .map_err(|_| PortError::NoSuchInterface { what: "XDP attach", ifname: ifname.to_owned() })?;
        let mut loader = EbpfLoader::new();
        // Network byte order, as compared against packet bytes.
        let (ip, port, net, mask) = match program {
            XdpProgram::Filter(p) => {
                let (net, mask) = match p.pod_subnet {
                    Some((addr, len)) => {
                        if !(1..=32).contains(&len) {
                            return Err(PortError::Config(format!(
                                "pod subnet {addr}/{len}: prefix length must be 1..=32"
                            )));
                        }
                        let mask = u32::MAX << (32 - len as u32);
                        (u32::from(addr) & mask, mask)
                    }
                    None => (0, 0),
                };
                (u32::from(p.public_ip).to_be(), p.vxlan_port.unwrap_or(0).to_be(), net.to_be(), mask.to_be())
            }
            _ => (0, 0, 0, 0),
        };
        loader
            .set_global("weft_public_ip", &ip, true)
            .set_global("weft_vxlan_port", &port, true)
            .set_global("weft_pod_net", &net, true)
            .set_global("weft_pod_mask", &mask, true);
        let mut ebpf = loader.load(OBJECT).map_err(|e| xdp_error(name, ifname, "load object", &e))?;
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or_else(|| PortError::Xdp {
                program: name,
                ifname: ifname.to_owned(),
                detail: "program missing from the compiled object".into(),
            })?
            .try_into()
            .map_err(|e| xdp_error(name, ifname, "program type", &e))?;
        prog.load().map_err(|e| xdp_error(name, ifname, "verify/load", &e))?;
        let (_, native) = attach_in_mode(prog, name, ifindex, ifname, mode)?;
        log::info!(
            "XDP program {name} attached to {ifname} in {} mode via BPF link",
            if native { "native" } else { "generic" }
        );
        Ok(XdpAttachment { ebpf, ifname: ifname.to_owned(), program: name, native })
    }

    /// Whether the program runs in driver (native) mode; false: generic (SKB) mode.
    pub fn is_native(&self) -> bool {
        self.native
    }

    /// "native" or "generic", for logs and reports.
    pub fn mode_name(&self) -> &'static str {
        if self.native { "native" } else { "generic" }
    }

    /// Directs frames received on `queue` to the AF_XDP socket `fd`.
    pub fn register_socket(&mut self, queue: u32, fd: BorrowedFd<'_>) -> Result<(), PortError> {
        let (program, ifname) = (self.program, self.ifname.clone());
        let map = self.ebpf.map_mut("weft_xsks").ok_or_else(|| PortError::Xdp {
            program,
            ifname: ifname.clone(),
            detail: "XSKMAP weft_xsks missing from the compiled object".into(),
        })?;
        let mut xsks = XskMap::try_from(map).map_err(|e| xdp_error(program, &ifname, "XSKMAP", &e))?;
        xsks.set(queue, fd.as_raw_fd(), 0)
            .map_err(|e| xdp_error(program, &ifname, &format!("register socket for queue {queue}"), &e))
    }
}
