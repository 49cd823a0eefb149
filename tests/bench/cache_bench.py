#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/bench/cache_bench.py BUILD - image cache benchmarks (prints, never
asserts). Starts and stops its own daemon (BUILD/otagw) and nginx on
127.0.0.1, in a temp dir:

  1. download: a 256 MiB image from nginx (sendfile, loopback) into the
     gateway's cache (published task -> image ready: HTTP client, SHA-256 as
     bytes arrive, write, checkpoints, fsync, rename), next to `curl -o` of
     the same file to the same disk in the same run (no hashing, no fsync).
     Target: ratio >= 0.9x.
  2. hashing: `sha256sum` of the file (ms per MiB, a reference) next to the
     gateway's PUT /api/firmware/{id}/image of the same file (socket
     receive + SHA-256 + write + fsync; sent with sendfile from Python).

Each figure is the best of BENCH_REPEAT (default 2) runs. Env BENCH_MIB
changes the image size (default 256)."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IT = os.path.join(os.path.dirname(HERE), "it")
sys.path.insert(0, IT)

import cachesrv  # noqa: E402
import otagw_it  # noqa: E402
import benchtab  # noqa: E402

HOST = "127.0.0.1"
MiB = 1 << 20
SIZE = int(os.environ.get("BENCH_MIB", "256")) * MiB
REPEAT = max(1, int(os.environ.get("BENCH_REPEAT", "2")))


class Daemon:
    def __init__(self, binary, workdir):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = otagw_it.free_port()
        self.config = os.path.join(workdir, "otagw.conf")
        self.data = os.path.join(workdir, "data")
        otagw_it.write_config(self.config, self.port, log_level="warn",
                              extra="\n[cache]\nmax_retry_delay = 1\nmax_downloads = 1\n")
        self.log = open(os.path.join(workdir, "otagw.log"), "w")
        self.proc = subprocess.Popen([binary, "-c", self.config, "-d", self.data],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("otagw exited with %d; see %s" % (self.proc.returncode,
                                                                   self.log.name))
            try:
                if self.req("GET", "/api/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SystemExit("otagw did not come up within 10 s")

    def req(self, method, path, body=None):
        st, js, _, _ = otagw_it.http_request(self.port, method, path, body=body, timeout=30)
        return st, js

    def ok(self, method, path, body=None):
        st, js = self.req(method, path, body)
        if st not in (200, 201, 204):
            raise SystemExit("%s %s -> %d %r" % (method, path, st, js))
        return js

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def best(fn, n=REPEAT):
    return min(fn(i) for i in range(n))


def curl_download(url, out):
    t0 = time.monotonic()
    subprocess.run(["curl", "-sS", "--fail", "-o", out, url], check=True, timeout=300)
    took = time.monotonic() - t0
    if os.path.getsize(out) != SIZE:
        raise SystemExit("curl got %d bytes" % os.path.getsize(out))
    os.unlink(out)
    return took


def gateway_download(d, url, digest, i):
    fw = d.ok("POST", "/api/firmware", {"productId": "bench", "name": "bench %d" % i,
                                        "version": "dl.%d" % i, "url": url, "size": SIZE,
                                        "sign": digest, "signMethod": "sha256"})["id"]
    task = d.ok("POST", "/api/firmware/%s/tasks" % fw, {"name": "bench", "mode": "pull"})["id"]
    t0 = time.monotonic()
    d.ok("POST", "/api/tasks/%s/publish" % task, {"all": True})
    deadline = t0 + 300
    while True:
        img = d.ok("GET", "/api/firmware/%s" % fw)["image"]
        if img["state"] == "ready":
            break
        if img["state"] == "failed" or time.monotonic() > deadline:
            raise SystemExit("gateway download: %r" % img)
        time.sleep(0.005)
    took = time.monotonic() - t0
    if img["sha256"] != digest:
        raise SystemExit("gateway download: wrong sha256 %r" % img)
    d.ok("POST", "/api/tasks/%s/cancel" % task)
    d.ok("DELETE", "/api/cache/%s" % digest)
    return took


def sha256sum(path):
    t0 = time.monotonic()
    out = subprocess.run(["sha256sum", path], check=True, stdout=subprocess.PIPE, text=True,
                         timeout=300).stdout
    took = time.monotonic() - t0
    return took, out.split()[0]


def gateway_upload(d, path, digest, i):
    fw = d.ok("POST", "/api/firmware", {"productId": "bench", "name": "up %d" % i,
                                        "version": "up.%d" % i, "size": SIZE,
                                        "sign": digest, "signMethod": "sha256"})["id"]
    s = socket.create_connection((HOST, d.port), timeout=300)
    t0 = time.monotonic()
    try:
        s.sendall(("PUT /api/firmware/%s/image HTTP/1.1\r\nHost: %s:%d\r\n"
                   "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n" % (fw, HOST, d.port, SIZE)).encode())
        with open(path, "rb") as f:
            s.sendfile(f)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
            if otagw_it._response_complete(got):
                break
    finally:
        s.close()
    took = time.monotonic() - t0
    if not got.startswith(b"HTTP/1.1 200"):
        raise SystemExit("upload: %r" % got[:300])
    d.ok("DELETE", "/api/cache/%s" % digest)
    return took


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: cache_bench.py BUILD")
    binary = os.path.abspath(os.path.join(sys.argv[1], "otagw"))
    if not os.access(binary, os.X_OK):
        raise SystemExit("no %s: run make" % binary)
    if not os.access(cachesrv.NGINX, os.X_OK):
        raise SystemExit("cache bench needs nginx: apt-get install -y nginx-light")
    for tool in ("curl", "sha256sum"):
        if not shutil.which(tool):
            raise SystemExit("cache bench needs %s" % tool)
    tmp = tempfile.mkdtemp(prefix="otagw-cache-bench-")
    ngx = d = None
    try:
        ngx = cachesrv.Nginx(os.path.join(tmp, "nginx"), access_log=False)
        path = os.path.join(ngx.www, "image.bin")
        h = hashlib.sha256()
        with open(path, "wb") as f:
            for c in cachesrv.gen_chunks(0xbe4c, SIZE):
                h.update(c)
                f.write(c)
        digest = h.hexdigest()
        ngx.start()
        d = Daemon(binary, os.path.join(tmp, "gw"))
        d.ok("POST", "/api/devices", {"id": "bench-dev", "productId": "bench"})
        url = ngx.url("/image.bin")

        subprocess.run(["curl", "-sS", "-o", "/dev/null", url], check=True, timeout=300)
        t_curl = best(lambda i: curl_download(url, os.path.join(tmp, "curl.out")))
        t_gw = best(lambda i: gateway_download(d, url, digest, i))
        t_sum = best(lambda i: sha256sum(path)[0])
        if sha256sum(path)[1] != digest:
            raise SystemExit("sha256sum disagrees with Python's hashlib")
        t_up = best(lambda i: gateway_upload(d, path, digest, i))

        mib = SIZE / MiB
        print("%-52s %14s %14s %8s" % ("benchmark (%d MiB image, best of %d)" % (mib, REPEAT),
                                       "otagw", "reference", "ratio"))
        print("%-52s %10.0f MiB/s %10.0f MiB/s %7.2fx  (reference: curl -o, same file; "
              "target >= 0.9x)" % ("cache download from nginx (publish -> ready)",
                                   mib / t_gw, mib / t_curl, t_curl / t_gw))
        print("%-52s %9.2f ms/MiB %9.2f ms/MiB %7.2fx  (reference: sha256sum of the file; "
              "otagw: receive + SHA-256 + write + fsync)" % (
                  "hashing cost: PUT /api/firmware/{id}/image", t_up * 1000 / mib,
                  t_sum * 1000 / mib, t_sum / t_up))
        benchtab.row("cache: download from nginx, %d MiB (publish -> ready)" % mib, mib / t_gw,
                     "MiB/s", mib / t_curl, "curl -o of the same file",
                     target=("ratio", ">=", 0.9))
        benchtab.row("cache: hashing cost, PUT image (recv+sha256+write+fsync)",
                     t_up * 1000 / mib, "ms/MiB", t_sum * 1000 / mib, "sha256sum of the file",
                     ratio=t_sum / t_up, note="ratio = sha256sum time / otagw time")
    finally:
        if d:
            d.stop()
        if ngx:
            ngx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
