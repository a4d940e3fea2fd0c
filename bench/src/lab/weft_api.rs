//! Asking a lab's weft nodes what they do: their daemon's status over the API socket named
//! in the node's generated config (`weft status --json` without the CLI), and waiting until
//! every weft node routes every other started node's subnet and knows its underlay MAC.

use std::time::Duration;

use weft_control::api::{Reply, Request, StatusReport, request};

use super::state::NodeState;
use super::supervise::wait_for;
use super::topology::NodeKind;
use super::{Lab, LabError};

/// How long one status request may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

impl Lab {
    /// The status report of weft node `i`'s daemon.
    pub fn weft_status(&self, i: usize) -> Result<StatusReport, LabError> {
        let node = self.node(i);
        let api = |error: String| LabError::WeftApi { node: i, error };
        let config = node.config.as_ref().ok_or_else(|| api("is not a weft node (no config)".into()))?;
        let config = weft_control::config::Config::load(config).map_err(|e| api(e.to_string()))?;
        match request(&config.api.socket, &Request::Status, STATUS_TIMEOUT) {
            Ok(Reply::Status { report }) => Ok(*report),
            Ok(other) => Err(api(format!("unexpected reply to status: {other:?}"))),
            Err(e) => Err(api(e.to_string())),
        }
    }

    /// Waits until every weft node whose daemon runs routes the subnet of every other started
    /// node (its `weft status` lists a route for it) and knows that node's underlay MAC (the
    /// lab has no underlay gateway: every peer is its own next hop). Until then weft drops
    /// the first packets to a peer as `neighbour_unresolved`. Kernel nodes are waited for by
    /// [`Lab::up`] already.
    pub fn wait_weft_routes(&self, timeout: Duration) -> Result<(), LabError> {
        let nodes = &self.state().nodes;
        for node in nodes.iter().filter(|n| n.kind == NodeKind::Weft && self.runs_node(n)) {
            let others: Vec<&NodeState> =
                nodes.iter().filter(|o| o.index != node.index && self.runs_node(o)).collect();
            let what = format!(
                "weft node n{} to route {:?} and resolve their nodes' MACs",
                node.index,
                others.iter().map(|o| o.subnet.to_string()).collect::<Vec<_>>()
            );
            wait_for(&what, timeout, || {
                self.weft_status(node.index).is_ok_and(|status| {
                    others.iter().all(|o| {
                        status.routes.iter().any(|r| r.subnet == o.subnet.to_string())
                            && status.neighbours.iter().any(|n| n.ip == o.public_ip.to_string())
                    })
                })
            })?;
        }
        Ok(())
    }

    /// Was node `n`'s agent or daemon started by the lab?
    fn runs_node(&self, n: &NodeState) -> bool {
        let name = super::Plan::node_process(n.index, n.kind);
        self.state().processes.iter().any(|p| p.name == name)
    }
}
