//! Neighbour resolution learns underlay MACs from the kernel, in a netns pair.

mod netns;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Result;
use netns::{Netns, root_or_skip, unique_stem, veth_between};
use weft_control::flannel::MacAddr;
use weft_control::neighbour::{NeighbourResolver, NeighbourSink};

#[derive(Default)]
struct Changes(Vec<(Ipv4Addr, Option<MacAddr>)>);

impl NeighbourSink for Changes {
    fn neighbour_changed(&mut self, ip: Ipv4Addr, mac: Option<MacAddr>) {
        self.0.push((ip, mac));
    }
}

#[test]
fn the_resolver_learns_a_peers_mac_from_the_kernel_and_uses_the_gateway_off_link() -> Result<()> {
    if !root_or_skip("the_resolver_learns_a_peers_mac_from_the_kernel_and_uses_the_gateway_off_link") {
        return Ok(());
    }
    let stem = unique_stem();
    let a = Netns::new(&format!("{stem}a"))?;
    let b = Netns::new(&format!("{stem}b"))?;
    let (ia, ib) = (format!("{stem}x"), format!("{stem}y"));
    veth_between(&a, &ia, "02:00:00:0d:00:01", &b, &ib, "02:00:00:0d:00:02")?;
    a.ip(&["addr", "add", "198.18.0.1/24", "dev", &ia])?;
    b.ip(&["addr", "add", "198.18.0.2/24", "dev", &ib])?;
    a.ip(&["route", "add", "198.18.5.0/24", "via", "198.18.0.2", "dev", &ia])?;
    let before = a.ip(&["neigh", "show", "dev", &ia])?;
    assert!(!before.contains("198.18.0.2"), "no entry before resolution: {before}");

    let iface = ia.clone();
    let (changes, next_hops) = a.run(move || -> Result<_> {
        let mut r = NeighbourResolver::new(&iface, Duration::from_millis(100), Duration::from_secs(30))?;
        // A peer on our L2 subnet and one behind the gateway 198.18.0.2;
        // 198.18.9.9 has no route on this uplink at all.
        r.set_destinations(["198.18.0.2".parse()?, "198.18.5.9".parse()?, "198.18.9.9".parse()?]);
        let mut sink = Changes::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.0.is_empty() && Instant::now() < deadline {
            r.refresh(&mut sink)?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok((sink.0, r.next_hops().clone()))
    })??;
    let gw: Ipv4Addr = "198.18.0.2".parse()?;
    assert_eq!(next_hops.into_iter().collect::<Vec<_>>(), vec![gw], "both peers resolve through .2");
    assert_eq!(changes, vec![(gw, Some("02:00:00:0d:00:02".parse()?))]);
    Ok(())
}
