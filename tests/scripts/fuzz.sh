#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for FUZZ_SECONDS seconds each
# (default 5), starting from the committed seeds in fuzz/seeds/<target>/.
# All targets are built once first (one cargo invocation), then each
# binary is run directly, so the total is about targets x FUZZ_SECONDS
# plus the build. FUZZ_TARGETS="a b" restricts the run to some targets.
# New inputs go to fuzz/corpus/<target>/ (gitignored). Any crash, panic,
# failed invariant or hang (libFuzzer -timeout) fails the script; the
# reproducer is left in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS="${FUZZ_SECONDS:-5}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
# cargo-fuzz needs nightly-only flags (sanitizers); the stable toolchain
# accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
if [ -z "$targets" ]; then
    echo "FUZZ FAILURE: cargo fuzz list found no targets" >&2
    exit 1
fi

echo "== building every fuzz target"
cargo fuzz build
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="target/$triple/release"

started=$SECONDS
failed=()
for target in $targets; do
    if [ ! -d "seeds/$target" ]; then
        echo "FUZZ FAILURE: no seed corpus fuzz/seeds/$target" >&2
        failed+=("$target (no seeds)")
        continue
    fi
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== fuzz $target for ${FUZZ_SECONDS}s"
    if ! "$bin_dir/$target" "corpus/$target" "seeds/$target" \
        -artifact_prefix="artifacts/$target/" -max_total_time="$FUZZ_SECONDS" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "FUZZ FAILURE: $target (reproducer in fuzz/artifacts/$target/)" >&2
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "FUZZ FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "== fuzz: all targets ran ${FUZZ_SECONDS}s without a failure ($((SECONDS - started))s): $(echo $targets)"
