# hoard: `make run` builds and starts hoard on its defaults; `make test` runs every test.

CARGO ?= cargo

.PHONY: build run test test-deps test-ui bench fmt lint clean

build:
	$(CARGO) build --release

run: build
	./target/release/hoard serve

# Installs what the tests drive besides hoard itself (the system's tar and zstd, and
# Chromium for the browser tests) when it is missing, then runs every test: the Rust
# integration tests against real hoard processes, then the browser suite.
test: test-deps
	$(CARGO) test --all-targets -- --test-threads=4
	HOARD_BIN=$(CURDIR)/target/debug/hoard ./tests/ui/run.sh

test-deps:
	./tests/setup.sh

# The browser UI's end-to-end tests (Node's test runner, playwright-core, Debian's Chromium)
# against the debug build; tests/ui/run.sh installs Chromium and the npm packages if needed.
test-ui:
	$(CARGO) build
	HOARD_BIN=$(CURDIR)/target/debug/hoard ./tests/ui/run.sh

bench: build
	./bench/run.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
