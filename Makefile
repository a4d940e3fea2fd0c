# weft — every entry point an operator or developer needs.
# `make demo` and `make test` install what they need themselves (scripts/setup.sh).

CARGO ?= cargo
FUZZ_SECONDS ?= 60

.PHONY: all setup build test lint demo bench fuzz fixtures lab-up lab-down clean

all: build

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --workspace --release

test: setup
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The daemon and the lab do not exist yet (issue 7); until then the demo shows
# what does: the encap crate's packet-rate micro-benchmarks.
demo: setup
	@echo "weft demo: the daemon and lab are not built yet (issue 7); running the encap micro-benchmarks instead"
	$(CARGO) bench -p weft-encap --bench encap -- --warm-up-time 1 --measurement-time 2

bench: setup
	$(CARGO) bench -p weft-encap --bench encap

fuzz:
	@scripts/setup.sh fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# Regenerates the golden frames under encap/tests/golden/ with scapy.
fixtures:
	@scripts/setup.sh fixtures
	/usr/bin/python3 encap/tests/golden/make_golden.py encap/tests/golden

lab-up lab-down:
	@echo "make $@: the netns lab is issue 7 and not built yet" >&2; exit 2

clean:
	$(CARGO) clean
