//! `weft`: the node daemon and its operator commands.
#![forbid(unsafe_code)]

fn main() {
    eprintln!("weft: the daemon is not built yet (see the open issues); nothing to run");
    std::process::exit(2);
}
