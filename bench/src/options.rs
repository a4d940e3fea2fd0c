//! The `--flag value` options every suite takes: one parser, so every suite answers
//! `--help`, a missing value and an unparsable value the same way.

use std::str::FromStr;

use anyhow::{Context, bail};

/// Splits `args` into `(flag, value)` pairs. `-h`/`--help` prints `usage` and exits 0.
pub fn pairs<'a>(args: &'a [String], usage: &str) -> anyhow::Result<Vec<(&'a str, &'a str)>> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{usage}");
            std::process::exit(0);
        }
        if !flag.starts_with("--") {
            bail!("unexpected argument {flag:?}\n{usage}");
        }
        let value = it.next().with_context(|| format!("{flag} needs a value\n{usage}"))?;
        out.push((flag.as_str(), value.as_str()));
    }
    Ok(out)
}

/// Parses `value` of `flag`, naming both on failure.
pub fn value<T: FromStr>(flag: &str, value: &str, usage: &str) -> anyhow::Result<T> {
    value.parse().ok().with_context(|| format!("{flag}: cannot parse {value:?}\n{usage}"))
}

/// Parses a comma-separated list value of `flag`.
pub fn list<T: FromStr>(flag: &str, value: &str, usage: &str) -> anyhow::Result<Vec<T>> {
    value.split(',').map(|v| self::value(flag, v, usage)).collect()
}

/// Writes `value` as pretty JSON to `path` (the `--json FILE` every suite takes).
pub fn write_json<T: serde::Serialize>(path: &std::path::Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("--json: cannot write {}", path.display()))
}
