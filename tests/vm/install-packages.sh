#!/usr/bin/env bash
# Installs the host packages the VM harness needs (idempotent, prints what it installs).
# The guest runs the host's own binaries (pcscd, libccid, usbip, ...) with their shared
# libraries copied in, so "installing into the guest" means installing on the host.
set -euo pipefail
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have_cmd qemu-system-x86_64 || need+=(qemu-system-x86)
have_cmd busybox            || need+=(busybox-static)
have_cmd depmod             || need+=(kmod)
have_cmd pcscd              || need+=(pcscd)
[ -e /usr/lib/pcsc/drivers/ifd-ccid.bundle ] || need+=(libccid)
have_cmd pcsc_scan          || need+=(pcsc-tools)
have_cmd opensc-tool        || need+=(opensc)
[ -e /usr/include/PCSC/winscard.h ] || need+=(libpcsclite-dev)
have_cmd pkg-config         || need+=(pkg-config)
have_cmd vicc               || need+=(vsmartcard-vpicc)
[ -d /usr/lib/python3/site-packages/virtualsmartcard ] || need+=(python3-virtualsmartcard)
[ -d /usr/lib/python3/dist-packages/Cryptodome ] || need+=(python3-pycryptodome)
have_cmd usbip              || need+=(usbip)
have_cmd bc                 || need+=(bc)
have_cmd cpio               || need+=(cpio)
if [ ${#need[@]} -gt 0 ]; then
  echo "vm/install-packages: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
