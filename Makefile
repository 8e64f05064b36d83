# hoard: `make run` builds and starts hoard on its defaults; `make test` runs every test.

CARGO ?= cargo

.PHONY: build run test test-deps bench fmt lint clean

build:
	$(CARGO) build --release

run: build
	./target/release/hoard serve

# Installs what the tests drive besides hoard itself (the system's tar and zstd, and
# Chromium for the browser tests) when it is missing, then runs every test.
test: test-deps
	$(CARGO) test --all-targets -- --test-threads=4

test-deps:
	./tests/setup.sh

bench: build
	./bench/run.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
