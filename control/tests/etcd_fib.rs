//! Leases in etcd become FIB routes: a real etcd, the etcd `Agent`, and the daemon's
//! `ProgrammerSink` over the engine's `RouteProgrammer` and FIB. A worker-side `FibReader`
//! looks the routes up, as the pipeline does.

mod common;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{PREFIX, etcd_with_network, put_peer, settings, wait_for};
use tokio::sync::oneshot;
use weft_control::etcd::Agent;
use weft_control::routes::ProgrammerSink;
use weft_encap::{MacAddr, Vni};
use weft_engine::fib::{FibConfig, FibReader, FibWriter, Ipv4Prefix, NextHop};
use weft_engine::neighbour::NeighbourTable;
use weft_engine::pipeline::{NodeConfig, RouteProgrammer, TunnelOptions};

const WAIT: Duration = Duration::from_secs(10);

/// What the FIB says for `dst`, as a worker would see it.
fn lookup(reader: &FibReader, dst: Ipv4Addr) -> Option<NextHop> {
    let mut out = [None];
    let snapshot = reader.resolve_batch(&[u32::from(dst)], &mut out);
    out[0].and_then(|id| snapshot.get(id).cloned())
}

fn node(direct_routing: bool) -> NodeConfig {
    NodeConfig {
        uplink_mac: MacAddr([2, 0, 0xc6, 0x12, 0, 11]),
        public_ip: Ipv4Addr::new(198, 18, 0, 11),
        uplink_subnet: Ipv4Prefix::new(Ipv4Addr::new(198, 18, 0, 0), 24).unwrap(),
        underlay_gateway: Some(Ipv4Addr::new(198, 18, 0, 254)),
        vtep_mac: "0a:58:c6:12:00:0b".parse().unwrap(),
        direct_routing,
        cluster: Ipv4Prefix::new(Ipv4Addr::new(198, 19, 0, 0), 16).unwrap(),
        tunnel: TunnelOptions::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_put_by_flannel_becomes_the_right_fib_route_and_its_removal_restores_the_cover() {
    let (etcd, dir) = etcd_with_network(
        r#"{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.63.0","Backend":{"Type":"vxlan","DirectRouting":true}}"#,
    );
    let programmer = RouteProgrammer::new(
        FibWriter::new(FibConfig { tbl8_groups: 64, ..FibConfig::default() }),
        node(true),
        Arc::new(NeighbourTable::new(64, 64)),
    )
    .unwrap();
    let reader = programmer.handles().fib;
    let programmer = Arc::new(Mutex::new(programmer));
    let agent = Agent::start(settings(&etcd, 11, dir.path())).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut sink = ProgrammerSink::new(programmer.clone());
    let task = tokio::spawn(async move {
        agent
            .run(&mut sink, async {
                let _ = stopped.await;
            })
            .await
    });

    // Off our L2 subnet: VXLAN to the peer's PublicIP with its VtepMAC, flannel's VNI/port.
    put_peer(&etcd, "198.19.90.0-24", "198.18.7.90", "0a:58:c6:13:5a:00");
    // On our L2 subnet with DirectRouting: unencapsulated, via the peer itself.
    put_peer(&etcd, "198.19.91.0-24", "198.18.0.91", "0a:58:c6:13:5b:00");
    let far = Ipv4Addr::new(198, 19, 90, 7);
    let near = Ipv4Addr::new(198, 19, 91, 7);
    wait_for("both routes in the FIB", WAIT, || {
        matches!(lookup(&reader, far), Some(NextHop::Vxlan(_)))
            && matches!(lookup(&reader, near), Some(NextHop::HostGw { .. } | NextHop::Direct { .. }))
    })
    .await;

    let Some(NextHop::Vxlan(hop)) = lookup(&reader, far) else { unreachable!() };
    let p = hop.template.params();
    assert_eq!(p.dst_ip, Ipv4Addr::new(198, 18, 7, 90));
    assert_eq!(p.inner_dst_mac, "0a:58:c6:13:5a:00".parse::<MacAddr>().unwrap());
    assert_eq!((p.vni, p.dst_port), (Vni::FLANNEL, 8472));
    assert_eq!(p.src_ip, Ipv4Addr::new(198, 18, 0, 11));
    assert_eq!(hop.underlay, Ipv4Addr::new(198, 18, 0, 254), "off-subnet peers go via the underlay gateway");
    match lookup(&reader, near) {
        Some(NextHop::HostGw { node } | NextHop::Direct { node, .. }) => {
            assert_eq!(node, Ipv4Addr::new(198, 18, 0, 91))
        }
        other => panic!("DirectRouting peer: {other:?}"),
    }

    // Deleting the lease removes the route: the covering cluster route (blackhole) answers.
    etcd.etcdctl(&["del", &format!("{PREFIX}/subnets/198.19.90.0-24")]);
    wait_for("the route to go", WAIT, || matches!(lookup(&reader, far), Some(NextHop::Blackhole))).await;
    // Outside the cluster network: the default route to the exception path.
    assert!(matches!(lookup(&reader, Ipv4Addr::new(198, 18, 99, 1)), Some(NextHop::Exception)));

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
