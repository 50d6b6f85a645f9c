# StacyVM: the two commands of the README.
#   make serve  — install what is needed, build, and run the server on the embedded defaults
#   make test   — run the whole test suite (what CI runs)

CARGO ?= cargo
PORT ?= 7423

.PHONY: serve test build setup lint fmt openapi bench bench-oci

setup:
	scripts/setup.sh

build: setup
	$(CARGO) build --release --locked -p stacyvm

serve: build
	@echo "make serve: using the mock provider (no isolation) until the oci provider lands; override with STACYVM_PROVIDERS_DEFAULT"
	STACYVM_PROVIDERS_DEFAULT=$${STACYVM_PROVIDERS_DEFAULT:-mock} STACYVM_SERVER_PORT=$(PORT) ./target/release/stacyvm serve

test:
	scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

openapi:
	STACYVM_UPDATE_OPENAPI=1 $(CARGO) test -p stacyvm-server --test openapi

bench:
	scripts/bench.sh

bench-oci:
	BENCH_PROVIDER=oci scripts/bench.sh --density 1000
