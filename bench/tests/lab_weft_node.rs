//! A weft node is prepared for the daemon: namespace, uplink on the underlay, pod veths with
//! unbridged host ends, a generated config weft accepts, and its start command run with the
//! placeholders expanded (here a stand-in that writes its lease and subnet.env as the daemon
//! would, which the kernel node then programs).

mod lab_common;

use lab_common::*;
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeKind, NodeSpec, cmd};

#[test]
fn a_weft_node_gets_uplink_pods_config_and_its_start_command_with_placeholders_expanded() {
    if !have_root("a_weft_node_gets_uplink_pods_config_and_its_start_command_with_placeholders_expanded") {
        return;
    }
    let stand_in = "etcdctl --endpoints={etcd} put /coreos.com/network/subnets/198.19.2.0-24 \
                    '{\"PublicIP\":\"{public_ip}\",\"BackendType\":\"vxlan\",\"BackendData\":{\"VNI\":1,\"VtepMAC\":\"0a:58:c6:12:00:02\"}}' && \
                    printf 'FLANNEL_NETWORK=198.19.0.0/16\\nFLANNEL_SUBNET=198.19.2.1/24\\nFLANNEL_MTU=1450\\n' > {subnet_file}; \
                    echo {ns} {node} {public_ip} {uplink} {etcd} {config} > {dir}/started-{node}; exec sleep 600";
    let spec = LabSpec {
        prefix: prefix(),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::Vxlan,
        nodes: vec![
            NodeSpec::kernel(WEFT_LAB),
            NodeSpec::weft(Some(vec!["sh".into(), "-c".into(), stand_in.into()])),
        ],
        pods_per_node: 2,
        uplink_mtu: 1500,
    };
    let mut lab = LabGuard::new(Lab::up(&spec).unwrap());
    let (n1, n2) = (lab.node(1).clone(), lab.node(2).clone());
    assert_eq!(n2.kind, NodeKind::Weft);

    let started = std::fs::read_to_string(lab.state().dir.join("started-2")).unwrap();
    let config = n2.config.clone().expect("a weft node has a config");
    assert_eq!(
        started.trim(),
        format!("{} 2 198.18.0.2 uplink http://198.18.0.250:2379 {}", n2.ns, config.display())
    );
    let parsed = weft_control::config::Config::load(&config).unwrap();
    assert_eq!(parsed.node.public_ip, n2.public_ip);
    assert_eq!(parsed.node.subnet_file, n2.subnet_file);

    // The kernel node programmed the stand-in's lease as flanneld would.
    let fdb = cmd::run("bridge", &["-n", &n1.ns, "fdb", "show", "dev", "flannel.1"]).unwrap();
    assert!(fdb.contains("0a:58:c6:12:00:02 dst 198.18.0.2 self permanent"), "{fdb}");
    // The underlay works between a kernel node and the weft node's uplink.
    assert!(ping(&n1.ns, n2.public_ip, 2), "n1 -> n2 uplink over the underlay bridge");
    // Pods: addressed in the node's subnet with the gateway as default route; host ends up,
    // unaddressed and in no bridge (the engine attaches to them).
    for pod in &n2.pods {
        let route = cmd::ip_in(&pod.ns, &["route", "show", "default"]).unwrap();
        assert_eq!(route.trim(), "default via 198.19.2.1 dev pod0");
        let host = cmd::ip_in(&n2.ns, &["-o", "addr", "show", "dev", &pod.host_iface]).unwrap();
        assert!(!host.contains("inet "), "host end {} has an address: {host}", pod.host_iface);
        let link = cmd::ip_in(&n2.ns, &["-o", "link", "show", "dev", &pod.host_iface]).unwrap();
        assert!(link.contains("state UP") || link.contains("LOWER_UP"), "{link}");
        assert!(!link.contains("master"), "host end is bridged: {link}");
    }
    assert_eq!(lab.stop_node(2), 1, "the start command runs until the lab stops it");
}
