#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/bench/bundle_bench.py BUILD - offline bundle import benchmark
(prints, never asserts). Starts and stops its own daemon (BUILD/otagw) on
127.0.0.1:

  1. import throughput: one .tar.gz bundle holding one image of
     BUNDLE_BENCH_MB MiB (default 512) of pseudo-random (incompressible)
     bytes, sent with POST /api/bundles; the figure is the image bytes over
     the daemon's own import time (the job's startTime -> endTime: archive
     read, gunzip, SHA-256, cache writes with their checkpoints and fsyncs,
     the final verify/rename and the transaction). Next to it the same
     file unpacked to disk by `tar -xzf` in the same run (target >= 0.8x),
     and the end-to-end time (upload to the spool + import) as seen by the
     client.
  2. daemon RSS (VmRSS and RssAnon), sampled every 20 ms from before the
     upload to the end of the import: max vs the idle daemon's, and whether
     it stayed flat (max - idle < 32 MiB, whatever the bundle's size).
  3. the API's responsiveness meanwhile: the slowest GET /api/health
     answered while the import ran (the import runs in slices on the loop).

Env: BUNDLE_BENCH_MB (default 512). Needs about 4x that in free disk space
under $TMPDIR (bundle, spooled upload, cache, tar's copy)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import http.client

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "it"))

import bundlegen  # noqa: E402
import benchd  # noqa: E402
import benchtab  # noqa: E402
import otagw_it  # noqa: E402

HOST = "127.0.0.1"
MB = int(os.environ.get("BUNDLE_BENCH_MB", "512"))
SIZE = MB * 1048576
FLAT = 32 * 1048576          # "flat": the peak stays within this of the idle RSS


def mib(n):
    return n / 1048576.0


def status_field(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(field):
                    return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """VmRSS/RssAnon of pid every 20 ms, tagged with the phase at the time."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.phase, self.samples = pid, "idle", []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            self.samples.append((self.phase, status_field(self.pid, "VmRSS:"),
                                 status_field(self.pid, "RssAnon:")))
            time.sleep(0.02)

    def peak(self, phases, idx=1):
        v = [s[idx] for s in self.samples if s[0] in phases]
        return max(v) if v else 0


class Prober(threading.Thread):
    """GET /api/health in a loop; records each answer's latency."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.lat = port, []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            t0 = time.perf_counter()
            try:
                st, _, _, _ = otagw_it.http_request(self.port, "GET", "/api/health", timeout=30)
                if st == 200:
                    self.lat.append(time.perf_counter() - t0)
            except OSError:
                pass
            time.sleep(0.01)


class Daemon:
    def __init__(self, binary, workdir):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = otagw_it.free_port()
        quota = max(1 << 30, 2 * SIZE + (64 << 20))
        extra = "[cache]\nmax_bytes = %d\n" % quota
        self.proc, self.log, self.config = benchd.spawn(binary, workdir, self.port, extra)

    def get(self, path):
        st, js, _, _ = otagw_it.http_request(self.port, "GET", path, timeout=60)
        if st != 200:
            raise SystemExit("GET %s -> %d %r" % (path, st, js))
        return js

    def stop(self):
        benchd.stop(self.proc, self.log, 30)


def post_file(port, path):
    size = os.path.getsize(path)
    conn = http.client.HTTPConnection(HOST, port, timeout=600, blocksize=1 << 20)
    try:
        with open(path, "rb") as f:
            conn.request("POST", "/api/bundles", body=f,
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(size)})
            r = conn.getresponse()
            body = r.read()
    finally:
        conn.close()
    if r.status != 202:
        raise SystemExit("POST /api/bundles -> %d %r" % (r.status, body[:300]))
    return json.loads(body)["id"]


def make_bundle(tmp):
    t0 = time.perf_counter()
    img, digest = bundlegen.make_image(os.path.join(tmp, "image.bin"), SIZE, seed=0xbe4c)
    m = bundlegen.manifest("bench-%d" % MB,
                           [bundlegen.fw_entry("bench", "1.0", "images/bench.bin", img)])
    m["firmware"][0]["sha256"] = digest
    out = os.path.join(tmp, "bench.tar.gz")
    bundlegen.build(out, m, {"images/bench.bin": img}, compresslevel=1)
    os.unlink(img)
    return out, digest, time.perf_counter() - t0


def reference_tar(bundle, tmp):
    d = os.path.join(tmp, "untar")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    t0 = time.perf_counter()
    subprocess.run(["tar", "-xzf", bundle, "-C", d], check=True)
    secs = time.perf_counter() - t0
    t1 = time.perf_counter()
    subprocess.run(["sync", "-f", d], check=False)
    sync_secs = time.perf_counter() - t1
    shutil.rmtree(d, ignore_errors=True)
    return secs, secs + sync_secs


def bench(binary, tmp):
    bundle, digest, build_secs = make_bundle(tmp)
    out = {"bundle_bytes": os.path.getsize(bundle), "build_secs": build_secs}
    # warm the page cache for both sides alike
    with open(bundle, "rb") as f:
        while f.read(8 << 20):
            pass
    d = Daemon(binary, os.path.join(tmp, "gw"))
    try:
        time.sleep(0.5)
        s = Sampler(d.proc.pid)
        s.start()
        time.sleep(0.5)
        s.phase = "upload"
        t0 = time.perf_counter()
        jid = post_file(d.port, bundle)
        t_up = time.perf_counter() - t0
        s.phase = "import"
        p = Prober(d.port)
        p.start()
        deadline = time.monotonic() + 3600
        while True:
            j = d.get("/api/bundles/" + jid)
            if j["state"] != "importing":
                break
            if time.monotonic() > deadline:
                raise SystemExit("import still running after an hour: %r" % j)
            time.sleep(0.05)
        t_all = time.perf_counter() - t0
        p.stop_ev.set()
        time.sleep(0.3)
        s.phase = "after"
        time.sleep(0.3)
        s.stop_ev.set()
        s.join(2)
        p.join(35)
        if j["state"] != "done":
            raise SystemExit("import failed: %r" % j)
        fw = d.get("/api/firmware/%s" % j["firmware"][0])
        if fw["image"].get("sha256") != digest or fw["image"].get("state") != "ready":
            raise SystemExit("imported image is not the bundle's: %r" % fw["image"])
        out.update(upload=t_up, end_to_end=t_all,
                   daemon=(j["endTime"] - j["startTime"]) / 1000.0,
                   rss_idle=s.peak(("idle",)), anon_idle=s.peak(("idle",), 2),
                   rss_upload=s.peak(("upload",)), rss_import=s.peak(("import",)),
                   anon_max=s.peak(("upload", "import"), 2),
                   rss_after=s.peak(("after",)), samples=len(s.samples),
                   lat_max=max(p.lat) if p.lat else None, lat_n=len(p.lat))
    finally:
        d.stop()
    shutil.rmtree(os.path.join(tmp, "gw"), ignore_errors=True)
    out["tar"], out["tar_sync"] = reference_tar(bundle, tmp)
    return out


def main():
    if len(sys.argv) != 2:
        print("usage: bundle_bench.py BUILD_DIR", file=sys.stderr)
        return 2
    binary = os.path.abspath(os.path.join(sys.argv[1], "otagw"))
    if not os.access(binary, os.X_OK):
        print("no otagw binary at %s (run make)" % binary, file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="otagw-bundle-bench-")
    try:
        r = bench(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rate = SIZE / r["daemon"] / 1048576 if r["daemon"] > 0 else float("inf")
    ref = SIZE / r["tar"] / 1048576
    ref_sync = SIZE / r["tar_sync"] / 1048576
    e2e = SIZE / r["end_to_end"] / 1048576
    print("%-52s %14s %14s %8s" % ("benchmark", "otagw", "reference", "ratio"))
    print("%-52s %8.1f MiB/s %8.1f MiB/s %8.2f  (target >= 0.8; otagw: the job's startTime -> "
          "endTime, %.2f s; reference: tar -xzf of the same file to disk, %.2f s; with a sync "
          "after it %.1f MiB/s, ratio %.2f)"
          % ("bundle import, %d MiB tar.gz (gunzip+sha256+cache)" % MB, rate, ref, rate / ref,
             r["daemon"], r["tar"], ref_sync, rate / ref_sync))
    benchtab.row("bundle: import, %d MiB tar.gz (gunzip+sha256+cache)" % MB, rate, "MiB/s",
                 ref, "tar -xzf of the same file to disk", target=("ratio", ">=", 0.8))
    print("%-52s %8.1f MiB/s %8.1f MiB/s %8.2f  (POST upload to the spool %.2f s + import; "
          "reference: tar -xzf)" % ("bundle upload + import, end to end", e2e, ref, e2e / ref,
                                    r["upload"]))
    benchtab.row("bundle: upload + import, end to end", e2e, "MiB/s", ref, "tar -xzf")
    peak = max(r["rss_upload"], r["rss_import"])
    flat = peak - r["rss_idle"] < FLAT
    print("%-52s %10.1f MiB %10.1f MiB %8.2f  (max while uploading %.1f MiB, while importing "
          "%.1f MiB, after %.1f MiB; reference: the idle daemon; %s: max - idle %s %d MiB; "
          "%d samples)"
          % ("daemon RSS during a %d MiB bundle import" % MB, mib(peak), mib(r["rss_idle"]),
             peak / max(1, r["rss_idle"]), mib(r["rss_upload"]), mib(r["rss_import"]),
             mib(r["rss_after"]), "flat" if flat else "NOT FLAT", "<" if flat else ">=",
             FLAT >> 20, r["samples"]))
    benchtab.row("bundle: daemon RSS growth during the import", mib(peak - r["rss_idle"]),
                 "MiB", note="idle %.1f MiB, peak %.1f MiB" % (mib(r["rss_idle"]), mib(peak)),
                 target=("figure", "<", FLAT >> 20))
    print("%-52s %10.1f MiB %10.1f MiB %8.2f  (RssAnon: RSS without shared library pages; "
          "reference: the idle daemon)"
          % ("daemon private memory during the import", mib(r["anon_max"]), mib(r["anon_idle"]),
             r["anon_max"] / max(1, r["anon_idle"])))
    if r["lat_max"] is not None:
        benchtab.row("bundle: slowest GET /api/health during the import", r["lat_max"] * 1000,
                     "ms", note="%d requests" % r["lat_n"])
        print("%-52s %11.0f ms %14s %8s  (slowest of %d GET /api/health answered while the "
              "import ran)" % ("API latency during the import", r["lat_max"] * 1000, "-", "-",
                               r["lat_n"]))
    print("%-52s %14s %14s %8s  (bundle %.1f MiB, built by bundlegen in %.1f s)"
          % ("", "", "", "", mib(r["bundle_bytes"]), r["build_secs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
