//! `weft-bench`: weft's benchmark suite. `weft-bench <suite> [args]`.
#![forbid(unsafe_code)]

mod control;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("control") => control::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: weft-bench <suite> [args]\nsuites: control (etcd lease sync and convergence)\nrun `cargo bench -p weft-encap` for the encap micro-benchmarks"
            );
            std::process::exit(2);
        }
    }
}
