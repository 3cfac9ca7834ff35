#!/usr/bin/env bash
# Counts each library crate's public items from rustdoc's JSON output
# (RUSTC_BOOTSTRAP=1: the JSON format is unstable): the items reachable by
# a public path (modules, types, traits, functions, constants, macros),
# then methods and fields/variants of those. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/public-api"
echo "| crate (namespace) | modules | types, traits, functions, constants | enum variants | methods and fields |"
echo "|---|---:|---:|---:|---:|"
for pkg in ferroccid-protocols ferroccid ferroccid-sim ferroccid-usbip ferroccid-card ferroccid-trace ferroccid-ifd; do
  features=()
  case $pkg in
    ferroccid-card) features=(--features pcsc) ;;
  esac
  RUSTC_BOOTSTRAP=1 cargo rustdoc -q -p "$pkg" --lib "${features[@]}" -- -Z unstable-options --output-format json 2>/dev/null
  lib=${pkg//-/_}
  python3 - "$CARGO_TARGET_DIR/doc/$lib.json" "$pkg" <<'PY'
import collections, json, sys
doc = json.load(open(sys.argv[1]))
index, paths = doc["index"], doc["paths"]
own = {k: v for k, v in paths.items() if v["crate_id"] == 0}

def members(k):
    """Public inherent methods and public fields of a struct, enum or union."""
    item = index.get(k)
    if not item:
        return 0
    n = 0
    for kind in ("struct", "enum", "union"):
        inner = item["inner"].get(kind)
        if inner is None:
            continue
        for impl_id in inner.get("impls", []):
            impl = index.get(str(impl_id))
            if impl and impl["inner"]["impl"]["trait"] is None:
                n += sum(1 for i in impl["inner"]["impl"]["items"]
                         if index.get(str(i), {}).get("visibility") == "public")
        plain = inner.get("kind", {}).get("plain", {}) if isinstance(inner.get("kind"), dict) else {}
        n += sum(1 for f in plain.get("fields", [])
                 if index.get(str(f), {}).get("visibility") == "public")
    return n

def row(name, items):
    kinds = collections.Counter(v["kind"] for _, v in items)
    print(f"| {name} | {kinds['module']} | "
          f"{sum(kinds.values()) - kinds['module'] - kinds['variant']} | "
          f"{kinds['variant']} | {sum(members(k) for k, _ in items)} |")

pkg = sys.argv[2]
row(f"`{pkg}`", list(own.items()))
if pkg == "ferroccid":
    # The driver proper (re-exported at the root from private modules) apart
    # from the wire-format and constant namespaces.
    groups = collections.defaultdict(list)
    for k, v in own.items():
        top = v["path"][1] if len(v["path"]) > 1 else ""
        groups[top if top in ("ccid", "usbip", "part10", "backend") else "driver"].append((k, v))
    for top in ("driver", "ccid", "usbip", "part10"):
        label = "reader, transport, device (the root)" if top == "driver" else f"`{top}`"
        row(f"&nbsp;&nbsp;{label}", groups[top])
PY
done
