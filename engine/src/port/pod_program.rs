//! The XDP program of the pod ports (`weft_pod` in bpf/weft_filter.c), loaded and verified
//! once per node and attached to every pod-side veth through a BPF link of its own.
//!
//! The program finds the pod by the interface a frame arrived on: `weft_pod_slots` maps the
//! veth's ifindex to the pod's slot, `weft_pod_xsks` maps the slot to the pod's AF_XDP socket.
//! Attaching a pod is one link and two map writes, where loading a program per veth would
//! parse the object, create its maps and run the verifier every time; a detach is the
//! link's close and one map delete.
//!
//! Order for a pod: [`PodProgram::attach`] (frames still reach the kernel: no slot for the
//! interface yet), then [`PodProgram::register`] once the socket is served (first the socket
//! into its slot, then the interface to the slot: the program never finds a slot without its
//! socket), and at detach [`PodProgram::detach`] (the link closed: the program leaves the veth;
//! then the interface's slot forgotten). A closed socket leaves `weft_pod_xsks` by itself (the kernel
//! removes a socket from every XSKMAP when it is released).

use std::os::fd::{AsRawFd, BorrowedFd};

use aya::maps::{HashMap, XskMap};
use aya::programs::Xdp;
use aya::programs::xdp::XdpLink;
use aya::{Ebpf, EbpfLoader};

use super::error::PortError;
use super::xdp_filter::{OBJECT, XdpMode, attach_in_mode, xdp_error};

const PROGRAM: &str = "weft_pod";
const SLOTS_MAP: &str = "weft_pod_slots";
const XSKS_MAP: &str = "weft_pod_xsks";

/// The pod program, loaded once; its maps hold up to `slots` pods.
#[derive(Debug)]
pub struct PodProgram {
    ebpf: Ebpf,
    slots: u32,
}

/// The pod program attached to one pod veth. Dropping it detaches the program from the
/// interface (closing the link; the kernel releases it shortly after, on a workqueue).
#[derive(Debug)]
pub struct PodLink {
    _link: XdpLink,
    ifname: String,
    ifindex: u32,
    native: bool,
}

impl PodLink {
    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Whether the program runs in driver (native) mode; false: generic (SKB) mode.
    pub fn is_native(&self) -> bool {
        self.native
    }

    /// "native" or "generic", for logs and reports.
    pub fn mode_name(&self) -> &'static str {
        if self.native { "native" } else { "generic" }
    }
}

fn map_error(ifname: &str, step: &str, e: &(dyn std::error::Error + 'static)) -> PortError {
    xdp_error(PROGRAM, ifname, step, e)
}

impl PodProgram {
    /// Loads and verifies the program with maps for `slots` pods (at least one).
    pub fn load(slots: u32) -> Result<Self, PortError> {
        let slots = slots.max(1);
        let mut ebpf = EbpfLoader::new()
            .set_max_entries(SLOTS_MAP, slots)
            .set_max_entries(XSKS_MAP, slots)
            .load(OBJECT)
            .map_err(|e| map_error("-", "load object", &e))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| PortError::Xdp {
                program: PROGRAM,
                ifname: "-".to_owned(),
                detail: "program missing from the compiled object".into(),
            })?
            .try_into()
            .map_err(|e| map_error("-", "program type", &e))?;
        prog.load().map_err(|e| map_error("-", "verify/load", &e))?;
        Ok(PodProgram { ebpf, slots })
    }

    /// Pods the maps hold.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    fn program(&mut self) -> Result<&mut Xdp, PortError> {
        let missing = || PortError::Xdp {
            program: PROGRAM,
            ifname: "-".to_owned(),
            detail: "program missing from the compiled object".into(),
        };
        self.ebpf
            .program_mut(PROGRAM)
            .ok_or_else(missing)?
            .try_into()
            .map_err(|e| map_error("-", "program type", &e))
    }

    /// Attaches the program to `ifname` in `mode`. Frames still go to the kernel until the
    /// pod's socket is [registered](PodProgram::register).
    pub fn attach(&mut self, ifname: &str, mode: XdpMode) -> Result<PodLink, PortError> {
        let ifindex = super::afxdp::sys::if_index(ifname)
            .map_err(|_| PortError::NoSuchInterface { what: "XDP attach", ifname: ifname.to_owned() })?;
        let prog = self.program()?;
        let (id, native) = attach_in_mode(prog, PROGRAM, ifindex, ifname, mode)?;
        let link = prog.take_link(id).map_err(|e| map_error(ifname, "take link", &e))?;
        Ok(PodLink { _link: link, ifname: ifname.to_owned(), ifindex, native })
    }

    /// Steers the frames of `link`'s interface to the AF_XDP socket `fd` in pod slot `slot`.
    pub fn register(&mut self, link: &PodLink, slot: u32, fd: BorrowedFd<'_>) -> Result<(), PortError> {
        let ifname = link.ifname.as_str();
        if slot >= self.slots {
            return Err(PortError::Config(format!(
                "pod slot {slot} on {ifname}: the pod program holds {} slots",
                self.slots
            )));
        }
        let xsks = self.ebpf.map_mut(XSKS_MAP).ok_or_else(|| missing_map(XSKS_MAP, ifname))?;
        let mut xsks = XskMap::try_from(xsks).map_err(|e| map_error(ifname, XSKS_MAP, &e))?;
        xsks.set(slot, fd.as_raw_fd(), 0)
            .map_err(|e| map_error(ifname, &format!("socket into slot {slot}"), &e))?;
        let slots = self.ebpf.map_mut(SLOTS_MAP).ok_or_else(|| missing_map(SLOTS_MAP, ifname))?;
        let mut slots: HashMap<_, u32, u32> =
            HashMap::try_from(slots).map_err(|e| map_error(ifname, SLOTS_MAP, &e))?;
        slots
            .insert(link.ifindex, slot, 0)
            .map_err(|e| map_error(ifname, &format!("interface {} to slot {slot}", link.ifindex), &e))
    }

    /// Detaches the program from `link`'s interface (nothing feeds the pod's socket from
    /// here on), then forgets the interface's slot. A missing entry is fine.
    pub fn detach(&mut self, link: PodLink) {
        let ifindex = link.ifindex;
        drop(link);
        let Some(map) = self.ebpf.map_mut(SLOTS_MAP) else { return };
        if let Ok(mut slots) = HashMap::<_, u32, u32>::try_from(map) {
            let _ = slots.remove(&ifindex);
        }
    }
}

fn missing_map(map: &str, ifname: &str) -> PortError {
    PortError::Xdp {
        program: PROGRAM,
        ifname: ifname.to_owned(),
        detail: format!("map {map} missing from the compiled object"),
    }
}
