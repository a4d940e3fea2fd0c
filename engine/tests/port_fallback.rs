//! Backend choice: `Auto` uses AF_XDP where XDP works and falls back to
//! AF_PACKET, with the reason kept, where it does not (here: native XDP
//! required on the namespace's loopback, whose driver has no native XDP).

mod common;

use std::net::Ipv4Addr;

use anyhow::Result;
use common::{Netns, root_or_skip, unique_stem, veth_pair};
use weft_engine::port::xdp_filter::{FilterParams, XdpMode};
use weft_engine::port::{Backend, FramePool, PortConfig, PortError, open_pod_port, open_uplink};

fn params() -> FilterParams {
    FilterParams {
        public_ip: Ipv4Addr::new(198, 18, 0, 1),
        vxlan_port: Some(8472),
        pod_subnet: Some((Ipv4Addr::new(198, 19, 1, 0), 24)),
    }
}

#[test]
fn auto_backend_uses_af_xdp_where_xdp_works_and_af_packet_where_it_does_not() -> Result<()> {
    if !root_or_skip("auto_backend_uses_af_xdp_where_xdp_works_and_af_packet_where_it_does_not") {
        return Ok(());
    }
    let stem = unique_stem();
    let ns = Netns::new(&format!("{stem}n"))?;
    let (a, b, d) = (format!("{stem}a"), format!("{stem}b"), "lo".to_owned());
    veth_pair(&ns, &a, "02:00:00:00:09:01", &b, "02:00:00:00:09:02")?;
    ns.run(move || -> Result<()> {
        let mut pool = FramePool::new(4096)?;
        let up = open_uplink(&mut pool, &PortConfig::new(&a, 0), params())?;
        assert_eq!(up.port.kind(), "af_xdp copy");
        assert!(up.xdp.as_ref().is_some_and(|x| x.is_native()), "veth takes native XDP");
        assert!(up.fallback_reason.is_none());

        let pod = open_pod_port(&mut pool, &PortConfig::new(&b, 0))?;
        assert_eq!(pod.port.kind(), "af_xdp copy");

        let mut cfg = PortConfig::new(&d, 0);
        cfg.xdp_mode = XdpMode::Native;
        let fb = open_uplink(&mut pool, &cfg, params())?;
        assert_eq!(fb.port.kind(), "af_packet tpacket_v3");
        assert!(fb.xdp.is_none());
        let reason = fb.fallback_reason.expect("the fallback says why");
        eprintln!("fallback reason: {reason}");
        assert!(reason.contains(&d) && reason.contains("native"), "{reason}");

        cfg.backend = Backend::AfXdp;
        let e = open_uplink(&mut pool, &cfg, params()).unwrap_err();
        assert!(
            matches!(e, PortError::Xdp { .. } | PortError::Unsupported { .. }),
            "AfXdp does not fall back: {e}"
        );

        cfg.backend = Backend::AfPacket;
        assert_eq!(open_uplink(&mut pool, &cfg, params())?.port.kind(), "af_packet tpacket_v3");
        Ok(())
    })??;
    Ok(())
}

#[test]
fn auto_backend_reports_a_missing_interface_instead_of_falling_back() {
    let mut pool = FramePool::new(64).unwrap();
    let e = open_uplink(&mut pool, &PortConfig::new("wxmissing0", 0), params()).unwrap_err();
    assert!(matches!(e, PortError::NoSuchInterface { .. }), "{e}");
}
