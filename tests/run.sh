#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs every check.
# This is the README's test command; .ci/run calls it and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

echo "== the README's first command builds on a bare machine (no pkg-config, no -dev packages)"
PKG_CONFIG=/bin/false cargo build --release --bin ferroccid
target/release/ferroccid demo > target/demo-bare.txt
tail -3 target/demo-bare.txt

bash tests/scripts/install-deps.sh

# Every optional feature the tests need: the rusb backend, the card layer's
# and the CLI's PC/SC channel, and simulated readers inside the pcscd bundle
# (the distributed bundle has none: see tests/scripts/bundle-size.sh).
FEATURES="ferroccid/rusb,ferroccid-card/pcsc,ferroccid-cli/rusb,ferroccid-cli/pcsc,ferroccid-ifd/sim"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (default features, and with the rusb backend)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features "$FEATURES" -- -D warnings
echo "== cargo doc: no broken or private intra-doc links"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --features "$FEATURES"

echo "== the protocol core links into a no_std, allocator-free staticlib"
cargo build --manifest-path protocols/nostd-check/Cargo.toml

echo "== build the binaries and the cdylib the pcscd tests load (cargo test does not)"
cargo build --workspace --features "$FEATURES"

status=0
echo "== the Debian package: build it, lint it (cli/tests/vm_package.rs installs it in the guest)"
if bash tests/scripts/deb.sh > target/deb-build.txt 2>&1; then
  echo "deb-build: 1 passed, 0 failed" > target/test-output-deb.txt
else
  cat target/deb-build.txt
  echo "deb-build: 0 passed, 1 failed" > target/test-output-deb.txt
  status=1
fi
grep -E '^[EWI]: |\.deb$' target/deb-build.txt || true

echo "== cargo test (all features)"
cargo test --workspace --features "$FEATURES" --no-fail-fast 2>&1 | tee target/test-output.txt || status=1
cat target/test-output-deb.txt >> target/test-output.txt

echo "== the Debian package installed, used, switched to libccid and back, removed, purged"
bash tests/scripts/deb-test.sh 2>&1 | tee -a target/test-output.txt || status=1

echo "== no import loop between modules inside a crate"
python3 tests/scripts/module-loops.py 2>&1 | tee -a target/test-output.txt || status=1

echo "== loom: model-check the receive dispatch (permits, receive turn, mailboxes)"
bash tests/scripts/loom.sh 2>&1 | tee -a target/test-output.txt || status=1

echo "== fuzz every target briefly"
if bash tests/scripts/fuzz.sh; then
  echo "fuzz: 1 passed, 0 failed" >> target/test-output.txt
else
  echo "fuzz: 0 passed, 1 failed" >> target/test-output.txt
  status=1
fi

echo "== the distributable pcscd bundle: what it holds and its size"
if ! bash tests/scripts/bundle-size.sh 2>&1 | tee -a target/test-output.txt; then
  status=1
fi

echo "== benches run (smoke mode: tiny rounds, answers checked, no timing asserted)"
if ! bash tests/scripts/bench.sh >> target/test-output.txt; then
  status=1
fi
tail -1 target/test-output.txt

bash tests/scripts/summarize.sh target/test-output.txt || status=1
exit $status
