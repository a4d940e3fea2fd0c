#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 60) each, seeding the
# corpora from the golden frames. Fails if any target finds a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-60}
# cargo fuzz needs nightly flags; use a nightly toolchain if rustup has one, else
# let stable accept them.
if rustup run nightly rustc --version >/dev/null 2>&1; then toolchain=(+nightly); else toolchain=(); export RUSTC_BOOTSTRAP=1; fi

targets=$(cargo "${toolchain[@]}" fuzz list)
for t in $targets; do
  mkdir -p "corpus/$t"
  /usr/bin/python3 - "corpus/$t" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
for f in json.load(open("../encap/tests/golden/golden.json"))["fixtures"]:
    for key in ("frame", "inner", "original", "before"):
        if key in f:
            (out / f"golden-{f['name']}-{key}").write_bytes(bytes.fromhex(f[key]))
PY
  echo "fuzz: $t for ${seconds}s"
  cargo "${toolchain[@]}" fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -max_len=4096 2>&1 | tail -n 3
done
echo "fuzz: every target ran ${seconds}s without a crash"
