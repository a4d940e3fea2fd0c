//! `weft check --config FILE`: validates and prints the effective settings.

mod common;

use common::weft;

#[test]
fn weft_check_prints_the_effective_settings_of_the_examples() {
    let configs = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/");
    let (ok, out, err) = weft(&["check", "--config", &format!("{configs}etcd-vxlan.toml")]);
    assert!(ok, "{err}");
    assert!(out.contains("lease ttl 86400s") && out.contains(r#""SubnetMin":"198.19.1.0""#), "{out}");
    let (ok, out, err) = weft(&["check", "--config", &format!("{configs}static-host-gw.toml")]);
    assert!(ok, "{err}");
    assert!(out.contains("route           198.19.3.0/24 via host-gw 198.18.0.13"), "{out}");
    // What weft will make in the node for its host link (static mode: the subnet is known).
    for line in [
        "host link       veth weft0 (kernel, 198.19.1.0/32, mtu 1500, tx checksum off) <-> weft0e (engine)",
        "host link       route 198.19.0.0/16 via 198.19.1.1 dev weft0 onlink src 198.19.1.0",
        "host link       net.ipv4.ip_forward = 1 (if off: turned on, and off again on exit)",
        "host link       masquerade off (node.ipmasq = false)",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    let (ok, out, err) = weft(&["check", "--config", &format!("{configs}calico-bgp.toml")]);
    assert!(ok, "{err}");
    assert!(
        out.contains("bgp             AS 64512 announcing the node's lease to every other node"),
        "{out}"
    );
}

#[test]
fn weft_check_fails_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "mode = \"etcd\"\n[node]\nname = \"n\"\npublic_ip = \"198.18.0.1\"\n[etcd]\nendpoints = [\"htp://x\"]\n").unwrap();
    let (ok, _, err) = weft(&["check", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    let file = path.display();
    assert_eq!(
        err,
        format!("weft: {file}:6:14: etcd.endpoints[0]: expected an http(s) URL, found \"htp://x\"\n")
    );

    std::fs::write(
        &path,
        "mode = \"etcd\"\n[node]\nname = \"n\"\npublic_ip = \"198.18.0.1\"\nmtu = \"1500\"\n",
    )
    .unwrap();
    let (ok, _, err) = weft(&["check", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(
        err,
        format!("weft: {file}:5:7: node.mtu: expected an integer 576..=9216, found string \"1500\"\n")
    );
}

#[test]
fn weft_check_shows_where_the_vtep_mac_is_kept_without_node_vtep_mac() {
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = (dir.path().join("w.toml"), dir.path().join("state"));
    std::fs::write(
        &path,
        format!(
            "mode = \"etcd\"\n[node]\nname = \"n\"\npublic_ip = \"198.18.0.1\"\nstate_dir = \"{}\"\n",
            state.display()
        ),
    )
    .unwrap();
    let check = || weft(&["check", "--config", path.to_str().unwrap()]);
    let kept = state.join("vtep_mac");
    let (ok, out, err) = check();
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("node.vtep_mac   made at the first start, kept in {}\n", kept.display())),
        "{out}"
    );
    assert!(!state.exists(), "weft check makes nothing");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(&kept, "0a:58:c6:12:00:99\n").unwrap();
    let (ok, out, err) = check();
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("node.vtep_mac   0a:58:c6:12:00:99 (kept in {})\n", kept.display())),
        "{out}"
    );
    std::fs::write(&kept, "01:00:5e:00:00:01\n").unwrap();
    let (ok, _, err) = check();
    assert!(!ok);
    assert!(err.starts_with(&format!("weft: node.state_dir: cannot use {}: ", kept.display())), "{err}");
}
