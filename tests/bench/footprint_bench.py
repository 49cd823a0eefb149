#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/bench/footprint_bench.py BUILD - what otagw costs an appliance
(prints, never asserts), next to nginx measured in the same run:

  1. the stripped daemon's size (strip -o of BUILD/otagw; target < 600 KiB,
     issue 11), reference: Debian's nginx binary (stripped as shipped);
  2. idle memory: VmRSS and RssAnon of otagw 2 s after it answered
     /api/health with an empty data directory (target < 4 MiB VmRSS), and of
     nginx started with `master_process off` (one process) on one port;
  3. the web console's installed size (target < 150 KiB, issue 10).
Needs nginx (Debian: apt-get install nginx-light) and binutils' strip."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, os.path.join(TESTS, "it"))

import benchd  # noqa: E402
import benchtab  # noqa: E402
import otagw_it  # noqa: E402

KiB = 1024.0
SETTLE = 2.0


def status_kib(pid, key):
    """A kB field of /proc/PID/status (VmRSS, RssAnon) as KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise KeyError(key)


def nginx_idle(tmp):
    """(VmRSS KiB, RssAnon KiB) of a one-process nginx on a free port."""
    port = otagw_it.free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("master_process off; daemon off; worker_processes 1; pid %s/nginx.pid;\n"
                "error_log %s/nginx.err;\nevents { worker_connections 64; }\n"
                "http { access_log off; client_body_temp_path %s; proxy_temp_path %s;\n"
                " fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
                " server { listen 127.0.0.1:%d; root %s; } }\n"
                % ((tmp,) * 7 + (port, tmp)))
    p = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise SystemExit("nginx exited with %d; see %s/nginx.err" % (p.returncode, tmp))
            try:
                if otagw_it.http_request(port, "GET", "/", timeout=1)[0]:
                    break
            except OSError:
                time.sleep(0.05)
        time.sleep(SETTLE)
        return status_kib(p.pid, "VmRSS"), status_kib(p.pid, "RssAnon")
    finally:
        p.terminate()
        p.wait(10)


def main():
    if len(sys.argv) != 2:
        print("usage: footprint_bench.py BUILD_DIR", file=sys.stderr)
        return 2
    binary = os.path.join(sys.argv[1], "otagw")
    if not os.access(binary, os.X_OK):
        print("no otagw binary at %s (run make)" % binary, file=sys.stderr)
        return 2
    strip = os.environ.get("STRIP", "strip")
    nginx = shutil.which("nginx")
    if not nginx or not shutil.which(strip):
        print("footprint bench needs nginx and %s" % strip, file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="otagw-footprint-")
    try:
        stripped = os.path.join(tmp, "otagw.stripped")
        subprocess.run([strip, "-o", stripped, binary], check=True)
        size = os.path.getsize(stripped) / KiB
        ref_size = os.path.getsize(os.path.realpath(nginx)) / KiB

        proc, log, _ = benchd.spawn(binary, os.path.join(tmp, "gw"), otagw_it.free_port())
        try:
            time.sleep(SETTLE)
            rss, anon = status_kib(proc.pid, "VmRSS"), status_kib(proc.pid, "RssAnon")
        finally:
            benchd.stop(proc, log)
        os.makedirs(os.path.join(tmp, "ngx"))
        ngx_rss, ngx_anon = nginx_idle(os.path.join(tmp, "ngx"))

        www = os.path.join(ROOT, "rootfs", "share", "otagw", "www")
        console = sum(os.path.getsize(os.path.join(d, f))
                      for d, _, fs in os.walk(www) for f in fs) / KiB
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("%-52s %14s %14s %8s" % ("benchmark", "otagw", "reference", "ratio"))
    print("%-52s %10.0f KiB %10.0f KiB %8.2f  (target < 600 KiB; reference: %s as shipped)"
          % ("stripped daemon size", size, ref_size, size / ref_size, nginx))
    print("%-52s %10.1f MiB %10.1f MiB %8.2f  (target < 4 MiB; reference: nginx, one process)"
          % ("idle VmRSS", rss / KiB, ngx_rss / KiB, rss / ngx_rss))
    print("%-52s %10.1f MiB %10.1f MiB %8.2f  (RssAnon: without shared library pages)"
          % ("idle private memory (RssAnon)", anon / KiB, ngx_anon / KiB, anon / ngx_anon))
    print("%-52s %10.0f KiB %14s %8s  (target < 150 KiB; %s)" % ("web console, installed",
                                                               console, "-", "-", www))
    benchtab.row("footprint: stripped daemon size", size, "KiB", ref_size,
                 "Debian's nginx binary", target=("figure", "<", 600))
    benchtab.row("footprint: idle VmRSS", rss / KiB, "MiB", ngx_rss / KiB,
                 "nginx, master_process off", target=("figure", "<", 4))
    benchtab.row("footprint: idle private memory (RssAnon)", anon / KiB, "MiB", ngx_anon / KiB,
                 "nginx, master_process off")
    benchtab.row("footprint: web console, installed", console, "KiB",
                 target=("figure", "<", 150), note="no reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
