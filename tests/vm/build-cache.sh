#!/usr/bin/env bash
# Builds the VM harness cache under target/vm-cache/ (nothing outside target/):
#   vmlinux          uncompressed kernel (QEMU boots it via PVH: no firmware, no
#                    decompressor, half the TCG boot time of the bzImage)
#   base.cpio.gz     busybox initramfs: USB/9p modules, pcscd + libccid, the PC/SC
#                    client, usbip, all with the host's shared libraries
#   stamp            hash of the inputs; a changed input rebuilds, otherwise this is a no-op
# Usage: build-cache.sh [--force]
set -euo pipefail
VM=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$VM/../.." && pwd)
CACHE=${FERROCCID_VM_CACHE:-$ROOT/target/vm-cache}
t0=$(date +%s.%N)
step() { printf '[vm build %6.2fs] %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$*" >&2; }

# guests booted in parallel (cargo test threads) must not build the cache concurrently
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9
bash "$VM/install-packages.sh"
command -v gcc >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null; }

inputs_hash() { cat "$VM/build-cache.sh" "$VM/guest-init" "$VM/guest-rig" "$VM/pcsc-apdu.c" | sha256sum | cut -c1-16; }
HASH=$(inputs_hash)
if [ "${1:-}" != --force ] && [ -s "$CACHE/base.cpio.gz" ] && [ -s "$CACHE/vmlinux" ] \
   && [ "$(cat "$CACHE/stamp" 2>/dev/null)" = "$HASH" ]; then
  exit 0
fi
mkdir -p "$CACHE"
step "building cache in $CACHE"

# ---- kernel: Debian's linux-image-<abi>-amd64, unpacked (never installed on the host).
# linux-image-cloud-amd64 is no good: it has CONFIG_USB_SUPPORT off.
KDIR=$CACHE/kernel
if [ ! -d "$KDIR/lib/modules" ]; then
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  if [ -z "$KPKG" ]; then
    apt-get update -qq
    KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
  fi
  [ -n "$KPKG" ] || { echo "vm build: cannot resolve linux-image-amd64" >&2; exit 1; }
  rm -rf "$CACHE/deb" "$KDIR"; mkdir -p "$CACHE/deb" "$KDIR"
  (cd "$CACHE/deb" && apt-get download "$KPKG" >/dev/null 2>&1) || { echo "vm build: apt-get download $KPKG failed" >&2; exit 1; }
  dpkg-deb -x "$CACHE"/deb/*.deb "$KDIR"
  rm -rf "$CACHE/deb"
  step "kernel package $KPKG unpacked"
fi
KVER=$(ls "$KDIR/lib/modules" | head -1)
MODSRC=$KDIR/lib/modules/$KVER
[ -f "$MODSRC/modules.dep" ] || depmod -b "$KDIR" "$KVER"
if [ ! -s "$CACHE/vmlinux" ] || [ "$KDIR/boot/vmlinuz-$KVER" -nt "$CACHE/vmlinux" ]; then
  # the bzImage payload is an xz stream; its decompressed form is the ELF vmlinux
  /usr/bin/python3 - "$KDIR/boot/vmlinuz-$KVER" "$CACHE/vmlinux" <<'PY'
import lzma, sys
image = open(sys.argv[1], "rb").read()
start = image.find(b"\xfd7zXZ\x00")
if start < 0:
    sys.exit("no xz payload in " + sys.argv[1])
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(image[start:])
open(sys.argv[2], "wb").write(out)
PY
  step "vmlinux extracted"
fi

# ---- rootfs ----
R=$CACHE/rootfs
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,lib/modules/opt,var,share,rig}
ln -s ../run "$R/var/run"
cp "$(command -v busybox)" "$R/bin/busybox"

module_path() {  # module file relative to $MODSRC, or empty if built in
  local f
  f=$(grep -E "(^|/)$1\.ko(\.[a-z]+)?:" "$MODSRC/modules.dep" | head -1 | cut -d: -f1)
  if [ -z "$f" ] && ! grep -qE "/$1\.ko" "$MODSRC/modules.builtin"; then
    echo "vm build: module $1 not found in $KVER" >&2; return 1
  fi
  echo "$f"
}
# loaded at every boot, dependencies first
: > "$R/lib/modules/load-order"
for m in usb-common usbcore xhci-hcd xhci-pci virtio_ring virtio virtio_pci_legacy_dev \
         virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
  f=$(module_path $m); [ -n "$f" ] || continue
  cp "$MODSRC/$f" "$R/lib/modules/"; basename "$f" >> "$R/lib/modules/load-order"
done
# loaded on demand (`rig modules usbip`): USB/IP host side and the virtio network
: > "$R/lib/modules/opt/usbip-order"
for m in usbip-core vhci-hcd failover net_failover virtio_net; do
  f=$(module_path $m); [ -n "$f" ] || continue
  cp "$MODSRC/$f" "$R/lib/modules/opt/"; basename "$f" >> "$R/lib/modules/opt/usbip-order"
done

copy_with_libs() {  # copy_with_libs SRC [DEST]: file plus every library ldd names
  local src=$1 dst=${2:-$1} lib
  mkdir -p "$R$(dirname "$dst")"
  cp -L "$src" "$R$dst"
  ldd "$src" 2>/dev/null | awk '/=>/ {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
    [ -n "$lib" ] && [ -e "$lib" ] && [ ! -e "$R$lib" ] || continue
    mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
  done
}
copy_with_libs /usr/sbin/pcscd
copy_with_libs /usr/sbin/usbip
mkdir -p "$R/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Linux"
copy_with_libs /usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Linux/libccid.so
cp -L /usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist "$R/usr/lib/pcsc/drivers/ifd-ccid.bundle/Contents/Info.plist"
for l in libpcsclite.so.1 libgcc_s.so.1; do
  # libpcsclite is dlopen'ed by clients built against it; glibc dlopens libgcc_s for
  # pthread_exit, and pcscd aborts on a client disconnect without it (ldd shows neither)
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/$l" ] && { copy_with_libs "$d/$l"; break; }
  done
done
gcc -O2 -Wall -Werror -o "$CACHE/pcsc-apdu" "$VM/pcsc-apdu.c" $(pkg-config --cflags --libs libpcsclite)
copy_with_libs "$CACHE/pcsc-apdu" /usr/bin/pcsc-apdu
cp "$VM/guest-rig" "$R/bin/rig"; chmod +x "$R/bin/rig"
cp "$VM/guest-init" "$R/init"; chmod +x "$R/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
echo "$KVER" > "$R/etc/kernel-version"

(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1 > "$CACHE/base.cpio.gz.tmp")
mv "$CACHE/base.cpio.gz.tmp" "$CACHE/base.cpio.gz"
echo "$HASH" > "$CACHE/stamp"
step "cache ready: kernel $KVER, base.cpio.gz $(stat -c %s "$CACHE/base.cpio.gz") bytes"
