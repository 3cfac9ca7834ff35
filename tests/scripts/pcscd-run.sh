#!/usr/bin/env bash
# Runs Debian's pcscd in the foreground, in its own mount namespace, with
# ferroccid's library behind reader.conf entries.
#
#   pcscd-run.sh start DIR LIBPATH DEVICENAME...   start, wait for the socket
#   pcscd-run.sh stop DIR                          stop it
#   pcscd-run.sh run DIR LIBPATH DEVICENAME... -- CLIENT [ARGS]
#
# pcscd 1.9.9 always listens on /run/pcscd/pcscd.comm; inside the namespace
# DIR/run is bind-mounted there, so clients outside reach this instance
# with PCSCLITE_CSOCK_NAME=DIR/run/pcscd.comm and other instances (tests
# in parallel, the system's pcscd) are left alone. pcscd's log goes to
# DIR/pcscd.log. With WATCH_PID set, pcscd is stopped when that process
# exits. With DRIVERS_DIR set, that directory is bind-mounted over pcscd's
# USB drivers directory (/usr/lib/pcsc/drivers) inside the namespace, so a
# test can make pcscd load bundles it installed. The bundle's notification
# socket (/run/ferroccid/notify inside) is DIR/notify/notify outside, so
# instances never share one. PCSCD_OPTIONS adds options to pcscd's
# `--foreground --debug` (e.g. `--color`, which shows each line's
# priority). Fails loudly when pcscd is missing.
set -euo pipefail
mode=${1:?usage: $0 start|stop|run DIR ...}
dir=${2:?DIR missing}
PCSCD=${PCSCD:-/usr/sbin/pcscd}

start() {
  local lib=$1; shift
  [ -x "$PCSCD" ] || { echo "pcscd not found at $PCSCD: run tests/scripts/install-deps.sh" >&2; exit 2; }
  command -v unshare >/dev/null || { echo "unshare (util-linux) missing" >&2; exit 2; }
  [ -f "$lib" ] || { echo "library $lib not found (cargo build --workspace --features ferroccid-ifd/sim)" >&2; exit 2; }
  mkdir -p "$dir/run" "$dir/conf"
  rm -f "$dir/run/pcscd.comm" "$dir/conf/"*
  local i=0
  for name in "$@"; do
    cat > "$dir/conf/reader$i" <<CONF
FRIENDLYNAME "ferroccid $name"
DEVICENAME $name
LIBPATH $lib
CHANNELID $i
CONF
    i=$((i + 1))
  done
  mkdir -p /run/pcscd /run/ferroccid "$dir/notify"
  unshare -m --propagation private sh -c '
    mount --bind "$1/run" /run/pcscd || exit 3
    mount --bind "$1/notify" /run/ferroccid || exit 3
    if [ -n "$3" ]; then mount --bind "$3" /usr/lib/pcsc/drivers || exit 3; fi
    exec "$2" --foreground --debug $4 -c "$1/conf"' sh "$dir" "$PCSCD" "${DRIVERS_DIR:-}" "${PCSCD_OPTIONS:-}" > "$dir/pcscd.log" 2>&1 &
  echo $! > "$dir/pcscd.pid"
  for _ in $(seq 100); do
    [ -S "$dir/run/pcscd.comm" ] && break
    kill -0 "$(cat "$dir/pcscd.pid")" 2>/dev/null || { echo "pcscd died:" >&2; cat "$dir/pcscd.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -S "$dir/run/pcscd.comm" ] || { echo "pcscd socket did not appear" >&2; cat "$dir/pcscd.log" >&2; exit 1; }
  if [ -n "${WATCH_PID:-}" ]; then
    ( while kill -0 "$WATCH_PID" 2>/dev/null; do sleep 1; done; "$0" stop "$dir" ) >/dev/null 2>&1 &
  fi
}

stop() {
  [ -f "$dir/pcscd.pid" ] || return 0
  local pid; pid=$(cat "$dir/pcscd.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pcscd.pid"
}

case $mode in
  start) shift 2; start "$@" ;;
  stop) stop ;;
  run)
    shift 2
    lib=$1; shift
    names=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do names+=("$1"); shift; done
    shift || true
    start "$lib" "${names[@]}"
    trap stop EXIT
    PCSCLITE_CSOCK_NAME="$dir/run/pcscd.comm" "$@"
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
