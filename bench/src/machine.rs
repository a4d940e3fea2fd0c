//! The machine a benchmark ran on, as the report describes it.

use serde::{Deserialize, Serialize};

/// What the report says about the machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `cpu MHz` of /proc/cpuinfo (the first CPU's).
    pub cpu_mhz: Option<f64>,
    /// `MemTotal` in MiB.
    pub memory_mib: Option<u64>,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` of /etc/os-release.
    pub os: String,
    /// Transparent huge pages mode.
    pub thp: String,
    /// 1/5/15-minute load averages when this was taken.
    pub load: [f64; 3],
}

fn cpuinfo_field(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// The first CPU's `cpu MHz`.
pub fn cpu_mhz() -> Option<f64> {
    cpuinfo_field("cpu MHz")?.parse().ok()
}

/// The 1/5/15-minute load averages (zeros if /proc/loadavg cannot be read).
pub fn load() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [it.next().unwrap_or(0.0), it.next().unwrap_or(0.0), it.next().unwrap_or(0.0)]
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_else(|_| "?".into())
}

impl Machine {
    /// Describes this machine now.
    pub fn describe() -> Machine {
        let memory_mib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb / 1024)
        });
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_owned())
            })
            .unwrap_or_else(|| "?".into());
        Machine {
            cpu: cpuinfo_field("model name").unwrap_or_else(|| "?".into()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_mhz: cpu_mhz(),
            memory_mib,
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            os,
            thp: read_trimmed("/sys/kernel/mm/transparent_hugepage/enabled"),
            load: load(),
        }
    }

    /// One markdown paragraph.
    pub fn markdown(&self) -> String {
        format!(
            "{} ({} CPUs{}), {} MiB RAM, {}, Linux {}, THP {}; load average {:.2} / {:.2} / {:.2} (1/5/15 min)",
            self.cpu,
            self.cpus,
            self.cpu_mhz.map_or(String::new(), |m| format!(" at {m:.0} MHz")),
            self.memory_mib.map_or("?".into(), |m| m.to_string()),
            self.os,
            self.kernel,
            self.thp,
            self.load[0],
            self.load[1],
            self.load[2],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_is_described_from_proc() {
        let m = Machine::describe();
        assert!(m.cpus >= 1);
        assert_ne!(m.kernel, "?", "/proc/sys/kernel/osrelease is readable on Linux");
        assert!(m.markdown().contains(&m.kernel));
    }
}
