//! `weft policy check|apply|list|delete` against a real etcd: policies are validated before
//! anything is stored (all documents or none), stored under `<weft_prefix>/policies/NS/NAME`,
//! listed back and deleted.

mod common;

use std::path::Path;

use common::{Etcd, weft};

fn config(dir: &Path, etcd: &Etcd) -> String {
    let path = dir.join("weft.toml");
    let text = format!(
        "mode = \"etcd\"\n[node]\nname = \"n1\"\npublic_ip = \"198.18.0.1\"\nvtep_mac = \"0a:58:c6:12:00:01\"\n\
         subnet_file = \"{}\"\n[etcd]\nendpoints = [\"{}\"]\nweft_prefix = \"/weft-test\"\n",
        dir.join("subnet.env").display(),
        etcd.endpoint()
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const SEED: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: db
spec:
  podSelector:
    matchLabels:
      app: mysql
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: default
      podSelector:
        matchLabels:
          app: web
    ports:
    - port: 3306
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
";

const BAD_SECOND: &str = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: fine, namespace: x}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports:
    - port: 3306
      endPort: 80
";

#[test]
fn policies_are_validated_stored_listed_and_deleted_all_or_nothing() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &etcd);
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, SEED).unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, BAD_SECOND).unwrap();

    // check needs no etcd.
    let (ok, out, err) = weft(&["policy", "check", "-f", seed.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("networkpolicy db/allow-web valid (Ingress; pods app=mysql)"), "{out}");
    assert!(out.contains("networkpolicy default/default-deny valid (Ingress,Egress; pods {})"), "{out}");

    // A bad second document refuses the whole file, naming the document, policy and field.
    let (ok, _, err) = weft(&["policy", "apply", "-f", bad.to_str().unwrap(), "--config", &cfg]);
    assert!(!ok);
    assert_eq!(
        err,
        format!(
            "weft: {}: document 2 (x/broken): spec.ingress[0].ports[0].endPort: 80 is below port 3306\n",
            bad.display()
        )
    );
    assert!(etcd.keys("/weft-test/").is_empty(), "nothing stored");

    let (ok, out, err) = weft(&["policy", "apply", "-f", seed.to_str().unwrap(), "--config", &cfg]);
    assert!(ok, "{err}");
    assert_eq!(out, "networkpolicy db/allow-web created\nnetworkpolicy default/default-deny created\n");
    assert_eq!(
        etcd.keys("/weft-test/"),
        vec!["/weft-test/policies/db/allow-web", "/weft-test/policies/default/default-deny"]
    );
    let stored = etcd.get("/weft-test/policies/db/allow-web").unwrap();
    assert!(stored.contains(r#""port":3306"#), "{stored}");

    let (ok, out, _) = weft(&["policy", "apply", "-f", seed.to_str().unwrap(), "--config", &cfg]);
    assert!(ok);
    assert_eq!(out, "networkpolicy db/allow-web unchanged\nnetworkpolicy default/default-deny unchanged\n");

    let (ok, out, err) = weft(&["policy", "list", "--config", &cfg]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with("db/allow-web") && lines[1].ends_with("Ingress          app=mysql"),
        "{out}"
    );
    assert!(lines[2].starts_with("default/default-deny") && lines[2].ends_with("{}"), "{out}");

    let (ok, out, err) = weft(&["policy", "delete", "db/allow-web", "--config", &cfg]);
    assert!(ok, "{err}");
    assert_eq!(out, "networkpolicy db/allow-web deleted\n");
    let (ok, _, err) = weft(&["policy", "delete", "db/allow-web", "--config", &cfg]);
    assert!(!ok);
    assert_eq!(err, "weft: networkpolicy db/allow-web not found under /weft-test/policies/\n");
    assert_eq!(etcd.keys("/weft-test/"), vec!["/weft-test/policies/default/default-deny"]);
}

#[test]
fn explain_names_the_policy_and_rule_that_decide_a_connection_from_what_etcd_holds() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &etcd);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/policy/web-to-mysql.yaml");
    let (ok, _, err) = weft(&["policy", "apply", "-f", example, "--config", &cfg]);
    assert!(ok, "{err}");
    for (ns, name, ip, app) in [
        ("default", "web", "198.19.1.2", "web"),
        ("default", "other", "198.19.1.3", "other"),
        ("db", "mysql", "198.19.2.2", "mysql"),
    ] {
        let record = format!(
            r#"{{"namespace":"{ns}","name":"{name}","ip":"{ip}","labels":{{"app":"{app}"}},"node":"n1"}}"#
        );
        etcd.etcdctl(&["put", &format!("/weft-test/endpoints/{ns}/{name}"), &record]);
    }
    etcd.etcdctl(&["put", "/weft-test/endpoints/default/broken", "{"]);

    let (ok, out, err) =
        weft(&["policy", "explain", "198.19.1.2", "198.19.2.2", "TCP/3306", "--config", &cfg]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "198.19.1.2 (default/web) -> 198.19.2.2 (db/mysql) TCP/3306: allowed\n\
         \x20 egress from the client: not isolated: no policy selects the pod for this direction\n\
         \x20 ingress to the server: allowed by db/mysql-from-web, rule 1 (selected by db/mysql-from-web)\n"
    );
    assert!(
        err.contains("weft: ignoring /weft-test/endpoints/default/broken: not an endpoint record"),
        "{err}"
    );

    let (ok, out, _) = weft(&["policy", "explain", "198.19.1.3", "198.19.2.2", "tcp/3306", "--config", &cfg]);
    assert!(ok);
    assert!(
        out.starts_with("198.19.1.3 (default/other) -> 198.19.2.2 (db/mysql) TCP/3306: denied\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "ingress to the server: denied: no rule of these policies matches (selected by db/mysql-from-web)"
        ),
        "{out}"
    );

    let (ok, _, err) = weft(&["policy", "explain", "198.19.1.3", "198.19.2.2", "ICMP/0", "--config", &cfg]);
    assert!(!ok);
    assert_eq!(err, "weft: protocol \"ICMP\" is not TCP, UDP or SCTP\n");
}

#[test]
fn label_sets_and_removes_labels_in_the_records_policies_read() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &etcd);

    // A namespace without a record gets one.
    let (ok, out, err) = weft(&["label", "namespace", "db", "team=data", "tier=back", "--config", &cfg]);
    assert!(ok, "{err}");
    assert_eq!(out, "namespace db labeled: team=data,tier=back\n");
    let (ok, out, _) = weft(&["label", "namespace", "db", "tier-", "--config", &cfg]);
    assert!(ok);
    assert_eq!(out, "namespace db labeled: team=data\n");
    assert_eq!(etcd.get("/weft-test/namespaces/db").unwrap(), r#"{"labels":{"team":"data"}}"#);

    // A pod needs its endpoint record; its other fields stay as they were.
    let (ok, _, err) = weft(&["label", "pod", "db/mysql", "app=mysql", "--config", &cfg]);
    assert!(!ok);
    assert_eq!(
        err,
        "weft: pod db/mysql has no endpoint record (pods get one when attached with their namespace and name)\n"
    );
    let record = r#"{"namespace":"db","name":"mysql","labels":{"app":"db"},"ip":"198.19.2.2","node":"n2"}"#;
    etcd.etcdctl(&["put", "/weft-test/endpoints/db/mysql", record]);
    let (ok, out, err) = weft(&["label", "pod", "db/mysql", "app=mysql", "version=8", "--config", &cfg]);
    assert!(ok, "{err}");
    assert_eq!(out, "pod db/mysql labeled: app=mysql,version=8\n");
    assert_eq!(
        etcd.get("/weft-test/endpoints/db/mysql").unwrap(),
        r#"{"namespace":"db","name":"mysql","labels":{"app":"mysql","version":"8"},"ip":"198.19.2.2","node":"n2"}"#
    );

    // Bad input is refused before etcd is written.
    let (ok, _, err) = weft(&["label", "pod", "db/mysql", "app", "--config", &cfg]);
    assert!(!ok);
    assert_eq!(err, "weft: \"app\" is neither KEY=VALUE nor KEY-\n");
    let (ok, _, err) = weft(&["label", "namespace", "Bad_NS", "a=b", "--config", &cfg]);
    assert!(!ok);
    assert!(err.starts_with("weft: namespace \"Bad_NS\": "), "{err}");
    assert_eq!(etcd.keys("/weft-test/"), vec!["/weft-test/endpoints/db/mysql", "/weft-test/namespaces/db"]);
}
