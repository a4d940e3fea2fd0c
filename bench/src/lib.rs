//! weft-bench's library: the netns lab ([`lab`]) that tests, the demo and the lab benchmarks
//! run in, and the kernel-flannel node agent ([`kflannel`]) that proves wire compatibility.
//! The `weft-bench` binary keeps its suites in its own modules; `weft-lab` is the lab's CLI.
#![forbid(unsafe_code)]

pub mod kflannel;
pub mod lab;
