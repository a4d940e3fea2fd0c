//! Static mode: routes from the TOML file, no etcd.

use std::net::Ipv4Addr;

use weft_control::config::Config;
use weft_control::routes::{RecordingSink, RouteDelta, RouteSpec, Via};
use weft_control::static_mode::start_static;

#[test]
fn the_static_example_installs_its_routes_in_one_batch_and_writes_subnet_env() {
    let dir = tempfile::tempdir().unwrap();
    let env_path = dir.path().join("subnet.env");
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/static-host-gw.toml"))
            .unwrap();
    let text = example.replace("/run/flannel/subnet.env", env_path.to_str().unwrap());
    assert_ne!(text, example, "the example names a subnet file");
    let config = Config::parse(&text).unwrap();

    let mut sink = RecordingSink::new();
    let mut compiler = start_static(&config, &mut sink).unwrap();
    let batches = sink.batches();
    assert_eq!(batches.len(), 1);
    let spec = |net: &str, host: u8| RouteSpec {
        subnet: net.parse().unwrap(),
        via: Via::HostGw { gateway: Ipv4Addr::new(198, 18, 0, host) },
    };
    assert_eq!(
        batches[0].1,
        vec![RouteDelta::Upsert(spec("198.19.2.0/24", 12)), RouteDelta::Upsert(spec("198.19.3.0/24", 13))]
    );
    assert_eq!(
        std::fs::read_to_string(&env_path).unwrap(),
        "FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.1.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n"
    );

    // A reload with one route gone and one moved sends just that diff.
    compiler.reconcile_specs(&[spec("198.19.3.0/24", 14)]);
    compiler.flush(&mut sink);
    assert_eq!(
        sink.batches()[1].1,
        vec![
            RouteDelta::Remove("198.19.2.0/24".parse().unwrap()),
            RouteDelta::Upsert(spec("198.19.3.0/24", 14))
        ]
    );
}
