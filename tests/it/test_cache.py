# SPDX-License-Identifier: MIT
"""Image cache (README "Image cache"): downloads from a real nginx on
127.0.0.1 (plain and TLS with a CA of our own), verification (sha256, md5,
ecdsa-p256, size), retries vs permanent failures (checked in nginx's access
log), dropped connections and servers without Range (small Python servers
in cachesrv.py), uploads (PUT /api/firmware/{id}/image), the quota with LRU
eviction and pinning, DELETE /api/cache, reconciliation at start-up, a
256 MiB upload with flat RSS, and host name lookups off the loop (a DNS
server that never answers, inside `unshare --mount`).

One nginx per module (fixture ngx) serves files each test writes under
www/ with names of its own; /loop answers 302 to itself, /busy 503 with
Retry-After: 1; a TLS server on another port has a certificate for
"localhost" signed by a CA made here. Daemons get [cache] max_retry_delay
= 1 so retries are quick."""

import hashlib
import os
import sqlite3
import stat
import sys
import threading
import time

import pytest

import cachesrv
from cachesrv import (cache_items, cache_listing, image_of, put_bytes, put_image,
                      publish_download, rand_bytes, uniq, wait_for, wait_image)
from otagw_it import HOST, free_port, http_request

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import devsim  # noqa: E402

CACHE = "\n[cache]\nmax_retry_delay = 1\ntimeout = 5\n"
WAIT = 20.0          # s: bound for a small download to finish (with a few retries)
MiB = 1 << 20


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return cachesrv.make_tls(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def ngx(tmp_path_factory, tls):
    n = cachesrv.Nginx(str(tmp_path_factory.mktemp("nginx")), tls=(tls[1], tls[2]),
                       server_extra="    location = /loop { return 302 /loop; }\n"
                                    "    location = /busy { add_header Retry-After 1 always;"
                                    " return 503; }\n")
    n.start()
    yield n
    n.stop()


def cachegw(gw_factory, extra=""):
    return gw_factory(config_extra=CACHE + extra)


def assert_not_cached(gw, digest=None):
    """No final image named digest (when given) and, within a second, no
    partial left in cache/partial/."""
    finals, _ = cache_listing(gw)
    if digest:
        assert digest not in finals, "image %s is in cache/ although it failed" % digest
    wait_for(lambda: not cache_listing(gw)[1] or None, 1.0, "no partial left")
    for f in finals:
        p = os.path.join(cachesrv.cache_dir(gw), f)
        if cachesrv.HEX64.match(f):
            assert cachesrv.sha256_file(p) == f, "cache/%s does not match its name" % f


def assert_cached(gw, data):
    d = sha(data)
    p = os.path.join(cachesrv.cache_dir(gw), d)
    assert os.path.isfile(p), "cache/%s missing; cache/ has %r" % (d, cache_listing(gw))
    with open(p, "rb") as f:
        assert f.read() == data, "cache/%s does not hold the image" % d
    return p


# -- downloads ---------------------------------------------------------------------

def test_download_ready_listed_and_pinned(gw_factory, ngx):
    gw = cachegw(gw_factory)
    data = rand_bytes(1, 3 * MiB + 12345)
    path = ngx.put(uniq("ok") + ".bin", data)
    fw, task = publish_download(gw, ngx.url(path), size=len(data), sign=sha(data))
    img = wait_image(gw, fw, "ready", WAIT, never=("failed",))
    assert img["sha256"] == sha(data), img
    assert img["bytes"] == len(data) and img["total"] == len(data), img
    p = assert_cached(gw, data)
    assert not stat.S_IMODE(os.stat(p).st_mode) & 0o222, "cached image is writable: %o" % \
        os.stat(p).st_mode
    assert cache_listing(gw)[1] == [], "partials left after the download"
    items, js = cache_items(gw)
    assert sha(data) in items, js
    it = items[sha(data)]
    assert it["size"] == len(data) and it["firmwareIds"] == [fw], it
    assert it["pinned"] is True, "image of a task with a waiting record is not pinned: %r" % it
    assert js["usedBytes"] == len(data) and js["total"] == 1, js
    assert js["maxBytes"] == 1073741824 and js["freeDiskBytes"] > 0, js
    assert js["downloads"] == 0, js
    assert [e[:2] for e in ngx.requests(path)] == [(200, None)], ngx.requests(path)
    gw.ok("POST", "/api/tasks/%s/cancel" % task)
    assert cache_items(gw)[0][sha(data)]["pinned"] is False


def test_md5_sign(gw_factory, ngx):
    gw = cachegw(gw_factory)
    data = rand_bytes(2, 700001)
    path = ngx.put(uniq("md5") + ".bin", data)
    fw, _ = publish_download(gw, ngx.url(path), size=len(data),
                             sign=hashlib.md5(data).hexdigest().upper(), method="MD5")
    img = wait_image(gw, fw, "ready", WAIT, never=("failed",))
    assert img["sha256"] == sha(data), img
    assert_cached(gw, data)


def test_tampered_image_fails_with_expected_and_got(gw_factory, ngx):
    gw = cachegw(gw_factory)
    good = rand_bytes(3, 1 * MiB)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    path = ngx.put(uniq("tampered") + ".bin", bytes(bad))
    fw, _ = publish_download(gw, ngx.url(path), size=len(good), sign=sha(good))
    img = wait_image(gw, fw, "failed", WAIT, never=("ready",))
    r = img.get("reason", "").lower()
    assert "expected" in r and "got" in r, img
    assert_not_cached(gw, sha(bytes(bad)))
    assert cache_items(gw)[1]["total"] == 0


def test_body_past_size_fails(gw_factory, ngx):
    gw = cachegw(gw_factory)
    data = rand_bytes(4, 600000)
    path = ngx.put(uniq("big") + ".bin", data)
    fw, _ = publish_download(gw, ngx.url(path), size=len(data) - 1000)
    img = wait_image(gw, fw, "failed", WAIT, never=("ready",))
    assert "size" in img.get("reason", "").lower(), img
    assert_not_cached(gw, sha(data))


def test_body_shorter_than_size_never_ready(gw_factory, ngx):
    gw = cachegw(gw_factory)
    data = rand_bytes(5, 600000)
    path = ngx.put(uniq("short") + ".bin", data)
    fw, _ = publish_download(gw, ngx.url(path), size=len(data) + 1000)
    t_end = time.monotonic() + 4.0
    states = set()
    while time.monotonic() < t_end:
        img = image_of(gw, fw)
        states.add(img["state"])
        assert img["state"] != "ready", "a short body became ready: %r" % img
        time.sleep(0.1)
    assert img["state"] in ("failed", "downloading"), img
    if img["state"] == "downloading":
        assert "retry" in img.get("reason", "").lower(), img
    assert sha(data) not in cache_listing(gw)[0]


def test_dropped_connections_then_ready(gw_factory):
    gw = cachegw(gw_factory)
    data = rand_bytes(6, 2 * MiB + 77)
    srv = cachesrv.FileServer(data, drops=3).start()
    try:
        fw, _ = publish_download(gw, srv.url(), size=len(data), sign=sha(data))
        img = wait_image(gw, fw, "ready", 30.0, never=("failed",))
        assert img["sha256"] == sha(data), img
        assert_cached(gw, data)
        reqs = list(srv.requests)
        assert len(reqs) >= 4 and [r["cut"] for r in reqs[:3]] == [True] * 3, reqs
        assert all(0 < r["sent"] < len(data) for r in reqs[:3]), reqs
    finally:
        srv.stop()
    assert cache_listing(gw)[1] == []


def test_server_ignoring_range_restarts_from_zero(gw_factory):
    """The first response is cut after 6 MiB (past the 4 MiB checkpoint), so
    the next attempt asks for a Range; this server ignores it (200, the
    whole image) and the download must start over and end right."""
    gw = cachegw(gw_factory)
    data = rand_bytes(7, 10 * MiB + 5)
    srv = cachesrv.FileServer(data, drops=1, drop_at=6 * MiB, ranges=False).start()
    try:
        fw, _ = publish_download(gw, srv.url(), size=len(data), sign=sha(data))
        img = wait_image(gw, fw, "ready", 40.0, never=("failed",))
        assert img["sha256"] == sha(data), img
        assert_cached(gw, data)
        reqs = list(srv.requests)
        assert reqs[0]["cut"] and reqs[0]["sent"] == 6 * MiB, reqs
        resumed = [r for r in reqs[1:] if r["range"]]
        assert resumed, "no attempt after the cut asked for a Range: %r" % reqs
        assert resumed[0]["range"].startswith("bytes=") and \
            resumed[0]["range"] != "bytes=0-", resumed
        assert all(r["status"] == 200 for r in reqs), reqs
    finally:
        srv.stop()
    assert cache_listing(gw)[1] == []


def test_redirect_loop_fails(gw_factory, ngx):
    gw = cachegw(gw_factory)
    fw, _ = publish_download(gw, ngx.url("/loop"), size=1000)
    img = wait_image(gw, fw, "failed", WAIT, never=("ready",))
    assert "redirect" in img.get("reason", "").lower(), img
    n = len(ngx.requests("/loop"))
    assert 5 <= n <= 7, "a redirect loop took %d requests (limit 5 redirects)" % n
    assert_not_cached(gw)


def test_404_fails_at_once_without_retry(gw_factory, ngx):
    gw = cachegw(gw_factory)
    path = "/%s.bin" % uniq("absent")
    fw, _ = publish_download(gw, ngx.url(path), size=1000)
    t0 = time.monotonic()
    img = wait_image(gw, fw, "failed", 5.0, never=("ready",))
    assert time.monotonic() - t0 < 5.0
    assert "404" in img.get("reason", ""), img
    time.sleep(2.5)     # max_retry_delay = 1: a retry would have happened by now
    assert [e[0] for e in ngx.requests(path)] == [404], ngx.requests(path)
    assert image_of(gw, fw)["state"] == "failed"
    assert_not_cached(gw)


def test_503_with_retry_after_is_retried(gw_factory, ngx):
    gw = cachegw(gw_factory)
    fw, _ = publish_download(gw, ngx.url("/busy"), size=1000)
    wait_for(lambda: len(ngx.requests("/busy")) >= 2 or None, 10.0,
             "a second request for /busy")
    img = image_of(gw, fw)
    assert img["state"] == "downloading", "a 503 is transient: %r" % img
    assert "retry" in img.get("reason", "").lower(), img
    assert all(e[0] == 503 for e in ngx.requests("/busy"))


def test_https_unknown_ca_fails_then_ca_file_works(gw_factory, ngx, tls):
    data = rand_bytes(8, 900000)
    path = ngx.put(uniq("tls") + ".bin", data)
    url = ngx.ssl_url(path)
    gw = cachegw(gw_factory)
    fw, _ = publish_download(gw, url, size=len(data), sign=sha(data))
    img = wait_image(gw, fw, "failed", WAIT, never=("ready",))
    assert "certificate" in img.get("reason", "").lower(), img
    assert ngx.requests(path) == [], "a request went through an unverified TLS connection"
    assert_not_cached(gw)

    gw2 = cachegw(gw_factory, "ca_file = %s\n" % tls[0])
    fw2, _ = publish_download(gw2, url, size=len(data), sign=sha(data))
    img = wait_image(gw2, fw2, "ready", WAIT, never=("failed",))
    assert img["sha256"] == sha(data), img
    assert_cached(gw2, data)
    assert [e[0] for e in ngx.requests(path)] == [200]


# -- ecdsa-p256 ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("keys"))
    return {"good": cachesrv.make_ec_key(d, "good"), "other": cachesrv.make_ec_key(d, "other")}


@pytest.mark.parametrize("case", ["good", "other-key", "flipped-byte"])
def test_ecdsa_p256(gw_factory, ngx, keys, case):
    gw = cachegw(gw_factory, "signing_key = %s\n" % keys["good"][1])
    data = rand_bytes(9, 1 * MiB + 3)
    name = uniq("ec") + ".bin"
    path = ngx.put(name, data)
    signer = keys["other" if case == "other-key" else "good"][0]
    sig = cachesrv.ecdsa_sign_b64(signer, os.path.join(ngx.www, name))
    served = data
    if case == "flipped-byte":
        served = bytearray(data)
        served[12345] ^= 0x80
        served = bytes(served)
        ngx.put(name, served)
    fw, _ = publish_download(gw, ngx.url(path), size=len(data), sign=sig, method="ecdsa-p256")
    if case == "good":
        img = wait_image(gw, fw, "ready", WAIT, never=("failed",))
        assert img["sha256"] == sha(data), img
        assert_cached(gw, data)
    else:
        img = wait_image(gw, fw, "failed", WAIT, never=("ready",))
        assert img.get("reason"), img
        assert_not_cached(gw, sha(served))
        assert cache_items(gw)[1]["total"] == 0


def test_ecdsa_upload_bad_signature_422(gw_factory, keys, tmp_path):
    gw = cachegw(gw_factory, "signing_key = %s\n" % keys["good"][1])
    data = rand_bytes(10, 200000)
    p = tmp_path / "img.bin"
    p.write_bytes(data)
    good = cachesrv.ecdsa_sign_b64(keys["good"][0], str(p))
    other = cachesrv.ecdsa_sign_b64(keys["other"][0], str(p))
    fw_bad = gw.ok("POST", "/api/firmware", {"productId": "pe", "name": "e", "version": "1",
                                             "size": len(data), "sign": other,
                                             "signMethod": "ecdsa-p256"}, expect=201)["id"]
    st, js, raw = put_bytes(gw.port, fw_bad, data)
    assert st == 422, raw[:300]
    assert image_of(gw, fw_bad)["state"] == "failed"
    assert_not_cached(gw, sha(data))
    fw_ok = gw.ok("POST", "/api/firmware", {"productId": "pe", "name": "e", "version": "2",
                                            "size": len(data), "sign": good,
                                            "signMethod": "ecdsa-p256"}, expect=201)["id"]
    st, js, raw = put_bytes(gw.port, fw_ok, data)
    assert st == 200 and js["image"]["state"] == "ready", raw[:300]
    assert_cached(gw, data)


# -- uploads -----------------------------------------------------------------------

def mk_image_fw(gw, data, product="pu", version=None, sign=True, size=True):
    body = {"productId": product, "name": "up", "version": version or uniq("v")}
    if size:
        body["size"] = len(data)
    if sign:
        body["sign"] = sha(data)
        body["signMethod"] = "sha256"
    return gw.ok("POST", "/api/firmware", body, expect=201)["id"]


def test_upload_ready(gw_factory):
    gw = cachegw(gw_factory)
    data = rand_bytes(11, 1500000)
    fw = mk_image_fw(gw, data)
    st, js, raw = put_bytes(gw.port, fw, data)
    assert st == 200, raw[:300]
    assert js["id"] == fw and js["image"]["state"] == "ready", js
    assert js["image"]["sha256"] == sha(data) and js["image"]["bytes"] == len(data), js
    assert image_of(gw, fw)["state"] == "ready"
    assert_cached(gw, data)
    items, _ = cache_items(gw)
    assert items[sha(data)]["firmwareIds"] == [fw] and items[sha(data)]["pinned"] is False
    assert cache_listing(gw)[1] == []


def test_upload_refusals_leave_the_store_intact(gw_factory):
    gw = cachegw(gw_factory)
    keep = rand_bytes(12, 300000)
    fw_keep = mk_image_fw(gw, keep)
    st, _, raw = put_bytes(gw.port, fw_keep, keep)
    assert st == 200, raw[:300]
    before_fw = gw.ok("GET", "/api/firmware?size=1000")["items"]

    # wrong digest
    data = rand_bytes(13, 250000)
    other = rand_bytes(14, 250000)
    fw = mk_image_fw(gw, other)
    st, js, raw = put_bytes(gw.port, fw, data)
    assert st == 422, raw[:300]
    assert isinstance(js, dict) and js.get("error"), raw[:300]
    assert image_of(gw, fw)["state"] == "failed"
    assert sha(data) not in cache_listing(gw)[0]

    # larger than the firmware's size
    small = mk_image_fw(gw, data[:1000])
    st, js, raw = put_bytes(gw.port, small, data[:2000])
    assert st == 413, raw[:300]
    assert image_of(gw, small)["state"] != "ready"

    # shorter than the firmware's size: a size mismatch
    fw_short = mk_image_fw(gw, data)
    st, js, raw = put_bytes(gw.port, fw_short, data[:100000])
    assert st == 422, raw[:300]
    assert image_of(gw, fw_short)["state"] != "ready"

    # unknown firmware
    st, js, raw = put_bytes(gw.port, "nope", data[:100])
    assert st == 404, raw[:300]

    # the store: the earlier image and firmware untouched, nothing else cached
    finals, partials = cache_listing(gw)
    assert finals == [sha(keep)] and partials == [], (finals, partials)
    assert_cached(gw, keep)
    items, js = cache_items(gw)
    assert list(items) == [sha(keep)] and js["usedBytes"] == len(keep), js
    img = image_of(gw, fw_keep)
    assert img["state"] == "ready" and img["sha256"] == sha(keep), img
    after_fw = {f["id"]: f for f in gw.ok("GET", "/api/firmware?size=1000")["items"]}
    for f in before_fw:
        assert after_fw[f["id"]] == f, "firmware %s changed" % f["id"]
    assert gw.ok("GET", "/api/health")["status"] == "ok"


# -- quota, LRU, pinning -----------------------------------------------------------------

IMG = 480000                # two fit under max_bytes = 1 MiB, three do not


def test_lru_evicts_least_recently_used(gw_factory):
    """A and B uploaded (A older), both aged by 10 minutes in the index; a
    device then fetches A through the gateway (a use: A becomes the most
    recent) and completes its task (A unpinned); uploading C must evict B,
    not A."""
    tport = free_port()
    gw = gw_factory(config_extra=CACHE + "max_bytes = 1048576\n"
                    "\n[tcp]\nbind = %s\nport = %d\n" % (HOST, tport))
    a, b, c = (rand_bytes(20 + i, IMG) for i in range(3))
    fa = mk_image_fw(gw, a, product="pL", version="2.0")
    fb = mk_image_fw(gw, b, product="pX")
    fc = mk_image_fw(gw, c, product="pX")
    for fw, data in ((fa, a), (fb, b)):
        st, _, raw = put_bytes(gw.port, fw, data)
        assert st == 200, raw[:300]
        time.sleep(0.02)
    items, _ = cache_items(gw)
    assert items[sha(a)]["lastUsed"] < items[sha(b)]["lastUsed"], items
    # The daemon records a use at most once a minute per image (images.c:
    # no write on the chunk hot path within 60 s of the last touch). Age
    # both entries by 10 minutes, keeping their order, while it is stopped,
    # instead of waiting a minute.
    rc, _ = gw.stop()
    assert rc == 0
    db = sqlite3.connect(os.path.join(gw.data_dir, "otagw.db"))
    try:
        n = db.execute("UPDATE cache_entry SET last_used = last_used - 600000").rowcount
        db.commit()
    finally:
        db.close()
    assert n == 2, "cache_entry rows: %d" % n
    gw.start()
    aged, _ = cache_items(gw)
    assert aged[sha(a)]["lastUsed"] == items[sha(a)]["lastUsed"] - 600000, aged

    gw.ok("POST", "/api/devices", {"id": "dL", "productId": "pL"}, expect=201)
    task = gw.ok("POST", "/api/firmware/%s/tasks" % fa, {"name": "use A", "mode": "pull"},
                 expect=201)["id"]
    gw.ok("POST", "/api/tasks/%s/publish" % task, {"deviceIds": ["dL"]})
    assert cache_items(gw)[0][sha(a)]["pinned"] is True
    d = devsim.Device(HOST, tport, "jsonline", "dL", product_id="pL", timeout=5.0)
    try:
        d.report("1.0")
        rep = d.pull()
        assert rep.get("success") is True and rep.get("firmwareId") == fa, rep
        got = d.fetch_image(fa, IMG, chunk=4096, window=4)
        assert got == a, "the device got other bytes than image A"
        d.progress("2.0", fa, 100, complete=True, success=True)
        wait_for(lambda: gw.ok("GET", "/api/tasks/%s" % task)["counts"]["success"] == 1 or None,
                 5.0, "the record to succeed")
    finally:
        d.close()
    items, _ = cache_items(gw)
    assert items[sha(a)]["pinned"] is False, items
    assert items[sha(a)]["lastUsed"] > items[sha(b)]["lastUsed"], \
        "a device reading image A did not make it the most recently used: %r" % items

    st, _, raw = put_bytes(gw.port, fc, c)
    assert st == 200, raw[:300]
    items, js = cache_items(gw)
    assert set(items) == {sha(a), sha(c)}, "expected B evicted, got %r" % list(items)
    assert js["usedBytes"] == 2 * IMG <= js["maxBytes"], js
    assert set(cache_listing(gw)[0]) == {sha(a), sha(c)}
    assert image_of(gw, fb)["state"] != "ready"
    assert image_of(gw, fa)["state"] == "ready" and image_of(gw, fc)["state"] == "ready"


def test_pinned_never_evicted_cache_full_and_delete(gw_factory):
    gw = gw_factory(config_extra=CACHE + "max_bytes = 1048576\n")
    imgs = [rand_bytes(30 + i, IMG) for i in range(3)]
    fws, tasks = [], []
    for i, data in enumerate(imgs):
        product = "pp%d" % i
        fws.append(mk_image_fw(gw, data, product=product, version="2.0"))
        gw.ok("POST", "/api/devices", {"id": "dp%d" % i, "productId": product}, expect=201)
        t = gw.ok("POST", "/api/firmware/%s/tasks" % fws[i], {"name": "t", "mode": "pull"},
                  expect=201)["id"]
        tasks.append(t)
        gw.ok("POST", "/api/tasks/%s/publish" % t, {"all": True})
    for i in (0, 1):
        st, _, raw = put_bytes(gw.port, fws[i], imgs[i])
        assert st == 200, raw[:300]
    items, _ = cache_items(gw)
    assert items[sha(imgs[0])]["pinned"] and items[sha(imgs[1])]["pinned"], items

    st, js, raw = put_bytes(gw.port, fws[2], imgs[2])
    assert st == 507, raw[:300]
    assert "cache full" in js.get("error", "").lower(), js
    assert image_of(gw, fws[2])["state"] != "ready"
    assert set(cache_items(gw)[0]) == {sha(imgs[0]), sha(imgs[1])}
    assert set(cache_listing(gw)[0]) == {sha(imgs[0]), sha(imgs[1])}
    assert cache_listing(gw)[1] == []

    st, js, _ = gw.req("DELETE", "/api/cache/%s" % sha(imgs[0]))
    assert st == 409, js
    assert os.path.isfile(os.path.join(cachesrv.cache_dir(gw), sha(imgs[0])))

    gw.ok("POST", "/api/tasks/%s/cancel" % tasks[0])
    assert cache_items(gw)[0][sha(imgs[0])]["pinned"] is False
    st, js, _ = gw.req("DELETE", "/api/cache/%s" % sha(imgs[0]))
    assert st == 204, js
    assert not os.path.exists(os.path.join(cachesrv.cache_dir(gw), sha(imgs[0])))
    assert sha(imgs[0]) not in cache_items(gw)[0]
    assert image_of(gw, fws[0])["state"] != "ready"
    st, js, _ = gw.req("DELETE", "/api/cache/%s" % sha(imgs[0]))
    assert st == 404, js

    st, js, raw = put_bytes(gw.port, fws[2], imgs[2])
    assert st == 200, raw[:300]
    assert set(cache_items(gw)[0]) == {sha(imgs[1]), sha(imgs[2])}


# -- start-up reconciliation --------------------------------------------------------------

def test_reconcile_on_restart(gw_factory, ngx):
    gw = cachegw(gw_factory)
    x, y = rand_bytes(40, 300000), rand_bytes(41, 310000)
    z, w = rand_bytes(42, 5 * MiB + 1), rand_bytes(43, 320000)
    fx, fy = mk_image_fw(gw, x), mk_image_fw(gw, y)
    for fw, data in ((fx, x), (fy, y)):
        st, _, raw = put_bytes(gw.port, fw, data)
        assert st == 200, raw[:300]
    zpath = ngx.put(uniq("z") + ".bin", z)
    wpath = ngx.put(uniq("w") + ".bin", w)
    fz, _ = publish_download(gw, ngx.url(zpath), size=len(z), sign=sha(z))
    fwid, _ = publish_download(gw, ngx.url(wpath), size=len(w), sign=sha(w))
    wait_image(gw, fz, "ready", WAIT, never=("failed",))
    wait_image(gw, fwid, "ready", WAIT, never=("failed",))
    cdir = cachesrv.cache_dir(gw)

    rc, _ = gw.stop()
    assert rc == 0
    for data in (x, w):                      # corrupt: same size, one byte changed
        p = os.path.join(cdir, sha(data))
        os.chmod(p, 0o640)
        with open(p, "r+b") as f:
            f.seek(len(data) // 3)
            f.write(bytes([data[len(data) // 3] ^ 0xff]))
    os.chmod(os.path.join(cdir, sha(z)), 0o640)
    os.unlink(os.path.join(cdir, sha(z)))    # indexed, gone, a task needs it
    foreign = os.path.join(cdir, "README.not-an-image")
    with open(foreign, "w") as f:
        f.write("left by someone else\n")
    orphan = os.path.join(cdir, "partial", "0123456789abcdef0123456789abcdef")
    with open(orphan + ".part", "wb") as f:
        f.write(rand_bytes(44, 100000))
    gw.start()

    img = wait_image(gw, fx, "missing", 10.0, never=("ready",))
    assert not img.get("sha256"), img
    assert not os.path.exists(os.path.join(cdir, sha(x))), "corrupt image still in cache/"
    assert sha(x) not in cache_items(gw)[0]
    img = image_of(gw, fy)
    assert img["state"] == "ready" and img["sha256"] == sha(y), img
    assert_cached(gw, y)
    img = wait_image(gw, fz, "ready", WAIT, never=("failed",))
    assert img["sha256"] == sha(z), img
    assert_cached(gw, z)
    assert len(ngx.requests(zpath)) == 2, ngx.requests(zpath)
    # w: corrupt, and a task needs it: either missing, or fetched again
    img = wait_image(gw, fwid, ("missing", "ready"), WAIT, never=("failed",))
    if img["state"] == "ready":
        assert_cached(gw, w)
    else:
        assert not os.path.exists(os.path.join(cdir, sha(w)))
    assert os.path.isfile(foreign), "a foreign file in cache/ was touched"
    wait_for(lambda: not os.path.exists(orphan + ".part") or None, 5.0,
             "the orphan partial to be removed")
    for f in cache_listing(gw)[0]:
        if cachesrv.HEX64.match(f):
            assert cachesrv.sha256_file(os.path.join(cdir, f)) == f, f
    assert gw.ok("GET", "/api/health")["status"] == "ok"


# -- a 256 MiB upload, streamed, with flat RSS ---------------------------------------------

def test_upload_256mib_flat_rss(gw_factory):
    gw = cachegw(gw_factory)
    total, seed = 256 * MiB, 0x5eed
    h = hashlib.sha256()
    for c in cachesrv.gen_chunks(seed, total):
        h.update(c)
    digest = h.hexdigest()
    fw = gw.ok("POST", "/api/firmware", {"productId": "big", "name": "big", "version": "1",
                                         "size": total, "sign": digest,
                                         "signMethod": "sha256"}, expect=201)["id"]
    for _ in range(5):
        gw.ok("GET", "/api/cache")
    pid = gw.proc.pid
    idle = cachesrv.rss(pid)
    assert idle > 0
    peak = [idle]
    sent = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], cachesrv.rss(pid))
            stop.wait(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        st, js, raw = put_image(gw.port, fw, cachesrv.gen_chunks(seed, total, 256 * 1024), total,
                                timeout=240.0,
                                on_chunk=lambda n: sent.__setitem__(0, sent[0] + n))
    finally:
        stop.set()
        th.join(2)
    peak[0] = max(peak[0], cachesrv.rss(pid))
    assert sent[0] == total, "only %d of %d bytes were sent" % (sent[0], total)
    assert st == 200, raw[:300]
    assert js["image"]["state"] == "ready" and js["image"]["sha256"] == digest, js
    p = os.path.join(cachesrv.cache_dir(gw), digest)
    assert os.path.getsize(p) == total
    print("RSS idle %.1f MiB, peak during upload %.1f MiB" % (idle / MiB, peak[0] / MiB))
    if not cachesrv.is_san_build():
        assert peak[0] < idle + 16 * MiB, "RSS grew from %.1f to %.1f MiB during the upload" % (
            idle / MiB, peak[0] / MiB)
    st, js, _ = gw.req("DELETE", "/api/cache/%s" % digest)
    assert st == 204, js
    assert not os.path.exists(p)


# -- DNS off the loop -------------------------------------------------------------------------

def test_dns_lookup_does_not_block_the_loop(gw_factory, tmp_path):
    why = cachesrv.mount_ns_usable(str(tmp_path))
    if why:
        pytest.skip(why)
    try:
        dns = cachesrv.DnsBlackhole()
    except OSError as e:
        pytest.skip("cannot bind a UDP socket on a loopback address, port 53: %s" % e)
    try:
        resolv = dns.resolv_conf(str(tmp_path / "resolv.conf"), timeout=30)
        gw = gw_factory(config_extra=CACHE, start=False)
        cachesrv.start_in_mount_ns(gw, resolv)
        url = "http://hang.example:%d/x.bin" % free_port()
        fw, _ = publish_download(gw, url, size=1000)
        wait_for(lambda: dns.queries > 0 or None, 5.0, "the daemon's DNS query")
        assert any("hang.example" in n for n in dns.names), dns.names
        worst = 0.0
        for _ in range(10):
            t0 = time.monotonic()
            st, js, _, _ = http_request(gw.port, "GET", "/api/health", timeout=2.0)
            took = time.monotonic() - t0
            worst = max(worst, took)
            assert st == 200 and js["status"] == "ok", js
            assert took < 0.2, "GET /api/health took %.0f ms while a lookup hangs" % (took * 1000)
            time.sleep(0.1)
        img = image_of(gw, fw)
        assert img["state"] == "downloading", img
        st, _, _, _ = http_request(gw.port, "GET", "/api/firmware/%s" % fw, timeout=2.0)
        assert st == 200
        print("worst /api/health latency during the hanging lookup: %.1f ms" % (worst * 1000))
    finally:
        dns.close()
