//! IPIP decap of arbitrary frames: an error or an Ethernet+IPv4 frame inside the
//! input, never a panic.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use weft_encap::{IpipDecapConfig, Span};

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let span = Span::new(0, buf.len());
    if let Ok(d) = (IpipDecapConfig { local_ip: Ipv4Addr::new(198, 18, 0, 2) }).decap(&mut buf, span) {
        assert!(d.frame.start >= span.start && d.frame.end() <= span.end());
        assert_eq!(&buf[d.frame.start + 12..d.frame.start + 14], &[0x08, 0x00]);
    }
});
