//! Kubernetes NetworkPolicy across two weft nodes, on the upstream network-policy e2e model
//! (kubernetes/kubernetes test/e2e/network/netpol): namespaces x, y, z, each with pods a, b, c
//! (spread over both nodes, so pairs meet on one node and across the underlay), TCP and UDP
//! echo servers on ports 80 and 81 in every pod. Each case applies its policies with
//! `weft policy apply`, waits until both nodes have compiled them, probes every pod from every
//! other pod on both protocols and ports, and asserts the whole connectivity matrix against
//! the case's truth table, as upstream does; the cases carry upstream's names. Then the
//! policy of configs/policy/web-to-mysql.yaml on three more pods.

mod lab_common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use lab_common::*;
use weft_bench::lab::topology::DEFAULT_STATE_ROOT;
use weft_bench::lab::{Backend, Lab, LabGuard, LabSpec, NodeSpec};

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const PODS: [&str; 3] = ["a", "b", "c"];
const PORTS: [u16; 2] = [80, 81];
/// The MySQL port of the web -> mysql example.
const MYSQL: u16 = 3306;
/// How long a probe waits for its echo: a policy drop is a timeout.
const PROBE_TIMEOUT_MS: &str = "1200";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    const ALL: [Proto; 2] = [Proto::Tcp, Proto::Udp];

    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }

    /// The weft-lab commands serving and probing this protocol.
    fn commands(self) -> (&'static str, &'static str) {
        match self {
            Proto::Tcp => ("tcp-echo", "tcp-probe"),
            Proto::Udp => ("udp-echo", "udp-probe"),
        }
    }
}

/// One pod: its namespace, name, lab namespace and address.
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

    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }
}

/// One cell of the matrix: `from` connects to `to` on `proto`/`port`.
#[derive(Debug, Clone, Copy)]
struct Probe<'a> {
    from: &'a ModelPod,
    to: &'a ModelPod,
    proto: Proto,
    port: u16,
}

impl Probe<'_> {
    fn client_is(&self, ns: &str, name: &str) -> bool {
        self.from.is(ns, name)
    }

    fn server_is(&self, ns: &str, name: &str) -> bool {
        self.to.is(ns, name)
    }

    fn tcp(&self) -> bool {
        self.proto == Proto::Tcp
    }
}

/// Every probe: `(from, to, protocol, port) -> connected`, self excluded (a pod reaches itself
/// without the network).
type Matrix = BTreeMap<(String, String, Proto, u16), bool>;

/// The lab, its pods, and the policies stored now.
struct Model {
    lab: LabGuard,
    /// The nine pods of the upstream model.
    pods: Vec<ModelPod>,
    /// default/web, default/client and db/mysql of the example.
    example: Vec<ModelPod>,
    policies: BTreeSet<String>,
    failures: Vec<String>,
}

/// Endpoint records: the model's nine pods and the example's three.
const ENDPOINTS: usize = 12;

/// Two weft nodes with six pod slots each; the pods alternate between them.
fn model() -> Model {
    let spec = LabSpec {
        prefix: format!("wpl{}", std::process::id()),
        state_root: DEFAULT_STATE_ROOT.into(),
        backend: Backend::Vxlan,
        nodes: vec![NodeSpec::weft(Some(weft_run_cmd())); 2],
        pods_per_node: 6,
        uplink_mtu: 1500,
    };
    let mut lab = LabGuard::new(Lab::up(&spec).unwrap_or_else(|e| panic!("lab up: {e}")));
    wait_weft_ready(&lab, 1);
    wait_weft_ready(&lab, 2);
    let names = NAMESPACES.iter().flat_map(|n| PODS.iter().map(move |p| (*n, *p))).chain([
        ("default", "web"),
        ("default", "client"),
        ("db", "mysql"),
    ]);
    let mut all = Vec::new();
    for (i, (ns, name)) in names.enumerate() {
        let p = lab.pod(1 + i % 2, 1 + i / 2).clone();
        all.push(ModelPod { ns, name, netns: p.ns, ip: p.ip });
    }
    for ns in NAMESPACES {
        label_namespace(&lab, ns, &format!(r#"{{"ns":"{ns}"}}"#));
    }
    for p in &all[..9] {
        label_pod(&lab, p, &format!(r#"{{"pod":"{}"}}"#, p.name));
    }
    for p in &all[9..] {
        label_pod(&lab, p, &format!(r#"{{"app":"{}"}}"#, p.name));
    }
    for p in &all[..9] {
        for proto in Proto::ALL {
            for port in PORTS {
                echo_server_for(&mut lab, proto, &p.netns, &format!("{}:{port}", p.ip));
            }
        }
    }
    echo_server_for(&mut lab, Proto::Tcp, &all[11].netns, &format!("{}:{MYSQL}", all[11].ip));
    let example = all.split_off(9);
    Model { lab, pods: all, example, policies: BTreeSet::new(), failures: Vec::new() }
}

fn echo_server_for(lab: &mut Lab, proto: Proto, netns: &str, listen: &str) {
    match proto {
        Proto::Tcp => {
            echo_server(lab, netns, listen);
        }
        Proto::Udp => {
            let argv = [WEFT_LAB.into(), proto.commands().0.into(), "--listen".into(), listen.to_owned()];
            let record = lab.spawn(netns, &format!("udp echo {netns} {listen}"), &argv).unwrap();
            assert!(
                eventually(Duration::from_secs(10), || {
                    std::fs::read_to_string(&record.log).is_ok_and(|t| t.contains("listening on"))
                }),
                "the UDP echo server on {listen} in {netns} never listened"
            );
        }
    }
}

/// Writes pod `p`'s endpoint record with `labels` (a JSON object).
fn label_pod(lab: &Lab, p: &ModelPod, labels: &str) {
    let key = format!("/weft/endpoints/{}/{}", p.ns, p.name);
    let value = format!(
        r#"{{"namespace":"{}","name":"{}","ip":"{}","labels":{labels},"node":"lab"}}"#,
        p.ns, p.name, p.ip
    );
    lab.etcdctl(&["put", &key, &value]).unwrap();
}

/// Writes namespace `ns`'s record with `labels` (a JSON object).
fn label_namespace(lab: &Lab, ns: &str, labels: &str) {
    lab.etcdctl(&["put", &format!("/weft/namespaces/{ns}"), &format!(r#"{{"labels":{labels}}}"#)]).unwrap();
}

/// The next UDP source port a probe run may use. Every UDP probe of the test has a 5-tuple of
/// its own: a datagram that reused one allowed in an earlier case would be an established flow
/// to the connection table (TCP probes end with FIN, so their entries expire at once).
static NEXT_UDP_PORT: AtomicU16 = AtomicU16::new(20000);

/// Probes `targets` (`to`, `port`) from `from` over `proto`: one `weft-lab *-probe` child.
fn spawn_probe(from: &ModelPod, proto: Proto, targets: &[String]) -> std::process::Child {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &from.netns, WEFT_LAB, proto.commands().1]);
    cmd.args(["--timeout-ms", PROBE_TIMEOUT_MS, "--to"]).arg(targets.join(","));
    if proto == Proto::Udp {
        let first = NEXT_UDP_PORT.fetch_add(targets.len() as u16, Ordering::Relaxed);
        assert!(first < 32768, "UDP probe source ports ran into the kernel's ephemeral range");
        cmd.args(["--first-source-port", &first.to_string()]);
    }
    cmd.stdout(Stdio::piped()).spawn().unwrap()
}

/// Every pod probes every other pod on every protocol and port, all at once.
fn probe_all(pods: &[ModelPod]) -> Matrix {
    let mut runs = Vec::new();
    for from in pods {
        let targets: Vec<String> = pods
            .iter()
            .filter(|to| to.ip != from.ip)
            .flat_map(|to| PORTS.map(|port| format!("{}:{port}", to.ip)))
            .collect();
        for proto in Proto::ALL {
            runs.push((from, proto, spawn_probe(from, proto, &targets)));
        }
    }
    let mut m = Matrix::new();
    for (from, proto, child) in runs {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{} from {}", proto.commands().1, from.id());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (target, verdict) = line.split_once(' ').unwrap();
            let (ip, port) = target.split_once(':').unwrap();
            let to = pods.iter().find(|p| p.ip.to_string() == ip).unwrap();
            m.insert((from.id(), to.id(), proto, port.parse().unwrap()), verdict == "ok");
        }
    }
    m
}

/// The expected matrix of a truth function.
fn expected(pods: &[ModelPod], allowed: &dyn Fn(&Probe) -> bool) -> Matrix {
    let mut m = Matrix::new();
    for from in pods {
        for to in pods.iter().filter(|to| to.ip != from.ip) {
            for proto in Proto::ALL {
                for port in PORTS {
                    let probe = Probe { from, to, proto, port };
                    m.insert((from.id(), to.id(), proto, port), allowed(&probe));
                }
            }
        }
    }
    m
}

/// The matrix as upstream prints it: one table per protocol and port, `.` connected, `X`
/// refused; wrong cells marked `*`.
fn render(pods: &[ModelPod], got: &Matrix, want: &Matrix) -> String {
    let mut s = String::new();
    for proto in Proto::ALL {
        for port in PORTS {
            let _ = write!(s, "\n{} {port}\n{:>5}", proto.name(), "");
            for to in pods {
                let _ = write!(s, " {:>4}", to.id());
            }
            for from in pods {
                let _ = write!(s, "\n{:>5}", from.id());
                for to in pods {
                    let key = (from.id(), to.id(), proto, port);
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

fn policy(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
    )
}

impl Model {
    /// How many policy sets each node has published so far.
    fn published(&self) -> [u64; 2] {
        [1, 2].map(|i| weft_status(&self.lab, i).ok().and_then(|s| s.policy).map_or(0, |p| p.published))
    }

    /// Runs `change` (one etcd write), then waits until both nodes have compiled a set after
    /// it, over the stored policies and every endpoint record.
    fn changed(&mut self, what: &str, change: impl FnOnce(&Lab)) {
        let before = self.published();
        change(&self.lab);
        let want = self.policies.len();
        for (k, i) in [1, 2].into_iter().enumerate() {
            let ok = eventually(Duration::from_secs(10), || {
                weft_status(&self.lab, i).ok().and_then(|s| s.policy).is_some_and(|p| {
                    p.connected && p.policies == want && p.endpoints == ENDPOINTS && p.published > before[k]
                })
            });
            assert!(ok, "n{i} never enforced {what}: {:?}", weft_status(&self.lab, i).map(|s| s.policy));
        }
    }

    /// Stores the policies of `yaml`, named `names` (`ns/name`).
    fn apply(&mut self, case: &str, yaml: &str, names: &[&str]) {
        let file = self.lab.state().dir.join(format!("{case}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        self.policies.extend(names.iter().map(|n| n.to_string()));
        self.changed(case, |lab| weft_cli(lab, &["policy", "apply", "-f", file.to_str().unwrap()]));
    }

    /// Removes every stored policy.
    fn delete_all(&mut self) {
        while let Some(name) = self.policies.pop_first() {
            self.changed(&format!("the deletion of {name}"), |lab| {
                weft_cli(lab, &["policy", "delete", &name])
            });
        }
    }

    /// Probes the matrix and records a failure unless it matches `allowed`.
    fn check(&mut self, case: &str, allowed: &dyn Fn(&Probe) -> bool) {
        let want = expected(&self.pods, allowed);
        let got = probe_all(&self.pods);
        if got != want {
            let wrong = got.iter().filter(|(k, v)| want.get(*k) != Some(*v)).count();
            self.failures.push(format!(
                "{case}: {wrong} of {} probes wrong{}",
                want.len(),
                render(&self.pods, &got, &want)
            ));
        }
    }

    /// One upstream case: applies `yaml`, checks the matrix, deletes the policies.
    fn case(&mut self, name: &str, yaml: &str, names: &[&str], allowed: &dyn Fn(&Probe) -> bool) {
        self.apply(name, yaml, names);
        self.check(name, allowed);
        self.delete_all();
    }

    fn pod(&self, ns: &str, name: &str) -> &ModelPod {
        self.pods.iter().chain(&self.example).find(|p| p.is(ns, name)).unwrap()
    }
}

/// The target of most upstream cases: pod a in namespace x, with `ingress`.
fn to_xa(ingress: &str) -> String {
    policy("x", "allow", &format!("  podSelector: {{matchLabels: {{pod: a}}}}\n  ingress:\n{ingress}"))
}

#[test]
fn the_upstream_netpol_model_holds_across_two_weft_nodes() {
    if !have_root("the_upstream_netpol_model_holds_across_two_weft_nodes") {
        return;
    }
    let mut m = model();
    // No policy: everything connects (also proves every server answers on both protocols).
    let open = probe_all(&m.pods);
    let everything = expected(&m.pods, &|_| true);
    assert!(open == everything, "without policy{}", render(&m.pods, &open, &everything));
    let ya = m.pod("y", "a").ip;

    m.case(
        "should support a 'default-deny-ingress' policy",
        &policy("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]\n"),
        &["x/deny"],
        &|p| p.to.ns != "x",
    );
    m.case(
        "should support a 'default-deny-all' policy",
        &policy("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"),
        &["x/deny"],
        &|p| p.to.ns != "x" && p.from.ns != "x",
    );
    m.case(
        "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
        &to_xa("  - from:\n    - podSelector: {matchLabels: {pod: b}}\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.client_is("x", "b"),
    );
    m.case(
        "should enforce policy to allow ingress traffic for a target",
        &format!(
            "{}{}",
            policy("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]\n"),
            to_xa("  - {}\n")
        ),
        &["x/deny", "x/allow"],
        &|p| p.to.ns != "x" || p.server_is("x", "a"),
    );
    m.case(
        "should enforce policy to allow ingress traffic from pods in all namespaces",
        &to_xa("  - from:\n    - namespaceSelector: {}\n"),
        &["x/allow"],
        &|_| true,
    );
    m.case(
        "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
        &to_xa("  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.from.ns == "y",
    );
    m.case(
        "should enforce policy based on PodSelector with MatchExpressions",
        &to_xa("  - from:\n    - podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.client_is("x", "b"),
    );
    m.case(
        "should enforce policy based on NamespaceSelector with MatchExpressions",
        &to_xa("  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: In, values: [y]}]}\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.from.ns == "y",
    );
    m.case(
        "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
        &to_xa(
            "  - from:\n    - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]}\n",
        ),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.from.ns != "x",
    );
    m.case(
        "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
        &to_xa("  - from:\n    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.from.ns == "z",
    );
    m.case(
        "should enforce policy based on PodSelector or NamespaceSelector",
        &to_xa(
            "  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}\n    - podSelector: {matchLabels: {pod: b}}\n",
        ),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.from.ns != "x" || p.client_is("x", "b"),
    );
    m.case(
        "should enforce policy based on PodSelector and NamespaceSelector",
        &to_xa(
            "  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}\n      podSelector: {matchLabels: {pod: b}}\n",
        ),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || (p.from.ns != "x" && p.from.name == "b"),
    );
    m.case(
        "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
        &to_xa(
            "  - from:\n    - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [x]}]}\n      podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}\n",
        ),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || (p.from.ns != "x" && p.from.name != "a"),
    );
    m.case(
        "should enforce policy based on any PodSelectors",
        &to_xa("  - from:\n    - podSelector: {matchLabels: {pod: b}}\n    - podSelector: {matchLabels: {pod: c}}\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.client_is("x", "b") || p.client_is("x", "c"),
    );
    m.case(
        "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
        &to_xa(
            "  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n      podSelector: {matchLabels: {pod: a}}\n",
        ),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || p.client_is("y", "a"),
    );
    m.case(
        "should enforce policy based on Ports",
        &to_xa("  - from:\n    - namespaceSelector: {matchLabels: {ns: y}}\n    ports: [{port: 81}]\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || (p.from.ns == "y" && p.tcp() && p.port == 81),
    );
    m.case(
        "should enforce multiple, stacked policies with overlapping podSelectors",
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
                "  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns: z}}}]\n    ports: [{port: 81}]\n",
            )
        ),
        &["x/y-80", "x/z-81"],
        &|p| {
            p.to.ns != "x"
                || (p.tcp() && p.from.ns == "z" && p.port == 81)
                || (p.server_is("x", "a") && p.tcp() && p.from.ns == "y" && p.port == 80)
        },
    );
    m.case(
        "should support allow-all policy",
        &policy("x", "allow-all", "  podSelector: {}\n  ingress:\n  - {}\n"),
        &["x/allow-all"],
        &|_| true,
    );
    m.case(
        "should deny ingress from pods on other namespaces",
        &policy("x", "same-ns", "  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n"),
        &["x/same-ns"],
        &|p| p.to.ns != "x" || p.from.ns == "x",
    );
    m.case(
        "should deny egress from pods based on PodSelector",
        &policy("x", "deny-egress", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"),
        &["x/deny-egress"],
        &|p| !p.client_is("x", "a"),
    );
    m.case(
        "should deny egress from all pods in a namespace",
        &policy("x", "deny-egress", "  podSelector: {}\n  policyTypes: [Egress]\n"),
        &["x/deny-egress"],
        &|p| p.from.ns != "x",
    );
    m.case(
        "should work with Ingress, Egress specified together",
        &policy(
            "x",
            "both",
            "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b}}}]\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: y}}}]\n",
        ),
        &["x/both"],
        &|p| (!p.server_is("x", "a") || p.client_is("x", "b")) && (!p.client_is("x", "a") || p.to.ns == "y"),
    );
    m.case(
        "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
        &format!(
            "{}{}",
            policy(
                "x",
                "egress-to-y",
                "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: y}}}]\n",
            ),
            policy(
                "z",
                "from-xa",
                "  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]\n",
            )
        ),
        &["x/egress-to-y", "z/from-xa"],
        &|p| (!p.client_is("x", "a") || p.to.ns == "y") && (p.to.ns != "z" || p.client_is("x", "a")),
    );
    m.case(
        "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
        &policy(
            "x",
            "egress",
            "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: a}}}]\n",
        ),
        &["x/egress"],
        &|p| !p.client_is("x", "a") || p.server_is("y", "a"),
    );
    m.case(
        "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
        &to_xa("  - ports: [{protocol: UDP}]\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || !p.tcp(),
    );
    m.case(
        "should not allow access by TCP when a policy specifies only UDP",
        &to_xa("  - ports: [{protocol: UDP, port: 81}]\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || (!p.tcp() && p.port == 81),
    );
    m.case(
        "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP'",
        &to_xa("  - ports: [{protocol: SCTP, port: 80}]\n"),
        &["x/allow"],
        &|p| !p.server_is("x", "a"),
    );
    m.case(
        "should enforce policy to allow ingress traffic for a target with endPort",
        &to_xa(
            "  - ports: [{protocol: TCP, port: 81, endPort: 90}, {protocol: UDP, port: 70, endPort: 80}]\n",
        ),
        &["x/allow"],
        &|p| !p.server_is("x", "a") || (p.tcp() && p.port == 81) || (!p.tcp() && p.port == 80),
    );
    m.case(
        "should allow egress access to server in CIDR block",
        &policy(
            "x",
            "cidr",
            &format!(
                "  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{{ipBlock: {{cidr: {ya}/32}}}}]\n"
            ),
        ),
        &["x/cidr"],
        &|p| !p.client_is("x", "a") || p.server_is("y", "a"),
    );
    m.case(
        "should enforce except clause while egress access to server in CIDR block",
        &policy(
            "x",
            "cidr",
            &format!(
                "  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{{ipBlock: {{cidr: 198.19.0.0/16, except: [{ya}/32]}}}}]\n"
            ),
        ),
        &["x/cidr"],
        &|p| !p.client_is("x", "a") || !p.server_is("y", "a"),
    );
    m.case(
        "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
        &policy(
            "x",
            "cidr",
            &format!(
                "  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{{ipBlock: {{cidr: 198.19.0.0/16, except: [{ya}/32]}}}}]\n  - to: [{{ipBlock: {{cidr: {ya}/32}}}}]\n"
            ),
        ),
        &["x/cidr"],
        &|_| true,
    );
    m.case(
        "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
        &format!(
            "{}{}",
            policy("x", "deny-egress", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"),
            to_xa("  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]\n")
        ),
        &["x/deny-egress", "x/allow"],
        &|p| !p.client_is("x", "a") && (!p.server_is("x", "a") || p.from.ns == "y"),
    );

    // Policies that change while they are enforced.
    let name = "should enforce updated policy";
    m.apply(
        name,
        &to_xa("  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]\n    ports: [{port: 80}]\n"),
        &["x/allow"],
    );
    m.check(name, &|p| !p.server_is("x", "a") || (p.from.ns == "y" && p.tcp() && p.port == 80));
    m.apply(
        name,
        &to_xa("  - from: [{namespaceSelector: {matchLabels: {ns: z}}}]\n    ports: [{port: 81}]\n"),
        &["x/allow"],
    );
    m.check(&format!("{name} (after the update)"), &|p| {
        !p.server_is("x", "a") || (p.from.ns == "z" && p.tcp() && p.port == 81)
    });
    m.delete_all();

    let name = "should enforce multiple ingress policies with ingress allow-all policy taking precedence";
    m.apply(name, &to_xa("  - ports: [{port: 80}]\n"), &["x/allow"]);
    m.check(name, &|p| !p.server_is("x", "a") || (p.tcp() && p.port == 80));
    m.apply(name, &policy("x", "allow-all", "  podSelector: {}\n  ingress:\n  - {}\n"), &["x/allow-all"]);
    m.check(&format!("{name} (with allow-all)"), &|_| true);
    m.delete_all();

    let name = "should enforce multiple egress policies with egress allow-all policy taking precedence";
    let egress_80 = "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: 80}]\n";
    m.apply(name, &policy("x", "egress-80", egress_80), &["x/egress-80"]);
    m.check(name, &|p| !p.client_is("x", "a") || (p.tcp() && p.port == 80));
    let all = "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - {}\n";
    m.apply(name, &policy("x", "egress-all", all), &["x/egress-all"]);
    m.check(&format!("{name} (with allow-all)"), &|_| true);
    m.delete_all();

    let name = "should stop enforcing policies after they are deleted";
    m.apply(name, &policy("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"), &["x/deny"]);
    m.check(name, &|p| p.to.ns != "x" && p.from.ns != "x");
    m.delete_all();
    m.check(&format!("{name} (deleted)"), &|_| true);

    let name = "should allow ingress access from updated namespace";
    m.apply(name, &to_xa("  - from: [{namespaceSelector: {matchLabels: {ns2: updated}}}]\n"), &["x/allow"]);
    m.check(name, &|p| !p.server_is("x", "a"));
    m.changed("the label ns2=updated on namespace y", |lab| {
        label_namespace(lab, "y", r#"{"ns":"y","ns2":"updated"}"#)
    });
    m.check(&format!("{name} (y labelled)"), &|p| !p.server_is("x", "a") || p.from.ns == "y");
    m.changed("the label ns2 removed from namespace y", |lab| label_namespace(lab, "y", r#"{"ns":"y"}"#));
    m.delete_all();

    let name = "should allow ingress access from updated pod";
    m.apply(
        name,
        &to_xa("  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod2: updated}}}]\n"),
        &["x/allow"],
    );
    m.check(name, &|p| !p.server_is("x", "a"));
    let zb = m.pod("z", "b").clone();
    m.changed("the label pod2=updated on z/b", |lab| label_pod(lab, &zb, r#"{"pod":"b","pod2":"updated"}"#));
    m.check(&format!("{name} (z/b labelled)"), &|p| !p.server_is("x", "a") || p.client_is("z", "b"));
    m.changed("the label pod2 removed from z/b", |lab| label_pod(lab, &zb, r#"{"pod":"b"}"#));
    m.delete_all();

    let name = "should deny ingress access to updated pod";
    m.apply(
        name,
        &policy(
            "x",
            "isolate",
            "  podSelector: {matchLabels: {target: isolated}}\n  policyTypes: [Ingress]\n",
        ),
        &["x/isolate"],
    );
    m.check(name, &|_| true);
    let xa = m.pod("x", "a").clone();
    m.changed("the label target=isolated on x/a", |lab| {
        label_pod(lab, &xa, r#"{"pod":"a","target":"isolated"}"#)
    });
    m.check(&format!("{name} (x/a labelled)"), &|p| !p.server_is("x", "a"));
    m.changed("the label target removed from x/a", |lab| label_pod(lab, &xa, r#"{"pod":"a"}"#));
    m.delete_all();

    policy_updates_under_traffic(&mut m);
    web_to_mysql(&mut m);

    for i in 1..=2 {
        let s = weft_status(&m.lab, i).unwrap();
        eprintln!(
            "n{i}: policy_denied_ingress {} policy_denied_egress {} conntrack_new {} conntrack_evictions {}",
            weft_counter(&s, "policy_denied_ingress"),
            weft_counter(&s, "policy_denied_egress"),
            weft_counter(&s, "conntrack_new"),
            weft_counter(&s, "conntrack_evictions")
        );
        let p = s.policy.clone().expect("the policy loop's status");
        assert!(
            p.conntrack_entries > 0 && p.conntrack_entries <= p.conntrack_capacity,
            "n{i}: the connection tables hold the model's flows: {p:?}"
        );
        assert!(weft_counter(&s, "policy_denied_ingress") > 0, "n{i}: denials are counted");
    }
    assert!(m.failures.is_empty(), "{}\n\nlogs:\n{}", m.failures.join("\n\n"), m.lab.log_tails(2000));
}

/// A TCP stream y/b -> x/b runs while x/b's policy is replaced five times, every version
/// allowing it: the stream finishes with every byte echoed intact (the established
/// connection survives each swap of the policy set).
fn policy_updates_under_traffic(m: &mut Model) {
    let (from, to) = (m.pod("y", "b").clone(), m.pod("x", "b").clone());
    let stream = Command::new("ip")
        .args(["netns", "exec", &from.netns, WEFT_LAB, "tcp-send", "--secs", "6", "--mbit", "50", "--to"])
        .arg(format!("{}:80", to.ip))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for round in 0..5 {
        let other = ["x", "z"][round % 2];
        let yaml = policy(
            "x",
            "xb",
            &format!(
                "  podSelector: {{matchLabels: {{pod: b}}}}\n  ingress:\n  - from: [{{namespaceSelector: {{matchLabels: {{ns: y}}}}}}, {{namespaceSelector: {{matchLabels: {{ns: {other}}}}}}}]\n    ports: [{{port: 80}}, {{port: {}}}]\n",
                81 + round
            ),
        );
        m.apply("policy updates under traffic", &yaml, &["x/xb"]);
    }
    let out = stream.wait_with_output().unwrap();
    if !out.status.success() {
        m.failures.push(format!(
            "a TCP stream y/b -> x/b through five policy updates that all allow it broke: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("stream through policy updates: {}", String::from_utf8_lossy(&out.stdout).trim());
    m.delete_all();
}

/// configs/policy/web-to-mysql.yaml: only default/web reaches db/mysql, and only on TCP 3306.
fn web_to_mysql(m: &mut Model) {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/policy/web-to-mysql.yaml");
    let (web, client, mysql) =
        (m.pod("default", "web").clone(), m.pod("default", "client").clone(), m.pod("db", "mysql").clone());
    let xa = m.pod("x", "a").clone();
    let reach = |from: &ModelPod| {
        let out =
            spawn_probe(from, Proto::Tcp, &[format!("{}:{MYSQL}", mysql.ip)]).wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().ends_with(" ok")
    };
    let before: Vec<bool> = [&web, &client, &xa].map(reach).to_vec();
    m.policies.insert("db/mysql-from-web".into());
    m.changed("web-to-mysql.yaml", |lab| weft_cli(lab, &["policy", "apply", "-f", file]));
    let after: Vec<bool> = [&web, &client, &xa].map(reach).to_vec();
    if before != [true; 3] || after != [true, false, false] {
        m.failures.push(format!(
            "web-to-mysql.yaml: web, client, x/a -> mysql:3306 before {before:?} (want all), after {after:?} (want web only)"
        ));
    }
    m.delete_all();
}
