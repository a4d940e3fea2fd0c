//! The `weft-cni` plugin driven as a runtime drives it, against real weft daemons in the lab
//! (vxlan, etcd): n1 a kernel-flannel node with a pod, n2 a weft node. Pods are namespaces
//! this test makes; ADD attaches them, traffic flows to each other and across to the kernel
//! node's pod, CHECK verifies, and DEL removes the veth, the address and weft's pod in every
//! situation a runtime can call it in (twice, unknown, after a weft restart, weft down).

mod lab_common;

use std::net::Ipv4Addr;

use lab_common::cni::*;
use lab_common::*;
use serde_json::{Value, json};
use weft_bench::lab::{Backend, NodeKind, cmd};
use weft_testnet::Netns;

/// A pod namespace named after the lab.
fn pod_ns(lab: &weft_bench::lab::Lab, role: &str) -> Netns {
    Netns::new(&format!("{}-{role}", lab.state().prefix)).expect("pod namespace")
}

/// What must be left after a container's DEL: no host end, no allocation, no weft pod.
fn gone(lab: &weft_bench::lab::Lab, container: &str, ip: Ipv4Addr, dirs: &[&std::path::Path], weft_up: bool) {
    let host = weft_cni::host_ifname(container, "eth0");
    let n2 = &lab.node(2).ns;
    assert!(!host_ends(n2).contains(&host), "{host} of {container} is still in n2: {:?}", host_ends(n2));
    for d in dirs {
        assert!(
            !allocations(d).contains(&ip),
            "{ip} of {container} is still allocated under {}",
            d.display()
        );
    }
    if weft_up {
        let pods = weft_pods(lab, 2);
        assert!(!pods.iter().any(|(i, _)| *i == host), "weft still has {host}: {pods:?}");
    }
}

#[test]
fn cni_pods_on_a_weft_node_reach_each_other_and_a_kernel_pod_and_del_always_cleans_up() {
    let test = "cni_pods_on_a_weft_node_reach_each_other_and_a_kernel_pod_and_del_always_cleans_up";
    if !have_root(test) || !have_host_local(test) {
        return;
    }
    let mut lab = e2e_lab(Backend::Vxlan, &[NodeKind::Kernel, NodeKind::Weft], 1);
    let dir = tempfile::tempdir().unwrap();
    let (_, ipam_dir) = state_dirs(dir.path());
    let conf = net_conf(&lab, 2, dir.path(), true);
    let stdin = conf.to_string();
    let n2 = lab.node(2).clone();
    let (p1, p2) = (pod_ns(&lab, "c1"), pod_ns(&lab, "c2"));

    // ADD two pods.
    let add = |ns: &Netns, id: &str| {
        let out = run_cni(Some(&n2.ns), "ADD", id, Some(&ns.name), "eth0", &stdin);
        assert!(out.ok, "ADD {id}: {}", out.text);
        out.json
    };
    let (r1, r2) = (add(&p1, "c1"), add(&p2, "c2"));
    let (ip1, ip2) = (result_ip(&r1), result_ip(&r2));
    let gw = Ipv4Addr::from(u32::from(n2.subnet.network()) + 1);
    assert_eq!(ip1, range_start(&n2), "host-local's first address: {r1}");
    assert_ne!(ip1, ip2);
    assert_eq!(r1["cniVersion"], "1.0.0");
    assert_eq!(r1["interfaces"][0]["name"], json!(weft_cni::host_ifname("c1", "eth0")));
    assert_eq!(r1["interfaces"][1]["name"], "eth0");
    assert_eq!(r1["interfaces"][1]["sandbox"], json!(format!("/run/netns/{}", p1.name)));
    assert_eq!(r1["ips"][0]["interface"], 1);
    assert_eq!(r1["ips"][0]["gateway"], json!(gw.to_string()));
    assert_eq!(r1["routes"], json!([{ "dst": "0.0.0.0/0", "gw": gw.to_string() }]));
    // Inside: the MTU of the lease (vxlan: 1450), the route, offload off.
    let link = p1.ip(&["-o", "link", "show", "eth0"]).unwrap();
    assert!(link.contains("mtu 1450") && link.contains("UP"), "{link}");
    let route = p1.ip(&["route", "show", "default"]).unwrap();
    assert_eq!(route.trim(), format!("default via {gw} dev eth0 proto static"), "{route}");
    let offload = p1.exec(&["ethtool", "-k", "eth0"]).unwrap();
    assert!(offload.contains("tx-checksumming: off"), "{offload}");
    let pods = weft_pods(&lab, 2);
    assert!(pods.contains(&(weft_cni::host_ifname("c1", "eth0"), ip1.to_string())), "{pods:?}");

    // Traffic: CNI pod to CNI pod, and both to the kernel node's pod (ICMP and TCP).
    let kpod = lab.pod(1, 1).clone();
    let failed = ping_all(&[
        (p1.name.clone(), ip2, "c1 -> c2".into()),
        (p2.name.clone(), ip1, "c2 -> c1".into()),
        (p1.name.clone(), kpod.ip, "c1 -> kernel pod".into()),
        (p2.name.clone(), kpod.ip, "c2 -> kernel pod".into()),
        (kpod.ns.clone(), ip1, "kernel pod -> c1".into()),
    ]);
    assert!(failed.is_empty(), "{failed:?}\n{}", lab.log_tails(3000));
    tcp_echo_works(&mut lab, &p1.name, &kpod.ns, kpod.ip, 7000, 1 << 20);

    // CHECK: as ADD left it; a prevResult naming another address fails.
    let mut checked = conf.clone();
    checked["prevResult"] = r1.clone();
    let out = run_cni(Some(&n2.ns), "CHECK", "c1", Some(&p1.name), "eth0", &checked.to_string());
    assert!(out.ok, "CHECK c1: {}", out.text);
    checked["prevResult"]["ips"][0]["address"] =
        json!(format!("{}/24", Ipv4Addr::from(u32::from(ip1) + 100)));
    let out = run_cni(Some(&n2.ns), "CHECK", "c1", Some(&p1.name), "eth0", &checked.to_string());
    assert!(!out.ok, "CHECK of a wrong address passed");
    assert_eq!(out.json["code"].as_u64().map(|c| c >= 100), Some(true), "{}", out.text);

    // DEL twice, then for a container never added.
    for _ in 0..2 {
        let out = run_cni(Some(&n2.ns), "DEL", "c1", Some(&p1.name), "eth0", &stdin);
        assert!(out.ok && out.json.is_null(), "DEL c1: {}", out.text);
    }
    gone(&lab, "c1", ip1, &[&ipam_dir], true);
    let out = run_cni(Some(&n2.ns), "DEL", "never-added", None, "eth0", &stdin);
    assert!(out.ok, "DEL of an unknown container: {}", out.text);

    // weft restarts: it no longer has c2, DEL still removes everything.
    assert_eq!(lab.stop_node(2), 1);
    start_weft(&mut lab, 2);
    wait_for_weft_routes(&lab);
    let out = run_cni(Some(&n2.ns), "DEL", "c2", Some(&p2.name), "eth0", &stdin);
    assert!(out.ok, "DEL c2 after a weft restart: {}", out.text);
    gone(&lab, "c2", ip2, &[&ipam_dir], true);

    // weft down: DEL still deletes the veth and the address; ADD fails with "try again
    // later" (11) and leaves nothing behind.
    let p3 = pod_ns(&lab, "c3");
    let r3 = add(&p3, "c3");
    let ip3 = result_ip(&r3);
    assert_eq!(lab.stop_node(2), 1);
    let out = run_cni(Some(&n2.ns), "DEL", "c3", Some(&p3.name), "eth0", &stdin);
    assert!(out.ok, "DEL c3 with weft down: {}", out.text);
    gone(&lab, "c3", ip3, &[&ipam_dir], false);
    let p4 = pod_ns(&lab, "c4");
    let out = run_cni(Some(&n2.ns), "ADD", "c4", Some(&p4.name), "eth0", &stdin);
    assert!(!out.ok, "ADD with weft down succeeded: {}", out.text);
    assert_eq!(out.json["code"], 11, "{}", out.text);
    assert!(out.json["msg"].as_str().unwrap_or_default().contains("weft"), "{}", out.text);
    assert!(host_ends(&n2.ns).is_empty(), "{:?}", host_ends(&n2.ns));
    assert!(allocations(&ipam_dir).is_empty(), "{:?}", allocations(&ipam_dir));
    assert!(cmd::ip_in(&p4.name, &["-o", "link", "show"]).unwrap().lines().count() == 1, "only lo in c4");
}

#[test]
fn concurrent_adds_without_ipam_get_distinct_addresses_from_the_node_subnet() {
    let test = "concurrent_adds_without_ipam_get_distinct_addresses_from_the_node_subnet";
    if !have_root(test) {
        return;
    }
    let lab = e2e_lab(Backend::Vxlan, &[NodeKind::Kernel, NodeKind::Weft], 1);
    // The lab wired a pod at .2 itself: detach it so the node subnet is the plugin's alone.
    let lab_pod = lab.pod(2, 1).host_iface.clone();
    weft_cni::weft_api::pod_del(&weft_socket(&lab, 2), &lab_pod).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store_dir, _) = state_dirs(dir.path());
    let stdin = net_conf(&lab, 2, dir.path(), false).to_string();
    let n2 = lab.node(2).clone();
    let pods: Vec<Netns> = (0..6).map(|k| pod_ns(&lab, &format!("d{k}"))).collect();

    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(k, ns)| {
                let (n2, stdin) = (&n2.ns, &stdin);
                s.spawn(move || run_cni(Some(n2), "ADD", &format!("d{k}"), Some(&ns.name), "eth0", stdin))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let out = h.join().unwrap();
                assert!(out.ok, "concurrent ADD: {}", out.text);
                out.json
            })
            .collect()
    });
    let mut ips: Vec<Ipv4Addr> = results.iter().map(result_ip).collect();
    let gw = Ipv4Addr::from(u32::from(n2.subnet.network()) + 1);
    assert!(ips.iter().all(|ip| n2.subnet.contains(ip) && *ip != gw), "{ips:?}");
    let mut sorted = ips.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "addresses handed out twice: {ips:?}");
    let mut held = allocations(&store_dir);
    held.sort();
    assert_eq!(held, sorted, "the store holds exactly the addresses handed out");

    let kpod = lab.pod(1, 1).clone();
    let failed = ping_all(&[
        (pods[0].name.clone(), ips[5], "d0 -> d5".into()),
        (pods[5].name.clone(), kpod.ip, "d5 -> kernel pod".into()),
    ]);
    assert!(failed.is_empty(), "{failed:?}");

    for (k, ns) in pods.iter().enumerate() {
        let out = run_cni(Some(&n2.ns), "DEL", &format!("d{k}"), Some(&ns.name), "eth0", &stdin);
        assert!(out.ok, "DEL d{k}: {}", out.text);
    }
    ips.clear();
    assert!(allocations(&store_dir).is_empty(), "{:?}", allocations(&store_dir));
    assert!(host_ends(&n2.ns).is_empty(), "{:?}", host_ends(&n2.ns));
    let left = weft_pods(&lab, 2);
    assert!(left.iter().all(|(i, _)| !i.starts_with(weft_cni::HOST_PREFIX)), "{left:?}");
}

#[test]
fn bad_configuration_and_environment_get_the_specs_error_json() {
    let ok = r#"{"cniVersion":"1.0.0","name":"n","type":"weft-cni","socket":"/nonexistent/weft.sock"}"#;
    let cases: [(&str, Option<&str>, &str, u64, &str); 5] = [
        ("ADD", Some("x"), "{not json", 6, "not JSON"),
        ("ADD", Some("x"), r#"{"cniVersion":"1.0.0","type":"weft-cni"}"#, 7, "name"),
        ("ADD", Some("x"), r#"{"cniVersion":"9.9.9","name":"n","type":"weft-cni"}"#, 1, "9.9.9"),
        ("ADD", None, ok, 4, "CNI_NETNS"),
        ("BOGUS", None, ok, 4, "BOGUS"),
    ];
    for (command, netns, stdin, code, names) in cases {
        let out = run_cni(None, command, "c1", netns, "eth0", stdin);
        assert!(!out.ok, "{command} with {stdin} succeeded");
        assert_eq!(out.json["code"], code, "{command} {stdin}: {}", out.text);
        assert!(out.json["msg"].as_str().unwrap_or_default().contains(names), "{}", out.text);
        assert!(out.json.get("details").is_some() && out.json.get("cniVersion").is_some(), "{}", out.text);
    }
    let out = run_cni(None, "DEL", "bad/id", None, "eth0", ok);
    assert_eq!(out.json["code"], 4, "{}", out.text);
    let out = run_cni(None, "VERSION", "", None, "", r#"{"cniVersion":"1.0.0"}"#);
    assert!(out.ok, "{}", out.text);
    assert!(
        out.json["supportedVersions"].as_array().is_some_and(|v| v.contains(&json!("1.0.0"))),
        "{}",
        out.text
    );
}
