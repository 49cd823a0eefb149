#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""serialdev - a serial-line device for otagw's [serial NAME] ports (the
JSON line protocol of southbound/PROTOCOL.md section 2, one JetLinks message
per line, and images by YMODEM through lrzsz's `rz --ymodem`).

Library (standard library only; every wait is bounded):

    d = SerialDevice("/tmp/x/dev", "d1", product="meter")   # opens it raw
    d.report("1.0.0")
    rep = d.pull()                      # REQUEST_FIRMWARE -> the reply dict
    res = d.rz(dest_dir, timeout=30)    # RzResult(rc, path, files, stderr, seconds)
    d.progress("2.0.0", fw_id, 100, complete=True, success=True)
    d.close()                           # also kills an rz still running

read_msg() skips lines that are not JSON objects (noise, YMODEM control
bytes left on the line) and keeps them in d.noise; every message read is
also kept in d.received. start_rz() returns the rz process for a test that
wants to kill it mid-transfer; wait_rz() collects it.

CLI (a device you can drive by hand against a pty the daemon opened):

    /usr/bin/python3 tests/serialdev.py --path /tmp/x/dev --device d1 \\
        --product meter report 1.0.0
    ... pull [--force] [--rz DIR] [--complete]   # pull, receive, report done
    ... send '{"messageType":"REPORT_FIRMWARE","deviceId":"d1","version":"1"}'
    ... raw 18 18                                  # hex bytes (CAN CAN)
    ... listen [--seconds N]                       # print what arrives
"""

import argparse
import binascii
import errno
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty

RZ = "rz"
CAN = b"\x18"


class PortGone(OSError):
    """The pty went away (socat killed): read or write failed with EIO."""


class RzResult:
    def __init__(self, rc, path, files, stderr, seconds, timed_out=False):
        self.rc = rc                # exit code; None when killed on timeout
        self.path = path            # the one file received, or None
        self.files = files          # every new file in dest_dir
        self.stderr = stderr
        self.seconds = seconds      # from start to exit
        self.timed_out = timed_out

    def __repr__(self):
        return "RzResult(rc=%r, path=%r, files=%r, seconds=%.2f, timed_out=%r, stderr=%r)" % (
            self.rc, self.path, self.files, self.seconds, self.timed_out, self.stderr[-400:])


def now_ms():
    return int(time.time() * 1000)


def open_raw(path, timeout=5.0):
    """Opens a tty path O_RDWR|O_NOCTTY in raw mode, retrying while the path
    does not exist yet (socat still starting) up to timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
            break
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.EIO, errno.ENXIO) or \
                    time.monotonic() >= deadline:
                raise
            time.sleep(0.02)
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error:
        os.close(fd)
        raise
    return fd


def _json_in(line):
    """The JSON object a line ends with: noise (YMODEM bytes left on the
    line, CAN and BS of a killed rz) may come before it. None if none."""
    start = line.find(b"{")
    while start >= 0:
        try:
            m = json.loads(line[start:].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            m = None
        if isinstance(m, dict):
            return m
        start = line.find(b"{", start + 1)
    return None


class SerialDevice:
    """One device on one serial line (a pty path)."""

    def __init__(self, path, device_id, product=None, timeout=5.0, open_now=True):
        self.path = path
        self.device_id = device_id
        self.product = product
        self.timeout = timeout
        self.fd = None
        self.buf = b""
        self.received = []          # every JSON message read, in order
        self.noise = []             # lines that were not JSON objects
        self._mid = 0
        self._rz = []               # rz processes started, for close()
        if open_now:
            self.open()

    # -- the line ----------------------------------------------------------

    def open(self, timeout=5.0):
        self.close_fd()
        self.fd = open_raw(self.path, timeout)
        self.buf = b""
        try:
            termios.tcflush(self.fd, termios.TCIFLUSH)
        except termios.error:
            pass
        return self

    def close_fd(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def close(self):
        for p in self._rz:
            stop_proc(p)
        self._rz = []
        self.close_fd()

    def write(self, data, timeout=None):
        """Writes all bytes (bounded): raises PortGone on EIO."""
        if isinstance(data, str):
            data = data.encode()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: write of %d bytes stalled" % (self.path, len(view)))
            _, w, _ = select.select([], [self.fd], [], min(left, 0.2))
            if not w:
                continue
            try:
                n = os.write(self.fd, view)
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADF, errno.ENXIO):
                    raise PortGone(e.errno, "%s: %s" % (self.path, e.strerror)) from None
                if e.errno == errno.EAGAIN:
                    continue
                raise
            view = view[n:]

    def _fill(self, timeout):
        """Reads what is there within timeout into self.buf; False on timeout."""
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            b = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno in (errno.EIO, errno.EBADF, errno.ENXIO):
                raise PortGone(e.errno, "%s: %s" % (self.path, e.strerror)) from None
            raise
        if not b:
            raise PortGone(errno.EIO, "%s: end of file" % self.path)
        self.buf += b
        return True

    def read_bytes(self, n, timeout=None):
        """Up to n bytes: what is buffered, else what arrives within timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_exact(self, n, timeout=None):
        """Exactly n bytes, or fewer when timeout passed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_line(self, timeout=None):
        """One line (bytes, without "\\n" and a "\\r" before it) or None."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line[:-1] if line.endswith(b"\r") else line

    def read_msg(self, timeout=None):
        """The next JSON object line (a dict), skipping noise; None on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            m = _json_in(line)
            if m is not None:
                self.received.append(m)
                return m
            self.noise.append(line)

    def wait_for(self, message_type, message_id=None, timeout=None):
        """The next message of that type (and messageId); others are skipped
        (they stay in self.received). Raises TimeoutError naming what came."""
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        seen = []
        while True:
            m = self.read_msg(max(0.0, deadline - time.monotonic()))
            if m is None:
                raise TimeoutError("%s: no %s%s within %.1f s; got %r, noise %r" % (
                    self.device_id, message_type,
                    " (messageId %s)" % message_id if message_id else "", t, seen,
                    self.noise[-5:]))
            if m.get("messageType") == message_type and \
                    (message_id is None or m.get("messageId") == message_id):
                return m
            seen.append(m)

    def errors(self):
        return [m for m in self.received if m.get("messageType") == "ERROR"]

    def drain(self, quiet=0.2, timeout=2.0):
        """Reads and discards until the line was silent for quiet seconds
        (bounded by timeout); returns what was discarded."""
        deadline = time.monotonic() + timeout
        got = self.buf
        self.buf = b""
        while time.monotonic() < deadline:
            if not self._fill(min(quiet, max(0.0, deadline - time.monotonic()))):
                break
            got += self.buf
            self.buf = b""
        return got

    def resync(self, quiet=0.2, timeout=2.0):
        """After a YMODEM transfer (or an rz that was killed, which leaves
        CAN and BS bytes on the line): ends any partial line with "\\n" and
        discards what comes back for a moment."""
        self.write(b"\n")
        return self.drain(quiet, timeout)

    # -- messages -----------------------------------------------------------

    def next_id(self, prefix="m"):
        self._mid += 1
        return "%s%d" % (prefix, self._mid)

    def send(self, msg, crlf=False):
        m = dict(msg)
        m.setdefault("deviceId", self.device_id)
        m.setdefault("timestamp", now_ms())
        self.write(json.dumps(m, separators=(",", ":")).encode() + (b"\r\n" if crlf else b"\n"))
        return m

    def _headers(self, extra=None):
        h = {}
        if self.product:
            h["productId"] = self.product
        h.update(extra or {})
        return h

    def report(self, version, properties=None):
        m = {"messageType": "REPORT_FIRMWARE", "version": version}
        if properties is not None:
            m["properties"] = properties
        h = self._headers()
        if h:
            m["headers"] = h
        return self.send(m)

    def pull(self, force=False, request_version="", current_version=None, timeout=None,
             message_id=None):
        mid = message_id or self.next_id()
        m = {"messageType": "REQUEST_FIRMWARE", "messageId": mid,
             "requestVersion": request_version, "headers": self._headers({"force": force})}
        if current_version is not None:
            m["currentVersion"] = current_version
        self.send(m)
        return self.wait_for("REQUEST_FIRMWARE_REPLY", mid, timeout)

    def progress(self, version, firmware_id, progress, complete=False, success=True,
                 error_reason=None):
        m = {"messageType": "UPGRADE_FIRMWARE_PROGRESS", "version": version,
             "firmwareId": firmware_id, "progress": progress, "complete": complete,
             "success": success}
        if error_reason is not None:
            m["errorReason"] = error_reason
        return self.send(m)

    def upgrade_reply(self, message_id, success=True):
        return self.send({"messageType": "UPGRADE_FIRMWARE_REPLY", "messageId": message_id,
                          "success": success})

    # -- YMODEM by rz -------------------------------------------------------

    def start_rz(self, dest_dir, args=("-y", "-q")):
        """Starts `rz --ymodem` on this line (stdin and stdout), cwd dest_dir.
        Bytes already read into self.buf belong to the line, not to rz:
        there must be none (the gateway waits for rz's 'C')."""
        os.makedirs(dest_dir, exist_ok=True)
        if self.buf:
            self.noise.append(self.buf)
            self.buf = b""
        err = open(os.path.join(dest_dir, ".rz.stderr"), "wb")
        try:
            p = subprocess.Popen([RZ, "--ymodem"] + list(args), stdin=self.fd, stdout=self.fd,
                                 stderr=err, cwd=dest_dir, close_fds=True)
        finally:
            err.close()
        p.dest_dir = dest_dir
        p.before = set(os.listdir(dest_dir))
        p.t0 = time.monotonic()
        self._rz.append(p)
        return p

    def wait_rz(self, p, timeout=30.0):
        """Waits for rz (killing it past timeout); returns an RzResult."""
        timed_out = False
        try:
            rc = p.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_proc(p)
            rc = None
        secs = time.monotonic() - p.t0
        if p in self._rz:
            self._rz.remove(p)
        try:
            with open(os.path.join(p.dest_dir, ".rz.stderr"), "rb") as f:
                stderr = f.read().decode("utf-8", "replace")
        except OSError:
            stderr = ""
        files = sorted(set(os.listdir(p.dest_dir)) - p.before - {".rz.stderr"})
        path = os.path.join(p.dest_dir, files[0]) if len(files) == 1 else None
        return RzResult(rc, path, files, stderr, secs, timed_out)

    def rz(self, dest_dir, timeout=30.0, args=("-y", "-q")):
        return self.wait_rz(self.start_rz(dest_dir, args), timeout)

    # -- YMODEM in Python (for tests that need to stop or cancel midway) -----

    def ymodem_receive(self, timeout=10.0, byte_timeout=3.0, stop_after=None,
                       cancel_after=None, eot_nak=True):
        """A minimal YMODEM-1K receiver (CRC mode) on this line. Sends 'C',
        takes block 0, data blocks (ACK; NAK on a bad block; a repeated
        block is ACKed again), EOT (NAKs the first one when eot_nak, like
        the classic receiver, then ACKs), 'C', and the empty block 0 (ACK).
        stop_after=N: after N data blocks stop answering and return;
        cancel_after=N: answer the N+1-th data block with CAN CAN.
        Returns a YmodemResult; never raises on protocol trouble."""
        res = YmodemResult()
        deadline = time.monotonic() + timeout
        data = bytearray()
        expect = 1
        eots = 0
        phase = "hdr"              # hdr, data, end
        self.write(b"C")
        while True:
            left = min(byte_timeout, deadline - time.monotonic())
            if left <= 0:
                res.error = "timeout in phase %s" % phase
                break
            h = self.read_exact(1, left)
            if not h:
                res.error = "no byte within %.1f s in phase %s" % (left, phase)
                break
            c = h[0]
            if c == 0x18:                               # CAN from the sender
                nxt = self.read_exact(1, 0.5)
                res.error = "sender cancelled"
                res.cancelled_by_sender = nxt == b"\x18"
                break
            if c == 0x04:                               # EOT
                res.frames.append(("EOT", None, 0))
                eots += 1
                if eot_nak and eots == 1:
                    self.write(b"\x15")
                    continue
                self.write(b"\x06")
                self.write(b"C")
                phase = "end"
                continue
            if c not in (0x01, 0x02):
                res.noise += h
                continue
            n = 1024 if c == 0x02 else 128
            rest = self.read_exact(n + 4, byte_timeout)
            if len(rest) < n + 4:
                res.bad += 1
                self.drain(0.1, 1.0)
                self.write(b"\x15")
                continue
            seq, cseq, payload, crc = rest[0], rest[1], rest[2:2 + n], rest[2 + n:]
            if seq != 255 - cseq or crc16(payload) != (crc[0] << 8 | crc[1]):
                res.bad += 1
                self.drain(0.1, 1.0)
                self.write(b"\x15")
                continue
            res.frames.append(("STX" if c == 0x02 else "SOH", seq, n))
            if phase == "hdr" and seq == 0:
                name, _, rest0 = payload.partition(b"\0")
                res.name = name.decode("latin-1")
                fields = rest0.split(b"\0", 1)[0].split(b" ")
                res.size = int(fields[0]) if fields and fields[0] else None
                self.write(b"\x06")
                self.write(b"C")
                phase = "data"
                continue
            if phase == "end" and seq == 0:
                res.end_block_empty = payload[0] == 0
                self.write(b"\x06")
                res.ok = True
                break
            if phase != "data":
                res.noise += h + rest[:8]
                self.write(b"\x15")
                continue
            if seq == (expect - 1) & 0xFF:              # a resend of the last one
                res.duplicates += 1
                self.write(b"\x06")
                continue
            if seq != expect & 0xFF:
                res.error = "block %d, expected %d" % (seq, expect & 0xFF)
                self.write(b"\x18\x18")
                break
            res.blocks += 1
            if cancel_after is not None and res.blocks > cancel_after:
                self.write(b"\x18\x18")
                res.error = "cancelled by us"
                break
            data += payload
            expect += 1
            self.write(b"\x06")
            if stop_after is not None and res.blocks >= stop_after:
                res.error = "stopped by us"
                break
        res.data = bytes(data[:res.size]) if res.size is not None else bytes(data)
        res.raw_len = len(data)
        return res


class YmodemResult:
    def __init__(self):
        self.ok = False
        self.error = None
        self.name = None
        self.size = None
        self.data = b""
        self.raw_len = 0
        self.frames = []            # (kind, seq, payload bytes) in arrival order
        self.blocks = 0             # data blocks taken
        self.bad = 0
        self.duplicates = 0
        self.noise = b""
        self.end_block_empty = None
        self.cancelled_by_sender = False

    def __repr__(self):
        return ("YmodemResult(ok=%r, error=%r, name=%r, size=%r, blocks=%d, bad=%d, dup=%d, "
                "frames[-4:]=%r, noise=%r)" % (self.ok, self.error, self.name, self.size,
                                                self.blocks, self.bad, self.duplicates,
                                                self.frames[-4:], self.noise[:40]))


def crc16(data):
    """CRC-16/XMODEM (poly 0x1021, init 0)."""
    return binascii.crc_hqx(bytes(data), 0)


def stop_proc(p, term_wait=2.0):
    """SIGTERM, then SIGKILL; always reaps. Safe on an exited process."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(term_wait)
        except subprocess.TimeoutExpired:
            p.kill()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


# -- CLI ------------------------------------------------------------------------

def _sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description="a JSON-line + YMODEM serial device for otagw")
    ap.add_argument("--path", required=True, help="the device end of the line (a pty)")
    ap.add_argument("--device", required=True, help="deviceId")
    ap.add_argument("--product", help="headers.productId to send")
    ap.add_argument("--timeout", type=float, default=10.0)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report")
    r.add_argument("version")
    p = sub.add_parser("pull")
    p.add_argument("--force", action="store_true")
    p.add_argument("--rz", metavar="DIR", help="receive the image into DIR")
    p.add_argument("--complete", action="store_true",
                   help="after a verified image, report progress 100 complete")
    s = sub.add_parser("send")
    s.add_argument("json")
    w = sub.add_parser("raw")
    w.add_argument("hex", nargs="+")
    li = sub.add_parser("listen")
    li.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args(argv)

    d = SerialDevice(a.path, a.device, product=a.product, timeout=a.timeout)
    try:
        if a.cmd == "report":
            d.report(a.version)
        elif a.cmd == "send":
            m = json.loads(a.json)
            d.send(m)
            if m.get("messageType") == "REQUEST_FIRMWARE":
                print(json.dumps(d.wait_for("REQUEST_FIRMWARE_REPLY", m.get("messageId"))))
        elif a.cmd == "raw":
            d.write(bytes.fromhex("".join(a.hex)))
        elif a.cmd == "listen":
            end = time.monotonic() + a.seconds
            while time.monotonic() < end:
                m = d.read_msg(end - time.monotonic())
                if m is not None:
                    print(json.dumps(m), flush=True)
        elif a.cmd == "pull":
            rep = d.pull(force=a.force)
            print(json.dumps(rep), flush=True)
            if not rep.get("success") or not a.rz:
                return 0 if rep.get("success") else 1
            res = d.rz(a.rz, timeout=max(60.0, a.timeout))
            print("rz: rc %r, %s, %.2f s" % (res.rc, res.path, res.seconds), flush=True)
            if res.rc != 0 or not res.path:
                print(res.stderr, file=sys.stderr)
                return 1
            ok = os.path.getsize(res.path) == rep.get("size") and \
                (rep.get("signMethod", "").lower() != "sha256" or
                 _sha256(res.path) == rep.get("sign", "").lower())
            print("image %s" % ("verified" if ok else "MISMATCH"), flush=True)
            if ok and a.complete:
                d.progress(rep["version"], rep["firmwareId"], 100, complete=True, success=True)
            return 0 if ok else 1
        return 0
    finally:
        d.close()


if __name__ == "__main__":
    sys.exit(main())
