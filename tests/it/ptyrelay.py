# SPDX-License-Identifier: MIT
"""ptyrelay - a fault-injecting serial line between otagw and a device.

    gateway --- A: socat pty(link=gw) <-> pty(link=.a_in) ---.
                                                             relay threads (Python)
    device  --- B: socat pty(link=dev) <-> pty(link=.b_in) --'

Two socat pty pairs; two Python threads pump bytes between the inner ends
(.a_in and .b_in), one per direction. On the way each byte may be corrupted
(XOR with a random nonzero value) with probability `corrupt`, or dropped with
probability `drop`; the RNG of each direction is seeded (seed, seed + 1), so
a run is repeatable for the same byte stream. Faults apply to gateway ->
device only (direction="gw2dev", the default) or to both ("both"), and can
be changed while running (set_faults), e.g. switched on only after the JSON
reply went through. `rate` (bytes/s, per direction) paces the pumps like a
UART (115200 baud 8N1 = 11520 bytes/s). With capture=True the bytes the
gateway sent are kept (before any fault) in .captured_gw.

Standard library only. Every wait is bounded; stop() joins the threads
(they poll a stop flag every 0.1 s) and ends both socat processes."""

import errno
import os
import random
import select
import subprocess
import threading
import time
import tty

SOCAT = "socat"


def start_socat_pair(link1, link2, log_path=None, timeout=5.0):
    """socat pty,raw,echo=0,link=link1 pty,raw,echo=0,link=link2; waits until
    both links exist (stale links are removed first). Returns the Popen."""
    for ln in (link1, link2):
        try:
            os.unlink(ln)
        except FileNotFoundError:
            pass
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        p = subprocess.Popen([SOCAT, "-d", "-d", "pty,raw,echo=0,link=%s" % link1,
                              "pty,raw,echo=0,link=%s" % link2],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    finally:
        if log_path:
            log.close()
    deadline = time.monotonic() + timeout
    while not (os.path.exists(link1) and os.path.exists(link2)):
        if p.poll() is not None:
            raise RuntimeError("socat exited with %d before creating %s and %s"
                               % (p.returncode, link1, link2))
        if time.monotonic() >= deadline:
            stop_socat(p)
            raise RuntimeError("socat did not create %s and %s within %.0f s"
                               % (link1, link2, timeout))
        time.sleep(0.01)
    return p


def stop_socat(p, sig_wait=2.0):
    """SIGTERM (socat then removes its links), SIGKILL if it lingers."""
    if p is None:
        return
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(sig_wait)
        except subprocess.TimeoutExpired:
            p.kill()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _open_inner(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


class _Pump(threading.Thread):
    def __init__(self, relay, name, src, dst, seed):
        super().__init__(name="ptyrelay-" + name, daemon=True)
        self.relay = relay
        self.dname = name
        self.src = src
        self.dst = dst
        self.rng = random.Random(seed)
        self.bytes_in = 0
        self.bytes_out = 0
        self.corrupted = 0
        self.dropped = 0
        self.error = None
        self._next = None            # pacing: monotonic time the next byte may go

    def faults(self):
        r = self.relay
        if self.dname == "gw2dev" or r.direction == "both":
            return r.corrupt, r.drop
        return 0.0, 0.0

    def mangle(self, data):
        corrupt, drop = self.faults()
        if not corrupt and not drop:
            return data
        out = bytearray()
        rnd = self.rng.random
        for b in data:
            if drop and rnd() < drop:
                self.dropped += 1
                continue
            if corrupt and rnd() < corrupt:
                b ^= self.rng.randrange(1, 256)
                self.corrupted += 1
            out.append(b)
        return bytes(out)

    def write_all(self, data):
        view = memoryview(data)
        while view and not self.relay._stop.is_set():
            _, w, _ = select.select([], [self.dst], [], 0.1)
            if not w:
                continue
            try:
                n = os.write(self.dst, view)
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADF):
                    self.error = e
                    return False
                raise
            view = view[n:]
            self.bytes_out += n
        return True

    def paced_write(self, data):
        rate = self.relay.rate
        if not rate:
            return self.write_all(data)
        step = max(1, int(rate / 100))          # 10 ms worth of bytes at a time
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            now = time.monotonic()
            if self._next is None or self._next < now:
                self._next = now
            wait = self._next - now
            while wait > 0 and not self.relay._stop.is_set():
                time.sleep(min(wait, 0.1))
                wait = self._next - time.monotonic()
            if not self.write_all(piece):
                return False
            self._next += len(piece) / float(rate)
        return True

    def run(self):
        stop = self.relay._stop
        while not stop.is_set():
            try:
                r, _, _ = select.select([self.src], [], [], 0.1)
                if not r:
                    continue
                chunk = 256 if self.relay.rate else 65536
                try:
                    data = os.read(self.src, chunk)
                except BlockingIOError:
                    continue
                if not data:
                    time.sleep(0.05)
                    continue
                self.bytes_in += len(data)
                if self.dname == "gw2dev" and self.relay.capture:
                    self.relay.captured_gw += data
                data = self.mangle(data)
                if data:
                    self.paced_write(data)
            except OSError as e:
                # EIO: the outer end of a socat pair is not open at the
                # moment (daemon reopening, device between opens), or socat
                # is gone: keep polling until stopped.
                self.error = e
                time.sleep(0.05)


class PtyRelay:
    """Gateway side: .gw (give it to [serial] path); device side: .dev."""

    def __init__(self, workdir, corrupt=0.0, drop=0.0, seed=1, direction="gw2dev", rate=None,
                 capture=False, name="relay"):
        if direction not in ("gw2dev", "both"):
            raise ValueError("direction must be gw2dev or both")
        self.workdir = workdir
        self.gw = os.path.join(workdir, name + "-gw")
        self.dev = os.path.join(workdir, name + "-dev")
        self._a_in = os.path.join(workdir, "." + name + "-a_in")
        self._b_in = os.path.join(workdir, "." + name + "-b_in")
        self.log = os.path.join(workdir, name + "-socat.log")
        self.corrupt = corrupt
        self.drop = drop
        self.seed = seed
        self.direction = direction
        self.rate = rate
        self.capture = capture
        self.captured_gw = b""
        self._stop = threading.Event()
        self._socats = []
        self._fds = []
        self._pumps = []

    def start(self):
        try:
            self._socats.append(start_socat_pair(self.gw, self._a_in, self.log))
            self._socats.append(start_socat_pair(self._b_in, self.dev, self.log))
            a = _open_inner(self._a_in)
            self._fds.append(a)
            b = _open_inner(self._b_in)
            self._fds.append(b)
            self._pumps = [_Pump(self, "gw2dev", a, b, self.seed),
                           _Pump(self, "dev2gw", b, a, self.seed + 1)]
            for p in self._pumps:
                p.start()
        except BaseException:
            self.stop()
            raise
        return self

    def set_faults(self, corrupt=None, drop=None):
        if corrupt is not None:
            self.corrupt = corrupt
        if drop is not None:
            self.drop = drop

    def stats(self):
        return {p.dname: {"in": p.bytes_in, "out": p.bytes_out, "corrupted": p.corrupted,
                          "dropped": p.dropped} for p in self._pumps}

    @property
    def corrupted(self):
        return sum(p.corrupted for p in self._pumps)

    @property
    def dropped(self):
        return sum(p.dropped for p in self._pumps)

    def stop(self):
        self._stop.set()
        for p in self._pumps:
            p.join(3.0)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []
        for s in self._socats:
            stop_socat(s)
        self._socats = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
