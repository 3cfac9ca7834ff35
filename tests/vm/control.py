#!/usr/bin/python3
"""Guest -> host control channel of the VM harness.

QEMU connects the guest's /dev/ttyS1 to --serial-socket (we listen). The guest (`rig`)
writes one command per line; every reply ends with a line "@@END":
  card remove | card insert   pull / re-insert the card (SIGUSR1 / SIGUSR2 to the
                              vscard bridge; with no bridge: QMP device_del/device_add)
  monitor HMP-COMMAND...      run a human monitor command (e.g. `device_del ccid`)
                              through QMP; its output is the reply
The QMP socket (--qmp-socket, QEMU listens) is opened on first use.
"""
import argparse, json, os, signal, socket, sys, time


def log(*words):
    print("[control]", *words, file=sys.stderr, flush=True)


class Qmp:
    def __init__(self, path):
        self.path, self.sock, self.buf = path, None, b""

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None):
        if self.sock is None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(self.path)
            self._line()  # greeting
            self.execute("qmp_capabilities")
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            reply = self._line()
            if "event" in reply:
                log("event", reply["event"], json.dumps(reply.get("data", {})))
                continue
            if "error" in reply:
                return "error: " + reply["error"].get("desc", "?")
            result = reply.get("return", "")
            return result if isinstance(result, str) else json.dumps(result)

    def hmp(self, line):
        return self.execute("human-monitor-command", {"command-line": line})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serial-socket", required=True)
    parser.add_argument("--qmp-socket", required=True)
    parser.add_argument("--bridge-pid", type=int)
    parser.add_argument("--card-device", default="", help="device_add argument to re-insert a non-bridge card")
    args = parser.parse_args()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(args.serial_socket):
        os.unlink(args.serial_socket)
    listener.bind(args.serial_socket)
    listener.listen(1)
    listener.settimeout(60)
    serial, _ = listener.accept()
    qmp = Qmp(args.qmp_socket)
    pending = b""
    while True:
        chunk = serial.recv(4096)
        if not chunk:
            return
        pending += chunk.replace(b"\r", b"\n")
        while b"\n" in pending:
            raw, pending = pending.split(b"\n", 1)
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            started = time.monotonic()
            try:
                reply = run(line, args, qmp)
            except Exception as err:  # the guest must always get an answer
                reply = "error: %s" % err
            log("%r -> %r (%.3f s)" % (line, reply, time.monotonic() - started))
            serial.sendall((reply.rstrip("\n") + "\n@@END\n").encode() if reply else b"@@END\n")


def run(line, args, qmp):
    words = line.split()
    if words[:1] == ["card"] and len(words) == 2 and words[1] in ("remove", "insert"):
        if args.bridge_pid:
            os.kill(args.bridge_pid, signal.SIGUSR1 if words[1] == "remove" else signal.SIGUSR2)
            return "ok"
        if words[1] == "remove":
            return qmp.hmp("device_del card") or "ok"
        return qmp.hmp("device_add " + args.card_device) or "ok"
    if words[:1] == ["monitor"] and len(words) > 1:
        return qmp.hmp(line.split(None, 1)[1]) or "ok"
    return "error: unknown command " + line


if __name__ == "__main__":
    main()
