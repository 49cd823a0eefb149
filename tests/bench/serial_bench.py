#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/bench/serial_bench.py BUILD - serial transport benchmarks (prints,
never asserts). Starts and stops its own daemon (BUILD/otagw) on 127.0.0.1
with a [serial] port on a socat pty pair:

  1. time to send a 1 MiB image to `rz --ymodem` over a pty: otagw (device
     pulls, then the time from rz's start to its exit) next to a reference
     measured in the same run: lrzsz's own sender `sb --ymodem -k` (1K
     blocks) to the same rz over a socat pty pair. Best of 3 each. Both
     include rz's own fixed timers (~3 s: it waits ~1 s before its first
     'C', ~1 s of silence after EOT, ~1 s before asking for the end block).
  2. the same through tests/it/ptyrelay.py paced at 115200 baud 8N1
     (11520 bytes/s each way) with a 64 KiB image: effective throughput as a
     fraction of the line rate, and sb's through the same relay.

Env: BENCH_SERIAL_RUNS (default 3) for part 1."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "it"))

import benchd  # noqa: E402
import benchtab  # noqa: E402
import otagw_it  # noqa: E402
import ptyrelay  # noqa: E402
import serialdev  # noqa: E402

RUNS = int(os.environ.get("BENCH_SERIAL_RUNS", "3"))
BIG = 1024 * 1024
SMALL = 64 * 1024
LINE_RATE = 115200 // 10          # bytes/s, 8N1
PRODUCT = "bench"


class Daemon:
    def __init__(self, binary, workdir, path):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.http_port = otagw_it.free_port()
        extra = ("\n[serial b1]\npath = %s\nproduct = %s\nymodem_timeout = 3\n"
                 "ymodem_retries = 3\nymodem_start_timeout = 20\n" % (path, PRODUCT))
        self.proc, self.log, self.config = benchd.spawn(
            binary, workdir, self.http_port, extra, ready=self._port_open,
            what=" with its serial port open")

    def _port_open(self):
        st, js = self.req("GET", "/api/serial")
        return st == 200 and js["ports"] and js["ports"][0]["state"] == "open"

    def req(self, method, path, body=None, raw=None):
        st, js, _, _ = otagw_it.http_request(self.http_port, method, path, body=body, raw=raw,
                                             timeout=30)
        return st, js

    def ok(self, method, path, body=None):
        st, js = self.req(method, path, body)
        if st not in (200, 201):
            raise SystemExit("%s %s -> %d %r" % (method, path, st, js))
        return js

    def transfer_idle(self, timeout=60):
        """Waits until the port has no transfer under way (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.ok("GET", "/api/serial")["ports"][0]
            if not p["transfer"] or p["transfer"]["state"] not in ("sending", "waiting"):
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        benchd.stop(self.proc, self.log, 10)


def make_image(workdir, size):
    path = os.path.join(workdir, "image-%d.bin" % size)
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, data


def register(d, data, version):
    fw = d.ok("POST", "/api/firmware", {
        "productId": PRODUCT, "name": "bench " + version, "version": version,
        "versionOrder": int(version.split(".")[0]), "size": len(data),
        "sign": hashlib.sha256(data).hexdigest(), "signMethod": "sha256"})
    st, js = d.req("PUT", "/api/firmware/%s/image" % fw["id"], raw=data)
    if st != 200:
        raise SystemExit("upload of the benchmark image -> %d %r" % (st, js))
    return fw


def otagw_runs(binary, tmp, gw_path, dev_path, data, runs, label):
    """Pulls `runs` times and times rz; returns ([seconds], error or None)."""
    d = Daemon(binary, os.path.join(tmp, "gw-" + label), gw_path)
    dev = None
    times = []
    try:
        fw = register(d, data, "%d.0.0" % (len(data) // 1024))
        dev = serialdev.SerialDevice(dev_path, "bench1", timeout=10)
        dev.report("1.0.0")
        deadline = time.monotonic() + 10
        while d.req("GET", "/api/devices/bench1")[0] != 200:
            if time.monotonic() > deadline:
                return times, "the device was not created"
            time.sleep(0.05)
        task = d.ok("POST", "/api/firmware/%s/tasks" % fw["id"], {"name": "b", "mode": "pull"})
        d.ok("POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["bench1"]})
        dest = os.path.join(tmp, "rz-" + label)
        for _ in range(runs):
            if not d.transfer_idle():
                return times, "the previous transfer did not end"
            dev.drain(0.1, 1.0)
            # force: a record the gateway failed after a lost final ACK is offered again
            rep = dev.pull(force=True, timeout=10)
            if rep.get("success") is not True:
                return times, "pull: %r" % rep
            res = dev.rz(dest, timeout=120)
            if res.rc != 0 or not res.path:
                return times, "rz: %r" % res
            with open(res.path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != fw["sign"]:
                    return times, "image mismatch"
            os.unlink(res.path)
            times.append(res.seconds)
        return times, None
    except (serialdev.PortGone, TimeoutError, OSError) as e:
        return times, "%s: %s" % (type(e).__name__, e)
    finally:
        if dev:
            dev.close()
        d.stop()


def sb_run(gw_path, dev_path, image_path, dest):
    """sb --ymodem -k on the gateway end, rz on the device end; rz's time."""
    gfd = serialdev.open_raw(gw_path)
    dev = serialdev.SerialDevice(dev_path, "ref", timeout=10)
    sb = None
    try:
        sb = subprocess.Popen(["sb", "--ymodem", "-k", "-q", image_path], stdin=gfd, stdout=gfd,
                              stderr=subprocess.DEVNULL)
        res = dev.rz(dest, timeout=120)
        if res.rc != 0 or not res.path:
            return None, "rz: %r" % res
        os.unlink(res.path)
        return res.seconds, None
    finally:
        if sb:
            serialdev.stop_proc(sb)     # it waits for the ACK of the end block rz may not send
        dev.close()
        os.close(gfd)


def main():
    if len(sys.argv) != 2:
        print("usage: serial_bench.py BUILD_DIR", file=sys.stderr)
        return 2
    binary = os.path.abspath(os.path.join(sys.argv[1], "otagw"))
    if not os.access(binary, os.X_OK):
        print("no otagw binary at %s (run make)" % binary, file=sys.stderr)
        return 2
    for tool in ("socat", "rz", "sb"):
        if not shutil.which(tool):
            print("serial bench needs %s: apt-get install -y socat lrzsz" % tool,
                  file=sys.stderr)
            return 2
    tmp = tempfile.mkdtemp(prefix="otagw-serial-bench-")
    out = {}
    try:
        big_path, big = make_image(tmp, BIG)
        small_path, small = make_image(tmp, SMALL)

        # 1. plain pty pair
        line = ptyrelay.start_socat_pair(os.path.join(tmp, "l-gw"), os.path.join(tmp, "l-dev"))
        try:
            out["gw"], out["gw_err"] = otagw_runs(binary, tmp, os.path.join(tmp, "l-gw"),
                                                  os.path.join(tmp, "l-dev"), big, RUNS, "pty")
        finally:
            ptyrelay.stop_socat(line)
        ref = []
        for i in range(RUNS):
            line = ptyrelay.start_socat_pair(os.path.join(tmp, "r-gw"),
                                             os.path.join(tmp, "r-dev"))
            try:
                secs, why = sb_run(os.path.join(tmp, "r-gw"), os.path.join(tmp, "r-dev"),
                                   big_path, os.path.join(tmp, "rz-ref"))
            finally:
                ptyrelay.stop_socat(line)
            if secs is None:
                out["ref_err"] = why
                break
            ref.append(secs)
        out["ref"] = ref

        # 2. paced relay
        r = ptyrelay.PtyRelay(tmp, rate=LINE_RATE, direction="both", name="paced").start()
        try:
            out["paced"], out["paced_err"] = otagw_runs(binary, tmp, r.gw, r.dev, small, 1,
                                                        "paced")
        finally:
            r.stop()
        r = ptyrelay.PtyRelay(tmp, rate=LINE_RATE, direction="both", name="paced-ref").start()
        try:
            out["paced_ref"], out["paced_ref_err"] = sb_run(r.gw, r.dev, small_path,
                                                            os.path.join(tmp, "rz-paced-ref"))
        finally:
            r.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("%-52s %14s %14s %8s" % ("benchmark", "otagw", "reference", "ratio"))
    label = "serial: 1 MiB to rz --ymodem over a pty"
    if out["gw"] and out["ref"]:
        g, f = min(out["gw"]), min(out["ref"])
        print("%-52s %12.2f s %12.2f s %8.2f  (time from rz start to rz exit, best of %d; "
              "reference: lrzsz sb --ymodem -k (1K blocks) to the same rz over a socat pty "
              "pair; rz's own ~3 s of timers are in both; otagw with ymodem_timeout = 3; "
              "%.0f KiB/s vs %.0f KiB/s)"
              % (label, g, f, g / f, RUNS, BIG / 1024 / g, BIG / 1024 / f))
        benchtab.row("serial: 1 MiB to rz --ymodem over a pty", BIG / 1024 / g, "KiB/s",
                     BIG / 1024 / f, "lrzsz sb --ymodem -k to the same rz",
                     target=("ratio", ">=", 0.95))
    else:
        print("%-52s %14s %14s %8s  (FAILED: %s)" % (label, "-", "-", "-",
                                                     out.get("gw_err") or out.get("ref_err")))
        benchtab.row("serial: 1 MiB to rz --ymodem over a pty", None, "KiB/s",
                     target=("ratio", ">=", 0.95),
                     note="FAILED: %s" % (out.get("gw_err") or out.get("ref_err")))
    label = "serial: 64 KiB to rz at 115200 baud (paced relay)"
    if out["paced"]:
        secs = out["paced"][0]
        rate = SMALL / secs
        note = ""
        if out["paced_ref"]:
            note = "; sb --ymodem -k through the same relay: %.2f s, %.1f KiB/s = %.0f %% " \
                   "of the line" % (out["paced_ref"], SMALL / out["paced_ref"] / 1024,
                                    100.0 * SMALL / out["paced_ref"] / LINE_RATE)
        else:
            note = "; sb reference FAILED: %s" % out.get("paced_ref_err")
        print("%-52s %8.1f KiB/s %8.1f KiB/s %8.2f  (reference: the line rate, 11520 bytes/s "
              "each way (115200 baud 8N1) through tests/it/ptyrelay.py; ratio = fraction of "
              "the line used, from rz start to rz exit (%.2f s)%s)"
              % (label, rate / 1024, LINE_RATE / 1024.0, rate / LINE_RATE, secs, note))
        benchtab.row("serial: 64 KiB to rz at 115200 baud", rate / 1024, "KiB/s",
                     LINE_RATE / 1024.0, "the line rate (115200 8N1)",
                     note=("sb --ymodem -k through the same relay: %.0f %% of the line"
                           % (100.0 * SMALL / out["paced_ref"] / LINE_RATE))
                     if out["paced_ref"] else "sb reference failed",
                     target=("ratio", ">=", 0.95))
    else:
        print("%-52s %14s %14s %8s  (FAILED: %s)" % (label, "-", "-", "-", out.get("paced_err")))
        benchtab.row("serial: 64 KiB to rz at 115200 baud", None, "KiB/s",
                     target=("ratio", ">=", 0.95), note="FAILED: %s" % out.get("paced_err"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
