//! Setup errors of ports and the XDP filter: each names the interface, the step
//! and, for privilege problems, what is missing and how to grant it.

use std::io;

/// Why a port or XDP program could not be set up. `Display` is one line meant
/// for operators: it names the interface/queue, the step that failed and, where
/// the cause is a missing privilege or feature, how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The interface does not exist (in this network namespace).
    #[error("{what} on {ifname}: no such interface (check the name and the network namespace)")]
    NoSuchInterface {
        /// The step, e.g. "AF_XDP socket".
        what: &'static str,
        /// Interface name as configured.
        ifname: String,
    },
    /// The kernel refused for lack of a capability or locked-memory budget.
    #[error("{what} on {ifname}: permission denied: needs {needs} (run as root or grant with setcap)")]
    Permission {
        /// The step, e.g. "AF_XDP socket queue 0".
        what: String,
        /// Interface name.
        ifname: String,
        /// The capabilities or limit that is missing.
        needs: &'static str,
    },
    /// The kernel or driver lacks a feature (XDP, AF_XDP, TPACKET_V3, ...).
    #[error("{what} on {ifname}: not supported by this kernel or driver: {detail}")]
    Unsupported {
        /// The step.
        what: String,
        /// Interface name.
        ifname: String,
        /// What is missing and what to use instead.
        detail: String,
    },
    /// Locked memory exhausted while registering UMEM or creating rings.
    #[error(
        "{what} on {ifname}: out of locked memory: raise RLIMIT_MEMLOCK (ulimit -l unlimited) or grant CAP_IPC_LOCK"
    )]
    Memlock {
        /// The step.
        what: String,
        /// Interface name.
        ifname: String,
    },
    /// Any other system call failure, with the step that made it.
    #[error("{what} on {ifname}: {source}")]
    Io {
        /// The step, e.g. "mmap rx ring".
        what: String,
        /// Interface name.
        ifname: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Invalid configuration (sizes, queue numbers, prefixes).
    #[error("invalid port configuration: {0}")]
    Config(String),
    /// Loading or attaching the XDP program failed.
    #[error("XDP program {program} on {ifname}: {detail}")]
    Xdp {
        /// Program name in bpf/weft_filter.c.
        program: &'static str,
        /// Interface name.
        ifname: String,
        /// What went wrong, and how to fix it when known.
        detail: String,
    },
}

impl PortError {
    /// Maps an OS error of `what` on `ifname` to the most helpful variant:
    /// EPERM/EACCES become [`PortError::Permission`] naming `needs`, ENODEV
    /// [`PortError::NoSuchInterface`], ENOMEM/ENOBUFS on memory steps
    /// [`PortError::Memlock`], EOPNOTSUPP/EAFNOSUPPORT [`PortError::Unsupported`].
    pub(crate) fn from_os(
        what: impl Into<String>,
        ifname: &str,
        needs: &'static str,
        source: io::Error,
    ) -> Self {
        let what = what.into();
        let ifname = ifname.to_owned();
        match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => PortError::Permission { what, ifname, needs },
            Some(libc::ENODEV) => PortError::NoSuchInterface { what: "interface", ifname },
            Some(libc::ENOMEM | libc::ENOBUFS) => PortError::Memlock { what, ifname },
            Some(libc::EOPNOTSUPP | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT) => {
                PortError::Unsupported { what, ifname, detail: source.to_string() }
            }
            _ => PortError::Io { what, ifname, source },
        }
    }
}

/// Capabilities an AF_XDP socket needs.
pub(crate) const NEEDS_AF_XDP: &str = "CAP_NET_RAW";
/// Capabilities attaching an XDP program needs.
pub(crate) const NEEDS_XDP: &str = "CAP_NET_ADMIN and CAP_BPF";
/// Capabilities an AF_PACKET socket needs.
pub(crate) const NEEDS_AF_PACKET: &str = "CAP_NET_RAW";
