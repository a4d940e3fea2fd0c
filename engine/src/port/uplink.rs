//! Opening the engine's ports the way the daemon does: the uplink queue with
//! the XDP filter and an AF_XDP socket, or AF_PACKET when configured or when
//! XDP is unavailable (automatic fallback, with the reason logged and kept);
//! veths the engine owns whole (the exception port, tests) with the everything-to-the-engine
//! program (the daemon's pod veths share `super::pod_program` instead).

use super::Port;
use super::afpacket::AfPacketPort;
use super::afxdp::{AfXdpPort, TpacketGeometry, XskConfig};
use super::error::PortError;
use super::frame::FramePool;
use super::xdp_filter::{FilterParams, XdpAttachment, XdpMode, XdpProgram};

/// Which kind of port carries an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// AF_XDP, falling back to AF_PACKET when XDP or AF_XDP is not supported
    /// (never on permission or missing-interface errors: those are reported).
    #[default]
    Auto,
    /// AF_XDP only.
    AfXdp,
    /// AF_PACKET (TPACKET_V3) only. Note: an AF_PACKET socket sees a copy of
    /// every frame; the kernel still processes them too.
    AfPacket,
}

/// How to open one interface queue.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// AF_XDP settings (interface, queue, ring sizes).
    pub xsk: XskConfig,
    /// Backend choice.
    pub backend: Backend,
    /// XDP attach mode for the AF_XDP backend.
    pub xdp_mode: XdpMode,
    /// AF_PACKET ring geometry for the fallback.
    pub tpacket: TpacketGeometry,
}

impl PortConfig {
    /// Defaults for `ifname` queue `queue`: auto backend, native XDP with generic fallback.
    pub fn new(ifname: &str, queue: u32) -> Self {
        PortConfig {
            xsk: XskConfig::new(ifname, queue),
            backend: Backend::Auto,
            xdp_mode: XdpMode::Auto,
            tpacket: TpacketGeometry::default(),
        }
    }
}

/// An opened port plus what keeps frames flowing into it.
#[derive(Debug)]
pub struct OpenedPort {
    /// The port, ready for a worker.
    pub port: Box<dyn Port>,
    /// The attached XDP program (AF_XDP backend); dropping it detaches.
    pub xdp: Option<XdpAttachment>,
    /// Why AF_XDP was not used, when [`Backend::Auto`] fell back to AF_PACKET.
    pub fallback_reason: Option<String>,
}

/// Opens the uplink queue with the filter of `params` (SPEC §2).
pub fn open_uplink(
    pool: &mut FramePool,
    cfg: &PortConfig,
    params: FilterParams,
) -> Result<OpenedPort, PortError> {
    open(pool, cfg, XdpProgram::Filter(params))
}

/// Opens a pod-side veth: every frame goes to the engine.
pub fn open_pod_port(pool: &mut FramePool, cfg: &PortConfig) -> Result<OpenedPort, PortError> {
    open(pool, cfg, XdpProgram::All)
}

fn open_af_xdp(pool: &mut FramePool, cfg: &PortConfig, program: XdpProgram) -> Result<OpenedPort, PortError> {
    let mut xdp = XdpAttachment::attach(&cfg.xsk.ifname, program, cfg.xdp_mode)?;
    let port = AfXdpPort::open(pool, &cfg.xsk)?;
    xdp.register_socket(cfg.xsk.queue, port.fd())?;
    Ok(OpenedPort { port: Box::new(port), xdp: Some(xdp), fallback_reason: None })
}

fn open_af_packet(cfg: &PortConfig, reason: Option<String>) -> Result<OpenedPort, PortError> {
    Ok(OpenedPort {
        port: Box::new(AfPacketPort::open(&cfg.xsk.ifname, cfg.tpacket)?),
        xdp: None,
        fallback_reason: reason,
    })
}

fn open(pool: &mut FramePool, cfg: &PortConfig, program: XdpProgram) -> Result<OpenedPort, PortError> {
    match cfg.backend {
        Backend::AfXdp => open_af_xdp(pool, cfg, program),
        Backend::AfPacket => open_af_packet(cfg, None),
        Backend::Auto => match open_af_xdp(pool, cfg, program) {
            Ok(p) => Ok(p),
            Err(e @ (PortError::Unsupported { .. } | PortError::Xdp { .. })) => {
                let reason = e.to_string();
                log::warn!("{}: AF_XDP unavailable, falling back to AF_PACKET: {reason}", cfg.xsk.ifname);
                open_af_packet(cfg, Some(reason))
            }
            Err(e) => Err(e),
        },
    }
}
