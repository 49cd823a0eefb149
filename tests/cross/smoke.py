#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""smoke - one integration pass against a daemon started through a runner
(qemu-user for a cross-built binary): create a firmware through the REST API,
upload its image, download it back with curl (whole and by Range) and compare,
then a TCP device (tests/devsim.py, frame codec: big-endian lengths and a
CRC-32 on every frame) pulls it in-band by chunks and reports success.

    tests/cross/smoke.py --bin build/arm64/otagw --runner "qemu-aarch64 -L /usr/aarch64-linux-gnu"

Prints TAP ("ok N - ...", "not ok N - ..."), "# " lines with the daemon's idle
RSS, and exits 1 on any failure. Loopback only; every wait is bounded.
Standard library only (and curl).
"""

import argparse
import hashlib
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"
START_TIMEOUT = 60.0     # s: an emulated daemon opens its database slowly
HTTP_TIMEOUT = 30.0      # s: per request
IMAGE_SIZE = 300 * 1024 + 77   # not a multiple of any chunk or block size


class Smoke:
    def __init__(self, binary, runner, workdir):
        self.binary = os.path.abspath(binary)
        self.runner = shlex.split(runner) if runner else []
        self.dir = workdir
        self.http = free_port()
        self.tcp = free_port()
        self.proc = None
        self.log = os.path.join(workdir, "otagw.log")
        self.n = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        self.n += 1
        if ok:
            print("ok %d - %s" % (self.n, what))
        else:
            self.failed += 1
            print("not ok %d - %s%s" % (self.n, what, (": " + detail) if detail else ""))
        sys.stdout.flush()
        return ok

    def start(self):
        conf = os.path.join(self.dir, "otagw.conf")
        with open(conf, "w") as f:
            f.write("[http]\nbind = 127.0.0.1\nport = %d\nwww_dir = \n"
                    "[tcp]\nbind = 127.0.0.1\nport = %d\ncodec = frame\n"
                    % (self.http, self.tcp))
        data = os.path.join(self.dir, "data")
        cmd = self.runner + [self.binary, "-c", conf, "-d", data]
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.request("GET", "/api/health", timeout=2)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def stop(self):
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return "killed"
        self.logf.close()
        return self.proc.returncode

    def request(self, method, path, body=None, timeout=HTTP_TIMEOUT, raw=False):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request("http://%s:%d%s" % (HOST, self.http, path), data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type",
                           "application/octet-stream" if isinstance(body, bytes)
                           else "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                st, out = r.status, r.read()
        except urllib.error.HTTPError as e:
            st, out = e.code, e.read()
        if raw:
            return st, out
        try:
            return st, json.loads(out) if out else None
        except ValueError:
            return st, out

    def rss_kib(self):
        """VmRSS of the daemon's process (with qemu-user: the emulator's,
        translated code and guest memory together)."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def curl(self, url, out, extra=()):
        r = subprocess.run(["curl", "-sS", "-f", "--max-time", "60", "-o", out,
                            "-w", "%{http_code}"] + list(extra) + [url],
                           capture_output=True, text=True, timeout=90)
        return r.stdout.strip(), r.stderr.strip()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(s):
    if not s.check(s.start(), "daemon starts and answers /api/health",
                   "exited %r" % (s.proc.poll(),)):
        return
    time.sleep(2)
    rss = s.rss_kib()
    print("# idle VmRSS after start + 2 s: %s KiB (%s)" %
          (rss, "under " + s.runner[0] if s.runner else "native"))

    image = random.Random(0x07A6).randbytes(IMAGE_SIZE)
    sha = hashlib.sha256(image).hexdigest()
    st, fw = s.request("POST", "/api/firmware", {
        "productId": "meter", "name": "meter fw", "version": "2.0", "versionOrder": 2,
        "size": IMAGE_SIZE, "sign": sha, "signMethod": "sha256"})
    if not s.check(st == 201 and isinstance(fw, dict) and fw.get("id"),
                   "POST /api/firmware creates it", "%s %r" % (st, fw)):
        return
    fid = fw["id"]

    st, up = s.request("PUT", "/api/firmware/%s/image" % fid, image, timeout=120)
    state = up.get("image", {}).get("state") if isinstance(up, dict) else None
    s.check(st == 200 and state == "ready", "PUT image: verified and ready",
            "%s %r" % (st, up))
    s.check(isinstance(up, dict) and up.get("image", {}).get("sha256") == sha,
            "the cache names the image by its SHA-256", repr(up))

    url = "http://%s:%d/images/%s" % (HOST, s.http, fid)
    whole = os.path.join(s.dir, "whole.bin")
    code, err = s.curl(url, whole)
    got = open(whole, "rb").read() if os.path.exists(whole) else b""
    s.check(code == "200" and got == image, "curl GET /images/{id}: the same bytes",
            "HTTP %s, %d bytes, %s" % (code, len(got), err))

    part = os.path.join(s.dir, "part.bin")
    code, err = s.curl(url, part, ["-r", "100000-199999"])
    got = open(part, "rb").read() if os.path.exists(part) else b""
    s.check(code == "206" and got == image[100000:200000],
            "curl Range 100000-199999: 206 and the same slice",
            "HTTP %s, %d bytes, %s" % (code, len(got), err))

    st, dev = s.request("POST", "/api/devices",
                        {"id": "d1", "productId": "meter", "firmwareVersion": "1.0"})
    st2, task = s.request("POST", "/api/firmware/%s/tasks" % fid,
                          {"name": "smoke", "mode": "pull", "timeoutSeconds": 600})
    st3, pub = (s.request("POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["d1"]})
                if st2 == 201 else (None, None))
    if not s.check(st == 201 and st2 == 201 and st3 == 200,
                   "device, pull task and publish through the API",
                   "%s %s %s %r" % (st, st2, st3, pub)):
        return

    out = os.path.join(s.dir, "tcp.bin")
    dv = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tests", "devsim.py"),
                         "--port", str(s.tcp), "--codec", "frame", "--device", "d1",
                         "--product", "meter", "--current", "1.0", "--chunk", "4000",
                         "--timeout", "60", "--out", out],
                        capture_output=True, text=True, timeout=300)
    got = open(out, "rb").read() if os.path.exists(out) else b""
    s.check(dv.returncode == 0 and got == image,
            "TCP device (frame codec) pulls the image by chunks, CRC-32 checked",
            "devsim exit %d, %d bytes: %s" % (dv.returncode, len(got),
                                             (dv.stdout + dv.stderr)[-600:]))

    st, recs = s.request("GET", "/api/tasks/%s/records" % task["id"])
    states = [r.get("state") for r in recs.get("items", [])] if isinstance(recs, dict) else []
    s.check(st == 200 and states == ["success"], "the device's record is success",
            "%s %r" % (st, recs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the otagw binary")
    ap.add_argument("--runner", default="", help='e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"')
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otagw-smoke-") as d:
        s = Smoke(a.bin, a.runner, d)
        try:
            run(s)
        finally:
            rc = s.stop()
            s.check(rc == 0, "SIGTERM: clean exit", "exit %r" % (rc,))
            if s.failed:
                with open(s.log, errors="replace") as f:
                    tail = f.read().splitlines()[-40:]
                print("# daemon log (last 40 lines):")
                for line in tail:
                    print("#   " + line)
        print("1..%d" % s.n)
        return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
