//! `weft-bench`: weft's benchmark suite.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("weft-bench: no suites yet; run `cargo bench -p weft-encap` for the encap micro-benchmarks");
    std::process::exit(2);
}
