#!/usr/bin/env bash
# Builds the Debian package target/debian/ferroccid_<version>_<arch>.deb and
# checks it with lintian (0 errors; the warnings and infos allowed are
# listed, with reasons, in tests/scripts/lintian-allowed.txt).
#
#   bash tests/scripts/deb.sh            # build and lint
#   NO_LINT=1 bash tests/scripts/deb.sh  # build only
#
# cargo-deb packs the files this script stages under
# target/release/debian-stage/ (cli/Cargo.toml [package.metadata.deb]):
# - the bundle library, `ferroccid-ifd` built alone so that no feature of
#   the CLI (nusb, the simulator) is unified into it, with the dist profile
#   (fat LTO, size-optimised, stripped);
# - the CLI with PC/SC (`--features pcsc`);
# - Info.plist: a symlink to /var/lib/ferroccid/Info.plist, the reader
#   list postinst generates (state the udev rule updates; the packaged
#   files stay as dpkg put them);
# - the udev rules with the installed paths filled in;
# - man pages and bash/zsh/fish completions generated from the clap
#   definitions (`ferroccid generate-assets`).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
stage=$target/release/debian-stage

if ! cargo deb --version >/dev/null 2>&1; then
    echo "== installing cargo-deb"
    cargo install cargo-deb --locked
fi
if [ -z "${NO_LINT:-}" ] && ! command -v lintian >/dev/null; then
    echo "== installing lintian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q lintian || { apt-get update -q && apt-get install -y -q lintian; }
fi
# dpkg-shlibdeps (dpkg-dev) computes the package's library dependencies.
command -v dpkg-shlibdeps >/dev/null || { apt-get update -q && apt-get install -y -q dpkg-dev; }

echo "== building the bundle library (dist profile) and the CLI (release, pcsc)"
cargo build -q --profile dist -p ferroccid-ifd
rm -rf "$stage"
mkdir -p "$stage"
cp "$target/dist/libferroccid_ifd.so" "$stage/libferroccid.so"
cargo build -q --release -p ferroccid-cli --features pcsc
cp "$target/release/ferroccid" "$stage/ferroccid"
ln -s /var/lib/ferroccid/Info.plist "$stage/Info.plist"
sed -e 's#@FERROCCID@#/usr/bin/ferroccid#g' -e 's#@DRIVERS@#/usr/lib/pcsc/drivers#g' \
    udev/92-ferroccid.rules > "$stage/92-ferroccid.rules"
"$stage/ferroccid" generate-assets "$stage" >/dev/null
gzip -9n "$stage"/man/*.1
# What lintian asks of shipped ELF files: no symbols, no .comment.
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
    "$stage/ferroccid" "$stage/libferroccid.so"

echo "== cargo deb"
mkdir -p "$target/debian"
rm -f "$target"/debian/ferroccid_*.deb
cargo deb -p ferroccid-cli --no-build --no-strip -o "$target/debian/" >/dev/null
deb=$(ls "$target"/debian/ferroccid_*.deb)
# cargo-deb writes no md5sums; debsums and `dpkg --verify` use them.
unpacked=$target/debian/unpacked
rm -rf "$unpacked"
dpkg-deb -R "$deb" "$unpacked"
(cd "$unpacked" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z \
    | xargs -0 md5sum > DEBIAN/md5sums)
dpkg-deb --root-owner-group -Zxz -b "$unpacked" "$deb" >/dev/null
rm -rf "$unpacked"
echo "$deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'

if [ -z "${NO_LINT:-}" ]; then
    echo "== lintian"
    lintian --info --display-info --no-tag-display-limit "$deb" > "$target/debian/lintian.txt" 2>&1 || true
    cat "$target/debian/lintian.txt"
    if grep -q '^E: ' "$target/debian/lintian.txt"; then
        echo "DEB FAILURE: lintian reports errors" >&2
        exit 1
    fi
    # Every warning and info must be one the allow list explains.
    unexplained=$(grep -E '^[WI]: ' "$target/debian/lintian.txt" | awk '{print $3}' | sort -u \
        | grep -vxF -f <(grep -v '^#' tests/scripts/lintian-allowed.txt | awk '{print $1}' | sed '/^$/d') || true)
    if [ -n "$unexplained" ]; then
        echo "DEB FAILURE: lintian tags not explained in tests/scripts/lintian-allowed.txt: $unexplained" >&2
        exit 1
    fi
fi
