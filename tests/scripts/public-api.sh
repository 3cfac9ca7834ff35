#!/usr/bin/env bash
# Counts each library crate's public items from rustdoc's JSON output
# (RUSTC_BOOTSTRAP=1: the JSON format is unstable): the items reachable by
# a public path (modules, types, traits, functions, constants, macros),
# then methods and fields/variants of those. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/public-api"
echo "| crate | modules | other items with a public path | public methods, fields, variants |"
echo "|---|---:|---:|---:|"
for pkg in ferroccid-protocols ferroccid ferroccid-sim ferroccid-usbip ferroccid-card ferroccid-trace ferroccid-ifd; do
  features=()
  case $pkg in
    ferroccid-card) features=(--features pcsc) ;;
  esac
  RUSTC_BOOTSTRAP=1 cargo rustdoc -q -p "$pkg" --lib "${features[@]}" -- -Z unstable-options --output-format json 2>/dev/null
  lib=${pkg//-/_}
  python3 - "$CARGO_TARGET_DIR/doc/$lib.json" "$pkg" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
index, paths = doc["index"], doc["paths"]
own = {k: v for k, v in paths.items() if v["crate_id"] == 0}
modules = sum(1 for v in own.values() if v["kind"] == "module")
others = len(own) - modules
members = 0
for k in own:
    item = index.get(k)
    if not item:
        continue
    inner = item["inner"]
    for kind in ("struct", "enum", "union"):
        if kind in inner:
            for impl_id in inner[kind].get("impls", []):
                impl = index.get(str(impl_id))
                if impl and impl["inner"]["impl"]["trait"] is None:
                    members += sum(1 for i in impl["inner"]["impl"]["items"]
                                   if index.get(str(i), {}).get("visibility") == "public")
            if kind == "enum":
                members += len(inner[kind].get("variants", []))
            else:
                plain = inner[kind].get("kind", {}).get("plain", {})
                members += sum(1 for f in plain.get("fields", [])
                               if index.get(str(f), {}).get("visibility") == "public")
print(f"| `{sys.argv[2]}` | {modules} | {others} | {members} |")
PY
done
