# hydra-dashboard — build, run and test. Every target installs the tools it needs when they
# are missing (scripts/install-tools.sh) and skips what is already there.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

# The fixture writers every test and bench uses (each also reads $HYDRA_FIXTURES itself).
HYDRA_FIXTURES ?= $(shell scripts/fixtures-dir.sh)
export HYDRA_FIXTURES

BIN  := target/release/hydra-dashboard
DB   ?= checkpoints/training.db
ADDR ?= 127.0.0.1:8765
SOURCES := $(shell find src style public -type f 2>/dev/null) Cargo.toml Cargo.lock

.PHONY: build run test tools tools-test lint unit e2e bench clean

## build: one self-contained binary with the site embedded → target/release/hydra-dashboard
build: $(BIN)

$(BIN): $(SOURCES) | tools
	@# The front end first, its files precompressed; gzip's own -9 then rewrites the .gz
	@# (cargo-leptos' gzip leaves the WASM 17% bigger: 684 against 585 KB); then the server,
	@# whose `embed` bakes in the site as it is now.
	cargo leptos build --release --precompress --frontend-only
	for f in target/site/pkg/*.{wasm,js,css}; do gzip -9 -n -c "$$f" > "$$f.gz"; done
	cargo leptos build --release --precompress --server-only
	@touch $(BIN)
	@ls -lh $(BIN) | awk '{print "built " $$NF " (" $$5 ")"}'

## run: the dashboard on the HYDRA run in this directory (its database, logs or diagnostics
## files) when there is one, otherwise the live demo
run: $(BIN)
	@if [ -f "$(DB)" ] || compgen -G 'logs/training_*.log' >/dev/null \
	    || compgen -G 'checkpoints/diagnostics_*.json' >/dev/null; then \
	  exec $(BIN) serve --root . --db "$(DB)" --addr "$(ADDR)"; \
	else \
	  echo "No HYDRA run here: starting the demo (a simulated trainer writing its files in a fresh directory)."; \
	  exec $(BIN) demo --addr "$(ADDR)"; \
	fi

## test: formatting, lints for both builds, native and integration tests, then the browser tests
test: tools-test lint unit e2e

lint:
	cargo fmt --all -- --check
	cargo clippy --features ssr --all-targets -- -D warnings
	cargo clippy --lib --no-default-features --features hydrate --target wasm32-unknown-unknown -- -D warnings

unit:
	@# Test runs leave their fixture directories behind (a few GB a run); clear those of
	@# runs that ended hours ago, never those of a run going on now.
	@find "$${TMPDIR:-/tmp}" -maxdepth 1 -name 'hydra-test-*' -mmin +180 -exec rm -rf {} + 2>/dev/null || true
	@# A throwaway PostgreSQL for tests/postgres.rs, started here and stopped however the
	@# tests end.
	url=$$(scripts/pg-test-cluster.sh start); trap '$(CURDIR)/scripts/pg-test-cluster.sh stop' EXIT; \
	  HYDRA_TEST_PG="$$url" cargo test --features ssr

e2e: $(BIN)
	@# The trap runs where the recipe ends (end2end/): the script by its full path.
	url=$$(scripts/pg-test-cluster.sh start); trap '$(CURDIR)/scripts/pg-test-cluster.sh stop' EXIT; \
	  cd end2end && HYDRA_TEST_PG="$$url" npx playwright test

# Performance budgets, side by side in one run (docs/performance.md). Not part of `make test`:
# timings are for people to read, never for a test to assert.
bench: $(BIN) | tools-test
	node --experimental-websocket bench/perf.mjs 100000 1000000
	node --experimental-websocket bench/live-latency.mjs 100 30 20

tools:
	@scripts/install-tools.sh build

tools-test:
	@scripts/install-tools.sh test

clean:
	cargo clean
	rm -rf end2end/test-results end2end/artifacts end2end/.fixtures
