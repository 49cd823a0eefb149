# SPDX-License-Identifier: MIT
"""The daemon's side of the web console and of monitoring (issue 10):
static files at / (gateway/www.c), the live feed at /api/live
(gateway/live.c over loop.c's channel, Python websockets as the browser),
and GET /metrics (gateway/metrics.c) checked with a strict parser of the
Prometheus text format, its values followed while a device upgrades."""

import asyncio
import json
import os
import re
import time
import urllib.request

import pytest
import websockets

from otagw_it import HOST, http_request, raw_exchange
from test_tcp import (make_fw, publish, record_of, tcpgw, wait_online,  # noqa: F401
                      wait_record, wait_until)

TOKEN = "live-token-93f1"


def www_extra(path):
    return "\n[http]\nwww_dir = %s\n" % path


@pytest.fixture
def site(tmp_path):
    """A small console directory: index.html, js/app.js, css/app.css, a
    hidden file, a symlink that points out of it."""
    d = tmp_path / "www"
    (d / "js").mkdir(parents=True)
    (d / "css").mkdir()
    (d / "index.html").write_text("<!doctype html><title>otagw</title>\n")
    (d / "js" / "app.js").write_text("export const x = 1;\n")
    (d / "css" / "app.css").write_text("body{}\n")
    (d / ".secret").write_text("hidden\n")
    (tmp_path / "outside.txt").write_text("outside\n")
    os.symlink(str(tmp_path / "outside.txt"), str(d / "link.txt"))
    return d


def get(g, path, headers=None, method="GET"):
    st, _, _, raw = http_request(g.port, method, path, headers=headers)
    return st, raw


# -- static files ---------------------------------------------------------------

def test_index_and_types(gw_factory, site):
    g = gw_factory(config_extra=www_extra(site))
    for path, ctype, body in (("/", "text/html", b"<!doctype html>"),
                              ("/index.html", "text/html", b"<!doctype html>"),
                              ("/js/app.js", "text/javascript", b"export const x"),
                              ("/css/app.css", "text/css", b"body{}")):
        r = urllib.request.urlopen(g.url(path), timeout=5)
        assert r.status == 200, path
        assert r.headers["Content-Type"].startswith(ctype), (path, r.headers["Content-Type"])
        assert r.headers["Cache-Control"] == "no-cache", path
        assert r.headers["ETag"], path
        assert "default-src 'self'" in r.headers["Content-Security-Policy"], path
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.read().startswith(body), path


def test_console_routes_fall_back_to_index(gw_factory, site):
    g = gw_factory(config_extra=www_extra(site))
    r = urllib.request.urlopen(g.url("/tasks"), timeout=5)
    assert r.status == 200 and r.read().startswith(b"<!doctype html>")


def test_etag_gives_304(gw_factory, site):
    g = gw_factory(config_extra=www_extra(site))
    r = urllib.request.urlopen(g.url("/js/app.js"), timeout=5)
    etag = r.headers["ETag"]
    st, raw = get(g, "/js/app.js", headers={"If-None-Match": etag})
    assert st == 304, raw
    st, raw = get(g, "/js/app.js", headers={"If-None-Match": '"other", ' + etag})
    assert st == 304, raw
    st, raw = get(g, "/js/app.js", headers={"If-None-Match": '"other"'})
    assert st == 200 and b"export const x" in raw
    # a changed file gets a new tag
    (site / "js" / "app.js").write_text("export const x = 22;\n")
    os.utime(site / "js" / "app.js", (time.time() + 5, time.time() + 5))
    st, raw = get(g, "/js/app.js", headers={"If-None-Match": etag})
    assert st == 200 and b"x = 22" in raw


@pytest.mark.parametrize("path", ["/.secret", "/js/../.secret", "/link.txt", "/js/%2e%2e/.secret",
                                  "/nope.js", "/js/", "/css/.%2e/.secret"])
def test_nothing_outside_or_hidden(gw_factory, site, path):
    g = gw_factory(config_extra=www_extra(site))
    st, raw = get(g, path)
    assert st == 404, (path, st)
    assert b"outside" not in raw and b"hidden" not in raw, raw


@pytest.mark.parametrize("path", ["/a%00b.js", "/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
                                  "/js//app.js"])
def test_decoded_paths_stay_inside(gw_factory, site, path):
    """libwebsockets decodes and folds the path before otagw sees it: what
    comes out is at most a file of the console (or its index), or no
    answer at all (lws drops a request with an encoded NUL)."""
    g = gw_factory(config_extra=www_extra(site))
    st, raw = raw_exchange(g.port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                                  b"Connection: close\r\n\r\n")
    raw = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else b""
    if st is None:
        assert raw == b"" and g.ok("GET", "/api/health")["status"] == "ok"
        return
    assert b"root:" not in raw and b"outside" not in raw and b"hidden" not in raw, raw
    assert st == 404 or (st == 200 and (raw.startswith(b"<!doctype html>") or
                                        raw.startswith(b"export const"))), (st, raw)


def test_raw_traversal_request(gw_factory, site):
    g = gw_factory(config_extra=www_extra(site))
    st, raw = raw_exchange(g.port, b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n"
                                   b"Connection: close\r\n\r\n")
    assert b"root:" not in raw
    # lws folds the dot segments away: at most the console's own files
    assert st in (400, 403, 404) or (st == 200 and b"<!doctype html>" in raw), raw[:200]


def test_only_get_and_head(gw_factory, site):
    g = gw_factory(config_extra=www_extra(site))
    for method in ("POST", "DELETE", "PUT"):
        st, _, _, raw = http_request(g.port, method, "/index.html")
        assert st == 405, (method, raw)
    st, _, _, raw = http_request(g.port, "POST", "/index.html", body={"a": 1})
    assert st in (405, 413), raw
    st, _, hdrs, raw = http_request(g.port, "HEAD", "/index.html")
    assert st == 200 and raw == b"" and int(hdrs["Content-Length"]) == 36, (hdrs, raw)


def test_api_and_metrics_not_shadowed(gw_factory, site):
    g = gw_factory(config_extra=www_extra(site))
    st, js, _ = g.req("GET", "/api/nothing-here")
    assert st == 404 and "no such resource" in js["error"], js
    st, raw = get(g, "/metrics")
    assert st == 200 and b"otagw_build_info" in raw


def test_without_console_dir(gw_factory, tmp_path):
    g = gw_factory(config_extra=www_extra(tmp_path / "does-not-exist"))
    st, raw = get(g, "/")
    assert st == 404 and b"www_dir" in raw, raw
    assert g.ok("GET", "/api/health")["status"] == "ok"
    assert "the console is not served" in g.stderr()


# -- live feed ------------------------------------------------------------------

def live_url(g):
    return "ws://%s:%d/api/live" % (HOST, g.port)


async def live_open(g, token=""):
    ws = await websockets.connect(live_url(g), subprotocols=["otagw-live.v1"],
                                  open_timeout=5, max_size=16 * 1024 * 1024)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return ws, hello


async def live_collect(ws, until, timeout=15.0):
    """Frames until until(frames) is true; bounded by timeout."""
    frames = []
    deadline = time.monotonic() + timeout
    while not until(frames):
        left = deadline - time.monotonic()
        assert left > 0, "live frames so far: %r" % frames[-5:]
        try:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except asyncio.TimeoutError:
            pass
    return frames


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_live_hello(gw):
    async def go():
        ws, hello = await live_open(gw)
        assert hello == {"type": "hello", "version": hello["version"], "interval": 250}, hello
        assert re.match(r"^\d+\.\d+\.\d+", hello["version"]), hello
        await ws.close()
    run(go())


def test_live_token(gw_factory):
    g = gw_factory(token=TOKEN)

    async def go():
        ws, hello = await live_open(g, TOKEN)
        assert hello["type"] == "hello"
        await ws.close()
        for bad in ("", "wrong-" + TOKEN):
            ws = await websockets.connect(live_url(g), subprotocols=["otagw-live.v1"],
                                          open_timeout=5)
            await ws.send(json.dumps({"type": "auth", "token": bad}))
            with pytest.raises(websockets.ConnectionClosed) as ex:
                await asyncio.wait_for(ws.recv(), 5)
            assert ex.value.rcvd.code == 4001 and ex.value.rcvd.reason == "unauthorized"
    run(go())


@pytest.mark.parametrize("first", ["not json", '{"type":"hello"}', '{"type":"auth","token":5}',
                                   "x" * 5000])
def test_live_bad_first_message(gw, first):
    async def go():
        ws = await websockets.connect(live_url(gw), subprotocols=["otagw-live.v1"],
                                      open_timeout=5)
        await ws.send(first)
        with pytest.raises(websockets.ConnectionClosed) as ex:
            await asyncio.wait_for(ws.recv(), 5)
        assert ex.value.rcvd.code == 4000, ex.value.rcvd
    run(go())
    assert gw.ok("GET", "/api/health")["status"] == "ok"


def test_live_refuses_other_paths_and_protocols(gw):
    async def go():
        for url, protos in ((live_url(gw), None), (live_url(gw), ["chat"]),
                            ("ws://%s:%d/api/health" % (HOST, gw.port), ["otagw-live.v1"]),
                            ("ws://%s:%d/" % (HOST, gw.port), ["otagw-live.v1"])):
            with pytest.raises(Exception) as ex:
                ws = await websockets.connect(url, subprotocols=protos, open_timeout=5)
                await ws.send(json.dumps({"type": "auth", "token": ""}))
                await asyncio.wait_for(ws.recv(), 3)
            assert not isinstance(ex.value, asyncio.TimeoutError), (url, protos)
    run(go())
    assert gw.ok("GET", "/api/health")["status"] == "ok"


def test_live_follows_an_upgrade_coalesced(tcpgw, tmp_path):
    """A device's record appears, moves and progresses on the feed; a burst
    of 100 progress messages arrives coalesced (each record at most once a
    frame, far fewer frames than messages, the last value right)."""
    g = tcpgw("jsonline")
    fw, image = make_fw(g, tmp_path, "p1", "3.0.0", size=64 * 1024)
    d = g.device("ld1", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "ld1", True)

    async def go():
        ws, _ = await live_open(g)
        task, res = publish(g, fw["id"], "push", ["ld1"])
        up = d.wait_for("UPGRADE_FIRMWARE")
        d.upgrade_reply(up["messageId"], True)

        def seen(frames, state, progress=None):
            for f in frames:
                for r in f.get("items", []) if f["type"] == "records" else []:
                    if r["deviceId"] == "ld1" and r["state"] == state and \
                            (progress is None or r["progress"] == progress):
                        return r
            return None

        def task_in(frames):
            return any(f["type"] == "tasks" and any(t["id"] == task["id"] for t in f["items"])
                       for f in frames)

        frames = await live_collect(ws, lambda fr: seen(fr, "processing") and task_in(fr))
        rec = seen(frames, "processing")
        assert rec["taskId"] == task["id"], rec
        t0 = time.monotonic()
        for pct in range(1, 100):
            d.progress("3.0.0", fw["id"], pct)
        frames = await live_collect(ws, lambda fr: seen(fr, "processing", 99))
        burst = time.monotonic() - t0
        recs = [f for f in frames if f["type"] == "records"]
        for f in recs:
            ids = [r["id"] for r in f["items"]]
            assert len(ids) == len(set(ids)), f
        # one frame per 250 ms interval at most (plus one for a partial interval)
        assert len(recs) <= burst / 0.25 + 2, (len(recs), burst)
        assert len(recs) < 50, len(recs)
        d.progress("3.0.0", fw["id"], 100, complete=True, success=True)
        def task_done(frames):
            return [t for f in frames if f["type"] == "tasks" for t in f["items"]
                    if t["id"] == task["id"] and t["counts"]["success"] == 1]

        frames = await live_collect(ws, lambda fr: seen(fr, "success") and task_done(fr))
        assert seen(frames, "success")["progress"] == 100
        await ws.close()
        return task
    task = run(go())
    assert record_of(g, task["id"], "ld1")["state"] == "success"


def test_live_devices_frame(tcpgw):
    g = tcpgw("jsonline")

    async def go():
        ws, _ = await live_open(g)
        d = g.device("dv1", product_id="p1")
        d.report("1.0.0")
        frames = await live_collect(ws, lambda fr: any(f["type"] == "devices" for f in fr))
        assert {"type": "devices"} in frames
        d.close()
        frames = await live_collect(ws, lambda fr: any(f["type"] == "devices" for f in fr))
        await ws.close()
    run(go())


def test_live_many_clients_and_quiet_when_nothing_changes(gw):
    async def go():
        socks = [await live_open(gw) for _ in range(20)]
        # nothing changes: nothing is sent
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(socks[0][0].recv(), 1.0)
        for ws, _ in socks:
            await ws.close()
    run(go())
    text = urllib.request.urlopen(gw.url("/metrics"), timeout=5).read().decode()
    assert re.search(r"^otagw_console_clients 0$", text, re.M), text


# -- /metrics -------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_metrics(text):
    """A strict reader of the text exposition format 0.0.4: every sample
    belongs to a family declared by HELP and TYPE before it, families are
    contiguous and declared once, label syntax and escapes are valid, values
    are numbers, counters end in _total, histograms have ascending le
    buckets ending in +Inf equal to _count. Returns {family: {"type",
    "samples": [(name, labels, value)]}}."""
    assert text.endswith("\n"), "the page must end with a newline"
    fams, cur = {}, None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line == line.strip() and line, "line %d: %r" % (n, line)
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert name not in fams, "family %s declared twice (line %d)" % (name, n)
            assert help_, "line %d: empty HELP" % n
            fams[name] = {"type": None, "samples": [], "help": help_}
            cur = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name == cur and fams[name]["type"] is None, "line %d: TYPE out of place" % n
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            fams[name]["type"] = typ
            continue
        assert not line.startswith("#"), "line %d: unknown comment %r" % (n, line)
        m = SAMPLE.match(line)
        assert m, "line %d: not a sample: %r" % (n, line)
        name, labels_txt, value = m.group(1), m.group(3), m.group(4)
        assert cur and fams[cur]["type"], "line %d: sample before HELP/TYPE" % n
        typ = fams[cur]["type"]
        ok_names = {cur} if typ != "histogram" else \
            {cur + "_bucket", cur + "_sum", cur + "_count"}
        assert name in ok_names, "line %d: %s outside its family %s" % (n, name, cur)
        labels = {}
        if labels_txt:
            pos = 0
            while pos < len(labels_txt):
                lm = LABEL.match(labels_txt, pos)
                assert lm, "line %d: bad labels %r" % (n, labels_txt)
                assert lm.group(1) not in labels, "line %d: label repeated" % n
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        try:
            v = float(value)   # also accepts NaN, +Inf
        except ValueError:
            raise AssertionError("line %d: value %r is not a number" % (n, value))
        if typ == "counter":
            assert cur.endswith("_total") and v >= 0, line
        fams[cur]["samples"].append((name, labels, v))
    for name, f in fams.items():
        assert f["type"], name
        if f["type"] == "histogram":
            buckets = [(s[1]["le"], s[2]) for s in f["samples"] if s[0].endswith("_bucket")]
            les = [float(le) for le, _ in buckets]
            assert les == sorted(les) and les[-1] == float("inf"), buckets
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), buckets
            count = [s[2] for s in f["samples"] if s[0] == name + "_count"]
            assert count == [counts[-1]], (count, counts)
    return fams


def metrics(g, token=None):
    req = urllib.request.Request(g.url("/metrics"))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    r = urllib.request.urlopen(req, timeout=5)
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse_metrics(r.read().decode())


def value(fams, family, sample=None, **labels):
    got = [s[2] for s in fams[family]["samples"] if s[0] == (sample or family) and
           all(s[1].get(k) == v for k, v in labels.items())]
    assert len(got) == 1, (family, labels, fams[family]["samples"])
    return got[0]


def test_parser_catches_bad_pages():
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
    assert parse_metrics(good)["a_total"]["samples"] == [("a_total", {}, 1.0)]
    for bad in (good.rstrip("\n"), good + "b 1\n", good.replace("a_total 1", "a_total x"),
                good + "# HELP a_total again\n", good.replace("counter", "gauge") + "a 1\n",
                good.replace("a_total 1", 'a_total{x="1} 1'),
                "# HELP c C.\n# TYPE c counter\nc 1\n"):
        with pytest.raises(AssertionError):
            parse_metrics(bad)


def test_metrics_page_is_valid(gw):
    f = metrics(gw)
    for fam in ("otagw_build_info", "otagw_uptime_seconds", "otagw_devices_online",
                "otagw_devices_known", "otagw_records", "otagw_records_all",
                "otagw_device_messages_total", "otagw_image_bytes_served_total",
                "otagw_http_requests_total", "otagw_http_response_bytes_total",
                "otagw_loop_lag_seconds", "otagw_cache_bytes", "otagw_cache_entries",
                "otagw_downloads_in_flight", "otagw_downloads_failed_total",
                "otagw_console_clients"):
        assert fam in f, fam
    assert f["otagw_loop_lag_seconds"]["type"] == "histogram"
    assert value(f, "otagw_http_requests_total", route="/api") >= 1   # the readiness probe
    for tr in ("tcp", "http", "serial"):
        assert value(f, "otagw_devices_online", transport=tr) == 0
    time.sleep(0.35)
    f2 = metrics(gw)
    assert value(f2, "otagw_http_requests_total", route="/metrics") == \
        value(f, "otagw_http_requests_total", route="/metrics") + 1
    lag = ("otagw_loop_lag_seconds", "otagw_loop_lag_seconds_count")
    assert value(f2, *lag) >= value(f, *lag) + 2, "the lag timer runs every 100 ms"


def test_metrics_need_the_token(gw_factory):
    g = gw_factory(token=TOKEN)
    st, _, _, raw = http_request(g.port, "GET", "/metrics")
    assert st == 401, raw
    assert "otagw_build_info" in metrics(g, TOKEN)


def test_metrics_follow_an_upgrade(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    fw, image = make_fw(g, tmp_path, "p1", "3.0.0", size=48 * 1024)
    before = metrics(g)
    assert value(before, "otagw_cache_entries") == 1
    assert value(before, "otagw_cache_bytes") == 48 * 1024
    d = g.device("md1", product_id="p1")
    d.report("1.0.0")
    wait_until(lambda: value(metrics(g), "otagw_devices_online", transport="tcp") == 1,
               "md1 online in /metrics")
    task, res = publish(g, fw["id"], "push", ["md1"])
    up = d.wait_for("UPGRADE_FIRMWARE")
    d.upgrade_reply(up["messageId"], True)
    mid = metrics(g)
    assert value(mid, "otagw_records", task=task["id"], state="processing") == 1
    assert value(mid, "otagw_records", task=task["id"], state="success") == 0
    got = d.fetch_image(fw["id"], fw["size"], chunk=4096)
    assert got == image
    d.progress("3.0.0", fw["id"], 100, complete=True, success=True)
    wait_record(g, task["id"], "md1", "success")
    after = metrics(g)
    assert value(after, "otagw_records", task=task["id"], state="processing") == 0
    assert value(after, "otagw_records", task=task["id"], state="success") == 1
    assert value(after, "otagw_records_all", state="success") == 1
    sent = value(after, "otagw_device_messages_total", transport="tcp") - \
        value(before, "otagw_device_messages_total", transport="tcp")
    assert sent >= 2 + 48 * 1024 // 4096, sent   # report, reply, chunks, progress
    assert value(after, "otagw_image_bytes_served_total", transport="tcp") - \
        value(before, "otagw_image_bytes_served_total", transport="tcp") == 48 * 1024
    # an HTTP GET of the image counts for the http transport
    st, _, _, raw = http_request(g.port, "GET", "/images/%s" % fw["id"])
    assert st == 200 and raw == image
    assert value(metrics(g), "otagw_image_bytes_served_total", transport="http") == 48 * 1024
    d.close()
    wait_until(lambda: value(metrics(g), "otagw_devices_online", transport="tcp") == 0,
               "md1 offline in /metrics")
