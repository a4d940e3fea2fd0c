//! VXLAN decap of arbitrary frames at arbitrary headroom: an error or a span that
//! lies inside the input, never a panic.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use weft_encap::{Span, UdpChecksumPolicy, Vni, VxlanDecapConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = VxlanDecapConfig {
        local_ip: Ipv4Addr::new(198, 18, 0, 2),
        port: 8472,
        vni: Vni::FLANNEL,
        udp_checksum: UdpChecksumPolicy::VerifyIfPresent,
    };
    let span = Span::new(0, data.len());
    if let Ok(d) = cfg.decap(data, span) {
        assert!(d.inner.start >= span.start && d.inner.end() <= span.end());
        assert!(d.inner.len >= 14);
    }
});
