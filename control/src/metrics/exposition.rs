//! Prometheus text format 0.0.4, rendered from the status report so the
//! metrics and `weft status` can never disagree.

use std::fmt::Write;

use crate::api::StatusReport;

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A counter family: name, help, and how to read it from one line of the report.
type Family<T> = (&'static str, &'static str, fn(&T) -> u64);

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        let _ = write!(self.0, "{name}");
        if !labels.is_empty() {
            let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
            let _ = write!(self.0, "{{{}}}", parts.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Renders every weft metric of `r`.
pub fn render(r: &StatusReport) -> String {
    let mut o = Out(String::with_capacity(8192));
    o.family("weft_info", "gauge", "Constant 1, labelled with the node, mode, backend and subnet.");
    o.sample(
        "weft_info",
        &[("node", &r.node), ("mode", &r.mode), ("backend", &r.backend), ("subnet", &r.subnet)],
        1,
    );
    o.family("weft_uptime_seconds", "gauge", "Seconds since the daemon started.");
    o.sample("weft_uptime_seconds", &[], r.uptime_secs);

    let port_counters: [Family<crate::api::PortLine>; 4] = [
        ("weft_port_rx_packets_total", "Frames received on the port.", |p| p.rx_packets),
        ("weft_port_rx_bytes_total", "Bytes received on the port.", |p| p.rx_bytes),
        ("weft_port_tx_packets_total", "Frames sent on the port.", |p| p.tx_packets),
        ("weft_port_tx_bytes_total", "Bytes sent on the port.", |p| p.tx_bytes),
    ];
    for (name, help, get) in port_counters {
        o.family(name, "counter", help);
        for p in &r.ports {
            o.sample(name, &[("port", &p.name), ("role", &p.role), ("kind", &p.kind)], get(p));
        }
    }

    o.family("weft_drops_total", "counter", "Frames dropped by the workers, by reason.");
    for d in &r.drops {
        o.sample("weft_drops_total", &[("reason", &d.reason)], d.count);
    }

    o.family("weft_path_packets_total", "counter", "Packets by pipeline path and event.");
    for p in &r.paths {
        o.sample("weft_path_packets_total", &[("path", &p.reason)], p.count);
    }

    let worker_counters: [Family<crate::api::WorkerLine>; 8] = [
        ("weft_worker_loops_total", "Poll loops run.", |w| w.loops),
        ("weft_worker_idle_loops_total", "Poll loops that found no work.", |w| w.idle_loops),
        ("weft_worker_waits_total", "Times the idle worker blocked until traffic woke it.", |w| w.waits),
        ("weft_worker_wakeups_total", "Wakeup system calls the kernel asked for.", |w| w.wakeups),
        ("weft_worker_fill_starved_total", "Fill-ring refills short of free frames.", |w| w.fill_starved),
        ("weft_worker_tx_ring_full_total", "Transmits that found the tx ring full.", |w| w.tx_ring_full),
        ("weft_worker_handoff_in_total", "Frames other workers handed to this one's pod ports.", |w| {
            w.handoff_in
        }),
        ("weft_worker_handoff_out_total", "Frames this worker handed to the pod worker.", |w| w.handoff_out),
    ];
    for (name, help, get) in worker_counters {
        o.family(name, "counter", help);
        for w in &r.workers {
            o.sample(name, &[("worker", &w.name)], get(w));
        }
    }

    o.family("weft_fib_version", "gauge", "Route table version (batches applied).");
    o.sample("weft_fib_version", &[], r.fib.version);
    o.family("weft_fib_routes", "gauge", "Routes in the route table.");
    o.sample("weft_fib_routes", &[], r.fib.routes as u64);
    o.family("weft_fib_engine_version", "gauge", "Engine FIB version (route programmer batches).");
    o.sample("weft_fib_engine_version", &[], r.fib.engine_version);
    o.family("weft_fib_prefixes", "gauge", "Prefixes in the engine FIB (routes, pods, fixed routes).");
    o.sample("weft_fib_prefixes", &[], r.fib.prefixes as u64);
    o.family("weft_fib_tbl8_groups_in_use", "gauge", "Engine FIB tbl8 groups in use.");
    o.sample("weft_fib_tbl8_groups_in_use", &[], u64::from(r.fib.tbl8_groups_in_use));
    o.family("weft_routes", "gauge", "Routes compiled from leases or the static config.");
    o.sample("weft_routes", &[], r.routes.len() as u64);
    o.family("weft_pods", "gauge", "Pod ports attached.");
    o.sample("weft_pods", &[], r.pods.len() as u64);
    o.family("weft_neighbours", "gauge", "Underlay next hops with a resolved MAC.");
    o.sample("weft_neighbours", &[], r.neighbours.len() as u64);

    if let Some(b) = &r.bgp {
        type Field = fn(&crate::api::BgpSessionLine) -> u64;
        let families: [(&str, &str, &str, Field); 6] = [
            (
                "weft_bgp_session_established",
                "gauge",
                "1 while the session with the peer is Established.",
                |s| u64::from(s.state == "Established"),
            ),
            ("weft_bgp_session_uptime_seconds", "gauge", "Seconds since the session was Established.", |s| {
                s.uptime_secs
            }),
            ("weft_bgp_prefixes_received", "gauge", "Prefixes learned from the peer.", |s| {
                s.prefixes_in as u64
            }),
            ("weft_bgp_prefixes_announced", "gauge", "Prefixes announced to the peer.", |s| {
                s.prefixes_out as u64
            }),
            ("weft_bgp_session_resets_total", "counter", "Established sessions that went down.", |s| {
                s.resets
            }),
            (
                "weft_bgp_malformed_messages_total",
                "counter",
                "Sessions reset by a malformed message from the peer.",
                |s| s.malformed,
            ),
        ];
        for (name, kind, help, get) in families {
            o.family(name, kind, help);
            for s in &b.sessions {
                o.sample(name, &[("peer", &s.peer)], get(s));
            }
        }
        o.family(
            "weft_bgp_attribute_errors_total",
            "counter",
            "UPDATE attribute errors handled by treat-as-withdraw or attribute-discard (RFC 7606).",
        );
        for s in &b.sessions {
            o.sample("weft_bgp_attribute_errors_total", &[("peer", &s.peer)], s.attribute_errors);
        }
    }

    if let Some(p) = &r.policy {
        for (name, help, value) in [
            ("weft_policy_policies", "NetworkPolicies stored.", p.policies as u64),
            ("weft_policy_endpoints", "Endpoint records (every node's pods).", p.endpoints as u64),
            ("weft_policy_isolated_pods", "This node's pods some policy isolates.", p.isolated_pods as u64),
            (
                "weft_conntrack_entries",
                "Flows in the workers' connection tables (dead ones not yet swept included).",
                p.conntrack_entries,
            ),
            (
                "weft_conntrack_capacity",
                "Flows the workers' connection tables hold at most.",
                p.conntrack_capacity,
            ),
        ] {
            o.family(name, "gauge", help);
            o.sample(name, &[], value);
        }
    }
    o.family(
        "weft_lease_held",
        "gauge",
        "1 while this node holds its subnet lease (always 1 in static mode).",
    );
    o.sample("weft_lease_held", &[("subnet", &r.subnet)], u64::from(r.leases.iter().any(|l| l.own)));
    o.family("weft_peer_leases", "gauge", "Peer leases routed.");
    o.sample("weft_peer_leases", &[], r.leases.iter().filter(|l| !l.own).count() as u64);
    if let Some(e) = &r.etcd {
        o.family("weft_etcd_connected", "gauge", "1 while the etcd watch is up.");
        o.sample("weft_etcd_connected", &[], u64::from(e.connected));
        o.family("weft_etcd_leases", "gauge", "Leases in etcd, ours included.");
        o.sample("weft_etcd_leases", &[], e.leases as u64);
        o.family("weft_lease_reacquired_total", "counter", "Times our lease was re-acquired.");
        o.sample("weft_lease_reacquired_total", &[], e.reacquired);
        o.family("weft_etcd_resyncs_total", "counter", "Full re-lists after start.");
        o.sample("weft_etcd_resyncs_total", &[], e.resyncs);
        o.family(
            "weft_etcd_errors_total",
            "counter",
            "etcd errors after start (a failed watch, renewal or re-list), each followed by a re-list.",
        );
        o.sample("weft_etcd_errors_total", &[], e.errors);
        o.family(
            "weft_subnet_mismatch",
            "gauge",
            "1 when our lease moved to another subnet while pods and data plane stay in the old one.",
        );
        o.sample("weft_subnet_mismatch", &[], u64::from(e.stale_subnet.is_some()));
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DropLine, PortLine};

    #[test]
    fn every_sample_line_is_a_name_optional_labels_and_a_number() {
        let r = StatusReport {
            node: "n\"1".into(),
            ports: vec![PortLine { name: "up0/q0".into(), rx_packets: 7, ..Default::default() }],
            drops: vec![DropLine { reason: "runt".into(), description: String::new(), count: 3 }],
            ..Default::default()
        };
        let text = render(&r);
        assert!(text.contains("node=\"n\\\"1\""), "quotes in labels are escaped");
        assert!(text.contains("weft_port_rx_packets_total{port=\"up0/q0\",role=\"\",kind=\"\"} 7"));
        assert!(text.contains("weft_drops_total{reason=\"runt\"} 3"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
