#!/usr/bin/env bash
# Model-checks the receive dispatch (src/reader/link.rs: busy-slot
# permits, receive turn, mailboxes, parked followers) with loom: every
# interleaving of two slots' commands up to a preemption bound of 3.
# A separate target directory keeps the --cfg build apart from the normal one.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUSTFLAGS="--cfg ferroccid_loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release -p ferroccid --lib --no-default-features loom_tests -- --test-threads=1
