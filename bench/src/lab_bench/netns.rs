//! Threads that live in a lab namespace: the generator and the sink run as threads of
//! `weft-bench` that `setns` into a pod's network namespace (a thread's network namespace is
//! its own), optionally pinned to a core. Sockets and XDP attachments they make belong to
//! that namespace.

use std::fs::File;
use std::thread::JoinHandle;

use anyhow::Context;
use nix::sched::{CloneFlags, setns};

/// Starts `f` on a new thread named `name` inside namespace `ns` (from `/run/netns`), pinned
/// to `core` if given. The thread returns `f`'s result, or the error of entering `ns`.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    name: &str,
    core: Option<usize>,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<JoinHandle<anyhow::Result<T>>> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).with_context(|| format!("opening namespace {path}"))?;
    let ns = ns.to_owned();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering namespace {ns}"))?;
            if let Some(core) = core {
                // Not fatal: an unpinned thread still measures, only with more noise.
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    eprintln!("weft-bench: could not pin {ns} thread to core {core}");
                }
            }
            f()
        })
        .with_context(|| format!("spawning thread {name}"))
}

/// Waits for a thread from [`spawn_in`], turning a panic into an error.
pub fn join<T>(handle: JoinHandle<anyhow::Result<T>>, what: &str) -> anyhow::Result<T> {
    handle.join().map_err(|_| anyhow::anyhow!("{what} thread panicked"))?
}
