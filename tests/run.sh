#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs every check.
# This is the README's test command; .ci/run calls it and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== no_std build of the protocol core"
cargo build -p ferroccid-protocols --no-default-features
echo "== cargo test"
cargo test --workspace 2>&1 | tee target/test-output.txt
bash tests/scripts/summarize.sh target/test-output.txt
