#!/usr/bin/env bash
# Installs the Debian package built by tests/scripts/deb.sh on this machine
# with dpkg, checks what it put where and that it works, switches the
# libccid preference both ways, reinstalls it, removes and purges it, and
# checks that nothing is left behind. Needs root (dpkg). Prints one line
# per check; exits 1 if any fails.
#
#   bash tests/scripts/deb-test.sh     # builds the package first if missing
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
deb=$(ls "$target"/debian/ferroccid_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
    bash tests/scripts/deb.sh
    deb=$(ls "$target"/debian/ferroccid_*.deb | head -n 1)
fi
[ "$(id -u)" = 0 ] || { echo "deb-test.sh installs a package: run it as root" >&2; exit 2; }
passed=0
failed=0
check() { # NAME STATUS DETAIL
    if [ "$2" = 0 ]; then
        echo "ok   $1"; passed=$((passed + 1))
    else
        echo "FAIL $1: $3"; failed=$((failed + 1))
    fi
}
drivers=/usr/lib/pcsc/drivers
bundle=$drivers/ifd-ferroccid.bundle
plist=$bundle/Contents/Info.plist
libccid_plist=$drivers/ifd-ccid.bundle/Contents/Info.plist
# The file systems a package may touch, without dpkg's and man-db's own
# bookkeeping and the logs.
snapshot() {
    find /usr /etc /var /opt -xdev \( -path /var/lib/dpkg -o -path /var/cache -o -path /var/log \
        -o -path /var/tmp -o -path /var/lib/apt -o -path /var/backups \) -prune -o -print 2>/dev/null | sort
}
# Readers listed in an Info.plist, as VID:PID lines.
ids_of() {
    python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def arr(k):
    m = re.search(r"<key>%s</key>\s*<array>(.*?)</array>" % k, t, re.S)
    return re.findall(r"<string>(.*?)</string>", m.group(1)) if m else []
for v, p in zip(arr("ifdVendorID"), arr("ifdProductID")):
    print("%04X:%04X" % (int(v, 16), int(p, 16)))
PY
}

dpkg -P ferroccid >/dev/null 2>&1 || true
before=$(mktemp); after=$(mktemp)
snapshot > "$before"

out=$(dpkg -i "$deb" 2>&1); st=$?
check "dpkg -i installs the package" "$st" "$out"
st=0; [ -x /usr/bin/ferroccid ] && /usr/bin/ferroccid --version >/dev/null || st=1
check "/usr/bin/ferroccid runs" "$st" "$(ls -l /usr/bin/ferroccid 2>&1)"
st=0; [ -L "$plist" ] && [ "$(readlink "$plist")" = /var/lib/ferroccid/Info.plist ] && [ -s /var/lib/ferroccid/Info.plist ] || st=1
check "Info.plist is the package's symlink to the reader list postinst generated" "$st" "$(ls -l "$plist" /var/lib/ferroccid 2>&1)"
known=$(grep -vc '^#' cli/data/known-readers.tsv)
listed=$(ids_of "$plist" | sort -u | wc -l)
st=0; [ "$listed" -ge "$known" ] || st=1
check "the reader list holds every known reader ($listed listed, $known known)" "$st" "$listed < $known"
st=0; ids_of "$plist" | grep -x 08E6:4433 >/dev/null || st=1  # not -q: an early exit would break the pipe
check "QEMU's usb-ccid (08E6:4433) is listed" "$st" "not listed"
if [ -f "$libccid_plist" ]; then
    missing=$(comm -23 <(ids_of "$libccid_plist" | sort -u) <(ids_of "$plist" | sort -u) | sed -n 1,3p)  # sed reads all: no SIGPIPE under pipefail
    st=0; [ -z "$missing" ] || st=1
    check "by default ferroccid lists every reader libccid lists (so pcscd prefers it)" "$st" "missing $missing"
fi
st=0; grep -q 'RUN+="/usr/bin/ferroccid bundle refresh --quiet --drivers-dir /usr/lib/pcsc/drivers"' \
    /usr/lib/udev/rules.d/92-ferroccid.rules || st=1
check "the udev rule runs the installed binary" "$st" "$(grep RUN /usr/lib/udev/rules.d/92-ferroccid.rules)"
st=0; getent group pcscd >/dev/null || st=1
check "postinst created the system group pcscd" "$st" "no group"
st=0; man -w ferroccid >/dev/null 2>&1 && man -w ferroccid-bundle-prefer >/dev/null 2>&1 || st=1
check "man pages installed (ferroccid, ferroccid-bundle-prefer)" "$st" "$(man -w ferroccid 2>&1)"
st=0; [ -s /usr/share/bash-completion/completions/ferroccid ] && [ -s /usr/share/zsh/vendor-completions/_ferroccid ] \
    && [ -s /usr/share/fish/vendor_completions.d/ferroccid.fish ] || st=1
check "bash, zsh and fish completions installed" "$st" "missing"
st=0; bash -c 'source /usr/share/bash-completion/completions/ferroccid && complete -p ferroccid' >/dev/null 2>&1 || st=1
check "the bash completion loads" "$st" "complete -p ferroccid failed"
out=$(dpkg --verify ferroccid 2>&1); st=0; [ -z "$out" ] || st=1
check "dpkg --verify: every packaged file as shipped (md5sums)" "$st" "$out"

# The packaged library in the real pcscd, over USB/IP to the packaged
# binary's simulator (the packaged bundle has no simulator of its own).
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d /tmp/ferroccid-deb-test.XXXXXX)
/usr/bin/ferroccid sim --usbip "127.0.0.1:$port" --profile tpdu > "$work/sim.log" 2>&1 &
sim=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
e2e=$(WATCH_PID=$$ bash tests/scripts/pcscd-run.sh run "$work/pcscd" "$bundle/Contents/Linux/libferroccid.so" \
    "usbip:127.0.0.1:$port/1-1" -- sh -c 'timeout 20 opensc-tool -r 0 -s 00:84:00:00:08' 2>&1 || true)
kill $sim 2>/dev/null || true
st=0; case "$e2e" in *"SW1=0x90, SW2=0x00"*) ;; *) st=1 ;; esac
check "the packaged bundle in pcscd answers GET CHALLENGE 9000 from a reader over USB/IP" "$st" "$e2e"

if [ -f "$libccid_plist" ]; then
    out=$(/usr/bin/ferroccid bundle prefer libccid --no-rescan 2>&1); st=$?
    both=$(comm -12 <(ids_of "$libccid_plist" | sort -u) <(ids_of "$plist" | sort -u) | wc -l)
    [ "$both" = 0 ] || st=1
    check "bundle prefer libccid: ferroccid lists no reader libccid lists" "$st" "$out; $both in both"
    st=0; [ -L "$plist" ] || st=1
    check "the preference is written through the symlink (the packaged file untouched)" "$st" "$(ls -l "$plist")"
    out=$(dpkg -i "$deb" 2>&1); st=$?
    both=$(comm -12 <(ids_of "$libccid_plist" | sort -u) <(ids_of "$plist" | sort -u) | wc -l)
    [ "$both" = 0 ] || st=1
    check "reinstalling keeps the preference" "$st" "$out; $both in both"
    out=$(/usr/bin/ferroccid bundle prefer ferroccid --no-rescan 2>&1); st=$?
    missing=$(comm -23 <(ids_of "$libccid_plist" | sort -u) <(ids_of "$plist" | sort -u) | wc -l)
    [ "$missing" = 0 ] || st=1
    check "bundle prefer ferroccid: libccid's readers are listed again" "$st" "$out; $missing missing"
fi

out=$(dpkg -r ferroccid 2>&1); st=$?
check "dpkg -r removes the package" "$st" "$out"
st=0; [ ! -e "$bundle" ] && [ ! -e /var/lib/ferroccid ] && [ ! -e /usr/bin/ferroccid ] \
    && [ ! -e /usr/lib/udev/rules.d/92-ferroccid.rules ] || st=1
check "after removal: no bundle, no state, no binary, no rule" "$st" "$(ls -d "$bundle" /var/lib/ferroccid /usr/bin/ferroccid 2>&1)"
dpkg -P ferroccid >/dev/null 2>&1 || true
snapshot > "$after"
left=$(diff "$before" "$after" || true)
st=0; [ -z "$left" ] || st=1
check "after purge the file system is as before the install" "$st" "$left"
rm -rf "$work" "$before" "$after"
echo "deb: $passed passed, $failed failed"
[ "$failed" = 0 ]
