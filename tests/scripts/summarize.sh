#!/usr/bin/env bash
# Adds up cargo's "test result:" lines (and the scripts' own "name: N passed,
# N failed" lines) into one closing line, N passed, N failed.
set -euo pipefail
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     /^[a-z-]+: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     END { printf "%d passed, %d failed\n", p, f; exit (f > 0 || p == 0) }' "$1"
