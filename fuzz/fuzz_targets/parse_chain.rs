//! The parse chain under every option combination: must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_encap::parse::{ParseOptions, parse_frame};
use weft_encap::{UdpChecksumPolicy, VlanPolicy};

fuzz_target!(|data: &[u8]| {
    for vlan in [VlanPolicy::Skip, VlanPolicy::Reject] {
        for udp_checksum in [UdpChecksumPolicy::Ignore, UdpChecksumPolicy::VerifyIfPresent, UdpChecksumPolicy::Require] {
            let opts = ParseOptions { vlan, verify_ipv4_checksum: true, udp_checksum };
            let _ = parse_frame(data, &opts);
        }
    }
});
