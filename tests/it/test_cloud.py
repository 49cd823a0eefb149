# SPDX-License-Identifier: MIT
"""The northbound cloud link (northbound/PROTOCOL.md) against the cloud
simulator tests/cloudsim.py: the real daemon with a [cloud] section pointing
at a CloudSim on 127.0.0.1.

  0. GET /api/cloud: its fields, "disabled" without [cloud], offline/online.
  1. the cloud rolls out firmware to a TCP device (devsim) and an HTTP device:
     FIRMWARE_UPSERT (image prefetched from a local HTTP server, sha256
     checked), TASK_CREATE, TASK_PUBLISH; CHILD reports, RECORD_STATE per
     change in order, PROGRESS_BATCH, one REPLY per command.
  2. ownership (409 locally for cloud objects, REPLY conflict for cloud
     commands on local objects) and idempotent repeats; busy/cancel/delete.
  3. CHILD UPGRADE_FIRMWARE: a direct upgrade of one child.
  4. an outage with 1,000 records (200 under the sanitizer build): the outbox
     stays bounded, everything arrives once, in order, after reconnecting.
  5. kill -9 during the outage and during the resend: nothing lost, nothing
     applied twice.
  6. faults: refused token, wss with a test CA (right, wrong, system store),
     a frame cut mid-way, a 16 MiB frame, malformed frames, unknown message
     types, protocol errors, a dead link found by the ping.

Fixtures: cloud(**CloudSim kwargs) makes simulators (closed at teardown);
cloudgw(sim, tcp=False, **[cloud] keys) starts a daemon through conftest's
gw_factory (stopped and checked there) and waits for the link. Every wait is
bounded. Device counts are scaled down for the sanitizer build
(cachesrv.is_san_build(): OTAGW_BIN under build/san/)."""

import hashlib
import http.client
import json
import os
import select
import socket
import sys
import threading
import time
import uuid

import pytest

import cachesrv
import otagw_it
from otagw_it import HOST, free_port, mk_dev, port_accepts
from test_http_dev import Dev
from test_tcp import make_fw, record_of, tcp_section, wait_record, wait_until

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import devsim  # noqa: E402
import ptyrelay  # noqa: E402
import serialdev  # noqa: E402
from cloudsim import CloudSim  # noqa: E402

GW_ID = "gw-it.1"
TOKEN = "cloud-token-7a1f"
CONNECT_WAIT = 15.0      # s: daemon start -> HELLO_ACK
CMD_WAIT = 10.0          # s: command -> REPLY
WAIT = 10.0              # s: anything else "at once"
DRAIN_WAIT = 60.0        # s: outbox drained after an outage


def san():
    return cachesrv.is_san_build()


# -- fixtures ------------------------------------------------------------------------

@pytest.fixture
def cloud():
    """Factory of started CloudSims (token TOKEN, gateway GW_ID unless told)."""
    sims = []

    def make(**kw):
        kw.setdefault("token", TOKEN)
        kw.setdefault("gateway_id", GW_ID)
        s = CloudSim(**kw)
        sims.append(s)
        s.start()
        return s

    yield make
    for s in sims:
        s.close()


def cloud_conf(sim, url=None, token=TOKEN, gateway_id=GW_ID, **kw):
    lines = ["", "[cloud]", "url = %s" % (url or sim.url), "gateway_id = %s" % gateway_id,
             "token = %s" % token]
    lines += ["%s = %s" % kv for kv in kw.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def cloudgw(gw_factory, cloud):
    """Factory: cloudgw(sim=None, tcp=False, wait=True, **[cloud] keys) -> a
    started Gateway with .sim (its CloudSim), .tcp_port (when tcp) and
    .device(id, **devsim.Device kwargs) (closed at teardown)."""
    devices = []

    def make(sim=None, tcp=False, wait=True, log_level="info", extra_conf="", **cloud_kw):
        sim = sim or cloud()
        extra = cloud_conf(sim, **cloud_kw) + extra_conf
        tcp_port = free_port() if tcp else None
        if tcp:
            extra += tcp_section(tcp_port, "jsonline", idle_timeout=600)
        g = gw_factory(config_extra=extra, start=False, log_level=log_level)
        g.sim, g.tcp_port = sim, tcp_port

        def device(device_id, **kw):
            d = devsim.Device(HOST, tcp_port, "jsonline", device_id, **kw)
            devices.append(d)
            return d

        g.device = device
        g.start()
        if tcp:
            wait_until(lambda: port_accepts(tcp_port), "TCP port %d" % tcp_port)
        if wait:
            sim.wait_connected(timeout=CONNECT_WAIT)
            wait_online(g)
        return g

    yield make
    for d in devices:
        d.close()


# -- helpers -------------------------------------------------------------------------

def cstate(g):
    """GET /api/cloud."""
    return g.ok("GET", "/api/cloud")


def wait_online(g, timeout=WAIT):
    """The gateway has taken the HELLO_ACK (the simulator's wait_connected()
    returns as soon as it sent it)."""
    return wait_until(lambda: (lambda s: s if s["state"] == "online" else None)(cstate(g)),
                      "the cloud link to be online", timeout=timeout)


def mid(prefix="c"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:20])


def command(sim, mtype, timeout=CMD_WAIT, **fields):
    """Sends a command, returns its REPLY (checked for messageId/replyTo)."""
    cmd = dict(fields, messageType=mtype)
    cmd.setdefault("messageId", mid())
    rep = sim.send_command(cmd, timeout=timeout)
    assert rep["messageId"] == cmd["messageId"], rep
    assert rep.get("replyTo") == mtype, "REPLY without replyTo %s: %r" % (mtype, rep)
    return rep


def ok_command(sim, mtype, **fields):
    rep = command(sim, mtype, **fields)
    assert rep["success"] is True and "code" not in rep, "%s refused: %r" % (mtype, rep)
    assert isinstance(rep.get("result"), dict), rep
    return rep["result"]


def refused_command(sim, mtype, code, *mentions, **fields):
    rep = command(sim, mtype, **fields)
    assert rep["success"] is False and rep.get("code") == code, \
        "%s: expected REPLY code %r, got %r" % (mtype, code, rep)
    assert "result" not in rep, rep
    for m in mentions:
        assert m.lower() in rep.get("message", "").lower(), \
            "REPLY message %r does not name %r" % (rep.get("message"), m)
    return rep


def resend(sim, cmd, timeout=CMD_WAIT):
    """Sends cmd (with its messageId) again as the cloud may (PROTOCOL.md
    7.1) and returns the new REPLY to it (send_command() would return the
    REPLY it already holds)."""
    def replies(s):
        return [f for f in s.frames("REPLY") if f["messageId"] == cmd["messageId"]]
    n = len(replies(sim))
    sim.send(cmd, timeout=timeout)
    return sim.wait_for(lambda s: replies(s)[n:], timeout=timeout)[0]


def states_of(sim, task_id):
    """deviceId -> [RECORD_STATE frames of task_id] in seq order."""
    out = {}
    for f in sim.frames("RECORD_STATE"):
        if f["taskId"] == task_id:
            out.setdefault(f["deviceId"], []).append(f)
    return out


def moves(frames):
    return [(f.get("from"), f["to"]) for f in frames]


def progress_items(sim, task_id, device_id=None):
    """[(seq, item)] of the task's PROGRESS_BATCH items, in seq order."""
    out = []
    for r in sim.records("PROGRESS_BATCH"):
        if r["frame"]["taskId"] == task_id:
            out += [(r["seq"], it) for it in r["frame"]["items"]
                    if device_id is None or it["deviceId"] == device_id]
    return out


def reply_seq(sim, message_id):
    rs = [r["seq"] for r in sim.records("REPLY") if r["frame"]["messageId"] == message_id]
    assert len(rs) == 1, "REPLYs (deduplicated) to %s: %r" % (message_id, rs)
    return rs[0]


def no_violations(sim):
    v = sim.violations()
    assert not v, "the gateway broke PROTOCOL.md: %r" % (v[:10],)


def wait_drained(g, sim, timeout=DRAIN_WAIT):
    """Online, nothing queued or coalesced, everything acked."""
    def done():
        st = cstate(g)
        return st if (st["state"] == "online" and st["outbox"] == 0 and
                      st["pendingProgress"] == 0 and st["inFlight"] == 0 and
                      st["lastAck"] == st["lastSeq"]) else None
    try:
        return wait_until(done, "the outbox to drain", timeout=timeout, interval=0.1)
    except AssertionError as e:
        raise AssertionError("%s; /api/cloud: %r; cloudsim stored seq %d" % (
            e, cstate(g), sim.stored_seq())) from None


class SlowFileServer(cachesrv.FileServer):
    """A FileServer that waits `delay` s before each answer."""
    delay = 0.0

    def _get(self, h):
        time.sleep(self.delay)
        super()._get(h)


def image_server(size, seed, delay=0.0):
    data = cachesrv.rand_bytes(seed, size)
    srv = SlowFileServer(data, path="/fw/%s.bin" % seed)
    srv.delay = delay
    return srv.start(), data


class HttpPool:
    """Requests over a few keep-alive connections (one thread each, one
    request in flight per connection: the daemon's HTTP server is not fed
    pipelined requests). run() raises on any non-2xx answer."""

    def __init__(self, port, conns=4):
        self.port, self.conns = port, conns

    def run(self, reqs, before=None):
        """reqs: [(method, path, body)]; before(req) runs before each send."""
        errors = []

        def worker(part):
            c = http.client.HTTPConnection(HOST, self.port, timeout=30)
            try:
                for method, path, body in part:
                    if errors:
                        return
                    if before:
                        before((method, path, body))
                    data = json.dumps(body).encode()
                    c.request(method, path, body=data,
                              headers={"Content-Type": "application/json"})
                    r = c.getresponse()
                    out = r.read()
                    if not 200 <= r.status < 300:
                        errors.append("%s %s -> %d %r" % (method, path, r.status, out[:200]))
            except (OSError, http.client.HTTPException) as e:
                errors.append("%s" % e)
            finally:
                c.close()

        ts = [threading.Thread(target=worker, args=(reqs[i::self.conns],), daemon=True)
              for i in range(self.conns)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not any(t.is_alive() for t in ts), "HTTP requests hung"
        assert not errors, "%d requests failed, e.g. %r" % (len(errors), errors[:3])


PRODUCT = "pz"
VERSION = "2.0"


def fleet(g, tmp_path, n, pool):
    """n devices of PRODUCT made through the REST API, a local firmware
    (image uploaded), a pull task published to all of them. Returns (task
    id, device ids)."""
    ids = ["dev%05d" % i for i in range(n)]
    pool.run([("POST", "/api/devices", {"id": d, "productId": PRODUCT,
                                        "firmwareVersion": "1.0"}) for d in ids])
    fw, _ = make_fw(g, tmp_path, productId=PRODUCT, version=VERSION, size=2048)
    t = g.ok("POST", "/api/firmware/%s/tasks" % fw["id"],
             {"name": "fleet", "mode": "pull"}, expect=201)
    res = g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    assert res["added"] == n, res
    return t["id"], ids


def dev_path(device_id, topic):
    return "/device/%s/%s/firmware/%s" % (PRODUCT, device_id, topic)


def pulls(ids):
    return [("POST", dev_path(d, "pull"), {"messageId": "pull-" + d}) for d in ids]


def progresses(ids, pct):
    return [("POST", dev_path(d, "upgrade/progress"),
             {"version": VERSION, "progress": pct, "success": True}) for d in ids]


def completes(ids):
    return [("POST", dev_path(d, "upgrade/progress"),
             {"version": VERSION, "progress": 100, "complete": True, "success": True})
            for d in ids]


def check_delivery(sim, task_id, expect, last_progress):
    """What the cloud holds for task_id, after an outage:
    - accepted frames in strictly increasing seq; every duplicate the
      simulator dropped is a byte-identical resend of a frame it holds;
    - per device exactly the expected state moves (expect: id -> [(from,
      to)]), each once, in seq order;
    - the last thing the cloud knows of each device (its last RECORD_STATE or
      a later PROGRESS_BATCH item) carries the device's last progress, and no
      PROGRESS_BATCH item follows a final state."""
    recs = sim.records()
    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(set(seqs)), "accepted seqs not strictly increasing"
    raw = {r["seq"]: r["raw"] for r in recs}
    dups = sim.duplicate_records()
    bad = [d["seq"] for d in dups if raw.get(d["seq"]) != d["raw"]]
    assert not bad, "resent frames that differ from the first copy (or were never " \
        "accepted), seqs %r" % bad[:10]
    events = {}
    for r in recs:
        f = r["frame"]
        if f.get("taskId") != task_id:
            continue
        if r["type"] == "RECORD_STATE":
            events.setdefault(f["deviceId"], []).append(("state", r["seq"], f))
        elif r["type"] == "PROGRESS_BATCH":
            for it in f["items"]:
                events.setdefault(it["deviceId"], []).append(("item", r["seq"], it))
    problems = []
    for dev, want in expect.items():
        ev = events.get(dev, [])
        got = [(e[2].get("from"), e[2]["to"]) for e in ev if e[0] == "state"]
        if got != want:
            problems.append("%s: state moves %r, expected %r" % (dev, got, want))
            continue
        last = ev[-1][2]
        if last.get("progress") != last_progress[dev]:
            problems.append("%s: last progress the cloud got is %r (%s), the device's last "
                            "is %d" % (dev, last.get("progress"), ev[-1][0], last_progress[dev]))
        states = [e for e in ev if e[0] == "state"]
        if states[-1][2]["to"] in ("success", "failed", "canceled") and ev[-1][0] != "state":
            problems.append("%s: PROGRESS_BATCH item after its final state" % dev)
    assert not problems, "%d devices wrong, e.g.:\n  %s" % (len(problems),
                                                           "\n  ".join(problems[:10]))
    return len(dups)


def kill9(g):
    """SIGKILL, reaped; g.start() runs a new daemon on the same data dir."""
    g.proc.kill()
    g.proc.wait(10)
    g.proc = None


class FreezeProxy:
    """A TCP relay 127.0.0.1:port -> target; freeze() stops relaying on the
    connections open now (both ways, nothing read), so the peer looks alive
    at the TCP level but answers nothing. Later connections relay normally."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.pairs = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self):
        return "ws://%s:%d/otagw" % (HOST, self.port)

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection((HOST, self.target), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            pair = {"frozen": threading.Event(), "socks": (c, u)}
            self.pairs.append(pair)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b, pair), daemon=True).start()

    def _pump(self, a, b, pair):
        while not self.closed:
            if pair["frozen"].is_set():
                time.sleep(0.05)
                continue
            try:
                r, _, _ = select.select([a], [], [], 0.05)
                if not r:
                    continue
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
            except (OSError, ValueError):
                break
        if not pair["frozen"].is_set():
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def kill_frozen(self):
        """Closes the frozen connections (the half-open leftover finally dies)."""
        for p in self.pairs:
            if p["frozen"].is_set():
                for s in p["socks"]:
                    try:
                        s.close()
                    except OSError:
                        pass

    def freeze(self):
        for p in self.pairs:
            p["frozen"].set()
        return len(self.pairs)

    def close(self):
        self.closed = True
        self.lsock.close()
        for p in self.pairs:
            for s in p["socks"]:
                try:
                    s.close()
                except OSError:
                    pass


# -- GET /api/cloud ---------------------------------------------------------------------

CLOUD_KEYS = {"state", "url", "gatewayId", "lastError", "outbox", "pendingProgress", "lastSeq",
              "lastSent", "lastAck", "inFlight", "reconnects", "connectedSince", "framesSent",
              "framesReceived", "commands"}


def test_api_cloud_status(gw_factory, cloudgw):
    plain = gw_factory()
    assert plain.ok("GET", "/api/cloud") == {"state": "disabled"}
    g = cloudgw()
    st = cstate(g)
    assert set(st) == CLOUD_KEYS, sorted(set(st) ^ CLOUD_KEYS)
    assert (st["state"], st["url"], st["gatewayId"], st["lastError"]) == \
        ("online", g.sim.url, GW_ID, ""), st
    assert all(isinstance(st[k], int) and st[k] >= 0 for k in CLOUD_KEYS - {
        "state", "url", "gatewayId", "lastError"}), st
    assert st["connectedSince"] > 0 and st["lastSeq"] >= 1 and st["framesSent"] >= 2, st
    g.sim.stop()
    st = wait_until(lambda: (lambda s: s if s["state"] != "online" else None)(cstate(g)),
                    "the link to go down")
    assert st["state"] in ("offline", "resolving", "connecting", "hello") and \
        st["connectedSince"] == 0 and st["lastError"], st
    g.sim.start()
    wait_online(g, timeout=CONNECT_WAIT)
    assert cstate(g)["reconnects"] == 1


# -- 1. a roll-out by the cloud ---------------------------------------------------------

def test_cloud_rollout_tcp_and_http_devices(cloudgw, tmp_path):
    """Three children, one per transport: TCP (devsim), HTTP (urllib) and
    serial (lrzsz's rz over a socat pty pair)."""
    ser_gw, ser_dev = str(tmp_path / "ser-gw"), str(tmp_path / "ser-dev")
    socat = ptyrelay.start_socat_pair(ser_gw, ser_dev, str(tmp_path / "socat.log"))
    serial_conf = ("\n[serial s1]\npath = %s\nproduct = pc\nymodem_timeout = 2\n"
                   "ymodem_start_timeout = 20\n" % ser_gw)
    g = cloudgw(tcp=True, progress_interval=1, extra_conf=serial_conf)
    sim = g.sim
    srv, image = image_server(96 * 1024 + 5, "rollout")
    sd = None
    try:
        wait_until(lambda: g.ok("GET", "/api/serial")["ports"][0]["state"] == "open",
                   "serial port open")
        sd = serialdev.SerialDevice(ser_dev, "ser1", product="pc", timeout=WAIT)
        sd.report("1.0.0", {"hw": "C3"})
        f = sim.wait_frame("CHILD", lambda f: f["childDeviceId"] == "ser1", timeout=WAIT)
        assert f["childDeviceMessage"]["version"] == "1.0.0", f
        sha = hashlib.sha256(image).hexdigest()
        # the children report first: each REPORT_FIRMWARE goes up as CHILD
        td = g.device("tcp1", product_id="pc")
        td.report("1.0.0", {"hw": "A2"})
        hd = Dev(g, "pc", "http1")
        hd.report("1.0.0", {"hw": "B1"})
        for dev, ver, props in (("tcp1", "1.0.0", {"hw": "A2"}), ("http1", "1.0.0", {"hw": "B1"})):
            f = sim.wait_frame("CHILD", lambda f, d=dev: f["childDeviceId"] == d, timeout=WAIT)
            inner = f["childDeviceMessage"]
            assert f["deviceId"] == GW_ID, f
            assert (inner["messageType"], inner["deviceId"], inner["version"]) == \
                ("REPORT_FIRMWARE", dev, ver), f
            assert inner.get("properties") == props, f

        fw_mid, task_mid, pub_mid = mid("fw"), mid("tc"), mid("tp")
        res = ok_command(sim, "FIRMWARE_UPSERT", messageId=fw_mid, firmware={
            "id": "fw-c1", "productId": "pc", "name": "cloud fw", "version": "2.0.0",
            "versionOrder": 2, "url": srv.url(), "size": len(image), "sign": sha,
            "signMethod": "SHA256", "properties": {"hw": "A2"}})
        assert res == {"created": True}, res
        fw = g.ok("GET", "/api/firmware/fw-c1")
        assert fw["origin"] == "cloud" and fw["version"] == "2.0.0", fw
        img = cachesrv.wait_image(g, "fw-c1", "ready", timeout=20, never=("failed",))
        assert img["sha256"] == sha, img
        assert len(srv.requests) >= 1, "the image was not fetched from the firmware url"

        res = ok_command(sim, "TASK_CREATE", messageId=task_mid, task={
            "id": "t-c1", "firmwareId": "fw-c1", "name": "roll-out 2.0.0", "mode": "push",
            "timeoutSeconds": 600, "description": "from the cloud"})
        assert res == {"created": True}, res
        t = g.ok("GET", "/api/tasks/t-c1")
        assert (t["origin"], t["mode"], t["state"]) == ("cloud", "push", "created"), t

        res = ok_command(sim, "TASK_PUBLISH", messageId=pub_mid, taskId="t-c1",
                         deviceIds=["tcp1", "http1", "ser1"])
        assert res == {"added": 3, "already": 0, "upToDate": 0}, res

        # the serial device gets its push on the line, then YMODEM from rz
        sup = sd.wait_for("UPGRADE_FIRMWARE", timeout=WAIT)
        assert (sup["firmwareId"], sup["url"], sup["sign"]) == ("fw-c1", "ymodem:fw-c1", sha), \
            sup
        res = sd.rz(str(tmp_path), timeout=60)
        assert res.rc == 0 and not res.timed_out and res.files == ["fw-c1.bin"], res
        with open(res.path, "rb") as fh:
            assert fh.read() == image, "the serial child received other bytes"
        sd.progress("2.0.0", "fw-c1", 100, complete=True, success=True)

        # the TCP device gets the push with the gateway's own url
        up = td.wait_for("UPGRADE_FIRMWARE", timeout=WAIT)
        assert (up["firmwareId"], up["version"], up["url"], up["sign"]) == \
            ("fw-c1", "2.0.0", "chunk:fw-c1", sha), up
        td.upgrade_reply(up["messageId"], True)
        assert td.fetch_image("fw-c1", len(image), chunk=16384) == image
        td.progress("2.0.0", "fw-c1", 60)

        # the HTTP device long-polls for its push, reports, downloads
        st, hup = hd.poll(wait=5)
        assert st == 200 and hup["firmwareId"] == "fw-c1", (st, hup)
        assert hup["url"].startswith(g.base + "/images/fw-c1"), hup
        hd.ok("upgrade/progress", {"version": "2.0.0", "progress": 40, "success": True})
        st, _, _, body = otagw_it.http_request(g.port, "GET", "/images/fw-c1?device=http1")
        assert st == 200 and body == image

        # both progress values reach the cloud as PROGRESS_BATCH items
        for dev, pct in (("tcp1", 60), ("http1", 40)):
            sim.wait_for(lambda s, d=dev, p=pct: any(
                it["progress"] == p for _, it in progress_items(s, "t-c1", d)), timeout=WAIT)

        td.progress("2.0.0", "fw-c1", 100, complete=True, success=True)
        hd.ok("upgrade/progress", {"version": "2.0.0", "progress": 100, "complete": True,
                                   "success": True})
        for dev in ("tcp1", "http1", "ser1"):
            wait_record(g, "t-c1", dev, "success")
        td.report("2.0.0")
        hd.report("2.0.0")
        sd.report("2.0.0")
        sim.wait_for(lambda s: len([f for f in s.frames("CHILD")
                                    if f["childDeviceMessage"]["version"] == "2.0.0"]) == 3,
                     timeout=WAIT)
        sim.wait_for(lambda s: all(len(v) == 3 for v in states_of(s, "t-c1").values()) and
                     len(states_of(s, "t-c1")) == 3, timeout=WAIT)
    finally:
        srv.stop()
        if sd:
            sd.close()
        ptyrelay.stop_socat(socat)

    # every change of every record, once, in order, with the REST record's id
    st = states_of(sim, "t-c1")
    for dev in ("tcp1", "http1", "ser1"):
        fr = st[dev]
        assert moves(fr) == [(None, "waiting"), ("waiting", "processing"),
                             ("processing", "success")], (dev, fr)
        rec = record_of(g, "t-c1", dev)
        assert {f["recordId"] for f in fr} == {rec["id"]}, (fr, rec)
        assert all((f["firmwareId"], f["version"]) == ("fw-c1", "2.0.0") for f in fr), fr
        assert fr[-1]["progress"] == 100 and fr[0]["progress"] == 0, fr
        # no progress item after the record's final state (section 9)
        last_state = max(r["seq"] for r in sim.records("RECORD_STATE")
                         if r["frame"]["recordId"] == rec["id"])
        late = [s for s, _ in progress_items(sim, "t-c1", dev) if s > last_state]
        assert not late, "PROGRESS_BATCH items for %s after success: %r" % (dev, late)
    # the records' creation is queued before the REPLY of the TASK_PUBLISH
    created = [r["seq"] for r in sim.records("RECORD_STATE")
               if r["frame"]["taskId"] == "t-c1" and "from" not in r["frame"]]
    assert max(created) < reply_seq(sim, pub_mid), created
    # one REPLY per command, in command order
    assert reply_seq(sim, fw_mid) < reply_seq(sim, task_mid) < reply_seq(sim, pub_mid)
    for r in sim.frames("PROGRESS_BATCH"):
        if r["taskId"] == "t-c1":
            assert sum(r["counts"].values()) == 3, r
    assert sim.frames("GATEWAY_STATUS"), "no GATEWAY_STATUS after HELLO_ACK"
    assert sim.duplicates == 0
    no_violations(sim)
    st = cstate(g)
    assert st["state"] == "online" and st["commands"] == 3 and st["reconnects"] == 0, st
    assert not td.errors(), td.errors()


# -- 2. ownership, idempotence ----------------------------------------------------------

def test_ownership_and_idempotent_commands(cloudgw, tmp_path):
    g = cloudgw()
    sim = g.sim
    for d in ("o1", "o2", "o3"):
        mk_dev(g, d, productId="po", firmwareVersion="1.0")
    url = "http://127.0.0.1:9/never.bin"      # never fetched successfully: fine here
    fwc = {"id": "fw-own", "productId": "po", "name": "cloud fw", "version": "2.0",
           "url": url, "size": 1000, "sign": otagw_it.SHA256_A, "signMethod": "sha256"}
    assert ok_command(sim, "FIRMWARE_UPSERT", firmware=fwc) == {"created": True}
    task = {"id": "t-own", "firmwareId": "fw-own", "name": "own", "mode": "pull",
            "timeoutSeconds": 0}
    assert ok_command(sim, "TASK_CREATE", task=task) == {"created": True}

    # locally, what the cloud made is read-only (409)
    for method, path, body in (
            ("PUT", "/api/firmware/fw-own", {"name": "renamed"}),
            ("DELETE", "/api/firmware/fw-own", None),
            ("POST", "/api/tasks/t-own/publish", {"deviceIds": ["o1"]}),
            ("POST", "/api/tasks/t-own/cancel", {})):
        st, js, _ = g.req(method, path, body=body)
        assert st == 409, "%s %s on a cloud object -> %d %r" % (method, path, st, js)
        otagw_it.assert_error(st, js, 409, "cloud")
    st, js, _ = g.req("PUT", "/api/firmware/fw-own/image", raw=b"x" * 1000,
                      headers={"Content-Type": "application/octet-stream"})
    assert st == 409, (st, js)
    assert g.ok("GET", "/api/firmware/fw-own")["name"] == "cloud fw"
    assert g.ok("GET", "/api/tasks/t-own")["state"] == "created"

    # the cloud cannot touch what was made locally (REPLY conflict)
    fwl = otagw_it.mk_fw(g, productId="po", version="1.5")
    tl = otagw_it.mk_task(g, fwl["id"], name="local task")
    refused_command(sim, "FIRMWARE_UPSERT", "conflict", fwl["id"],
                    firmware={"id": fwl["id"], "name": "taken over"})
    refused_command(sim, "FIRMWARE_DELETE", "conflict", fwl["id"], firmwareId=fwl["id"])
    refused_command(sim, "TASK_CREATE", "conflict", tl["id"], task={
        "id": tl["id"], "firmwareId": fwl["id"], "name": "local task", "mode": "pull"})
    refused_command(sim, "TASK_PUBLISH", "conflict", tl["id"], taskId=tl["id"],
                    deviceIds=["o1"])
    refused_command(sim, "TASK_CANCEL", "conflict", tl["id"], taskId=tl["id"])
    assert g.ok("GET", "/api/firmware/%s" % fwl["id"])["name"] == fwl["name"]
    t = g.ok("GET", "/api/tasks/%s" % tl["id"])
    assert (t["state"], t["origin"], t["counts"]["total"]) == ("created", "local", 0), t
    # a cloud task may use local firmware
    assert ok_command(sim, "TASK_CREATE", task={"id": "t-on-local", "firmwareId": fwl["id"],
                                                "name": "x", "mode": "pull"}) == \
        {"created": True}

    # idempotent repeats change nothing
    n_states = len(sim.frames("RECORD_STATE"))
    assert ok_command(sim, "TASK_PUBLISH", taskId="t-own", deviceIds=["o1", "o2"]) == \
        {"added": 2, "already": 0, "upToDate": 0}
    sim.wait_for(lambda s: len(s.frames("RECORD_STATE")) == n_states + 2, timeout=WAIT)
    assert ok_command(sim, "FIRMWARE_UPSERT", firmware=fwc) == {"created": False}
    assert ok_command(sim, "TASK_CREATE", task=task) == {"created": False}
    assert ok_command(sim, "TASK_PUBLISH", taskId="t-own", deviceIds=["o1", "o2"]) == \
        {"added": 0, "already": 2, "upToDate": 0}
    assert ok_command(sim, "TASK_PUBLISH", taskId="t-own", deviceIds=["o2", "o3"]) == \
        {"added": 1, "already": 1, "upToDate": 0}
    # a command resent with its messageId (its REPLY was lost): answered again
    again = {"messageType": "TASK_PUBLISH", "messageId": mid("again"), "taskId": "t-own",
             "deviceIds": ["o1", "o3"]}
    assert ok_command(sim, "TASK_PUBLISH", **again) == {"added": 0, "already": 2,
                                                        "upToDate": 0}
    rep = resend(sim, again)
    assert rep["success"] and rep["result"] == {"added": 0, "already": 2, "upToDate": 0}, rep
    refused_command(sim, "TASK_CREATE", "conflict", "t-own",
                    task=dict(task, name="another name"))
    refused_command(sim, "TASK_CREATE", "not_found", task={
        "id": "t-nofw", "firmwareId": "fw-none", "name": "x", "mode": "pull"})
    refused_command(sim, "TASK_PUBLISH", "invalid", taskId="t-own", deviceIds=["o1", "ghost"])
    time.sleep(0.3)
    assert len(sim.frames("RECORD_STATE")) == n_states + 3, "repeats made state changes"
    assert len(otagw_it.records(g, "t-own")) == 3

    # busy while records are unfinished; cancel; delete; repeats of both
    refused_command(sim, "FIRMWARE_DELETE", "busy", firmwareId="fw-own")
    assert ok_command(sim, "TASK_CANCEL", taskId="t-own") == {"canceled": 3}
    assert ok_command(sim, "TASK_CANCEL", taskId="t-own") == {"canceled": 0}
    refused_command(sim, "TASK_PUBLISH", "conflict", taskId="t-own", deviceIds=["o1"])
    sim.wait_for(lambda s: len([f for f in s.frames("RECORD_STATE")
                                if f["taskId"] == "t-own" and f["to"] == "canceled"]) == 3,
                 timeout=WAIT)
    # all: true, on a cloud task of local firmware; all and deviceIds together: invalid
    refused_command(sim, "TASK_PUBLISH", "invalid", taskId="t-on-local", all=True,
                    deviceIds=["o1"])
    assert ok_command(sim, "TASK_PUBLISH", taskId="t-on-local", all=True) == \
        {"added": 3, "already": 0, "upToDate": 0}
    assert ok_command(sim, "FIRMWARE_DELETE", firmwareId="fw-own") == {"deleted": True}
    assert ok_command(sim, "FIRMWARE_DELETE", firmwareId="fw-own") == {"deleted": False}
    assert g.req("GET", "/api/firmware/fw-own")[0] == 404
    st = cstate(g)
    assert st["state"] == "online" and st["reconnects"] == 0, st
    no_violations(sim)

    # a direct upgrade whose messageId is the id of a local task is not the
    # cloud's to answer (ownership, section 7.1), also once that task has a
    # record of the child
    inner = {"messageType": "UPGRADE_FIRMWARE", "firmwareId": "fw-x", "version": "9.0",
             "url": url}
    refused_command(sim, "CHILD", "conflict", messageId=tl["id"], childDeviceId="o1",
                    childDeviceMessage=inner)
    tl2 = otagw_it.mk_task(g, fwl["id"], name="local task 2")
    g.ok("POST", "/api/tasks/%s/publish" % tl2["id"], {"deviceIds": ["o1"]})
    rep = command(sim, "CHILD", messageId=tl2["id"], childDeviceId="o1",
                  childDeviceMessage=inner)
    assert rep["success"] is False and rep.get("code") == "conflict", \
        "CHILD (firmware fw-x 9.0) with the messageId of local task %s, which holds a " \
        "record of o1 for firmware %s: expected conflict, got %r" % (tl2["id"], fwl["id"], rep)


# -- 3. a direct upgrade of one child ---------------------------------------------------

def test_child_upgrade_firmware(cloudgw, tmp_path):
    g = cloudgw(tcp=True)
    sim = g.sim
    srv, image = image_server(40 * 1024 + 3, "direct", delay=1.5)
    try:
        sha = hashlib.sha256(image).hexdigest()
        d = g.device("c1", product_id="pd")
        d.report("1.0")
        wait_until(lambda: g.req("GET", "/api/devices/c1")[0] == 200, "device c1")
        m = mid("u")
        child = {"messageType": "UPGRADE_FIRMWARE", "deviceId": "c1", "messageId": m,
                 "timestamp": otagw_it.now_ms(), "firmwareId": "fw-direct", "version": "3.0",
                 "url": srv.url(), "size": len(image), "sign": sha, "signMethod": "sha256",
                 "parameters": {"hw": "A2"}, "someJetLinksKey": 1}
        res = ok_command(sim, "CHILD", messageId=m, deviceId=GW_ID, childDeviceId="c1",
                         childDeviceMessage=child, timeoutSeconds=300)
        assert set(res) == {"taskId", "recordId", "state"}, res
        assert res["taskId"] == m, res
        t = g.ok("GET", "/api/tasks/%s" % m)
        assert (t["origin"], t["mode"], t["name"], t["firmwareId"], t["timeoutSeconds"]) == \
            ("cloud", "push", "upgrade c1 to 3.0", "fw-direct", 300), t
        fw = g.ok("GET", "/api/firmware/fw-direct")
        assert (fw["origin"], fw["productId"], fw["version"], fw["properties"]) == \
            ("cloud", "pd", "3.0", {"hw": "A2"}), fw
        assert record_of(g, m, "c1")["id"] == res["recordId"]
        f = sim.wait_frame("RECORD_STATE", lambda f: f["taskId"] == m, timeout=WAIT)
        assert (f["recordId"], f["deviceId"], f["to"], f.get("from")) == \
            (res["recordId"], "c1", "waiting", None), f
        assert [r["seq"] for r in sim.records("RECORD_STATE") if r["frame"]["taskId"] == m][0] \
            < reply_seq(sim, m)

        # once the image is cached the child gets the gateway's own url
        up = d.wait_for("UPGRADE_FIRMWARE", timeout=20)
        image_at_push = cachesrv.image_of(g, "fw-direct")["state"]
        cachesrv.wait_image(g, "fw-direct", "ready", timeout=20, never=("failed",))
        assert (up["firmwareId"], up["version"], up["url"]) == ("fw-direct", "3.0",
                                                               "chunk:fw-direct"), up
        d.upgrade_reply(up["messageId"], True)
        assert d.fetch_image("fw-direct", len(image), chunk=16384) == image
        d.progress("3.0", "fw-direct", 100, complete=True, success=True)
        wait_record(g, m, "c1", "success")
        sim.wait_for(lambda s: moves(states_of(s, m).get("c1", [])) == [
            (None, "waiting"), ("waiting", "processing"), ("processing", "success")],
            timeout=WAIT)
    finally:
        srv.stop()

    # the same messageId again: nothing new, the same task and record
    n_states = len(sim.frames("RECORD_STATE"))
    rep = resend(sim, {"messageType": "CHILD", "messageId": m, "childDeviceId": "c1",
                       "childDeviceMessage": child})
    assert rep["success"] and (rep["result"]["taskId"], rep["result"]["recordId"]) == \
        (m, res["recordId"]), rep
    # refusals
    base = {"messageType": "UPGRADE_FIRMWARE", "firmwareId": "fw-direct", "version": "3.0",
            "url": "http://127.0.0.1:9/x.bin"}
    refused_command(sim, "CHILD", "not_found", "ghost", childDeviceId="ghost",
                    childDeviceMessage=dict(base, deviceId="ghost"))
    refused_command(sim, "CHILD", "conflict", "fw-direct", childDeviceId="c1",
                    childDeviceMessage=dict(base, version="3.1"))
    refused_command(sim, "CHILD", "invalid", deviceId="another-gw", childDeviceId="c1",
                    childDeviceMessage=base)
    refused_command(sim, "CHILD", "unsupported", childDeviceId="c1",
                    childDeviceMessage={"messageType": "READ_FIRMWARE", "deviceId": "c1"})
    refused_command(sim, "CHILD", "invalid", "url", childDeviceId="c1", childDeviceMessage={
        "messageType": "UPGRADE_FIRMWARE", "firmwareId": "fw-y", "version": "4.0"})
    time.sleep(0.3)
    assert len(sim.frames("RECORD_STATE")) == n_states
    assert len([t for t in g.ok("GET", "/api/tasks?size=100")["items"]]) == 1
    no_violations(sim)
    assert not d.errors(), d.errors()
    # PROTOCOL.md 6.9: the child is pushed once the image is cached, and the
    # result's state is waiting (or success when already on the version)
    assert res["state"] == "waiting" and image_at_push == "ready", \
        "REPLY state %r, UPGRADE_FIRMWARE sent while the image was %r (its download takes " \
        "1.5 s): the push must wait for the cached image" % (res["state"], image_at_push)


# -- 4. an outage with many devices -----------------------------------------------------

class CloudPoller(threading.Thread):
    """Polls GET /api/cloud; each sample also holds bound() read after the
    answer (an upper bound of what could be queued at that moment)."""

    def __init__(self, g, bound, interval=0.05):
        super().__init__(daemon=True)
        self.g, self.bound, self.interval = g, bound, interval
        self.samples = []
        self.error = None
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.is_set():
                st = cstate(self.g)
                self.samples.append((st["state"], st["outbox"], st["pendingProgress"],
                                     self.bound()))
                time.sleep(self.interval)
        except Exception as e:          # reported by the test
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(10)
        assert self.error is None, "polling /api/cloud failed: %r" % (self.error,)
        return self.samples


def test_outage_many_devices(cloudgw, tmp_path):
    n = 200 if san() else 1000
    g = cloudgw(progress_interval=1, log_level="warn")
    sim = g.sim
    pool = HttpPool(g.port)
    task, ids = fleet(g, tmp_path, n, pool)
    sim.wait_for(lambda s: len(states_of(s, task)) == n, timeout=30)
    wait_drained(g, sim)

    sim.stop()                           # the cloud goes away (TCP cut, no close frame)
    wait_until(lambda: cstate(g)["state"] != "online", "the link to go down")
    base = cstate(g)["outbox"]
    lock = threading.Lock()
    changes = [0]                        # state-changing requests started so far

    def count(req):
        if "pull" in req[1] or req[2].get("complete"):
            with lock:
                changes[0] += 1

    poller = CloudPoller(g, lambda: base + changes[0] + n)
    poller.start()
    try:
        done, rest = ids[:3 * n // 4], ids[3 * n // 4:]
        pool.run(pulls(ids), before=count)                  # waiting -> processing
        for pct in (25, 50, 75):                            # 3 updates per device
            pool.run(progresses(ids, pct))
        pool.run(completes(done), before=count)             # processing -> success
        time.sleep(0.3)
    finally:
        samples = poller.stop()
    assert len(samples) >= 5, samples
    assert all(s[0] != "online" for s in samples), "online while the cloud was down"
    over = [s for s in samples if s[1] > s[3] or s[2] > n]
    assert not over, "outbox deeper than state changes + devices (state, outbox, " \
        "pendingProgress, bound): %r" % over[:5]
    st = cstate(g)
    assert st["outbox"] <= base + n + len(done), st
    assert st["pendingProgress"] == len(rest), st

    sim.start()                          # back on the same port, with its store
    wait_drained(g, sim)
    expect = {d: [(None, "waiting"), ("waiting", "processing"), ("processing", "success")]
              for d in done}
    expect.update({d: [(None, "waiting"), ("waiting", "processing")] for d in rest})
    last = dict({d: 100 for d in done}, **{d: 75 for d in rest})
    check_delivery(sim, task, expect, last)
    no_violations(sim)
    assert cstate(g)["reconnects"] >= 1


def _json_and_wire(g, sim, tmp_path, n):
    """A fleet of n HTTP devices through pull and three rounds of progress;
    returns (JSON bytes of the frames the cloud stored, bytes that arrived
    on its sockets) for that traffic."""
    pool = HttpPool(g.port)
    wire0, json0 = sim.wire_bytes(), sum(len(r["raw"].encode()) for r in sim.records())
    task, ids = fleet(g, tmp_path, n, pool)
    pool.run(pulls(ids))
    for pct in (25, 50, 75):
        pool.run(progresses(ids, pct))
    sim.wait_for(lambda s: len(states_of(s, task)) == n, timeout=30)
    wait_drained(g, sim)
    no_violations(sim)
    return (sum(len(r["raw"].encode()) for r in sim.records()) - json0,
            sim.wire_bytes() - wire0)


def test_permessage_deflate_when_the_cloud_accepts_it(cloudgw, cloud, tmp_path):
    """The gateway offers permessage-deflate (RFC 7692): a cloud that takes
    it gets the same frames in a fraction of the bytes; one that refuses it
    gets them plain."""
    g = cloudgw(log_level="warn")
    assert g.sim.events("connect")[-1]["extensions"] == ["permessage-deflate"]
    js, wire = _json_and_wire(g, g.sim, tmp_path, 200)
    assert js > 50000, js
    assert wire * 3 < js, "deflate: %d bytes on the wire for %d of JSON" % (wire, js)
    print("permessage-deflate: %d bytes of JSON frames, %d on the wire" % (js, wire))

    plain = cloud(compression=None)
    g2 = cloudgw(sim=plain, log_level="warn")
    assert plain.events("connect")[-1]["extensions"] == []
    (tmp_path / "plain").mkdir()
    js2, wire2 = _json_and_wire(g2, plain, tmp_path / "plain", 200)
    assert js2 > 50000 and wire2 >= js2, (js2, wire2)


# -- 5. kill -9 during the outage and during the resend -----------------------------

def test_kill9_during_outage_and_resend(cloudgw, cloud, tmp_path):
    n = 100 if san() else 300
    # hello_ack_from="acked": after a crash the cloud answers the highest
    # seq it acked, so the gateway resends what the cloud already stored and
    # the simulator's seq dedup is exercised
    sim = cloud(hello_ack_from="acked")
    g = cloudgw(sim, progress_interval=1, log_level="warn")
    pool = HttpPool(g.port)
    task, ids = fleet(g, tmp_path, n, pool)
    sim.wait_for(lambda s: len(states_of(s, task)) == n, timeout=30)
    wait_drained(g, sim)

    sim.stop()
    wait_until(lambda: cstate(g)["state"] != "online", "the link to go down")
    pool.run(pulls(ids))
    pool.run(progresses(ids, 30))
    kill9(g)                                           # 1: during the outage
    g.start()
    st = cstate(g)
    assert st["outbox"] >= n and st["pendingProgress"] == n, st
    done, rest = ids[: 2 * n // 3], ids[2 * n // 3:]
    pool.run(progresses(ids, 60))
    pool.run(completes(done))

    sim.set_ack_mode("none")                           # the cloud stores but does not ack
    stored = sim.stored_seq()
    sim.start()
    sim.wait_for(lambda s: s.stored_seq() >= stored + 64, timeout=30)
    kill9(g)                                           # 2: during the resend
    # (acks resume only once the simulator saw the connection die: an ACK on
    # it would still count as sent)
    sim.wait_for(lambda s: not s.connected, timeout=WAIT)
    assert sim.acked_seq() < sim.stored_seq()
    sim.set_ack_mode("every")
    g.start()
    wait_drained(g, sim)
    expect = {d: [(None, "waiting"), ("waiting", "processing"), ("processing", "success")]
              for d in done}
    expect.update({d: [(None, "waiting"), ("waiting", "processing")] for d in rest})
    last = dict({d: 100 for d in done}, **{d: 60 for d in rest})
    dups = check_delivery(sim, task, expect, last)
    assert dups >= 64, "the resend after the crash was not deduplicated (%d dups)" % dups
    no_violations(sim)
    # the gateway itself applied every change once
    for d in ids:
        js = g.ok("GET", "/api/devices/%s/history?size=100" % d)
        mine = [h for h in js["items"] if h["taskId"] == task]
        assert len(mine) == len(expect[d]), (d, mine)
    recs = {r["deviceId"]: r for r in otagw_it.records(g, task)}
    assert all(recs[d]["state"] == "success" for d in done)
    assert all(recs[d]["state"] == "processing" and recs[d]["progress"] == 60 for d in rest)


# -- 6. faults ------------------------------------------------------------------------

def test_refused_token(cloudgw, cloud):
    sim = cloud()
    g = cloudgw(sim, token="not-the-token", wait=False)
    t0 = time.monotonic()
    st = wait_until(lambda: (lambda s: s if s["lastError"] else None)(cstate(g)),
                    "a lastError", timeout=WAIT)
    assert st["state"] != "online", st
    assert "unauthorized" in st["lastError"].lower() or "401" in st["lastError"], st
    assert "not-the-token" not in json.dumps(st)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
    attempts = [e["time"] for e in sim.events("refused") if e["reason"] == "token"]
    assert not sim.connected and g.ok("GET", "/api/health")["status"] == "ok"
    assert "not-the-token" not in g.stderr(), "the token was logged"

    # fixed on the gateway: it connects
    g.stop()
    otagw_it.write_config(g.config, g.port, extra=cloud_conf(sim))
    g.start()
    n = sim.wait_connected(timeout=CONNECT_WAIT)
    wait_online(g)

    # the cloud refuses after GATEWAY_HELLO: ERROR unauthorized + close 4001
    sim.reject_auth("close")
    sim.drop()
    code, _ = sim.wait_closed(after=n, timeout=WAIT)
    assert code == 4001
    st = wait_until(lambda: (lambda s: s if "4001" in s["lastError"] or
                             "unauthorized" in s["lastError"] else None)(cstate(g)),
                    "lastError naming the refusal")
    assert st["state"] != "online", st
    conns = sim.connections
    time.sleep(2.0)
    assert sim.connections == conns, "reconnected within 2 s of a 4001 (PROTOCOL.md 1: " \
        "at least 60 s)"
    assert g.running()

    # PROTOCOL.md 1: after HTTP 401 too the gateway waits at least 60 s
    assert len(attempts) == 1, "%d upgrade attempts refused with 401 within 3 s (at %r ms " \
        "after the first): the gateway must wait at least 60 s after a 401" % (
            len(attempts), [a - attempts[0] for a in attempts])


def test_wss_with_test_ca(cloudgw, cloud, tmp_path):
    ca, crt, key = cachesrv.make_tls(str(tmp_path / "tls"))
    other_ca, _, _ = cachesrv.make_tls(str(tmp_path / "other"))
    sim = cloud(tls=(crt, key))
    assert sim.url.startswith("wss://")
    g = cloudgw(sim, ca_file=ca)
    rep = command(sim, "TASK_CANCEL", taskId="none")
    assert rep["code"] == "not_found", rep
    assert cstate(g)["state"] == "online"
    g.stop()
    conns = sim.connections

    errors = {}
    for name, ca_file in (("wrong CA", other_ca), ("system store", "")):
        g2 = cloudgw(sim, ca_file=ca_file, wait=False)
        st = wait_until(lambda: (lambda s: s if s["lastError"] else None)(cstate(g2)),
                        "a lastError with %s" % name, timeout=WAIT)
        time.sleep(0.5)
        assert cstate(g2)["state"] != "online" and sim.connections == conns, \
            "connected with %s" % name
        assert g2.ok("GET", "/api/health")["status"] == "ok"
        errors[name] = st["lastError"]
        g2.stop()
    no_violations(sim)
    for name, text in errors.items():
        assert "certificate" in text.lower(), \
            "with %s lastError does not say the certificate was refused: %r" % (name, text)


def test_frame_cut_mid_message(cloudgw):
    g = cloudgw()
    sim = g.sim
    n = sim.wait_connected()
    sim.close_mid_frame()
    sim.wait_closed(after=n - 1, timeout=WAIT)
    n2 = sim.wait_connected(after=n, timeout=WAIT)
    assert n2 > n
    rep = command(sim, "TASK_CANCEL", taskId="nothing")
    assert rep["code"] == "not_found", rep
    assert not sim.errors(), "the cut frame was parsed: %r" % sim.errors()
    st = cstate(g)
    assert st["state"] == "online" and st["reconnects"] == 1, st
    no_violations(sim)


def test_16mib_frame_closes_1009_and_recovers(cloudgw):
    g = cloudgw()
    sim = g.sim
    n = sim.wait_connected()
    sim.send_huge(16 * 1024 * 1024)
    code, _ = sim.wait_closed(after=n - 1, timeout=WAIT)
    assert code == 1009, "closed with %r, expected 1009" % code
    time.sleep(0.5)
    assert g.running(), "otagw died (exit %r) after a 16 MiB frame" % g.proc.poll()
    sim.wait_connected(after=n, timeout=WAIT)
    wait_online(g)
    rep = command(sim, "TASK_CANCEL", taskId="nothing")
    assert rep["code"] == "not_found", rep
    no_violations(sim)


def test_malformed_frames_keep_the_link(cloudgw):
    g = cloudgw()
    sim = g.sim
    n = sim.wait_connected()
    cases = [
        # (text, "ERROR" code or ("REPLY", messageId, code))
        ('{"messageType":"ACK",', "malformed"),
        ('[1,2]', "malformed"),
        ('{"messageId":"x1"}', "malformed"),
        ('{"messageType":"NOT_A_TYPE"}', "malformed"),
        ('{"messageType":"TASK_CANCEL","taskId":"t1"}', "invalid"),
        ('{"messageType":"ACK","ack":1.5}', "invalid"),
        ('{"messageType":"ACK","ack":-1}', "invalid"),
        ('{"messageType":"TASK_CANCEL","messageId":"m-lz","taskId":"t1","timestamp":01}',
         "malformed"),
        ('{"messageType":"TASK_CANCEL","messageId":"m-tr","taskId":"t1"} x', "malformed"),
        ('{"messageType":"TASK_CANCEL","messageId":"m-bad","taskId":"bad id!"}',
         ("REPLY", "m-bad", "invalid")),
        ('{"messageType":"TASK_CANCEL","messageId":"m-null","taskId":null}',
         ("REPLY", "m-null", "invalid")),
        ('{"messageType":"TASK_CANCEL","messageId":"m-extra","taskId":"t1","x":1}',
         ("REPLY", "m-extra", "invalid")),
    ]
    for text, want in cases:
        ne = len(sim.errors())
        sim.send(text)
        if isinstance(want, str):
            errs = sim.wait_for(lambda s: s.errors()[ne:], timeout=WAIT)
            assert errs[0]["code"] == want, "%s -> %r, expected ERROR %s" % (text, errs, want)
        else:
            rep = sim.wait_for(lambda s: [f for f in s.frames("REPLY")
                                          if f["messageId"] == want[1]], timeout=WAIT)[0]
            assert rep["success"] is False and rep["code"] == want[2], (text, rep)
        time.sleep(0.12)                 # ERROR is rate limited to 10/s
    assert sim.connected and sim.connections == n, "the link did not stay up"
    rep = command(sim, "TASK_CANCEL", taskId="nothing")
    assert rep["code"] == "not_found", rep
    st = cstate(g)
    assert st["state"] == "online" and st["reconnects"] == 0, st
    no_violations(sim)


def test_unknown_type_with_message_id_gets_reply_unsupported(cloudgw):
    """PROTOCOL.md 8.1 and the example of section 11: an unknown messageType
    with a valid messageId is answered REPLY unsupported (no replyTo)."""
    g = cloudgw()
    sim = g.sim
    m = mid("unk")
    try:
        rep = sim.send_command({"messageType": "NOT_A_TYPE", "messageId": m}, timeout=4)
    except Exception:
        raise AssertionError("no REPLY to an unknown messageType with messageId %s; the "
                             "gateway sent ERRORs %r" % (m, sim.errors())) from None
    assert rep["success"] is False and rep["code"] == "unsupported", rep
    assert "replyTo" not in rep, rep
    assert sim.connected and sim.connections == 1
    no_violations(sim)


def test_protocol_error_closes_4002(cloudgw):
    """An ACK before HELLO_ACK: the gateway closes with 4002 and reconnects."""
    g = cloudgw()
    sim = g.sim
    n = sim.wait_connected()
    sim.set_hello_mode("ack_first")
    sim.drop()
    code, _ = sim.wait_closed(after=n, timeout=WAIT)
    sim.set_hello_mode("answer")
    sim.wait_connected(after=n + 1, timeout=WAIT)
    assert g.running()
    assert code == 4002, "the gateway closed with %r, expected 4002 (PROTOCOL.md 3, 8.1)" % code


def test_dead_link_found_by_ping(cloudgw, cloud):
    sim = cloud()
    proxy = FreezeProxy(sim.port)
    try:
        g = cloudgw(sim, url=proxy.url(), ping_interval=2)
        n = sim.wait_connected()
        time.sleep(0.5)
        assert proxy.freeze() == 1
        t0 = time.monotonic()
        bound = 2 + 1 + (4 if san() else 2)      # ping_interval + pong deadline + slack
        st = wait_until(lambda: (lambda s: s if s["state"] != "online" else None)(cstate(g)),
                        "the dead link to be dropped", timeout=bound, interval=0.1)
        took = time.monotonic() - t0
        assert "pong" in st["lastError"].lower(), st
        proxy.kill_frozen()
        # it comes back on a new connection (the frozen one is a half-open leftover)
        sim.wait_connected(after=n, timeout=WAIT)
        wait_online(g)
        rep = command(sim, "TASK_CANCEL", taskId="nothing")
        assert rep["code"] == "not_found", rep
        assert took <= bound
    finally:
        proxy.close()
