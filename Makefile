# weft — every entry point an operator or developer needs.
# `make demo` and `make test` install what they need themselves (scripts/setup.sh).

CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: all setup build install test lint fuzz-build demo bench fuzz fixtures lab-up lab-down clean

all: build

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --workspace --release

# Installs the node agent and the CNI plugin (the plugin where runtimes look for CNI plugins).
PREFIX ?= /usr/local
CNI_BIN_DIR ?= /opt/cni/bin

install: build
	install -D -m 0755 target/release/weft $(DESTDIR)$(PREFIX)/bin/weft
	install -D -m 0755 target/release/weft-cni $(DESTDIR)$(CNI_BIN_DIR)/weft-cni

test: setup
	$(CARGO) test --workspace --no-fail-fast

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The main job: a 3-node netns lab (etcd, a kernel-flannel node, two weft nodes), pods pinging
# and moving TCP data across nodes, `weft status`, teardown. Needs root.
demo: setup
	$(CARGO) build --release -p weft-control -p weft-bench
	scripts/demo.sh

# Every benchmark: the encap micro-benchmarks (criterion), then `weft-bench all` runs each suite
# with a progress line and writes bench/results/REPORT.md, SVG plots and results.json (raw
# figures + machine description). About 15 minutes on a 2-core box; how to read: bench/README.md.
BENCH_OUT ?= bench/results

bench:
	@scripts/setup.sh bench
	$(CARGO) bench -p weft-encap --bench encap -- --warm-up-time 1 --measurement-time 3
	$(CARGO) build --release -p weft-bench -p weft-control
	target/release/weft-bench all --out $(BENCH_OUT) --criterion target/criterion

# Compiles every fuzz target (fuzz/ is its own workspace) without running it, so the targets
# keep up with the crates they drive; `make fuzz` runs them.
fuzz-build: setup
	$(CARGO) build --manifest-path fuzz/Cargo.toml --bins

fuzz:
	@scripts/setup.sh fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# Regenerates the golden frames under encap/tests/golden/ with scapy.
fixtures:
	@scripts/setup.sh fixtures
	/usr/bin/python3 encap/tests/golden/make_golden.py encap/tests/golden

# The netns lab (bench/src/lab): LAB_PREFIX names every namespace; LAB_ARGS adds options
# (e.g. LAB_ARGS="--nodes 3 --backend host-gw"; `weft-lab --help`). Needs root.
LAB_PREFIX ?= wlab
LAB_ARGS ?=

lab-up: setup
	$(CARGO) build --release -p weft-bench --bin weft-lab
	target/release/weft-lab up --prefix $(LAB_PREFIX) $(LAB_ARGS)

lab-down:
	$(CARGO) build --release -p weft-bench --bin weft-lab
	target/release/weft-lab down --prefix $(LAB_PREFIX)

clean:
	$(CARGO) clean
