#!/usr/bin/env bash
# run-guest.sh — boot a throw-away Linux guest (Debian kernel + busybox, QEMU TCG) with
# QEMU's emulated USB CCID reader on an xHCI controller and a card, run COMMAND in it,
# print its output and exit with its exit status (124 timeout, 125 harness failure).
#
# usage: run-guest.sh [options] [--] COMMAND...
#   -e DIR     copy DIR to /extra in the guest (on PATH); shared libraries of the ELF
#              files in DIR come along (found with ldd)
#   -c CARD    vicc (default: vsmartcard's ISO 7816 card, through tests/vm/vscard-bridge.py)
#              vicc:TYPE (vicc -t TYPE) | absent (vicc, but not inserted) | none (no card)
#   -p         start pcscd (libccid) before COMMAND; -P ARGS adds pcscd args (comma-separated)
#   -w PCAP    record the reader's USB traffic (usbmon pcap, DLT 220) into PCAP
#   -s DIR     share host DIR read-write at /share (virtio-9p)
#   -N         no usb-ccid reader (e.g. only a USB/IP device will be attached)
#   -t SECS    timeout for the whole run (default 60)
#   -k         keep the run directory; -v verbose (kernel log, bridge and control logs)
# In the guest: `rig card remove|insert`, `rig monitor device_del ccid` (the reader's
# QEMU id is "ccid", the card's "card"), `rig modules usbip`, `rig net`, `rig ccid-dev`.
# Environment: QEMU_EXTRA (more QEMU args), FERROCCID_VM_CACHE (default target/vm-cache).
set -uo pipefail
VM=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$VM/../.." && pwd)
CACHE=${FERROCCID_VM_CACHE:-$ROOT/target/vm-cache}
EXTRA="" CARD=vicc PCSCD=0 PCSCD_ARGS="" PCAP="" SHARE="" READER=1 TIMEOUT=60 KEEP=0 VERBOSE=0
while getopts "e:c:pP:w:s:Nt:kv" o; do
  case $o in
    e) EXTRA=$(realpath "$OPTARG");; c) CARD=$OPTARG;; p) PCSCD=1;; P) PCSCD=1 PCSCD_ARGS=$OPTARG;;
    w) PCAP=$(realpath -m "$OPTARG");; s) SHARE=$(realpath "$OPTARG");; N) READER=0;;
    t) TIMEOUT=$OPTARG;; k) KEEP=1;; v) VERBOSE=1;;
    *) sed -n '2,20p' "$0" >&2; exit 2;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
T0=$(date +%s.%N)
since() { echo "$(date +%s.%N) - $1" | bc; }
say() { printf '[vm %6.2fs] %s\n' "$(since "$T0")" "$*" >&2; }

bash "$VM/build-cache.sh" || { say "cache build failed"; exit 125; }
T_BUILT=$(date +%s.%N)

RUN=$(mktemp -d "${TMPDIR:-/tmp}/ferroccid-vm.XXXXXX")
HELPERS=()
cleanup() {
  local p
  for p in "${HELPERS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${HELPERS[@]}"; do wait "$p" 2>/dev/null; done
  if [ $VERBOSE = 1 ]; then for f in "$RUN"/*.log; do [ -s "$f" ] && sed "s|^|  $(basename "$f" .log): |" "$f" >&2; done; fi
  if [ $KEEP = 1 ]; then say "run directory kept: $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- per-run initramfs overlay, appended to the cached base (the kernel unpacks both)
O=$RUN/overlay
mkdir -p "$O/rig" "$O/extra"
printf '%s ' "$@" > "$O/rig/cmd.sh"; echo >> "$O/rig/cmd.sh"
if [ -n "$EXTRA" ]; then
  cp -a "$EXTRA/." "$O/extra/"
  find "$EXTRA" -type f -exec sh -c 'head -c4 "$1" | grep -q ELF && ldd "$1"' _ {} \; 2>/dev/null \
    | awk '/=>/ {print $3} $1 ~ /^\// {print $1}' | sort -u | while read -r lib; do
      [ -n "$lib" ] && [ -e "$lib" ] || continue
      mkdir -p "$O$(dirname "$lib")"; cp -L "$lib" "$O$lib"
    done
fi
(cd "$O" && find . | cpio -o -H newc --quiet | gzip -1 > "$RUN/overlay.cpio.gz")
cat "$CACHE/base.cpio.gz" "$RUN/overlay.cpio.gz" > "$RUN/initrd.gz"

# ---- card
CARD_ARGS=() BRIDGE_PID=""
case $CARD in
  none) ;;
  vicc|vicc:*|absent)
    VTYPE=iso7816; case $CARD in vicc:*) VTYPE=${CARD#vicc:};; esac
    NOCARD=(); [ "$CARD" = absent ] && NOCARD=(--no-card)
    # Debian 12 ships virtualsmartcard outside sys.path and without PyCrypto's "Crypto"
    # package (python3-pycryptodome names it "Cryptodome"): point PYTHONPATH at both.
    mkdir -p "$CACHE/pyshim"; ln -sfn /usr/lib/python3/dist-packages/Cryptodome "$CACHE/pyshim/Crypto"
    PYTHONPATH=/usr/lib/python3/site-packages/virtualsmartcard:$CACHE/pyshim \
      /usr/bin/python3 "$VM/vscard-bridge.py" --qemu-socket "$RUN/vscard.sock" --vicc-cmd "vicc -t $VTYPE" \
      --ready-file "$RUN/bridge.ready" "${NOCARD[@]}" $([ $VERBOSE = 1 ] && echo -v) 2> "$RUN/bridge.log" &
    BRIDGE_PID=$!; HELPERS+=($BRIDGE_PID)
    for _ in $(seq 100); do [ -e "$RUN/bridge.ready" ] && break; sleep 0.02; done
    [ -e "$RUN/bridge.ready" ] || { say "card bridge did not start:"; cat "$RUN/bridge.log" >&2; exit 125; }
    CARD_ARGS=(-chardev "socket,id=vsc,path=$RUN/vscard.sock" -device ccid-card-passthru,chardev=vsc,id=card)
    ;;
  *) say "unknown card $CARD"; exit 2;;
esac
[ $READER = 0 ] && CARD_ARGS=()

# ---- control channel: guest /dev/ttyS1 -> control.py -> bridge signals / QMP
/usr/bin/python3 "$VM/control.py" --serial-socket "$RUN/ctl.sock" --qmp-socket "$RUN/qmp.sock" \
  ${BRIDGE_PID:+--bridge-pid $BRIDGE_PID} 2> "$RUN/control.log" &
HELPERS+=($!)
for _ in $(seq 100); do [ -S "$RUN/ctl.sock" ] && break; sleep 0.02; done
[ -S "$RUN/ctl.sock" ] || { say "control channel did not start"; cat "$RUN/control.log" >&2; exit 125; }

# ---- QEMU: TCG (this host's nested KVM cannot boot a Debian kernel), PVH vmlinux
APPEND="console=ttyS0 panic=-1 rig.pcscd=$PCSCD rig.waitccid=$READER"
[ -n "$PCSCD_ARGS" ] && APPEND="$APPEND rig.pcscdargs=$PCSCD_ARGS"
[ $VERBOSE = 1 ] || APPEND="$APPEND quiet loglevel=1"
READER_ARGS=()
if [ $READER = 1 ]; then
  CCID=usb-ccid,id=ccid; [ -n "$PCAP" ] && CCID="$CCID,pcap=$PCAP"
  READER_ARGS=(-device "$CCID")
fi
SHARE_ARGS=()
[ -n "$SHARE" ] && SHARE_ARGS=(-virtfs "local,path=$SHARE,mount_tag=share,security_model=none,id=share")
QARGS=(-accel tcg -m 512 -smp 1 -nodefaults -no-user-config -display none -no-reboot
  -kernel "$CACHE/vmlinux" -initrd "$RUN/initrd.gz" -append "$APPEND"
  -serial stdio -chardev "socket,id=ctl,path=$RUN/ctl.sock" -serial chardev:ctl
  -qmp "unix:$RUN/qmp.sock,server=on,wait=off"
  -device qemu-xhci,id=xhci "${READER_ARGS[@]}" "${CARD_ARGS[@]}" "${SHARE_ARGS[@]}" ${QEMU_EXTRA:-})
[ $VERBOSE = 1 ] && say "qemu-system-x86_64 ${QARGS[*]}"
T_BOOT=$(date +%s.%N)
timeout -k 3 "$TIMEOUT" qemu-system-x86_64 "${QARGS[@]}" < /dev/null 2> "$RUN/qemu.log" \
  | tr -d '\r' | tee "$RUN/console.log" | grep --line-buffered -a -v -e '^@@RIG_' -e 'reboot: Power down'
QEMU_RC=${PIPESTATUS[0]}
T_END=$(date +%s.%N)
RC=$(grep -a -o '^@@RIG_EXIT=[0-9]*@@' "$RUN/console.log" | tail -1 | tr -dc 0-9)
if [ -z "$RC" ]; then
  if [ "$QEMU_RC" = 124 ]; then say "TIMEOUT after ${TIMEOUT}s"; RC=124; else say "guest died (qemu status $QEMU_RC)"; RC=125; fi
  for f in qemu bridge control; do [ -s "$RUN/$f.log" ] && sed "s|^|  $f: |" "$RUN/$f.log" >&2; done
fi
uptime_at() { grep -a "^@@RIG_TIME $1 " "$RUN/console.log" | head -1 | cut -d' ' -f3; }
printf "[vm] times: cache %.2fs, guest uptime at command %ss, command %ss, run %.2fs; exit %s\n" \
  "$(echo "$T_BUILT - $T0" | bc)" "$(uptime_at command)" \
  "$(echo "$(uptime_at done) - $(uptime_at command)" | bc 2>/dev/null)" "$(since "$T0")" "$RC" >&2
exit "$RC"
