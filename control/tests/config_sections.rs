//! The daemon's config sections: defaults, and errors that name the key.

use weft_control::config::{Config, PortBackend};

const BASE: &str = r#"mode = "static"
[node]
name = "n1"
public_ip = "198.18.0.11"
[network]
network = "198.19.0.0/16"
backend = "host-gw"
[static]
subnet = "198.19.1.0/24"
"#;

fn key_of(extra: &str) -> String {
    match Config::parse(&format!("{BASE}{extra}")) {
        Ok(_) => panic!("accepted: {extra}"),
        Err(e) => e.key_path().map(str::to_owned).unwrap_or_else(|| e.to_string()),
    }
}

#[test]
fn absent_sections_take_their_defaults() {
    let c = Config::parse(BASE).unwrap();
    assert!(c.uplink.is_none() && c.pods.is_empty());
    assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9464");
    assert!(c.metrics.enabled);
    assert_eq!(c.api.socket.to_str(), Some("/run/weft/weft.sock"));
    assert_eq!((c.workers.batch, c.workers.frames, c.workers.pod_slots), (64, 4096, 128));
    assert!(c.exception.interface.is_none());
}

#[test]
fn a_full_daemon_config_is_accepted() {
    let c = Config::parse(&format!(
        "{BASE}[uplink]\ninterface = \"eth1\"\nqueues = 2\nbackend = \"af_xdp\"\n\
         [workers]\ncores = [2, 3]\n\
         [[pods]]\ninterface = \"veth1\"\nip = \"198.19.1.2\"\nmac = \"0a:58:c6:13:01:02\"\n\
         [metrics]\nlisten = \"127.0.0.1:9100\"\n[api]\nsocket = \"/tmp/w.sock\"\n[exception]\ninterface = \"weft0\"\n"
    ))
    .unwrap();
    let u = c.uplink.unwrap();
    assert_eq!((u.interface.as_str(), u.queues, u.backend), ("eth1", 2, PortBackend::AfXdp));
    assert_eq!(c.workers.worker_cores(), vec![2, 3]);
    assert_eq!(c.pods[0].interface.as_str(), "veth1");
    assert_eq!(c.exception.interface.as_deref(), Some("weft0"));
}

#[test]
fn errors_in_the_new_sections_name_their_key() {
    let cases = [
        ("[uplink]\ninterface = \"a-very-long-interface-name\"\n", "uplink.interface"),
        ("[uplink]\ninterface = \"eth0\"\nqueues = 0\n", "uplink.queues"),
        ("[uplink]\ninterface = \"eth0\"\nbackend = \"dpdk\"\n", "uplink.backend"),
        ("[uplink]\ninterface = \"eth0\"\nxdp_mode = \"offload\"\n", "uplink.xdp_mode"),
        ("[uplink]\ninterface = \"eth0\"\nqueues = 2\nbackend = \"af_packet\"\n", "uplink.queues"),
        ("[uplink]\ninterface = \"eth0\"\nqueues = 2\n[workers]\ncores = [1]\n", "workers.cores"),
        ("[workers]\ncores = [1]\nbatch = 0\n", "workers.batch"),
        ("[workers]\nframes = 1000\n", "workers.frames"),
        ("[workers]\npod_slots = 0\n", "workers.pod_slots"),
        ("[[pods]]\ninterface = \"v1\"\nip = \"198.19.1.300\"\n", "pods[0].ip"),
        ("[[pods]]\ninterface = \"v1\"\nip = \"198.19.9.2\"\n", "pods[0].ip"),
        ("[[pods]]\ninterface = \"v1\"\nip = \"198.19.1.1\"\n", "pods[0].ip"),
        ("[[pods]]\ninterface = \"v1\"\nip = \"198.19.1.255\"\n", "pods[0].ip"),
        ("[[pods]]\ninterface = \"v1\"\nip = \"198.19.1.2\"\nmac = \"zz\"\n", "pods[0].mac"),
        (
            "[[pods]]\ninterface = \"v1\"\nip = \"198.19.1.2\"\n[[pods]]\ninterface = \"v1\"\nip = \"198.19.1.3\"\n",
            "pods[1].interface",
        ),
        ("[metrics]\nlisten = \"0.0.0.0:9464\"\n", "metrics.listen"),
        ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
        ("[api]\nsocket = \"weft.sock\"\n", "api.socket"),
        ("[exception]\ninterface = \"a/b\"\n", "exception.interface"),
        ("[host_link]\ninterface = \"a-very-long-interface-name\"\n", "host_link.interface"),
        ("[host_link]\nengine_interface = \"\"\n", "host_link.engine_interface"),
        ("[host_link]\ninterface = \"w0\"\nengine_interface = \"w0\"\n", "host_link.engine_interface"),
        ("[host_link]\n[exception]\ninterface = \"weft-exc\"\n", "host_link"),
    ];
    for (extra, key) in cases {
        assert_eq!(key_of(extra), key, "{extra}");
    }
}

#[test]
fn the_host_link_is_on_with_weft0_and_weft0e_unless_named_disabled_or_made_by_hand() {
    let h = Config::parse(BASE).unwrap().host_link.unwrap();
    assert_eq!((h.interface.as_str(), h.engine_interface.as_str()), ("weft0", "weft0e"));
    let h = Config::parse(&format!("{BASE}[host_link]\ninterface = \"k0\"\nengine_interface = \"e0\"\n"))
        .unwrap()
        .host_link
        .unwrap();
    assert_eq!((h.interface.as_str(), h.engine_interface.as_str()), ("k0", "e0"));
    assert!(Config::parse(&format!("{BASE}[host_link]\nenabled = false\n")).unwrap().host_link.is_none());
    let by_hand = Config::parse(&format!("{BASE}[exception]\ninterface = \"exc0\"\n")).unwrap();
    assert!(by_hand.host_link.is_none());
    assert_eq!(by_hand.exception.interface.as_deref(), Some("exc0"));
}

#[test]
fn unknown_keys_in_the_new_sections_are_named() {
    assert_eq!(key_of("[uplink]\ninterface = \"eth0\"\nqueue = 1\n"), "uplink.queue");
    // Pods run on the queue-0 worker: a separate pod core is not a setting.
    assert_eq!(key_of("[workers]\npod_core = 1\n"), "workers.pod_core");
}

#[test]
fn non_loopback_metrics_need_an_explicit_opt_in() {
    let c = Config::parse(&format!(
        "{BASE}[metrics]\nlisten = \"198.18.0.11:9464\"\nallow_non_loopback = true\n"
    ))
    .unwrap();
    assert_eq!(c.metrics.listen.to_string(), "198.18.0.11:9464");
}

#[test]
fn every_example_config_is_valid_and_names_an_uplink() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(c.uplink.is_some(), "{} has no [uplink]", path.display());
        seen += 1;
    }
    assert!(seen >= 7, "the examples of every data path are there ({seen})");
}
