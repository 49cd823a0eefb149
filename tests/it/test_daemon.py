# SPDX-License-Identifier: MIT
"""The process: command line, config errors, lock, signals, restart, bind
address, API token."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

import otagw_it
from otagw_it import (HOST, alarms_in, assert_error, free_port, listeners, makefile_version,
                      mk_dev, mk_fw, mk_task, port_accepts, records, run_once, wait_exit)

from conftest import TOKEN


def _write(tmp_path, text, name="otagw.conf"):
    p = tmp_path / name
    # appended, so line numbers in the error cases stay as written; keeps
    # these daemons off the default device port 9000
    p.write_text(text + "\n[tcp]\nport = 0\n")
    return str(p)


def _no_alarm(p):
    bad = alarms_in(p.stderr) + alarms_in(p.stdout)
    assert not bad, "sanitizer report:\n" + "\n".join(bad)


# -- command line ------------------------------------------------------------

def test_version(gw):
    p = run_once(["--version"])
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    health = gw.ok("GET", "/api/health")
    assert health["version"] and health["version"] in out, (out, health)
    mv = makefile_version()
    if mv:
        assert mv in out and health["version"] == mv
    _no_alarm(p)


def test_help(tmp_path):
    p = run_once(["--help"], cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    for opt in ("-c", "-d", "-v", "--version", "--help"):
        assert opt in out, "--help does not mention %s:\n%s" % (opt, out)
    assert os.listdir(str(tmp_path)) == [], "--help created files: %s" % os.listdir(str(tmp_path))
    _no_alarm(p)


@pytest.mark.parametrize("case", ["--bogus", "-x", "extra-arg", "-c-missing", "-d-missing"])
def test_bad_command_line(tmp_path, case):
    port = free_port()
    cfg = _write(tmp_path, "[http]\nbind = 127.0.0.1\nport = %d\n" % port)
    data = str(tmp_path)
    args = {"--bogus": ["-c", cfg, "-d", data, "--bogus"],
            "-x": ["-c", cfg, "-d", data, "-x"],
            "extra-arg": ["-c", cfg, "-d", data, "extra-arg"],
            "-c-missing": ["-d", data, "-c"],
            "-d-missing": ["-c", cfg, "-d"]}[case]
    p = run_once(args)
    assert p.returncode != 0, "otagw %s exited 0" % args
    assert p.stderr.strip(), "no message for bad arguments %s" % args
    assert not port_accepts(port)
    _no_alarm(p)


def test_health(gw):
    st, h, hd = gw.req("GET", "/api/health")
    assert st == 200
    assert hd.get("Content-Type", "").startswith("application/json")
    assert h["status"] == "ok" and h["schemaVersion"] >= 3
    assert isinstance(h["version"], str) and h["version"]
    assert isinstance(h["uptimeSeconds"], int) and 0 <= h["uptimeSeconds"] < 60
    up0 = h["uptimeSeconds"]
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if gw.ok("GET", "/api/health")["uptimeSeconds"] > up0:
            break
        time.sleep(0.2)
    else:
        pytest.fail("uptimeSeconds did not advance in 3 s")


def test_data_dir_files(gw):
    assert os.path.isfile(os.path.join(gw.data_dir, "otagw.db"))
    assert os.path.exists(os.path.join(gw.data_dir, "otagw.lock"))


def test_default_config_runs(tmp_path):
    """No -c: built-in defaults (127.0.0.1:8080 unless taken). It must at least
    start and stop cleanly; we only talk to it when 8080 was free."""
    if port_accepts(8080) or port_accepts(9000):
        pytest.skip("127.0.0.1:8080 or :9000 is in use; cannot run with built-in defaults")
    proc = subprocess.Popen([otagw_it.require_bin(), "-d", str(tmp_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ok = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                st, js, _, _ = otagw_it.http_request(8080, "GET", "/api/health", timeout=1)
                ok = st == 200 and js["status"] == "ok"
                break
            except OSError:
                time.sleep(0.05)
        assert ok, "defaults: no health on 127.0.0.1:8080"
        assert listeners(8080) == ["127.0.0.1:8080"], listeners(8080)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rc = wait_exit(proc, 2)
        if rc is None:
            proc.kill()
        out, err = proc.communicate(timeout=5)
    assert rc == 0, err
    assert not alarms_in(err), err


# -- configuration errors ------------------------------------------------------

BAD_CONFIGS = [
    # (text, line, words the message must contain)
    ("[gateway]\nlog_level = info\n[http]\nprot = 80\n", 4, ["prot", "http"]),
    ("[http]\nbind = 127.0.0.1\nprot = 80\n", 3, ["prot"]),
    ("[gateway]\nlog_level = loud\n", 2, ["log_level"]),
    ("[gateway]\nsyslog = maybe\n", 2, ["syslog"]),
    ("[gateway]\ncolour = blue\n", 2, ["colour"]),
    ("# comment\n\n[bogus]\nx = 1\n", 3, ["bogus"]),
    ("[http]\nport = 70000\n", 2, ["port"]),
    ("[http]\nport = -1\n", 2, ["port"]),
    ("[http]\nport = 80x\n", 2, ["port"]),
    ("[http]\nport = \n", 2, ["port"]),
    ("[http]\nport = 99999999999999999999999\n", 2, ["port"]),
    ("[http]\nbind = 999.1.1.1\n", 2, ["bind"]),
    ("[http]\nport = 8080\nthis line has no equals sign\n", 3, []),
    ("[http\nport = 8080\n", 1, []),
    ("port = 8080\n[http]\n", 1, ["port"]),
    ("[tcp]\nwhatever_key = 1\n", 2, ["whatever_key"]),
    ("[cloud]\nwhatever_key = 1\n", 2, ["whatever_key"]),
    ("[cache]\nwhatever_key = 1\n", 2, ["whatever_key"]),
    ("[gateway]\n[serial]\n", 2, ["serial"]),
    ("[http]\nport = 8080\n[http extra]\n", 3, ["http"]),
    ("[http]\nport = 8080\napi_token = " + "t" * 5000 + "\n", 3, []),
]


@pytest.mark.parametrize("text,line,words", BAD_CONFIGS,
                         ids=["cfg%d" % i for i in range(len(BAD_CONFIGS))])
def test_config_error_names_file_line_key(tmp_path, text, line, words):
    cfg = _write(tmp_path, text)
    data = tmp_path / "data"
    data.mkdir()
    p = run_once(["-c", cfg, "-d", str(data)])
    assert p.returncode != 0, "otagw accepted:\n%s" % text
    err = p.stderr
    assert re.search(r"otagw\.conf:%d\b" % line, err), \
        "stderr does not name otagw.conf:%d:\n%s" % (line, err)
    for w in words:
        assert w in err, "stderr does not name %r:\n%s" % (w, err)
    _no_alarm(p)


def test_config_missing_file(tmp_path):
    p = run_once(["-c", str(tmp_path / "absent.conf"), "-d", str(tmp_path)])
    assert p.returncode != 0
    assert "absent.conf" in p.stderr, p.stderr
    _no_alarm(p)


def test_config_comments_and_blanks(gw_factory):
    g = gw_factory(start=False)
    with open(g.config) as f:
        text = f.read()
    with open(g.config, "w") as f:
        f.write("# otagw test config\n\n" + text.replace("[http]", "# the API\n[http]\n\n"))
    g.start()
    assert g.ok("GET", "/api/health")["status"] == "ok"


def test_sections_without_keys_accepted(gw_factory):
    g = gw_factory(config_extra="[tcp]\n[cloud]\n[cache]\n[serial ttyUSB0]\npath = /dev/otagw-absent\n")
    assert g.ok("GET", "/api/health")["status"] == "ok"


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug"])
def test_log_levels_accepted(gw_factory, level):
    g = gw_factory(log_level=level)
    assert g.ok("GET", "/api/health")["status"] == "ok"


def test_verbose_flag_runs(tmp_path):
    port = free_port()
    cfg = _write(tmp_path, "[http]\nbind = 127.0.0.1\nport = %d\n" % port)
    data = tmp_path / "data"
    data.mkdir()
    err = open(str(tmp_path / "stderr"), "w")
    proc = subprocess.Popen([otagw_it.require_bin(), "-v", "-c", cfg, "-d", str(data)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None and not port_accepts(port):
            time.sleep(0.05)
        st, js, _, _ = otagw_it.http_request(port, "GET", "/api/health")
        assert st == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = wait_exit(proc, 2)
        if rc is None:
            proc.kill()
            wait_exit(proc, 5)
    assert rc == 0
    text = (tmp_path / "stderr").read_text(errors="replace")
    assert text.strip(), "-v printed nothing"
    assert not alarms_in(text), text


# -- non-loopback bind needs a token ------------------------------------------

@pytest.mark.parametrize("bind", ["0.0.0.0", "192.0.2.1", "10.1.2.3"])
def test_non_loopback_without_token_refused(tmp_path, bind):
    port = free_port()
    cfg = _write(tmp_path, "[http]\nbind = %s\nport = %d\n" % (bind, port))
    p = run_once(["-c", cfg, "-d", str(tmp_path)])
    assert p.returncode != 0, "otagw started on %s without api_token" % bind
    assert "api_token" in p.stderr, p.stderr
    assert not listeners(port), "something listens on %d: %s" % (port, listeners(port))
    _no_alarm(p)


def test_non_loopback_with_empty_token_refused(tmp_path):
    port = free_port()
    cfg = _write(tmp_path, "[http]\nbind = 0.0.0.0\nport = %d\napi_token =\n" % port)
    p = run_once(["-c", cfg, "-d", str(tmp_path)])
    assert p.returncode != 0
    assert "api_token" in p.stderr, p.stderr
    assert not listeners(port)


# -- bound address --------------------------------------------------------------

def test_listens_on_loopback_only(gw):
    found = listeners(gw.port)
    assert found == ["127.0.0.1:%d" % gw.port], \
        "port %d listened on %s (want only 127.0.0.1)" % (gw.port, found)


def test_port_taken_exits_nonzero(tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind((HOST, 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        cfg = _write(tmp_path, "[http]\nbind = 127.0.0.1\nport = %d\n" % port)
        p = run_once(["-c", cfg, "-d", str(tmp_path)], timeout=5)
        assert p.returncode != 0, "otagw ran without its HTTP port"
        assert str(port) in p.stderr or "in use" in p.stderr.lower(), p.stderr
    finally:
        holder.close()


# -- lock ---------------------------------------------------------------------

def test_second_daemon_same_data_dir_refused(gw, tmp_path):
    port2 = free_port()
    cfg2 = _write(tmp_path, "[http]\nbind = 127.0.0.1\nport = %d\n" % port2, "second.conf")
    p = run_once(["-c", cfg2, "-d", gw.data_dir])
    assert p.returncode != 0, "second daemon started on the same data dir"
    assert "lock" in p.stderr.lower(), p.stderr
    assert not port_accepts(port2)
    _no_alarm(p)
    # the first one is unharmed
    assert gw.ok("GET", "/api/health")["status"] == "ok"
    assert os.path.exists(os.path.join(gw.data_dir, "otagw.lock"))


def test_lock_released_after_stop(gw, tmp_path):
    mk_fw(gw, id="fw1")
    gw.restart()
    assert gw.ok("GET", "/api/firmware/fw1")["id"] == "fw1"


# -- signals --------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_within_1s(gw, sig):
    mk_fw(gw)
    rc, took = gw.stop(sig=sig, timeout=1.0)
    assert rc == 0, "exit code %d on signal %d" % (rc, sig)
    assert took <= 1.0, "took %.2f s" % took
    assert not port_accepts(gw.port)


def test_sigterm_with_idle_and_partial_clients(gw):
    """An idle keep-alive client and one stuck mid-request must not hold the
    daemon past 1 s."""
    idle = socket.create_connection((HOST, gw.port), timeout=2)
    part = socket.create_connection((HOST, gw.port), timeout=2)
    try:
        part.sendall(b"POST /api/firmware HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.2)
        rc, took = gw.stop(timeout=1.0)
        assert rc == 0
        assert took <= 1.0, "took %.2f s" % took
    finally:
        idle.close()
        part.close()


def test_restart_keeps_data(gw):
    fw = mk_fw(gw, id="fw1", version="2.0", properties={"k": "v"})
    dev = mk_dev(gw, "d1", firmwareVersion="1.0", name="pump")
    mk_dev(gw, "d2", firmwareVersion="2.0")
    task = mk_task(gw, "fw1", name="wave", timeoutSeconds=30)
    gw.ok("POST", "/api/tasks/%s/publish" % task["id"], {"all": True})
    recs = records(gw, task["id"])
    hist = gw.ok("GET", "/api/devices/d1/history")
    t_before = gw.ok("GET", "/api/tasks/" + task["id"])

    gw.restart()

    assert gw.ok("GET", "/api/firmware/fw1") == fw
    d = gw.ok("GET", "/api/devices/d1")
    for k in ("id", "productId", "name", "firmwareVersion", "properties", "createTime"):
        assert d[k] == dev[k], k
    assert d["online"] is False
    assert gw.ok("GET", "/api/tasks/" + task["id"]) == t_before
    assert records(gw, task["id"]) == recs
    assert gw.ok("GET", "/api/devices/d1/history") == hist
    # and it keeps working after the restart
    gw.ok("POST", "/api/tasks/%s/cancel" % task["id"], {})
    assert [r["state"] for r in records(gw, task["id"], "canceled")] == ["canceled"]
    gw.restart()
    assert gw.ok("GET", "/api/tasks/" + task["id"])["state"] == "canceled"


# -- token ----------------------------------------------------------------------

@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Bearer " + TOKEN[:-1],
                                  "Bearer " + TOKEN + "x", "Bearer", "Bearer ", TOKEN,
                                  "Basic " + TOKEN, "Bearer  " + TOKEN + " extra"])
def test_token_refused(gw_token, auth):
    for method, path, body in (("GET", "/api/health", None), ("GET", "/api/firmware", None),
                               ("POST", "/api/devices", {"id": "d1", "productId": "p"}),
                               ("GET", "/api/nope", None), ("DELETE", "/api/devices/d1", None)):
        st, js, _ = gw_token.req(method, path, body=body, headers={"Authorization": auth})
        assert_error(st, js, 401)
    assert gw_token.ok("GET", "/api/devices")["total"] == 0, "a refused request created a device"


def test_token_accepted(gw_token):
    st, js, _ = gw_token.req("GET", "/api/health")
    assert st == 200 and js["status"] == "ok"
    st, js, _ = gw_token.req("POST", "/api/devices", {"id": "d1", "productId": "p"})
    assert st == 201, js
    st, js, _ = gw_token.req("GET", "/api/devices/d1",
                             headers={"Authorization": "Bearer " + TOKEN})
    assert st == 200 and js["id"] == "d1"
    st, js, _ = gw_token.req("DELETE", "/api/devices/d1")
    assert st == 204


def test_token_wrong_then_right_curl(gw_token):
    url = gw_token.url("/api/firmware")
    body = '{"productId":"p","name":"n","version":"1"}'
    for hdr in ([], ["-H", "Authorization: Bearer nope"]):
        st, out, err, rc = otagw_it.curl(["-X", "POST", "-H", "Content-Type: application/json",
                                          "--data-binary", body] + hdr + [url])
        assert st == 401, (st, out, err)
    st, out, err, rc = otagw_it.curl(["-X", "POST", "-H", "Content-Type: application/json",
                                      "-H", "Authorization: Bearer " + TOKEN,
                                      "--data-binary", body, url])
    assert st == 201, (st, out, err)
    assert gw_token.ok("GET", "/api/firmware")["total"] == 1


def test_token_not_logged(gw_token):
    gw_token.req("GET", "/api/firmware", headers={"Authorization": "Bearer " + TOKEN})
    gw_token.req("GET", "/api/firmware", headers={"Authorization": "Bearer leaked-guess-123"})
    rc, _ = gw_token.stop()
    assert rc == 0
    text = gw_token.stderr()
    assert TOKEN not in text, "the API token appears in the log"
    assert "leaked-guess-123" not in text, "a presented credential appears in the log"


# -- connections ------------------------------------------------------------------

def test_keep_alive_mixed_requests(gw):
    """Several requests, with and without bodies, on one connection: the
    per-request state (body, route, status) must reset between them."""
    import http.client
    import json as _json
    conn = http.client.HTTPConnection(HOST, gw.port, timeout=5)
    try:
        seq = [("POST", "/api/devices", {"id": "k1", "productId": "p"}, 201),
               ("GET", "/api/devices/k1", None, 200),
               ("POST", "/api/devices", {"id": "k1", "productId": "p"}, 409),
               ("GET", "/api/nope", None, 404),
               ("POST", "/api/devices", {"id": "k2", "productId": "p", "zzz": 1}, 400),
               ("DELETE", "/api/devices/k1", None, 204),
               ("GET", "/api/devices", None, 200)]
        for method, path, body, expect in seq:
            data = None if body is None else _json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json"} if data else {}
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            assert resp.status == expect, (method, path, resp.status, payload)
        assert _json.loads(payload)["total"] == 0
    finally:
        conn.close()


def test_pipelined_requests(gw):
    req = b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /api/devices HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    s = socket.create_connection((HOST, gw.port), timeout=5)
    got = b""
    try:
        s.sendall(req + req + last)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:     # the last asks to close
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            got += b
    finally:
        s.close()
    assert got.count(b"HTTP/1.1 200") == 3, got[:600]
    assert b'"total"' in got


def test_concurrent_clients(gw):
    """40 clients at once, 5 devices each: every create answered 201, none lost."""
    import threading
    errors = []

    def worker(n):
        try:
            for i in range(5):
                st, js, _ = gw.req("POST", "/api/devices", {"id": "c%d-%d" % (n, i),
                                                            "productId": "p"})
                if st != 201:
                    errors.append((n, i, st, js))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "clients still waiting after 30 s"
    assert not errors, errors[:5]
    assert gw.ok("GET", "/api/devices?size=1")["total"] == 200


def test_database_is_owner_only(gw):
    """otagw.db holds device key hashes: 0600 whatever the umask, and its
    WAL follows (README "Security review")."""
    import stat
    db = os.path.join(gw.data_dir, "otagw.db")
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    wal = db + "-wal"
    if os.path.exists(wal):
        assert stat.S_IMODE(os.stat(wal).st_mode) == 0o600


def test_world_readable_token_config_warns(gw_factory):
    g = gw_factory(token="tok-" + "x" * 12, start=False)
    os.chmod(g.config, 0o644)
    g.start()
    g.wait_ready()
    assert "holds a token and is readable by every user" in g.stderr()
    g.stop()
    os.chmod(g.config, 0o640)
    g.start()
    g.wait_ready()
    assert g.stderr().count("readable by every user") == 1
