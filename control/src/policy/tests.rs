//! The policy model against tables of good and bad NetworkPolicy documents.

use std::collections::BTreeSet;

use super::*;

const HEAD: &str =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: ns\n";

fn one(doc: &str) -> Result<NetworkPolicy, PolicyError> {
    parse_documents(doc, "t.yaml").map(|mut v| {
        assert_eq!(v.len(), 1, "one policy");
        v.remove(0)
    })
}

fn spec(body: &str) -> String {
    format!("{HEAD}spec:\n{body}")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn the_seed_example_parses_into_its_meaning() {
    let p = one("apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: db
spec:
  podSelector:
    matchLabels: {app: mysql}
  ingress:
  - from:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: default}
      podSelector:
        matchLabels: {app: web}
    ports:
    - port: 3306
")
    .unwrap();
    assert_eq!(p.id().to_string(), "db/allow-web");
    assert_eq!(p.pod_selector.match_labels, labels(&[("app", "mysql")]));
    assert_eq!(p.types, PolicyTypes { ingress: true, egress: false });
    assert!(p.egress.is_empty());
    assert_eq!(
        p.ingress,
        vec![Rule {
            peers: vec![Peer::Pods {
                namespaces: Some(LabelSelector {
                    match_labels: labels(&[("kubernetes.io/metadata.name", "default")]),
                    match_expressions: vec![]
                }),
                pods: LabelSelector { match_labels: labels(&[("app", "web")]), match_expressions: vec![] },
            }],
            ports: vec![PortMatch { protocol: Protocol::Tcp, ports: Some((3306, 3306)) }],
        }]
    );
}

/// (what, spec body, check)
type Good = (&'static str, &'static str, fn(&NetworkPolicy));

#[test]
fn good_policies_get_kubernetes_defaults_and_meaning() {
    let table: &[Good] = &[
        ("default deny ingress: no rules", "  podSelector: {}\n", |p| {
            assert!(p.pod_selector.is_empty());
            assert_eq!(p.types, PolicyTypes { ingress: true, egress: false });
            assert!(p.ingress.is_empty());
        }),
        ("missing podSelector selects every pod", "  policyTypes: [Egress]\n", |p| {
            assert!(p.pod_selector.is_empty());
            assert_eq!(p.types, PolicyTypes { ingress: false, egress: true });
        }),
        (
            "egress rules default policyTypes to Ingress,Egress",
            "  podSelector: {}\n  egress:\n  - {}\n",
            |p| {
                assert_eq!(p.types, PolicyTypes { ingress: true, egress: true });
                assert_eq!(p.egress, vec![Rule { peers: vec![], ports: vec![] }]);
            },
        ),
        ("an empty egress list does not add Egress", "  podSelector: {}\n  egress: []\n", |p| {
            assert_eq!(p.types, PolicyTypes { ingress: true, egress: false });
        }),
        ("allow all ingress: one empty rule", "  podSelector: {}\n  ingress:\n  - {}\n", |p| {
            assert_eq!(p.ingress, vec![Rule { peers: vec![], ports: vec![] }]);
        }),
        (
            "podSelector alone is the policy's own namespace",
            "  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}\n",
            |p| match &p.ingress[0].peers[0] {
                Peer::Pods { namespaces: None, pods } => {
                    assert_eq!(pods.match_labels, labels(&[("pod", "b")]))
                }
                other => panic!("{other:?}"),
            },
        ),
        (
            "namespaceSelector alone is every pod of those namespaces",
            "  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector: {}\n",
            |p| match &p.ingress[0].peers[0] {
                Peer::Pods { namespaces: Some(ns), pods } => assert!(ns.is_empty() && pods.is_empty()),
                other => panic!("{other:?}"),
            },
        ),
        (
            "matchExpressions with all four operators",
            "  podSelector:
    matchExpressions:
    - {key: app, operator: In, values: [web, api]}
    - {key: tier, operator: NotIn, values: [db]}
    - {key: team, operator: Exists}
    - {key: legacy, operator: DoesNotExist}
",
            |p| {
                let s = &p.pod_selector;
                assert_eq!(s.match_expressions.len(), 4);
                assert!(s.matches(&labels(&[("app", "web"), ("team", "x")])));
                assert!(s.matches(&labels(&[("app", "api"), ("team", "x"), ("tier", "fe")])));
                assert!(!s.matches(&labels(&[("app", "web"), ("team", "x"), ("tier", "db")])));
                assert!(!s.matches(&labels(&[("app", "web")])), "team must exist");
                assert!(!s.matches(&labels(&[("app", "web"), ("team", "x"), ("legacy", "")])));
                assert!(!s.matches(&labels(&[("app", "cache"), ("team", "x")])));
                assert_eq!(s.to_string(), "app in (api,web),tier notin (db),team,!legacy");
            },
        ),
        (
            "ipBlock with except, host bits cleared",
            "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 198.18.0.7/16, except: [198.18.1.0/24, 198.18.2.9/32]}\n",
            |p| {
                assert_eq!(
                    p.egress[0].peers,
                    vec![Peer::IpBlock(IpBlock {
                        cidr: "198.18.0.0/16".parse().unwrap(),
                        except: vec!["198.18.1.0/24".parse().unwrap(), "198.18.2.9/32".parse().unwrap()],
                    })]
                );
            },
        ),
        (
            "ports: TCP default, UDP, SCTP, endPort, protocol without port",
            "  podSelector: {}
  ingress:
  - ports:
    - port: 80
    - {protocol: UDP, port: 5000, endPort: 5010}
    - {protocol: SCTP, port: 9}
    - protocol: UDP
",
            |p| {
                assert_eq!(
                    p.ingress[0].ports,
                    vec![
                        PortMatch { protocol: Protocol::Tcp, ports: Some((80, 80)) },
                        PortMatch { protocol: Protocol::Udp, ports: Some((5000, 5010)) },
                        PortMatch { protocol: Protocol::Sctp, ports: Some((9, 9)) },
                        PortMatch { protocol: Protocol::Udp, ports: None },
                    ]
                );
            },
        ),
        (
            "explicit policyTypes override the default",
            "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
            |p| {
                assert_eq!(p.types, PolicyTypes { ingress: true, egress: true });
                assert!(p.egress.is_empty(), "Egress with no rules: deny all egress");
            },
        ),
    ];
    for (what, body, check) in table {
        let p = one(&spec(body)).unwrap_or_else(|e| panic!("{what}: {e}"));
        check(&p);
    }
}

#[test]
fn bad_policies_are_refused_naming_the_field_path_and_the_problem() {
    // (document, path, a piece of the problem)
    let spec_bad: &[(&str, &str, &str)] = &[
        (
            "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 80\n    - {port: 90, endPort: 80}\n",
            "spec.ingress[0].ports[1].endPort",
            "below port 90",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports:\n    - endPort: 80\n",
            "spec.ingress[0].ports[0].endPort",
            "needs a numeric port",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 70000\n",
            "spec.ingress[0].ports[0].port",
            "outside 1..=65535",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 0\n",
            "spec.ingress[0].ports[0].port",
            "outside 1..=65535",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n",
            "spec.ingress[0].ports[0].port",
            "named port \"http\"",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports:\n    - {port: 80, endPort: 65536}\n",
            "spec.ingress[0].ports[0].endPort",
            "outside",
        ),
        (
            "  podSelector: {}\n  egress:\n  - ports:\n    - {protocol: ICMP}\n",
            "spec.egress[0].ports[0].protocol",
            "\"ICMP\" is not",
        ),
        (
            "  podSelector: {}\n  egress:\n  - ports:\n    - {protocol: tcp}\n",
            "spec.egress[0].ports[0].protocol",
            "\"tcp\" is not",
        ),
        (
            "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 198.18.0.0/16, except: [198.19.0.0/24]}\n",
            "spec.egress[0].to[0].ipBlock.except[0]",
            "not strictly inside",
        ),
        (
            "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 198.18.0.0/16, except: [198.18.0.0/16]}\n",
            "spec.egress[0].to[0].ipBlock.except[0]",
            "not strictly inside",
        ),
        (
            "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 198.18.0.0/33}\n",
            "spec.egress[0].to[0].ipBlock.cidr",
            "not a CIDR",
        ),
        (
            "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {except: [198.18.0.0/24]}\n",
            "spec.egress[0].to[0].ipBlock.cidr",
            "missing",
        ),
        (
            "  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 198.18.0.0/16}\n      podSelector: {}\n",
            "spec.egress[0].to[0]",
            "cannot be combined",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - from:\n    - {}\n",
            "spec.ingress[0].from[0]",
            "needs podSelector, namespaceSelector or ipBlock",
        ),
        (
            "  podSelector:\n    matchExpressions:\n    - {key: app, operator: In}\n",
            "spec.podSelector.matchExpressions[0].values",
            "needs at least one value",
        ),
        (
            "  podSelector:\n    matchExpressions:\n    - {key: app, operator: Exists, values: [x]}\n",
            "spec.podSelector.matchExpressions[0].values",
            "takes no values",
        ),
        (
            "  podSelector:\n    matchExpressions:\n    - {key: app, operator: Equals, values: [x]}\n",
            "spec.podSelector.matchExpressions[0].operator",
            "\"Equals\" is not In",
        ),
        (
            "  podSelector:\n    matchExpressions:\n    - {operator: Exists}\n",
            "spec.podSelector.matchExpressions[0].key",
            "missing",
        ),
        (
            "  podSelector:\n    matchLabels: {\"bad key!\": x}\n",
            "spec.podSelector.matchLabels.bad key!",
            "label key",
        ),
        (
            "  podSelector:\n    matchLabels: {app: \"-x\"}\n",
            "spec.podSelector.matchLabels.app",
            "label value",
        ),
        ("  podSelector: {}\n  policyTypes: [Ingress, Ingress]\n", "spec.policyTypes[1]", "listed twice"),
        ("  podSelector: {}\n  policyTypes: [ingress]\n", "spec.policyTypes[0]", "neither"),
        ("  podSelector: {}\n  ingres: []\n", "spec.ingres", "unknown field `ingres`"),
        (
            "  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n      namespaceSelectr: {}\n",
            "spec.ingress[0].from[0].namespaceSelectr",
            "unknown field `namespaceSelectr`",
        ),
        (
            "  podSelector: {}\n  ingress:\n  - ports:\n    - {port: 80, end_port: 90}\n",
            "spec.ingress[0].ports[0].end_port",
            "unknown field `end_port`",
        ),
    ];
    for (body, path, problem) in spec_bad {
        let e = one(&spec(body)).expect_err(body);
        assert_eq!(e.path, *path, "{body}\n{e}");
        assert!(e.problem.contains(problem), "{body}\nwanted {problem:?} in: {e}");
        assert_eq!((e.file.as_str(), e.document), ("t.yaml", 1));
    }

    let whole_bad: &[(&str, &str, &str)] = &[
        (
            "apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\n",
            "apiVersion",
            "is not \"networking.k8s.io/v1\"",
        ),
        ("kind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\n", "apiVersion", "missing"),
        (
            "apiVersion: networking.k8s.io/v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n",
            "kind",
            "\"Pod\" is not",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {}\nspec: {}\n",
            "metadata.name",
            "missing",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: Bad_Name}\nspec: {}\n",
            "metadata.name",
            "RFC 1123",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x.y}\nspec: {}\n",
            "metadata.namespace",
            "RFC 1123 label",
        ),
        ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n", "spec", "missing"),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, colour: red}\nspec: {}\n",
            "metadata.colour",
            "unknown field `colour`",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\nextra: 1\n",
            "extra",
            "unknown field `extra`",
        ),
        ("apiVersion: [unclosed\n", "apiVersion", "line 1"),
    ];
    for (doc, path, problem) in whole_bad {
        let e = one(doc).expect_err(doc);
        assert_eq!(e.path, *path, "{doc}\n{e}");
        assert!(e.problem.contains(problem), "{doc}\nwanted {problem:?} in: {e}");
    }
}

#[test]
fn many_documents_parse_all_or_nothing_and_errors_name_the_document() {
    let two = format!(
        "{HEAD}spec: {{}}\n---\n# a comment-only document is skipped\n---\n{}spec: {{}}\n---\n",
        HEAD.replace("name: p", "name: q")
    );
    let ids: Vec<String> = parse_documents(&two, "f").unwrap().iter().map(|p| p.id().to_string()).collect();
    assert_eq!(ids, ["ns/p", "ns/q"]);

    let bad_third = format!(
        "{two}{}spec:\n  podSelector: {{}}\n  ingress:\n  - ports: [{{port: 90, endPort: 80}}]\n",
        HEAD.replace("name: p", "name: r")
    );
    let e = parse_documents(&bad_third, "policies.yaml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "policies.yaml: document 4 (ns/r): spec.ingress[0].ports[0].endPort: 80 is below port 90"
    );

    let twice = format!("{HEAD}spec: {{}}\n---\n{HEAD}spec: {{}}\n");
    let e = parse_documents(&twice, "f").unwrap_err();
    assert_eq!((e.document, e.path.as_str()), (2, "metadata.name"));
    assert!(e.problem.contains("defined twice"), "{e}");
}

#[test]
fn json_and_kubectl_output_are_accepted_and_the_stored_form_round_trips() {
    let json = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"j","uid":"1234","resourceVersion":"7","creationTimestamp":"2024-01-01T00:00:00Z",
                    "managedFields":[{"manager":"kubectl"}],"labels":{"team":"a"}},
        "spec":{"podSelector":{"matchLabels":{"app":"x"}},"egress":[{"to":[{"ipBlock":{"cidr":"198.18.0.0/15"}}],
                "ports":[{"protocol":"UDP","port":53}]}]},"status":{}}"#;
    let p = one(json).unwrap();
    assert_eq!(p.id().to_string(), "default/j", "no namespace: kubectl's default namespace");
    assert_eq!(p.types, PolicyTypes { ingress: true, egress: true });
    let stored = p.to_json();
    assert!(
        !stored.contains("uid") && !stored.contains("managedFields") && !stored.contains("status"),
        "{stored}"
    );
    assert!(stored.contains(r#""namespace":"default""#), "{stored}");
    let again = one(&stored).unwrap();
    assert_eq!(again.to_json(), stored);
    assert_eq!((again.ingress, again.egress, again.types), (p.ingress, p.egress, p.types));
}

#[test]
fn policy_ids_parse_from_ns_slash_name() {
    let id: PolicyId = "db/allow-web".parse().unwrap();
    assert_eq!((id.namespace.as_str(), id.name.as_str()), ("db", "allow-web"));
    for bad in ["db", "db/", "/x", "DB/x", "db/x_y"] {
        assert!(bad.parse::<PolicyId>().is_err(), "{bad}");
    }
    let set: BTreeSet<PolicyId> = ["b/x", "a/y"].iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(set.iter().map(ToString::to_string).collect::<Vec<_>>(), ["a/y", "b/x"]);
}
