//! Taking this node's subnet lease, as SPEC §3 says:
//!
//! 1. a lease whose PublicIP is ours (we restarted): take it over with a
//!    compare on its mod revision, attached to a fresh etcd lease;
//! 2. else a preferred subnet (the one in our subnet.env, or the one we just
//!    lost) if nobody holds it;
//! 3. else a random free subnet in SubnetMin..=SubnetMax.
//!
//! Creation is `grant` + `txn(version(key) == 0 -> put(key, value, lease))`.
//! A takeover (1.) leaves the earlier run's etcd lease alone and returns what the key held
//! ([`Replaced`]): the caller revokes that lease once its start has succeeded, or puts the
//! key back if the start fails.
//! A lost race tries another subnet (flannel exits instead); when the local
//! view has no free subnet left we re-list once, and only a fresh list with
//! nothing free is "out of subnets".

use std::collections::HashSet;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use ipnet::Ipv4Net;
use rand::Rng;

use super::rpc::call;
use super::{AgentSettings, ControlError, Keys, LeaseTable};
use crate::flannel::{LeaseAttrs, NetworkConfig};

/// Rounds of (list, try) before giving up on a pathologically busy etcd.
const MAX_ROUNDS: u32 = 64;

/// The lease this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLease {
    /// Our subnet.
    pub subnet: Ipv4Net,
    /// The etcd lease our key is attached to.
    pub lease_id: i64,
    /// Its TTL as granted.
    pub ttl: Duration,
    /// What our key held before this acquire took it over (`None`: the key was created).
    pub replaced: Option<Replaced>,
}

/// A key [`acquire`] wrote over: a lease with our PublicIP left by an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The key.
    pub key: String,
    /// Its value before our put, byte for byte.
    pub value: Vec<u8>,
    /// The etcd lease it was attached to (0: none); still granted, no longer holding the key.
    pub lease_id: i64,
    /// The revision of our put: the key is as we left it while its mod revision is this.
    pub our_revision: i64,
}

/// A conditional put that happened.
pub(crate) struct Written {
    /// The revision it was written at.
    pub revision: i64,
    /// The key's value and lease id before it (`None`: the key was absent).
    pub prev: Option<(Vec<u8>, i64)>,
}

/// Keys per page when listing: ~0.7 MB of flannel leases, well under the
/// client's 4 MB message limit.
const LIST_PAGE: i64 = 4096;

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    // Lease prefixes end in '/', never 0xff: incrementing the last byte is enough.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// Lists `<prefix>/subnets/` with ranged gets of [`LIST_PAGE`] keys, every
/// page pinned to the first page's revision so the result is one consistent
/// snapshot (no per-lease calls: 10k leases are three requests).
pub async fn list(
    client: &mut Client,
    settings: &AgentSettings,
    keys: &Keys,
) -> Result<LeaseTable, ControlError> {
    let prefix = keys.subnets();
    let end = prefix_end(&prefix);
    let mut from = prefix.clone().into_bytes();
    let mut revision = 0;
    let mut kvs = Vec::new();
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(LIST_PAGE);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let mut resp = call(
            settings,
            || format!("list {prefix} (page {})", kvs.len() as i64 / LIST_PAGE),
            client.get(from.clone(), Some(options)),
        )
        .await?;
        if revision == 0 {
            revision = resp.header().map_or(0, |h| h.revision());
        }
        let more = resp.more();
        let page = resp.take_kvs();
        match page.last() {
            Some(last) if more => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => {
                kvs.extend(page);
                break;
            }
        }
        kvs.extend(page);
    }
    Ok(LeaseTable::from_kvs(&kvs, revision))
}

/// `txn(compare -> put(key, value, lease))`: `Some` when the put happened.
pub(crate) async fn put_if(
    client: &mut Client,
    settings: &AgentSettings,
    compare: Compare,
    key: &str,
    value: impl Into<Vec<u8>>,
    lease_id: Option<i64>,
) -> Result<Option<Written>, ControlError> {
    let mut options = PutOptions::new().with_prev_key();
    if let Some(id) = lease_id.filter(|id| *id != 0) {
        options = options.with_lease(id);
    }
    let txn = Txn::new().when([compare]).and_then([TxnOp::put(key, value, Some(options))]);
    let resp = call(settings, || format!("conditional put {key}"), client.txn(txn)).await?;
    if !resp.succeeded() {
        return Ok(None);
    }
    let prev = resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Put(put) => put.prev_key().map(|kv| (kv.value().to_vec(), kv.lease())),
        _ => None,
    });
    Ok(Some(Written { revision: resp.header().map_or(0, |h| h.revision()), prev }))
}

/// A fresh etcd lease of the configured TTL.
pub(crate) async fn grant(client: &mut Client, settings: &AgentSettings) -> Result<i64, ControlError> {
    let ttl = settings.lease_ttl.as_secs() as i64;
    let resp = call(settings, || format!("grant a {ttl}s lease"), client.lease_grant(ttl, None)).await?;
    Ok(resp.id())
}

/// Best effort: a lease we no longer need goes away now rather than at TTL.
pub(crate) async fn revoke(client: &mut Client, settings: &AgentSettings, lease_id: i64) {
    if let Err(e) =
        call(settings, || format!("revoke lease {lease_id:x}"), client.lease_revoke(lease_id)).await
    {
        tracing::debug!("{e}");
    }
}

/// What to lease: a subnet of `network`, with value `attrs`, trying the
/// `prefer`red subnets (in order) before a random one.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRequest<'a> {
    /// The network config (SubnetMin..SubnetMax, SubnetLen).
    pub network: &'a NetworkConfig,
    /// Our lease value.
    pub attrs: &'a LeaseAttrs,
    /// Subnets to try first (subnet.env's, or the one we just lost).
    pub prefer: &'a [Ipv4Net],
}

/// Acquires a subnet lease; `table` is a recent list of `<prefix>/subnets/`
/// and is refreshed in place when a race is lost.
pub async fn acquire(
    client: &mut Client,
    settings: &AgentSettings,
    request: LeaseRequest<'_>,
    table: &mut LeaseTable,
) -> Result<OwnLease, ControlError> {
    let lease_id = grant(client, settings).await?;
    match acquire_with(client, settings, request, table, lease_id).await {
        Ok((subnet, replaced)) => Ok(OwnLease { subnet, lease_id, ttl: settings.lease_ttl, replaced }),
        Err(e) => {
            revoke(client, settings, lease_id).await;
            Err(e)
        }
    }
}

async fn acquire_with(
    client: &mut Client,
    settings: &AgentSettings,
    LeaseRequest { network, attrs, prefer }: LeaseRequest<'_>,
    table: &mut LeaseTable,
    lease_id: i64,
) -> Result<(Ipv4Net, Option<Replaced>), ControlError> {
    let keys = &Keys::new(&settings.prefix);
    let value = attrs.to_json();
    for round in 0..MAX_ROUNDS {
        if round > 0 {
            *table = list(client, settings, keys).await?;
        }
        // 1. Our own lease from a previous life: take it over in place.
        let mine = table
            .iter()
            .find(|(s, l)| {
                network.is_leasable(*s) && l.attrs.as_ref().is_some_and(|a| a.public_ip == attrs.public_ip)
            })
            .map(|(s, l)| (s, l.clone()));
        if let Some((subnet, old)) = mine {
            let key = keys.subnet(subnet);
            let cmp = Compare::mod_revision(key.clone(), CompareOp::Equal, old.mod_revision);
            if let Some(w) = put_if(client, settings, cmp, &key, value.as_str(), Some(lease_id)).await? {
                let (value, lease_id) = w.prev.unwrap_or_default();
                return Ok((subnet, Some(Replaced { key, value, lease_id, our_revision: w.revision })));
            }
            continue;
        }
        // 2 and 3. A free subnet: preferred ones first, then random.
        let mut lost = HashSet::new();
        loop {
            let free = |s: &Ipv4Net| network.is_leasable(*s) && !table.is_taken(*s) && !lost.contains(s);
            let Some(subnet) =
                prefer.iter().copied().find(free).or_else(|| random_free(network, table, &lost))
            else {
                break;
            };
            let key = keys.subnet(subnet);
            let cmp = Compare::version(key.clone(), CompareOp::Equal, 0);
            if put_if(client, settings, cmp, &key, value.as_str(), Some(lease_id)).await?.is_some() {
                return Ok((subnet, None));
            }
            tracing::debug!(%subnet, "lost the race for a subnet; trying another");
            lost.insert(subnet);
        }
        if round > 0 && lost.is_empty() {
            return Err(ControlError::OutOfSubnets {
                network: network.network,
                min: network.subnet_min,
                max: network.subnet_max,
                count: network.subnet_count(),
                prefix: settings.prefix.clone(),
            });
        }
    }
    Err(ControlError::TooManyRaces { prefix: settings.prefix.clone(), rounds: MAX_ROUNDS })
}

/// A uniformly-ish random subnet nobody holds: random probes first, then a
/// scan from a random start (so a nearly full network still finds the gap).
fn random_free(network: &NetworkConfig, table: &LeaseTable, lost: &HashSet<Ipv4Net>) -> Option<Ipv4Net> {
    let count = network.subnet_count();
    let mut rng = rand::thread_rng();
    let free = |s: &Ipv4Net| !table.is_taken(*s) && !lost.contains(s);
    for _ in 0..64 {
        let s = network.nth_subnet(rng.gen_range(0..count));
        if free(&s) {
            return Some(s);
        }
    }
    let start = rng.gen_range(0..count);
    (0..count).map(|i| network.nth_subnet((start + i) % count)).find(free)
}
