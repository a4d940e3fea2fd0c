//! Entering the pod's network namespace on the calling thread, and coming back.
//! Sockets opened inside (netlink, the ethtool ioctl's) stay bound to it after the return.

use std::fs::File;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

use crate::error::{CniError, NETNS_FAILURE};
use crate::ethtool::Ethtool;
use crate::link::Netlink;

/// The calling thread is in another netns while this lives; dropping it returns.
#[derive(Debug)]
pub struct Entered {
    home: File,
}

/// Opens a netns file (`/run/netns/x`, `/proc/<pid>/ns/net`).
pub fn open(path: &Path) -> Result<File, CniError> {
    File::open(path).map_err(|e| {
        CniError::new(NETNS_FAILURE, format!("cannot open CNI_NETNS {}", path.display()), e.to_string())
    })
}

/// Moves the calling thread into `ns` until the guard drops.
pub fn enter(ns: &File, path: &Path) -> Result<Entered, CniError> {
    let home = File::open("/proc/thread-self/ns/net")
        .map_err(|e| CniError::new(NETNS_FAILURE, "cannot open this thread's own netns", e.to_string()))?;
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
        CniError::new(
            NETNS_FAILURE,
            format!("cannot enter CNI_NETNS {} (is it a network namespace?)", path.display()),
            e.to_string(),
        )
    })?;
    Ok(Entered { home })
}

impl Drop for Entered {
    fn drop(&mut self) {
        // Returning to a namespace this thread was in cannot fail short of the kernel
        // losing it; staying behind would run later steps in the pod: stop instead.
        if let Err(e) = setns(&self.home, CloneFlags::CLONE_NEWNET) {
            eprintln!("weft-cni: cannot return to the host netns: {e}");
            std::process::abort();
        }
    }
}

/// A netlink socket and an ethtool socket bound to the netns `ns` (at `path`), for
/// configuring the pod's side from the host's thread.
pub fn sockets_in(ns: &File, path: &Path) -> Result<(Netlink, Ethtool), CniError> {
    let _inside = enter(ns, path)?;
    let ethtool = Ethtool::new().map_err(|e| {
        CniError::new(NETNS_FAILURE, "cannot open a socket in the pod's netns", e.to_string())
    })?;
    Ok((Netlink::open()?, ethtool))
}
