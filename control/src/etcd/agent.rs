//! The lease agent: one task that owns our lease, the lease table and the
//! route compiler, and is the single writer of the route sink.
//!
//! ```text
//! start:  connect -> <prefix>/config -> list subnets -> acquire -> subnet.env
//!         (a failure undoes what the start changed in etcd: see `rollback`)
//! run:    commit the start (revoke the lease our key was taken over from)
//!         flush routes of the list
//!         loop { watch from table.revision + 1
//!                  put/delete -> table + compiler -> one batch per watch response
//!                  our key deleted or overwritten -> re-acquire (routes untouched)
//!                  renew timer -> keepalive (expired -> re-acquire)
//!                  compaction -> re-list and reconcile
//!                  etcd error -> keep routes, back off, re-list and reconcile }
//! ```

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, EventType, WatchOptions};
use ipnet::Ipv4Net;
use tokio::sync::watch;
use tokio::time::Instant;

use super::acquire::{list, put_if, revoke};
use super::credentials::connect_options;
use super::rollback::Rollback;
use super::rpc::call;
use super::{AgentSettings, ControlError, Keys, LeaseRequest, LeaseTable, OwnLease, acquire};
use crate::flannel::{
    BackendType, LeaseAttrs, NetworkConfig, NetworkConfigError, VxlanBackendData, WireGuardBackendData,
};
use crate::routes::{RouteCompiler, RoutePolicy, RouteSink};
use crate::subnet_env::SubnetEnv;

/// What the agent is doing, published after every step (for `weft status`,
/// metrics and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// Our subnet.
    pub subnet: Ipv4Net,
    /// The subnet of the first lease this agent acquired: what a data plane built at
    /// start serves and its pods are numbered in. Differs from `subnet` once our lease was
    /// lost and only another subnet was free (see [`AgentStatus::moved_from`]).
    pub first_subnet: Ipv4Net,
    /// Our etcd lease id.
    pub lease_id: i64,
    /// Is the watch up (false while etcd is unreachable)?
    pub connected: bool,
    /// Leases known, ours included.
    pub leases: usize,
    /// Routes installed in the sink.
    pub routes: usize,
    /// Times our lease was re-acquired after being deleted or expiring.
    pub reacquired: u64,
    /// Full re-lists after start (compaction, reconnect).
    pub resyncs: u64,
    /// etcd errors after start (a failed watch, renewal or re-list): each one is a
    /// warning, a backoff and a re-list.
    pub errors: u64,
    /// Route batches applied.
    pub batches: u64,
}

enum WatchEnd {
    Shutdown,
    Resync,
}

/// The etcd-mode control plane of one node. See the module docs.
pub struct Agent {
    settings: AgentSettings,
    keys: Keys,
    client: Client,
    network: NetworkConfig,
    attrs: LeaseAttrs,
    own: OwnLease,
    table: LeaseTable,
    compiler: RouteCompiler,
    renew_at: Instant,
    status: watch::Sender<AgentStatus>,
    /// What the start changed in etcd: undone by [`Agent::abandon`], committed by [`Agent::run`].
    rollback: Rollback,
}

/// Connects a client; etcd-client connects lazily, so this succeeds while
/// etcd is down and later calls retry the connection.
///
/// Keepalive as etcd's Go client does it: a ping after `keepalive_interval` without
/// traffic, only while a stream (our watch) is open. etcd enforces
/// `PermitWithoutStream=false` and `--grpc-keepalive-min-time` (5 s): pings on an idle
/// connection, or closer together, earn a GOAWAY ENHANCE_YOUR_CALM that kills the watch.
/// A frozen or unreachable etcd is noticed `keepalive_timeout` after an unanswered ping.
async fn connect(settings: &AgentSettings) -> Result<Client, ControlError> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(settings.client.keepalive_interval, settings.client.keepalive_timeout)
        .with_keep_alive_while_idle(false);
    let options = connect_options(options, &settings.client);
    call(settings, || "connect".into(), Client::connect(settings.endpoints.clone(), Some(options))).await
}

/// Reads `<prefix>/config`, writing `init` first when the key is absent (noted in `rollback`).
pub(crate) async fn network_config(
    client: &mut Client,
    settings: &AgentSettings,
    keys: &Keys,
    rollback: &mut Rollback,
) -> Result<NetworkConfig, ControlError> {
    let key = keys.config();
    if let Some(init) = &settings.init_network {
        let cmp = Compare::version(key.clone(), CompareOp::Equal, 0);
        if let Some(w) = put_if(client, settings, cmp, &key, init.to_json(), None).await? {
            tracing::info!(%key, "wrote the network config (--init-network)");
            rollback.config = Some((key.clone(), w.revision));
        }
    }
    let resp = call(settings, || format!("get {key}"), client.get(key.clone(), None)).await?;
    let kv = resp.kvs().first().ok_or_else(|| ControlError::NoNetworkConfig { key: key.clone() })?;
    let network = NetworkConfig::parse(kv.value())
        .map_err(|source| ControlError::BadNetworkConfig { key: key.clone(), source })?;
    let refused = match &network.backend.backend_type {
        BackendType::Other(name) => Some(format!("{name:?}: weft runs vxlan, host-gw, ipip and wireguard")),
        BackendType::WireGuard if settings.wg_public_key.is_none() && settings.wg_key_dir.is_none() => {
            Some("\"wireguard\" needs the node's WireGuard key, and this agent has none".into())
        }
        _ => None,
    };
    if let Some(problem) = refused {
        let source = NetworkConfigError { key: "Backend.Type", problem };
        return Err(ControlError::BadNetworkConfig { key, source });
    }
    Ok(network)
}

/// Reads the network config, lists the leases and takes ours, noting each change in
/// `rollback`.
async fn take_lease(
    client: &mut Client,
    settings: &AgentSettings,
    keys: &Keys,
    rollback: &mut Rollback,
) -> Result<(NetworkConfig, LeaseAttrs, LeaseTable, OwnLease), ControlError> {
    let network = network_config(client, settings, keys, rollback).await?;
    let keyed;
    let settings = match (&network.backend.backend_type, settings.wg_public_key, &settings.wg_key_dir) {
        (BackendType::WireGuard, None, Some(dir)) => {
            let pair = crate::wg_key::load_or_create(dir)?;
            tracing::info!(public_key = %pair.public, dir = %dir.display(), "WireGuard key kept in node.state_dir");
            keyed = AgentSettings { wg_public_key: Some(pair.public), ..settings.clone() };
            &keyed
        }
        _ => settings,
    };
    let attrs = own_attrs(settings, &network);
    let mut table = list(client, settings, keys).await?;
    let prefer: Vec<Ipv4Net> = SubnetEnv::read_subnet(&settings.subnet_file).into_iter().collect();
    let request = LeaseRequest { network: &network, attrs: &attrs, prefer: &prefer };
    let mut own = acquire(client, settings, request, &mut table).await?;
    rollback.lease = Some(own.lease_id);
    rollback.replaced = own.replaced.take();
    Ok((network, attrs, table, own))
}

/// The value of our lease for this network.
pub(crate) fn own_attrs(settings: &AgentSettings, network: &NetworkConfig) -> LeaseAttrs {
    let vxlan = (network.backend.backend_type == BackendType::Vxlan)
        .then_some(VxlanBackendData { vni: Some(network.backend.vni), vtep_mac: settings.vtep_mac });
    let wireguard = (network.backend.backend_type == BackendType::WireGuard)
        .then_some(settings.wg_public_key)
        .flatten()
        .map(|public_key| WireGuardBackendData {
            public_key,
            port: Some(network.backend.wireguard.listen_port),
        });
    LeaseAttrs {
        public_ip: settings.public_ip,
        public_ipv6: None,
        backend_type: network.backend.backend_type.clone(),
        vxlan,
        wireguard,
    }
}

impl AgentStatus {
    /// The first subnet when our lease has since moved to another one: the node's pods
    /// and data plane are numbered in it, but another node may hold it now.
    pub fn moved_from(&self) -> Option<Ipv4Net> {
        (self.subnet != self.first_subnet).then_some(self.first_subnet)
    }
}

impl Agent {
    /// Connects, reads (or initialises) the network config, lists the
    /// leases and acquires ours, then writes subnet.env. Errors here are
    /// fatal to the daemon (no config, out of subnets, etcd unreachable); an
    /// error after etcd was changed undoes the change first.
    pub async fn start(settings: AgentSettings) -> Result<Self, ControlError> {
        let keys = Keys::new(&settings.prefix);
        let mut client = connect(&settings).await?;
        let mut rollback = Rollback::default();
        let taken = take_lease(&mut client, &settings, &keys, &mut rollback).await;
        let (network, attrs, table, own) = match taken {
            Ok(t) => t,
            Err(e) => {
                rollback.undo(&mut client, &settings).await;
                return Err(e);
            }
        };
        tracing::info!(subnet = %own.subnet, lease = own.lease_id, "acquired our subnet lease");
        let policy = RoutePolicy {
            backend: network.backend.clone(),
            own_public_ip: settings.public_ip,
            uplink_subnet: settings.uplink_subnet,
        };
        let mut compiler = RouteCompiler::new(policy);
        compiler.set_own_subnet(Some(own.subnet));
        let status = watch::Sender::new(AgentStatus {
            subnet: own.subnet,
            first_subnet: own.subnet,
            lease_id: own.lease_id,
            connected: true,
            leases: table.len(),
            routes: 0,
            reacquired: 0,
            resyncs: 0,
            errors: 0,
            batches: 0,
        });
        let agent = Agent {
            renew_at: Instant::now() + settings.lease_ttl - settings.renew_margin(),
            settings,
            keys,
            client,
            network,
            attrs,
            own,
            table,
            compiler,
            status,
            rollback,
        };
        if let Err(e) = agent.write_subnet_env() {
            agent.abandon().await;
            return Err(e);
        }
        Ok(agent)
    }

    /// Gives back what this agent's start changed in etcd, for a start that failed after
    /// the lease: our etcd lease revoked (etcd deletes our key with it), the earlier value
    /// of a key we took over put back, a network config written by `--init-network` deleted.
    /// Best effort; one log line says how it went.
    pub async fn abandon(mut self) {
        let rollback = std::mem::take(&mut self.rollback);
        rollback.undo(&mut self.client, &self.settings).await;
    }

    /// Our subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.own.subnet
    }

    /// The network config in force.
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }

    /// The settings it started with.
    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// A receiver of status updates.
    pub fn status(&self) -> watch::Receiver<AgentStatus> {
        self.status.subscribe()
    }

    fn write_subnet_env(&self) -> Result<(), ControlError> {
        let env =
            SubnetEnv::for_network(&self.network, self.own.subnet, self.settings.mtu, self.settings.ipmasq);
        Ok(env.write(&self.settings.subnet_file)?)
    }

    fn publish(&self, connected: bool) {
        self.status.send_modify(|s| {
            s.subnet = self.own.subnet;
            s.lease_id = self.own.lease_id;
            s.connected = connected;
            s.leases = self.table.len();
            s.routes = self.compiler.installed().len();
        });
    }

    fn flush(&mut self, sink: &mut dyn RouteSink) {
        if self.compiler.flush(sink) > 0 {
            self.status.send_modify(|s| s.batches += 1);
        }
    }

    /// Runs until `shutdown` resolves. Routes in `sink` are only changed by
    /// what etcd says: while etcd is unreachable they stay as they are.
    pub async fn run(
        mut self,
        sink: &mut dyn RouteSink,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ControlError> {
        tokio::pin!(shutdown);
        std::mem::take(&mut self.rollback).commit(&mut self.client, &self.settings).await;
        self.compiler.reconcile_leases(self.table.usable());
        self.flush(sink);
        self.publish(true);
        let min_backoff = Duration::from_millis(50);
        let mut backoff = min_backoff;
        let mut need_list = false;
        loop {
            let mut listed = false;
            let result = async {
                if need_list {
                    self.resync(sink).await?;
                    listed = true;
                }
                self.watch(sink, &mut shutdown).await
            }
            .await;
            if listed {
                // etcd answered a full list: the outage, if any, is over.
                backoff = min_backoff;
            }
            need_list = true;
            match result {
                Ok(WatchEnd::Shutdown) => return Ok(()),
                Ok(WatchEnd::Resync) => {}
                Err(e) => {
                    self.status.send_modify(|s| s.errors += 1);
                    self.publish(false);
                    tracing::warn!("{e}; keeping the last routes, retrying in {backoff:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut shutdown => return Ok(()),
                    }
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                }
            }
        }
    }

    /// Re-lists, makes sure our lease is still ours, and reconciles routes.
    async fn resync(&mut self, sink: &mut dyn RouteSink) -> Result<(), ControlError> {
        self.authenticate().await?;
        self.table = list(&mut self.client, &self.settings, &self.keys).await?;
        let ours = self.table.get(self.own.subnet).is_some_and(|l| {
            l.lease_id == self.own.lease_id
                && l.attrs.as_ref().is_some_and(|a| a.public_ip == self.settings.public_ip)
        });
        if ours {
            self.renew().await?;
        } else {
            self.reacquire().await?;
        }
        self.compiler.reconcile_leases(self.table.usable());
        self.flush(sink);
        self.status.send_modify(|s| s.resyncs += 1);
        self.publish(true);
        Ok(())
    }

    /// Keeps our etcd lease alive; an expired lease is re-acquired.
    async fn renew(&mut self) -> Result<(), ControlError> {
        let id = self.own.lease_id;
        let (settings, client) = (&self.settings, &mut self.client);
        let ttl = call(settings, || format!("renew lease {id:x}"), async {
            let (mut keeper, mut stream) = client.lease_keep_alive(id).await?;
            keeper.keep_alive().await?;
            // A stream that ends without an answer (etcd restarting, no leader yet) says
            // nothing about our lease: an error, retried, not an expiry.
            stream.message().await?.map(|r| r.ttl()).ok_or_else(|| {
                etcd_client::Error::LeaseKeepAliveError("stream closed without an answer".into())
            })
        })
        .await?;
        if ttl <= 0 {
            tracing::warn!(subnet = %self.own.subnet, "our lease expired; re-acquiring");
            self.reacquire().await?;
        } else {
            self.renew_at =
                Instant::now() + Duration::from_secs(ttl as u64).saturating_sub(self.settings.renew_margin());
        }
        Ok(())
    }

    /// Gets a fresh auth token (with `[etcd] username`): etcd forgets a token
    /// `--auth-token-ttl` (300 s) after its last use, and the client does not renew it, so
    /// calls after a quiet spell (a re-list, a re-acquire) would all fail as unauthenticated.
    /// The old token goes first: etcd refuses even the authenticate call that carries one
    /// it has forgotten.
    async fn authenticate(&mut self) -> Result<(), ControlError> {
        let Some(auth) = &self.settings.client.auth else {
            return Ok(());
        };
        let (name, password) = (auth.username.clone(), auth.password.expose().to_owned());
        self.client.remove_client_auth();
        call(&self.settings, || "authenticate".into(), self.client.set_client_auth(name, password)).await
    }

    /// Takes a lease again, preferring the subnet we had. Routes are not
    /// touched: forwarding goes on meanwhile.
    async fn reacquire(&mut self) -> Result<(), ControlError> {
        self.authenticate().await?;
        let old = self.own.clone();
        let request = LeaseRequest { network: &self.network, attrs: &self.attrs, prefer: &[old.subnet] };
        let mut own = acquire(&mut self.client, &self.settings, request, &mut self.table).await?;
        if let Some(r) = own.replaced.take().filter(|r| r.lease_id != 0 && r.lease_id != old.lease_id) {
            revoke(&mut self.client, &self.settings, r.lease_id).await;
        }
        if own.lease_id != old.lease_id {
            revoke(&mut self.client, &self.settings, old.lease_id).await;
        }
        tracing::info!(subnet = %own.subnet, lease = own.lease_id, "re-acquired our subnet lease");
        self.renew_at = Instant::now() + own.ttl - self.settings.renew_margin();
        let moved = own.subnet != old.subnet;
        self.own = own;
        if moved {
            // flanneld exits here ("lease has been revoked"); the node's pods are numbered
            // in the old subnet either way and only re-creating them moves them. We keep
            // forwarding (same-node and outbound traffic still work) and say so loudly:
            // this line, `weft status` and the weft_subnet_mismatch metric.
            tracing::error!(
                old = %old.subnet,
                new = %self.own.subnet,
                "our subnet lease was lost and the subnet is another node's now: this node leases the new \
                 subnet, but its pods and data plane stay in the old one until the pods are re-created \
                 and weft restarts (drain the node)"
            );
            self.compiler.set_own_subnet(Some(self.own.subnet));
            // The old subnet's new holder was skipped as "ours" when its put arrived.
            self.compiler.reconcile_leases(self.table.usable());
            self.write_subnet_env()?;
        }
        self.status.send_modify(|s| s.reacquired += 1);
        Ok(())
    }

    async fn watch(
        &mut self,
        sink: &mut dyn RouteSink,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<WatchEnd, ControlError> {
        let prefix = self.keys.subnets();
        let start = self.table.revision() + 1;
        let options = WatchOptions::new().with_prefix().with_start_revision(start);
        let ep = self.settings.endpoints.clone();
        let (mut watcher, mut stream) = call(
            &self.settings,
            || format!("watch {prefix} from revision {start}"),
            self.client.watch(prefix.clone(), Some(options)),
        )
        .await?;
        self.publish(true);
        loop {
            tokio::select! {
                _ = &mut *shutdown => {
                    let _ = watcher.cancel().await;
                    return Ok(WatchEnd::Shutdown);
                }
                _ = tokio::time::sleep_until(self.renew_at) => self.renew().await?,
                msg = stream.message() => {
                    let resp = match msg {
                        Ok(Some(resp)) => resp,
                        Ok(None) => return Err(ControlError::Etcd { context: format!("watch {prefix}"), message: "stream closed".into(), endpoints: ep.join(",") }),
                        Err(e) => return Err(ControlError::Etcd { context: format!("watch {prefix}"), message: e.to_string(), endpoints: ep.join(",") }),
                    };
                    if resp.compact_revision() > 0 || resp.canceled() {
                        tracing::warn!(compacted = resp.compact_revision(), "watch cancelled ({}); re-listing", resp.cancel_reason());
                        return Ok(WatchEnd::Resync);
                    }
                    if self.apply_events(resp.events()) {
                        let listed = self.table.revision();
                        self.reacquire().await?;
                        if self.table.revision() != listed {
                            // acquire re-listed: the watch is behind the table now.
                            self.flush(sink);
                            return Ok(WatchEnd::Resync);
                        }
                    }
                    self.flush(sink);
                    self.publish(true);
                }
            }
        }
    }

    /// Applies one watch response to the table and the compiler; returns
    /// true when our own key was deleted or taken over.
    fn apply_events(&mut self, events: &[etcd_client::Event]) -> bool {
        let mut lost_own = false;
        for event in events {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => {
                    let Some(subnet) = self.table.put(kv) else {
                        continue;
                    };
                    if subnet == self.own.subnet {
                        lost_own |= kv.lease() != self.own.lease_id;
                    } else if let Some(attrs) = self.table.get(subnet).and_then(|l| l.attrs.clone()) {
                        self.compiler.lease_put(subnet, &attrs);
                    } else {
                        self.compiler.lease_deleted(subnet);
                    }
                }
                EventType::Delete => {
                    let Some((subnet, _)) = self.table.delete(kv) else {
                        continue;
                    };
                    if subnet == self.own.subnet {
                        lost_own = true;
                    } else {
                        self.compiler.lease_deleted(subnet);
                    }
                }
            }
        }
        lost_own
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("prefix", &self.keys.prefix())
            .field("own", &self.own)
            .field("leases", &self.table.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wireguard_node_publishes_its_public_key_and_listen_port_as_flannel_does() {
        let mut settings = AgentSettings::from_config(
            &crate::config::Config::parse(
                "mode = \"etcd\"\n[node]\nname = \"n1\"\npublic_ip = \"198.18.0.11\"\n[etcd]\nendpoints = [\"http://127.0.0.1:2379\"]\n",
            )
            .unwrap(),
            crate::flannel::MacAddr::ZERO,
            false,
        );
        settings.wg_public_key = Some("GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=".parse().unwrap());
        let network = NetworkConfig::parse(
            br#"{"Network":"198.19.0.0/16","Backend":{"Type":"wireguard","ListenPort":51000}}"#,
        )
        .unwrap();
        assert_eq!(
            own_attrs(&settings, &network).to_json(),
            r#"{"PublicIP":"198.18.0.11","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"GBu1TyHOw2CxlWvXGasnKhUrwXk/F1ZW9KdzOz7XD3A=","Port":51000}}"#
        );
    }
}
