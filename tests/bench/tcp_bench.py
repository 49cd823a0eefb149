#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/bench/tcp_bench.py BUILD - TCP transport benchmarks (prints, never
asserts). Starts and stops its own daemons (BUILD/otagw) on 127.0.0.1:

  1. messages/s through the core with 1,000 connected devices (jsonline):
     each device loops UPGRADE_FIRMWARE_PROGRESS + REPORT_FIRMWARE +
     REQUEST_FIRMWARE and waits for the reply (3 messages in, 1 out).
  2. daemon RSS with 1,000 idle identified connections (target < 8 MiB),
     next to its RSS with none.
  3. chunk delivery: a 16 MiB image fetched by 64 KiB chunks in the frame
     codec (8, 3 and 1 requests in flight), next to a reference measured in
     the same run: socat -u OPEN:file TCP-LISTEN:port sending the same file
     over loopback to the same Python reader (a plain cat over a socket).

Env: BENCH_SECONDS (default 10) for part 1; BENCH_DEVICES (default 1000).
The client is Python: when the daemon's CPU share in part 1 is well below
100 %, the client was the bottleneck and the figure is a lower bound."""

import asyncio
import hashlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "it"))

import devsim  # noqa: E402
import benchd  # noqa: E402
import benchtab  # noqa: E402
import otagw_it  # noqa: E402

HOST = "127.0.0.1"
N = int(os.environ.get("BENCH_DEVICES", "1000"))
DUR = float(os.environ.get("BENCH_SECONDS", "10"))
IMAGE_SIZE = 16 * 1024 * 1024
CHUNK = 64 * 1024
WINDOWS = (8, 3, 1)             # chunk requests in flight
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss(pid, field="VmRSS:"):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field):
                return int(ln.split()[1]) * 1024
    return 0


def rss_anon(pid):
    """The daemon's own memory: RSS without the pages of shared libraries
    (libcrypto, libwebsockets, sqlite ... are file-backed and shared)."""
    return rss(pid, "RssAnon:")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK     # utime + stime


def mib(n):
    return n / 1048576.0


class Daemon:
    def __init__(self, binary, workdir, codec, **tcp):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.http_port = otagw_it.free_port()
        self.tcp_port = otagw_it.free_port()
        extra = "\n[tcp]\nbind = %s\nport = %d\ncodec = %s\n" % (HOST, self.tcp_port, codec)
        extra += "".join("%s = %s\n" % kv for kv in tcp.items())
        self.proc, self.log, self.config = benchd.spawn(binary, workdir, self.http_port, extra,
                                                        ready=self._ready)

    def _ready(self):
        return self.req("GET", "/api/health")[0] == 200 and otagw_it.port_accepts(self.tcp_port)

    def req(self, method, path, body=None):
        st, js, _, _ = otagw_it.http_request(self.http_port, method, path, body=body,
                                             timeout=30)
        return st, js

    def ok(self, method, path, body=None):
        st, js = self.req(method, path, body)
        if st not in (200, 201):
            raise SystemExit("%s %s -> %d %r" % (method, path, st, js))
        return js

    def stop(self):
        benchd.stop(self.proc, self.log, 10)


def make_firmware(d, workdir, product, version, size):
    path = os.path.join(workdir, "%s-%s.bin" % (product, version))
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    fw = d.ok("POST", "/api/firmware", {
        "productId": product, "name": "bench " + version, "version": version,
        "versionOrder": 2, "size": size,
        "sign": hashlib.sha256(data).hexdigest(), "signMethod": "sha256"})
    st, js, _, _ = otagw_it.http_request(d.http_port, "PUT", "/api/firmware/%s/image" % fw["id"],
                                         raw=data, timeout=120)
    if st != 200:
        raise SystemExit("upload of the benchmark image -> %d %r" % (st, js))
    return fw, path


def wait_sessions(d, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.ok("GET", "/api/health")["sessions"] == n:
            return True
        time.sleep(0.1)
    return False


# -- parts 1 and 2 -----------------------------------------------------------

async def fleet(d, fw, results):
    loop = asyncio.get_running_loop()
    devs = [devsim.AsyncDevice(HOST, d.tcp_port, "jsonline", "b%05d" % i, product_id="bench",
                               timeout=60) for i in range(N)]
    sem = asyncio.Semaphore(200)

    async def hello(x):
        async with sem:
            await x.connect()
        await x.report("1.0.0")

    await asyncio.gather(*(hello(x) for x in devs))
    ok = await loop.run_in_executor(None, wait_sessions, d, N)
    await asyncio.sleep(1.0)
    results["rss_idle"] = rss(d.proc.pid)
    results["anon_idle"] = rss_anon(d.proc.pid)
    results["sessions_ok"] = ok

    task = d.ok("POST", "/api/firmware/%s/tasks" % fw["id"], {"name": "bench", "mode": "pull"})
    pub = d.ok("POST", "/api/tasks/%s/publish" % task["id"], {"all": True})
    results["published"] = pub["added"]
    reps = await asyncio.gather(*(x.pull() for x in devs))
    results["pulled"] = sum(1 for r in reps if r.get("success"))

    stop_at = loop.time() + DUR
    counts = [0] * N

    async def worker(i, x):
        pct = 1
        while loop.time() < stop_at:
            mid = x.next_id()
            await x.send(devsim.msg_progress(x.device_id, fw["version"], fw["id"], pct),
                         devsim.msg_report(x.device_id, "1.0.0"),
                         devsim.msg_pull(x.device_id, mid))
            await x.wait_for("REQUEST_FIRMWARE_REPLY", mid)
            counts[i] += 1
            pct = pct % 99 + 1

    cpu0, self0, t0 = cpu_seconds(d.proc.pid), resource.getrusage(resource.RUSAGE_SELF), \
        loop.time()
    await asyncio.gather(*(worker(i, x) for i, x in enumerate(devs)))
    secs = loop.time() - t0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    results["round_trips"] = sum(counts)
    results["secs"] = secs
    results["daemon_cpu"] = (cpu_seconds(d.proc.pid) - cpu0) / secs
    results["client_cpu"] = (self1.ru_utime + self1.ru_stime - self0.ru_utime -
                             self0.ru_stime) / secs
    results["rss_busy"] = rss(d.proc.pid)
    for x in devs:
        x.close()


def bench_fleet(binary, tmp):
    d = Daemon(binary, os.path.join(tmp, "fleet"), "jsonline", max_connections=N + 100)
    try:
        fw, _ = make_firmware(d, d.workdir, "bench", "2.0.0", 4096)
        time.sleep(0.5)
        results = {"rss_empty": rss(d.proc.pid), "anon_empty": rss_anon(d.proc.pid)}
        asyncio.run(asyncio.wait_for(fleet(d, fw, results), DUR + 300))
    finally:
        d.stop()
    return results


# -- part 3 -------------------------------------------------------------------

def read_all(port, expect, timeout=60):
    """Connects, reads until EOF; returns (bytes read, seconds)."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    got = 0
    s = socket.create_connection((HOST, port), timeout=timeout)
    t0 = time.perf_counter()
    try:
        while True:
            n = s.recv_into(view)
            if not n:
                break
            got += n
    finally:
        s.close()
    secs = time.perf_counter() - t0
    if got != expect:
        print("  warning: reference read %d of %d bytes" % (got, expect))
    return got, secs


def reference_socat(path, size):
    if not shutil.which("socat"):
        return None, "socat missing (apt-get install -y socat)"
    port = otagw_it.free_port()
    p = subprocess.Popen(["socat", "-u", "OPEN:%s" % path,
                          "TCP-LISTEN:%d,bind=%s,reuseaddr" % (port, HOST)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                got, secs = read_all(port, size)
                return secs, None
            except ConnectionRefusedError:
                time.sleep(0.02)
        return None, "socat did not listen"
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(5)


def bench_chunks(binary, tmp):
    d = Daemon(binary, os.path.join(tmp, "chunks"), "frame", max_chunk=65536)
    out = {}
    try:
        fw, path = make_firmware(d, d.workdir, "bulk", "2.0.0", IMAGE_SIZE)
        with open(path, "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        d.ok("POST", "/api/devices", {"id": "bulk1", "productId": "bulk",
                                      "firmwareVersion": "1.0.0"})
        task = d.ok("POST", "/api/firmware/%s/tasks" % fw["id"], {"name": "b", "mode": "pull"})
        d.ok("POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["bulk1"]})
        dev = devsim.Device(HOST, d.tcp_port, "frame", "bulk1", timeout=30)
        try:
            dev.report("1.0.0")
            rep = dev.pull()
            if rep.get("success") is not True:
                raise SystemExit("pull failed: %r" % rep)
            for window in WINDOWS:
                best = None
                for _ in range(3):
                    t0 = time.perf_counter()
                    ru0 = resource.getrusage(resource.RUSAGE_SELF)
                    try:
                        img = dev.fetch_image(fw["id"], IMAGE_SIZE, chunk=CHUNK, window=window)
                    except (devsim.DevsimError, OSError, TimeoutError) as e:
                        out["window%d_error" % window] = "%s: %s" % (type(e).__name__, e)
                        dev.connect()
                        break
                    secs = time.perf_counter() - t0
                    ru1 = resource.getrusage(resource.RUSAGE_SELF)
                    cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / secs
                    if best is None or secs < best:
                        out["window%d_cpu" % window] = cpu
                    if hashlib.sha256(img).hexdigest() != want:
                        raise SystemExit("image mismatch (window %d)" % window)
                    best = secs if best is None else min(best, secs)
                out["window%d" % window] = best
        finally:
            dev.close()
    finally:
        d.stop()
    ref = None
    for _ in range(3):
        secs, why = reference_socat(path, IMAGE_SIZE)
        if secs is None:
            out["ref_error"] = why
            break
        ref = secs if ref is None else min(ref, secs)
    out["ref"] = ref
    return out


def main():
    if len(sys.argv) != 2:
        print("usage: tcp_bench.py BUILD_DIR", file=sys.stderr)
        return 2
    binary = os.path.abspath(os.path.join(sys.argv[1], "otagw"))
    if not os.access(binary, os.X_OK):
        print("no otagw binary at %s (run make)" % binary, file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N * 2 + 512
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    tmp = tempfile.mkdtemp(prefix="otagw-tcp-bench-")
    try:
        f = bench_fleet(binary, tmp)
        c = bench_chunks(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("%-52s %14s %14s %8s" % ("benchmark", "otagw", "reference", "ratio"))
    rt = f["round_trips"] / f["secs"]
    print("%-52s %12.0f/s %14s %8s  (%d devices, %.0f s, %.0f round trips/s of 3 messages; "
          "daemon CPU %.0f %%, client CPU %.0f %%)"
          % ("tcp messages through the core (jsonline)", rt * 3, "-", "-", N, f["secs"], rt,
             f["daemon_cpu"] * 100, f["client_cpu"] * 100))
    benchtab.row("tcp: messages through the core, %d devices" % N, rt * 3, "msg/s",
                 note="no reference; report/progress round trips")
    per = (f["rss_idle"] - f["rss_empty"]) / max(1, N)
    print("%-52s %10.1f MiB %10.1f MiB %8.2f  (target < 8 MiB; reference: the same daemon with "
          "no connection; %.1f KiB/connection; %.1f MiB while busy%s)"
          % ("daemon RSS, %d idle tcp connections" % N, mib(f["rss_idle"]), mib(f["rss_empty"]),
             f["rss_idle"] / max(1, f["rss_empty"]), per / 1024, mib(f["rss_busy"]),
             "" if f["sessions_ok"] else "; WARNING: not all sessions came up"))
    benchtab.row("tcp: daemon RSS, %d idle connections" % N, mib(f["rss_idle"]), "MiB",
                 mib(f["rss_empty"]), "same daemon, no connection", target=("figure", "<", 8))
    print("%-52s %10.1f MiB %10.1f MiB %8.2f  (RssAnon: RSS without shared library pages; "
          "target < 8 MiB; reference: the same daemon with no connection)"
          % ("daemon private memory, %d idle tcp connections" % N, mib(f["anon_idle"]),
             mib(f["anon_empty"]), f["anon_idle"] / max(1, f["anon_empty"])))
    benchtab.row("tcp: daemon private memory (RssAnon), %d idle" % N, mib(f["anon_idle"]),
                 "MiB", mib(f["anon_empty"]), "same daemon, no connection",
                 target=("figure", "<", 8))
    for w in WINDOWS:
        label = "chunk delivery, frame 64 KiB, %d in flight" % w
        if not c.get("window%d" % w):
            print("%-52s %14s %14s %8s  (FAILED: %s)" % (label, "-", "-", "-",
                                                       c.get("window%d_error" % w)))
            benchtab.row("tcp: " + label, None, "MiB/s", note="FAILED: %s"
                         % c.get("window%d_error" % w))
            continue
        rate = IMAGE_SIZE / c["window%d" % w] / 1048576
        if c["ref"]:
            refrate = IMAGE_SIZE / c["ref"] / 1048576
            print("%-52s %8.1f MiB/s %8.1f MiB/s %8.2f  (reference: socat -u OPEN:file "
                  "TCP-LISTEN of the same 16 MiB into a plain Python socket reader; "
                  "devsim client CPU %.0f %%)" % (label, rate, refrate, rate / refrate,
                                                  100 * c["window%d_cpu" % w]))
            benchtab.row("tcp: " + label, rate, "MiB/s", refrate,
                         "socat -u OPEN:file TCP-LISTEN, same 16 MiB")
        else:
            print("%-52s %8.1f MiB/s %14s %8s  (%s)" % (label, rate, "-", "-",
                                                       c.get("ref_error")))
            benchtab.row("tcp: " + label, rate, "MiB/s", note="socat reference failed: %s"
                         % c.get("ref_error"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
