//! ICMP error generation in place from arbitrary "offending" packets.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use weft_encap::wire::icmpv4::IcmpError;
use weft_encap::wire::ipv4::Ipv4Packet;

fuzz_target!(|data: &[u8]| {
    for kind in [IcmpError::TimeExceeded, IcmpError::FragmentationNeeded { next_hop_mtu: 1450 }] {
        let mut buf = data.to_vec();
        if let Ok(len) = kind.emit_in_place(&mut buf, 0, Ipv4Addr::new(198, 19, 1, 1), 64) {
            let ip = Ipv4Packet::new_checked(&buf[..len]).expect("we emit valid IPv4");
            assert!(ip.verify_checksum());
        }
    }
});
