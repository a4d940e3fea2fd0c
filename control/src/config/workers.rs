//! `[workers]`: the poll-mode workers' cores and sizes.

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkers {
    cores: Option<Vec<usize>>,
    batch: Option<usize>,
    frames: Option<u32>,
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
    /// `workers.busy_poll`: never block or sleep when idle (default false: adaptive waiting).
    pub busy_poll: bool,
}

impl Default for WorkersSection {
    fn default() -> Self {
        WorkersSection { cores: Vec::new(), batch: 64, frames: 4096, busy_poll: false }
    }
}

impl WorkersSection {
    /// The core of the worker serving uplink queue `queue`, if pinned.
    pub fn core_of(&self, queue: u32) -> Option<usize> {
        self.cores.get(queue as usize).copied()
    }

    /// Every core a worker is pinned to (control threads stay off these). Pod ports run on
    /// the worker of queue 0, so its core is theirs too.
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
                    format!("{c} is not a CPU number"),
                ));
            }
        }
        out.cores = cores;
    }
    if let Some(b) = raw.batch {
        if !(1..=256).contains(&b) {
            return Err(ConfigError::key("workers.batch", format!("{b} is outside 1..=256")));
        }
        out.batch = b;
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
    Ok(out)
}
