#!/usr/bin/env bash
# The long fuzz campaign, run by hand outside CI (CI runs the short
# tests/scripts/fuzz.sh). Each cargo-fuzz target of fuzz/ (or those in
# FUZZ_TARGETS="a b") runs until CAMPAIGN_RUNS executions (default 10
# million) or CAMPAIGN_SECONDS seconds (default 3600), whichever comes
# first, one target after the other, with -timeout=CAMPAIGN_TIMEOUT (default
# 10: an input running longer is a find, as a crash is). CAMPAIGN_ARGS
# adds libFuzzer flags (e.g. "-max_len=512"; a later flag wins).
#
#   bash tests/scripts/fuzz-campaign.sh                        # every target, ~hours
#   FUZZ_TARGETS="t1_engine t0_tpdu" bash tests/scripts/fuzz-campaign.sh
#   CAMPAIGN_RUNS=20000 FUZZ_TARGETS=atr bash tests/scripts/fuzz-campaign.sh  # a smoke test
#
# The corpus grows in fuzz/corpus/<target>/ (gitignored), starting from the
# committed seeds in fuzz/seeds/<target>/; reproducers go to
# fuzz/artifacts/<target>/ (gitignored). A target that finds something does
# not stop the campaign: the next target runs, and the script exits 1 at the
# end. Each target's libFuzzer output is kept in target/fuzz-campaign/; the
# summary table is written to target/fuzz-campaign.md: target, executions
# (libFuzzer's -print_final_stats=1), wall seconds, exec/s (their ratio),
# coverage (the edge count of libFuzzer's last status line) and finds (new
# reproducers in fuzz/artifacts/<target>/).
# Reproduce a find with
#   fuzz/target/<host triple>/release/<target> fuzz/artifacts/<target>/<file>
# and, once fixed, copy the input to fuzz/seeds/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

CAMPAIGN_RUNS="${CAMPAIGN_RUNS:-10000000}"
CAMPAIGN_SECONDS="${CAMPAIGN_SECONDS:-3600}"
CAMPAIGN_TIMEOUT="${CAMPAIGN_TIMEOUT:-10}"
CAMPAIGN_ARGS="${CAMPAIGN_ARGS:-}"
logs="$root/target/fuzz-campaign"
summary="$root/target/fuzz-campaign.md"

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
    echo "CAMPAIGN FAILURE: cargo fuzz list found no targets" >&2
    exit 1
fi

# Build first, then run the binaries directly (as fuzz.sh does): one cargo
# invocation for all targets, or one per target when only some are asked for.
if [ -n "${FUZZ_TARGETS:-}" ]; then
    for target in $targets; do
        echo "== building $target"
        cargo fuzz build "$target"
    done
else
    echo "== building every fuzz target"
    cargo fuzz build
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="target/$triple/release"

# The value of libFuzzer's final "stat::NAME: value" line, or "?".
final_stat() {
    local v
    v=$(sed -n "s/^stat::$1: *\([0-9][0-9]*\).*/\1/p" "$2" | tail -n 1)
    echo "${v:-?}"
}

mkdir -p "$logs"
rows=()
found=()
started=$SECONDS
for target in $targets; do
    log="$logs/$target.log"
    if [ ! -d "seeds/$target" ]; then
        echo "CAMPAIGN FAILURE: no seed corpus fuzz/seeds/$target" >&2
        rows+=("| $target | - | - | - | - | no seeds |")
        found+=("$target (no seeds)")
        continue
    fi
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== fuzz $target: up to $CAMPAIGN_RUNS runs or ${CAMPAIGN_SECONDS}s (log: target/fuzz-campaign/$target.log)"
    # Reproducers already there are not this run's finds.
    before=$(find "artifacts/$target" -type f | sort)
    t0=$(date +%s.%N)
    status=0
    # shellcheck disable=SC2086 # CAMPAIGN_ARGS is a list of flags
    "$bin_dir/$target" "corpus/$target" "seeds/$target" \
        -artifact_prefix="artifacts/$target/" \
        -runs="$CAMPAIGN_RUNS" -max_total_time="$CAMPAIGN_SECONDS" \
        -timeout="$CAMPAIGN_TIMEOUT" -rss_limit_mb=2048 -print_final_stats=1 \
        $CAMPAIGN_ARGS >"$log" 2>&1 || status=$?
    seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

    execs=$(final_stat number_of_executed_units "$log")
    # libFuzzer's average_exec_per_sec divides by whole seconds (0 for a
    # run under a second): computed here from the same two columns instead.
    per_sec="?"
    if [ "$execs" != "?" ]; then
        per_sec=$(awk -v n="$execs" -v s="$seconds" 'BEGIN { printf "%d", n / (s > 0 ? s : 0.1) }')
    fi
    # Coverage: the edge count ("cov:") of libFuzzer's last status line.
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
    cov="${cov:-?}"
    new=$(comm -13 <(echo "$before") <(find "artifacts/$target" -type f | sort) | sed '/^$/d')
    finds=$(echo -n "$new" | grep -c . || true)
    if [ "$status" -ne 0 ] && [ "$finds" -eq 0 ]; then
        # libFuzzer failed without leaving a reproducer (bad flag, build
        # problem): still a failure of the campaign.
        finds="exit $status"
    fi
    if [ "$finds" != 0 ]; then
        found+=("$target")
        echo "CAMPAIGN FIND: $target ($finds; see target/fuzz-campaign/$target.log)" >&2
        for f in $new; do echo "  reproducer: fuzz/$f" >&2; done
    fi
    rows+=("| $target | $execs | $seconds | $per_sec | $cov | $finds |")
    echo "   $execs executions in ${seconds}s, cov $cov, finds: $finds"
done

{
    echo "# Fuzz campaign"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- protocols src fuzz 2>/dev/null || echo ' (with uncommitted changes)'), $(nproc) CPUs, one target at a time."
    echo "Limits per target: $CAMPAIGN_RUNS executions or ${CAMPAIGN_SECONDS} s, whichever first; -timeout=$CAMPAIGN_TIMEOUT${CAMPAIGN_ARGS:+; extra flags: $CAMPAIGN_ARGS}."
    echo "Coverage is libFuzzer's edge count (cov:) at the end; finds are new files in fuzz/artifacts/<target>/."
    echo
    echo "| target | executions | seconds | exec/s | coverage | finds |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    if [ ${#found[@]} -ne 0 ]; then
        echo
        echo "Finds: ${found[*]} (reproducers in fuzz/artifacts/<target>/, logs in target/fuzz-campaign/)."
    fi
} >"$summary"

echo "== campaign: targets: $(echo $targets | wc -w), in $((SECONDS - started))s; summary in target/fuzz-campaign.md"
cat "$summary"
if [ ${#found[@]} -ne 0 ]; then
    echo "CAMPAIGN FOUND: ${found[*]}" >&2
    exit 1
fi
