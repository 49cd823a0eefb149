# SPDX-License-Identifier: MIT
"""Serial device transport ([serial NAME] ports): JSON lines on a pty made by
socat, images by YMODEM-1K to lrzsz's `rz --ymodem` (or to the small Python
receiver in tests/serialdev.py when a test must stop or cancel midway).

Covered: pull with rz (sha256, record progress sampled during the transfer,
completion by the device), only-1K blocks with an odd size, the block
layout as sent (captured by a relay), push to a bound device, a line that
corrupts a few bytes (completes) and many (fails cleanly, then a retry
completes), the device cancelling (CAN CAN), rz never started (start
timeout), rz killed and the retry with headers.force, garbage and overlong
lines, the port vanishing (idle and mid-transfer) and coming back,
GET /api/serial, a zero-byte image.

Fixture `ser` (SerialEnv): makes socat pty pairs and fault relays
(tests/it/ptyrelay.py), starts daemons through conftest's gw_factory with a
[serial s1] section, opens serialdev.SerialDevice's; everything it made is
closed at teardown (rz processes, relays, socat), even on failure."""

import hashlib
import os
import signal
import sys
import threading
import time

import pytest

from otagw_it import HTTP_TIMEOUT, http_request
import ptyrelay

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import serialdev  # noqa: E402

PRODUCT = "meter"
WAIT = 5.0           # s: state the daemon should reach "at once"
RZ_WAIT = 60.0       # s: bound of one rz run (rz alone spends ~3 s in its own timers)
SOH, STX, EOT, CAN = 0x01, 0x02, 0x04, 0x18

pytestmark = pytest.mark.skipif(
    not all(os.path.exists("/usr/bin/" + t) for t in ("socat", "rz")),
    reason="needs socat and lrzsz (apt-get install -y socat lrzsz)")


# -- helpers (the same shapes as test_tcp.py's) ---------------------------------

def wait_until(fn, what, timeout=WAIT, interval=0.05):
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


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def make_fw(g, tmp_path, size, version="2.0.0", productId=PRODUCT, versionOrder=2):
    """Firmware with a random image uploaded into the gateway's cache."""
    data = os.urandom(size)
    body = {"productId": productId, "name": "fw %s" % version, "version": version,
            "versionOrder": versionOrder, "size": size, "sign": sha256(data),
            "signMethod": "sha256"}
    fw = g.ok("POST", "/api/firmware", body, expect=201)
    st, js, _ = g.req("PUT", "/api/firmware/%s/image" % fw["id"], raw=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert st == 200 and js["image"]["state"] == "ready", (st, js)
    return fw, data


def publish(g, fw_id, ids, mode="pull", name="t"):
    t = g.ok("POST", "/api/firmware/%s/tasks" % fw_id, {"name": name, "mode": mode},
             expect=201)
    res = g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": list(ids)})
    return t, res


def record_of(g, task_id, device_id):
    items = g.ok("GET", "/api/tasks/%s/records?size=1000" % task_id)["items"]
    mine = [r for r in items if r["deviceId"] == device_id]
    assert len(mine) == 1, items
    return mine[0]


def wait_record(g, task_id, device_id, state, timeout=WAIT):
    return wait_until(lambda: (lambda r: r if r["state"] == state else None)(
        record_of(g, task_id, device_id)), "record of %s to be %s" % (device_id, state), timeout)


def get_dev(g, device_id):
    st, js, _ = g.req("GET", "/api/devices/" + device_id)
    return js if st == 200 else None


def serial_ports(g):
    st, js, _ = g.req("GET", "/api/serial")
    assert st == 200, "GET /api/serial -> %d %r" % (st, js)
    return {p["name"]: p for p in js["ports"]}


def port(g, name="s1"):
    return serial_ports(g)[name]


def wait_port(g, pred, what, name="s1", timeout=WAIT):
    return wait_until(lambda: (lambda p: p if pred(p) else None)(port(g, name)),
                      "port %s: %s" % (name, what), timeout)


def serial_section(name, path, **keys):
    lines = ["", "[serial %s]" % name, "path = %s" % path]
    lines += ["%s = %s" % kv for kv in keys.items()]
    return "\n".join(lines) + "\n"


class Sampler(threading.Thread):
    """Polls a record every interval (own HTTP connections) until stopped."""

    def __init__(self, g, task_id, device_id, interval=0.05):
        super().__init__(daemon=True)
        self.g, self.task_id, self.device_id, self.interval = g, task_id, device_id, interval
        self.samples = []          # (state, progress)
        self.errors = []
        self._halt = threading.Event()

    def run(self):
        path = "/api/tasks/%s/records?size=1000" % self.task_id
        while not self._halt.is_set():
            try:
                st, js, _, _ = http_request(self.g.port, "GET", path, token=self.g.token,
                                            timeout=HTTP_TIMEOUT)
                if st == 200:
                    for r in js["items"]:
                        if r["deviceId"] == self.device_id:
                            self.samples.append((r["state"], r["progress"]))
            except Exception as e:          # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(5)
        return self.samples


def check_progress_samples(samples, need_intermediate):
    progs = [p for st, p in samples if st == "processing"]
    assert progs, "no sample of the record while processing: %r" % samples[:20]
    assert all(a <= b for a, b in zip(progs, progs[1:])), \
        "progress went down during the transfer: %r" % progs
    assert max(progs) <= 99, "progress %d > 99 before the device reported: %r" \
        % (max(progs), progs)
    if need_intermediate:
        mid = sorted(set(p for p in progs if 0 < p < 100))
        assert mid, "no progress between 0 and 100 seen during the transfer: %r" % progs
    return progs


def parse_ymodem(stream):
    """The YMODEM frames in what the gateway wrote (JSON lines first).
    Returns [(kind, seq, payload)], kind SOH/STX/EOT/CAN; checks each
    frame's block number complement and CRC-16."""
    i = stream.find(bytes([SOH]))
    assert i >= 0, "no YMODEM block 0 in the captured bytes: %r" % stream[:200]
    frames = []
    while i < len(stream):
        c = stream[i]
        if c in (SOH, STX):
            n = 128 if c == SOH else 1024
            f = stream[i:i + n + 5]
            assert len(f) == n + 5, "truncated %s frame at %d" % ("SOH" if c == SOH else "STX", i)
            seq, cseq, payload, crc = f[1], f[2], f[3:3 + n], f[3 + n:]
            assert seq == 255 - cseq, "block number %d with complement %d at %d" % (seq, cseq, i)
            assert serialdev.crc16(payload) == (crc[0] << 8 | crc[1]), "bad CRC at %d" % i
            frames.append(("SOH" if c == SOH else "STX", seq, payload))
            i += n + 5
        elif c == EOT:
            frames.append(("EOT", None, b""))
            i += 1
        elif c == CAN:
            frames.append(("CAN", None, b""))
            i += 1
        else:
            break      # a JSON line after the transfer (or noise)
    return frames


def check_layout(frames, fw, image, only_1k):
    """Block 0 names <firmwareId>.bin and the size; data in 1024-byte blocks
    and a tail of 128-byte blocks (or 1024 with only_1k), numbered from 1,
    padded with 0x1A; EOT; the empty block 0. Consecutive repeats (resends)
    are folded."""
    uniq = []
    for f in frames:
        if not uniq or f != uniq[-1] or f[0] == "EOT":
            uniq.append(f)
    kinds = [f[0] for f in uniq]
    assert "CAN" not in kinds, kinds
    assert uniq[0][0] == "SOH" and uniq[0][1] == 0, uniq[0][:2]
    name, _, rest = uniq[0][2].partition(b"\0")
    assert name == ("%s.bin" % fw["id"]).encode(), name
    assert rest.split(b"\0", 1)[0].split(b" ")[0] == str(len(image)).encode(), rest[:40]
    data_frames = []
    k = 1
    while k < len(uniq) and uniq[k][0] in ("SOH", "STX"):     # everything up to EOT
        data_frames.append(uniq[k])
        k += 1
    assert k < len(uniq), "no EOT after the data blocks"
    size = len(image)
    full, tail = divmod(size, 1024)
    if only_1k:
        want = ["STX"] * (full + (1 if tail else 0))
    else:
        want = ["STX"] * full + ["SOH"] * ((tail + 127) // 128)
    got = [f[0] for f in data_frames]
    assert got == want, "data blocks %s... (%d STX, %d SOH), expected %d STX, %d SOH" % (
        got[:3], got.count("STX"), got.count("SOH"), want.count("STX"), want.count("SOH"))
    assert [f[1] for f in data_frames] == [(j + 1) & 0xFF for j in range(len(data_frames))]
    body = b"".join(f[2] for f in data_frames)
    assert body[:size] == image, "the data blocks do not carry the image"
    assert set(body[size:]) <= {0x1A}, "padding is not 0x1A: %r" % body[size:size + 16]
    assert uniq[k][0] == "EOT", "after the data: %r" % [f[:2] for f in uniq[k:k + 3]]
    while k < len(uniq) and uniq[k][0] == "EOT":
        k += 1
    assert k < len(uniq) and uniq[k][:2] == ("SOH", 0) and not any(uniq[k][2]), \
        "no empty block 0 after EOT: %r" % [f[:2] for f in uniq[k:k + 3]]


# -- the environment fixture ---------------------------------------------------------

class Line:
    """A socat pty pair: .gw for the daemon, .dev for the device."""

    def __init__(self, workdir, name):
        self.gw = os.path.join(workdir, name + "-gw")
        self.dev = os.path.join(workdir, name + "-dev")
        self.log = os.path.join(workdir, name + "-socat.log")
        self.proc = None
        self.start()

    def start(self):
        self.proc = ptyrelay.start_socat_pair(self.gw, self.dev, self.log)

    def kill(self):
        ptyrelay.stop_socat(self.proc)

    restart = start


class SerialEnv:
    def __init__(self, tmp_path, gw_factory):
        self.tmp = str(tmp_path)
        self.gw_factory = gw_factory
        self.lines = []
        self.relays = []
        self.devices = []

    def line(self, name="line"):
        ln = Line(self.tmp, name)
        self.lines.append(ln)
        return ln

    def relay(self, **kw):
        r = ptyrelay.PtyRelay(self.tmp, **kw)
        self.relays.append(r)
        return r.start()

    def gateway(self, path, token=None, name="s1", extra="", **keys):
        # ymodem_timeout 2, not 1: lrzsz rz accepts an EOT only after ~1 s of
        # silence (and purges for ~1 s before a NAK), so a sender resending
        # every second races it ("Got 04 sector header") and the transfer
        # fails now and then. Not much more either: rz also discards its
        # unread input right after each ACK (tcflush), so a block that
        # arrives in that instant is lost and costs one timeout.
        conf = {"product": PRODUCT, "ymodem_timeout": 2, "ymodem_start_timeout": 10}
        conf.update(keys)
        g = self.gw_factory(token=token, config_extra=serial_section(name, path, **conf) + extra)
        wait_port(g, lambda p: p["state"] == "open", "state open", name=name)
        return g

    def device(self, path, device_id="d1", product=None):
        d = serialdev.SerialDevice(path, device_id, product=product, timeout=WAIT)
        self.devices.append(d)
        return d

    def rzdir(self, name="rz"):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        return d

    def cleanup(self):
        for d in self.devices:
            d.close()
        for r in self.relays:
            r.stop()
        for ln in self.lines:
            ln.kill()


@pytest.fixture
def ser(gw_factory, tmp_path):
    env = SerialEnv(tmp_path, gw_factory)
    yield env
    env.cleanup()


def bind_and_pull(g, d, tmp_path, size, version="2.0.0", mode="pull"):
    """The device reports 1.0.0 (creating it with the port's product), a
    task for it is published, and it pulls; returns (fw, image, task, reply)."""
    fw, image = make_fw(g, tmp_path, size, version=version)
    d.report("1.0.0")
    wait_until(lambda: get_dev(g, d.device_id), "device %s to be created" % d.device_id)
    t, res = publish(g, fw["id"], [d.device_id], mode=mode)
    assert res["added"] == 1, res
    if mode == "push":
        return fw, image, t, None
    rep = d.pull(current_version="1.0.0")
    check_offer(rep, fw, image, d.device_id)
    return fw, image, t, rep


def check_offer(rep, fw, image, device_id):
    assert rep.get("success", True) is True, rep
    assert rep["deviceId"] == device_id, rep
    assert (rep["firmwareId"], rep["version"], rep["size"], rep["sign"], rep["signMethod"]) == \
        (fw["id"], fw["version"], len(image), sha256(image), "sha256"), rep
    assert rep["url"] == "ymodem:" + fw["id"], rep


def receive_ok(d, fw, image, dest, timeout=RZ_WAIT):
    res = d.rz(dest, timeout=timeout)
    assert res.rc == 0 and not res.timed_out, "rz failed: %r" % res
    assert res.files == ["%s.bin" % fw["id"]], res
    with open(res.path, "rb") as f:
        got = f.read()
    assert len(got) == len(image), "rz got %d bytes of %d" % (len(got), len(image))
    assert sha256(got) == fw["sign"], "received image differs from the firmware"
    os.unlink(res.path)
    return res


def complete(g, d, fw, task, timeout=WAIT):
    """The device, right after its receive, reports the upgrade done."""
    d.progress(fw["version"], fw["id"], 100, complete=True, success=True)
    try:
        rec = wait_record(g, task["id"], d.device_id, "success", timeout)
    except AssertionError as e:
        ports = [p for p in serial_ports(g).values() if p["deviceId"] == d.device_id]
        raise AssertionError(
            "%s\n  the completion line sent right after the receive was not acted on; "
            "record %r; port %r (note: lrzsz rz flushes its tty output queue on exit, so "
            "its ACK of the final empty block 0 is often lost on a pty)"
            % (e, record_of(g, task["id"], d.device_id), ports)) from None
    assert rec["progress"] == 100, rec
    return rec


def assert_healthy(g):
    assert g.running(), "otagw exited"
    assert g.ok("GET", "/api/health")["status"] == "ok"


def wait_failed_ymodem(g, task, device_id, timeout):
    rec = wait_record(g, task["id"], device_id, "failed", timeout)
    assert isinstance(rec["errorReason"], str) and rec["errorReason"].startswith("ymodem:"), rec
    return rec


# -- the flows -------------------------------------------------------------------------

def test_pull_rz(ser, tmp_path):
    """Report (new device, the port's product), pull, `rz --ymodem`, verified
    image, progress sampled during the transfer, completion, then the new
    version reported; GET /api/serial counts it."""
    ln = ser.line()
    g = ser.gateway(ln.gw)
    d = ser.device(ln.dev)
    size = 512 * 1024 + 333
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, size)
    dev = get_dev(g, "d1")
    assert dev["productId"] == PRODUCT and dev["online"] is True, dev
    assert dev["transport"] == "serial", dev
    assert record_of(g, t["id"], "d1")["state"] == "processing"

    samp = Sampler(g, t["id"], "d1")
    samp.start()
    try:
        res = receive_ok(d, fw, image, ser.rzdir())
    finally:
        samples = samp.stop()
    progs = check_progress_samples(samples, need_intermediate=False)
    assert progs[-1] >= 50, "after the whole image was acknowledged the record's progress " \
        "is only %d: %r" % (progs[-1], progs)

    complete(g, d, fw, t)
    d.report("2.0.0")
    wait_until(lambda: (lambda x: x if x and x["firmwareVersion"] == "2.0.0" else None)(
        get_dev(g, "d1")), "firmwareVersion 2.0.0")
    p = wait_port(g, lambda p: p["transfersOk"] == 1, "transfersOk 1")
    assert p["deviceId"] == "d1" and p["transfersFailed"] == 0, p
    assert p["transfer"]["firmwareId"] == fw["id"], p
    assert p["transfer"]["bytes"] == p["transfer"]["size"] == size, p
    assert p["rxLines"] >= 4 and p["badLines"] == 0, p
    assert not d.errors(), d.errors()
    assert res.seconds < RZ_WAIT


@pytest.mark.parametrize("only_1k,size", [(False, 512 * 1024 + 333), (True, 100 * 1024 + 77)],
                         ids=["mixed", "1k"])
def test_block_layout(ser, tmp_path, only_1k, size):
    """rz through a relay that records what the gateway sent: 1024-byte
    blocks, the tail in 128-byte blocks (mixed) or one padded 1024-byte
    block (ymodem_blocks = 1k), EOT, the empty block 0. The relay is paced
    (256 KiB/s) so the record's coarse progress steps can be sampled."""
    r = ser.relay(capture=True, rate=256 * 1024)
    keys = {"ymodem_blocks": "1k"} if only_1k else {}
    g = ser.gateway(r.gw, **keys)
    d = ser.device(r.dev)
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, size)
    samp = Sampler(g, t["id"], "d1")
    samp.start()
    try:
        receive_ok(d, fw, image, ser.rzdir())
    finally:
        samples = samp.stop()
    check_progress_samples(samples, need_intermediate=True)
    complete(g, d, fw, t)
    check_layout(parse_ymodem(r.captured_gw), fw, image, only_1k)


def test_push_to_bound_device(ser, tmp_path):
    """A push task published to a device bound on a port writes
    UPGRADE_FIRMWARE (url ymodem:<id>) to the line; rz gets the image."""
    ln = ser.line()
    g = ser.gateway(ln.gw)
    d = ser.device(ln.dev)
    fw, image, t, _ = bind_and_pull(g, d, tmp_path, 200 * 1024 + 5, mode="push")
    up = d.wait_for("UPGRADE_FIRMWARE", timeout=WAIT)
    assert up["deviceId"] == "d1", up
    assert (up["firmwareId"], up["version"], up["size"], up["sign"], up["url"]) == \
        (fw["id"], "2.0.0", len(image), fw["sign"], "ymodem:" + fw["id"]), up
    wait_record(g, t["id"], "d1", "processing")
    if up.get("messageId"):
        d.upgrade_reply(up["messageId"], success=True)
    receive_ok(d, fw, image, ser.rzdir())
    d.report("2.0.0")        # completion by reporting the new version (after a restart)
    rec = wait_record(g, t["id"], "d1", "success")
    assert rec["progress"] == 100, "completed by REPORT_FIRMWARE of the new version, but " \
        "progress stays %d: %r" % (rec["progress"], rec)
    assert not d.errors(), d.errors()


def test_low_corruption_completes(ser, tmp_path):
    """A few gateway->device bytes flipped during the transfer (seeded): the
    receiver NAKs, the gateway resends, the image arrives intact."""
    r = ser.relay(seed=7)
    g = ser.gateway(r.gw, ymodem_timeout=2, ymodem_retries=10)
    d = ser.device(r.dev)
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, 64 * 1024 + 11)
    r.set_faults(corrupt=5e-5)                 # 1 byte in 20,000: ~5 % of the 1K blocks
    receive_ok(d, fw, image, ser.rzdir(), timeout=60)
    r.set_faults(corrupt=0.0)
    assert r.corrupted >= 1, "the relay corrupted nothing: %r" % r.stats()
    complete(g, d, fw, t)
    p = port(g)
    assert p["transfersOk"] == 1 and p["transfersFailed"] == 0, p
    assert_healthy(g)


def test_high_corruption_fails_cleanly_then_retry(ser, tmp_path):
    """5 % of the bytes flipped: the transfer fails (record failed,
    errorReason "ymodem: ..."), the daemon and the port stay fine, and once
    the line is clean a retry with headers.force completes."""
    r = ser.relay(seed=11)
    g = ser.gateway(r.gw, ymodem_timeout=2, ymodem_retries=3)
    d = ser.device(r.dev)
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, 64 * 1024)
    r.set_faults(corrupt=0.05)
    p = d.start_rz(ser.rzdir("bad"))
    try:
        wait_failed_ymodem(g, t, "d1", timeout=30)
    finally:
        res = d.wait_rz(p, timeout=0 if p.poll() is None else 5)
        r.set_faults(corrupt=0.0)
    assert res.rc != 0 or res.timed_out, "rz claims success over a 5 %% corrupting line: %r" % res
    assert r.corrupted > 0
    assert_healthy(g)
    pp = wait_port(g, lambda p: p["transfersFailed"] >= 1, "transfersFailed >= 1")
    assert pp["state"] == "open" and pp["transfer"]["state"] != "sending", pp
    d.resync()
    rep = d.pull(force=True)
    check_offer(rep, fw, image, "d1")
    assert record_of(g, t["id"], "d1")["state"] == "processing"
    receive_ok(d, fw, image, ser.rzdir("good"))
    complete(g, d, fw, t)


def test_device_cancels(ser, tmp_path):
    """The device answers a data block with CAN CAN: the record fails with a
    ymodem: reason, the port goes on (a forced retry is offered again and a
    clean receive completes)."""
    ln = ser.line()
    g = ser.gateway(ln.gw)
    d = ser.device(ln.dev)
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, 40 * 1024 + 1)
    res = d.ymodem_receive(cancel_after=2)
    assert res.error == "cancelled by us" and res.name == "%s.bin" % fw["id"], res
    assert res.size == len(image), res
    rec = wait_failed_ymodem(g, t, "d1", timeout=WAIT)
    assert rec["progress"] <= 99, rec
    pp = wait_port(g, lambda p: p["transfersFailed"] == 1, "transfersFailed 1")
    assert pp["transfer"]["state"] != "sending", pp
    d.drain()
    d.resync()
    d.report("1.0.0")
    rep = d.pull(force=True)
    check_offer(rep, fw, image, "d1")
    res = d.ymodem_receive(timeout=20)
    assert res.ok and res.data == image, res
    assert res.end_block_empty, res
    complete(g, d, fw, t)


def test_rz_never_started(ser, tmp_path):
    """After the reply the device stays silent: once ymodem_start_timeout
    passed the record fails ("ymodem: ..."); a late 'C' starts nothing."""
    ln = ser.line()
    g = ser.gateway(ln.gw, ymodem_start_timeout=2)
    d = ser.device(ln.dev)
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, 4096)
    t0 = time.monotonic()
    wait_failed_ymodem(g, t, "d1", timeout=2 + WAIT)
    took = time.monotonic() - t0
    assert took >= 1.5, "failed after %.2f s, before ymodem_start_timeout = 2" % took
    assert port(g)["transfersFailed"] == 1
    d.write(b"C")
    late = d.drain(quiet=1.0, timeout=1.5)
    assert bytes([SOH]) not in late and bytes([STX]) not in late, \
        "a 'C' after the start timeout started a transfer: %r" % late[:60]
    rep = d.pull()
    assert rep["success"] is False and rep["code"] == "not_found", rep
    assert_healthy(g)


def test_rz_killed_then_force_retry(ser, tmp_path):
    """rz is killed (SIGTERM: it sends CAN CAN) mid-transfer: the record
    fails; a plain pull finds nothing, a pull with headers.force moves the
    record back to processing with the same url, and a new rz completes."""
    r = ser.relay(rate=48 * 1024)                 # ~5 s for the image: time to kill rz
    # rz's CAN bytes may be lost (it flushes the tty on exit): then only
    # the retries tell, so keep them short
    tmo, retries = 2, 2
    g = ser.gateway(r.gw, ymodem_timeout=tmo, ymodem_retries=retries)
    d = ser.device(r.dev)
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, 240 * 1024 + 3)
    dest = ser.rzdir("killed")
    p = d.start_rz(dest)
    try:
        wait_until(lambda: record_of(g, t["id"], "d1")["progress"] > 0,
                   "progress from acknowledged blocks", timeout=15)
        assert p.poll() is None, "rz ended early: %r" % d.wait_rz(p, 1)
        p.send_signal(signal.SIGTERM)
        wait_failed_ymodem(g, t, "d1", timeout=tmo * (retries + 1) + WAIT)
    finally:
        d.wait_rz(p, timeout=5)
    r.rate = None
    assert_healthy(g)
    d.resync()
    rep = d.pull()
    assert rep["success"] is False and rep["code"] == "not_found", \
        "a failed record was offered without headers.force: %r" % rep
    rep = d.pull(force=True)
    check_offer(rep, fw, image, "d1")
    rec = record_of(g, t["id"], "d1")
    assert rec["state"] == "processing", rec
    receive_ok(d, fw, image, ser.rzdir("again"))
    complete(g, d, fw, t)
    pp = port(g)
    assert pp["transfersOk"] == 1 and pp["transfersFailed"] == 1, pp


def test_garbage_and_overlong_lines(ser, tmp_path):
    """Bad JSON, binary junk and lines over max_line get an ERROR line each
    and are not acted on; the port keeps working ("\\r\\n" accepted)."""
    ln = ser.line()
    g = ser.gateway(ln.gw, max_line=256)
    d = ser.device(ln.dev)

    def expect_error(what, code):
        # codes as southbound/PROTOCOL.md "Serial devices" has them
        e = d.wait_for("ERROR", timeout=WAIT)
        assert e.get("code") == code, "%s: expected ERROR %s, got %r" % (what, code, e)
        assert isinstance(e.get("message"), str), (what, e)
        return e

    d.write(b"this is not json\n")
    expect_error("text before any message", "bad_message")
    d.report("1.0.0")
    wait_until(lambda: get_dev(g, "d1"), "device d1 to be created")
    d.write(b"{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d1\",\n")
    expect_error("truncated JSON", "bad_message")
    d.write(b"\x00\xff\xfe{\x01\x02junk}\n")
    expect_error("binary junk", "bad_message")
    d.write(b"x" * 1000 + b"\n")
    expect_error("a 1000-byte line", "too_large")
    d.send({"messageType": "REPORT_FIRMWARE", "version": "6.6.6",
            "properties": {"pad": "p" * 400}})
    expect_error("a valid message longer than max_line", "too_large")
    d.write(b"y" * 100000)                       # no newline for a long while ...
    d.write(b"\n")                               # ... then one
    expect_error("a 100000-byte line", "too_large")
    d.send({"messageType": "REPORT_FIRMWARE", "version": "1.0.2"}, crlf=True)
    dev = wait_until(lambda: (lambda x: x if x["firmwareVersion"] == "1.0.2" else None)(
        get_dev(g, "d1")), "firmwareVersion 1.0.2 (a \\r\\n line after junk)")
    assert dev["firmwareVersion"] == "1.0.2", "the overlong report was acted on"
    rep = d.pull()
    assert rep["success"] is False and rep["code"] == "not_found", rep
    pp = port(g)
    assert pp["state"] == "open" and pp["deviceId"] == "d1", pp
    assert pp["badLines"] >= 6, pp
    assert pp["rxLines"] >= 3, pp
    assert_healthy(g)


def test_port_lost_and_reopened(ser, tmp_path):
    """socat killed: the daemon keeps running, the port is not open (with an
    error), the device goes offline; a new socat on the same path: the port
    is open again within reopen_max_delay (+ slack) and the device talks."""
    ln = ser.line()
    g = ser.gateway(ln.gw, reopen_max_delay=1)
    d = ser.device(ln.dev, product="special")          # headers.productId wins
    d.report("1.0.0")
    dev = wait_until(lambda: (lambda x: x if x and x["online"] else None)(get_dev(g, "d1")),
                     "d1 online")
    assert dev["productId"] == "special", dev
    assert port(g)["deviceId"] == "d1"
    ln.kill()
    d.close_fd()
    p = wait_port(g, lambda p: p["state"] != "open", "not open after socat died")
    assert p["state"] in ("closed", "error"), p
    assert isinstance(p["error"], str) and p["error"], p
    assert_healthy(g)
    wait_until(lambda: get_dev(g, "d1")["online"] is False, "d1 offline")
    time.sleep(1.5)                            # a few reopen attempts against nothing
    assert port(g)["state"] != "open"
    reopens = port(g)["reopens"]
    ln.restart()
    t0 = time.monotonic()
    p = wait_port(g, lambda p: p["state"] == "open", "open again", timeout=1 + WAIT)
    assert time.monotonic() - t0 < 1 + WAIT
    assert p["reopens"] >= max(1, reopens), p
    d.open()
    d.report("1.0.1")
    dev = wait_until(lambda: (lambda x: x if x["firmwareVersion"] == "1.0.1" and x["online"]
                              else None)(get_dev(g, "d1")), "d1 online again with 1.0.1")
    assert dev["transport"] == "serial"
    rep = d.pull()
    assert rep["success"] is False and rep["code"] == "not_found", rep
    assert port(g)["deviceId"] == "d1"


def test_port_lost_mid_transfer(ser, tmp_path):
    """The line vanishes while blocks are going out: the record fails
    ("ymodem: ..."); after the port is back a forced retry completes."""
    ln = ser.line()
    g = ser.gateway(ln.gw, reopen_max_delay=1)
    d = ser.device(ln.dev)
    fw, image, t, rep = bind_and_pull(g, d, tmp_path, 64 * 1024 + 9)
    res = d.ymodem_receive(stop_after=5)
    assert res.error == "stopped by us" and res.blocks == 5, res
    ln.kill()
    d.close_fd()
    wait_failed_ymodem(g, t, "d1", timeout=WAIT)
    pp = wait_port(g, lambda p: p["transfersFailed"] == 1, "transfersFailed 1")
    assert pp["state"] != "open", pp
    ln.restart()
    wait_port(g, lambda p: p["state"] == "open", "open again", timeout=1 + WAIT)
    d.open()
    rep = d.pull(force=True)
    check_offer(rep, fw, image, "d1")
    receive_ok(d, fw, image, ser.rzdir())
    complete(g, d, fw, t)
    assert_healthy(g)


def test_api_serial(ser, tmp_path, gw_factory):
    """GET /api/serial: every configured port with its fields; a port whose
    path does not exist is closed with an error; the API token applies."""
    ln = ser.line()
    missing = os.path.join(str(tmp_path), "no-such-tty")
    g = ser.gateway(ln.gw, token="serial-token-1",
                    extra=serial_section("s2", missing, product="other", reopen_max_delay=1))
    st, js, _ = g.req("GET", "/api/serial", auth=False)
    assert st == 401, (st, js)
    ports = serial_ports(g)
    assert set(ports) == {"s1", "s2"}, ports
    for p in ports.values():
        for k, typ in (("name", str), ("path", str), ("state", str), ("error", str),
                       ("reopens", int), ("rxLines", int), ("badLines", int),
                       ("transfersOk", int), ("transfersFailed", int)):
            assert isinstance(p.get(k), typ) and not isinstance(p.get(k), bool), (k, p)
        assert "deviceId" in p and "transfer" in p, p
    s1, s2 = ports["s1"], ports["s2"]
    assert (s1["path"], s1["state"], s1["deviceId"], s1["transfer"]) == \
        (ln.gw, "open", None, None), s1
    assert (s1["rxLines"], s1["badLines"], s1["transfersOk"], s1["transfersFailed"]) == \
        (0, 0, 0, 0), s1
    assert s2["path"] == missing and s2["state"] != "open" and s2["error"], s2
    assert s2["deviceId"] is None and s2["transfer"] is None, s2

    d = ser.device(ln.dev)
    d.report("1.0.0")
    p = wait_port(g, lambda p: p["deviceId"] == "d1", "deviceId d1")
    assert p["rxLines"] == 1 and p["badLines"] == 0, p
    d.write(b"nope\n")
    d.wait_for("ERROR")
    p = port(g)
    assert p["badLines"] == 1 and p["rxLines"] == 1, p
    fw, image = make_fw(g, tmp_path, 3000)
    t, _ = publish(g, fw["id"], ["d1"])
    rep = d.pull()
    check_offer(rep, fw, image, "d1")
    res = d.ymodem_receive(timeout=15)
    assert res.ok and res.data == image, res
    p = wait_port(g, lambda p: p["transfersOk"] == 1, "transfersOk 1")
    tr = p["transfer"]
    assert isinstance(tr, dict) and tr["firmwareId"] == fw["id"], p
    assert tr["bytes"] == tr["size"] == 3000 and isinstance(tr["state"], str), p
    # the missing path appears later: it is picked up
    ln2 = ser.line("late")
    os.symlink(os.readlink(ln2.gw), missing)
    wait_port(g, lambda p: p["state"] == "open", "s2 open once its path exists", name="s2",
              timeout=1 + WAIT)
    complete(g, d, fw, t)

