#!/usr/bin/python3
"""Card for QEMU's usb-ccid: ccid-card-passthru (VSCard protocol) <-> vsmartcard vicc.

QEMU connects to --qemu-socket (a unix socket we listen on) and speaks VSCard:
  12-byte big-endian header (u32 type, u32 reader id, u32 length) + payload;
  types 1 Init, 2 Error, 3 ReaderAdd, 4 ReaderRemove, 5 ATR, 6 CardRemove, 7 APDU,
  8 Flush, 9 FlushComplete (libcacard's vscard_common.h).
vicc connects to a TCP port we listen on, as it would to vpcd, and speaks
  u16 big-endian length + payload; 1-byte payloads are commands (0 off, 1 on, 2 reset,
  4 ATR), longer ones APDUs / responses.

Both sides are accepted concurrently so vicc's Python start-up overlaps QEMU's boot.
SIGUSR1 removes the card, SIGUSR2 (re)inserts it (vicc power-cycled, fresh ATR).

QEMU's reader announces T=0 only; vicc's ISO 7816 card offers only T=1, which a driver
must refuse. With --atr auto (default) an ATR without T=0 is presented as
TS T0 [TA1] historical-bytes (implicit T=0).
"""
import argparse, os, select, signal, socket, struct, subprocess, sys, time

INIT, ERROR, READER_ADD, READER_REMOVE, ATR, CARD_REMOVE, APDU, FLUSH, FLUSH_COMPLETE = range(1, 10)
ANY_READER = 0xFFFFFFFF
START = time.monotonic()


def log(*words):
    print("[bridge %.3f]" % (time.monotonic() - START), *words, file=sys.stderr, flush=True)


def atr_protocols(atr):
    """(set of offered protocols, TA1 or None, historical bytes) of an ATR."""
    hist_len, indicator, pos, level = atr[1] & 0x0F, atr[1] >> 4, 2, 1
    protocols, ta1 = set(), None
    while True:
        if indicator & 1:
            ta1 = atr[pos] if level == 1 else ta1
            pos += 1
        pos += bool(indicator & 2) + bool(indicator & 4)
        if not indicator & 8:
            break
        td = atr[pos]
        pos += 1
        protocols.add(td & 0x0F)
        indicator, level = td >> 4, level + 1
    return protocols or {0}, ta1, atr[pos:pos + hist_len]


def t0_only_atr(atr):
    protocols, ta1, hist = atr_protocols(atr)
    if 0 in protocols:
        return atr
    head = bytes([atr[0], (0x10 if ta1 is not None else 0) | len(hist)])
    return head + (bytes([ta1]) if ta1 is not None else b"") + hist


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("peer closed")
        data += chunk
    return data


class Bridge:
    def __init__(self, args):
        self.args = args
        self.qemu = None
        self.vicc = None
        self.card_present = False
        self.delayed_remove = None
        self.relayed = 0
        self.vicc_lost = False

    # --- vicc side
    def vicc_send(self, payload):
        self.vicc.sendall(struct.pack("!H", len(payload)) + payload)

    def vicc_recv(self):
        (n,) = struct.unpack("!H", read_exact(self.vicc, 2))
        return read_exact(self.vicc, n)

    def vicc_atr(self):
        for command in (b"\x00", b"\x01"):
            self.vicc_send(command)
        self.vicc_send(b"\x04")
        atr = self.vicc_recv()
        mode = self.args.atr
        shown = atr if mode == "vicc" else t0_only_atr(atr) if mode == "auto" else bytes.fromhex(mode)
        if shown != atr:
            log("vicc ATR", atr.hex().upper(), "presented as", shown.hex().upper())
        return shown

    # --- QEMU side
    def qemu_send(self, kind, reader, payload=b""):
        self.qemu.sendall(struct.pack("!III", kind, reader, len(payload)) + payload)

    def insert(self):
        if self.qemu is None or self.vicc is None:
            return
        self.qemu_send(ATR, 0, self.vicc_atr())
        self.card_present = True
        log("card inserted")

    def remove(self):
        if self.qemu is not None and self.card_present:
            self.qemu_send(CARD_REMOVE, 0)
            self.card_present = False
            log("card removed")

    def on_qemu_message(self):
        kind, reader, length = struct.unpack("!III", read_exact(self.qemu, 12))
        payload = read_exact(self.qemu, length) if length else b""
        if kind == APDU:
            try:
                if self.vicc is None:
                    raise EOFError("vicc is gone")
                self.vicc_send(payload)
                response = self.vicc_recv()
            except (EOFError, OSError) as err:
                # Unanswered, QEMU would never complete the XfrBlock and the guest's
                # driver would wait for minutes. VSCard Error fails it at once; the card
                # is pulled a second later (a CardRemove right after the Error can make
                # QEMU drop the failed DataBlock before the guest reads it).
                log("APDU", payload.hex().upper(), "failed:", err)
                self.qemu_send(ERROR, reader, struct.pack("!I", 1))
                self.vicc, self.vicc_lost = None, True
                self.delayed_remove = time.monotonic() + 1.0
                return
            self.relayed += 1
            if self.args.verbose:
                log("APDU", payload.hex().upper(), "->", response.hex().upper())
            self.qemu_send(APDU, reader, response)
        elif kind == FLUSH:
            self.qemu_send(FLUSH_COMPLETE, reader)
        elif kind == ERROR and self.args.verbose:
            log("QEMU error message", payload.hex())

    def run(self):
        args = self.args
        vicc_listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        vicc_listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        vicc_listener.bind(("127.0.0.1", 0))
        vicc_listener.listen(1)
        port = vicc_listener.getsockname()[1]
        quiet = None if args.verbose else subprocess.DEVNULL
        child = subprocess.Popen(args.vicc_cmd.split() + ["-H", "127.0.0.1", "-P", str(port)],
                                 stdout=quiet, stderr=quiet)
        if os.path.exists(args.qemu_socket):
            os.unlink(args.qemu_socket)
        qemu_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        qemu_listener.bind(args.qemu_socket)
        qemu_listener.listen(1)
        if args.ready_file:
            open(args.ready_file, "w").close()
        pending = []
        signal.signal(signal.SIGUSR1, lambda *_: pending.append("remove"))
        signal.signal(signal.SIGUSR2, lambda *_: pending.append("insert"))
        signal.signal(signal.SIGTERM, lambda *_: pending.append("quit"))
        deadline = time.monotonic() + 30
        try:
            while True:
                while pending:
                    action = pending.pop(0)
                    if action == "quit":
                        return
                    self.remove() if action == "remove" else self.insert()
                if self.delayed_remove and time.monotonic() >= self.delayed_remove:
                    self.delayed_remove = None
                    self.remove()
                if (self.qemu is None or (self.vicc is None and not self.vicc_lost)) and time.monotonic() > deadline:
                    log("no connection from", "QEMU" if self.qemu is None else "vicc", "in 30 s")
                    return
                watched = [s for s in (self.qemu, vicc_listener if self.vicc is None and not self.vicc_lost else None,
                                       qemu_listener if self.qemu is None else None) if s]
                try:
                    ready, _, _ = select.select(watched, [], [], 0.2)
                except InterruptedError:
                    continue
                for sock in ready:
                    if sock is vicc_listener:
                        self.vicc, _ = vicc_listener.accept()
                        self.vicc.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        vicc_listener.close()
                        log("vicc connected")
                        if self.qemu is not None and not args.no_card:
                            self.insert()
                    elif sock is qemu_listener:
                        self.qemu, _ = qemu_listener.accept()
                        log("QEMU connected")
                        self.qemu_send(INIT, ANY_READER, b"VSCD" + struct.pack("!II", 2, 0))
                        self.qemu_send(READER_ADD, ANY_READER, b"vicc\0")
                        if self.vicc is not None and not args.no_card:
                            self.insert()
                    else:
                        self.on_qemu_message()
        except (EOFError, ConnectionResetError) as err:
            log("connection closed:", err)
        finally:
            log("APDUs relayed:", self.relayed)
            child.terminate()
            try:
                child.wait(3)
            except subprocess.TimeoutExpired:
                child.kill()
            if os.path.exists(args.qemu_socket):
                os.unlink(args.qemu_socket)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qemu-socket", required=True)
    parser.add_argument("--vicc-cmd", default="vicc -t iso7816")
    parser.add_argument("--ready-file")
    parser.add_argument("--no-card", action="store_true", help="reader only; SIGUSR2 inserts the card")
    parser.add_argument("--atr", default="auto", help="auto | vicc | HEX")
    parser.add_argument("-v", "--verbose", action="store_true")
    Bridge(parser.parse_args()).run()


if __name__ == "__main__":
    main()
