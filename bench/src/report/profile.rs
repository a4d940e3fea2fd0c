//! "Where the time goes": for every core path that misses its goal, `perf record` of the
//! pipeline alone (`weft-bench core --paths P --floor false`) and the hottest symbols. Only
//! when `perf` is installed and allowed (root, or `kernel.perf_event_paranoid` ≤ 1); the report
//! says so when it is not.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// One hot symbol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hotspot {
    /// Share of the samples, percent.
    pub percent: f64,
    /// `[.]` user or `[k]` kernel, then the symbol.
    pub symbol: String,
}

/// The profile of one path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathProfile {
    /// The core path.
    pub path: String,
    /// What was profiled.
    pub command: String,
    /// Symbols with at least 1.5 % of the samples, hottest first.
    pub hotspots: Vec<Hotspot>,
}

/// Parses `perf report --stdio --sort symbol -q -g none` lines: `  22.48%  [.] symbol  …`.
pub fn parse_report(text: &str) -> Vec<Hotspot> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (pct, rest) = line.split_once('%')?;
            let percent: f64 = pct.trim().parse().ok()?;
            let rest = rest.trim();
            // Trailing columns perf pads with (`-      -`).
            let symbol = rest.trim_end_matches(|c: char| c == '-' || c.is_whitespace()).to_owned();
            (!symbol.is_empty()).then_some(Hotspot { percent, symbol })
        })
        .collect()
}

/// Whether `perf` can be run here; `Err` says why not.
pub fn available() -> Result<(), String> {
    match Command::new("perf").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("perf is not installed (Debian: apt-get install linux-perf)".into()),
    }
}

/// Profiles `weft-bench core` on `path` for `secs` with `core_args` (routes, flows).
pub fn profile_core(
    exe: &Path,
    path: &str,
    secs: f64,
    core_args: &[&str],
    dir: &Path,
) -> anyhow::Result<PathProfile> {
    use anyhow::{Context, bail};
    let data = dir.join(format!("perf-{path}.data"));
    let mut args: Vec<String> =
        ["core", "--paths", path, "--secs", &secs.to_string(), "--floor", "false"].map(String::from).to_vec();
    args.extend(core_args.iter().map(|s| s.to_string()));
    let command = format!("perf record -F 1999 -g -D -1 --control fifo:CTL -- weft-bench {}", args.join(" "));
    // Events start disabled; the suite enables them through this FIFO when its timed loop
    // starts, so the FIB build and frame setup stay out of the profile.
    let ctl = dir.join(format!("perf-{path}.ctl"));
    let _ = std::fs::remove_file(&ctl);
    let made = Command::new("mkfifo").arg(&ctl).status().context("cannot run mkfifo")?;
    if !made.success() {
        bail!("mkfifo {} failed", ctl.display());
    }
    let rec = Command::new("perf")
        .args(["record", "-F", "1999", "-g", "-q", "-D", "-1", "--control"])
        .arg(format!("fifo:{}", ctl.display()))
        .arg("-o")
        .arg(&data)
        .arg("--")
        .arg(exe)
        .args(&args)
        .env("WEFT_BENCH_PERF_CTL", &ctl)
        .output()
        .context("cannot run perf record")?;
    let _ = std::fs::remove_file(&ctl);
    if !rec.status.success() {
        bail!("perf record failed: {}", String::from_utf8_lossy(&rec.stderr).trim());
    }
    let rep = Command::new("perf")
        .args([
            "report",
            "--no-children",
            "--stdio",
            "--sort",
            "symbol",
            "-q",
            "-g",
            "none",
            "--percent-limit",
            "1.5",
            "-i",
        ])
        .arg(&data)
        .output()
        .context("cannot run perf report")?;
    let _ = std::fs::remove_file(&data);
    if !rep.status.success() {
        bail!("perf report failed: {}", String::from_utf8_lossy(&rep.stderr).trim());
    }
    Ok(PathProfile {
        path: path.into(),
        command,
        hotspots: parse_report(&String::from_utf8_lossy(&rep.stdout)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_report_lines_become_hotspots() {
        let text = "\n    22.48%  [.] <weft_engine::pipeline::Pipeline as weft_engine::worker::processor::FrameProcessor>::process_batch        -      -            \n     7.17%  [k] clear_page_erms     -      -  \n\n# comment\n";
        let h = parse_report(text);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].percent, 22.48);
        assert_eq!(
            h[0].symbol,
            "[.] <weft_engine::pipeline::Pipeline as weft_engine::worker::processor::FrameProcessor>::process_batch"
        );
        assert_eq!(h[1].symbol, "[k] clear_page_erms");
    }
}
