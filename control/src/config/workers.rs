//! `[workers]`: the poll-mode workers' cores and sizes.

use serde::Deserialize;

use super::ConfigError;
use super::int::Int;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkers {
    cores: Option<Vec<usize>>,
    batch: Option<Int<usize, 1, 256>>,
    frames: Option<u32>,
    pod_slots: Option<Int<usize, 1, { MAX_POD_SLOTS as i64 }>>,
    #[serde(default)]
    busy_poll: bool,
}

/// `[workers]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkersSection {
    /// `workers.cores`: core of the worker of uplink queue `i`; empty: not pinned.
    pub cores: Vec<usize>,
    /// `workers.batch`: frames per rx batch (default 64).
    pub batch: usize,
    /// `workers.frames`: UMEM frames per worker (default 4096).
    pub frames: u32,
    /// `workers.pod_slots`: pod ports the node can carry at once, spread over the workers
    /// (default [`DEFAULT_POD_SLOTS`]). Each slot reserves its ports' frames in a worker's UMEM.
    pub pod_slots: usize,
    /// `workers.busy_poll`: never block or sleep when idle (default false: adaptive waiting).
    pub busy_poll: bool,
}

/// Default `workers.pod_slots`: above kubelet's default `maxPods` (110).
pub const DEFAULT_POD_SLOTS: usize = 128;

/// Largest `workers.pod_slots`.
pub const MAX_POD_SLOTS: usize = 4096;

impl Default for WorkersSection {
    fn default() -> Self {
        WorkersSection {
            cores: Vec::new(),
            batch: 64,
            frames: 4096,
            pod_slots: DEFAULT_POD_SLOTS,
            busy_poll: false,
        }
    }
}

impl WorkersSection {
    /// The core of the worker serving uplink queue `queue`, if pinned.
    pub fn core_of(&self, queue: u32) -> Option<usize> {
        self.cores.get(queue as usize).copied()
    }

    /// Every core a worker is pinned to (control threads stay off these). Pod ports run on
    /// the workers, so these cores are theirs too.
    pub fn worker_cores(&self) -> Vec<usize> {
        self.cores.clone()
    }
}

pub(super) fn validate(raw: RawWorkers, queues: u32) -> Result<WorkersSection, ConfigError> {
    let mut out = WorkersSection { busy_poll: raw.busy_poll, ..WorkersSection::default() };
    if let Some(cores) = raw.cores {
        if cores.len() != queues as usize {
            return Err(ConfigError::key(
                "workers.cores",
                format!("lists {} cores but uplink.queues is {queues}: one core per queue", cores.len()),
            ));
        }
        for (i, &c) in cores.iter().enumerate() {
            if cores[..i].contains(&c) {
                return Err(ConfigError::key(
                    format!("workers.cores[{i}]"),
                    format!("core {c} is listed twice"),
                ));
            }
            if c >= 1024 {
                return Err(ConfigError::key(
                    format!("workers.cores[{i}]"),
                    format!("expected a CPU number below 1024, found {c}"),
                ));
            }
        }
        out.cores = cores;
    }
    if let Some(b) = raw.batch {
        out.batch = b.get();
    }
    if let Some(f) = raw.frames {
        if !(256..=1 << 20).contains(&f) || !f.is_power_of_two() {
            return Err(ConfigError::key(
                "workers.frames",
                format!("{f} must be a power of two in 256..=1048576"),
            ));
        }
        out.frames = f;
    }
    if let Some(n) = raw.pod_slots {
        out.pod_slots = n.get();
    }
    Ok(out)
}
