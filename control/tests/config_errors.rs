//! Every config error names the full key, its line and column in the file,
//! what was expected and what was found.

use weft_control::config::{Config, ConfigError};

/// A valid static-mode config; cases replace one line of it.
const BASE: &str = r#"mode = "static"
[node]
name = "n1"
public_ip = "198.18.0.11"
uplink_subnet = "198.18.0.0/24"
vtep_mac = "0a:58:c6:12:00:0b"
mtu = 1500
[etcd]
endpoints = ["http://127.0.0.1:2379", "http://127.0.0.1:22379"]
[network]
network = "198.19.0.0/16"
backend = "vxlan"
vni = 1
[static]
subnet = "198.19.1.0/24"
[[static.routes]]
subnet = "198.19.2.0/24"
via = "vxlan"
node_ip = "198.18.0.12"
vtep_mac = "0a:58:c6:12:00:0c"
"#;

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "fixture lacks {from}");
    BASE.replacen(from, to, 1)
}

fn error(text: &str) -> ConfigError {
    Config::parse_named("config.toml", text).expect_err("config must be rejected")
}

/// Asserts the key, `line:column` and the whole message of the error for `text`.
#[track_caller]
fn assert_error(text: &str, key: &str, line_col: &str, problem: &str) {
    let e = error(text);
    assert_eq!(e.key_path(), Some(key), "{e}");
    let at = e.location().map(|l| format!("{}:{}", l.line, l.column));
    assert_eq!(at.as_deref(), Some(line_col), "{e}");
    assert_eq!(e.to_string(), format!("config.toml:{line_col}: {key}: {problem}"));
}

#[test]
fn the_fixture_loads() {
    Config::parse(BASE).unwrap();
}

#[test]
fn a_string_where_a_number_belongs_names_the_key_the_range_and_the_string() {
    assert_error(
        &with("mtu = 1500", "mtu = \"1500\""),
        "node.mtu",
        "7:7",
        "expected an integer 576..=9216, found string \"1500\"",
    );
}

#[test]
fn a_negative_number_names_the_key_and_the_range() {
    assert_error(
        &with("vni = 1", "vni = -1"),
        "network.vni",
        "13:7",
        "expected an integer 0..=16777215, found integer `-1`",
    );
}

#[test]
fn an_overflowing_number_names_the_key_and_the_range() {
    assert_error(
        &with("vni = 1", "vni = 4294967296"),
        "network.vni",
        "13:7",
        "expected an integer 0..=16777215, found integer `4294967296`",
    );
    assert_error(
        &with("mtu = 1500", "mtu = 9217"),
        "node.mtu",
        "7:7",
        "expected an integer 576..=9216, found integer `9217`",
    );
}

#[test]
fn an_unknown_key_is_named_in_full_with_the_keys_its_table_takes() {
    let e = error(&with("mtu = 1500", "mtuu = 1500"));
    assert_eq!(e.key_path(), Some("node.mtuu"), "{e}");
    assert!(
        e.to_string()
            .starts_with("config.toml:7:8: node.mtuu: unknown key: expected one of name, public_ip,"),
        "{e}"
    );
    let e = error(&format!("{BASE}verbose = true\n"));
    assert_eq!(e.key_path(), Some("static.routes[0].verbose"), "{e}");
    assert_eq!(e.location().map(|l| l.line), Some(21), "{e}");
}

#[test]
fn a_missing_key_is_named_in_full_at_its_table() {
    assert_error(&with("name = \"n1\"\n", ""), "node.name", "2:1", "required key is missing");
    assert_error(
        &with("network = \"198.19.0.0/16\"\n", ""),
        "network.network",
        "10:1",
        "required key is missing",
    );
    assert_error(&with("via = \"vxlan\"\n", ""), "static.routes[0].via", "16:1", "required key is missing");
}

#[test]
fn a_bad_array_element_is_named_by_its_index() {
    assert_error(
        &with("\"http://127.0.0.1:22379\"]", "22379]"),
        "etcd.endpoints[1]",
        "9:39",
        "expected a string, found integer `22379`",
    );
    assert_error(
        &with("\"http://127.0.0.1:22379\"]", "\"htp://x\"]"),
        "etcd.endpoints[1]",
        "9:39",
        "expected an http(s) URL, found \"htp://x\"",
    );
}

#[test]
fn a_bad_value_in_a_nested_table_is_named_by_its_path() {
    assert_error(
        &with("via = \"vxlan\"", "via = \"gre\""),
        "static.routes[0].via",
        "18:7",
        "expected one of vxlan, ipip, host-gw, found \"gre\"",
    );
    assert_error(
        &with("node_ip = \"198.18.0.12\"", "node_ip = \"198.18.0\""),
        "static.routes[0].node_ip",
        "19:11",
        "expected an IPv4 address, found \"198.18.0\"",
    );
    let inline = with("[network]\n", "[network]\n").replace(
        "[static]\n",
        "[static]\nroutes = [{ subnet = \"198.19.2.0/24\", via = 4, node_ip = \"198.18.0.12\" }]\n",
    );
    let inline = inline.split("[[static.routes]]").next().unwrap().to_owned();
    assert_error(&inline, "static.routes[0].via", "15:45", "expected a string, found integer `4`");
}

#[test]
fn a_multicast_or_all_zero_vtep_mac_names_the_key_and_why() {
    assert_error(
        &with("vtep_mac = \"0a:58:c6:12:00:0b\"", "vtep_mac = \"01:00:5e:00:00:01\""),
        "node.vtep_mac",
        "6:12",
        "expected a unicast MAC address, found 01:00:5e:00:00:01 (a multicast address)",
    );
    assert_error(
        &with("vtep_mac = \"0a:58:c6:12:00:0b\"", "vtep_mac = \"00:00:00:00:00:00\""),
        "node.vtep_mac",
        "6:12",
        "expected a unicast MAC address, found 00:00:00:00:00:00 (all zeros)",
    );
    assert_error(
        &with("vtep_mac = \"0a:58:c6:12:00:0c\"", "vtep_mac = \"ff:ff:ff:ff:ff:ff\""),
        "static.routes[0].vtep_mac",
        "20:12",
        "expected a unicast MAC address, found ff:ff:ff:ff:ff:ff (a multicast address)",
    );
}

#[test]
fn node_state_workers_and_host_link_keys_are_located_like_the_others() {
    assert_error(
        &with("mtu = 1500", "state_dir = 7"),
        "node.state_dir",
        "7:13",
        "expected a string (a path), found integer `7`",
    );
    assert_error(
        &format!("{BASE}[workers]\npod_slots = 5000\n"),
        "workers.pod_slots",
        "22:13",
        "expected an integer 1..=4096, found integer `5000`",
    );
    assert_error(
        &format!("{BASE}[host_link]\ninterface = \"w0\"\nengine_interface = \"w0\"\n"),
        "host_link.engine_interface",
        "23:20",
        "expected a name other than host_link.interface, found \"w0\"",
    );
}

#[test]
fn flannel_network_keys_are_named_as_their_toml_keys() {
    assert_error(
        &with("network = \"198.19.0.0/16\"", "network = \"198.19.0.0/30\""),
        "network.network",
        "11:11",
        "198.19.0.0/30 is too small; the minimum useful prefix is /28",
    );
}

#[test]
fn an_absent_section_the_mode_needs_points_at_the_mode() {
    let text = BASE.split("[static]").next().unwrap();
    let e = error(text);
    assert_eq!(e.key_path(), Some("static"), "{e}");
    assert_eq!(e.location().map(|l| (l.line, l.column)), Some((1, 8)), "{e}");
}

#[test]
fn a_wrong_mode_names_the_modes() {
    assert_error(
        &with("mode = \"static\"", "mode = \"flat\""),
        "mode",
        "1:8",
        "expected etcd or static, found \"flat\"",
    );
}

#[test]
fn a_syntax_error_names_the_line() {
    let e = error(&with("mtu = 1500", "mtu = = 1500"));
    assert_eq!(e.key_path(), None);
    let at = e.location().map(|l| (l.line, l.column));
    assert_eq!(at, Some((7, 7)), "{e}");
    assert!(e.to_string().starts_with("config.toml:7:7: "), "{e}");
}

#[test]
fn a_file_is_named_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weft.toml");
    std::fs::write(&path, with("mtu = 1500", "mtu = \"1500\"")).unwrap();
    let e = Config::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:7:7: node.mtu: expected an integer 576..=9216, found string \"1500\"", path.display())
    );
}
