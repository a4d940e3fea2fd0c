use super::*;

const ETCD: &str = r#"
mode = "etcd"
[node]
name = "n1"
public_ip = "198.18.0.11"
uplink_subnet = "198.18.0.0/24"
vtep_mac = "0a:58:c6:12:00:0b"
[etcd]
endpoints = ["http://127.0.0.1:2379"]
lease_ttl_secs = 30
[network]
network = "198.19.0.0/16"
backend = "vxlan"
"#;

fn with(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "fixture lacks {from}");
    base.replacen(from, to, 1)
}

#[test]
fn an_etcd_config_loads_with_flannel_defaults() {
    let c = Config::parse(ETCD).unwrap();
    assert_eq!(c.mode, Mode::Etcd);
    assert_eq!(c.etcd.prefix, "/coreos.com/network");
    assert_eq!(c.etcd.lease_ttl.as_secs(), 30);
    assert_eq!(c.node.subnet_file, std::path::PathBuf::from("/run/flannel/subnet.env"));
    let net = c.network.unwrap();
    assert_eq!((net.subnet_len, net.backend.vni, net.backend.port), (24, 1, 8472));
}

#[test]
fn the_example_configs_load() {
    for file in ["etcd-vxlan.toml", "static-host-gw.toml", "flannel-wireguard.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs").join(file);
        Config::load(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[test]
fn config_errors_name_the_key() {
    let cases = [
        (with(ETCD, r#"["http://127.0.0.1:2379"]"#, r#"["htp://x"]"#), "etcd.endpoints[0]"),
        (with(ETCD, "198.18.0.11", "198.18.0.300"), "node.public_ip"),
        (with(ETCD, "198.18.0.0/24", "198.17.0.0/24"), "node.uplink_subnet"),
        (with(ETCD, "0a:58:c6:12:00:0b", "0a:58"), "node.vtep_mac"),
        (with(ETCD, "lease_ttl_secs = 30", "lease_ttl_secs = 1"), "etcd.lease_ttl_secs"),
        (with(ETCD, "198.19.0.0/16", "198.19.0.0/30"), "network.network"),
        (with(ETCD, r#"backend = "vxlan""#, r#"backend = "udp""#), "network.backend"),
        (with(ETCD, r#"backend = "vxlan""#, "backend = \"vxlan\"\nsubnet_len = 31"), "network.subnet_len"),
        (with(ETCD, r#"mode = "etcd""#, r#"mode = "static""#), "static"),
        (
            with(ETCD, r#"backend = "vxlan""#, "backend = \"vxlan\"\nlisten_port = 51000"),
            "network.listen_port",
        ),
        (
            with(ETCD, r#"backend = "vxlan""#, "backend = \"wireguard\"\nlisten_port = 0"),
            "network.listen_port",
        ),
        (with(ETCD, r#"backend = "vxlan""#, "backend = \"wireguard\"\npsk = \"c2hvcnQ=\""), "network.psk"),
    ];
    for (text, key) in cases {
        let err = Config::parse(&text).unwrap_err();
        assert_eq!(err.key_path(), Some(key), "{err}");
        assert!(err.location().is_some_and(|at| at.file == "config" && at.line > 1), "{err}");
        assert!(err.to_string().contains(&format!(": {key}: ")), "{err}");
    }
}

#[test]
fn a_wireguard_network_takes_flannels_options() {
    let text = with(
        ETCD,
        r#"backend = "vxlan""#,
        "backend = \"wireguard\"\nlisten_port = 51000\npersistent_keepalive_interval = 25\npsk = \"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=\"",
    );
    let wg = Config::parse(&text).unwrap().network.unwrap().backend.wireguard;
    assert_eq!((wg.listen_port, wg.persistent_keepalive), (51000, 25));
    assert!(wg.psk.is_some());
}

#[test]
fn a_typoed_key_is_an_error_naming_it() {
    let err = Config::parse(&with(ETCD, "lease_ttl_secs", "lease_tll_secs")).unwrap_err();
    assert!(err.to_string().contains("lease_tll_secs"), "{err}");
}

#[test]
fn static_routes_are_validated_per_entry() {
    let base = r#"
mode = "static"
[node]
name = "n1"
public_ip = "198.18.0.11"
uplink_subnet = "198.18.0.0/24"
[network]
network = "198.19.0.0/16"
backend = "host-gw"
[static]
subnet = "198.19.1.0/24"
[[static.routes]]
subnet = "198.19.2.0/24"
via = "host-gw"
node_ip = "198.18.0.12"
"#;
    let c = Config::parse(base).unwrap();
    assert_eq!(c.static_routes.unwrap().routes[0].to_string(), "198.19.2.0/24 via host-gw 198.18.0.12");
    let cases = [
        (with(base, "198.18.0.12", "198.18.1.12"), "static.routes[0].node_ip"),
        (with(base, "198.19.2.0/24", "198.19.1.0/24"), "static.routes[0].subnet"),
        (with(base, r#"via = "host-gw""#, r#"via = "vxlan""#), "static.routes[0].vtep_mac"),
        (with(base, r#"via = "host-gw""#, r#"via = "gre""#), "static.routes[0].via"),
    ];
    for (text, key) in cases {
        let err = Config::parse(&text).unwrap_err();
        assert_eq!(err.key_path(), Some(key), "{err}");
    }
}
