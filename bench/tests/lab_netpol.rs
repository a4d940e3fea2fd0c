//! Kubernetes NetworkPolicy across two weft nodes, on the upstream network-policy e2e model
//! (kubernetes/kubernetes test/e2e/network/netpol): namespaces x, y, z, each with pods a, b, c
//! (spread over both nodes, so pairs meet on one node and across the underlay), a TCP echo on
//! ports 80 and 81 in every pod. Each case applies its policies with `weft policy apply`, waits
//! until both nodes enforce them, probes every pod from every other pod on both ports, and
//! asserts the whole connectivity matrix against the case's truth table.

mod lab_common;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use lab_common::*;
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec};

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const PODS: [&str; 3] = ["a", "b", "c"];
const PORTS: [u16; 2] = [80, 81];

/// One model pod: its namespace, name, lab namespace and address.
#[derive(Debug, Clone)]
struct ModelPod {
    ns: &'static str,
    name: &'static str,
    netns: String,
    ip: Ipv4Addr,
}

impl ModelPod {
    fn id(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
}

/// Two weft nodes with five pod slots each; the nine model pods alternate between them.
fn model_lab() -> (LabGuard, Vec<ModelPod>) {
    let spec = LabSpec {
        prefix: format!("wpl{}", std::process::id()),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::Vxlan,
        nodes: vec![NodeSpec::weft(Some(weft_run_cmd())); 2],
        pods_per_node: 5,
        uplink_mtu: 1500,
    };
    let mut lab = LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")));
    wait_weft_ready(&lab, 1);
    wait_weft_ready(&lab, 2);
    let mut pods = Vec::new();
    for (i, (ns, name)) in NAMESPACES.iter().flat_map(|n| PODS.iter().map(move |p| (*n, *p))).enumerate() {
        let p = lab.pod(1 + i % 2, 1 + i / 2).clone();
        pods.push(ModelPod { ns, name, netns: p.ns, ip: p.ip });
    }
    for ns in NAMESPACES {
        let key = format!("/weft/namespaces/{ns}");
        lab.etcdctl(&["put", &key, &format!(r#"{{"labels":{{"ns":"{ns}"}}}}"#)]).unwrap();
    }
    for p in &pods {
        let key = format!("/weft/endpoints/{}/{}", p.ns, p.name);
        let value = format!(
            r#"{{"namespace":"{}","name":"{}","ip":"{}","labels":{{"pod":"{}"}},"node":"lab"}}"#,
            p.ns, p.name, p.ip, p.name
        );
        lab.etcdctl(&["put", &key, &value]).unwrap();
    }
    for p in &pods {
        for port in PORTS {
            echo_server(&mut lab, &p.netns, &format!("{}:{port}", p.ip));
        }
    }
    (lab, pods)
}

/// Every probe: `(from, to, port) -> connected`, self excluded (a pod reaches itself without
/// the network).
type Matrix = BTreeMap<(String, String, u16), bool>;

fn probe_all(pods: &[ModelPod]) -> Matrix {
    let runs: Vec<_> = pods
        .iter()
        .map(|from| {
            let targets: Vec<String> = pods
                .iter()
                .filter(|to| to.ip != from.ip)
                .flat_map(|to| PORTS.map(|port| format!("{}:{port}", to.ip)))
                .collect();
            let child = Command::new("ip")
                .args(["netns", "exec", &from.netns, WEFT_LAB, "tcp-probe", "--timeout-ms", "1500", "--to"])
                .arg(targets.join(","))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (from, child)
        })
        .collect();
    let mut m = Matrix::new();
    for (from, child) in runs {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "tcp-probe from {}", from.id());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (target, verdict) = line.split_once(' ').unwrap();
            let (ip, port) = target.split_once(':').unwrap();
            let to = pods.iter().find(|p| p.ip.to_string() == ip).unwrap();
            m.insert((from.id(), to.id(), port.parse().unwrap()), verdict == "ok");
        }
    }
    m
}

/// The expected matrix of a truth function.
fn expected(pods: &[ModelPod], allowed: impl Fn(&ModelPod, &ModelPod, u16) -> bool) -> Matrix {
    let mut m = Matrix::new();
    for from in pods {
        for to in pods.iter().filter(|to| to.ip != from.ip) {
            for port in PORTS {
                m.insert((from.id(), to.id(), port), allowed(from, to, port));
            }
        }
    }
    m
}

/// The matrix as upstream prints it: one table per port, `.` connected, `X` refused; wrong
/// cells marked `*`.
fn render(pods: &[ModelPod], got: &Matrix, want: &Matrix) -> String {
    let mut s = String::new();
    for port in PORTS {
        let _ = write!(s, "\nport {port}\n{:>5}", "");
        for to in pods {
            let _ = write!(s, " {:>4}", to.id());
        }
        for from in pods {
            let _ = write!(s, "\n{:>5}", from.id());
            for to in pods {
                let key = (from.id(), to.id(), port);
                let cell = match (got.get(&key), want.get(&key)) {
                    (None, _) => "-".to_owned(),
                    (Some(g), Some(w)) => {
                        format!("{}{}", if *g { "." } else { "X" }, if g == w { " " } else { "*" })
                    }
                    (Some(_), None) => "?".to_owned(),
                };
                let _ = write!(s, " {cell:>4}");
            }
        }
    }
    s
}

fn weft_cli(lab: &Lab, args: &[&str]) {
    let node = lab.node(1);
    let config = node.config.clone().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &node.ns])
        .arg(weft_bin())
        .args(args)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "weft {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until both nodes have compiled `policies` policies over the nine endpoints.
fn wait_enforced(lab: &Lab, policies: usize) {
    for i in 1..=2 {
        let ok = eventually(Duration::from_secs(10), || {
            weft_status(lab, i)
                .ok()
                .and_then(|s| s.policy)
                .is_some_and(|p| p.connected && p.policies == policies && p.endpoints == 9)
        });
        assert!(ok, "n{i} never enforced {policies} policies: {:?}", weft_status(lab, i).map(|s| s.policy));
    }
}

/// Applies `yaml`, checks the matrix against `allowed`, deletes the case's policies.
fn case(
    lab: &Lab,
    pods: &[ModelPod],
    name: &str,
    yaml: &str,
    policies: &[&str],
    allowed: impl Fn(&ModelPod, &ModelPod, u16) -> bool,
) -> Result<(), String> {
    let file = lab.state().dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    weft_cli(lab, &["policy", "apply", "-f", file.to_str().unwrap()]);
    wait_enforced(lab, policies.len());
    let want = expected(pods, allowed);
    let got = probe_all(pods);
    for p in policies {
        weft_cli(lab, &["policy", "delete", p]);
    }
    wait_enforced(lab, 0);
    if got == want {
        return Ok(());
    }
    let wrong = got.iter().filter(|(k, v)| want.get(*k) != Some(*v)).count();
    Err(format!("{name}: {wrong} of {} probes wrong{}", want.len(), render(pods, &got, &want)))
}

fn policy(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
    )
}

#[test]
fn the_upstream_netpol_model_holds_across_two_weft_nodes() {
    if !have_root("the_upstream_netpol_model_holds_across_two_weft_nodes") {
        return;
    }
    let (lab, pods) = model_lab();
    // No policy: everything connects (also proves the servers are up).
    let open = probe_all(&pods);
    let everything = expected(&pods, |_, _, _| true);
    assert!(open == everything, "without policy{}", render(&pods, &open, &everything));

    let is = |p: &ModelPod, ns: &str, name: &str| p.ns == ns && p.name == name;
    let mut failures = Vec::new();
    let mut run = |r: Result<(), String>| {
        if let Err(e) = r {
            failures.push(e);
        }
    };

    // Default deny ingress in x.
    run(case(
        &lab,
        &pods,
        "default-deny-ingress",
        &policy("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]\n"),
        &["x/deny"],
        |_, to, _| to.ns != "x",
    ));
    // Allow x/a from every pod in namespaces labelled ns=y.
    run(case(
        &lab,
        &pods,
        "allow-from-namespace",
        &policy(
            "x",
            "from-y",
            "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n",
        ),
        &["x/from-y"],
        |from, to, _| !is(to, "x", "a") || from.ns == "y",
    ));
    // Allow x/a from pod b of namespace y only (both selectors in one peer).
    run(case(
        &lab,
        &pods,
        "allow-from-pod-in-namespace",
        &policy(
            "x",
            "from-y-b",
            "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n      podSelector: {matchLabels: {pod: b}}\n",
        ),
        &["x/from-y-b"],
        |from, to, _| !is(to, "x", "a") || is(from, "y", "b"),
    ));
    // Allow x/a from the cluster network except y/a's address.
    let ya = pods.iter().find(|p| is(p, "y", "a")).unwrap().ip;
    run(case(
        &lab,
        &pods,
        "ip-block-except",
        &policy(
            "x",
            "cidr",
            &format!(
                "  podSelector: {{matchLabels: {{pod: a}}}}\n  ingress:\n  - from:\n    - ipBlock: {{cidr: 198.19.0.0/16, except: [{ya}/32]}}\n"
            ),
        ),
        &["x/cidr"],
        |from, to, _| !is(to, "x", "a") || !is(from, "y", "a"),
    ));
    // x/a may only open connections to port 80.
    run(case(
        &lab,
        &pods,
        "egress-to-port",
        &policy(
            "x",
            "egress-80",
            "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: 80, protocol: TCP}]\n",
        ),
        &["x/egress-80"],
        |from, _, port| !is(from, "x", "a") || port == 80,
    ));
    // Two policies select x/a: their union (from y on 80, from z on 81).
    run(case(
        &lab,
        &pods,
        "multiple-policies-add-up",
        &format!(
            "{}{}",
            policy(
                "x",
                "y-80",
                "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]\n    ports: [{port: 80}]\n",
            ),
            policy(
                "x",
                "z-81",
                "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns: z}}}]\n    ports: [{port: 81}]\n",
            )
        ),
        &["x/y-80", "x/z-81"],
        |from, to, port| {
            !is(to, "x", "a") || (from.ns == "y" && port == 80) || (from.ns == "z" && port == 81)
        },
    ));
    for i in 1..=2 {
        let s = weft_status(&lab, i).unwrap();
        eprintln!(
            "n{i}: policy_denied_ingress {} policy_denied_egress {} conntrack_new {} conntrack_evictions {}",
            weft_counter(&s, "policy_denied_ingress"),
            weft_counter(&s, "policy_denied_egress"),
            weft_counter(&s, "conntrack_new"),
            weft_counter(&s, "conntrack_evictions")
        );
    }
    assert!(failures.is_empty(), "{}\n\nlogs:\n{}", failures.join("\n\n"), lab.log_tails(2000));
}
