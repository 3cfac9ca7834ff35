#!/usr/bin/env bash
# Installs the Debian packages and cargo tools the tests use, if missing.
# Idempotent: a machine that has them already is left alone.
set -euo pipefail
need=()
command -v ATR_analysis >/dev/null || need+=(pcsc-tools)
command -v pcscd >/dev/null || [ -x /usr/sbin/pcscd ] || need+=(pcscd)
[ -f /usr/include/PCSC/ifdhandler.h ] || need+=(libpcsclite-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/libusb-1.0/libusb.h ] || need+=(libusb-1.0-0-dev)
command -v opensc-tool >/dev/null || need+=(opensc)  # pcscd tests: opensc-tool
command -v udevadm >/dev/null || need+=(udev)  # ifd_bundle: udevadm verify of udev/92-ferroccid.rules
command -v tshark >/dev/null || need+=(tshark)  # trace_capture: Wireshark dissects the --pcap captures
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need[@]}"
fi
# The QEMU guest tests (cli/tests/vm_*.rs): qemu, a kernel, busybox, the vicc card.
# Installed here, before cargo test starts, so parallel test binaries never
# race for the dpkg lock.
bash "$(dirname "$0")/../vm/install-packages.sh"
