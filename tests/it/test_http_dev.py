import pytest
# SPDX-License-Identifier: MIT
"""HTTP device transport (README "HTTP devices", southbound/PROTOCOL.md):
JetLinks firmware topics as paths under /device/{productId}/{deviceId}/,
long-poll pushes, device token auth and verified images under
/images/{firmwareId}.

curl plays the device for the main flow (report -> pull -> an interrupted
and resumed download -> progress -> success), as the README's walkthrough
does. Then: long-poll latency and bounds, token auth, path/body mismatches,
refusals, 503 for images not in the cache, 200 parallel downloads of a
multi-MiB image, and a hostile list (path traversal, encoded slashes, NUL
bytes, absurd ranges, invalid JSON, a slowloris client), each followed by
a good request that must still work.

Images are random files registered as firmware and uploaded into the
gateway's verified cache with test_tcp.make_fw (PUT /api/firmware/{id}/image).
Every wait is bounded; the daemon is stopped by conftest (exit 0, no
sanitizer report)."""

import email.utils
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time

from conftest import TOKEN
from otagw_it import HOST, NO_ANSWER, http_request, mk_dev
from test_tcp import get_dev, make_fw, publish, record_of, wait_record, wait_until

CURL_MAX_TIME = 60             # s: bound of one curl run


# -- helpers -------------------------------------------------------------------------

def http_section(**kw):
    """Lines appended to the generated config, whose last section is [http]."""
    return "".join("%s = %s\n" % kv for kv in kw.items())


def run_curl(args, timeout=CURL_MAX_TIME + 10):
    """curl -sS with args; returns (http_code, stdout bytes without the code,
    stderr text, exit code). The code comes from -w on its own last line."""
    p = subprocess.run(["curl", "-sS", "--max-time", str(CURL_MAX_TIME),
                        "-w", "\n%{http_code}"] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out, _, code = p.stdout.rpartition(b"\n")
    try:
        status = int(code)
    except ValueError:
        status = None
    return status, out, p.stderr.decode(errors="replace"), p.returncode


class Dev:
    """An HTTP device played by curl: POSTs JSON to its topics."""

    def __init__(self, g, product, device, key=None):
        self.g, self.product, self.device, self.key = g, product, device, key

    def path(self, topic):
        return "/device/%s/%s/firmware/%s" % (self.product, self.device, topic)

    def post(self, topic, body, key="own", raw=None):
        """(status, parsed JSON or None, raw body bytes). key: "own" sends
        self.key when set; None sends no Authorization; a string sends it."""
        key = self.key if key == "own" else key
        data = raw if raw is not None else json.dumps(body).encode()
        args = ["-X", "POST", "-H", "Content-Type: application/json",
                "--data-binary", "@-", self.g.url(self.path(topic))]
        if key is not None:
            args[:0] = ["-H", "Authorization: Bearer " + key]
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"] + args,
                           input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        out, _, code = p.stdout.rpartition(b"\n")
        assert p.returncode == 0, "curl failed (%d): %s" % (p.returncode, p.stderr)
        try:
            js = json.loads(out) if out else None
        except ValueError:
            js = None
        return int(code), js, out

    def ok(self, topic, body, expect=200, **kw):
        st, js, out = self.post(topic, body, **kw)
        assert st == expect, "POST %s %r -> %d %r (expected %d)" % (
            self.path(topic), body, st, out[:300], expect)
        return js

    def report(self, version, properties=None, **kw):
        body = {"version": version}
        if properties is not None:
            body["properties"] = properties
        js = self.ok("report", body, **kw)
        assert js == {"success": True}, js
        return js

    def pull(self, message_id="m1", request_version=""):
        js = self.ok("pull", {"messageId": message_id, "requestVersion": request_version})
        assert isinstance(js, dict) and js.get("messageId") == message_id, js
        return js

    def poll(self, wait=None, key="own", timeout=40.0):
        """GET .../firmware/upgrade[?wait=N] with http.client; (status, JSON)."""
        key = self.key if key == "own" else key
        path = self.path("upgrade") + ("" if wait is None else "?wait=%d" % wait)
        hdrs = {"Authorization": "Bearer " + key} if key is not None else {}
        st, js, _, _ = http_request(self.g.port, "GET", path, headers=hdrs, timeout=timeout)
        return st, js


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def check_reply(rep, fw, version, g):
    """A REQUEST_FIRMWARE_REPLY / UPGRADE_FIRMWARE for fw, url at the gateway."""
    assert (rep["firmwareId"], rep["version"], rep["size"], rep["sign"], rep["signMethod"]) == \
        (fw["id"], version, fw["size"], fw["sign"], "sha256"), rep
    assert rep["url"] == g.base + "/images/" + fw["id"] + "?device=" + rep["deviceId"], rep
    assert isinstance(rep.get("parameters"), dict), rep


def good_device_flow(g, tmp_path, device_id, product="good"):
    """A well-behaved HTTP device still completes report -> pull -> download
    -> success (used after hostile input)."""
    version = "9.%d" % (int(time.time() * 1000) % 100000)
    fw, image = make_fw(g, tmp_path, productId=product, version=version, size=40 * 1024 + 7,
                        versionOrder=int(time.time() * 1000) % 1000000)
    d = Dev(g, product, device_id)
    d.report("1.0")
    t, res = publish(g, fw["id"], "pull", [device_id])
    assert res["added"] == 1, res
    rep = d.pull("good-1")
    assert rep["success"] is True, rep
    check_reply(rep, fw, version, g)
    st, _, _, body = http_request(g.port, "GET", "/images/" + fw["id"])
    assert st == 200 and body == image, (st, len(body))
    d.ok("upgrade/progress", {"version": version, "progress": 100, "complete": True,
                              "success": True})
    wait_record(g, t["id"], device_id, "success")
    assert g.ok("GET", "/api/health")["status"] == "ok"


def device_ids(g):
    return sorted(x["id"] for x in g.ok("GET", "/api/devices?size=1000")["items"])


# -- the main flow, with curl as the device ---------------------------------------------

def test_curl_pull_flow_with_resume(gw_factory, tmp_path):
    g = gw_factory()
    size = 3 * 1024 * 1024 + 4321
    fw, image = make_fw(g, tmp_path, productId="sensor", version="2.0", size=size)
    d = Dev(g, "sensor", "s9")

    # report: an unknown device is created with the path's productId
    t0 = int(time.time() * 1000)
    d.report("1.0", {"hw": "A2"})
    dev = get_dev(g, "s9")
    assert dev is not None, "report did not create the device"
    assert (dev["productId"], dev["firmwareVersion"], dev["properties"]) == \
        ("sensor", "1.0", {"hw": "A2"}), dev
    assert dev["transport"] == "http" and dev["lastSeen"] >= t0 - 1000, dev

    # pull: the reply of the published task's firmware, url at the gateway
    task, res = publish(g, fw["id"], "pull", ["s9"])
    assert res["added"] == 1, res
    rep = d.pull("m1", "")
    assert rep["success"] is True, rep
    assert rep.get("messageType", "REQUEST_FIRMWARE_REPLY") == "REQUEST_FIRMWARE_REPLY", rep
    check_reply(rep, fw, "2.0", g)
    assert rep["url"] == "http://%s:%d/images/%s?device=s9" % (HOST, g.port, fw["id"]), \
        "public_url must default to http://<bind>:<port>: %r" % rep["url"]
    assert record_of(g, task["id"], "s9")["state"] == "processing"

    out = str(tmp_path / "fw.bin")
    # 1. the first 100,000 bytes only (README: curl -r 0-99999)
    st, _, err, rc = run_curl(["-o", out, "-r", "0-99999", rep["url"]])
    assert (rc, st) == (0, 206), (rc, st, err)
    assert os.path.getsize(out) == 100000
    # bytes served to the device named in the url count as its progress
    assert record_of(g, task["id"], "s9")["progress"] == 100000 * 100 // size

    # 2. a resume from byte 100000 to stdout, cut after 1 MiB: the reader
    # goes away mid-body (curl dies on the broken pipe)
    p = subprocess.Popen(["curl", "-sS", "--max-time", str(CURL_MAX_TIME), "-C", "100000",
                          "-o", "-", rep["url"]],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        part = b""
        while len(part) < 1 << 20:
            b = p.stdout.read(min(65536, (1 << 20) - len(part)))
            if not b:
                break
            part += b
        p.stdout.close()
        rc = p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert len(part) == 1 << 20, len(part)
    assert rc != 0, "curl finished although its reader went away"
    with open(out, "ab") as f:
        f.write(part)
    cut = os.path.getsize(out)
    assert cut == 100000 + (1 << 20) < size, cut
    with open(out, "rb") as f:
        assert f.read() == image[:cut], "the interrupted download is not a prefix of the image"

    # 3. curl -C - finishes it
    st, _, err, rc = run_curl(["-C", "-", "-o", out, rep["url"]])
    assert (rc, st) == (0, 206), (rc, st, err)
    assert os.path.getsize(out) == size
    assert sha256_of(out) == fw["sign"] == hashlib.sha256(image).hexdigest()

    # served bytes made progress rise monotonically up to 99 (only the
    # device says it is done); once the device reports its own progress,
    # that wins and downloads no longer move it
    rec = record_of(g, task["id"], "s9")
    assert rec["state"] == "processing" and rec["progress"] == 99, rec
    js = d.ok("upgrade/progress", {"version": "2.0", "progress": 40, "success": True})
    assert js == {"success": True}, js
    assert record_of(g, task["id"], "s9")["progress"] == 40
    st, _, err, rc = run_curl(["-o", str(tmp_path / "again.bin"), rep["url"]])
    assert (rc, st) == (0, 200), (rc, st, err)
    assert record_of(g, task["id"], "s9")["progress"] == 40

    js = d.ok("upgrade/progress", {"version": "2.0", "progress": 100, "complete": True,
                                   "success": True})
    assert js == {"success": True}, js
    rec = wait_record(g, task["id"], "s9", "success")
    assert rec["progress"] == 100 and rec["completeTime"] >= t0, rec
    t = g.ok("GET", "/api/tasks/" + task["id"])
    assert t["counts"]["success"] == 1 and t["counts"]["total"] == 1, t

    d.report("2.0")
    assert get_dev(g, "s9")["firmwareVersion"] == "2.0"
    rep = d.pull("m2")
    assert rep["success"] is False and rep["code"] == "not_found", rep
    # progress after the record finished: refused
    st, js, _ = d.post("upgrade/progress", {"version": "2.0", "progress": 50, "success": True})
    assert st == 409 and js["success"] is False and js["code"] == "refused", (st, js)


def test_pull_nothing_pending(gw):
    d = Dev(gw, "sensor", "idle1")
    d.report("1.0")
    rep = d.pull("q7", "")
    assert rep["success"] is False and rep["code"] == "not_found", rep
    assert rep.get("messageType", "REQUEST_FIRMWARE_REPLY") == "REQUEST_FIRMWARE_REPLY", rep
    # a bare POST (no body) is an empty message of the topic
    st, js, _ = d.post("pull", None, raw=b"")
    assert st == 200 and js["success"] is False and js["code"] == "not_found", (st, js)


def test_public_url(gw_factory, tmp_path):
    g = gw_factory(config_extra=http_section(public_url="http://192.0.2.7:8080/"))
    fw, _ = make_fw(g, tmp_path, productId="sensor", version="2.0", size=1000)
    d = Dev(g, "sensor", "pu1")
    d.report("1.0")
    publish(g, fw["id"], "pull", ["pu1"])
    rep = d.pull()
    assert rep["success"] is True, rep
    assert rep["url"] == "http://192.0.2.7:8080/images/%s?device=pu1" % fw["id"], rep


# -- messages: mismatches and refusals -------------------------------------------------------

def test_body_path_mismatches(gw):
    d = Dev(gw, "sensor", "mm1")
    d.report("1.0")
    # messageType and deviceId may be given when they match the path
    d.ok("report", {"messageType": "REPORT_FIRMWARE", "deviceId": "mm1", "version": "1.1"})
    assert get_dev(gw, "mm1")["firmwareVersion"] == "1.1"

    # deviceId in the body differs from the path
    st, js, _ = d.post("report", {"deviceId": "other", "version": "1.2"})
    assert st == 400 and js["success"] is False, (st, js)
    assert get_dev(gw, "other") is None, "a mismatched deviceId created a device"
    assert get_dev(gw, "mm1")["firmwareVersion"] == "1.1"

    # messageType of another topic
    st, js, _ = d.post("report", {"messageType": "REQUEST_FIRMWARE", "version": "1.3"})
    assert st == 400 and js["success"] is False, (st, js)
    st, js, _ = d.post("pull", {"messageType": "REPORT_FIRMWARE", "messageId": "x"})
    assert st == 400, (st, js)

    # the device's stored productId differs from the path's
    other = Dev(gw, "otherprod", "mm1")
    st, js, _ = other.post("report", {"version": "1.4"})
    assert st == 400 and js["success"] is False, (st, js)
    dev = get_dev(gw, "mm1")
    assert (dev["productId"], dev["firmwareVersion"]) == ("sensor", "1.1"), dev

    # invalid JSON and wrong types
    for raw in (b"{bad", b"[]", b"null", b'"text"', b'{"version":1}', b"{\"version\":\"1\"",
                b'{"version":"\xff\xfe"}'):
        st, js, out = d.post("report", None, raw=raw)
        assert st == 400, "body %r -> %d %r" % (raw, st, out)
    assert get_dev(gw, "mm1")["firmwareVersion"] == "1.1"


def test_product_mismatch_every_topic(gw, tmp_path):
    """The path's productId must be the device's on every topic, the
    long-poll included: 400, and a pending push is not handed out."""
    fw, _ = make_fw(gw, tmp_path, productId="sensor", version="3.0", size=5000)
    mk_dev(gw, "pm1", productId="sensor", firmwareVersion="1.0")
    task, res = publish(gw, fw["id"], "push", ["pm1"])
    assert res["added"] == 1 and res["pushed"] == 0, res
    wrong = Dev(gw, "otherprod", "pm1")
    for topic, body in (("report", {"version": "1.1"}), ("pull", {"messageId": "m1"}),
                        ("upgrade/progress", {"version": "3.0", "progress": 10, "success": True}),
                        ("upgrade/reply", {"messageId": "x", "success": False})):
        st, js, out = wrong.post(topic, body)
        assert st == 400, (topic, st, out)
    st, js = wrong.poll()
    rec = record_of(gw, task["id"], "pm1")
    assert st == 400 and rec["state"] == "waiting", \
        "GET %s -> %d %r; record %s" % (wrong.path("upgrade"), st, js, rec["state"])
    st, up = Dev(gw, "sensor", "pm1").poll()
    assert st == 200, (st, up)
    check_push(up, fw, "3.0", "pm1", gw)
    dev = get_dev(gw, "pm1")
    assert (dev["productId"], dev["firmwareVersion"]) == ("sensor", "1.0"), dev


def test_progress_and_reply_refused_without_record(gw):
    d = Dev(gw, "sensor", "nr1")
    d.report("1.0")
    for topic, body in (("upgrade/progress", {"version": "2.0", "progress": 40, "success": True}),
                        ("upgrade/reply", {"messageId": "x1", "success": True}),
                        ("upgrade/reply", {"messageId": "x2", "success": False,
                                           "message": "no"})):
        st, js, out = d.post(topic, body)
        assert st == 409, (topic, st, out)
        assert js["success"] is False and js["code"] == "refused", js
        assert isinstance(js.get("message"), str) and js["message"], js


def test_failed_by_progress_and_by_reply(gw, tmp_path):
    fw, _ = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=2000)
    a, b = Dev(gw, "sensor", "fa"), Dev(gw, "sensor", "fb")
    a.report("1.0")
    b.report("1.0")
    task, _ = publish(gw, fw["id"], "pull", ["fa", "fb"])
    assert a.pull()["success"] is True and b.pull()["success"] is True

    # success false in a progress -> failed, with the message
    js = a.ok("upgrade/progress", {"version": "2.0", "progress": 30, "success": False,
                                   "message": "flash write error"})
    assert js == {"success": True}, js
    rec = wait_record(gw, task["id"], "fa", "failed")
    assert "flash write error" in rec["errorReason"], rec

    # a reply with success false fails the processing record
    js = b.ok("upgrade/reply", {"messageId": "r1", "success": False, "message": "low battery"})
    assert js == {"success": True}, js
    rec = wait_record(gw, task["id"], "fb", "failed")
    assert "low battery" in rec["errorReason"], rec

    # both finished: nothing more to report against
    st, js, _ = a.post("upgrade/progress", {"version": "2.0", "progress": 50, "success": True})
    assert st == 409 and js["code"] == "refused", (st, js)


def test_wrong_methods_and_topics(gw):
    d = Dev(gw, "sensor", "wm1")
    for method, path in (("GET", d.path("report")), ("PUT", d.path("pull")),
                         ("POST", d.path("upgrade")), ("POST", d.path("nope")),
                         ("POST", "/device/sensor/wm1/other/report"),
                         ("POST", "/device/sensor/firmware/report"),
                         ("POST", "/images/whatever"), ("DELETE", "/images/whatever")):
        st, js, _, body = http_request(gw.port, method, path, raw=b"{}")
        assert 400 <= st < 500, "%s %s -> %d %r" % (method, path, st, body[:200])
    assert get_dev(gw, "wm1") is None


# -- long-poll for pushes ------------------------------------------------------------------

class Poller(threading.Thread):
    def __init__(self, dev, wait, key="own"):
        super().__init__(daemon=True)
        self.dev, self.wait, self.key = dev, wait, key
        self.result = None
        self.error = None
        self.t_start = self.t_end = None

    def run(self):
        self.t_start = time.monotonic()
        try:
            self.result = self.dev.poll(self.wait, key=self.key, timeout=self.wait + 10)
        except Exception as e:          # reported by the test
            self.error = e
        self.t_end = time.monotonic()

    def done(self, timeout):
        self.join(timeout)
        assert not self.is_alive(), "the long-poll did not end within %.1f s" % timeout
        assert self.error is None, "the long-poll failed: %r" % (self.error,)
        return self.result


def check_push(up, fw, version, device_id, g):
    assert up["messageType"] == "UPGRADE_FIRMWARE" and up.get("messageId"), up
    assert up["deviceId"] == device_id, up
    check_reply(up, fw, version, g)


def test_long_poll_push_latency(gw, tmp_path):
    fw, image = make_fw(gw, tmp_path, productId="sensor", version="3.0", size=64 * 1024 + 1)
    d = Dev(gw, "sensor", "lp1")
    d.report("1.0")
    p = Poller(d, 10)
    p.start()
    time.sleep(0.5)
    assert p.is_alive(), "the long-poll answered before anything was published: %r" % (p.result,)
    t_pub = time.monotonic()
    task, res = publish(gw, fw["id"], "push", ["lp1"])
    assert res["added"] == 1 and res["pushed"] == 1, res
    st, up = p.done(5)
    took = p.t_end - t_pub
    assert st == 200, (st, up)
    assert took < 1.0, "the push arrived %.2f s after publishing (limit 1 s)" % took
    check_push(up, fw, "3.0", "lp1", gw)
    assert record_of(gw, task["id"], "lp1")["state"] == "processing"
    st, _, _, body = http_request(gw.port, "GET", "/images/" + fw["id"])
    assert st == 200 and body == image
    d.ok("upgrade/reply", {"messageId": up["messageId"], "success": True})
    d.ok("upgrade/progress", {"version": "3.0", "progress": 100, "complete": True,
                              "success": True})
    wait_record(gw, task["id"], "lp1", "success")


def test_pending_push_answered_at_once(gw, tmp_path):
    """A push published while nobody polls waits; the next poll, even
    without ?wait, answers it at once and the record becomes processing."""
    fw, _ = make_fw(gw, tmp_path, productId="sensor", version="3.0", size=5000)
    mk_dev(gw, "lp2", productId="sensor", firmwareVersion="1.0")
    task, res = publish(gw, fw["id"], "push", ["lp2"])
    assert res["added"] == 1 and res["pushed"] == 0, res
    assert record_of(gw, task["id"], "lp2")["state"] == "waiting"
    d = Dev(gw, "sensor", "lp2")
    t0 = time.monotonic()
    st, up = d.poll()
    assert st == 200 and time.monotonic() - t0 < 1.0, (st, up)
    check_push(up, fw, "3.0", "lp2", gw)
    assert record_of(gw, task["id"], "lp2")["state"] == "processing"
    # another device with nothing pending: 204 at once
    t0 = time.monotonic()
    st, js = Dev(gw, "sensor", "lp3").poll()
    assert st == 204 and time.monotonic() - t0 < 1.0, (st, js)


def test_abandoned_long_poll_loses_no_push(gw, tmp_path):
    """A client that starts a long-poll and goes away must not swallow the
    next push: it stays pending for the device's next poll."""
    fw, _ = make_fw(gw, tmp_path, productId="sensor", version="3.0", size=5000)
    d = Dev(gw, "sensor", "lp4")
    d.report("1.0")
    s = socket.create_connection((HOST, gw.port), timeout=5)
    s.sendall(("GET %s?wait=20 HTTP/1.1\r\nHost: x\r\n\r\n" % d.path("upgrade")).encode())
    time.sleep(0.3)
    s.close()
    time.sleep(0.5)
    task, res = publish(gw, fw["id"], "push", ["lp4"])
    assert res["added"] == 1, res
    st, up = d.poll(wait=3)
    assert st == 200, "the push was lost to the abandoned long-poll: %d %r, record %r" % (
        st, up, record_of(gw, task["id"], "lp4"))
    check_push(up, fw, "3.0", "lp4", gw)


def test_two_polls_one_push(gw, tmp_path):
    """Two long-polls of the same device: the push is answered exactly once."""
    fw, _ = make_fw(gw, tmp_path, productId="sensor", version="3.0", size=5000)
    d = Dev(gw, "sensor", "lp5")
    d.report("1.0")
    p1 = Poller(d, 3)
    p1.start()
    time.sleep(0.3)
    p2 = Poller(d, 3)
    p2.start()
    time.sleep(0.3)
    publish(gw, fw["id"], "push", ["lp5"])
    r = sorted([p1.done(10), p2.done(10)], key=lambda x: x[0])
    assert [x[0] for x in r] == [200, 204], r
    check_push(r[0][1], fw, "3.0", "lp5", gw)


def test_wait_bound(gw_factory):
    g = gw_factory(config_extra=http_section(max_poll_wait=2))
    d = Dev(g, "sensor", "wb1")
    d.report("1.0")
    t0 = time.monotonic()
    st, js = d.poll(wait=30)
    took = time.monotonic() - t0
    assert st == 204, (st, js)
    assert 1.8 <= took <= 3.0, "wait=30 with max_poll_wait=2 took %.2f s" % took
    t0 = time.monotonic()
    st, js = d.poll(wait=1)
    took = time.monotonic() - t0
    assert st == 204 and 0.8 <= took <= 2.0, (st, took)
    t0 = time.monotonic()
    st, js = d.poll()
    assert st == 204 and time.monotonic() - t0 < 1.0, (st, js)
    # odd waits: refused, or clamped to the bound; never a hang
    for q in ("abc", "-1", "", "1.5", "99999999999999999999", "4294967296", "0x10"):
        t0 = time.monotonic()
        st, _, _, _ = http_request(g.port, "GET", d.path("upgrade") + "?wait=" + q, timeout=10)
        took = time.monotonic() - t0
        assert (st == 400 and took < 1.0) or (st == 204 and took <= 3.0), (q, st, took)


def test_stop_during_long_poll(gw_factory):
    """SIGTERM with a long-poll waiting: the daemon still exits 0 at once
    (conftest checks 2 s) and the client gets a 204 or a close."""
    g = gw_factory()
    d = Dev(g, "sensor", "sd1")
    d.report("1.0")
    p = Poller(d, 30)
    p.start()
    time.sleep(0.5)
    assert p.is_alive()
    rc, took = g.stop()
    assert rc == 0 and took < 2.0, (rc, took)
    p.join(5)
    assert not p.is_alive(), "the long-poll client hangs after the daemon exited"
    assert p.error is not None or p.result[0] == 204, (p.result, p.error)


# -- token auth ----------------------------------------------------------------------------

def test_device_token_auth(gw_factory, tmp_path):
    g = gw_factory(token=TOKEN, config_extra=http_section(device_auth="token"))
    fw, _ = make_fw(g, tmp_path, productId="sensor", version="2.0", size=3000)
    mk_dev(g, "ta1", productId="sensor", firmwareVersion="1.0", secureKey="k-right-1")
    d = Dev(g, "sensor", "ta1", key="k-right-1")

    d.report("1.1")
    assert get_dev(g, "ta1")["firmwareVersion"] == "1.1"
    for key in ("k-wrong", None, "", TOKEN, "k-right-1 ", "K-RIGHT-1"):
        st, js, out = d.post("report", {"version": "6.6"}, key=key)
        assert st == 401, "key %r -> %d %r" % (key, st, out)
    assert get_dev(g, "ta1")["firmwareVersion"] == "1.1", "a refused report changed the device"
    # other schemes than Bearer
    for hdr in ("Basic azpyaWdodC0x", "k-right-1", "Bearer"):
        st, _, _, _ = http_request(g.port, "POST", d.path("report"),
                                   raw=b'{"version":"6.6"}', headers={"Authorization": hdr})
        assert st == 401, (hdr, st)

    task, _ = publish(g, fw["id"], "pull", ["ta1"])
    st, js, _ = d.post("pull", {"messageId": "m1"}, key="k-wrong")
    assert st == 401, (st, js)
    assert record_of(g, task["id"], "ta1")["state"] == "waiting"
    rep = d.pull()
    assert rep["success"] is True, rep
    st, js = d.poll(key="k-wrong")
    assert st == 401, (st, js)
    st, js = d.poll(key=None)
    assert st == 401, (st, js)
    st, js, _ = d.post("upgrade/progress", {"version": "2.0", "progress": 100, "complete": True,
                                            "success": True}, key=None)
    assert st == 401 and record_of(g, task["id"], "ta1")["state"] == "processing", st

    # an unknown device has no secureKey: refused, not created
    st, _, _ = Dev(g, "sensor", "ta-new").post("report", {"version": "1.0"}, key="anything")
    assert st == 401, st
    st, _, _ = Dev(g, "sensor", "ta-new").post("report", {"version": "1.0"}, key=None)
    assert st == 401, st
    assert get_dev(g, "ta-new") is None

    # a new key through PUT /api/devices: the old one stops working
    g.ok("PUT", "/api/devices/ta1", {"secureKey": "k-right-2"})
    st, _, _ = d.post("report", {"version": "1.2"})
    assert st == 401, st
    d.key = "k-right-2"
    d.ok("upgrade/progress", {"version": "2.0", "progress": 100, "complete": True,
                              "success": True})
    wait_record(g, task["id"], "ta1", "success")

    # /api/ keeps its own token: a device key does not open it, the api token
    # does not open /device
    st, _, _ = g.req("GET", "/api/devices", headers={"Authorization": "Bearer k-right-2"})
    assert st == 401, st
    st, _, _ = d.post("report", {"version": "1.3"}, key=TOKEN)
    assert st == 401, st


def test_device_auth_none_needs_nothing(gw_factory):
    g = gw_factory(token=TOKEN)        # an api token does not protect /device
    d = Dev(g, "sensor", "an1")
    d.report("1.0")
    assert get_dev(g, "an1")["productId"] == "sensor"
    st, js = d.poll()
    assert st == 204, (st, js)


# -- images ---------------------------------------------------------------------------------

def test_image_headers_get_head(gw, tmp_path):
    fw, image = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=123457)
    for method in ("GET", "HEAD"):
        st, _, hd, body = http_request(gw.port, method, "/images/" + fw["id"])
        assert st == 200, (method, st)
        assert int(hd["Content-Length"]) == len(image), (method, dict(hd))
        assert hd["ETag"] == '"%s"' % fw["sign"], (method, hd["ETag"])
        assert hd.get("Accept-Ranges") == "bytes", (method, dict(hd))
        lm = email.utils.parsedate_to_datetime(hd["Last-Modified"])
        assert lm is not None and lm.tzinfo is not None, hd["Last-Modified"]
        assert body == (image if method == "GET" else b""), (method, len(body))
    st, _, hd, _ = http_request(gw.port, "GET", "/images/" + fw["id"],
                                headers={"Range": "bytes=10-19"})
    assert st == 206 and hd["Content-Range"] == "bytes 10-19/%d" % len(image), (st, dict(hd))
    st, _, hd, _ = http_request(gw.port, "GET", "/images/" + fw["id"],
                                headers={"Range": "bytes=%d-" % len(image)})
    assert st == 416 and hd["Content-Range"] == "bytes */%d" % len(image), (st, dict(hd))


def test_image_unknown_and_not_ready(gw_factory, tmp_path):
    g = gw_factory()
    st, _, _, _ = http_request(g.port, "GET", "/images/no-such-fw")
    assert st == 404, st
    st, _, _, _ = http_request(g.port, "HEAD", "/images/no-such-fw")
    assert st == 404, st

    # a firmware whose image is not on the gateway (state none): 503
    data = os.urandom(7777)
    fw = g.ok("POST", "/api/firmware", {"productId": "sensor", "name": "n", "version": "2.0",
                                        "size": len(data), "signMethod": "sha256",
                                        "sign": hashlib.sha256(data).hexdigest()}, expect=201)
    for method in ("GET", "HEAD"):
        st, _, hd, body = http_request(g.port, method, "/images/" + fw["id"],
                                       headers={"Range": "bytes=0-9"})
        assert st == 503, (method, st, body[:200])
        assert re.fullmatch(r"\d+", hd.get("Retry-After", "")), dict(hd)
        assert data[:10] not in body
    # once uploaded, the same url serves it
    st, js, _ = g.req("PUT", "/api/firmware/%s/image" % fw["id"], raw=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert st == 200 and js["image"]["state"] == "ready", (st, js)
    st, _, _, body = http_request(g.port, "GET", "/images/" + fw["id"])
    assert st == 200 and body == data


class StallServer:
    """Answers one GET with a 200, a Content-Length and a few bytes, then
    stalls until closed: a firmware url whose download never ends."""

    def __init__(self, size):
        self.size = size
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((HOST, 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.conns = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.ls.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            try:
                c.settimeout(2)
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                          b"Content-Type: application/octet-stream\r\n\r\n" % self.size
                          + b"\0" * 1000)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.t.join(2)
        for c in self.conns:
            c.close()
        self.ls.close()


def test_image_downloading_503(gw_factory, tmp_path):
    srv = StallServer(1 << 20)
    try:
        g = gw_factory()
        fw = g.ok("POST", "/api/firmware", {
            "productId": "sensor", "name": "n", "version": "2.0", "size": 1 << 20,
            "url": "http://%s:%d/img.bin" % (HOST, srv.port), "signMethod": "sha256",
            "sign": "0" * 64}, expect=201)
        mk_dev(g, "dl1", productId="sensor", firmwareVersion="1.0")
        publish(g, fw["id"], "pull", ["dl1"])
        wait_until(lambda: g.ok("GET", "/api/firmware/" + fw["id"])["image"]["state"]
                   == "downloading", "the image to be downloading")
        wait_until(lambda: srv.conns, "the gateway to connect to the stalling server")
        for method in ("GET", "HEAD"):
            st, _, hd, body = http_request(g.port, method, "/images/" + fw["id"])
            assert st == 503, (method, st, body[:200])
            assert re.fullmatch(r"\d+", hd.get("Retry-After", "")), dict(hd)
            assert b"\0" * 100 not in body, "unverified bytes were served"
        # the device is told about it, and the image url is still refused
        rep = Dev(g, "sensor", "dl1").pull()
        if rep["success"]:
            st, _, _, _ = http_request(g.port, "GET", "/images/" + fw["id"])
            assert st == 503, st
    finally:
        srv.close()


def test_200_parallel_downloads(gw, tmp_path):
    size = 4 * 1024 * 1024 + 12345
    fw, image = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=size)
    del image
    n = 200
    results = [None] * n
    start = threading.Barrier(n, timeout=30)

    def one(i):
        try:
            start.wait()
            conn = http.client.HTTPConnection(HOST, gw.port, timeout=60)
            try:
                conn.request("GET", "/images/" + fw["id"])
                r = conn.getresponse()
                h = hashlib.sha256()
                got = 0
                while True:
                    b = r.read(256 * 1024)
                    if not b:
                        break
                    h.update(b)
                    got += len(b)
                results[i] = (r.status, got, h.hexdigest())
            finally:
                conn.close()
        except Exception as e:
            results[i] = ("error", repr(e))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, 180 - (time.monotonic() - t0)))
    assert not any(t.is_alive() for t in threads), "downloads still running after 180 s"
    bad = [(i, r) for i, r in enumerate(results) if r != (200, size, fw["sign"])]
    assert not bad, "%d of %d downloads failed, e.g. %r" % (len(bad), n, bad[:5])
    assert gw.ok("GET", "/api/health")["status"] == "ok"


# -- hostile input ----------------------------------------------------------------------------

def refused_or_closed(st):
    """A 4xx answer, or the connection closed without one."""
    return st is None or 400 <= st < 500


HOSTILE_REQUESTS = [
    # path traversal, raw and encoded
    b"GET /images/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/%2e%2e%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images//etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/..%5c..%5cetc%5cpasswd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /device/p/../x/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /device/p/%2e%2e/x/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /device/../../firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    # encoded slashes inside ids
    b"POST /device/p%2fq/d/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /device/p/d%2fe/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /images/FWID%2f..%2f..%2fotagw.db HTTP/1.1\r\nHost: x\r\n\r\n",
    # NUL bytes
    b"GET /images/FWID%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /images/FWID%00.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /device/p/d%00x/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /device/p%00/d/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /images/FWID\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    # ids that are not ids, over-long ids
    b"POST /device/p/d%20x/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /device/p/" + b"d" * 65 + b"/firmware/report HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    b"POST /device/" + b"p" * 65 + b"/d/firmware/report HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    b"POST /device//d/firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /device/p//firmware/report HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
]


def test_hostile_paths(gw, tmp_path):
    fw, image = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=5000)
    Dev(gw, "sensor", "keep").report("1.0")
    before = device_ids(gw)
    fails = []
    for req in HOSTILE_REQUESTS:
        req = req.replace(b"FWID", fw["id"].encode())
        st, resp = gw.raw(req, timeout=5.0)
        if st == NO_ANSWER:
            fails.append((req[:80], "no answer within 5 s, connection left open"))
        elif not refused_or_closed(st):
            fails.append((req[:80], resp[:200]))
        if b"root:" in resp or b"SQLite format" in resp:
            fails.append((req[:80], "leaked a file: %r" % resp[:200]))
        # a following good request still works
        st2, _, _, body = http_request(gw.port, "GET", "/images/" + fw["id"])
        assert st2 == 200 and body == image, "after %r: %d" % (req[:80], st2)
    assert not fails, "\n".join("%r -> %r" % f for f in fails)
    assert device_ids(gw) == before, "hostile paths created devices"
    good_device_flow(gw, tmp_path, "good-paths")


def test_encoded_slash_is_the_decoded_path(gw, tmp_path):
    """libwebsockets 4.1 decodes %2f before any callback sees the path and
    keeps no raw copy, so otagw cannot tell %2f from "/" (README: Limits).
    What must hold: an encoded path reaches exactly what its decoded
    spelling reaches, with the same answer, so encoding smuggles nothing
    past routing or checks (test_auth_not_bypassed_by_encoding covers auth)."""
    fw, image = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=5000)
    body = b'{"version":"1.0"}'
    pairs = (("/device/sensor/es1/firmware%2freport", "/device/sensor/es1b/firmware/report"),
             ("/device/sensor/es2%2ffirmware%2Freport", "/device/sensor/es2b/firmware/report"),
             ("/device/sensor/es3/firmware%2fnope", "/device/sensor/es3b/firmware/nope"),
             ("/device%2fsensor/es4/firmware/report", "/device/sensor/es4b/firmware/report"))
    for enc, plain in pairs:
        got = []
        for path in (enc, plain):
            st, resp = gw.raw(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                              b"\r\nContent-Length: %d\r\n\r\n%s"
                              % (path.encode(), len(body), body))
            got.append(st)
        assert got[0] == got[1], "%s -> %r but %s -> %r" % (enc, got[0], plain, got[1])
    ids = set(device_ids(gw))
    for name, reported in (("es1", True), ("es2", True), ("es3", False), ("es4", True)):
        assert (name in ids) == reported and (name + "b" in ids) == reported, (name, sorted(ids))
    for path in ("/images%2f" + fw["id"], "/images/%2f" + fw["id"]):
        st, _, _, data = http_request(gw.port, "GET", path)
        st2, _, _, data2 = http_request(gw.port, "GET", path.replace("%2f", "/"))
        assert (st, data) == (st2, data2), (path, st, st2)


def test_auth_not_bypassed_by_encoding(gw_factory):
    """With api_token and device_auth = token, no spelling of a path
    (encoded letters or slashes, dot segments, doubled slashes) skips the
    check."""
    g = gw_factory(token=TOKEN, config_extra=http_section(device_auth="token"))
    mk_dev(g, "ab1", productId="sensor", firmwareVersion="1.0", secureKey="k-ab1")
    body = b'{"version":"6.6"}'
    fails = []
    for path in ("/api%2fdevices", "/api%2Fdevices", "/%61pi/devices", "//api/devices",
                 "/./api/devices", "/x/../api/devices", "/api/./devices", "/api//devices"):
        st, resp = g.raw(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        if st is not None and not 400 <= st < 500:
            fails.append("GET %s -> %r" % (path, resp[:120]))
    for path in ("/device%2fsensor/ab1/firmware/report", "/device/sensor/ab1/firmware%2freport",
                 "/%64evice/sensor/ab1/firmware/report", "//device/sensor/ab1/firmware/report",
                 "/x/../device/sensor/ab1/firmware/report",
                 "/device/sensor/ab1/./firmware/report", "/device/sensor/%61b1/firmware/report"):
        st, resp = g.raw(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                         % (path.encode(), len(body), body))
        if st is not None and not 400 <= st < 500:
            fails.append("POST %s -> %r" % (path, resp[:120]))
    assert not fails, "\n".join(fails)
    assert get_dev(g, "ab1")["firmwareVersion"] == "1.0"


def test_hostile_ranges(gw, tmp_path):
    """Absurd, overflowing and malformed ranges: the whole image (200) or
    416 with Content-Range bytes */SIZE; never a wrong 206 or a 5xx."""
    fw, image = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=10000)
    size = len(image)
    for rng in ("bytes=99999999999999999999-", "bytes=5-3", "bytes=-0",
                "bytes=18446744073709551615-", "bytes=18446744073709551616-",
                "bytes=0-18446744073709551616", "bytes=-18446744073709551616",
                "bytes=-99999999999999999999", "bytes=--5", "bytes=5--6", "bytes=-5-",
                "bytes=+5-10", "bytes= 5-10x", "bytes=0x10-0x20", "bytes=abc", "bytes=",
                "bytes=-", "items=0-5", "bytes=0-1,5-9", "bytes=0-0,-1", "bytes=,",
                "bytes=1-2-3", "bytes=" + "9" * 5000 + "-"):
        st, _, hd, body = http_request(gw.port, "GET", "/images/" + fw["id"],
                                       headers={"Range": rng})
        if st == 200:
            assert body == image, (rng, len(body))
        elif st == 416:
            assert hd.get("Content-Range") == "bytes */%d" % size, (rng, dict(hd))
        elif st == 206:
            # only a reading of the header that makes sense (suffix 0 is not one)
            m = re.fullmatch(r"bytes (\d+)-(\d+)/%d" % size, hd.get("Content-Range", ""))
            assert m, (rng, dict(hd))
            a, b = int(m.group(1)), int(m.group(2))
            assert body == image[a:b + 1] and len(body) > 0, rng
            assert rng in ("bytes=+5-10", "bytes= 5-10x"), \
                "Range %r answered 206 %s" % (rng, hd["Content-Range"])
        else:
            raise AssertionError("Range %r -> %d" % (rng, st))
        st2, _, _, body2 = http_request(gw.port, "GET", "/images/" + fw["id"],
                                        headers={"Range": "bytes=0-9"})
        assert st2 == 206 and body2 == image[:10], (rng, st2)
    # the spec's "malformed Range -> 200 whole" cases, strictly
    for rng in ("items=0-5", "bytes=0-1,5-9", "bytes=abc", "bytes=", "bytes=1-2-3"):
        st, _, _, body = http_request(gw.port, "GET", "/images/" + fw["id"],
                                      headers={"Range": rng})
        assert st == 200 and body == image, (rng, st)
    # suffix zero is unsatisfiable (RFC 9110 14.1.1)
    st, _, hd, _ = http_request(gw.port, "GET", "/images/" + fw["id"],
                                headers={"Range": "bytes=-0"})
    assert st == 416 and hd["Content-Range"] == "bytes */%d" % size, (st, dict(hd))


def test_hostile_bodies(gw, tmp_path):
    """Invalid JSON, wrong types, NUL bytes, invalid UTF-8, deep nesting and
    over-long values: 400 on every topic, with a record in progress that a
    valid body could have changed; nothing changes."""
    fw, _ = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=3000)
    d = Dev(gw, "sensor", "hb1")
    d.report("1.0")
    task, _ = publish(gw, fw["id"], "pull", ["hb1"])
    assert d.pull()["success"] is True
    bodies = [b"{bad", b"{" * 10000, b"[" * 100000, b'{"version":"2.0"' + b" " * 1000,
              b'{"version":"\x00"}', b'{"version":"2.0"}\x00',
              b"\xff\xfe\xfd", b'{"version":"\xc3\x28"}',
              b'{"version":"' + b"9" * 100000 + b'"}', b'{"properties":' + b"[" * 5000 + b"}",
              b'{"version":"2.0","properties":"x"}', b'{"version":["2.0"]}',
              b'{"version":"2.0","progress":1e400}', b'{"version":"2.0","progress":-5}',
              b'{"version":"2.0","progress":101}', b'{"version":"2.0","progress":"50"}',
              b'{"version":"2.0","complete":"yes"}', b'{"messageId":{"a":1}}', b'[]', b'null',
              b'"text"', b'42', b'{"version":"2.0"}{"version":"3.0"}']
    for topic in ("report", "pull", "upgrade/progress", "upgrade/reply"):
        for b in bodies:
            st, js, out = d.post(topic, None, raw=b)
            assert st == 400, "%s %r -> %d %r" % (topic, b[:60], st, out[:200])
            assert js and js.get("success") is False, (topic, b[:60], out[:200])
    # over the 1 MiB body cap (the daemon may answer and close before the
    # body is sent)
    body = (b'{"version":"2.0","progress":100,"complete":true,"success":true,"pad":"'
            + b"1" * (2 << 20) + b'"}')
    st, resp = gw.raw(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (d.path("upgrade/progress").encode(),
                                                        len(body)) + body, timeout=20)
    assert st == 413, (st, resp[:200])
    dev = get_dev(gw, "hb1")
    assert dev["firmwareVersion"] == "1.0", dev
    rec = record_of(gw, task["id"], "hb1")
    assert (rec["state"], rec["progress"]) == ("processing", 0), rec
    good_device_flow(gw, tmp_path, "good-bodies")


def test_slowloris(gw, tmp_path):
    """A client sending one header byte per second is answered 4xx or
    closed within 30 s, and meanwhile the gateway serves others."""
    fw, image = make_fw(gw, tmp_path, productId="sensor", version="2.0", size=5000)
    s = socket.create_connection((HOST, gw.port), timeout=5)
    req = b"GET /images/" + fw["id"].encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    outcome = {}

    def drip():
        t0 = time.monotonic()
        s.settimeout(1.0)
        for ch in req:
            if time.monotonic() - t0 > 30:
                outcome["r"] = ("open", time.monotonic() - t0)
                return
            try:
                s.send(bytes([ch]))
            except OSError as e:
                outcome["r"] = ("closed", time.monotonic() - t0, repr(e))
                return
            try:
                got = s.recv(4096)
                outcome["r"] = ("closed" if not got else "answer", time.monotonic() - t0, got)
                return
            except socket.timeout:
                pass
            except OSError as e:
                outcome["r"] = ("closed", time.monotonic() - t0, repr(e))
                return
        outcome["r"] = ("open", time.monotonic() - t0)

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:
        # others are served promptly while the slow client drips
        for i in range(3):
            time.sleep(1.0)
            t0 = time.monotonic()
            st, _, _, body = http_request(gw.port, "GET", "/images/" + fw["id"], timeout=2)
            assert st == 200 and body == image and time.monotonic() - t0 < 1.0
            Dev(gw, "sensor", "sl%d" % i).report("1.0")
        t.join(40)
        assert not t.is_alive()
    finally:
        s.close()
    r = outcome["r"]
    assert r[0] in ("closed", "answer"), "slowloris still connected after %.0f s" % r[1]
    if r[0] == "answer":
        m = re.match(rb"HTTP/1\.[01] (\d{3})", r[2])
        assert m and 400 <= int(m.group(1)) < 500, r
    good_device_flow(gw, tmp_path, "good-slow")
