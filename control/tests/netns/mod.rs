//! Network namespaces for the daemon tests: per-run `wd` names, Drop
//! teardown (also on panic), code run inside a namespace, loud skips.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

pub mod daemon;

use std::time::{Duration, Instant};

pub use weft_testnet::{Netns, root_or_skip, run, veth_between};

/// A fresh name stem with the daemon tests' `wd` prefix (leaves room for a role letter).
pub fn unique_stem() -> String {
    weft_testnet::unique_stem("wd")
}

/// Pings `to` from `ns` until one reply comes back or `within` passes.
pub fn ping_until(ns: &Netns, to: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ns.exec(&["ping", "-c", "1", "-W", "1", to]).is_ok() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}
