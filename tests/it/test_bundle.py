# SPDX-License-Identifier: MIT
"""Offline bundles (README "Offline bundles"): import through POST
/api/bundles, the watched [gateway] import_dir and `otagw import`; the
CLI's `otagw bundle create` and `otagw export`; GET /api/export.

  round trip    a bundle (made by `otagw bundle create` when the binary has
                it, else by tests/bundlegen.py) with a firmware and a pull task
                for an HTTP device is imported; the device pulls, downloads
                the image from /images/ and reports success; GET /api/export
                carries that record's RECORD_STATE frames (created waiting,
                processing, success) and a CHILD report; the next export
                without since carries none of them.
  formats       tar, tar.gz, tar.xz, zip, manifest first or last.
  idempotent    the same bundle again (POST, import_dir, another archive
                format) changes nothing: same firmware and task ids, same
                records, same cache.
  hostile       every bundle of bundlegen.HOSTILE is refused (state failed,
                the error names the reason) and the store (firmware with their
                images, devices, tasks, records), GET /api/cache and the files
                under <data>/cache are exactly as before, nothing is left in
                <data>/cache/partial or <data>/bundles, and a good import
                still works afterwards.
  signatures    [gateway] bundle_key: good signature accepted; missing, wrong
                key, tampered manifest, garbage refused.
  kill -9       during the import of a large bundle (64 MiB image, 16 MiB on
                the sanitizer build); after a restart on the same data dir
                the firmware is all there (images ready) or not at all, no
                orphaned image or spooled upload is left, and a retry works.

The CLI tests are skipped while `otagw bundle --help` does not exit 0 with
the bundle usage (the commands are being wired in). Every wait is bounded;
the daemons are stopped by conftest (exit 0, no sanitizer report)."""

import functools
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import zipfile

import pytest

import cachesrv
import otagw_it
from conftest import TOKEN
from otagw_it import HOST, free_port, http_request

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)

import bundlegen  # noqa: E402

MiB = 1 << 20
SAN = cachesrv.is_san_build()
BIG = (32 if SAN else 64) * MiB        # the kill -9 bundle's large image
WAIT = 60.0 if SAN else 20.0           # s: bound of one import
POLL = 0.02


# -- the CLI, when the binary has it ------------------------------------------------------

@functools.lru_cache(maxsize=None)
def cli_available():
    """True when `otagw bundle --help` exits 0 printing the bundle usage (a
    binary without the CLI prints the daemon's usage for any --help)."""
    try:
        p = subprocess.run([otagw_it.require_bin(), "bundle", "--help"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=5, text=True, errors="replace")
    except (subprocess.TimeoutExpired, OSError, AssertionError):
        return False
    return p.returncode == 0 and "bundle create" in p.stdout + p.stderr


CLI_REASON = ("the otagw bundle/import/export CLI is not in this binary yet "
              "(`otagw bundle --help` does not exit 0 with the bundle usage)")
needs_cli = pytest.mark.skipif("not cli_available()", reason=CLI_REASON)


def run_cli(args, timeout=120, env=None):
    """otagw ARGS...; CompletedProcess (text). Fails on a hang."""
    e = dict(os.environ)
    for k in ("OTAGW_URL", "OTAGW_TOKEN"):
        e.pop(k, None)
    e.update(env or {})
    try:
        return subprocess.run([otagw_it.require_bin()] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                              text=True, errors="replace", env=e)
    except subprocess.TimeoutExpired as x:
        raise AssertionError("otagw %s did not exit within %d s; stderr:\n%s"
                             % (" ".join(args), timeout, x.stderr)) from None


# -- making bundles -------------------------------------------------------------------------

def make_bundle(out, bundle_id, firmware, key=None, prefer_cli=True, manifest_last=False):
    """A bundle at out. firmware: list of dicts with productId, version,
    data (bytes) and optional manifest fields (tasks, id, versionOrder ...).
    Made by `otagw bundle create` when available (and prefer_cli, and not
    manifest_last), else by bundlegen. Returns {"path", "manifest" (as in
    the archive), "images" {file: bytes}, "cli" (bool)}."""
    images = {}
    entries = []
    for f in firmware:
        f = dict(f)
        data = f.pop("data")
        file = f.pop("file", "images/%s-%s.bin" % (f["productId"], f["version"]))
        images[file] = data
        entries.append((f, file, data))
    if prefer_cli and not manifest_last and cli_available():
        src = out + ".src"
        os.makedirs(src)
        for file, data in images.items():
            os.makedirs(os.path.join(src, os.path.dirname(file)), exist_ok=True)
            with open(os.path.join(src, file), "wb") as fh:
                fh.write(data)
        man = {"bundleId": bundle_id, "firmware": []}
        for f, file, _ in entries:
            e = {"name": "%s firmware %s" % (f["productId"], f["version"]), "file": file}
            e.update(f)
            man["firmware"].append(e)
        with open(os.path.join(src, "manifest.json"), "w") as fh:
            json.dump(man, fh)
        args = ["bundle", "create", "-o", out] + (["--key", key] if key else []) + [src]
        p = run_cli(args)
        assert p.returncode == 0, "otagw %s -> %d\n%s%s" % (" ".join(args), p.returncode,
                                                            p.stdout, p.stderr)
        ents = archive_entries(out)
        m = json.loads(ents["manifest.json"][1])
        return {"path": out, "manifest": m, "images": images, "cli": True}
    man = bundlegen.manifest(bundle_id, [bundlegen.fw_entry(f["productId"], f["version"], file,
                                                            data, **{k: v for k, v in f.items()
                                                                     if k not in ("productId",
                                                                                  "version")})
                                         for f, file, data in entries])
    bundlegen.build(out, man, images, key=key, manifest_last=manifest_last)
    return {"path": out, "manifest": man, "images": images, "cli": False}


def archive_entries(path):
    """{name: (kind, bytes)} of a tar/zip archive (small files only), in
    order (dict order)."""
    out = {}
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            for zi in z.infolist():
                out[zi.filename] = ("dir" if zi.is_dir() else "file", z.read(zi))
        return out
    with tarfile.open(path, "r:*") as t:
        for m in t.getmembers():
            kind = "file" if m.isreg() else "dir" if m.isdir() else "other"
            out[m.name] = (kind, t.extractfile(m).read() if m.isreg() else b"")
    return out


def rand(seed, n):
    return cachesrv.rand_bytes(seed, n)


def sha(data):
    return hashlib.sha256(data).hexdigest()


# -- importing ------------------------------------------------------------------------------

def post_bundle(g, path, token="own", timeout=120):
    """POST /api/bundles with the file as the body, streamed. (status, JSON)."""
    token = g.token if token == "own" else token
    size = os.path.getsize(path)
    hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    conn = http.client.HTTPConnection(HOST, g.port, timeout=timeout, blocksize=1 << 20)
    try:
        with open(path, "rb") as f:
            try:
                conn.request("POST", "/api/bundles", body=f, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError):
                pass                 # refused at the headers; the answer is there
            resp = conn.getresponse()
            body = resp.read()
    finally:
        conn.close()
    try:
        js = json.loads(body) if body else None
    except ValueError:
        js = None
    return resp.status, js


def job(g, jid):
    return g.ok("GET", "/api/bundles/" + jid)


def wait_import(g, jid, timeout=WAIT):
    """Polls GET /api/bundles/{id} until it is done or failed; checks the
    object's shape on the way. Returns the final object."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        j = job(g, jid)
        assert j["id"] == jid, j
        assert j["state"] in ("importing", "done", "failed"), j
        for k in ("bundleId", "source", "error"):
            assert isinstance(j.get(k), str), (k, j)
        for k in ("bytes", "total", "startTime", "endTime"):
            assert isinstance(j.get(k), int), (k, j)
        assert isinstance(j.get("firmware"), list) and isinstance(j.get("tasks"), list), j
        if last is not None:
            assert j["bytes"] >= last["bytes"], "bytes went down: %r -> %r" % (last, j)
        last = j
        if j["state"] != "importing":
            assert j["endTime"] >= j["startTime"] > 0, j
            return j
        if time.monotonic() > deadline:
            raise AssertionError("import %s still importing after %.0f s: %r" % (jid, timeout, j))
        time.sleep(POLL)


def import_post(g, path):
    st, js = post_bundle(g, path)
    assert st == 202, "POST /api/bundles %s -> %d %r" % (os.path.basename(path), st, js)
    assert isinstance(js, dict) and js.get("state") == "importing" and \
        re.match(r"^[A-Za-z0-9_.:-]{1,64}$", js.get("id") or ""), js
    return wait_import(g, js["id"])


def import_ok(g, path):
    j = import_post(g, path)
    assert j["state"] == "done" and j["error"] == "", \
        "import of %s: %r" % (os.path.basename(path), j)
    assert j["bytes"] == j["total"], j
    return j


def import_refused(g, path, words):
    j = import_post(g, path)
    assert j["state"] == "failed", "%s was not refused: %r" % (os.path.basename(path), j)
    err = j["error"].lower()
    assert any(w.lower() in err for w in words), \
        "error %r of %s names none of %r" % (j["error"], os.path.basename(path), words)
    assert j["firmware"] == [] and j["tasks"] == [], j
    return j


# -- what the gateway holds -------------------------------------------------------------------

def data_files(g, sub=""):
    """{path relative to <data>/sub: size} of every file under it."""
    root = os.path.join(g.data_dir, sub)
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


def leftovers(g):
    """Files in <data>/cache/partial and <data>/bundles."""
    return sorted(["cache/partial/" + n for n in data_files(g, "cache/partial")] +
                  ["bundles/" + n for n in data_files(g, "bundles")])


def cache_state(g, last_used=True):
    js = g.ok("GET", "/api/cache")
    js.pop("freeDiskBytes", None)
    items = sorted(js.pop("items"), key=lambda i: i["sha256"])
    if not last_used:
        for i in items:
            i.pop("lastUsed", None)
    js["items"] = items
    return js


def full_state(g, last_used=True):
    """Everything an import may touch: the REST listings (firmware with their
    image objects, devices, tasks, records), GET /api/cache and the files
    under <data>/cache (names and sizes)."""
    snap = g.snapshot()
    for fw in snap["/api/firmware"]:
        snap["fw:" + fw["id"]] = g.ok("GET", "/api/firmware/" + fw["id"])
    for d in snap["/api/devices"]:
        d.pop("online", None)
    snap["cache"] = cache_state(g, last_used)
    snap["files"] = data_files(g, "cache")
    return snap


def assert_same(before, after, what):
    if before == after:
        return
    diffs = []
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            diffs.append("%s:\n    before %r\n    after  %r" % (k, before.get(k), after.get(k)))
    raise AssertionError("%s changed the gateway:\n  %s" % (what, "\n  ".join(diffs[:8])))


def assert_no_leftovers(g, what):
    try:
        cachesrv.wait_for(lambda: not leftovers(g) or None, 3.0, "no leftover files")
    except AssertionError:
        raise AssertionError("%s left files behind: %r" % (what, leftovers(g))) from None


def assert_cache_matches_names(g):
    for name in data_files(g, "cache"):
        if "/" not in name:
            assert cachesrv.HEX64.match(name), "foreign file cache/%s" % name
            assert cachesrv.sha256_file(os.path.join(g.data_dir, "cache", name)) == name, \
                "cache/%s does not match its name" % name


def firmware_by(g, product, version):
    items = g.ok("GET", "/api/firmware?size=1000&productId=" + product)["items"]
    mine = [f for f in items if f["version"] == version]
    assert len(mine) <= 1, items
    return mine[0] if mine else None


def check_imported_fw(g, fw_id, product, version, data, **fields):
    """GET /api/firmware/{id}: the manifest's fields, the image ready."""
    fw = g.ok("GET", "/api/firmware/" + fw_id)
    assert (fw["productId"], fw["version"], fw["size"]) == (product, version, len(data)), fw
    for k, v in fields.items():
        assert fw.get(k) == v, (k, fw)
    if "sign" not in fields:
        assert (fw["sign"], fw["signMethod"].lower()) == (sha(data), "sha256"), fw
    img = fw["image"]
    assert img["state"] == "ready" and img["sha256"] == sha(data), fw
    p = os.path.join(g.data_dir, "cache", sha(data))
    assert os.path.isfile(p), "cache/%s missing" % sha(data)
    assert cachesrv.sha256_file(p) == sha(data)
    return fw


# -- HTTP devices -------------------------------------------------------------------------------

def dev_post(g, product, device, topic, body, expect=200):
    st, js, _, raw = http_request(g.port, "POST", "/device/%s/%s/firmware/%s" %
                                  (product, device, topic), body=body)
    assert st == expect, "POST %s %r -> %d %r" % (topic, body, st, raw[:300])
    return js


def upgrade_http_device(g, product, device, version, fw_id, data, task_id):
    """pull -> GET the reply's url -> progress complete -> record success."""
    rep = dev_post(g, product, device, "pull", {"messageId": "rt-pull", "requestVersion": ""})
    assert rep["success"] is True and rep["messageId"] == "rt-pull", rep
    assert (rep["firmwareId"], rep["version"], rep["size"]) == (fw_id, version, len(data)), rep
    u = urllib.parse.urlsplit(rep["url"])
    assert (u.hostname, u.port) == (HOST, g.port) and u.path == "/images/" + fw_id, rep
    st, _, hd, body = http_request(g.port, "GET", u.path + ("?" + u.query if u.query else ""),
                                   timeout=30)
    assert st == 200 and body == data, (st, len(body), len(data))
    assert hd.get("ETag", "").strip('"') == sha(data), hd
    js = dev_post(g, product, device, "upgrade/progress",
                  {"version": version, "progress": 100, "complete": True, "success": True})
    assert js == {"success": True}, js
    rec = cachesrv.wait_for(lambda: (lambda r: r if r["state"] == "success" else None)(
        record_of(g, task_id, device)), 10.0, "record of %s to be success" % device)
    dev_post(g, product, device, "report", {"version": version})
    return rec


def record_of(g, task_id, device_id):
    items = otagw_it.records(g, task_id)
    mine = [r for r in items if r["deviceId"] == device_id]
    assert len(mine) == 1, items
    return mine[0]


# -- export --------------------------------------------------------------------------------------

def get_export(g, since=None):
    """GET /api/export[?since=]: (export.json, [frames of messages.jsonl])."""
    path = "/api/export" + ("" if since is None else "?since=%d" % since)
    st, _, hd, body = http_request(g.port, "GET", path, token=g.token, timeout=30)
    assert st == 200, "GET %s -> %d %r" % (path, st, body[:300])
    return parse_export(body)


def parse_export(blob):
    assert blob[:2] == b"\x1f\x8b", "the export is not gzip: %r" % blob[:16]
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as t:
        members = {m.name: m for m in t.getmembers()}
        assert set(members) == {"export.json", "messages.jsonl"}, sorted(members)
        for m in members.values():
            assert m.isreg(), m.name
        meta = json.loads(t.extractfile(members["export.json"]).read())
        text = t.extractfile(members["messages.jsonl"]).read().decode()
    frames = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    assert text == "" or text.endswith("\n"), "messages.jsonl does not end with a newline"
    states = [f for f in frames if f.get("messageType") == "RECORD_STATE"]
    childs = [f for f in frames if f.get("messageType") == "CHILD"]
    assert len(states) + len(childs) == len(frames), \
        "messages.jsonl holds frames other than RECORD_STATE and CHILD: %r" % frames[:5]
    assert isinstance(meta, dict), meta
    for k in ("since", "until", "recordStates", "reports"):
        assert isinstance(meta.get(k), int), (k, meta)
    assert "gatewayId" in meta, meta
    assert meta["until"] >= meta["since"], meta
    assert (meta["recordStates"], meta["reports"]) == (len(states), len(childs)), \
        "export.json counts %r, messages.jsonl has %d RECORD_STATE and %d CHILD" % (
            meta, len(states), len(childs))
    seqs = [f.get("seq") for f in frames]
    assert all(isinstance(s, int) and s >= 1 for s in seqs) and seqs == sorted(set(seqs)), seqs
    for f in states:
        for k in ("taskId", "recordId", "deviceId", "firmwareId", "version", "to"):
            assert isinstance(f.get(k), str) and f[k], (k, f)
        assert isinstance(f.get("time"), int) and isinstance(f.get("timestamp"), int), f
        assert isinstance(f.get("progress"), int) and 0 <= f["progress"] <= 100, f
        assert f["to"] in ("waiting", "processing", "success", "failed", "canceled"), f
    for f in childs:
        assert isinstance(f.get("childDeviceId"), str) and isinstance(f.get("deviceId"), str), f
        cm = f.get("childDeviceMessage")
        assert isinstance(cm, dict) and cm.get("deviceId") == f["childDeviceId"], f
    return meta, frames


def moves_of(frames, record_id):
    return [(f.get("from"), f["to"]) for f in frames
            if f["messageType"] == "RECORD_STATE" and f["recordId"] == record_id]


def childs_of(frames, device_id):
    return [f for f in frames if f["messageType"] == "CHILD" and f["childDeviceId"] == device_id]


# ==================================================================================================
# round trip
# ==================================================================================================

def test_round_trip_post_http_device_export(gw_factory, tmp_path):
    g = gw_factory()
    dev_post(g, "meter", "rt1", "report", {"version": "1.0", "properties": {"hw": "A2"}})
    data = rand("rt", 300 * 1024 + 17)
    b = make_bundle(str(tmp_path / "rt.tar.gz"), "line3-rt", [
        {"productId": "meter", "version": "2.0", "data": data, "versionOrder": 20,
         "properties": {"hw": "A2"}, "description": "round trip",
         "tasks": [{"id": "rt-task", "name": "line 3 meters", "mode": "pull",
                    "timeoutSeconds": 600, "devices": ["rt1"]}]}])
    t0 = otagw_it.now_ms()
    j = import_ok(g, b["path"])
    assert (j["bundleId"], j["source"], j["total"]) == ("line3-rt", "upload", len(data)), j
    assert j["tasks"] == ["rt-task"] and len(j["firmware"]) == 1, j
    assert t0 - 1000 <= j["startTime"] <= j["endTime"] <= otagw_it.now_ms() + 1000, j
    fw_id = j["firmware"][0]
    check_imported_fw(g, fw_id, "meter", "2.0", data, versionOrder=20,
                      properties={"hw": "A2"}, description="round trip")
    listed = g.ok("GET", "/api/bundles")["items"]
    assert any(x["id"] == j["id"] and x["state"] == "done" for x in listed), listed
    task = g.ok("GET", "/api/tasks/rt-task")
    assert (task["firmwareId"], task["mode"], task["timeoutSeconds"], task["state"]) == \
        (fw_id, "pull", 600, "published"), task
    assert task["counts"]["waiting"] == 1 and task["counts"]["total"] == 1, task
    assert not leftovers(g), leftovers(g)

    rec = upgrade_http_device(g, "meter", "rt1", "2.0", fw_id, data, "rt-task")
    assert rec["progress"] == 100, rec

    meta, frames = get_export(g)
    assert meta["since"] == 0, meta
    moves = moves_of(frames, rec["id"])
    assert moves == [(None, "waiting"), ("waiting", "processing"), ("processing", "success")], \
        "RECORD_STATE frames of record %s: %r" % (rec["id"], moves)
    for f in frames:
        if f["messageType"] == "RECORD_STATE" and f["recordId"] == rec["id"]:
            assert (f["taskId"], f["deviceId"], f["firmwareId"], f["version"]) == \
                ("rt-task", "rt1", fw_id, "2.0"), f
            assert "from" not in f or f["to"] != "waiting", f
            assert f["time"] >= t0 - 1000, f
            if f["to"] == "success":
                assert f["progress"] == 100, f
    ch = childs_of(frames, "rt1")
    assert len(ch) == 1, "CHILD frames of rt1: %r" % ch
    cm = ch[0]["childDeviceMessage"]
    assert (cm["messageType"], cm["version"]) == ("REPORT_FIRMWARE", "2.0"), ch[0]

    # the next export without since starts where this one ended
    meta2, frames2 = get_export(g)
    assert meta2["since"] == meta["until"], (meta, meta2)
    assert moves_of(frames2, rec["id"]) == [] and childs_of(frames2, "rt1") == [], frames2
    # since= gives the range asked for, and does not move the cursor
    meta3, frames3 = get_export(g, since=0)
    assert moves_of(frames3, rec["id"]) == moves, frames3
    meta4, frames4 = get_export(g)
    assert moves_of(frames4, rec["id"]) == [] and childs_of(frames4, "rt1") == [], frames4
    assert meta4["since"] == meta2["until"], (meta2, meta4)


def test_export_refusals(gw):
    st, js, _ = gw.req("GET", "/api/export?since=yesterday")
    otagw_it.assert_error(st, js, 400, "since")
    st, js, _ = gw.req("POST", "/api/export", body={})
    assert st == 405, (st, js)
    meta, frames = get_export(gw, since=otagw_it.now_ms() + 3600 * 1000)
    assert frames == [] and (meta["recordStates"], meta["reports"]) == (0, 0), meta


def test_import_dir_report(gw_factory, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    g = gw_factory(config_extra="[gateway]\nimport_dir = %s\nimport_interval = 1\n" % usb)
    otagw_it.mk_dev(g, "ud1", productId="usbp")
    data = rand("usb", 200 * 1024 + 3)
    # written aside, then renamed in: the watcher sees only whole files
    b = make_bundle(str(tmp_path / "stick.zip"), "usb-1", [
        {"productId": "usbp", "version": "3.1", "data": data,
         "tasks": [{"name": "usb task", "mode": "push", "all": True}]}])
    (usb / "README.txt").write_text("not a bundle\n")
    os.replace(b["path"], str(usb / "stick.zip"))
    report = usb / "stick.zip.report.txt"
    cachesrv.wait_for(lambda: report.exists() or None, 10.0, "stick.zip.report.txt")
    text = report.read_text()
    assert "imported" in text.lower() and "refused" not in text.lower(), text
    assert "usb-1" in text, text
    items = g.ok("GET", "/api/bundles")["items"]
    mine = [x for x in items if x["source"] == "stick.zip"]
    assert len(mine) == 1 and mine[0]["state"] == "done", items
    fw_id = mine[0]["firmware"][0]
    assert fw_id in text, text
    check_imported_fw(g, fw_id, "usbp", "3.1", data)
    assert len(mine[0]["tasks"]) == 1, mine
    task = g.ok("GET", "/api/tasks/" + mine[0]["tasks"][0])
    assert task["counts"]["total"] == 1 and task["mode"] == "push", task
    assert not (usb / "README.txt.report.txt").exists()
    assert os.path.exists(str(usb / "stick.zip")), "the watcher removed the bundle"

    # a hostile one beside it: refused, with the reason in its report
    bad = bundlegen.h_absolute(str(tmp_path))
    os.replace(bad, str(usb / "bad.tar.gz"))
    rep2 = usb / "bad.tar.gz.report.txt"
    cachesrv.wait_for(lambda: rep2.exists() or None, 10.0, "bad.tar.gz.report.txt")
    t2 = rep2.read_text().lower()
    assert "refused" in t2 and "absolute" in t2, t2
    # each file once: nothing imported again while they stay
    n = len(g.ok("GET", "/api/bundles")["items"])
    time.sleep(2.5)
    assert len(g.ok("GET", "/api/bundles")["items"]) == n
    assert report.read_text() == text
    assert sorted(os.listdir(str(usb))) == ["README.txt", "bad.tar.gz", "bad.tar.gz.report.txt",
                                             "stick.zip", "stick.zip.report.txt"]
    assert_no_leftovers(g, "import_dir")


def test_import_dir_file_still_being_written(gw_factory, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    g = gw_factory(config_extra="[gateway]\nimport_dir = %s\nimport_interval = 1\n" % usb)
    info = bundlegen.good(str(tmp_path / "slow.tar"), product="slow", size=300000)
    with open(info["path"], "rb") as f:
        blob = f.read()
    report = usb / "slow.tar.report.txt"
    with open(str(usb / "slow.tar"), "wb") as f:      # a slow copy under the final name
        f.write(blob[:100000])
        f.flush()
        time.sleep(2.5)
        f.write(blob[100000:])
    cachesrv.wait_for(lambda: report.exists() or None, 10.0, "slow.tar.report.txt")
    time.sleep(2.5)
    text = report.read_text()
    assert "imported" in text, text
    assert firmware_by(g, "slow", "2.0") is not None


@pytest.mark.parametrize("fmt,last", [(f, last) for f in ("tar", "tar.gz", "tar.xz", "zip")
                                      for last in (False, True)],
                         ids=lambda v: {True: "manifest_last", False: "manifest_first"}.get(v, v))
def test_formats(gw_factory, tmp_path, fmt, last):
    g = gw_factory()
    otagw_it.mk_dev(g, "fd1", productId="fmt")
    d1, d2 = rand(fmt + str(last), 150 * 1024 + 1), rand(fmt + "b", 3000)
    info = bundlegen.manifest("fmt-%s-%d" % (fmt.replace(".", ""), last), [
        bundlegen.fw_entry("fmt", "1.1", "images/a.bin", d1,
                           tasks=[{"name": "fmt", "mode": "pull", "devices": ["fd1"]}]),
        bundlegen.fw_entry("fmt", "1.2", "fw/b/c.bin", d2, versionOrder=12)])
    path = str(tmp_path / ("b." + fmt))
    bundlegen.build(path, info, {"images/a.bin": d1, "fw/b/c.bin": d2}, manifest_last=last,
                    dirs=True)
    j = import_ok(g, path)
    assert j["total"] == len(d1) + len(d2) and len(j["firmware"]) == 2, j
    check_imported_fw(g, j["firmware"][0], "fmt", "1.1", d1)
    check_imported_fw(g, j["firmware"][1], "fmt", "1.2", d2, versionOrder=12)
    assert len(j["tasks"]) == 1
    assert otagw_it.records(g, j["tasks"][0])[0]["state"] == "waiting"
    assert not leftovers(g)
    assert_cache_matches_names(g)


def test_reimport_changes_nothing(gw_factory, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    g = gw_factory(config_extra="[gateway]\nimport_dir = %s\nimport_interval = 1\n" % usb)
    for d in ("ri1", "ri2"):
        otagw_it.mk_dev(g, d, productId="rip")
    d1, d2 = rand("ri1", 120 * 1024), rand("ri2", 90 * 1024 + 1)
    fws = [{"productId": "rip", "version": "4.0", "data": d1,
            "tasks": [{"name": "to ri1", "mode": "pull", "devices": ["ri1"]},
                      {"id": "ri-all", "name": "all", "mode": "push", "all": True}]},
           {"productId": "rip", "version": "4.1", "data": d2, "id": "rip-4.1"}]
    b = make_bundle(str(tmp_path / "ri.tar.gz"), "reimport", fws)
    j1 = import_ok(g, b["path"])
    assert len(j1["firmware"]) == 2 and len(j1["tasks"]) == 2 and "ri-all" in j1["tasks"], j1
    assert j1["firmware"][1] == "rip-4.1", j1
    before = full_state(g, last_used=False)

    j2 = import_ok(g, b["path"])
    assert (j2["firmware"], j2["tasks"]) == (j1["firmware"], j1["tasks"]), (j1, j2)
    assert_same(before, full_state(g, last_used=False), "a second import of the same bundle")

    # the same manifest and images in another archive format, manifest last
    other = str(tmp_path / "ri-again.zip")
    bundlegen.build(other, b["manifest"], b["images"], manifest_last=True)
    j3 = import_ok(g, other)
    assert (j3["firmware"], j3["tasks"]) == (j1["firmware"], j1["tasks"]), (j1, j3)
    assert_same(before, full_state(g, last_used=False), "the same bundle as a zip")

    # and through the import dir
    shutil.copy(b["path"], str(usb / "ri.tar.gz"))
    report = usb / "ri.tar.gz.report.txt"
    cachesrv.wait_for(lambda: report.exists() or None, 10.0, "ri.tar.gz.report.txt")
    assert "imported" in report.read_text(), report.read_text()
    assert_same(before, full_state(g, last_used=False), "the same bundle from import_dir")

    # a conflicting bundle: same product and version, another image: refused
    before = full_state(g)
    bad = make_bundle(str(tmp_path / "conflict.tar"), "reimport-conflict",
                      [{"productId": "rip", "version": "4.0", "data": rand("other", 5000)}],
                      prefer_cli=False)
    import_refused(g, bad["path"], ("already", "another image", "exists"))
    assert_same(before, full_state(g), "a refused conflicting bundle")
    assert_no_leftovers(g, "re-imports")


# ==================================================================================================
# hostile bundles
# ==================================================================================================

@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hostile"))


def hostile_path(hostile_dir, name, table=bundlegen.HOSTILE):
    d = os.path.join(hostile_dir, name)
    if not os.path.isdir(d):
        os.makedirs(d + ".tmp", exist_ok=True)
        table[name][0](d + ".tmp")
        os.rename(d + ".tmp", d)
    files = [f for f in os.listdir(d) if not f.startswith(".")]
    assert len(files) == 1, files
    return os.path.join(d, files[0])


def seed_store(g, tmp_path, tag="seed"):
    """A store with something in it: a device, an imported firmware with a
    pull task holding a waiting record, and a firmware made by hand."""
    otagw_it.mk_dev(g, tag + "-d1", productId=tag)
    data = rand(tag, 40 * 1024 + 1)
    b = make_bundle(str(tmp_path / (tag + ".tar.gz")), tag + "-bundle",
                    [{"productId": tag, "version": "1.0", "data": data,
                      "tasks": [{"name": "seed", "mode": "pull", "devices": [tag + "-d1"]}]}],
                    prefer_cli=False)
    j = import_ok(g, b["path"])
    otagw_it.mk_fw(g, productId=tag, version="0.9", url="http://127.0.0.1:9/none.bin")
    return j, data


def good_import_after(g, tmp_path, tag):
    data = rand("after" + tag, 20 * 1024 + 9)
    b = make_bundle(str(tmp_path / ("after-%s.tar.gz" % tag)), "after-" + tag,
                    [{"productId": "after", "version": tag, "data": data}], prefer_cli=False)
    j = import_ok(g, b["path"])
    check_imported_fw(g, j["firmware"][0], "after", tag, data)


@pytest.mark.parametrize("name", sorted(bundlegen.HOSTILE))
def test_hostile_bundle_refused(gw_factory, tmp_path, hostile_dir, name):
    path = hostile_path(hostile_dir, name)
    words = bundlegen.HOSTILE[name][1]
    g = gw_factory()
    seed_store(g, tmp_path)
    before = full_state(g)
    files_before = data_files(g)
    # where an extracting importer would have put "../x", "/etc/x", "a/../../x"
    outside = {p: os.path.exists(p) for p in (
        "/etc/x", "/x", os.path.join(g.workdir, "x"), os.path.join(g.data_dir, "x"),
        os.path.join(g.data_dir, "cache", "x"), os.path.join(g.data_dir, "bundles", "x"),
        os.path.join(os.path.dirname(path), "..", "x"), os.path.join(os.getcwd(), "x"))}
    j = import_refused(g, path, words)
    assert j["source"] == "upload", j
    assert_same(before, full_state(g), "the refused bundle %s" % name)
    assert_no_leftovers(g, "the refused bundle %s" % name)
    assert_cache_matches_names(g)
    # nothing was written anywhere under the data dir but the database
    new = sorted(set(data_files(g)) - set(files_before) -
                 {"otagw.db", "otagw.db-wal", "otagw.db-shm"})
    assert new == [], "new files under the data dir: %r" % new
    for p, existed in outside.items():
        assert os.path.exists(p) == existed, "%s %s" % (p, "vanished" if existed else "appeared")
    good_import_after(g, tmp_path, "1." + str(len(name)))


def test_refusal_reasons_are_readable(gw_factory, tmp_path, hostile_dir, keys):
    """The error of a refusal says what was wrong in full: the expected and
    actual digests, the missing field, the signature's fault; no text of
    its own repeated in front of itself."""
    (priv, pub), (priv2, _) = keys
    g = gw_factory(config_extra="[gateway]\nbundle_key = %s\nrequire_signed_bundles = false\n"
                   % pub)
    bad = []

    def check(what, path, *phrases):
        j = import_post(g, path)
        err = j["error"]
        if j["state"] != "failed":
            bad.append("%s: not refused: %r" % (what, j))
            return
        m = re.search(r"([^:]{4,}: )\1", err)
        if m:
            bad.append("%s: %r repeats %r" % (what, err, m.group(1)))
        for ph in phrases:
            if ph.lower() not in err.lower():
                bad.append("%s: %r does not say %r" % (what, err, ph))

    m, file, data = bundlegen._base("readable-sha")
    wrong = bytearray(data)
    wrong[7] ^= 0x80
    bundlegen.build(str(tmp_path / "sha.tar"), m, {file: bytes(wrong)})
    check("sha256 mismatch", str(tmp_path / "sha.tar"), m["firmware"][0]["sha256"],
          sha(bytes(wrong)))
    check("short image", hostile_path(hostile_dir, "undersize"), "expected")
    m, file, data = bundlegen._base("readable-nosha")
    del m["firmware"][0]["sha256"]
    bundlegen.build(str(tmp_path / "nosha.tar"), m, {file: data})
    check("manifest without sha256", str(tmp_path / "nosha.tar"), "sha256")
    check("signature by another key",
          bundlegen.good(str(tmp_path / "k.tar"), product="rk", key=priv2)["path"],
          "signature", "does not verify")
    check("garbage signature", hostile_path(str(tmp_path), "sig_garbage",
                                            bundlegen.HOSTILE_SIGNED), "signature", "base64")
    assert not bad, "\n".join(bad)


def test_refused_bundle_keeps_images_already_cached(gw_factory, tmp_path):
    """A refused bundle whose image the cache already holds (from an earlier
    import) must not take that image away."""
    g = gw_factory()
    j, data = seed_store(g, tmp_path)
    before = full_state(g)
    m = bundlegen.manifest("again-bad", [bundlegen.fw_entry("seed2", "1.0", "images/s.bin", data)])
    path = str(tmp_path / "again-bad.tar")
    bundlegen.build(path, m, {"images/s.bin": data},
                    extra=[bundlegen.Entry("images/x.bin", kind="symlink", link="/etc/passwd")])
    import_refused(g, path, ("link",))
    assert_same(before, full_state(g), "a refused bundle holding a cached image")
    check_imported_fw(g, j["firmware"][0], "seed", "1.0", data)


def test_concurrent_imports_sharing_an_image(gw_factory, tmp_path):
    """Two bundles with the same image land in import_dir together (their
    imports run side by side, a slice each): A is good, B holds a link
    after the image and is refused. B's refusal must not take away the
    image A's firmware now uses."""
    usb = tmp_path / "usb"
    usb.mkdir()
    g = gw_factory(config_extra="[gateway]\nimport_dir = %s\nimport_interval = 1\n" % usb)
    size = (16 if SAN else 24) * MiB          # several 8 MiB import slices
    img, digest = bundlegen.make_image(str(tmp_path / "shared.bin"), size, seed=0x5a)
    ma = bundlegen.manifest("share-a", [bundlegen.fw_entry("sha", "1.0", "x.bin", img)])
    mb = bundlegen.manifest("share-b", [bundlegen.fw_entry("shb", "1.0", "x.bin", img)])
    bundlegen.build(str(tmp_path / "a.tar"), ma, {"x.bin": img})
    bundlegen.build(str(tmp_path / "b.tar"), mb, {"x.bin": img},
                    extra=[bundlegen.Entry("evil", kind="symlink", link="/etc/passwd")])
    os.replace(str(tmp_path / "a.tar"), str(usb / "a.tar"))
    os.replace(str(tmp_path / "b.tar"), str(usb / "b.tar"))
    reports = [usb / "a.tar.report.txt", usb / "b.tar.report.txt"]
    cachesrv.wait_for(lambda: all(r.exists() for r in reports) or None, WAIT, "both reports")
    assert "imported" in reports[0].read_text(), reports[0].read_text()
    assert "refused" in reports[1].read_text(), reports[1].read_text()
    fws = g.ok("GET", "/api/firmware?size=1000")["items"]
    assert [f["productId"] for f in fws] == ["sha"], fws
    fw = fws[0]
    img_state = g.ok("GET", "/api/firmware/" + fw["id"])["image"]
    p = os.path.join(g.data_dir, "cache", digest)
    st, _, _, body = http_request(g.port, "GET", "/images/" + fw["id"], timeout=60)
    cache = g.ok("GET", "/api/cache")
    assert os.path.isfile(p) and img_state["state"] == "ready" and st == 200 and \
        len(body) == size and [i["sha256"] for i in cache["items"]] == [digest], \
        "after B's refusal, A's firmware image is %r, cache/%s %s, GET /images -> %d " \
        "(%d bytes), GET /api/cache %r" % (img_state, digest[:16],
                                            "exists" if os.path.exists(p) else "is gone",
                                            st, len(body), cache["items"])
    assert sha(body) == digest
    assert_no_leftovers(g, "side by side imports")


def test_quota_refusals(gw_factory, tmp_path):
    g = gw_factory(config_extra="[cache]\nmax_bytes = 1048576\n")
    before = full_state(g)
    # two images of 600 KiB: more than the 1 MiB quota together
    a, b = rand("qa", 600 * 1024), rand("qb", 600 * 1024)
    m = bundlegen.manifest("quota", [bundlegen.fw_entry("q", "1", "a.bin", a),
                                     bundlegen.fw_entry("q", "2", "b.bin", b)])
    path = str(tmp_path / "quota.tar")
    bundlegen.build(path, m, {"a.bin": a, "b.bin": b})
    import_refused(g, path, ("quota",))
    assert_same(before, full_state(g), "a bundle over the quota")
    # a body far over the quota is refused at the headers
    huge = str(tmp_path / "huge.tar")
    bundlegen.good(huge, product="huge", size=4 * MiB)
    st, js = post_bundle(g, huge)
    assert st == 413, (st, js)
    assert_no_leftovers(g, "over-quota bundles")
    assert_same(before, full_state(g), "a bundle refused at its headers")
    good_import_after(g, tmp_path, "q")


def test_api_refusals_and_token(gw_factory, tmp_path):
    g = gw_factory(token=TOKEN)
    info = bundlegen.good(str(tmp_path / "tok.tar.gz"), product="tok")
    st, js = post_bundle(g, info["path"], token=None)
    assert st == 401, (st, js)
    st, js = post_bundle(g, info["path"], token="wrong")
    assert st == 401, (st, js)
    for path in ("/api/bundles", "/api/export"):
        st, js, _ = g.req("GET", path, auth=False)
        assert st == 401, (path, st, js)
    assert g.ok("GET", "/api/bundles")["items"] == []
    assert_no_leftovers(g, "unauthorised uploads")
    st, js, _ = g.req("GET", "/api/bundles/0123456789abcdef")
    assert st == 404, (st, js)
    st, js, _ = g.req("POST", "/api/bundles", raw=b"")
    assert st == 400, (st, js)
    st, js, _ = g.req("DELETE", "/api/bundles")
    assert st == 405, (st, js)
    j = import_ok(g, info["path"])
    assert g.ok("GET", "/api/bundles")["items"][0]["id"] == j["id"]


# ==================================================================================================
# signatures
# ==================================================================================================

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("keys"))
    return bundlegen.keypair(d, "signer"), bundlegen.keypair(d, "stranger")


def test_signed_bundles(gw_factory, tmp_path, keys):
    (priv, pub), (priv2, _) = keys
    g = gw_factory(config_extra="[gateway]\nbundle_key = %s\n" % pub)
    seed = bundlegen.good(str(tmp_path / "seed.tar.gz"), product="sig0", key=priv)
    import_ok(g, seed["path"])
    before = full_state(g)
    t = str(tmp_path)
    cases = []
    cases.append(("unsigned", bundlegen.good(t + "/unsigned.tar.gz", product="s1")["path"],
                  ("signed", "manifest.sig")))
    cases.append(("wrong key", bundlegen.good(t + "/stranger.tar.gz", product="s2",
                                              key=priv2)["path"], ("verify", "signature")))
    info = bundlegen.good(t + "/tamper-src.tar", product="s3")
    sig = bundlegen.sign(info["manifest_bytes"], priv, t)
    tampered = info["manifest_bytes"].replace(b'"version": "2.0"', b'"version": "2.1"')
    assert tampered != info["manifest_bytes"]
    bundlegen.build(t + "/tampered.tar", tampered, {info["file"]: info["data"]}, sig=sig)
    cases.append(("tampered manifest", t + "/tampered.tar", ("verify", "signature")))
    cases.append(("garbage sig", hostile_path(t, "sig_garbage", bundlegen.HOSTILE_SIGNED),
                  ("signature", "base64", "verify")))
    # a signature for the manifest, shipped with a manifest one byte longer
    bundlegen.build(t + "/ws.tar", info["manifest_bytes"] + b"\n", {info["file"]: info["data"]},
                    sig=sig)
    cases.append(("whitespace added", t + "/ws.tar", ("verify", "signature")))
    for what, path, words in cases:
        j = import_refused(g, path, words)
        assert "manifest.sig" in j["error"] or "sign" in j["error"].lower(), (what, j)
        assert_same(before, full_state(g), "the %s bundle" % what)
    assert_no_leftovers(g, "refused unsigned bundles")
    # signed ones still go in, in every format and with the manifest last
    for i, fmt in enumerate(("tar", "tar.xz", "zip")):
        info = bundlegen.good(t + "/ok%d.%s" % (i, fmt), product="ok%d" % i, key=priv,
                              manifest_last=bool(i % 2))
        j = import_ok(g, info["path"])
        check_imported_fw(g, j["firmware"][0], "ok%d" % i, "2.0", info["data"])


def test_signature_optional(gw_factory, tmp_path, keys):
    (priv, pub), (priv2, _) = keys
    t = str(tmp_path)
    # no bundle_key: signed and unsigned bundles go in
    g = gw_factory()
    import_ok(g, bundlegen.good(t + "/a.tar", product="o1", key=priv)["path"])
    import_ok(g, bundlegen.good(t + "/b.tar", product="o2")["path"])
    # bundle_key with require_signed_bundles = false: unsigned goes in, a bad
    # signature is still refused
    g2 = gw_factory(config_extra="[gateway]\nbundle_key = %s\nrequire_signed_bundles = false\n"
                    % pub)
    import_ok(g2, bundlegen.good(t + "/c.tar", product="o3")["path"])
    import_ok(g2, bundlegen.good(t + "/d.tar", product="o4", key=priv)["path"])
    before = full_state(g2)
    import_refused(g2, bundlegen.good(t + "/e.tar", product="o5", key=priv2)["path"],
                   ("verify", "signature"))
    assert_same(before, full_state(g2), "a wrongly signed bundle")


# ==================================================================================================
# kill -9
# ==================================================================================================

@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory):
    """A small image, then a large one (BIG bytes), in a .tar.gz."""
    d = str(tmp_path_factory.mktemp("big"))
    img, big_sha = bundlegen.make_image(os.path.join(d, "big.bin"), BIG, seed=0xb16)
    small = rand("small", 100 * 1024 + 1)
    m = bundlegen.manifest("big-bundle", [
        bundlegen.fw_entry("kbs", "1.0", "images/small.bin", small),
        bundlegen.fw_entry("kbb", "1.0", "images/big.bin", img)])
    out = os.path.join(d, "big.tar.gz")
    bundlegen.build(out, m, {"images/small.bin": small, "images/big.bin": img}, compresslevel=1)
    return {"path": out, "small": small, "big_sha": big_sha, "big_path": img}


def kill9(g):
    g.proc.send_signal(signal.SIGKILL)
    g.proc.wait(timeout=10)
    g.proc = None


def catch_importing(g, jid=None, timeout=WAIT, min_part=200 * 1024):
    """Waits until an import (jid, or any in GET /api/bundles) is under way
    with bytes in: GET shows it importing with bytes > 0, or (whichever
    comes first: the import holds the loop for a few slices at a time, so
    GET answers late) a partial in cache/partial/ has grown past min_part
    (past the small image: the large one is streaming). Returns what it
    saw (None if the import ended first)."""
    seen = {}
    stop = threading.Event()

    def api():
        while not stop.is_set():
            try:
                items = [job(g, jid)] if jid else g.ok("GET", "/api/bundles")["items"]
            except Exception:       # the daemon killed under it
                return
            for j in items:
                if j["state"] == "importing" and j["bytes"] > 0:
                    seen.setdefault("api", j)
                elif j["state"] != "importing":
                    seen.setdefault("ended", j)
            time.sleep(0.002)

    t = threading.Thread(target=api, daemon=True)
    t.start()
    part = os.path.join(g.data_dir, "cache", "partial")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if "api" in seen or "ended" in seen:
                break
            try:
                for n in os.listdir(part):
                    if n.endswith(".part") and \
                            os.path.getsize(os.path.join(part, n)) > min_part:
                        seen.setdefault("partial", "%s: %d bytes" % (
                            n, os.path.getsize(os.path.join(part, n))))
            except OSError:
                pass
            if "partial" in seen:
                break
            time.sleep(0.0005)
    finally:
        stop.set()
    if "ended" in seen and len(seen) == 1:
        return None
    if not seen:
        raise AssertionError("no import progress within %.0f s" % timeout)
    return seen


def after_crash_problems(g, big):
    """What a restart after kill -9 must not show. Returns (firmware found,
    [problems])."""
    problems = []
    fws = {f["productId"]: f for f in g.ok("GET", "/api/firmware?size=1000")["items"]}
    if fws:
        if set(fws) != {"kbs", "kbb"}:
            problems.append("half an import after the restart: firmware %r" % sorted(fws))
        for f in fws.values():
            img = cachesrv.wait_image(g, f["id"], ("ready", "failed", "missing"), 30.0)
            if img["state"] != "ready":
                problems.append("firmware %s after the restart: image %r" % (f["productId"], img))
    items = g.ok("GET", "/api/cache")["items"]
    orphans = [i for i in items if not i["firmwareIds"]]
    if orphans:
        problems.append("images no firmware uses, left in the cache by the killed import: %r"
                        % [(i["sha256"][:16], i["size"]) for i in orphans])
    known = {i["sha256"] for i in items}
    stray = [n for n in data_files(g, "cache") if "/" not in n and n not in known]
    if stray:
        problems.append("files in cache/ the index does not list: %r" % stray)
    try:
        cachesrv.wait_for(lambda: not leftovers(g) or None, 5.0, "no leftovers")
    except AssertionError:
        problems.append("left behind after the restart: %r" % leftovers(g))
    return fws, problems


def check_big_imported(g, big):
    fws = {f["productId"]: f for f in g.ok("GET", "/api/firmware?size=1000")["items"]}
    assert set(fws) == {"kbs", "kbb"}, fws
    check_imported_fw(g, fws["kbs"]["id"], "kbs", "1.0", big["small"])
    img = cachesrv.wait_image(g, fws["kbb"]["id"], "ready", 30.0)
    assert img["sha256"] == big["big_sha"] and img["bytes"] == BIG, img
    assert cachesrv.sha256_file(os.path.join(g.data_dir, "cache", big["big_sha"])) == \
        big["big_sha"]
    items = g.ok("GET", "/api/cache")["items"]
    assert sorted(i["sha256"] for i in items) == sorted([sha(big["small"]), big["big_sha"]]), items


def test_kill9_during_post_import_then_retry(gw_factory, big_bundle):
    g = gw_factory()
    st, js = post_bundle(g, big_bundle["path"])
    assert st == 202, (st, js)
    caught = catch_importing(g, js["id"])
    assert caught is not None, "the import ended before it could be caught importing"
    kill9(g)
    on_disk = leftovers(g)
    g.start()
    fws, problems = after_crash_problems(g, big_bundle)
    assert_cache_matches_names(g)
    j = import_ok(g, big_bundle["path"])          # the retry
    assert len(j["firmware"]) == 2, j
    check_big_imported(g, big_bundle)
    if leftovers(g):
        problems.append("left behind after the retry: %r" % leftovers(g))
    assert not problems, "killed at %r (files then: %r):\n  %s" % (
        caught, on_disk, "\n  ".join(problems))


def test_kill9_during_import_dir_import_resumes(gw_factory, tmp_path, big_bundle):
    """The import dir's bundle has no report yet after the crash: the
    restarted daemon imports it again by itself."""
    usb = tmp_path / "usb"
    usb.mkdir()
    g = gw_factory(config_extra="[gateway]\nimport_dir = %s\nimport_interval = 1\n" % usb)
    shutil.copy(big_bundle["path"], str(usb / ".big.tar.gz"))
    os.replace(str(usb / ".big.tar.gz"), str(usb / "big.tar.gz"))
    caught = catch_importing(g, timeout=10.0)
    assert caught is not None, "the import ended before it could be caught importing"
    kill9(g)
    report = usb / "big.tar.gz.report.txt"
    assert not report.exists(), report.read_text()
    g.start()
    cachesrv.wait_for(lambda: report.exists() or None, WAIT, "big.tar.gz.report.txt")
    assert "imported" in report.read_text(), report.read_text()
    check_big_imported(g, big_bundle)
    assert_no_leftovers(g, "the resumed import")


# ==================================================================================================
# the CLI
# ==================================================================================================

@needs_cli
@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tgz", "tar.xz", "zip"])
def test_cli_bundle_create(gw_factory, tmp_path, keys, fmt):
    (priv, pub), _ = keys
    data = rand("cli" + fmt, 70 * 1024 + 5)
    out = str(tmp_path / ("cli." + fmt))
    b = make_bundle(out, "cli-" + fmt.replace(".", ""),
                    [{"productId": "clip", "version": "5.0", "data": data,
                      "description": "made by otagw bundle create"}], key=priv)
    assert b["cli"]
    ents = archive_entries(out)
    names = list(ents)
    assert names[0] == "manifest.json", names
    assert set(names) == {"manifest.json", "manifest.sig", "images/clip-5.0.bin"}, names
    m = b["manifest"]
    fw = m["firmware"][0]
    assert (fw["size"], fw["sha256"]) == (len(data), sha(data)), fw
    assert fw.get("sign") == sha(data) and fw.get("signMethod", "").lower() == "sha256", fw
    assert isinstance(m.get("createTime"), int) and m["createTime"] > 0, m
    assert ents["images/clip-5.0.bin"][1] == data
    assert bundlegen.verify(ents["manifest.json"][1], ents["manifest.sig"][1].decode().strip(),
                            pub, str(tmp_path)), "manifest.sig does not verify with openssl"
    assert not os.path.exists(out + ".tmp")
    g = gw_factory(config_extra="[gateway]\nbundle_key = %s\n" % pub)
    j = import_ok(g, out)
    check_imported_fw(g, j["firmware"][0], "clip", "5.0", data,
                      description="made by otagw bundle create")


@needs_cli
def test_cli_bundle_create_refusals(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a" * 100)
    out = str(tmp_path / "out.tar.gz")

    def create(man, *extra):
        (src / "manifest.json").write_text(json.dumps(man))
        return run_cli(["bundle", "create", "-o", out] + list(extra) + [str(src)])

    base = {"bundleId": "r1", "firmware": [{"productId": "p", "name": "n", "version": "1",
                                            "file": "a.bin"}]}
    p = create(base)
    assert p.returncode == 0, p.stderr
    os.unlink(out)
    for file in ("../a.bin", "/etc/passwd", "missing.bin"):
        man = json.loads(json.dumps(base))
        man["firmware"][0]["file"] = file
        p = create(man)
        assert p.returncode == 1, (file, p.returncode, p.stdout, p.stderr)
        assert p.stderr.strip(), file
        assert not os.path.exists(out) and not os.path.exists(out + ".tmp"), file
    man = json.loads(json.dumps(base))
    man["firmware"][0]["size"] = 99
    p = create(man)
    assert p.returncode == 1 and not os.path.exists(out), (p.returncode, p.stderr)
    p = run_cli(["bundle", "create", str(src)])
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = run_cli(["bundle", "create", "-o", str(tmp_path / "x.rar"), str(src)])
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = create(base, "--key", str(tmp_path / "no-such-key.pem"))
    assert p.returncode == 1 and not os.path.exists(out), (p.returncode, p.stderr)


@needs_cli
def test_cli_import_and_export(gw_factory, tmp_path, keys):
    (priv, pub), _ = keys
    g = gw_factory(token=TOKEN, config_extra="[gateway]\nbundle_key = %s\n" % pub)
    dev_post(g, "clim", "cd1", "report", {"version": "1.0"})
    data = rand("cli-imp", 256 * 1024 + 3)
    b = make_bundle(str(tmp_path / "imp.tar.xz"), "cli-import",
                    [{"productId": "clim", "version": "2.0", "data": data,
                      "tasks": [{"id": "cli-task", "name": "cli", "mode": "pull",
                                 "devices": ["cd1"]}]}], key=priv)
    url = g.base
    p = run_cli(["import", "--url", url, "--token", TOKEN, "-q", b["path"]])
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = json.loads(p.stdout)
    assert out["state"] == "done" and out["tasks"] == ["cli-task"], out
    fw_id = out["firmware"][0]
    check_imported_fw(g, fw_id, "clim", "2.0", data)
    rec = upgrade_http_device(g, "clim", "cd1", "2.0", fw_id, data, "cli-task")

    # the token from the environment; the same bundle again changes nothing
    before = full_state(g, last_used=False)
    p = run_cli(["import", "-q", b["path"]], env={"OTAGW_URL": url, "OTAGW_TOKEN": TOKEN})
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert_same(before, full_state(g, last_used=False), "otagw import of the same bundle")

    # refusals: a hostile bundle 1, a wrong token 1, usage 2, no daemon 3
    m, file, hd = bundlegen._base("cli-absolute")
    bad = str(tmp_path / "bad.tar.gz")
    bundlegen.build(bad, m, {file: hd}, key=priv,
                    extra=[bundlegen.Entry("/etc/x", data=b"root::0:0::/:/bin/sh\n")])
    p = run_cli(["import", "--url", url, "--token", TOKEN, "-q", bad])
    assert p.returncode == 1 and "absolute" in p.stderr.lower(), (p.returncode, p.stderr)
    p = run_cli(["import", "--url", url, "--token", "wrong", "-q", b["path"]])
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert TOKEN not in p.stdout + p.stderr
    p = run_cli(["import", "--url", url, "--token", TOKEN])
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = run_cli(["import", "--url", "http://127.0.0.1:%d" % free_port(), "-q", b["path"]])
    assert p.returncode == 3, (p.returncode, p.stderr)
    p = run_cli(["import", "--url", url, "--token", TOKEN, "-q", str(tmp_path / "nope.tar")])
    assert p.returncode in (1, 2), (p.returncode, p.stderr)
    assert_same(before, full_state(g, last_used=False), "refused otagw imports")

    # export: the record's frames, then none of them without --since
    f1 = str(tmp_path / "e1.tar.gz")
    p = run_cli(["export", "--url", url, "--token", TOKEN, "-q", f1])
    assert p.returncode == 0, (p.returncode, p.stderr)
    with open(f1, "rb") as f:
        meta, frames = parse_export(f.read())
    assert moves_of(frames, rec["id"]) == [(None, "waiting"), ("waiting", "processing"),
                                           ("processing", "success")], frames
    assert len(childs_of(frames, "cd1")) == 1, frames
    f2 = str(tmp_path / "e2.tar.gz")
    p = run_cli(["export", "--url", url, "--token", TOKEN, "-q", f2])
    assert p.returncode == 0, (p.returncode, p.stderr)
    with open(f2, "rb") as f:
        meta2, frames2 = parse_export(f.read())
    assert moves_of(frames2, rec["id"]) == [] and meta2["since"] == meta["until"], meta2
    f3 = str(tmp_path / "e3.tar.gz")
    p = run_cli(["export", "--since", "0", "--url", url, "--token", TOKEN, "-q", f3])
    assert p.returncode == 0, (p.returncode, p.stderr)
    with open(f3, "rb") as f:
        meta3, frames3 = parse_export(f.read())
    assert len(moves_of(frames3, rec["id"])) == 3 and meta3["since"] == 0, meta3
    p = run_cli(["export", "--since", "soon", "--url", url, "--token", TOKEN, f3])
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = run_cli(["export", "--url", "http://127.0.0.1:%d" % free_port(),
                 str(tmp_path / "e4.tar.gz")])
    assert p.returncode == 3 and not os.path.exists(str(tmp_path / "e4.tar.gz")), p.returncode
