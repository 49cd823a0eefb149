#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/bench/http_bench.py BUILD - HTTP device side benchmarks (prints,
never asserts). Starts and stops its own otagw (BUILD/otagw) and nginx on
127.0.0.1, all in the same run on the same machine:

  1. image download: a 16 MiB verified image, GET /images/<id> on otagw,
     next to nginx serving the same file (worker_processes 1) with
     `sendfile on`, and with `sendfile off; output_buffers 2 64k;` (a
     read+write server like otagw's pread+send loop). wrk -t1 with -c1 and
     -c50, --latency: throughput in MiB/s (wrk's Transfer/sec, which counts
     in 2^20 bytes) and p99 latency, with the ratios otagw / nginx.
  2. device messages: requests/s and p99 of POST .../firmware/report and
     POST .../firmware/pull (a pending pull task, so every pull answers a
     whole REQUEST_FIRMWARE_REPLY), wrk with a Lua script, 100 devices in
     turn, -c1 and -c50; reference: nginx `return 200 '{"success":true}'`
     for the same POST (the cost of HTTP alone).

Also printed: each server's CPU use during a run and wrk's own (100 % =
one core busy): a server well below 100 % with wrk near 100 % was limited
by the client, a server well below 100 % with wrk idle was waiting on
something else (for otagw's POSTs: the SQLite commit's fdatasync, one per
message). Env: BENCH_SECONDS (default 10) per wrk run.
Needs wrk and nginx (Debian: apt-get install wrk nginx-light)."""

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "it"))

import otagw_it  # noqa: E402
import benchtab  # noqa: E402

HOST = "127.0.0.1"
DUR = int(float(os.environ.get("BENCH_SECONDS", "10")))
IMAGE_SIZE = 16 * 1024 * 1024
NGINX = "/usr/sbin/nginx"
DEVICES = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")


def need(tool):
    if not shutil.which(tool) and not os.access(tool, os.X_OK):
        raise SystemExit("http bench needs %s: apt-get install -y wrk nginx-light curl" % tool)


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0


def wait_port(port, proc, what, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("%s exited with %d" % (what, proc.returncode))
        if otagw_it.port_accepts(port):
            return
        time.sleep(0.05)
    raise SystemExit("%s did not listen within %d s" % (what, timeout))


def stop(proc):
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- wrk ---------------------------------------------------------------------------------

UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
TUNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def wrk(url, conns, script=None, pid=None):
    """One wrk run; returns a dict: rps, mib_s, p99_ms, errors (text), cpu (%)."""
    args = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % DUR, "--latency", "--timeout", "30s"]
    if script:
        args += ["-s", script]
    c0, t0 = cpu_seconds(pid) if pid else 0.0, time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(args + [url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=DUR + 120)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    took = time.monotonic() - t0
    cpu = 100.0 * (cpu_seconds(pid) - c0) / took if pid else None
    wcpu = 100.0 * (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / took
    out = p.stdout
    r = {"out": out, "cpu": cpu, "wrk_cpu": wcpu, "rps": None, "mib_s": None, "p99_ms": None,
         "errors": ""}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", out)
    if m:
        r["mib_s"] = float(m.group(1)) * UNITS[m.group(2)] / (1 << 20)
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
    if m:
        r["p99_ms"] = float(m.group(1)) * TUNITS[m.group(2)]
    errs = []
    m = re.search(r"Socket errors:.*", out)
    if m:
        errs.append(m.group(0).strip())
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if m:
        errs.append("non-2xx: " + m.group(1))
    if p.returncode != 0 or r["rps"] is None:
        errs.append("wrk failed (%d): %s" % (p.returncode, out.strip()[-300:]))
    r["errors"] = "; ".join(errs)
    return r


def fmt(v, spec):
    return (spec % v) if v is not None else "-"


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"


# -- the servers -----------------------------------------------------------------------------

class Gateway:
    def __init__(self, binary, workdir):
        self.port = otagw_it.free_port()
        self.dir = workdir
        conf = os.path.join(workdir, "otagw.conf")
        otagw_it.write_config(conf, self.port, log_level="warn")
        self.log = open(os.path.join(workdir, "otagw.log"), "w")
        self.proc = subprocess.Popen([binary, "-c", conf, "-d", os.path.join(workdir, "data")],
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
        raise SystemExit("otagw did not come up within 10 s")

    def req(self, method, path, body=None, raw=None, headers=None):
        st, js, _, _ = otagw_it.http_request(self.port, method, path, body=body, raw=raw,
                                             headers=headers, timeout=60)
        return st, js

    def ok(self, method, path, body=None, raw=None, headers=None):
        st, js = self.req(method, path, body, raw, headers)
        if st not in (200, 201):
            raise SystemExit("%s %s -> %d %r" % (method, path, st, js))
        return js

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def stop(self):
        stop(self.proc)
        self.log.close()


def start_nginx(workdir, root):
    """One nginx, one worker, three servers: sendfile on, sendfile off with
    output_buffers 2 64k, and a POST answerer. Returns (proc, ports)."""
    ports = {k: otagw_it.free_port() for k in ("sendfile", "buffers", "post")}
    conf = os.path.join(workdir, "nginx.conf")
    t = workdir
    with open(conf, "w") as f:
        f.write("daemon off; master_process off; worker_processes 1;\n"
                "pid %s/nginx.pid; error_log %s/nginx.err;\n"
                "events { worker_connections 1024; }\n"
                "http { access_log off; default_type application/octet-stream;\n"
                "  keepalive_requests 1000000; keepalive_timeout 60s;\n"
                "  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
                "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
                "  server { listen %s:%d; root %s; sendfile on; }\n"
                "  server { listen %s:%d; root %s; sendfile off; output_buffers 2 64k; }\n"
                "  server { listen %s:%d; location / { default_type application/json;\n"
                "      return 200 '{\"success\":true}'; } }\n"
                "}\n" % (t, t, t, t, t, t, t, HOST, ports["sendfile"], root,
                         HOST, ports["buffers"], root, HOST, ports["post"]))
    err = open(os.path.join(workdir, "nginx.stderr"), "w")
    proc = subprocess.Popen([NGINX, "-c", conf, "-p", workdir + "/"], stdin=subprocess.DEVNULL,
                            stdout=err, stderr=err)
    err.close()
    for p in ports.values():
        wait_port(p, proc, "nginx")
    return proc, ports


def sha_of_url(url):
    p = subprocess.run(["curl", "-sSf", "--max-time", "60", url], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=90)
    if p.returncode:
        raise SystemExit("curl %s failed: %s" % (url, p.stderr.decode(errors="replace")))
    return hashlib.sha256(p.stdout).hexdigest(), len(p.stdout)


LUA = """-- POST %(what)s for %(n)d devices in turn
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%(body)s'
request = function()
  i = (i %% %(n)d) + 1
  return wrk.format(nil, string.format("/device/bench/b%%d/firmware/%(topic)s", i))
end
"""


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: http_bench.py BUILD")
    binary = os.path.abspath(os.path.join(sys.argv[1], "otagw"))
    if not os.access(binary, os.X_OK):
        raise SystemExit("no otagw binary at %s (make first)" % binary)
    for tool in ("wrk", "curl", NGINX):
        need(tool)
    tmp = tempfile.mkdtemp(prefix="otagw-http-bench-")
    g = None
    ngx = None
    try:
        g = Gateway(binary, tmp)
        image = os.urandom(IMAGE_SIZE)
        sign = hashlib.sha256(image).hexdigest()
        fw = g.ok("POST", "/api/firmware", {"productId": "bench", "name": "bench image",
                                            "version": "2.0", "versionOrder": 2,
                                            "size": IMAGE_SIZE, "sign": sign,
                                            "signMethod": "sha256"})
        js = g.ok("PUT", "/api/firmware/%s/image" % fw["id"], raw=image,
                  headers={"Content-Type": "application/octet-stream"})
        if js["image"]["state"] != "ready":
            raise SystemExit("upload not ready: %r" % js)
        path = "/images/" + fw["id"]
        root = os.path.join(tmp, "www")
        os.makedirs(os.path.join(root, "images"))
        with open(os.path.join(root, path.lstrip("/")), "wb") as f:
            f.write(image)
        del image
        ngx, ports = start_nginx(tmp, root)
        urls = {"otagw": g.url(path),
                "nginx sendfile": "http://%s:%d%s" % (HOST, ports["sendfile"], path),
                "nginx buffers": "http://%s:%d%s" % (HOST, ports["buffers"], path)}
        for who, u in urls.items():
            h, n = sha_of_url(u)
            if (h, n) != (sign, IMAGE_SIZE):
                raise SystemExit("%s serves %d bytes with sha256 %s, not the image" % (who, n, h))

        print("otagw HTTP bench: %s, %d s per wrk run (-t1), %s" % (
            binary, DUR, time.strftime("%Y-%m-%d %H:%M:%S")))
        print("\n1. GET /images/<id>, a 16 MiB image (MiB/s from wrk's Transfer/sec; "
              "p99 latency; server CPU)")
        print("   references: nginx 1 worker, 'sendfile on' | 'sendfile off; "
              "output_buffers 2 64k'")
        hdr = "%-6s %-16s %10s %10s %8s %8s %8s  %s" % ("conns", "server", "MiB/s", "p99 ms",
                                                       "req/s", "cpu %", "wrk cpu",
                                                       "ratio otagw/this")
        print(hdr)
        problems = []
        for conns in (1, 50):
            res = {}
            for who, u in urls.items():
                pid = g.proc.pid if who == "otagw" else ngx.pid
                res[who] = r = wrk(u, conns, pid=pid)
                if r["errors"]:
                    problems.append("%s -c%d: %s" % (who, conns, r["errors"]))
            for who, r in res.items():
                rr = "" if who == "otagw" else "throughput %s, p99 %s" % (
                    ratio(res["otagw"]["mib_s"], r["mib_s"]),
                    ratio(res["otagw"]["p99_ms"], r["p99_ms"]))
                print("%-6d %-16s %10s %10s %8s %8s %8s  %s" % (
                    conns, who, fmt(r["mib_s"], "%.0f"), fmt(r["p99_ms"], "%.2f"),
                    fmt(r["rps"], "%.1f"), fmt(r["cpu"], "%.0f"), fmt(r["wrk_cpu"], "%.0f"),
                    rr))
            for who, tgt, what in (("nginx sendfile", 1.0, "nginx 1 worker, sendfile on"),
                                   ("nginx buffers", 0.9,
                                    "nginx 1 worker, sendfile off, output_buffers 2 64k")):
                benchtab.row("http: GET /images, 16 MiB, %d conn%s vs %s"
                             % (conns, "s" if conns > 1 else "", who), res["otagw"]["mib_s"],
                             "MiB/s", res[who]["mib_s"], what, target=("ratio", ">=", tgt),
                             note="p99 %s ms vs %s ms" % (fmt(res["otagw"]["p99_ms"], "%.2f"),
                                                          fmt(res[who]["p99_ms"], "%.2f")))

        # device messages
        for i in range(1, DEVICES + 1):
            g.ok("POST", "/device/bench/b%d/firmware/report" % i, {"version": "1.0"})
        t = g.ok("POST", "/api/firmware/%s/tasks" % fw["id"], {"name": "bench", "mode": "pull"})
        g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
        scripts = {}
        for topic, body in (("report", '{"version":"1.0","properties":{"hw":"A2"}}'),
                            ("pull", '{"messageId":"m1","requestVersion":""}')):
            scripts[topic] = os.path.join(tmp, "%s.lua" % topic)
            with open(scripts[topic], "w") as f:
                f.write(LUA % {"what": topic, "n": DEVICES, "body": body, "topic": topic})
        st, rep = g.req("POST", "/device/bench/b1/firmware/pull",
                        body={"messageId": "m1", "requestVersion": ""})
        if st != 200 or not rep.get("success"):
            raise SystemExit("pull does not answer a firmware: %d %r" % (st, rep))

        print("\n2. device messages, %d devices in turn (req/s; p99 latency; server CPU)"
              % DEVICES)
        print("   reference: nginx 1 worker, return 200 '{\"success\":true}' for the same POST")
        print("%-6s %-26s %10s %10s %8s %8s  %s" % ("conns", "request", "req/s", "p99 ms",
                                                   "cpu %", "wrk cpu",
                                                   "ratio otagw/nginx (req/s)"))
        for conns in (1, 50):
            ref = wrk("http://%s:%d/" % (HOST, ports["post"]), conns, scripts["report"],
                      pid=ngx.pid)
            if ref["errors"]:
                problems.append("nginx POST -c%d: %s" % (conns, ref["errors"]))
            print("%-6d %-26s %10s %10s %8s %8s" % (conns, "nginx return 200",
                                                   fmt(ref["rps"], "%.0f"),
                                                   fmt(ref["p99_ms"], "%.2f"),
                                                   fmt(ref["cpu"], "%.0f"),
                                                   fmt(ref["wrk_cpu"], "%.0f")))
            for topic in ("report", "pull"):
                r = wrk(g.url("/"), conns, scripts[topic], pid=g.proc.pid)
                if r["errors"]:
                    problems.append("otagw POST %s -c%d: %s" % (topic, conns, r["errors"]))
                print("%-6d %-26s %10s %10s %8s %8s  %s" % (
                    conns, "otagw POST " + topic, fmt(r["rps"], "%.0f"),
                    fmt(r["p99_ms"], "%.2f"), fmt(r["cpu"], "%.0f"), fmt(r["wrk_cpu"], "%.0f"),
                    ratio(r["rps"], ref["rps"])))
                benchtab.row("http: POST firmware/%s, %d conn%s" % (topic, conns,
                                                                   "s" if conns > 1 else ""),
                             r["rps"], "req/s", ref["rps"],
                             "nginx return 200 for the same POST (HTTP alone)",
                             note="p99 %s ms" % fmt(r["p99_ms"], "%.2f"))

        h = g.ok("GET", "/api/health")
        print("\notagw health after the runs: %s" % h.get("status"))
        if problems:
            print("errors reported by wrk:")
            for p in problems:
                print("  " + p)
    finally:
        if g is not None:
            g.stop()
        stop(ngx)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
