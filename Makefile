# The two commands a newcomer needs: `make run` (the REPL on the embedded default)
# and `make test` (every test). Both install the system packages the build needs.
CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(HOME)/.cache/eddy/target

.PHONY: deps run test build release eddy-release bench

# RocksDB: the test builds link Debian's librocksdb-dev (dynamically, with its Snappy); the
# release builds compile the bundled RocksDB with NDEBUG (g++; see Cargo.toml). Its Rust
# bindings run bindgen, which needs libclang.
SYSTEM_ROCKSDB = ROCKSDB_LIB_DIR=/usr/lib/x86_64-linux-gnu ROCKSDB_INCLUDE_DIR=/usr/include SNAPPY_LIB_DIR=/usr/lib/x86_64-linux-gnu

deps:
	@if ! dpkg -s libclang-dev librocksdb-dev libsnappy-dev g++ >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libclang-dev librocksdb-dev libsnappy-dev g++; \
	fi

build: deps
	$(SYSTEM_ROCKSDB) $(CARGO) build -p eddy

# Every binary (eddy, qtt, the Nexmark and bench drivers) in one invocation. Each package alone
# resolves the same features too (workspace-hack/, checked by .ci/check-features), so building
# them one by one after `make run` does not rebuild DataFusion either.
release: deps
	$(CARGO) build --release --workspace --bins

eddy-release: deps
	$(CARGO) build --release -p eddy --bin eddy

run: eddy-release
	$(CARGO_TARGET_DIR)/release/eddy $(ARGS)

test: deps
	$(SYSTEM_ROCKSDB) $(CARGO) test --workspace

bench: deps
	$(CARGO) bench -p eddy-benches
