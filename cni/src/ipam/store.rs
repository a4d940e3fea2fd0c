//! Allocation from the node subnet without an IPAM plugin: one file per address under
//! `<dataDir>/<network>/ips/`, holding its owner (`container id`, `ifname`), changed only
//! under an exclusive `flock` on `<dataDir>/<network>/lock`, so concurrent ADDs and DELs
//! (separate processes) never hand out one address twice. The layout follows host-local's
//! disk store; allocation continues after the last address handed out.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{CniError, POOL_EXHAUSTED, STATE_FAILURE};

/// The store of one network.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Who holds an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
}

impl Owner {
    fn render(&self) -> String {
        format!("{}\n{}\n", self.container_id, self.ifname)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        Some(Owner { container_id: lines.next()?.to_owned(), ifname: lines.next()?.to_owned() })
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> CniError {
    move |e| CniError::new(STATE_FAILURE, what, e.to_string())
}

impl Store {
    /// The store of network `name` under `data_dir` (created on first use).
    pub fn new(data_dir: &Path, name: &str) -> Self {
        Store { dir: data_dir.join(name) }
    }

    fn ips(&self) -> PathBuf {
        self.dir.join("ips")
    }

    /// Takes the store's lock (blocks while another invocation holds it).
    fn lock(&self) -> Result<Flock<File>, CniError> {
        std::fs::create_dir_all(self.ips()).map_err(io(format!("creating {}", self.ips().display())))?;
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| {
            CniError::new(STATE_FAILURE, format!("locking {}", path.display()), e.to_string())
        })
    }

    /// Every allocation: address and owner.
    fn entries(&self) -> Result<Vec<(Ipv4Addr, Owner)>, CniError> {
        let dir = self.ips();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(format!("listing {}", dir.display())))? {
            let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
            let Some(ip) = entry.file_name().to_str().and_then(|n| n.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if let Some(owner) = Owner::parse(&text) {
                out.push((ip, owner));
            }
        }
        Ok(out)
    }

    /// The address `owner` holds, or a free one from `subnet` (never its network, broadcast
    /// or `gateway` address), recorded before the lock is released.
    pub fn allocate(&self, subnet: Ipv4Net, gateway: Ipv4Addr, owner: &Owner) -> Result<Ipv4Addr, CniError> {
        let _lock = self.lock()?;
        let entries = self.entries()?;
        if let Some((ip, _)) = entries.iter().find(|(_, o)| o == owner) {
            return Ok(*ip);
        }
        let first = u32::from(subnet.network()) + 1;
        let last = u32::from(subnet.broadcast()).saturating_sub(1);
        let last_path = self.dir.join("last_reserved");
        let after = std::fs::read_to_string(&last_path)
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|a| (first..=last).contains(a))
            .unwrap_or(last);
        let size = last.saturating_sub(first) + 1;
        let taken: std::collections::HashSet<u32> = entries.iter().map(|(ip, _)| u32::from(*ip)).collect();
        for step in 1..=size {
            let candidate = first + (after - first + step) % size;
            if candidate == u32::from(gateway) || taken.contains(&candidate) {
                continue;
            }
            let ip = Ipv4Addr::from(candidate);
            let path = self.ips().join(ip.to_string());
            std::fs::write(&path, owner.render()).map_err(io(format!("writing {}", path.display())))?;
            std::fs::write(&last_path, ip.to_string())
                .map_err(io(format!("writing {}", last_path.display())))?;
            return Ok(ip);
        }
        Err(CniError::new(
            POOL_EXHAUSTED,
            format!("no free address left in the node subnet {subnet}"),
            format!("{} addresses allocated under {}", entries.len(), self.ips().display()),
        ))
    }

    /// Releases what `owner` holds (idempotent); returns the address it had.
    pub fn release(&self, owner: &Owner) -> Result<Option<Ipv4Addr>, CniError> {
        let _lock = self.lock()?;
        let mut released = None;
        for (ip, o) in self.entries()? {
            if &o == owner {
                let path = self.ips().join(ip.to_string());
                std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
                released = Some(ip);
            }
        }
        Ok(released)
    }

    /// The address `owner` holds.
    pub fn held_by(&self, owner: &Owner) -> Result<Option<Ipv4Addr>, CniError> {
        let _lock = self.lock()?;
        Ok(self.entries()?.into_iter().find(|(_, o)| o == owner).map(|(ip, _)| ip))
    }

    /// Releases every allocation whose owner `keep` rejects; returns the owners released.
    pub fn release_unless(&self, keep: impl Fn(&Owner) -> bool) -> Result<Vec<Owner>, CniError> {
        let _lock = self.lock()?;
        let mut released = Vec::new();
        for (ip, o) in self.entries()? {
            if !keep(&o) {
                let path = self.ips().join(ip.to_string());
                std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
                released.push(o);
            }
        }
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: &str) -> Owner {
        Owner { container_id: id.into(), ifname: "eth0".into() }
    }

    #[test]
    fn addresses_skip_the_gateway_are_kept_per_owner_and_come_back_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path(), "weft");
        let net: Ipv4Net = "198.19.1.0/29".parse().unwrap();
        let gw = Ipv4Addr::new(198, 19, 1, 1);
        let a = s.allocate(net, gw, &owner("a")).unwrap();
        assert_eq!(a, Ipv4Addr::new(198, 19, 1, 2));
        assert_eq!(s.allocate(net, gw, &owner("a")).unwrap(), a, "the same owner keeps its address");
        let all: Vec<_> =
            ["b", "c", "d", "e"].iter().map(|o| s.allocate(net, gw, &owner(o)).unwrap()).collect();
        assert_eq!(all.last(), Some(&Ipv4Addr::new(198, 19, 1, 6)));
        assert_eq!(s.allocate(net, gw, &owner("f")).unwrap_err().code, POOL_EXHAUSTED);
        assert_eq!(s.release(&owner("c")).unwrap(), Some(Ipv4Addr::new(198, 19, 1, 4)));
        assert_eq!(s.release(&owner("c")).unwrap(), None, "release is idempotent");
        assert_eq!(s.allocate(net, gw, &owner("f")).unwrap(), Ipv4Addr::new(198, 19, 1, 4));
        assert_eq!(s.held_by(&owner("f")).unwrap(), Some(Ipv4Addr::new(198, 19, 1, 4)));
        let gone = s.release_unless(|o| o.container_id == "a").unwrap();
        assert_eq!(gone.len(), 4);
        assert_eq!(s.held_by(&owner("a")).unwrap(), Some(a));
    }

    #[test]
    fn concurrent_allocations_from_many_threads_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let net: Ipv4Net = "198.19.1.0/24".parse().unwrap();
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let s = Store::new(dir.path(), "weft");
                std::thread::spawn(move || {
                    s.allocate(net, Ipv4Addr::new(198, 19, 1, 1), &owner(&format!("c{i}")))
                })
            })
            .collect();
        let mut ips: Vec<Ipv4Addr> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 16);
    }
}
