# SPDX-License-Identifier: MIT
"""otagw_it - helpers for the integration tests: locate the binary, start the
real daemon on 127.0.0.1 in a temp dir, talk HTTP to it (http.client, raw
sockets, curl). Standard library only. Every wait here is bounded."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"
NO_ANSWER = 0             # raw_exchange(): no response, connection left open

START_TIMEOUT = 5.0      # s: port must answer /api/health within this
STOP_TIMEOUT = 2.0       # s: SIGTERM to exit in the fixture teardown
HTTP_TIMEOUT = 5.0       # s: per request

# Lines that mean the sanitizer build (SAN=1) found something.
ALARMS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
          "ERROR: UndefinedBehaviorSanitizer", "AddressSanitizer:DEADLYSIGNAL")


BIN_COPY = None      # set by conftest: a private copy made at session start
BIN_SOURCE = None


def otagw_bin():
    """The binary under test: $OTAGW_BIN or <repo>/build/otagw (or the
    session's private copy of it)."""
    if BIN_COPY:
        return BIN_COPY
    b = os.environ.get("OTAGW_BIN")
    if b:
        return os.path.abspath(b)
    return os.path.join(REPO_ROOT, "build", "otagw")


def require_bin():
    b = otagw_bin()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        raise AssertionError("otagw binary not found at %s (run make, or set OTAGW_BIN)" % b)
    return b


def makefile_version():
    with open(os.path.join(REPO_ROOT, "Makefile")) as f:
        m = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M)
    return m.group(1) if m else None


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def write_config(path, port, token=None, bind=HOST, log_level="info", extra=""):
    # [tcp] port = 0: each test daemon must not claim the default device
    # port 9000 (extra may open a [tcp] section again and set its own).
    lines = ["[gateway]", "log_level = %s" % log_level, "syslog = false", "",
             "[tcp]", "port = 0", "",
             "[http]", "bind = %s" % bind, "port = %d" % port]
    if token is not None:
        lines.append("api_token = %s" % token)
    text = "\n".join(lines) + "\n" + extra
    with open(path, "w") as f:
        f.write(text)
    return text


def alarms_in(text):
    return [ln for ln in text.splitlines() if any(a in ln for a in ALARMS)]


def run_once(args, timeout=5.0, cwd=None):
    """Runs otagw with args to completion (config errors, --help ...).
    Returns CompletedProcess with text stdout/stderr; fails on a hang."""
    try:
        return subprocess.run([require_bin()] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, cwd=cwd, text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        raise AssertionError("otagw %s did not exit within %.0f s; stderr:\n%s"
                             % (" ".join(args), timeout, e.stderr)) from None


def wait_exit(proc, timeout):
    """proc.wait() with a bound; None if still running."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def port_accepts(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def listeners(port):
    """Local addresses ("127.0.0.1:8080", "0.0.0.0:8080", "[::]:8080", "*:8080")
    of listening TCP sockets on port, from `ss -ltnH`."""
    out = subprocess.run(["ss", "-ltnH"], stdout=subprocess.PIPE, text=True,
                         timeout=5, check=True).stdout
    found = []
    for ln in out.splitlines():
        cols = ln.split()
        if len(cols) >= 4 and cols[3].rsplit(":", 1)[-1] == str(port):
            found.append(cols[3])
    return found


def http_request(port, method, path, body=None, headers=None, raw=None, token=None,
                 host=HOST, timeout=HTTP_TIMEOUT):
    """One request on a fresh connection. body: JSON-encoded; raw: bytes as is.
    Returns (status, parsed JSON or None, headers, raw body bytes)."""
    hdrs = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if raw is not None:
        data = raw if isinstance(raw, bytes) else raw.encode()
        hdrs["Content-Type"] = "application/json"
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    for k, v in (headers or {}).items():
        if v is None:
            hdrs.pop(k, None)
        else:
            hdrs[k] = v
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        parsed = None
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = None
        return resp.status, parsed, resp.headers, payload
    finally:
        conn.close()


def raw_exchange(port, data, timeout=5.0, chunk=65536):
    """Sends bytes on a raw connection (tolerating the peer closing early)
    and reads until the peer closes or a whole response (by Content-Length)
    arrived, bounded by timeout. Returns (status, response bytes): status is
    the response's code, None when the peer closed without an HTTP response,
    or NO_ANSWER (0) when the connection was still open, silent, at timeout."""
    deadline = time.monotonic() + timeout
    s = socket.create_connection((HOST, port), timeout=timeout)
    got = b""
    closed = False
    try:
        try:
            for i in range(0, len(data), chunk):
                s.settimeout(max(0.1, deadline - time.monotonic()))
                s.sendall(data[i:i + chunk])
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        while time.monotonic() < deadline:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break
            if not b:
                closed = True
                break
            got += b
            if _response_complete(got):
                break
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    if m:
        return int(m.group(1)), got
    return (None if closed else NO_ANSWER), got


def _response_complete(buf):
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if m:
        return len(rest) >= int(m.group(1))
    return False


def curl(args, timeout=30):
    """Runs curl -sS with args; returns (http_code, body text, stderr, rc).
    The status comes from -w, on its own last line."""
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       text=True, errors="replace")
    body, _, code = p.stdout.rpartition("\n")
    try:
        status = int(code)
    except ValueError:
        status = None
    return status, body, p.stderr, p.returncode


class Gateway:
    """A running otagw on 127.0.0.1:port with data in data_dir."""

    def __init__(self, workdir, token=None, config_extra="", log_level="info"):
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.config = os.path.join(workdir, "otagw.conf")
        self.stderr_path = os.path.join(workdir, "otagw.stderr")
        self.stdout_path = os.path.join(workdir, "otagw.stdout")
        self.token = token
        self.port = free_port()
        write_config(self.config, self.port, token=token, log_level=log_level,
                     extra=config_extra)
        self.proc = None
        self.exit_codes = []     # of every stop, in order

    @property
    def base(self):
        return "http://%s:%d" % (HOST, self.port)

    def url(self, path):
        return self.base + path

    def start(self):
        b = require_bin()
        with open(self.stderr_path, "a") as f:
            f.write("==== start %s -c %s -d %s\n" % (b, self.config, self.data_dir))
        err = open(self.stderr_path, "a")
        out = open(self.stdout_path, "a")
        try:
            self.proc = subprocess.Popen([b, "-c", self.config, "-d", self.data_dir],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         cwd=self.workdir)
        finally:
            err.close()
            out.close()
        self.wait_ready()

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError("otagw exited with %d during start-up; stderr:\n%s"
                                     % (rc, self.stderr()))
            try:
                st, js, _, _ = http_request(self.port, "GET", "/api/health", token=self.token,
                                            timeout=1.0)
                if st == 200:
                    return
                last = "status %d" % st
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError("otagw did not answer GET /api/health within %.0f s (last: %s); "
                             "stderr:\n%s" % (timeout, last, self.stderr()))

    def kill_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals the daemon and waits; returns (exit code, seconds taken).
        A daemon still running after timeout is killed and reported."""
        if self.proc is None:
            return None, 0.0
        t0 = time.monotonic()
        early = self.proc.poll()
        if early is not None:
            self.proc = None
            self.exit_codes.append(early)
            raise AssertionError("otagw had already exited (code %d) before it was signalled; "
                                 "stderr tail:\n%s" % (early, self.stderr(tail=30)))
        self.proc.send_signal(sig)
        rc = wait_exit(self.proc, timeout)
        took = time.monotonic() - t0
        if rc is None:
            self.proc.kill()
            wait_exit(self.proc, 5)
            self.proc = None
            self.exit_codes.append("hung")
            raise AssertionError("otagw did not exit within %.1f s of signal %d; stderr:\n%s"
                                 % (timeout, sig, self.stderr()))
        self.proc = None
        self.exit_codes.append(rc)
        return rc, took

    def restart(self):
        rc, _ = self.stop()
        assert rc == 0, "otagw exited %s on SIGTERM; stderr:\n%s" % (rc, self.stderr())
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self, tail=None):
        try:
            with open(self.stderr_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        if tail:
            text = "\n".join(text.splitlines()[-tail:])
        return text

    # -- HTTP -------------------------------------------------------------

    def req(self, method, path, body=None, headers=None, raw=None, auth=True):
        """(status, parsed JSON or None, headers). With auth, a gateway that has
        a token sends it unless headers override Authorization."""
        st, js, hd, _ = http_request(self.port, method, path, body=body, headers=headers,
                                     raw=raw, token=self.token if auth else None)
        return st, js, hd

    def ok(self, method, path, body=None, expect=200):
        """req() that asserts the status and returns the JSON."""
        st, js, _ = self.req(method, path, body=body)
        assert st == expect, "%s %s %s -> %d %r (expected %d)" % (
            method, path, json.dumps(body) if body is not None else "", st, js, expect)
        return js

    def raw(self, data, timeout=5.0):
        return raw_exchange(self.port, data, timeout=timeout)

    # -- store snapshots ----------------------------------------------------

    def snapshot(self):
        """Everything the REST API lists, to compare before/after hostile input."""
        snap = {}
        for coll in ("/api/firmware", "/api/devices", "/api/tasks"):
            js = self.ok("GET", coll + "?size=1000")
            snap[coll] = js["items"]
        for t in snap["/api/tasks"]:
            js = self.ok("GET", "/api/tasks/%s/records?size=1000" % t["id"])
            snap["records:" + t["id"]] = js["items"]
        return snap


def assert_error(st, js, expect, *mentions):
    """An error response: status, a JSON {"error": "..."} naming each mention."""
    assert st == expect, "status %d, expected %d: %r" % (st, expect, js)
    assert isinstance(js, dict) and isinstance(js.get("error"), str) and js["error"], \
        "error body is not {\"error\": \"...\"}: %r" % (js,)
    for m in mentions:
        assert m.lower() in js["error"].lower(), "error %r does not name %r" % (js["error"], m)


def cleanup_dir(path):
    shutil.rmtree(path, ignore_errors=True)


# -- resource shortcuts ------------------------------------------------------

MD5_A = "9e107d9d372bb6826bd81d3542a419d6"
SHA256_A = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"


def mk_fw(gw, productId="prodA", version="1.0.0", name=None, **kw):
    body = {"productId": productId, "name": name or ("fw " + version), "version": version}
    body.update(kw)
    return gw.ok("POST", "/api/firmware", body, expect=201)


def mk_dev(gw, id, productId="prodA", **kw):
    body = {"id": id, "productId": productId}
    body.update(kw)
    return gw.ok("POST", "/api/devices", body, expect=201)


def mk_task(gw, fw_id, name="task", mode="pull", **kw):
    body = {"name": name, "mode": mode}
    body.update(kw)
    return gw.ok("POST", "/api/firmware/%s/tasks" % fw_id, body, expect=201)


def records(gw, task_id, state=None):
    q = "?size=1000" + ("&state=" + state if state else "")
    return gw.ok("GET", "/api/tasks/%s/records%s" % (task_id, q))["items"]


def now_ms():
    return int(time.time() * 1000)


def assert_list(js, total=None, page=0, size=20):
    assert isinstance(js, dict), js
    assert set(("total", "page", "size", "items")) <= set(js), js
    assert isinstance(js["items"], list), js
    assert js["page"] == page and js["size"] == size, js
    if total is not None:
        assert js["total"] == total, js
    return js["items"]
