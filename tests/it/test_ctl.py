# SPDX-License-Identifier: MIT
"""`otagw ctl` (README "Command line"): the command line client of a running
daemon, run as a subprocess against the real daemon of the gw / gw_token
fixtures. Every command is run at least once and checked twice: the table
(columns found from the header, cells compared by terminal columns, so a
misaligned Chinese name shows up as wrong cell values) and --json (parsed
and compared with what the REST API answers). Errors: exit status and the
one-line message for 404 (4), 401 (5), 400/409/422 (6), a daemon nobody
runs (3) and usage mistakes (2). The URL and token from options, the
environment and the configuration file. Uploads: the image served
afterwards has the file's sha256; the progress bar on a pty and its
absence on a pipe; Ctrl-C against a server that stops reading."""

import hashlib
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time
import unicodedata

import pytest

import otagw_it
from conftest import TOKEN
from otagw_it import HOST, free_port, http_request, mk_dev, mk_fw

RUN_TIMEOUT = 60.0        # s: one ctl run (sanitized builds are slow)
FW_RIGHT = ("ORDER", "SIZE")
EXIT = {"ok": 0, "failed": 1, "usage": 2, "unreachable": 3, "not_found": 4,
        "unauthorized": 5, "invalid": 6}


# -- running ctl ------------------------------------------------------------------------------

def base_env(**extra):
    """The environment of a ctl run: no OTAGW_URL/OTAGW_TOKEN unless given,
    a UTF-8 locale for the tables."""
    env = {k: v for k, v in os.environ.items() if k not in ("OTAGW_URL", "OTAGW_TOKEN")}
    env["LC_ALL"] = "C.UTF-8"
    env.update(extra)
    return env


def ctl(args, g=None, env=None, conf=None, timeout=RUN_TIMEOUT):
    """otagw [-c CONF] ctl ARGS; CONF defaults to g's configuration (its URL
    and token). Returns CompletedProcess with text output."""
    cmd = [otagw_it.require_bin()]
    conf = conf if conf is not None else (g.config if g is not None else None)
    if conf:
        cmd += ["-c", conf]
    cmd += ["ctl"] + list(args)
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, text=True,
                              errors="replace", env=env or base_env())
    except subprocess.TimeoutExpired as e:
        raise AssertionError("otagw ctl %s did not exit within %.0f s; stderr:\n%s"
                             % (" ".join(args), timeout, e.stderr)) from None


def ok(args, g, **kw):
    p = ctl(args, g, **kw)
    assert p.returncode == 0, "ctl %s -> %d\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(args), p.returncode, p.stdout, p.stderr)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p.stdout


def js(args, g, **kw):
    return json.loads(ok(["--json"] + list(args), g, **kw))


def fails(args, g, code, *words, **kw):
    """A run that must exit with code and say each of words in one
    "otagw ctl: ..." line on stderr; stdout stays empty."""
    p = ctl(args, g, **kw)
    assert p.returncode == EXIT[code], "ctl %s -> %d, expected %d (%s)\nstderr:\n%s" % (
        " ".join(args), p.returncode, EXIT[code], code, p.stderr)
    assert p.stdout == "", "output on a failure: %r" % p.stdout
    line = p.stderr.strip().splitlines()[0] if p.stderr.strip() else ""
    assert line.startswith("otagw ctl"), p.stderr
    for w in words:
        assert w.lower() in p.stderr.lower(), "%r not in %r" % (w, p.stderr)
    return p.stderr


# -- reading tables ---------------------------------------------------------------------------

def dwidth(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def placed(line):
    """[(terminal column, char)] of line."""
    out, col = [], 0
    for ch in line:
        out.append((col, ch))
        col += dwidth(ch)
    return out


def table(lines, right=()):
    """Rows of an aligned table as dicts by header name. lines[0] is the
    header. Columns are the runs of terminal columns between gaps (two or
    more columns blank on every line). Left-aligned cells must start exactly
    where their header starts, right-aligned ones (names in right) end
    where it ends: text measured with the wrong width fails here."""
    pls = [placed(ln) for ln in lines]
    width = max((c + dwidth(ch) for pl in pls for c, ch in pl), default=0)
    used = [False] * (width + 2)
    for pl in pls:
        for c, ch in pl:
            if ch != " ":
                for k in range(c, c + dwidth(ch)):
                    used[k] = True
    ranges, lo, c = [], None, 0
    while c < width:
        if used[c]:
            lo = c if lo is None else lo
            c += 1
            continue
        gap = c
        while gap < width and not used[gap]:
            gap += 1
        if lo is not None and (gap - c >= 2 or gap >= width):
            ranges.append((lo, c))
            lo = None
        c = gap
    if lo is not None:
        ranges.append((lo, width))

    def cut(pl):
        out = []
        for lo, hi in ranges:
            sel = [(c, ch) for c, ch in pl if lo <= c < hi]
            text = "".join(ch for _, ch in sel)
            first = next((c for c, ch in sel if ch != " "), None)
            last = max((c + dwidth(ch) for c, ch in sel if ch != " "), default=None)
            out.append((text.strip(), first, last))
        return out
    head = cut(pls[0])
    names = [h[0] for h in head]
    assert all(names), "a column without a header: %r" % lines[0]
    rows = []
    for ln, pl in zip(lines[1:], pls[1:]):
        row = {}
        for (name, hfirst, hlast), (text, first, last) in zip(head, cut(pl)):
            if text and name in right:
                assert last == hlast, "%s %r does not end under its header in %r" % (
                    name, text, ln)
            elif text:
                assert first == hfirst, "%s %r does not start under its header in %r" % (
                    name, text, ln)
            row[name] = text
        rows.append(row)
    return rows


def kv(out):
    """A key/value listing (two aligned columns) as a dict."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    col = None
    res = {}
    for ln in lines:
        m = re.match(r"^\s*(\S+(?: \S+)?)(  +)(.*)$", ln)
        if m is None:
            res[ln.strip()] = ""
            continue
        col = m.start(3) if col is None else col
        assert m.start(3) == col, "value not aligned in %r (column %d, others %d)" % (
            ln, m.start(3), col)
        res[m.group(1)] = m.group(3)
    return res


def list_table(out, right=()):
    """A list's output: table lines then one footer line."""
    lines = out.rstrip("\n").splitlines()
    return table(lines[:-1], right), lines[-1]


# -- fixtures of data -------------------------------------------------------------------------

def rand_file(path, n, seed=1):
    data = hashlib.sha256(b"%d" % seed).digest() * (n // 32 + 1)
    data = data[:n]
    with open(path, "wb") as f:
        f.write(data)
    return data


def http_device(g, product, device, path, body):
    st, js_, _, _ = http_request(g.port, "POST", "/device/%s/%s/firmware/%s"
                                 % (product, device, path), body=body)
    assert st == 200, (path, st, js_)
    return js_


# -- help and usage ---------------------------------------------------------------------------

COMMANDS = ["status", "firmware list", "firmware show", "firmware create", "firmware edit",
            "firmware delete", "firmware upload", "devices list", "devices show",
            "devices history", "tasks list", "tasks show", "tasks create", "tasks publish",
            "tasks cancel", "tasks records", "publish", "cancel", "records", "cache list",
            "cache delete"]


def test_help_lists_every_command_with_options():
    p = ctl(["--help"])
    assert p.returncode == 0 and p.stderr == "", p.stderr
    text = p.stdout
    for c in COMMANDS:
        assert re.search(r"^  %s\b" % re.escape(c), text, re.M), "%s not in --help" % c
    for opt in ("--product P", "--version-order N", "--sign-method M", "--property KEY=VALUE",
                "--mode push|pull", "--devices ID,ID,...", "--state S", "--page N",
                "--firmware ID", "--url URL", "--token T", "--json"):
        assert opt in text, opt
    flat = " ".join(text.split())
    for code in ("0 ok", "2 usage", "3 daemon unreachable", "4 not found (404)",
                 "5 unauthorized (401/403)", "6 conflict or invalid input (400, 409, 422)"):
        assert code in flat, code
    assert max(len(ln) for ln in text.splitlines()) <= 80


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command):
    p = ctl(command.split() + ["--help"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: otagw ctl " + command), p.stdout
    assert "Asks: " in p.stdout and "/api/" in p.stdout
    assert "--json" in p.stdout


@pytest.mark.parametrize("args,words", [
    ([], ["missing COMMAND"]),
    (["frobnicate"], ["unknown command 'frobnicate'"]),
    (["firmware"], ["firmware: missing command", "firmware list"]),
    (["firmware", "frob"], ["unknown command 'firmware frob'"]),
    (["firmware", "show"], ["give ID"]),
    (["firmware", "show", "a", "b"], ["give ID"]),
    (["firmware", "show", "a/b"], ["not a valid id"]),
    (["firmware", "list", "--bogus"], ["unknown option '--bogus'"]),
    (["firmware", "list", "--page"], ["needs a value"]),
    (["firmware", "list", "--page", "x"], ["--page takes a whole number"]),
    (["firmware", "create", "--name", "n", "--version", "1"], ["--product is required"]),
    (["firmware", "create", "--product", "p", "--name", "n", "--version", "1",
      "--property", "novalue"], ["KEY=VALUE"]),
    (["firmware", "edit", "fw1"], ["nothing to change"]),
    (["tasks", "create", "fw1", "--name", "t"], ["--mode is required"]),
    (["tasks", "create", "fw1", "--name", "t", "--mode", "push", "--no-publish",
      "--devices", "d1"], ["--no-publish"]),
    (["tasks", "list", "--state", "running"], ["created, published or canceled"]),
    (["publish", "t1", "--devices", "ok,bad id"], ["not a valid id"]),
    (["--bogus", "status"], ["unknown option '--bogus'"]),
])
def test_usage_errors_exit_2_and_send_nothing(gw, args, words):
    before = gw.snapshot()
    fails(args, gw, "usage", *words)
    assert gw.snapshot() == before


# -- status -----------------------------------------------------------------------------------

def test_status_table_and_json(gw):
    out = ok(["status"], gw)
    st = kv(out)
    assert st["daemon"] == "%s (ok)" % gw.base, st
    assert st["version"] == gw.ok("GET", "/api/health")["version"]
    assert st["database"] == "ok" and re.fullmatch(r"\d\d:\d\d:\d\d", st["uptime"]), st
    assert st["cloud"] == "disabled" and st["serial"] == "no ports", st
    j = js(["status"], gw)
    assert j["health"]["status"] == "ok" and j["health"]["schemaVersion"] >= 1, j
    assert j["cloud"] == gw.ok("GET", "/api/cloud")
    assert j["serial"] == gw.ok("GET", "/api/serial")


def test_daemon_down_exit_3():
    port = free_port()
    fails(["--url", "http://%s:%d" % (HOST, port), "status"], None, "unreachable",
          "status: cannot reach the daemon at %s:%d" % (HOST, port),
          env=base_env(OTAGW_TOKEN=""))


# -- firmware ---------------------------------------------------------------------------------

def test_firmware_create_show_table_and_json(gw):
    out = ok(["firmware", "create", "--product", "sensor", "--name", "sensor fw",
              "--version", "2.0", "--version-order", "20", "--url", "http://files.example/s.bin",
              "--size", "524288", "--sign", otagw_it.MD5_A, "--sign-method", "md5",
              "--description", "two words", "--property", "hw=A2", "--property", "region=eu",
              "--id", "fw-s2"], gw)
    f = kv(out)
    assert (f["id"], f["productId"], f["name"], f["version"], f["versionOrder"]) == \
        ("fw-s2", "sensor", "sensor fw", "2.0", "20"), f
    assert f["size"] == "512.0 KiB (524288 bytes)" and f["signMethod"] == "md5", f
    assert f["properties"] == "hw=A2, region=eu" and f["description"] == "two words", f
    assert f["image"] == "none" and f["origin"] == "local", f
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", f["createTime"]), f
    api = gw.ok("GET", "/api/firmware/fw-s2")
    assert api["properties"] == {"hw": "A2", "region": "eu"} and api["size"] == 524288
    assert kv(ok(["firmware", "show", "fw-s2"], gw)) == f
    assert js(["firmware", "show", "fw-s2"], gw) == api


def test_firmware_create_json_is_the_api_answer(gw):
    j = js(["firmware", "create", "--product", "p", "--name", "n", "--version", "1"], gw)
    assert j == gw.ok("GET", "/api/firmware/" + j["id"])
    assert (j["productId"], j["name"], j["version"], j["size"]) == ("p", "n", "1", 0)


def test_firmware_list_table_and_json(gw):
    mk_fw(gw, productId="a", version="1.0", versionOrder=1, size=1048576, id="a1")
    mk_fw(gw, productId="a", version="2.0", versionOrder=2, id="a2", name="second one")
    mk_fw(gw, productId="b", version="9", versionOrder=9, id="b9")
    rows, footer = list_table(ok(["firmware", "list"], gw), right=("ORDER", "SIZE"))
    assert [r["ID"] for r in rows] == ["a2", "a1", "b9"], rows
    assert rows[0] == {"ID": "a2", "PRODUCT": "a", "NAME": "second one", "VERSION": "2.0",
                       "ORDER": "2", "SIZE": "-", "IMAGE": "none",
                       "UPDATED": rows[0]["UPDATED"]}, rows[0]
    assert rows[1]["SIZE"] == "1.0 MiB" and rows[2]["PRODUCT"] == "b"
    assert footer == "3 firmware"
    j = js(["firmware", "list"], gw)
    assert j == gw.ok("GET", "/api/firmware")
    rows, footer = list_table(ok(["firmware", "list", "--product", "b"], gw),
                              right=("ORDER", "SIZE"))
    assert [r["ID"] for r in rows] == ["b9"] and footer == "1 firmware"


def test_firmware_list_pages_say_total_and_next(gw):
    for i in range(5):
        mk_fw(gw, version="1.%d" % i, versionOrder=i, id="p%d" % i)
    rows, footer = list_table(ok(["firmware", "list", "--size", "2"], gw), right=FW_RIGHT)
    assert [r["ID"] for r in rows] == ["p4", "p3"]
    assert footer == "firmware 1-2 of 5 (page 0, size 2); next: --page 1", footer
    rows, footer = list_table(ok(["firmware", "list", "--size", "2", "--page", "2"], gw),
                              right=FW_RIGHT)
    assert [r["ID"] for r in rows] == ["p0"]
    assert footer == "firmware 5-5 of 5 (page 2, size 2)", footer
    assert ok(["firmware", "list", "--size", "2", "--page", "9"], gw) == \
        "no firmware on page 9 (5 in all)\n"
    j = js(["firmware", "list", "--size", "2", "--page", "1"], gw)
    assert (j["total"], j["page"], j["size"], [x["id"] for x in j["items"]]) == \
        (5, 1, 2, ["p2", "p1"])


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_chinese_names_aligned(gw, locale):
    """Wide characters take two terminal columns: under a UTF-8 locale
    (wcwidth) and under "C" (the table decodes UTF-8 itself)."""
    mk_fw(gw, productId="meter", version="1.0", versionOrder=1, id="m1", name="电表固件")
    mk_fw(gw, productId="meter", version="2.0", versionOrder=2, id="m2",
          name="智能电表主控固件（正式版）")
    mk_fw(gw, productId="meter", version="3.0", versionOrder=3, id="m3", name="plain ascii")
    out = ok(["firmware", "list"], gw, env=base_env(LC_ALL=locale))
    rows, _ = list_table(out, right=("ORDER", "SIZE"))
    assert [(r["ID"], r["NAME"], r["VERSION"]) for r in rows] == [
        ("m3", "plain ascii", "3.0"), ("m2", "智能电表主控固件（正式版）", "2.0"),
        ("m1", "电表固件", "1.0")], rows
    # the VERSION column starts at one terminal column on every line
    lines = out.splitlines()[:4]
    cols = {dwidth(ln[:ln.index(v)]) for ln, v in zip(lines, ["VERSION", "3.0", "2.0", "1.0"])}
    assert len(cols) == 1, "VERSION not aligned: %r\n%s" % (cols, out)


def test_firmware_edit_merges_properties(gw):
    mk_fw(gw, id="e1", properties={"hw": "A1", "keep": "me"}, description="old")
    f = kv(ok(["firmware", "edit", "e1", "--property", "hw=B2", "--property", "new=1",
               "--description", "新的说明"], gw))
    assert f["description"] == "新的说明" and f["name"] == "fw 1.0.0", f
    api = gw.ok("GET", "/api/firmware/e1")
    assert api["properties"] == {"hw": "B2", "keep": "me", "new": "1"}, api
    j = js(["firmware", "edit", "e1", "--version-order", "7"], gw)
    assert j["versionOrder"] == 7 and j["properties"] == api["properties"]


def test_firmware_delete(gw):
    mk_fw(gw, id="d1")
    assert ok(["firmware", "delete", "d1"], gw) == "deleted firmware d1\n"
    st, _, _ = gw.req("GET", "/api/firmware/d1")
    assert st == 404
    fails(["firmware", "delete", "d1"], gw, "not_found", "firmware delete d1: ", "d1")
    mk_fw(gw, id="d2")
    assert ok(["--json", "firmware", "delete", "d2"], gw) == ""


# -- uploads ----------------------------------------------------------------------------------

def test_upload_image_served_with_its_sha256(gw, tmp_path):
    data = rand_file(tmp_path / "fw.bin", 3 * 1024 * 1024 + 11)
    sha = hashlib.sha256(data).hexdigest()
    mk_fw(gw, id="u1", size=len(data), sign=sha, signMethod="sha256")
    p = ctl(["firmware", "upload", "u1", str(tmp_path / "fw.bin")], gw)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "firmware u1: image ready, 3.0 MiB, sha256 %s\n" % sha, p.stdout
    assert kv(ok(["firmware", "show", "u1"], gw))["image"] == \
        "ready, 3.0 MiB, sha256 %s" % sha
    st, _, _, body = http_request(gw.port, "GET", "/images/u1")
    assert st == 200 and hashlib.sha256(body).hexdigest() == sha
    # again, --json: the API's answer
    j = js(["firmware", "upload", "u1", str(tmp_path / "fw.bin")], gw)
    assert j["id"] == "u1" and j["image"]["state"] == "ready" and j["image"]["sha256"] == sha


def test_upload_without_tty_one_plain_line(gw, tmp_path):
    rand_file(tmp_path / "a.bin", 200000)
    mk_fw(gw, id="u2")
    p = ctl(["firmware", "upload", "u2", str(tmp_path / "a.bin")], gw)
    assert p.returncode == 0, p.stderr
    assert "\r" not in p.stderr and "[#" not in p.stderr and "\033" not in p.stderr, p.stderr
    assert re.fullmatch(r"uploaded 195\.3 KiB in \d+(\.\d\d)? s \(\d+(\.\d)? [KMG]?i?B/s\)\n", p.stderr), p.stderr
    p = ctl(["firmware", "upload", "u2", str(tmp_path / "a.bin"), "--quiet"], gw)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    rows, _ = list_table(ok(["firmware", "list"], gw), right=FW_RIGHT)
    # no declared size: the table shows the image's
    assert (rows[0]["SIZE"], rows[0]["IMAGE"]) == ("195.3 KiB", "ready"), rows


def run_on_pty(cmd, timeout=RUN_TIMEOUT, env=None, on_output=None):
    """Runs cmd with stderr on a pty (stdout a pipe); returns (exit code,
    stdout, everything written to the pty). on_output(proc, pty_text) is
    called every 0.2 s at most, and as pty output arrives."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, env=env or base_env())
    os.close(slave)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    b = os.read(master, 65536)
                except OSError:
                    break
                if not b:
                    break
                got += b
            elif proc.poll() is not None:
                break
            if on_output:
                on_output(proc, got.decode(errors="replace"))
        rc = otagw_it.wait_exit(proc, max(0.1, deadline - time.monotonic()))
        if rc is None:
            proc.kill()
            proc.wait()
            raise AssertionError("%s did not exit; pty output %r" % (cmd, got[-500:]))
        return rc, proc.stdout.read().decode(), got.decode(errors="replace")
    finally:
        os.close(master)
        proc.stdout.close()


def test_upload_progress_bar_on_a_pty(gw, tmp_path):
    data = rand_file(tmp_path / "b.bin", 8 * 1024 * 1024)
    mk_fw(gw, id="u3")
    rc, out, tty = run_on_pty([otagw_it.require_bin(), "-c", gw.config, "ctl", "firmware",
                               "upload", "u3", str(tmp_path / "b.bin")])
    assert rc == 0, tty
    assert out.startswith("firmware u3: image ready, 8.0 MiB"), out
    draws = re.findall(r"\ruploading  \[([# ]{30})\] +(\d+)%  ([\d.]+ [KMG]?i?B) / 8\.0 MiB  "
                       r"([\d.]+ [KMG]?i?B/s)\033\[K", tty)
    assert draws, "no progress bar drawn: %r" % tty[:300]
    assert draws[-1][:3] == ("#" * 30, "100", "8.0 MiB"), draws[-1]
    assert tty.endswith("\r\n"), "the bar's line is not ended: %r" % tty[-80:]
    assert "uploaded " not in tty, "the plain line is for non-terminals only"
    assert gw.ok("GET", "/api/firmware/u3")["image"]["sha256"] == hashlib.sha256(data).hexdigest()


class StallingServer(threading.Thread):
    """Answers GET /api/firmware/{id} like the daemon, then takes a PUT's
    headers and stops reading, so the client's upload stalls. Records when
    the client closes the connection."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(4)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.put_started = threading.Event()
        self.release = threading.Event()
        self.client_closed = threading.Event()
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                self.serve(c)

    def serve(self, c):
        c.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            b = c.recv(4096)
            if not b:
                return
            head += b
        if head.startswith(b"GET "):
            body = json.dumps({"id": "slow", "size": 0, "origin": "local"}).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                      b"%d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            return
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.put_started.set()
        self.release.wait(30)
        deadline = time.monotonic() + 10
        try:                        # drain: the client must have closed by now
            while time.monotonic() < deadline:
                if not c.recv(1 << 20):
                    self.client_closed.set()
                    return
        except ConnectionResetError:
            self.client_closed.set()
        except OSError:
            pass

    def close(self):
        self.stop = True
        self.release.set()
        self.sock.close()


def test_ctrl_c_stops_an_upload_cleanly(tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(256 * 1024 * 1024)          # sparse: the socket fills long before
    srv = StallingServer()
    srv.start()
    sent = {}

    def on_output(proc, text):
        if "uploading" in text and "int" not in sent and srv.put_started.is_set():
            time.sleep(0.5)                  # stalled by now
            sent["int"] = time.monotonic()
            proc.send_signal(signal.SIGINT)

    try:
        rc, out, tty = run_on_pty([otagw_it.require_bin(), "ctl", "--url",
                                   "http://%s:%d" % (HOST, srv.port), "firmware", "upload",
                                   "slow", str(big)], env=base_env(OTAGW_TOKEN=""),
                                  on_output=on_output, timeout=30)
        took = time.monotonic() - sent["int"]
        srv.release.set()
        assert rc == EXIT["failed"], tty
        assert took < 3.0, "exit %.1f s after SIGINT" % took
        assert "\r\notagw ctl: firmware upload slow: interrupted" in tty, repr(tty[-300:])
        assert out == ""
        assert srv.client_closed.wait(10), "the client left the connection open"
    finally:
        srv.close()


@pytest.mark.parametrize("case", ["size", "no_fw", "no_file", "digest"])
def test_upload_refusals(gw, tmp_path, case):
    data = rand_file(tmp_path / "c.bin", 4096)
    if case == "size":
        mk_fw(gw, id="r1", size=4000)
        fails(["firmware", "upload", "r1", str(tmp_path / "c.bin")], gw, "invalid",
              "is 4096 bytes, the firmware's size is 4000")
    elif case == "no_fw":
        fails(["firmware", "upload", "nope", str(tmp_path / "c.bin")], gw, "not_found",
              "firmware upload nope: firmware 'nope' not found")
    elif case == "no_file":
        mk_fw(gw, id="r1")
        fails(["firmware", "upload", "r1", str(tmp_path / "missing.bin")], gw, "failed",
              "missing.bin: No such file")
    else:
        mk_fw(gw, id="r1", size=len(data), sign=otagw_it.MD5_A, signMethod="md5")
        fails(["firmware", "upload", "r1", str(tmp_path / "c.bin")], gw, "invalid",
              "firmware upload r1: md5: expected " + otagw_it.MD5_A)
        assert gw.ok("GET", "/api/firmware/r1")["image"]["state"] == "failed"


# -- devices ----------------------------------------------------------------------------------

def upgrade_http_device(g, tmp_path):
    """Device h1 (product hp) upgrades from 1.0 to 2.0 over HTTP; returns
    the task id."""
    data = rand_file(tmp_path / "h.bin", 50000, seed=7)
    mk_fw(g, productId="hp", version="2.0", versionOrder=2, id="hfw", size=len(data),
          sign=hashlib.sha256(data).hexdigest(), signMethod="sha256")
    ok(["firmware", "upload", "hfw", str(tmp_path / "h.bin"), "--quiet"], g)
    http_device(g, "hp", "h1", "report", {"version": "1.0"})
    j = js(["tasks", "create", "hfw", "--name", "hp rollout", "--mode", "pull", "--id", "ht",
            "--devices", "h1"], g)
    assert j["added"] == 1, j
    rep = http_device(g, "hp", "h1", "pull", {"messageId": "m1"})
    assert rep["success"] is True, rep
    http_device(g, "hp", "h1", "upgrade/progress", {"version": "2.0", "progress": 100,
                                                     "complete": True, "success": True})
    http_device(g, "hp", "h1", "report", {"version": "2.0"})     # after its reboot
    return "ht"


def test_devices_list_show_history(gw, tmp_path):
    mk_dev(gw, "d-a", productId="hp", name="泵站 1", firmwareVersion="0.9")
    upgrade_http_device(gw, tmp_path)
    rows, footer = list_table(ok(["devices", "list", "--product", "hp"], gw))
    assert footer == "2 devices"
    by = {r["ID"]: r for r in rows}
    assert by["d-a"]["NAME"] == "泵站 1" and by["d-a"]["VERSION"] == "0.9", by
    assert by["d-a"]["ONLINE"] == "no" and by["d-a"]["LAST SEEN"] == "-"
    assert by["h1"]["TRANSPORT"] == "http" and by["h1"]["VERSION"] == "2.0", by
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", by["h1"]["LAST SEEN"]), by
    assert js(["devices", "list"], gw) == gw.ok("GET", "/api/devices")
    d = kv(ok(["devices", "show", "h1"], gw))
    assert (d["id"], d["productId"], d["transport"], d["hasSecureKey"]) == \
        ("h1", "hp", "http", "no"), d
    assert js(["devices", "show", "h1"], gw) == gw.ok("GET", "/api/devices/h1")
    rows, footer = list_table(ok(["devices", "history", "h1"], gw), right=("PROGRESS",))
    assert [(r["FROM"], r["TO"]) for r in rows] == [
        ("processing", "success"), ("waiting", "processing"), ("-", "waiting")], rows
    assert rows[0]["TASK"] == "ht" and rows[0]["PROGRESS"] == "100%" and footer == "3 changes"
    assert js(["devices", "history", "h1"], gw) == gw.ok("GET", "/api/devices/h1/history")


# -- tasks ------------------------------------------------------------------------------------

def product_with_devices(g, n=3, product="tp"):
    mk_fw(g, productId=product, version="2.0", versionOrder=2, id="tfw")
    for i in range(n):
        mk_dev(g, "%s%d" % (product, i), productId=product, firmwareVersion="1.0")


def test_tasks_create_publishes_to_every_device(gw):
    product_with_devices(gw)
    mk_dev(gw, "other", productId="elsewhere")
    out = ok(["tasks", "create", "tfw", "--name", "全部设备", "--mode", "push",
              "--timeout", "600", "--id", "all1"], gw)
    *kv_lines, last = out.rstrip("\n").splitlines()
    t = kv("\n".join(kv_lines))
    assert (t["id"], t["name"], t["mode"], t["state"], t["timeoutSeconds"]) == \
        ("all1", "全部设备", "push", "published", "600"), t
    assert t["records"] == "3 in all" and t["waiting"] == "3", t
    assert last == "task all1 published: 3 added, 0 already in it, 0 up to date, 0 pushed; " \
                   "records: 3 waiting", last
    recs = gw.ok("GET", "/api/tasks/all1/records")["items"]
    assert sorted(r["deviceId"] for r in recs) == ["tp0", "tp1", "tp2"]


def test_tasks_create_selected_devices_json_and_no_publish(gw):
    product_with_devices(gw)
    j = js(["tasks", "create", "tfw", "--name", "two", "--mode", "pull", "--devices",
            "tp0,tp2", "--id", "sel"], gw)
    assert (j["added"], j["task"]["id"], j["task"]["counts"]["waiting"]) == (2, "sel", 2), j
    assert sorted(r["deviceId"] for r in gw.ok("GET", "/api/tasks/sel/records")["items"]) == \
        ["tp0", "tp2"]
    j = js(["tasks", "create", "tfw", "--name", "later", "--mode", "pull", "--no-publish",
            "--description", "d"], gw)
    assert j == gw.ok("GET", "/api/tasks/" + j["id"])
    assert j["state"] == "created" and j["counts"]["total"] == 0 and j["description"] == "d"


def test_tasks_list_show_and_filters(gw):
    product_with_devices(gw)
    mk_fw(gw, productId="tp", version="3.0", versionOrder=3, id="tfw3")
    ok(["tasks", "create", "tfw", "--name", "a", "--mode", "pull", "--id", "ta",
        "--devices", "tp0"], gw)
    ok(["tasks", "create", "tfw3", "--name", "b", "--mode", "push", "--id", "tb",
        "--no-publish"], gw)
    rows, footer = list_table(ok(["tasks", "list"], gw), right=("DEVICES",))
    assert footer == "2 tasks"
    by = {r["ID"]: r for r in rows}
    assert by["ta"] == {"ID": "ta", "NAME": "a", "FIRMWARE": "tfw", "MODE": "pull",
                        "STATE": "published", "DEVICES": "1", "RECORDS": "1 waiting",
                        "CREATED": by["ta"]["CREATED"]}, by["ta"]
    assert (by["tb"]["STATE"], by["tb"]["RECORDS"]) == ("created", "none")
    assert js(["tasks", "list"], gw) == gw.ok("GET", "/api/tasks")
    rows, _ = list_table(ok(["tasks", "list", "--firmware", "tfw3"], gw), right=("DEVICES",))
    assert [r["ID"] for r in rows] == ["tb"]
    rows, footer = list_table(ok(["tasks", "list", "--state", "created"], gw),
                              right=("DEVICES",))
    assert [r["ID"] for r in rows] == ["tb"] and footer == "1 task"
    j = js(["tasks", "list", "--state", "published"], gw)
    assert (j["total"], [t["id"] for t in j["items"]]) == (1, ["ta"])
    assert ok(["tasks", "list", "--state", "canceled"], gw) == "no tasks\n"
    t = kv(ok(["tasks", "show", "ta"], gw))
    assert (t["firmwareId"], t["productId"], t["records"], t["waiting"], t["success"]) == \
        ("tfw", "tp", "1 in all", "1", "0"), t
    assert js(["tasks", "show", "ta"], gw) == gw.ok("GET", "/api/tasks/ta")


@pytest.mark.parametrize("short", [False, True])
def test_publish_records_cancel(gw, short):
    product_with_devices(gw)
    ok(["tasks", "create", "tfw", "--name", "p", "--mode", "pull", "--id", "tp",
        "--no-publish"], gw)
    pre = [] if short else ["tasks"]
    out = ok(pre + ["publish", "tp", "--devices", "tp1"], gw)
    assert out == "task tp published: 1 added, 0 already in it, 0 up to date, 0 pushed; " \
                  "records: 1 waiting\n", out
    j = js(pre + ["publish", "tp"], gw)
    assert (j["added"], j["already"], j["task"]["counts"]["total"]) == (2, 1, 3), j
    rows, footer = list_table(ok(pre + ["records", "tp"], gw), right=("PROGRESS",))
    assert sorted(r["DEVICE"] for r in rows) == ["tp0", "tp1", "tp2"] and footer == "3 records"
    assert {(r["STATE"], r["PROGRESS"], r["VERSION"]) for r in rows} == {("waiting", "0%", "2.0")}
    assert js(pre + ["records", "tp"], gw) == gw.ok("GET", "/api/tasks/tp/records")
    assert ok(pre + ["cancel", "tp"], gw) == "task tp canceled: 3 records canceled\n"
    rows, _ = list_table(ok(pre + ["records", "tp", "--state", "canceled"], gw),
                         right=("PROGRESS",))
    assert len(rows) == 3 and {r["REASON"] for r in rows} == {"task canceled"}, rows
    assert ok(pre + ["records", "tp", "--state", "waiting,processing"], gw) == "no records\n"
    j = js(pre + ["cancel", "tp"], gw)
    assert j["canceled"] == 0 and j["task"]["state"] == "canceled"
    fails(pre + ["publish", "tp"], gw, "invalid", "publish tp: ")


def test_pause_resume_abort_and_events(gw):
    product_with_devices(gw)
    ok(["tasks", "create", "tfw", "--name", "r", "--mode", "pull", "--id", "tr"], gw)
    assert ok(["tasks", "pause", "tr", "--reason", "line 3 is running a batch"], gw) == \
        "task tr paused: line 3 is running a batch\n"
    t = gw.ok("GET", "/api/tasks/tr")
    assert t["paused"] is True and t["pauseReason"] == "line 3 is running a batch", t
    fails(["tasks", "pause", "tr"], gw, "invalid", "tasks pause tr: ")   # 409: already paused
    assert ok(["tasks", "resume", "tr"], gw) == "task tr running\n"
    assert gw.ok("GET", "/api/tasks/tr")["paused"] is False
    assert js(["tasks", "pause", "tr"], gw)["pauseReason"] == "paused by the operator"
    assert js(["tasks", "resume", "tr"], gw)["paused"] is False

    rows, footer = list_table(ok(["tasks", "events", "tr"], gw), right=("WAVE",))
    api = gw.ok("GET", "/api/tasks/tr/events")["items"]
    assert [r["EVENT"] for r in rows] == [e["event"] for e in api], (rows, api)
    # a task without a rollout policy has no "published" event, only the operator's
    assert [r["EVENT"] for r in rows] == ["paused", "resumed", "paused", "resumed"], rows
    assert rows[0]["REASON"] == "line 3 is running a batch" and rows[0]["WAVE"] == "1", rows
    assert footer == "%d events" % len(api)
    assert js(["tasks", "events", "tr"], gw) == {"items": api}

    assert ok(["tasks", "abort", "tr"], gw) == "task tr canceled: 3 records canceled\n"
    assert gw.ok("GET", "/api/tasks/tr/events")["items"][-1]["event"] == "aborted"
    fails(["tasks", "resume", "nope"], gw, "not_found", "tasks resume nope: ")
    fails(["tasks", "events", "nope"], gw, "not_found", "tasks events nope: ")
    fails(["tasks", "pause"], gw, "usage", "tasks pause")


# -- cache ------------------------------------------------------------------------------------

def test_cache_list_and_delete(gw, tmp_path):
    data = rand_file(tmp_path / "k.bin", 100000, seed=3)
    sha = hashlib.sha256(data).hexdigest()
    product_with_devices(gw, n=1)
    ok(["firmware", "upload", "tfw", str(tmp_path / "k.bin"), "--quiet"], gw)
    ok(["tasks", "create", "tfw", "--name", "pin", "--mode", "pull", "--id", "pin"], gw)
    lines = ok(["cache", "list"], gw).rstrip("\n").splitlines()
    assert re.fullmatch(r"cache: 97\.7 KiB used of 1\.0 GiB, \S+ \S+ free on disk, "
                        r"0 downloads running", lines[0]), lines[0]
    rows = table(lines[1:-1], right=("SIZE",))
    assert rows == [{"SHA256": sha, "SIZE": "97.7 KiB", "LAST USED": rows[0]["LAST USED"],
                     "PINNED": "yes", "FIRMWARE": "tfw"}], rows
    assert lines[-1] == "1 image"
    j, api = js(["cache", "list"], gw), gw.ok("GET", "/api/cache")
    j.pop("freeDiskBytes")
    api.pop("freeDiskBytes")               # the disk is shared: it moves between calls
    assert j == api
    fails(["cache", "delete", sha], gw, "invalid", "cache delete %s: " % sha)
    ok(["cancel", "pin"], gw)
    assert ok(["cache", "delete", sha], gw) == "deleted image %s\n" % sha
    assert js(["cache", "list"], gw)["items"] == []
    fails(["cache", "delete", sha], gw, "not_found")


# -- errors and where the daemon is -----------------------------------------------------------

@pytest.mark.parametrize("args,text", [
    (["firmware", "show", "nope"], "firmware show nope: firmware 'nope' not found"),
    (["devices", "show", "nope"], "devices show nope: "),
    (["devices", "history", "nope"], "devices history nope: "),
    (["tasks", "show", "nope"], "tasks show nope: "),
    (["tasks", "records", "nope"], "tasks records nope: "),
    (["cancel", "nope"], "cancel nope: "),
])
def test_not_found_exit_4(gw, args, text):
    err = fails(args, gw, "not_found", text)
    resource = args[0] if args[0] in ("firmware", "devices") else "tasks"
    api = gw.req("GET", "/api/%s/nope" % resource)[1]["error"]      # the API's own words
    assert err == "otagw ctl: %s: %s\n" % (" ".join(args), api), (err, api)


def test_unauthorized_exit_5_and_token_never_shown(gw_token, tmp_path):
    g = gw_token
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    err = fails(["--url", g.base, "firmware", "list"], g, "unauthorized",
                "firmware list: missing or wrong API token", "--token", conf=str(empty))
    fails(["--url", g.base, "status"], g, "unauthorized", "status: missing or wrong API token",
          conf=str(empty))
    wrong = "wrong-token-7d1e"
    p = ctl(["--token", wrong, "firmware", "list"], g)
    assert p.returncode == EXIT["unauthorized"] and wrong not in p.stdout + p.stderr, p.stderr
    p = ctl(["firmware", "upload", "x", __file__], g, env=base_env(OTAGW_TOKEN=wrong))
    assert p.returncode == EXIT["unauthorized"] and wrong not in p.stdout + p.stderr, p.stderr
    out = ok(["status"], g)             # the right token, from the config file
    assert TOKEN not in out + err


@pytest.mark.parametrize("args,text", [
    (["firmware", "create", "--product", "p", "--name", "n", "--version", "1",
      "--sign-method", "crc32"], "firmware create: field 'signMethod': expected md5"),
    (["firmware", "create", "--product", "p", "--name", "n", "--version", "1",
      "--sign", "abc", "--sign-method", "md5"], "field 'sign'"),
    (["firmware", "create", "--product", "p", "--name", "n", "--version", "dup"],
     "already exists"),
    (["tasks", "create", "f0", "--name", "t", "--mode", "sideways"], "tasks create f0: "),
    (["tasks", "records", "t0", "--state", "nonsense"], "unknown state 'nonsense'"),
    (["publish", "t0", "--devices", "ghost"], "ghost"),
])
def test_invalid_input_exit_6(gw, args, text):
    mk_fw(gw, productId="p", version="dup", id="f0")
    gw.ok("POST", "/api/firmware/f0/tasks", {"name": "t", "mode": "pull", "id": "t0"},
          expect=201)
    before = gw.snapshot()
    fails(args, gw, "invalid", text)
    assert gw.snapshot() == before


def test_url_and_token_from_the_environment(gw_token, tmp_path):
    g = gw_token
    elsewhere = tmp_path / "elsewhere.conf"
    otagw_it.write_config(str(elsewhere), free_port(), token="not-this-one")
    env = base_env(OTAGW_URL=g.base, OTAGW_TOKEN=TOKEN)
    assert kv(ok(["status"], None, env=env, conf=str(elsewhere)))["daemon"] == \
        "%s (ok)" % g.base
    # the environment beats the configuration, the options beat both
    fails(["status"], None, "unauthorized", env=base_env(OTAGW_URL=g.base),
          conf=str(elsewhere))
    fails(["--url", "http://%s:%d" % (HOST, free_port()), "status"], None, "unreachable",
          env=env, conf=str(elsewhere))
    assert ok(["--token", TOKEN, "--url", g.base + "/", "firmware", "list"], None,
              env=base_env(OTAGW_URL="http://%s:1" % HOST, OTAGW_TOKEN="bad"),
              conf=str(elsewhere)) == "no firmware\n"


def test_url_and_token_from_the_config_file(gw_token):
    g = gw_token
    mk = ["firmware", "create", "--product", "c", "--name", "n", "--version", "1", "--id", "c1"]
    ok(mk, None, conf=g.config)                          # otagw -c FILE ctl ...
    p = subprocess.run([otagw_it.require_bin(), "ctl", "--config", g.config, "firmware",
                        "show", "c1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=base_env(), timeout=RUN_TIMEOUT)
    assert p.returncode == 0 and kv(p.stdout)["id"] == "c1", p.stderr
    p = ctl(["status"], None, conf=g.config + ".missing")
    assert p.returncode == EXIT["usage"] and ".missing" in p.stderr, p.stderr
