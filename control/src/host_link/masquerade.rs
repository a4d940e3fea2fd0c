//! flannel's ipMasq rules (its iptables `FLANNEL-POSTRTG` chain), in an nftables table of
//! weft's own so that removing them touches nothing else:
//!
//! ```text
//! table ip weft {
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!     meta mark & 0x4000 == 0x4000 return                     # kube-proxy masquerades these
//!     ip saddr <Network> ip daddr <Network> return             # pod to pod: never NAT
//!     ip saddr != <Network> ip daddr <subnet> return           # to our pods from outside: as is
//!     ip saddr <Network> ip daddr != 224.0.0.0/4 masquerade fully-random  # pods to outside
//!     ip saddr != <Network> ip daddr <Network> masquerade fully-random    # the node to remote pods
//!   }
//! }
//! ```
//!
//! The node's own traffic to outside the cluster network matches nothing. Applied and removed
//! through the `nftables` crate (nft's JSON API, `nft -j`).

use std::borrow::Cow;
use std::collections::HashSet;

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::{
    BinaryOperation, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix,
};
use nftables::schema::{Chain, NfListObject, Rule, Table};
use nftables::stmt::{Match, NAT, NATFlag, Operator, Statement};
use nftables::types::{NfChainType, NfFamily, NfHook};

use super::HostLinkError;

/// weft's nftables table (family ip).
pub const TABLE: &str = "weft";
const CHAIN: &str = "postrouting";
/// The NAT hook's source-NAT priority.
const SRCNAT: i32 = 100;
/// kube-proxy's masquerade mark (`--masquerade-bit` 14).
const KUBE_PROXY_MARK: u32 = 0x4000;

/// The masquerade rules for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasqueradeRules {
    /// flannel's `Network`.
    pub cluster: Ipv4Net,
    /// The node's lease.
    pub subnet: Ipv4Net,
}

fn ip_field(field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: Cow::Borrowed("ip"),
        field: Cow::Borrowed(field),
    })))
}

fn prefix(net: Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(Cow::Owned(net.network().to_string()))),
        len: u32::from(net.prefix_len()),
    }))
}

fn matches(field: &'static str, equal: bool, net: Ipv4Net) -> Statement<'static> {
    Statement::Match(Match {
        left: ip_field(field),
        right: prefix(net),
        op: if equal { Operator::EQ } else { Operator::NEQ },
    })
}

/// `meta mark & mark == mark`.
fn marked(mark: u32) -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::BinaryOperation(Box::new(BinaryOperation::AND(
            Expression::Named(NamedExpression::Meta(Meta { key: MetaKey::Mark })),
            Expression::Number(mark),
        ))),
        right: Expression::Number(mark),
        op: Operator::EQ,
    })
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(Some(NAT {
        addr: None,
        family: None,
        port: None,
        flags: Some(HashSet::from([NATFlag::FullyRandom])),
    }))
}

fn table() -> Table<'static> {
    Table { family: NfFamily::IP, name: Cow::Borrowed(TABLE), handle: None }
}

fn nft(source: nftables::helper::NftablesError) -> HostLinkError {
    HostLinkError::Nft { table: TABLE, source }
}

impl MasqueradeRules {
    /// The rules, each as (its statements, the line `describe` shows).
    fn rules(&self) -> Vec<(Vec<Statement<'static>>, String)> {
        let (n, s) = (self.cluster, self.subnet);
        let multicast = Ipv4Net::new(std::net::Ipv4Addr::new(224, 0, 0, 0), 4).unwrap_or_default();
        vec![
            (
                vec![marked(KUBE_PROXY_MARK), Statement::Return(None)],
                format!("meta mark & {KUBE_PROXY_MARK:#x} == {KUBE_PROXY_MARK:#x} return"),
            ),
            (
                vec![matches("saddr", true, n), matches("daddr", true, n), Statement::Return(None)],
                format!("ip saddr {n} ip daddr {n} return"),
            ),
            (
                vec![matches("saddr", false, n), matches("daddr", true, s), Statement::Return(None)],
                format!("ip saddr != {n} ip daddr {s} return"),
            ),
            (
                vec![matches("saddr", true, n), matches("daddr", false, multicast), masquerade()],
                format!("ip saddr {n} ip daddr != {multicast} masquerade fully-random"),
            ),
            (
                vec![matches("saddr", false, n), matches("daddr", true, n), masquerade()],
                format!("ip saddr != {n} ip daddr {n} masquerade fully-random"),
            ),
        ]
    }

    /// What `weft check` and `weft status` show.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("nftables table ip {TABLE}, chain {CHAIN} (nat, postrouting, srcnat):")];
        lines.extend(self.rules().into_iter().map(|(_, line)| format!("  {line}")));
        lines
    }

    /// Creates the table, its chain and the rules in one transaction (a table of that name
    /// left by an earlier run is replaced).
    pub fn apply(&self) -> Result<(), HostLinkError> {
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(table()));
        batch.delete(NfListObject::Table(table()));
        batch.add(NfListObject::Table(table()));
        batch.add(NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: Cow::Borrowed(TABLE),
            name: Cow::Borrowed(CHAIN),
            _type: Some(NfChainType::NAT),
            hook: Some(NfHook::Postrouting),
            prio: Some(SRCNAT),
            ..Chain::default()
        }));
        for (expr, _) in self.rules() {
            batch.add(NfListObject::Rule(Rule {
                family: NfFamily::IP,
                table: Cow::Borrowed(TABLE),
                chain: Cow::Borrowed(CHAIN),
                expr: Cow::Owned(expr),
                ..Rule::default()
            }));
        }
        nftables::helper::apply_ruleset(&batch.to_nftables()).map_err(nft)
    }

    /// Deletes weft's table.
    pub fn remove(&self) -> Result<(), HostLinkError> {
        let mut batch = Batch::new();
        batch.delete(NfListObject::Table(table()));
        nftables::helper::apply_ruleset(&batch.to_nftables()).map_err(nft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_are_flannels_in_order() {
        let m = MasqueradeRules {
            cluster: "198.19.0.0/16".parse().unwrap(),
            subnet: "198.19.1.0/24".parse().unwrap(),
        };
        let lines = m.describe();
        assert_eq!(
            lines[1..],
            [
                "  meta mark & 0x4000 == 0x4000 return",
                "  ip saddr 198.19.0.0/16 ip daddr 198.19.0.0/16 return",
                "  ip saddr != 198.19.0.0/16 ip daddr 198.19.1.0/24 return",
                "  ip saddr 198.19.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
                "  ip saddr != 198.19.0.0/16 ip daddr 198.19.0.0/16 masquerade fully-random",
            ]
        );
    }
}
