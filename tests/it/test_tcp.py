# SPDX-License-Identifier: MIT
"""TCP device transport (southbound/PROTOCOL.md), both codecs: report, pull,
in-band chunk delivery with a disconnect and resume, progress and success;
pushes to connected and late devices; token auth; replaced connections;
offline on close; idle timeout; progress derived from fetched chunks.

Fixtures here (also imported by test_tcp_hostile.py and test_tcp_scale.py):
  tcpgw(codec="jsonline", token=None, **tcp)  a daemon from conftest's
      gw_factory with a [tcp] section (free port on 127.0.0.1, the codec and
      any other [tcp] key given as keyword); g.device(id, ...) opens a
      devsim.Device on it, closed at teardown.
Images are random files in the test's tmp dir, registered with a
an upload into the gateway's cache, with their size and sha256."""

import hashlib
import os
import subprocess
import sys
import time

import pytest

from otagw_it import HOST, free_port, mk_dev, port_accepts

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import devsim  # noqa: E402

CODECS = devsim.CODECS
WAIT = 5.0          # s: bound for state the daemon should reach "at once"


# -- fixtures and helpers ----------------------------------------------------

def tcp_section(port, codec, **kw):
    lines = ["", "[tcp]", "bind = %s" % HOST, "port = %d" % port, "codec = %s" % codec]
    lines += ["%s = %s" % (k, v) for k, v in kw.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def tcpgw(gw_factory):
    """Factory: tcpgw(codec, token=None, **tcp_keys) -> a started Gateway with
    .tcp_port, .codec and .device(device_id, **Device kwargs)."""
    devices = []

    def make(codec="jsonline", token=None, **tcp):
        port = free_port()
        g = gw_factory(token=token, config_extra=tcp_section(port, codec, **tcp), start=False)
        g.tcp_port = port
        g.codec = codec
        g.tcp_conf = dict(tcp)

        def device(device_id, codec=None, connect=True, **kw):
            d = devsim.Device(HOST, port, codec or g.codec, device_id, connect=connect, **kw)
            devices.append(d)
            return d

        g.device = device
        g.start()
        wait_until(lambda: port_accepts(port), "TCP port %d to accept" % port)
        return g

    yield make
    for d in devices:
        d.close()


def wait_until(fn, what, timeout=WAIT, interval=0.05):
    """Polls fn() until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def make_image(tmp_path, size, name):
    data = os.urandom(size)
    path = tmp_path / ("%s.bin" % name)
    path.write_bytes(data)
    return str(path.resolve()), data


def make_fw(g, tmp_path, productId="p1", version="2.0.0", size=320 * 1024 + 333,
            versionOrder=2, fw_id=None):
    """Registers a random image as firmware and uploads it into the gateway's
    verified cache (PUT /api/firmware/{id}/image); returns (firmware JSON,
    bytes)."""
    path, data = make_image(tmp_path, size, "img-%s-%s" % (productId, version))
    body = {"productId": productId, "name": "fw %s" % version, "version": version,
            "versionOrder": versionOrder, "size": size,
            "sign": hashlib.sha256(data).hexdigest(), "signMethod": "sha256"}
    if fw_id:
        body["id"] = fw_id
    fw = g.ok("POST", "/api/firmware", body, expect=201)
    assert fw["size"] == size and fw["sign"] == body["sign"], fw
    st, js, _ = g.req("PUT", "/api/firmware/%s/image" % fw["id"], raw=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert st == 200 and js["image"]["state"] == "ready", (st, js)
    assert js["image"]["sha256"] == body["sign"], js
    return fw, data


def publish(g, fw_id, mode="pull", ids=None, all_=False, name="t", timeout=0):
    """Creates a task and publishes it; returns (task, publish result)."""
    t = g.ok("POST", "/api/firmware/%s/tasks" % fw_id,
             {"name": name, "mode": mode, "timeoutSeconds": timeout}, expect=201)
    body = {"all": True} if all_ else {"deviceIds": list(ids or [])}
    res = g.ok("POST", "/api/tasks/%s/publish" % t["id"], body)
    return t, res


def record_of(g, task_id, device_id):
    items = g.ok("GET", "/api/tasks/%s/records?size=1000" % task_id)["items"]
    mine = [r for r in items if r["deviceId"] == device_id]
    assert len(mine) == 1, items
    return mine[0]


def wait_record(g, task_id, device_id, state, timeout=WAIT):
    return wait_until(lambda: (lambda r: r if r["state"] == state else None)(
        record_of(g, task_id, device_id)), "record of %s to be %s" % (device_id, state), timeout)


def wait_progress(g, task_id, device_id, at_least, what, timeout=WAIT):
    """Waits until the record's progress is >= at_least; returns it. The
    failure names the last progress seen."""
    deadline = time.monotonic() + timeout
    while True:
        rec = record_of(g, task_id, device_id)
        if rec["progress"] >= at_least:
            return rec["progress"]
        if time.monotonic() >= deadline:
            raise AssertionError("%s: record progress %d (state %s) after %.1f s, expected >= %d"
                                 % (what, rec["progress"], rec["state"], timeout, at_least))
        time.sleep(0.05)


def get_dev(g, device_id):
    st, js, _ = g.req("GET", "/api/devices/" + device_id)
    return js if st == 200 else None


def wait_online(g, device_id, online, timeout=WAIT):
    return wait_until(lambda: (lambda d: d if d and d["online"] is online else None)(
        get_dev(g, device_id)), "device %s online=%s" % (device_id, online), timeout)


def sessions(g):
    return g.ok("GET", "/api/health")["sessions"]


def assert_closed_with(d, code, timeout=3.0):
    """The gateway sent ERROR code (first ERROR seen) and closed d."""
    assert d.wait_closed(timeout), "the gateway did not close the connection of %s within " \
        "%.1f s; received %r" % (d.device_id, timeout, d.received)
    errs = d.errors()
    assert errs, "closed without an ERROR message; received %r" % (d.received,)
    assert errs[0].get("code") == code, "ERROR %r, expected code %r" % (errs[0], code)
    return errs[0]


def full_flow(g, tmp_path, device_id, codec=None, product="good", version="9.0.0"):
    """A well-behaved device completes report -> pull -> fetch -> success.
    Used after hostile input (test_tcp_hostile.py)."""
    fw, image = make_fw(g, tmp_path, productId=product, version=version, size=50 * 1024 + 7,
                        versionOrder=int(time.time() * 1000) % 1000000)
    d = g.device(device_id, codec=codec, product_id=product)
    d.report("1.0.0")
    wait_until(lambda: get_dev(g, device_id), "device %s to be created" % device_id)
    t, res = publish(g, fw["id"], "pull", [device_id])
    assert res["added"] == 1, res
    rep = d.pull()
    assert rep["success"] is True and rep["firmwareId"] == fw["id"], rep
    got = d.fetch_image(fw["id"], fw["size"], chunk=4096)
    assert hashlib.sha256(got).hexdigest() == fw["sign"]
    d.progress(version, fw["id"], 100, complete=True, success=True)
    wait_record(g, t["id"], device_id, "success")
    d.close()
    assert g.ok("GET", "/api/health")["status"] == "ok"


# -- the main flow -------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_pull_fetch_resume_success(tcpgw, tmp_path, codec):
    g = tcpgw(codec)
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=320 * 1024 + 333)
    t0 = devsim.now_ms()
    d = g.device("d1", product_id="p1")
    d.report("1.0.0", {"hw": "A2"})
    dev = wait_online(g, "d1", True)
    assert (dev["productId"], dev["firmwareVersion"], dev["transport"]) == ("p1", "1.0.0", "tcp"), dev
    assert dev["properties"] == {"hw": "A2"}, dev
    assert dev["lastSeen"] >= t0 - 1000, dev

    task, res = publish(g, fw["id"], "pull", ["d1"])
    assert res["added"] == 1, res
    rep = d.pull(current_version="1.0.0")
    assert rep["success"] is True, rep
    assert rep["deviceId"] == "d1"
    assert (rep["firmwareId"], rep["version"], rep["size"], rep["sign"], rep["signMethod"]) == \
        (fw["id"], "2.0.0", len(image), fw["sign"], "sha256"), rep
    assert rep["url"] == "chunk:" + fw["id"], rep
    assert isinstance(rep.get("parameters", {}), dict), rep
    assert record_of(g, task["id"], "d1")["state"] == "processing"

    # 2/5 of the image, then the connection drops
    first = d.fetch_image(fw["id"], len(image), chunk=4096, stop_after=len(image) * 2 // 5)
    assert 0 < len(first) < len(image) and first == image[:len(first)]
    d.close()
    wait_online(g, "d1", False)
    assert record_of(g, task["id"], "d1")["state"] == "processing", \
        "a dropped connection must not end the upgrade"

    # resume on a new connection: the chunk request is its first message
    d.connect()
    rest = d.fetch_image(fw["id"], len(image), chunk=4096, offset=len(first), check_end=True)
    whole = first + rest
    assert len(whole) == len(image)
    assert hashlib.sha256(whole).hexdigest() == fw["sign"] == hashlib.sha256(image).hexdigest()
    wait_online(g, "d1", True)

    d.progress("2.0.0", fw["id"], 100, complete=True, success=True)
    rec = wait_record(g, task["id"], "d1", "success")
    assert rec["progress"] == 100 and rec["completeTime"] >= t0, rec
    d.report("2.0.0")
    dev = wait_until(lambda: (lambda x: x if x["firmwareVersion"] == "2.0.0" else None)(
        get_dev(g, "d1")), "firmwareVersion 2.0.0")
    assert dev["online"] is True and dev["transport"] == "tcp", dev
    assert g.ok("GET", "/api/tasks/" + task["id"])["counts"]["success"] == 1
    assert not d.errors(), d.errors()
    rep = d.pull()
    assert rep["success"] is False and rep["code"] == "not_found", rep


@pytest.mark.parametrize("codec", CODECS)
def test_chunk_replies(tcpgw, tmp_path, codec):
    """not_found before a record exists, out_of_range past the end, a short
    last chunk, the empty chunk at offset == size, an unknown firmware."""
    g = tcpgw(codec)
    size = 10000
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=size)
    d = g.device("c1", product_id="p1")
    d.report("1.0.0")
    rep = d.pull()
    assert rep["success"] is False and rep["code"] == "not_found", rep
    rep = d.request_chunk(fw["id"], 0, 4096)
    assert rep["success"] is False and rep["code"] == "not_found", rep
    assert not rep.get("data"), rep

    task, _ = publish(g, fw["id"], "pull", ["c1"])
    rep = d.pull()
    assert rep["success"] is True, rep
    rep = d.request_chunk(fw["id"], 0, 4096)
    assert devsim.check_chunk_reply(rep, fw["id"], 0, 4096, size) == image[:4096]
    assert rep["size"] == size, rep
    rep = d.request_chunk(fw["id"], size - 100, 4096)
    assert devsim.check_chunk_reply(rep, fw["id"], size - 100, 4096, size) == image[-100:]
    assert rep["length"] == 100, rep
    rep = d.request_chunk(fw["id"], size, 4096)
    assert devsim.check_chunk_reply(rep, fw["id"], size, 4096, size) == b""
    assert rep["length"] == 0, rep
    for off in (size + 1, 2 ** 40):
        rep = d.request_chunk(fw["id"], off, 16)
        assert rep["success"] is False and rep["code"] == "out_of_range", (off, rep)
    # larger than max_chunk (default 4096): clamped, never more
    rep = d.request_chunk(fw["id"], 0, 65536)
    if rep["success"]:
        assert 0 < rep["length"] <= 4096 and rep["data"] == image[:rep["length"]], rep
    rep = d.request_chunk("no-such-fw", 0, 16)
    assert rep["success"] is False and rep["code"] == "not_found", rep
    assert record_of(g, task["id"], "c1")["state"] == "processing"
    assert not d.errors(), d.errors()


@pytest.mark.parametrize("window", [1, 4, 16])
@pytest.mark.parametrize("codec", CODECS)
def test_big_chunks(tcpgw, tmp_path, codec, window):
    """max_chunk = 65536: a whole image by 64 KiB chunks, one at a time and
    pipelined (window requests in flight; the device reads all the time, so
    the gateway may pause reading it but must not drop it)."""
    g = tcpgw(codec, max_chunk=65536)
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=1024 * 1024 + 5)
    d = g.device("big", product_id="p1")
    d.report("1.0.0")
    publish(g, fw["id"], "pull", ["big"])
    assert d.pull()["success"] is True
    got = d.fetch_image(fw["id"], len(image), chunk=65536, window=window, check_end=True)
    assert got == image
    assert not d.errors(), d.errors()


# -- push ------------------------------------------------------------------------

def _check_push(up, fw, version):
    assert up["messageType"] == "UPGRADE_FIRMWARE" and up.get("messageId"), up
    assert (up["firmwareId"], up["version"], up["size"], up["sign"], up["signMethod"]) == \
        (fw["id"], version, fw["size"], fw["sign"], "sha256"), up
    assert up["url"] == "chunk:" + fw["id"], up
    assert "success" not in up, "UPGRADE_FIRMWARE has no success field (JetLinks): %r" % up


@pytest.mark.parametrize("codec", CODECS)
def test_push_to_connected_device(tcpgw, tmp_path, codec):
    g = tcpgw(codec)
    fw, image = make_fw(g, tmp_path, "p1", "3.0.0", size=200 * 1024 + 1)
    d = g.device("pd1", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "pd1", True)
    task, res = publish(g, fw["id"], "push", ["pd1"])
    assert res["added"] == 1 and res["pushed"] == 1, res
    up = d.wait_for("UPGRADE_FIRMWARE")
    _check_push(up, fw, "3.0.0")
    assert up["deviceId"] == "pd1"
    assert record_of(g, task["id"], "pd1")["state"] == "processing"
    d.upgrade_reply(up["messageId"], True)
    got = d.fetch_image(fw["id"], fw["size"], chunk=4096)
    assert got == image
    d.progress("3.0.0", fw["id"], 50)
    wait_until(lambda: record_of(g, task["id"], "pd1")["progress"] == 50, "progress 50")
    d.progress("3.0.0", fw["id"], 100, complete=True, success=True)
    wait_record(g, task["id"], "pd1", "success")
    assert not d.errors(), d.errors()


@pytest.mark.parametrize("codec", CODECS)
def test_push_when_device_connects(tcpgw, tmp_path, codec):
    g = tcpgw(codec)
    fw, image = make_fw(g, tmp_path, "p1", "3.0.0", size=100 * 1024)
    mk_dev(g, "late", productId="p1", firmwareVersion="1.0.0")
    task, res = publish(g, fw["id"], "push", ["late"])
    assert res["added"] == 1 and res["pushed"] == 0, res
    assert record_of(g, task["id"], "late")["state"] == "waiting"
    time.sleep(0.2)
    d = g.device("late", product_id="p1")
    d.report("1.0.0")
    up = d.wait_for("UPGRADE_FIRMWARE", timeout=WAIT)
    _check_push(up, fw, "3.0.0")
    wait_record(g, task["id"], "late", "processing")
    d.upgrade_reply(up["messageId"], True)
    assert d.fetch_image(fw["id"], fw["size"], chunk=4096) == image
    d.progress("3.0.0", fw["id"], 100, complete=True, success=True)
    wait_record(g, task["id"], "late", "success")
    assert not d.errors(), d.errors()


@pytest.mark.parametrize("codec", CODECS)
def test_push_refused_by_device(tcpgw, tmp_path, codec):
    g = tcpgw(codec)
    fw, _ = make_fw(g, tmp_path, "p1", "3.0.0", size=4096)
    d = g.device("nay", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "nay", True)
    task, res = publish(g, fw["id"], "push", ["nay"])
    up = d.wait_for("UPGRADE_FIRMWARE")
    d.upgrade_reply(up["messageId"], False, "battery low")
    rec = wait_record(g, task["id"], "nay", "failed")
    assert "battery low" in rec["errorReason"], rec


# -- identity and auth ---------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_token_auth(tcpgw, codec):
    g = tcpgw(codec, auth="token")
    mk_dev(g, "k1", productId="p1", secureKey="s3cret-k1", firmwareVersion="1.0.0")
    mk_dev(g, "nokey", productId="p1")
    js = get_dev(g, "k1")
    assert js["hasSecureKey"] is True and "secureKey" not in js, js
    assert get_dev(g, "nokey")["hasSecureKey"] is False

    good = g.device("k1", secure_key="s3cret-k1")
    good.report("1.0.0")
    rep = good.pull()
    assert rep["messageType"] == "REQUEST_FIRMWARE_REPLY" and rep["code"] == "not_found", rep
    wait_online(g, "k1", True)

    for dev_id, key, product in (("k1", "wrong", None), ("k1", None, None),
                                 ("ghost", "s3cret-k1", "p1"), ("nokey", "anything", None),
                                 ("nokey", None, None)):
        x = g.device(dev_id, secure_key=key, product_id=product)
        x.report("1.0.0")
        assert_closed_with(x, "auth_failed")
    assert get_dev(g, "ghost") is None, "an unauthenticated device was created"
    # failed attempts did not displace the authenticated connection
    rep = good.pull()
    assert rep["code"] == "not_found", rep
    assert not good.closed
    assert get_dev(g, "k1")["online"] is True

    # a key set later by PUT works; the old key of a changed one does not
    g.ok("PUT", "/api/devices/nokey", {"secureKey": "fresh-key"})
    assert get_dev(g, "nokey")["hasSecureKey"] is True
    y = g.device("nokey", secure_key="fresh-key")
    y.report("1.0.0")
    assert y.pull()["messageType"] == "REQUEST_FIRMWARE_REPLY"
    g.ok("PUT", "/api/devices/k1", {"secureKey": "rotated"})
    z = g.device("k1", secure_key="s3cret-k1")
    z.report("1.0.0")
    assert_closed_with(z, "auth_failed")
    assert not good.errors() and not y.errors()


def test_token_auth_empty_key(tcpgw):
    """An empty headers.secureKey is a wrong key: auth_failed and close,
    like a missing one."""
    g = tcpgw("jsonline", auth="token")
    mk_dev(g, "k1", productId="p1", secureKey="s3cret-k1")
    good = g.device("k1", secure_key="s3cret-k1")
    good.report("1.0.0")
    assert good.pull()["code"] == "not_found"
    x = g.device("k1", secure_key="")
    x.report("1.0.0")
    assert_closed_with(x, "auth_failed")
    assert good.pull()["code"] == "not_found" and not good.closed


@pytest.mark.parametrize("codec", CODECS)
def test_unknown_device_without_product(tcpgw, codec):
    g = tcpgw(codec)
    x = g.device("newdev")
    x.report("1.0.0")
    assert_closed_with(x, "unknown_device")
    assert get_dev(g, "newdev") is None
    y = g.device("newdev", product_id="pX")
    y.report("1.0.0")
    assert y.pull()["code"] == "not_found"
    dev = get_dev(g, "newdev")
    assert (dev["productId"], dev["firmwareVersion"], dev["online"]) == ("pX", "1.0.0", True), dev
    # a known device needs no productId
    y.close()
    z = g.device("newdev")
    z.report("1.0.1")
    assert z.pull()["code"] == "not_found"
    assert get_dev(g, "newdev")["firmwareVersion"] == "1.0.1"


def test_default_product(tcpgw):
    g = tcpgw("jsonline", default_product="dflt")
    x = g.device("auto1")
    x.report("0.9")
    assert x.pull()["code"] == "not_found"
    dev = get_dev(g, "auto1")
    assert (dev["productId"], dev["firmwareVersion"]) == ("dflt", "0.9"), dev
    y = g.device("auto2", product_id="explicit")
    y.report("0.9")
    assert y.pull()["code"] == "not_found"
    assert get_dev(g, "auto2")["productId"] == "explicit"


# -- connection lifecycle ------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_replaced_connection(tcpgw, codec):
    g = tcpgw(codec)
    a = g.device("r1", product_id="p1")
    a.report("1.0.0")
    assert a.pull()["code"] == "not_found"
    b = g.device("r1", product_id="p1")
    b.report("1.0.0")
    assert a.wait_closed(3.0), "the displaced connection was not closed"
    assert b.pull()["code"] == "not_found"
    time.sleep(0.3)
    assert get_dev(g, "r1")["online"] is True, \
        "closing the displaced connection marked the device offline"
    assert sessions(g) == 1
    b.close()
    wait_online(g, "r1", False)


@pytest.mark.parametrize("codec", CODECS)
def test_offline_on_close(tcpgw, codec):
    g = tcpgw(codec)
    t0 = devsim.now_ms()
    d = g.device("o1", product_id="p1")
    d.report("1.0.0")
    dev = wait_online(g, "o1", True)
    assert dev["transport"] == "tcp" and dev["lastSeen"] >= t0 - 1000, dev
    e = g.device("o2", product_id="p1")
    e.report("1.0.0")
    wait_online(g, "o2", True)
    assert sessions(g) == 2
    d.close()
    dev = wait_online(g, "o1", False, timeout=3.0)
    assert dev["lastSeen"] >= t0 - 1000, dev
    e.close(reset=True)
    wait_online(g, "o2", False, timeout=3.0)
    wait_until(lambda: sessions(g) == 0, "sessions == 0")


@pytest.mark.parametrize("codec", CODECS)
def test_idle_timeout(tcpgw, codec):
    g = tcpgw(codec, idle_timeout=1)
    busy = g.device("busy", product_id="p1")
    busy.report("1.0.0")
    d = g.device("idle", product_id="p1")
    d.report("1.0.0")
    t0 = time.monotonic()
    silent = g.device("never-speaks")           # connects, never identifies
    wait_online(g, "idle", True)
    # busy keeps talking every 0.3 s and must survive the idle timeout
    closed_at = None
    while time.monotonic() - t0 < 3.5:
        busy.report("1.0.0")
        if closed_at is None:
            if d.wait_closed(0.3):
                closed_at = time.monotonic() - t0
        elif time.monotonic() - t0 > 2.5:
            break
        else:
            time.sleep(0.3)
    assert closed_at is not None, "idle connection still open after 3.5 s with idle_timeout = 1"
    assert closed_at >= 0.5, "closed after %.2f s, before idle_timeout" % closed_at
    assert silent.wait_closed(1.0), "a connection that never identified stayed open"
    assert busy.pull()["code"] == "not_found", "the busy connection was closed"
    wait_online(g, "idle", False)
    assert get_dev(g, "busy")["online"] is True


# -- derived progress --------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_derived_progress(tcpgw, tmp_path, codec):
    """A pull-mode record's progress follows the highest contiguous offset
    fetched, without any progress message."""
    g = tcpgw(codec)
    size = 100 * 4096                      # one chunk = 1 %
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=size)
    d = g.device("dp", product_id="p1")
    d.report("1.0.0")
    task, _ = publish(g, fw["id"], "pull", ["dp"])
    assert d.pull()["success"] is True
    assert record_of(g, task["id"], "dp")["progress"] == 0

    got = d.fetch_image(fw["id"], size, stop_after=25 * 4096)
    assert got == image[:25 * 4096]
    p25 = wait_progress(g, task["id"], "dp", 15, "after fetching 25 %")
    assert p25 <= 25, p25
    # a chunk far ahead is not contiguous: no jump to 90 %
    rep = d.request_chunk(fw["id"], 90 * 4096, 4096)
    assert devsim.check_chunk_reply(rep, fw["id"], 90 * 4096, 4096, size) == \
        image[90 * 4096:91 * 4096]
    got += d.fetch_image(fw["id"], size, offset=25 * 4096, stop_after=35 * 4096)
    p60 = wait_progress(g, task["id"], "dp", 50, "after fetching 60 %")
    assert p25 <= p60 <= 60, (p25, p60)
    got += d.fetch_image(fw["id"], size, offset=60 * 4096)
    assert got == image
    p100 = wait_progress(g, task["id"], "dp", 90, "after fetching everything")
    assert p100 <= 100
    rec = record_of(g, task["id"], "dp")
    assert rec["state"] == "processing", "fetching is not completion: %r" % rec
    d.progress("2.0.0", fw["id"], 100, complete=True, success=True)
    wait_record(g, task["id"], "dp", "success")


# -- message handling ----------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_refused_messages(tcpgw, tmp_path, codec):
    g = tcpgw(codec)
    d = g.device("rf", product_id="p1")
    d.report("1.0.0")
    d.progress("2.0.0", "fw-x", 40)
    err = d.wait_for("ERROR")
    assert err["code"] == "refused", err
    d.send(devsim.msg_upgrade_reply("rf", "up-77", True))
    err = d.wait_for("ERROR")
    assert err["code"] == "refused" and err.get("messageId") == "up-77", err
    # a down-direction message from a device
    d.send({"messageType": "UPGRADE_FIRMWARE", "deviceId": "rf", "messageId": "x9",
            "firmwareId": "f", "version": "1", "url": "chunk:f"})
    err = d.wait_for("ERROR")
    assert err["code"] == "refused", err      # decoded, then refused (PROTOCOL.md 5.3)
    assert err.get("messageId") == "x9", err
    # another device's id on this connection
    d.send(devsim.msg_report("someone-else", "1.0.0"))
    err = d.wait_for("ERROR")
    assert err["code"] == "refused", err
    assert get_dev(g, "someone-else") is None
    # still usable
    assert d.pull()["code"] == "not_found"
    assert not d.closed


def test_jsonline_crlf_blank_lines_and_pipelining(tcpgw):
    g = tcpgw("jsonline")
    d = g.device("pl", product_id="p1")
    batch = (devsim.encode("jsonline", d._with_headers(devsim.msg_report("pl", "1.0.0")), b"\r\n")
             + b"\r\n\n"
             + devsim.encode("jsonline", devsim.msg_pull("pl", "q1"), b"\r\n")
             + devsim.encode("jsonline", devsim.msg_pull("pl", "q2")))
    d.send_raw(batch)
    r1 = d.wait_for("REQUEST_FIRMWARE_REPLY")
    r2 = d.wait_for("REQUEST_FIRMWARE_REPLY")
    assert (r1["messageId"], r2["messageId"]) == ("q1", "q2")
    assert get_dev(g, "pl")["firmwareVersion"] == "1.0.0"
    assert not d.errors(), d.errors()


def test_frame_pipelining(tcpgw, tmp_path):
    g = tcpgw("frame")
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=40000)
    d = g.device("fp", product_id="p1")
    d.report("1.0.0")
    publish(g, fw["id"], "pull", ["fp"])
    msgs = [devsim.msg_pull("fp", "q1")] + \
        [devsim.msg_chunk("fp", "c%d" % i, fw["id"], i * 4096, 4096) for i in range(10)]
    d.send_raw(b"".join(devsim.encode("frame", m) for m in msgs))
    assert d.wait_for("REQUEST_FIRMWARE_REPLY", message_id="q1")["success"] is True
    got = b""
    for i in range(10):
        rep = d.wait_for("REQUEST_FIRMWARE_CHUNK_REPLY", message_id="c%d" % i)
        got += devsim.check_chunk_reply(rep, fw["id"], i * 4096, 4096, len(image))
    assert got == image


def test_devsim_cli(tcpgw, tmp_path):
    """The README's simulator command completes the whole flow."""
    g = tcpgw("jsonline")
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=64 * 1024 + 3)
    mk_dev(g, "cli1", productId="p1", firmwareVersion="1.0.0")
    task, _ = publish(g, fw["id"], "pull", ["cli1"])
    out = tmp_path / "cli-image.bin"
    p = subprocess.run([sys.executable, os.path.join(TESTS_DIR, "devsim.py"), "--port",
                        str(g.tcp_port), "--device", "cli1", "--product", "p1", "--codec",
                        "jsonline", "--out", str(out)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert p.returncode == 0, p.stdout
    assert "upgraded cli1 to 2.0.0" in p.stdout, p.stdout
    assert out.read_bytes() == image
    wait_record(g, task["id"], "cli1", "success")
    assert get_dev(g, "cli1")["firmwareVersion"] == "2.0.0"


@pytest.mark.parametrize("codec", CODECS)
def test_pushes_one_at_a_time(tcpgw, tmp_path, codec):
    """Two push tasks for a connected device: one UPGRADE_FIRMWARE at a time;
    the second follows once the first succeeded; a failed progress fails
    its record."""
    g = tcpgw(codec)
    fw2, img2 = make_fw(g, tmp_path, "p1", "2.0.0", size=9000, versionOrder=2)
    fw3, img3 = make_fw(g, tmp_path, "p1", "3.0.0", size=7000, versionOrder=3)
    d = g.device("seq", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "seq", True)
    t2, r2 = publish(g, fw2["id"], "push", ["seq"], name="t2")
    t3, r3 = publish(g, fw3["id"], "push", ["seq"], name="t3")
    assert (r2["pushed"], r3["pushed"]) == (1, 0), (r2, r3)
    up = d.wait_for("UPGRADE_FIRMWARE")
    assert up["firmwareId"] == fw2["id"], up
    time.sleep(0.3)
    assert d.recv(timeout=0.2) is None, "a second push while the first is in progress"
    assert record_of(g, t3["id"], "seq")["state"] == "waiting"
    d.upgrade_reply(up["messageId"], True)
    assert d.fetch_image(fw2["id"], fw2["size"]) == img2
    d.progress("2.0.0", fw2["id"], 100, complete=True, success=True)
    up = d.wait_for("UPGRADE_FIRMWARE", timeout=WAIT)
    assert up["firmwareId"] == fw3["id"], up
    assert record_of(g, t2["id"], "seq")["state"] == "success"
    d.upgrade_reply(up["messageId"], True)
    assert d.fetch_image(fw3["id"], fw3["size"], stop_after=4096) == img3[:4096]
    d.progress("3.0.0", fw3["id"], 30)
    d.progress("3.0.0", fw3["id"], 30, complete=False, success=False, error_reason="flash error")
    rec = wait_record(g, t3["id"], "seq", "failed")
    assert "flash error" in rec["errorReason"], rec
    # a failed record no longer serves chunks
    rep = d.request_chunk(fw3["id"], 0, 16)
    assert rep["success"] is False and rep["code"] == "not_found", rep
    assert not d.errors(), d.errors()


@pytest.mark.parametrize("codec", CODECS)
def test_deleted_device_is_disconnected(tcpgw, codec):
    g = tcpgw(codec)
    d = g.device("del1", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "del1", True)
    st, js, _ = g.req("DELETE", "/api/devices/del1")
    assert st in (200, 204), (st, js)
    assert d.wait_closed(3.0), "a deleted device's connection stayed open"
    wait_until(lambda: sessions(g) == 0, "sessions == 0")
    assert get_dev(g, "del1") is None, "the closing connection re-created the device"
    d.connect()
    d.report("1.0.1")
    assert d.pull()["code"] == "not_found"
    assert get_dev(g, "del1")["firmwareVersion"] == "1.0.1"


def test_restart_with_connections(tcpgw):
    """SIGTERM with 50 connected devices: exit 0 promptly; after a restart
    every device is offline until it reconnects."""
    g = tcpgw("frame")
    devs = []
    for i in range(50):
        d = g.device("rs%02d" % i, product_id="p1")
        d.report("1.0.0")
        devs.append(d)
    wait_until(lambda: sessions(g) == 50, "50 sessions")
    rc, took = g.stop()
    assert rc == 0 and took < 2.0, (rc, took)
    assert all(d.wait_closed(1.0) for d in devs)
    g.start()
    wait_until(lambda: port_accepts(g.tcp_port), "TCP port after restart")
    items = g.ok("GET", "/api/devices?size=100")["items"]
    assert len(items) == 50 and not [x["id"] for x in items if x["online"]], items[:3]
    devs[0].connect()
    devs[0].report("1.0.0")
    assert devs[0].pull()["code"] == "not_found"
    assert get_dev(g, "rs00")["online"] is True


@pytest.mark.parametrize("codec", CODECS)
def test_derived_progress_after_resume(tcpgw, tmp_path, codec):
    """Resuming on a new connection from the offset reached before: the
    record's progress keeps rising with the chunks fetched after the resume."""
    g = tcpgw(codec)
    size = 100 * 4096
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=size)
    d = g.device("dr", product_id="p1")
    d.report("1.0.0")
    task, _ = publish(g, fw["id"], "pull", ["dr"])
    assert d.pull()["success"] is True
    got = d.fetch_image(fw["id"], size, stop_after=30 * 4096)
    wait_progress(g, task["id"], "dr", 20, "after fetching 30 %")
    d.close()
    d.connect()
    got += d.fetch_image(fw["id"], size, offset=30 * 4096)
    assert got == image
    p = wait_progress(g, task["id"], "dr", 90, "after the resumed fetch", timeout=3)
    assert p <= 100
