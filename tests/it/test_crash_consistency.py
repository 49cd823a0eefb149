# SPDX-License-Identifier: MIT
"""Crash consistency under a random workload: the daemon is killed with
SIGKILL OTAGW_CONSISTENCY_KILLS times (default 200; tests/run.sh passes
fewer for the sanitized build) at random moments, restarted each time,
and the invariants of tests/crashcheck.py are checked.

The workload (seeded: OTAGW_CONSISTENCY_SEED, else random; the seed is
printed and named in every failure) runs in threads while the daemon lives:
  - REST: firmware created (with its image uploaded), edited, deleted;
    devices created, edited, deleted; tasks created (push or pull, timeouts
    of 0, 2 or 4 s so records also time out), published (all or some
    devices), canceled;
  - TCP devices (devsim, jsonline): reports, pulls (some forced, to retry a
    failed record), pushes answered, chunk fetches checked against the
    image, progress, success or failure, disconnects;
  - HTTP devices: report, pull, GET /images/{id}?device= with a Range
    (bytes checked), progress, success or failure, the push poll;
and each round also runs one "focus" operation in a loop, the kill landing
while it runs; the focus goes round all of: those three, a throttled 1.5 MiB
image upload (PUT /api/firmware/{id}/image), a throttled bundle upload
(POST /api/bundles), a bundle dropped into [gateway] import_dir, an image
download by the gateway from nginx (6 MiB, the first request throttled to
5 MiB/s, so the kill lands mid-download and a later start resumes it with
a Range), GET /images with Range, cloud commands (FIRMWARE_UPSERT,
TASK_CREATE, TASK_PUBLISH, TASK_CANCEL), and two serial devices on socat
pty pairs (report, pull, YMODEM receive by serialdev's receiver, some
cancelled with CAN CAN, image checked, success or failure; focus only,
since a read on a line waits for its byte timeout). A cloud simulator
(tests/cloudsim.py, answering HELLO_ACK with the highest seq it
acknowledged, so what it stored but did not ack is resent) goes down and
up between daemon lives and switches between acking every frame, lazily
and not at all.

After every kill, before the restart (read-only): PRAGMA integrity_check;
every record's history chains from "" by the legal moves of
gateway/records.c to its state; every cache/<sha256> file hashes to its
name; the outbox rows are noted. After the restart: no partial file that no
download owns and no spooled bundle upload survived the start-up reconcile;
every OTAGW_CONSISTENCY_CHECK_EVERY rounds (default 5) the database checks
again on the running daemon. At the end the cloud comes back, acking
everything: every outbox frame ever seen arrived, byte for byte; no frame a
HELLO_ACK had acknowledged was sent again; every state change in the
history reached the cloud exactly once. Any 5xx other than 503/507, wrong
image bytes or a daemon that died by itself fails the test.

test_checkers_catch_corruption shows that each checker fails on a damaged
scratch copy of a real data directory (and on forged cloud traffic)."""

import collections
import hashlib
import http.client
import json
import os
import random
import shutil
import sqlite3
import sys
import threading
import time
import urllib.parse

import cachesrv
import otagw_it
from otagw_it import HOST, free_port, http_request, port_accepts
from test_cloud import cloud_conf, cstate, kill9, wait_drained
from test_tcp import tcp_section, wait_until

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import bundlegen  # noqa: E402
import crashcheck  # noqa: E402
import devsim  # noqa: E402
import ptyrelay  # noqa: E402
import serialdev  # noqa: E402
from cloudsim import CloudSim  # noqa: E402

KILLS = int(os.environ.get("OTAGW_CONSISTENCY_KILLS", "200"))
CHECK_EVERY = max(1, int(os.environ.get("OTAGW_CONSISTENCY_CHECK_EVERY", "5")))
GW_ID = "gw-crash"
CLOUD_TOKEN = "crash-token-93b1"
PRODUCTS = ("pa", "pb")
TCP_DEVICES = ["t%d" % i for i in range(6)]
HTTP_DEVICES = ["h%d" % i for i in range(6)]
SERIAL_DEVICES = ["s0", "s1"]          # one per [serial] line (a socat pty pair)
SERIAL_BYTE_WAIT = 0.3    # s: the daemon answers a pty at once; a dead one is noticed soon
OP_TIMEOUT = 3.0          # s: one request or device exchange
JOIN_TIMEOUT = 15.0       # s: workers to notice a dead daemon and stop
BIG_UPLOAD = 1536 * 1024  # bytes of the focus upload
DOWNLOAD_SIZE = 6 << 20   # bytes of an image the gateway downloads from nginx
MAX_DOWNLOADS = 10        # images put on nginx over a run (cache quota 96 MiB)
OK_5XX = (503, 507)       # image not ready yet, cache full
KEEP_DATA = 256 * 1024    # bytes: images up to this size are checked when served
MAX_REST_DEVICES = 24     # devices made by REST at a time (each publish to all adds a record)


def dev_product(dev_id):
    return PRODUCTS[int(dev_id[1:]) % 2]


class World:
    """What the workload made, shared by the worker threads (lock), plus
    what went wrong that is not an invariant of the data directory."""

    def __init__(self, seed, g, tmp, sim, ngx, import_dir):
        self.seed = seed
        self.g, self.tmp, self.sim, self.ngx, self.import_dir = g, tmp, sim, ngx, import_dir
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.fw = {}              # id -> {"product", "version", "data"}
        self.tasks = {}           # id -> firmware id
        self.rest_devs = set()
        self.n = 0
        self.round = 0
        self.unexpected = []
        self.inflight = collections.Counter()
        self.ops = collections.Counter()
        self.bundles = []         # paths of prebuilt bundles
        self.downloads = 0
        self.drops = 0
        self.tcp = {d: None for d in TCP_DEVICES}           # devsim.Device or None
        self.jobs = {}            # device id -> {"fw", "version", "size", "at"}
        self.serial = {}          # device id -> serialdev.SerialDevice
        self.seen = {d: 0 for d in SERIAL_DEVICES}   # messages of .received looked at
        devs = TCP_DEVICES + HTTP_DEVICES + SERIAL_DEVICES
        self.versions = {d: "1.0" for d in devs}
        # one thread at a time plays a device (the focus and a background
        # worker may both pick it)
        self.dev_locks = {d: threading.Lock() for d in devs}

    def next_n(self):
        with self.lock:
            self.n += 1
            return self.n

    def bad(self, what):
        with self.lock:
            if len(self.unexpected) < 50:
                self.unexpected.append("round %d: %s" % (self.round, what))

    def op(self, name):
        return _Op(self, name)

    def pick_fw(self, rng, product=None):
        with self.lock:
            ids = sorted(i for i, f in self.fw.items()
                         if product is None or f["product"] == product)
        return rng.choice(ids) if ids else None

    def data_of(self, fw_id):
        with self.lock:
            f = self.fw.get(fw_id)
            return f["data"] if f else None

    def add_fw(self, fw_id, product, version, data):
        """data: the image, kept to check bytes served when small (the big
        uploads and downloads would hold ~100 MiB over a run)."""
        if data is not None and len(data) > KEEP_DATA:
            data = None
        with self.lock:
            self.fw[fw_id] = {"product": product, "version": version, "data": data}

    # HTTP with the status policy: a dead daemon gives (None, None)
    def req(self, method, path, body=None, headers=None, what=None, timeout=OP_TIMEOUT):
        try:
            st, js, hd, raw = http_request(self.g.port, method, path, body=body,
                                           headers=headers, timeout=timeout)
        except (OSError, http.client.HTTPException):
            return None, None, None, None
        if st >= 500 and st not in OK_5XX:
            self.bad("%s %s -> %d %r" % (method, what or path, st, raw[:200]))
        return st, js, hd, raw


class _Op:
    def __init__(self, w, name):
        self.w, self.name = w, name

    def __enter__(self):
        with self.w.lock:
            self.w.inflight[self.name] += 1
            self.w.ops[self.name] += 1

    def __exit__(self, *exc):
        with self.w.lock:
            self.w.inflight[self.name] -= 1


def image_bytes(seed, n):
    return cachesrv.rand_bytes(seed, n)


def sha(data):
    return hashlib.sha256(data).hexdigest()


# -- REST --------------------------------------------------------------------------------

def fw_create(w, rng, size=None, upload=True, chunk_delay=0.0):
    n = w.next_n()
    product = rng.choice(PRODUCTS)
    data = image_bytes(w.seed * 100003 + n, size or rng.randint(2048, 48 * 1024))
    with w.op("firmware create"):
        st, js, _, _ = w.req("POST", "/api/firmware", {
            "productId": product, "name": "fw %d" % n, "version": "1.%d" % n,
            "versionOrder": n, "size": len(data), "sign": sha(data), "signMethod": "sha256"})
    if st != 201:
        return None
    w.add_fw(js["id"], product, "1.%d" % n, data)
    if upload:
        upload_image(w, js["id"], data, chunk_delay)
    return js["id"]


def upload_image(w, fw_id, data, chunk_delay=0.0, piece=64 * 1024):
    def chunks():
        for i in range(0, len(data), piece):
            if w.stop.is_set():
                return
            yield data[i:i + piece]
            if chunk_delay:
                time.sleep(chunk_delay)
    with w.op("image upload"):
        try:
            st, _, raw = cachesrv.put_image(w.g.port, fw_id, chunks(), len(data),
                                            timeout=OP_TIMEOUT + 2)
        except (OSError, AssertionError):
            return
    if st is not None and st >= 500 and st not in OK_5XX:
        w.bad("PUT image of %s -> %d %r" % (fw_id, st, raw[:200]))


def rest_step(w, rng):
    r = rng.random()
    if r < 0.14:
        fw_create(w, rng)
    elif r < 0.22:
        fw = w.pick_fw(rng)
        if fw:
            with w.op("firmware edit"):
                w.req("PUT", "/api/firmware/" + fw, {"description": "edit %d" % w.next_n()})
    elif r < 0.27:
        fw = w.pick_fw(rng)
        if fw:
            with w.op("firmware delete"):
                st, _, _, _ = w.req("DELETE", "/api/firmware/" + fw)
            if st in (204, 404):
                with w.lock:
                    w.fw.pop(fw, None)
    elif r < 0.37 and len(w.rest_devs) < MAX_REST_DEVICES:
        dev = "r%d" % w.next_n()
        with w.op("device create"):
            st, _, _, _ = w.req("POST", "/api/devices", {"id": dev, "productId": rng.choice(
                PRODUCTS), "firmwareVersion": "1.0"})
        if st == 201:
            with w.lock:
                w.rest_devs.add(dev)
    elif r < 0.37:
        device_delete(w, rng)
    elif r < 0.43:
        with w.lock:
            devs = sorted(w.rest_devs) + TCP_DEVICES + HTTP_DEVICES + SERIAL_DEVICES
        with w.op("device edit"):
            w.req("PUT", "/api/devices/" + rng.choice(devs), {"name": "n%d" % w.next_n()})
    elif r < 0.50:
        device_delete(w, rng)
    elif r < 0.85:
        task_create_publish(w, rng)
    else:
        with w.lock:
            tasks = sorted(w.tasks)
        if tasks:
            with w.op("task cancel"):
                w.req("POST", "/api/tasks/%s/cancel" % rng.choice(tasks))


def device_delete(w, rng):
    with w.lock:
        devs = sorted(w.rest_devs)
    dev = rng.choice(devs) if devs and rng.random() < 0.85 else \
        rng.choice(TCP_DEVICES + HTTP_DEVICES + SERIAL_DEVICES)
    with w.op("device delete"):
        st, _, _, _ = w.req("DELETE", "/api/devices/" + dev)
    if st in (204, 404):
        with w.lock:
            w.rest_devs.discard(dev)


def task_create_publish(w, rng):
    fw = w.pick_fw(rng)
    if not fw:
        return
    with w.op("task create"):
        st, js, _, _ = w.req("POST", "/api/firmware/%s/tasks" % fw, {
            "name": "t%d" % w.next_n(), "mode": rng.choice(("push", "pull")),
            "timeoutSeconds": rng.choice((0, 2, 4))})
    if st != 201:
        return
    with w.lock:
        w.tasks[js["id"]] = fw
        product = w.fw.get(fw, {}).get("product", "pa")
        devs = [d for d in TCP_DEVICES + HTTP_DEVICES + SERIAL_DEVICES if dev_product(d) == product]
    if rng.random() < 0.5:
        body = {"all": True}
    else:
        body = {"deviceIds": rng.sample(devs, rng.randint(1, len(devs)))}
    with w.op("task publish"):
        w.req("POST", "/api/tasks/%s/publish" % js["id"], body)


# -- TCP devices -------------------------------------------------------------------------

def tcp_step(w, rng):
    dev_id = rng.choice(TCP_DEVICES)
    if not w.dev_locks[dev_id].acquire(blocking=False):
        return
    try:
        tcp_device_step(w, rng, dev_id)
    finally:
        w.dev_locks[dev_id].release()


def tcp_device_step(w, rng, dev_id):
    d = w.tcp[dev_id]
    try:
        if d is None:
            with w.op("tcp connect"):
                d = devsim.Device(HOST, w.g.tcp_port, "jsonline", dev_id,
                                  product_id=dev_product(dev_id), timeout=OP_TIMEOUT)
                w.tcp[dev_id] = d
                d.report(w.versions[dev_id])
        tcp_device_move(w, rng, d)
    except (devsim.DevsimError, OSError, TimeoutError) as e:
        if isinstance(e, devsim.ProtocolError):
            w.bad("tcp %s: %s" % (dev_id, e))
        if d is not None:
            d.close()
        w.tcp[dev_id] = None


def tcp_device_move(w, rng, d):
    dev_id = d.device_id
    for m in [m for m in d.inbox if m.get("messageType") == "UPGRADE_FIRMWARE"]:
        d.inbox.remove(m)
        ok = rng.random() < 0.9
        with w.op("tcp push reply"):
            d.upgrade_reply(m.get("messageId"), ok)
        if ok:
            w.jobs[dev_id] = {"fw": m.get("firmwareId"), "version": m.get("version"),
                              "size": int(m.get("size") or 0), "at": 0}
    job = w.jobs.get(dev_id)
    r = rng.random()
    if r < 0.04:
        d.close()
        w.tcp[dev_id] = None
    elif job is None:
        with w.op("tcp pull"):
            rep = d.pull(force=rng.random() < 0.3, timeout=OP_TIMEOUT)
        if rep.get("success") is True:
            w.jobs[dev_id] = {"fw": rep.get("firmwareId"), "version": rep.get("version"),
                              "size": int(rep.get("size") or 0), "at": 0}
    elif job["at"] < job["size"] and r < 0.75:
        tcp_chunks(w, rng, d, job)
    else:
        ok = rng.random() < 0.8
        with w.op("tcp complete"):
            d.progress(job["version"], job["fw"], 100 if ok else job["at"] * 100 //
                       max(1, job["size"]), complete=True, success=ok,
                       error_reason=None if ok else "crash test says no")
            if ok:
                d.report(job["version"])
                w.versions[dev_id] = job["version"]
        del w.jobs[dev_id]


def tcp_chunks(w, rng, d, job):
    data = w.data_of(job["fw"])
    with w.op("tcp chunks"):
        for _ in range(rng.randint(1, 6)):
            n = min(4096, job["size"] - job["at"])
            if n <= 0:
                break
            rep = d.request_chunk(job["fw"], job["at"], n, timeout=OP_TIMEOUT)
            if rep.get("success") is not True:
                return                       # not_ready, unknown: later
            got = devsim.check_chunk_reply(rep, job["fw"], job["at"], n)
            if data is not None and got != data[job["at"]:job["at"] + len(got)]:
                w.bad("tcp chunk of %s at %d: wrong bytes" % (job["fw"], job["at"]))
            job["at"] += len(got)
        pct = job["at"] * 100 // max(1, job["size"])
        d.progress(job["version"], job["fw"], min(pct, 99))


# -- HTTP devices ------------------------------------------------------------------------

def dev_path(dev_id, topic):
    return "/device/%s/%s/firmware/%s" % (dev_product(dev_id), dev_id, topic)


def http_step(w, rng):
    dev_id = rng.choice(HTTP_DEVICES)
    if not w.dev_locks[dev_id].acquire(blocking=False):
        return
    try:
        http_device_step(w, rng, dev_id)
    finally:
        w.dev_locks[dev_id].release()


def http_device_step(w, rng, dev_id):
    job = w.jobs.get(dev_id)
    r = rng.random()
    if r < 0.12:
        with w.op("http report"):
            w.req("POST", dev_path(dev_id, "report"), {"version": w.versions[dev_id]})
    elif r < 0.2:
        with w.op("http poll"):
            st, js, _, _ = w.req("GET", dev_path(dev_id, "upgrade"))
        if st == 200 and isinstance(js, dict) and js.get("url"):
            w.jobs[dev_id] = http_job(js)
    elif job is None:
        with w.op("http pull"):
            st, js, _, _ = w.req("POST", dev_path(dev_id, "pull"), {
                "messageId": "m%d" % w.next_n(), "headers": {"force": rng.random() < 0.3}})
        if st == 200 and isinstance(js, dict) and js.get("success") is True:
            w.jobs[dev_id] = http_job(js)
    elif job["at"] < job["size"] and r < 0.7:
        image_get(w, rng, job["fw"], job["path"], job["size"], job)
    else:
        ok = rng.random() < 0.8
        with w.op("http complete"):
            st, _, _, _ = w.req("POST", dev_path(dev_id, "upgrade/progress"), {
                "version": job["version"], "progress": 100 if ok else 50, "complete": True,
                "success": ok})
        if ok and st == 200:
            w.versions[dev_id] = job["version"]
        del w.jobs[dev_id]


def http_job(js):
    u = urllib.parse.urlsplit(js["url"])
    return {"fw": js.get("firmwareId"), "version": js.get("version"),
            "size": int(js.get("size") or 0), "at": 0,
            "path": u.path + ("?" + u.query if u.query else "")}


def image_get(w, rng, fw_id, path, size, job=None):
    """GET path with a Range from job's offset (or anywhere); checks bytes."""
    data = w.data_of(fw_id)
    a = job["at"] if job else rng.randrange(max(1, size))
    b = min(size - 1, a + rng.randint(1, 96 * 1024))
    with w.op("image get"):
        st, _, hd, raw = w.req("GET", path, headers={"Range": "bytes=%d-%d" % (a, b)})
    if st == 206 and data is not None:
        if raw != data[a:b + 1]:
            w.bad("GET %s bytes=%d-%d: wrong bytes" % (path, a, b))
        elif job:
            job["at"] = b + 1


# -- focus operations (loop until the kill) --------------------------------------------

def focus_upload(w, rng, armed):
    while not w.stop.is_set():
        armed.set()
        fw_create(w, rng, size=BIG_UPLOAD, chunk_delay=0.004)


def focus_bundle_post(w, rng, armed):
    while not w.stop.is_set() and w.bundles:
        path = rng.choice(w.bundles)
        size = os.path.getsize(path)

        def body():
            with open(path, "rb") as f:
                for b in iter(lambda: f.read(32 * 1024), b""):
                    if w.stop.is_set():
                        return
                    armed.set()
                    yield b
                    time.sleep(0.003)
        with w.op("bundle post"):
            conn = http.client.HTTPConnection(HOST, w.g.port, timeout=OP_TIMEOUT)
            try:
                conn.request("POST", "/api/bundles", body=body(), headers={
                    "Content-Type": "application/octet-stream", "Content-Length": str(size)})
                resp = conn.getresponse()
                raw = resp.read()
                if resp.status >= 500 and resp.status not in OK_5XX:
                    w.bad("POST /api/bundles -> %d %r" % (resp.status, raw[:200]))
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
        time.sleep(0.02)


def focus_bundle_dir(w, rng, armed):
    """Drops a bundle into import_dir (written aside, renamed in); the daemon
    picks it up within import_interval once it stops changing."""
    for f in os.listdir(w.import_dir):
        if f.endswith(".report.txt"):
            os.unlink(os.path.join(w.import_dir, f))
            src = os.path.join(w.import_dir, f[:-len(".report.txt")])
            if os.path.exists(src):
                os.unlink(src)
    if not w.bundles:
        return
    path = rng.choice(w.bundles)
    w.drops += 1
    tmp = os.path.join(w.tmp, "drop.tmp")
    shutil.copyfile(path, tmp)
    os.rename(tmp, os.path.join(w.import_dir, "drop%04d.tar.gz" % w.drops))
    armed.set()
    with w.op("bundle import_dir"):
        w.stop.wait(30)


def focus_download(w, rng, armed):
    if w.downloads >= MAX_DOWNLOADS:
        armed.set()
        return
    w.downloads += 1
    n = w.next_n()
    data = image_bytes(w.seed * 7919 + n, DOWNLOAD_SIZE)
    name = "img/dl%d.bin" % n
    w.ngx.put(name, data)
    product = rng.choice(PRODUCTS)
    with w.op("gateway download"):
        st, js, _, _ = w.req("POST", "/api/firmware", {
            "productId": product, "name": "dl %d" % n, "version": "d%d" % n,
            "versionOrder": n, "url": w.ngx.url("/" + name), "size": len(data),
            "sign": sha(data), "signMethod": "sha256"})
        if st == 201:
            w.add_fw(js["id"], product, "d%d" % n, data)
            st, t, _, _ = w.req("POST", "/api/firmware/%s/tasks" % js["id"],
                                {"name": "dl %d" % n, "mode": "push"})
            if st == 201:
                with w.lock:
                    w.tasks[t["id"]] = js["id"]
                w.req("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
        armed.set()
        w.stop.wait(30)


def focus_image_get(w, rng, armed):
    while not w.stop.is_set():
        fw = w.pick_fw(rng)
        data = w.data_of(fw) if fw else None
        if data is None:
            armed.set()
            w.stop.wait(0.05)
            continue
        armed.set()
        image_get(w, rng, fw, "/images/%s?device=%s" % (fw, rng.choice(HTTP_DEVICES)),
                  len(data))


def focus_cloud(w, rng, armed):
    sim = w.sim
    while not w.stop.is_set():
        n = w.next_n()
        r = rng.random()
        product = rng.choice(PRODUCTS)
        if r < 0.35:
            cmd = {"messageType": "FIRMWARE_UPSERT", "firmware": {
                "id": "cf%d" % n, "productId": product, "name": "cloud %d" % n,
                "version": "c%d" % n, "versionOrder": n}}
        else:
            with w.lock:
                cfw = sorted(f for f in w.fw if f.startswith("cf"))
                ctasks = sorted(t for t in w.tasks if t.startswith("ct"))
            if r < 0.7 and cfw:
                fw = rng.choice(cfw)
                cmd = {"messageType": "TASK_CREATE", "task": {
                    "id": "ct%d" % n, "firmwareId": fw, "name": "cloud task %d" % n,
                    "mode": rng.choice(("push", "pull")), "timeoutSeconds": 2}}
                with w.lock:
                    w.tasks["ct%d" % n] = fw
            elif r < 0.9 and ctasks:
                cmd = {"messageType": "TASK_PUBLISH", "taskId": rng.choice(ctasks), "all": True}
            elif ctasks:
                cmd = {"messageType": "TASK_CANCEL", "taskId": rng.choice(ctasks)}
            else:
                continue
        cmd["messageId"] = "cc%d-%d" % (w.seed % 100000, n)
        try:
            with w.op("cloud command"):
                sim.send(cmd, timeout=1.0)
        except Exception:   # noqa: BLE001 - no session (the daemon died or is connecting)
            w.stop.wait(0.02)
            continue
        armed.set()
        if cmd["messageType"] == "FIRMWARE_UPSERT":
            w.add_fw("cf%d" % n, product, "c%d" % n, None)
        w.stop.wait(0.01)


# -- serial devices (focus only: a read waits for the byte timeout) -------------------

def serial_step(w, rng):
    dev_id = rng.choice(SERIAL_DEVICES)
    if not w.dev_locks[dev_id].acquire(blocking=False):
        return
    d = w.serial[dev_id]
    try:
        with w.op("serial"):
            serial_device_step(w, rng, d)
    except (TimeoutError, OSError):
        pass                                   # the daemon died or the line was noisy
    finally:
        try:
            d.resync(quiet=0.05, timeout=0.3)
        except (TimeoutError, OSError):
            pass
        w.dev_locks[dev_id].release()


def serial_device_step(w, rng, d):
    dev_id = d.device_id
    if rng.random() < 0.2:
        d.report(w.versions[dev_id])
        return
    pushes = [m for m in d.received[w.seen[dev_id]:]
              if m.get("messageType") == "UPGRADE_FIRMWARE"]
    w.seen[dev_id] = len(d.received)
    if pushes:
        job = pushes[-1]
        d.upgrade_reply(job.get("messageId"), True)
    else:
        job = d.pull(force=rng.random() < 0.3, timeout=1.0)
        w.seen[dev_id] = len(d.received)
        if job.get("success") is not True:
            return
    if not str(job.get("url", "")).startswith("ymodem:"):
        return
    cancel = None if rng.random() < 0.7 else rng.randint(0, 4)
    res = d.ymodem_receive(timeout=OP_TIMEOUT, byte_timeout=SERIAL_BYTE_WAIT,
                           cancel_after=cancel)
    fw, version = job.get("firmwareId"), job.get("version")
    data = w.data_of(fw)
    if res.ok and data is not None and res.data != data:
        w.bad("serial %s: YMODEM gave %d bytes that are not the image of %s"
              % (dev_id, len(res.data), fw))
    if res.ok:
        d.resync(quiet=0.05, timeout=0.3)
        ok = rng.random() < 0.8
        d.progress(version, fw, 100 if ok else 30, complete=True, success=ok)
        if ok:
            d.report(version)
            w.versions[dev_id] = version


def focus_loop(step):
    def run(w, rng, armed):
        while not w.stop.is_set():
            armed.set()
            step(w, rng)
    return run


# name: (function, kill window in s after the focus is armed)
FOCUS = {
    "rest": (focus_loop(rest_step), 0.05),
    "tcp devices": (focus_loop(tcp_step), 0.05),
    "http devices": (focus_loop(http_step), 0.05),
    "image upload": (focus_upload, 0.25),
    "bundle post": (focus_bundle_post, 0.3),
    "bundle import_dir": (focus_bundle_dir, 2.5),
    "gateway download": (focus_download, 1.4),
    "image get": (focus_image_get, 0.05),
    "cloud": (focus_cloud, 0.1),
    "serial devices": (focus_loop(serial_step), 0.15),
}


def background(w, rng, step, pause):
    while not w.stop.is_set():
        step(w, rng)
        w.stop.wait(pause)


def guarded(w, fn, *args):
    """Runs a worker; an exception in it (a bug of this test, or a reply
    of a shape it did not expect) fails the test instead of a warning."""
    try:
        fn(w, *args)
    except Exception:   # noqa: BLE001
        import traceback
        w.bad("worker %s: %s" % (getattr(fn, "__name__", fn), traceback.format_exc()))


# -- setup -------------------------------------------------------------------------------

def make_bundles(w, tmp, seed, count=6):
    for k in range(count):
        fws, images = [], {}
        for j in range(1 + k % 2):
            product = PRODUCTS[(k + j) % 2]
            version = "b%d.%d" % (k, j)
            data = image_bytes(seed * 31 + k * 7 + j, 96 * 1024 + 1000 * k)
            file = "images/%s-%s.bin" % (product, version)
            images[file] = data
            fid = "bf%d_%d" % (k, j)
            fws.append(bundlegen.fw_entry(product, version, file, data, id=fid,
                                          versionOrder=1000 + k,
                                          tasks=[{"id": "bt%d_%d" % (k, j), "name": "bundle",
                                                  "mode": "pull", "timeoutSeconds": 4,
                                                  "all": True}]))
            w.add_fw(fid, product, version, data)
        path = os.path.join(tmp, "bundle%d.tar.gz" % k)
        bundlegen.build(path, bundlegen.manifest("crash-%d" % k, fws), images)
        w.bundles.append(path)


def serial_lines(tmp):
    """One socat pty pair per serial device (the pair outlives the daemon's
    kills); returns (the [serial] sections, the socat processes)."""
    conf, procs = "", []
    for i, dev in enumerate(SERIAL_DEVICES):
        gw_end, dev_end = os.path.join(tmp, dev + "-gw"), os.path.join(tmp, dev + "-dev")
        procs.append(ptyrelay.start_socat_pair(gw_end, dev_end))
        conf += ("\n[serial line%d]\npath = %s\nproduct = %s\nymodem_timeout = 2\n"
                 "ymodem_retries = 1\nymodem_start_timeout = 1\nreopen_max_delay = 1\n"
                 % (i, gw_end, dev_product(dev)))
    return conf, procs


def start_nginx(tmp):
    d = os.path.join(tmp, "nginx")
    os.makedirs(d)
    ngx = cachesrv.Nginx(
        d, http_extra="  map $http_range $otagw_rate { default 0; \"\" 5m; }\n",
        server_extra="    location /img/ { limit_rate $otagw_rate; }\n")
    ngx.start()
    return ngx


# -- checks ------------------------------------------------------------------------------

class Checks:
    def __init__(self, g, legal):
        self.g, self.legal = g, legal
        self.db = crashcheck.db_path(g.data_dir)
        self.cache = os.path.join(g.data_dir, "cache")
        self.memo = {}
        self.outbox = {}
        self.took = collections.Counter()

    def _timed(self, name, fn, *a):
        t = time.monotonic()
        try:
            return fn(*a)
        finally:
            self.took[name] += time.monotonic() - t

    def database(self, when):
        out = self._timed("integrity", crashcheck.integrity, self.db)
        if not out:
            out = self._timed("history", crashcheck.history_problems, self.db, self.legal)
        return ["%s: %s" % (when, p) for p in out]

    def offline(self):
        """The killed daemon's files, before the restart."""
        out = self.database("after the kill")
        out += ["after the kill: %s" % p for p in
                self._timed("cache files", crashcheck.cache_problems, self.cache, self.memo)]
        if not out:
            self.outbox.update(self._timed("outbox", crashcheck.outbox_rows, self.db))
        return out

    def online(self, full):
        """After the restart (its reconcile is done before it answers HTTP)."""
        out = self._timed("partials", crashcheck.orphan_partials, self.cache, self.db)
        out += crashcheck.spool_leftovers(self.g.data_dir)
        out = ["after the restart: %s" % p for p in out]
        if full:
            out += self.database("after the restart")
            out += ["after the restart: %s" % p for p in
                    self._timed("cache files", crashcheck.cache_problems, self.cache, self.memo)]
        return out


def fail_with(seed, k, focus, problems, g):
    raise AssertionError("seed %s, kill %d (focus %s): %d problems:\n  %s\ndaemon stderr tail:\n%s"
                         % (seed, k, focus, len(problems), "\n  ".join(problems[:30]),
                            g.stderr(tail=30)))


def cloud_toggle(sim, rng, up):
    """Random cloud weather between two daemon lives; returns whether it is up."""
    if rng.random() < 0.3:
        sim.set_ack_mode(rng.choice(("every", "lazy", "none")))
    if rng.random() < 0.25:
        if up:
            sim.stop()
        else:
            sim.start()
        up = not up
    return up


def settle(w, g, sim, seed):
    """The end: the cloud up and acking, the backlog drained, every task
    canceled (the cloud's through the cloud); then repeated until a clean
    stop leaves no frame but droppable ones in the outbox."""
    sim.start()                      # no-op when it is up
    sim.set_ack_mode("every")
    g.restart()
    wait_drained(g, sim, timeout=120)
    for t in sorted(w.tasks):
        if not t.startswith("ct"):
            st, _, _, raw = w.req("POST", "/api/tasks/%s/cancel" % t)
            assert st in (200, 404, 409), "cancel %s -> %s %r" % (t, st, raw)
            continue
        try:
            rep = sim.send_command({"messageType": "TASK_CANCEL", "taskId": t}, timeout=30)
        except Exception as e:   # noqa: BLE001 - cloudsim.Timeout
            raise AssertionError("seed %d: TASK_CANCEL %s: %s; /api/cloud %r; cloudsim "
                                 "connected %s, stored %d, acked %d" % (
                                     seed, t, e, cstate(g), sim.connected, sim.stored_seq(),
                                     sim.acked_seq())) from None
        assert rep.get("success") or rep.get("code") == "not_found", rep
    for _ in range(5):
        wait_drained(g, sim, timeout=60)
        rc, _ = g.stop()
        assert rc == 0, "otagw exited %s on SIGTERM" % rc
        left = {s: v for s, v in crashcheck.outbox_rows(crashcheck.db_path(g.data_dir)).items()
                if v[0] not in crashcheck.DROPPABLE}
        if not left:
            return
        g.start()
    raise AssertionError("the outbox never emptied: %r" % sorted(left)[:10])


# -- the test ----------------------------------------------------------------------------

def test_kill9_random_workload(gw_factory, tmp_path):
    seed = int(os.environ.get("OTAGW_CONSISTENCY_SEED") or random.SystemRandom().randrange(1 << 30))
    print("crash consistency: seed %d, %d kills (OTAGW_CONSISTENCY_SEED=%d to repeat)"
          % (seed, KILLS, seed))
    rng = random.Random(seed)
    tmp = str(tmp_path)
    import_dir = os.path.join(tmp, "usb")
    os.makedirs(import_dir)
    ngx = start_nginx(tmp)
    sim = CloudSim(token=CLOUD_TOKEN, gateway_id=GW_ID, hello_ack_from="acked")
    sim.start()
    socats, w = [], None
    try:
        serial_conf, socats = serial_lines(tmp)
        tcp_port = free_port()
        g = gw_factory(start=False, log_level=os.environ.get("OTAGW_CONSISTENCY_LOG", "warn"),
                       config_extra=(
            "[gateway]\nimport_dir = %s\nimport_interval = 1\n" % import_dir
            + tcp_section(tcp_port, "jsonline", idle_timeout=600)
            + "\n[cache]\nmax_bytes = %d\nmax_retry_delay = 1\ntimeout = 5\n" % (96 << 20)
            + cloud_conf(sim, token=CLOUD_TOKEN, gateway_id=GW_ID, progress_interval=1,
                         status_interval=5)
            + serial_conf))
        g.tcp_port = tcp_port
        g.start()
        wait_until(lambda: port_accepts(tcp_port), "TCP port %d" % tcp_port)
        w = World(seed, g, tmp, sim, ngx, import_dir)
        for dev in SERIAL_DEVICES:
            w.serial[dev] = serialdev.SerialDevice(os.path.join(tmp, dev + "-dev"), dev,
                                                   product=dev_product(dev), timeout=1.0)
        make_bundles(w, tmp, seed)
        run_kills(w, g, sim, rng, seed)
    finally:
        if w is not None:
            for d in list(w.tcp.values()) + list(w.serial.values()):
                if d is not None:
                    d.close()
        for p in socats:
            ptyrelay.stop_socat(p)
        sim.close()
        ngx.stop()


def run_kills(w, g, sim, rng, seed):
    checks = Checks(g, crashcheck.legal_moves())
    order = []
    landed = collections.Counter()     # op in flight at a kill -> kills
    focus_kills = collections.Counter()
    up = True
    t0 = time.monotonic()
    for k in range(KILLS):
        if not order:
            order = sorted(FOCUS)
            rng.shuffle(order)
        focus = order.pop()
        if focus == "cloud" and not up:
            sim.start()
            up = True
        w.round = k
        w.stop.clear()
        fn, window = FOCUS[focus]
        armed = threading.Event()
        threads = [threading.Thread(target=guarded, daemon=True,
                                    args=(w, fn, random.Random(rng.random()), armed))]
        for step, pause in ((rest_step, 0.01), (tcp_step, 0.005), (http_step, 0.005)):
            threads.append(threading.Thread(target=guarded, daemon=True, args=(
                w, background, random.Random(rng.random()), step, pause)))
        for t in threads:
            t.start()
        armed.wait(3.0)
        time.sleep(rng.uniform(0, window))
        if g.proc.poll() is not None:
            fail_with(seed, k, focus, ["the daemon died by itself (exit %s)" % g.proc.poll()], g)
        with w.lock:
            landed.update(n for n, c in w.inflight.items() if c > 0)
        focus_kills[focus] += 1
        kill9(g)
        w.stop.set()
        for t in threads:
            t.join(JOIN_TIMEOUT)
        assert not any(t.is_alive() for t in threads), "seed %d: workers hung" % seed
        problems = checks.offline()
        if problems:
            fail_with(seed, k, focus, problems, g)
        up = cloud_toggle(sim, rng, up)
        g.start()
        problems = checks.online(full=(k % CHECK_EVERY == CHECK_EVERY - 1))
        if problems:
            fail_with(seed, k, focus, problems, g)
        if w.unexpected:
            fail_with(seed, k, focus, w.unexpected, g)
    took = time.monotonic() - t0

    settle(w, g, sim, seed)
    problems = checks.database("at the end") + crashcheck.cache_problems(checks.cache)
    checks.outbox.update(crashcheck.outbox_rows(checks.db))
    stored = [(r["seq"], r["type"], r["raw"], r["conn"]) for r in sim.records()]
    dups = [(r["seq"], r["type"], r["raw"], r["conn"]) for r in sim.duplicate_records()]
    hello = {e["conn"]: e["ackSeq"] for e in sim.events("hello")}
    hist = crashcheck.history_rows(checks.db)
    problems += crashcheck.cloud_problems(stored, dups, hello, checks.outbox, hist)
    problems += ["cloudsim: %s" % v for v in sim.violations()]
    print("%d kills in %.0f s (%.2f s each); checks took %s" % (
        KILLS, took, took / max(1, KILLS),
        ", ".join("%s %.1f s" % kv for kv in sorted(checks.took.items()))))
    print("focus per kill: %s" % dict(sorted(focus_kills.items())))
    print("operations in flight at the kills: %s" % dict(landed.most_common()))
    ranges = [r for st, r, _, _ in w.ngx.log() if st == 206 and r and not r.startswith("bytes=0-")]
    print("gateway downloads: %d started, %d resumed with a Range" % (w.downloads, len(ranges)))
    print("operations run: %d; history rows %d; cloud: %d frames stored, %d resent and "
          "dropped, %d connections; outbox frames seen %d" % (
              sum(w.ops.values()), len(hist), len(stored), len(dups), sim.connections,
              len(checks.outbox)))
    if problems:
        fail_with(seed, KILLS, "end", problems, g)
    # the workload reached what it is meant to: resent frames the cloud
    # dropped, every kind of state change
    assert dups or KILLS < 50, "seed %d: the cloud never got a frame twice" % seed
    moves = collections.Counter((f, t) for _, f, t, _ in hist)
    for mv in (("", "waiting"), ("waiting", "processing"), ("processing", "success"),
               ("processing", "failed"), ("waiting", "canceled")):
        assert moves[mv] > 0 or KILLS < 20, "seed %d: no %s -> %s in the history: %r" % (
            seed, mv[0] or "(new)", mv[1], moves)


# -- the checkers can fail -----------------------------------------------------------------

def _scratch(src_dir, dst):
    shutil.copytree(src_dir, dst)
    return dst


def _sql(db, *stmts):
    con = sqlite3.connect(db)
    try:
        for s in stmts:
            con.execute(*s) if isinstance(s, tuple) else con.execute(s)
        con.commit()
    finally:
        con.close()


def test_checkers_catch_corruption(gw_factory, tmp_path):
    """A real data directory (records through success, failure and cancel,
    a cached image), then each checker on a scratch copy: silent on the
    copy as it is, loud on each damage."""
    legal = crashcheck.legal_moves()
    initial, moves = legal
    assert initial == {"waiting", "success"}, initial
    assert moves["processing"] >= {"success", "failed", "canceled"} and \
        not moves["success"] and not moves["canceled"], moves

    tcp_port = free_port()
    g = gw_factory(config_extra=tcp_section(tcp_port, "jsonline"))
    data = image_bytes(5, 20000)
    fw = g.ok("POST", "/api/firmware", {"productId": "pa", "name": "x", "version": "2.0",
                                        "size": len(data), "sign": sha(data),
                                        "signMethod": "sha256"}, expect=201)["id"]
    st, _, _ = cachesrv.put_bytes(g.port, fw, data)
    assert st == 200
    for d in ("t0", "t1", "t2"):
        g.ok("POST", "/api/devices", {"id": d, "productId": "pa"}, expect=201)
    task = g.ok("POST", "/api/firmware/%s/tasks" % fw, {"name": "t", "mode": "pull"},
                expect=201)["id"]
    g.ok("POST", "/api/tasks/%s/publish" % task, {"all": True})
    for d, ok in (("t0", True), ("t1", False)):
        with devsim.Device(HOST, tcp_port, "jsonline", d) as dev:
            rep = dev.pull()
            assert rep["success"] is True, rep
            dev.progress("2.0", fw, 100, complete=True, success=ok)
            dev.pull()                             # a round trip: the progress is handled
    g.ok("POST", "/api/tasks/%s/cancel" % task)
    recs = {r["deviceId"]: r for r in otagw_it.records(g, task)}
    assert [recs[d]["state"] for d in ("t0", "t1", "t2")] == ["success", "failed", "canceled"]
    rc, _ = g.stop()
    assert rc == 0
    src = g.data_dir
    n = [0]

    def copy():
        n[0] += 1
        d = _scratch(src, str(tmp_path / ("scratch%d" % n[0])))
        return d, crashcheck.db_path(d), os.path.join(d, "cache")

    # as it is: nothing to report
    d, db, cache = copy()
    assert crashcheck.integrity(db) == []
    assert crashcheck.history_problems(db, legal) == []
    assert crashcheck.cache_problems(cache) == []
    assert crashcheck.orphan_partials(cache, db) == []
    assert crashcheck.spool_leftovers(d) == []
    assert crashcheck.overdue_processing(db, otagw_it.now_ms(), 0) == []
    rid = {dv: recs[dv]["id"] for dv in recs}

    # history: a record whose state its history does not reach
    d, db, cache = copy()
    _sql(db, ("UPDATE record SET state = 'failed' WHERE id = ?", (rid["t0"],)))
    assert any("its history ends in 'success'" in p
               for p in crashcheck.history_problems(db, legal))
    # a row missing in the middle of a chain
    d, db, cache = copy()
    _sql(db, ("DELETE FROM record_history WHERE record_id = ? AND to_state = 'processing'",
              (rid["t0"],)))
    assert any("but the state was 'waiting'" in p for p in crashcheck.history_problems(db, legal))
    # an illegal move, consistently recorded
    d, db, cache = copy()
    _sql(db, ("INSERT INTO record_history (record_id, task_id, device_id, from_state, to_state,"
              " time) VALUES (?, ?, 't0', 'success', 'processing', 1)", (rid["t0"], task)),
         ("UPDATE record SET state = 'processing' WHERE id = ?", (rid["t0"],)))
    assert any("'success' -> 'processing' is not a legal move" in p
               for p in crashcheck.history_problems(db, legal))
    # a chain that does not start at ""
    d, db, cache = copy()
    _sql(db, ("UPDATE record_history SET from_state = 'waiting' WHERE record_id = ? AND"
              " from_state = ''", (rid["t2"],)))
    assert crashcheck.history_problems(db, legal)
    # a record without history
    d, db, cache = copy()
    _sql(db, ("DELETE FROM record_history WHERE record_id = ?", (rid["t2"],)))
    assert any("has no history" in p for p in crashcheck.history_problems(db, legal))
    # processing past its timeout
    _sql(db, ("UPDATE record SET state = 'processing', timeout_seconds = 1, update_time = 5"
              " WHERE id = ?", (rid["t2"],)))
    assert crashcheck.overdue_processing(db, otagw_it.now_ms(), 1000)

    # integrity: every page but the first overwritten
    d, db, cache = copy()
    with open(db, "r+b") as f:
        page = int.from_bytes(f.read(18)[16:18], "big") or 65536
        size = os.path.getsize(db)
        assert size >= 3 * page, "database of %d bytes" % size
        junk = random.Random(1).randbytes(page)
        for off in range(page, size, page):
            f.seek(off)
            f.write(junk)
    assert crashcheck.integrity(db), "integrity_check passed a garbled file"

    # cache: one byte of the image flipped
    d, db, cache = copy()
    name = sha(data)
    p = os.path.join(cache, name)
    with open(p, "r+b") as f:
        f.seek(1234)
        b = f.read(1)
        f.seek(1234)
        f.write(bytes([b[0] ^ 0x40]))
    assert any(name in x for x in crashcheck.cache_problems(cache))

    # partials: one nobody owns, then the same one owned by a download
    d, db, cache = copy()
    token = "ab" * 16
    os.makedirs(os.path.join(cache, "partial"), exist_ok=True)
    with open(os.path.join(cache, "partial", token + ".part"), "wb") as f:
        f.write(b"x" * 100)
    assert any(token in x for x in crashcheck.orphan_partials(cache, db, interval=0.01))
    _sql(db, ("UPDATE firmware SET image_state = 'downloading', image_partial = ? WHERE id = ?",
              (token, fw)))
    assert crashcheck.orphan_partials(cache, db, interval=0.01) == []
    os.makedirs(os.path.join(d, "bundles"), exist_ok=True)
    open(os.path.join(d, "bundles", "x.upload"), "wb").close()
    assert crashcheck.spool_leftovers(d)

    cloud_checker_selftest()


def cloud_checker_selftest():
    def rs(seq, rid, frm, to, t):
        f = {"seq": seq, "messageType": "RECORD_STATE", "recordId": rid, "to": to, "time": t}
        if frm:
            f["from"] = frm
        return (seq, "RECORD_STATE", json.dumps(f), 1)
    history = [("r1", "", "waiting", 10), ("r1", "waiting", "processing", 11),
               ("r2", "", "waiting", 12)]
    stored = [rs(1, "r1", "", "waiting", 10), rs(2, "r1", "waiting", "processing", 11),
              (3, "CHILD", '{"seq":3}', 1), rs(5, "r2", "", "waiting", 12)]
    outbox = {s[0]: (s[1], s[2]) for s in stored}
    outbox[4] = ("GATEWAY_STATUS", '{"seq":4}')             # superseded: may be dropped
    hello = {1: 0, 2: 2}
    good = crashcheck.cloud_problems(stored, [stored[2][:3] + (2,)], hello, outbox, history)
    assert good == [], good
    cases = {
        "acknowledged": ([stored[1][:3] + (2,)], stored, outbox, history),
        "other bytes than its first": ([(3, "CHILD", '{"seq":3,"x":1}', 2)], stored, outbox,
                                       history),
        "never reached the cloud": ([], stored[:2] + stored[3:], outbox, history),
        "reached the cloud 2 times": ([], stored + [rs(6, "r2", "", "waiting", 12)], outbox,
                                      history),
        "has no state change": ([], stored, outbox, history[:2]),
        "strictly increasing": ([], [stored[1], stored[0]] + stored[2:], outbox, history),
    }
    for words, (dups, st, ob, hist) in cases.items():
        got = crashcheck.cloud_problems(st, dups, hello, ob, hist)
        assert any(words in p for p in got), "%s: %r" % (words, got)
    # an outbox frame the cloud holds with other bytes
    ob = dict(outbox)
    ob[3] = ("CHILD", '{"seq":3,"other":true}')
    assert any("other bytes than the outbox" in p
               for p in crashcheck.cloud_problems(stored, [], hello, ob, history))
