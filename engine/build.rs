//! Compiles the XDP programs in `bpf/` with clang into `$OUT_DIR`, where
//! `src/port/xdp_filter.rs` embeds them with `include_bytes!`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = "bpf/weft_filter.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    // <asm/types.h> lives under the multiarch include dir on Debian.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let obj = out.join("weft_filter.o");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&obj)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            panic!("{clang} failed to compile {src} ({s}); install clang and libbpf-dev (scripts/setup.sh)")
        }
        Err(e) => {
            panic!("cannot run {clang} to compile {src}: {e}; install clang (scripts/setup.sh)")
        }
    }
}
