//! The human-readable rendering of a [`StatusReport`] (`weft status`).

use std::fmt::{self, Write};

use super::StatusReport;

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "node {}  mode {}  backend {}  subnet {}  public ip {}  up {}s",
            self.node, self.mode, self.backend, self.subnet, self.public_ip, self.uptime_secs
        );
        if let Some(w) = &self.waiting {
            let _ = writeln!(
                out,
                "WAITING FOR ETCD for {}s ({} attempts): {}",
                w.secs,
                w.attempts,
                w.last_error.as_deref().unwrap_or("first attempt under way")
            );
        } else if !self.phase.is_empty() && self.phase != "running" {
            let _ = writeln!(out, "phase: {}", self.phase);
        }
        if let Some(e) = &self.etcd {
            let _ = writeln!(
                out,
                "etcd {}  lease {:x}  leases {}  re-acquired {}  resyncs {}  errors {}",
                if e.connected { "connected" } else { "DISCONNECTED" },
                e.lease_id,
                e.leases,
                e.reacquired,
                e.resyncs,
                e.errors
            );
            if let Some(stale) = &e.stale_subnet {
                let _ = writeln!(
                    out,
                    "SUBNET MISMATCH: our lease is {} but pods and data plane are in {stale}; re-create the pods and restart weft",
                    self.subnet
                );
            }
        }
        let _ = writeln!(out, "\nLEASES\n{:<20} {:<16} OWN", "SUBNET", "PUBLIC IP");
        for l in &self.leases {
            let _ = writeln!(out, "{:<20} {:<16} {}", l.subnet, l.public_ip, if l.own { "yes" } else { "" });
        }
        let _ = writeln!(
            out,
            "\nROUTES (version {}, {} routes, held by {}: version {}, {} prefixes)\n{:<20} {:<8} {:<16} VIA",
            self.fib.version,
            self.fib.routes,
            self.fib.holder,
            self.fib.engine_version,
            self.fib.prefixes,
            "SUBNET",
            "KIND",
            "NODE"
        );
        for r in &self.routes {
            let _ = writeln!(out, "{:<20} {:<8} {:<16} {}", r.subnet, r.kind, r.node_ip, r.via);
        }
        let _ = writeln!(
            out,
            "\nPORTS\n{:<16} {:<7} {:<12} {:<9} {:<8} {:>12} {:>14} {:>12} {:>14}",
            "NAME", "ROLE", "KIND", "WORKER", "XDP", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES"
        );
        for p in &self.ports {
            let _ = writeln!(
                out,
                "{:<16} {:<7} {:<12} {:<9} {:<8} {:>12} {:>14} {:>12} {:>14}",
                p.name,
                p.role,
                p.kind,
                p.worker,
                p.xdp.as_deref().unwrap_or("-"),
                p.rx_packets,
                p.rx_bytes,
                p.tx_packets,
                p.tx_bytes
            );
            if let Some(why) = &p.fallback_reason {
                let _ = writeln!(out, "  fell back to AF_PACKET: {why}");
            }
        }
        let _ = writeln!(out, "\nPODS\n{:<16} {:<16} {:<18} WORKER", "INTERFACE", "IP", "MAC");
        for p in &self.pods {
            let mac = p.mac.as_deref().unwrap_or("-");
            let _ = writeln!(out, "{:<16} {:<16} {:<18} {}", p.interface, p.ip, mac, p.worker);
        }
        let _ = writeln!(
            out,
            "\nWORKERS\n{:<10} {:>5} {:>14} {:>14} {:>10} {:>10} {:>12} {:>12} {:>11} {:>11}",
            "NAME",
            "CORE",
            "LOOPS",
            "IDLE",
            "WAITS",
            "WAKEUPS",
            "FILL STARVED",
            "TX RING FULL",
            "HANDOFF IN",
            "HANDOFF OUT"
        );
        for w in &self.workers {
            let core = w.core.map_or("-".to_owned(), |c| c.to_string());
            let _ = writeln!(
                out,
                "{:<10} {:>5} {:>14} {:>14} {:>10} {:>10} {:>12} {:>12} {:>11} {:>11}",
                w.name,
                core,
                w.loops,
                w.idle_loops,
                w.waits,
                w.wakeups,
                w.fill_starved,
                w.tx_ring_full,
                w.handoff_in,
                w.handoff_out
            );
        }
        for (title, what, unit, lines) in
            [("DROPS", "REASON", "FRAMES", &self.drops), ("PATHS", "PATH", "PACKETS", &self.paths)]
        {
            let _ = writeln!(out, "\n{title}\n{what:<22} {unit:>12}  WHY");
            for d in lines {
                let _ = writeln!(out, "{:<22} {:>12}  {}", d.reason, d.count, d.description);
            }
        }
        if let Some(b) = &self.bgp {
            let _ = writeln!(
                out,
                "\nBGP (AS {})\n{:<16} {:<12} {:>8} {:>6} {:>6} {:>7} {:>9}  LAST ERROR",
                b.asn, "PEER", "STATE", "UPTIME", "IN", "OUT", "RESETS", "MALFORMED"
            );
            for s in &b.sessions {
                let _ = writeln!(
                    out,
                    "{:<16} {:<12} {:>7}s {:>6} {:>6} {:>7} {:>9}  {}",
                    s.peer,
                    s.state,
                    s.uptime_secs,
                    s.prefixes_in,
                    s.prefixes_out,
                    s.resets,
                    s.malformed,
                    s.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        if let Some(p) = &self.policy {
            let _ = writeln!(
                out,
                "\nNETWORK POLICY ({})\npolicies {}  endpoints {}  isolated pods here {}  published {}  bad records {}  last compile {} us\nconnection table {} of {} flows  evictions {}  denied ingress {}  egress {}",
                if p.connected { "watching" } else { "etcd unreachable" },
                p.policies,
                p.endpoints,
                p.isolated_pods,
                p.published,
                p.bad_records,
                p.last_compile_us,
                p.conntrack_entries,
                p.conntrack_capacity,
                self.path_count("conntrack_evictions"),
                self.drop_count("policy_denied_ingress"),
                self.drop_count("policy_denied_egress"),
            );
        }
        if !self.neighbours.is_empty() {
            let _ = writeln!(out, "\nNEIGHBOURS\n{:<16} MAC", "NEXT HOP");
            for n in &self.neighbours {
                let _ = writeln!(out, "{:<16} {}", n.ip, n.mac);
            }
        }
        if let Some(h) = &self.host_link {
            let _ = writeln!(out, "\nHOST LINK (made by weft, removed on exit)");
            let _ =
                writeln!(out, "{:<12} {} (kernel) <-> {} (engine)", "veth", h.interface, h.engine_interface);
            let _ = writeln!(out, "{:<12} {} on {}, mtu {}", "address", h.address, h.interface, h.mtu);
            for r in &h.routes {
                let _ = writeln!(out, "{:<12} {r}", "route");
            }
            let fwd = if h.forwarding_turned_on { "on (turned on by weft)" } else { "on (was on)" };
            let _ = writeln!(out, "{:<12} {fwd}", "ip_forward");
            let _ = writeln!(out, "{:<12} {}", "masquerade", if h.masquerade { "on" } else { "off" });
            for r in &h.rules {
                let _ = writeln!(out, "{:<12} {r}", "");
            }
        }
        f.write_str(&out)
    }
}
