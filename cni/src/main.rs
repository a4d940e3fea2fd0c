//! `weft-cni`: see the crate docs. Exit 0 with the result on stdout, or 1 with the spec's
//! error JSON on stdout.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use weft_cni::env::{CniEnv, Command};

fn main() -> ExitCode {
    let env = CniEnv::from_process();
    // VERSION may come without a configuration; every other command reads it whole.
    let mut stdin = Vec::new();
    let version = matches!(env, Ok(CniEnv { command: Command::Version, .. }));
    if !(version && std::io::stdin().is_terminal()) {
        let _ = std::io::stdin().read_to_end(&mut stdin);
    }
    let (out, ok) = weft_cni::run(env, &stdin);
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
