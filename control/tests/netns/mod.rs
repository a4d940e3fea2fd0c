//! Network namespaces for the daemon tests: per-run `wd` names, Drop
//! teardown (also on panic), code run inside a namespace, loud skips.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

pub mod daemon;

pub use weft_testnet::{Netns, root_or_skip, run, veth_between};

/// A fresh name stem with the daemon tests' `wd` prefix (leaves room for a role letter).
pub fn unique_stem() -> String {
    weft_testnet::unique_stem("wd")
}
