#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tests/bench/cloud_bench.py BUILD - northbound cloud link benchmarks
(prints, never asserts). Starts its own daemon (BUILD/otagw) on 127.0.0.1
with [tcp] devices and a [cloud] link to tests/cloudsim.py, run in a child
process so its JSON work does not share the GIL with the device driver.

  1. progress aggregation: N devices (one TCP connection each, jsonline),
     each with a processing record, send U progress updates each, in rounds
     (round r: every device sends progress r*100/U). Upstream frames and
     bytes the cloud received as PROGRESS_BATCH, next to the reference of one
     message per update: one canonical per-update frame (the device's
     UPGRADE_FIRMWARE_PROGRESS as a CHILD frame, PROTOCOL.md 5.2, with its
     real seq, ids, progress and timestamps) encoded for every update made.
     Target: >= 20x fewer.
  2. state-change delay: from just before a device's final progress
     (complete: success) is written to its socket to the arrival of that
     RECORD_STATE at the simulator; p50/p99 over L changes while the
     progress flood of part 1 runs, and over L changes on an idle gateway.
     Target: p99 < 1 s.
  3. outbox insert rate: one publish of a task to all N devices (N records
     created, N RECORD_STATE frames queued in the same transaction): state
     changes queued per second, and the upstream delivery rate until the
     simulator holds them all; reference: SQLite alone (Python sqlite3, WAL,
     synchronous=FULL like the daemon, one transaction) inserting the same N
     frames and N seq updates.

Env: BENCH_CLOUD_DEVICES (default 10000), BENCH_CLOUD_UPDATES (default 100),
BENCH_CLOUD_SAMPLES (default 300; L above), BENCH_CLOUD_BUDGET (s, default
120). Rounds are paced: a dry run of one round (every device once) is timed
until the daemon stored it, and rounds follow every 1.1 x that time (at
least 50 ms); when U rounds would take longer than the budget, the update
count is scaled down and the scale printed."""

import asyncio
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "it"))

import devsim  # noqa: E402
import benchd  # noqa: E402
import benchtab  # noqa: E402
import otagw_it  # noqa: E402

HOST = "127.0.0.1"
N = int(os.environ.get("BENCH_CLOUD_DEVICES", "10000"))
U = int(os.environ.get("BENCH_CLOUD_UPDATES", "100"))
L = int(os.environ.get("BENCH_CLOUD_SAMPLES", "300"))
BUDGET = float(os.environ.get("BENCH_CLOUD_BUDGET", "120"))
GW_ID = "gw-bench"
TOKEN = "bench-token"
PRODUCT = "bench"
VERSION = "2.0"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# -- the cloud, in a child process ----------------------------------------------------

def cloud_main(conn):
    """Runs a CloudSim; answers requests on conn. Accepted frames are taken
    out of the simulator every tick (it keeps them all otherwise) and
    summed: per type frames and bytes; PROGRESS_BATCH items and the largest
    batch; every RECORD_STATE as (deviceId, to, arrival time, seq)."""
    from cloudsim import CloudSim
    sim = CloudSim(token=TOKEN, gateway_id=GW_ID, ack="every")
    sim.start()
    conn.send(sim.port)
    st = {"frames": {}, "bytes": {}, "items": 0, "max_items": 0, "states": [], "dups": 0,
          "last_arrival": 0.0}

    def drain():
        with sim._lock:                      # the bench owns this simulator
            recs, sim._records = sim._records, []
            st["dups"] += len(sim._dups)
            sim._dups = []
            sim._events = []
        for r in recs:
            t = r["type"]
            st["frames"][t] = st["frames"].get(t, 0) + 1
            st["bytes"][t] = st["bytes"].get(t, 0) + len(r["raw"].encode())
            f = r["frame"]
            if t == "PROGRESS_BATCH":
                st["items"] += len(f["items"])
                st["max_items"] = max(st["max_items"], len(f["items"]))
            elif t == "RECORD_STATE":
                st["states"].append((f["deviceId"], f["to"], r["time"], r["seq"]))
            st["last_arrival"] = max(st["last_arrival"], r["time"])

    try:
        while True:
            if conn.poll(0.1):
                req = conn.recv()
                if req == "quit":
                    break
                drain()
                if req == "stats":
                    out = dict(st, states=len(st["states"]), stored=sim.stored_seq(),
                               wire=sim.wire_bytes(),
                               violations=sim.violations()[:5], connected=sim.connected)
                    conn.send(out)
                elif isinstance(req, tuple) and req[0] == "states":
                    conn.send(st["states"][req[1]:])
            else:
                drain()
    finally:
        sim.close()


class Cloud:
    def __init__(self):
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=cloud_main, args=(child,), daemon=True)
        self.proc.start()
        self.port = self.conn.recv()
        self.url = "ws://%s:%d/otagw" % (HOST, self.port)

    def ask(self, req):
        self.conn.send(req)
        return self.conn.recv()

    def stats(self):
        return self.ask("stats")

    def states(self, since=0):
        return self.ask(("states", since))

    def close(self):
        try:
            self.conn.send("quit")
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# -- the daemon -----------------------------------------------------------------------

class Daemon:
    def __init__(self, binary, workdir, cloud_url, n):
        os.makedirs(workdir, exist_ok=True)
        self.http_port = otagw_it.free_port()
        self.tcp_port = otagw_it.free_port()
        extra = ("\n[tcp]\nbind = %s\nport = %d\ncodec = jsonline\nmax_connections = %d\n"
                 "idle_timeout = 3600\n\n[cloud]\nurl = %s\ngateway_id = %s\ntoken = %s\n"
                 "progress_interval = 1\nstatus_interval = 60\n"
                 % (HOST, self.tcp_port, n + 1000, cloud_url, GW_ID, TOKEN))
        self.proc, self.log, self.config = benchd.spawn(
            binary, workdir, self.http_port, extra, ready=self._ready, timeout=15,
            what=" (or reach the cloud)")

    def _ready(self):
        return (self.req("GET", "/api/health")[0] == 200 and
                otagw_it.port_accepts(self.tcp_port) and self.cloud()["state"] == "online")

    def req(self, method, path, body=None, raw=None, headers=None):
        st, js, _, _ = otagw_it.http_request(self.http_port, method, path, body=body, raw=raw,
                                             headers=headers, timeout=120)
        return st, js

    def ok(self, method, path, body=None, **kw):
        st, js = self.req(method, path, body, **kw)
        if st not in (200, 201):
            raise SystemExit("%s %s -> %d %r" % (method, path, st, js))
        return js

    def cloud(self):
        return self.ok("GET", "/api/cloud")

    def stop(self):
        benchd.stop(self.proc, self.log, 20)


def wait_for(fn, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def all_progress(d, task_id, total, value, prefix="b"):
    """True when every record of the task whose device id starts with prefix
    has progress >= value (total: records in the task)."""
    for page in range((total + 999) // 1000):
        js = d.ok("GET", "/api/tasks/%s/records?size=1000&page=%d" % (task_id, page))
        if any(r["progress"] < value for r in js["items"] if r["deviceId"].startswith(prefix)):
            return False
    return True


# -- devices --------------------------------------------------------------------------

async def connect_all(d, ids):
    devs = [devsim.AsyncDevice(HOST, d.tcp_port, "jsonline", i, product_id=PRODUCT,
                               timeout=120) for i in ids]
    sem = asyncio.Semaphore(200)

    async def hello(x):
        async with sem:
            await x.connect()
            await x.report("1.0")

    await asyncio.gather(*(hello(x) for x in devs))
    return devs


async def pull_all(devs):
    sem = asyncio.Semaphore(500)

    async def one(x):
        async with sem:
            rep = await x.pull()
            if rep.get("success") is not True:
                raise SystemExit("%s: pull %r" % (x.device_id, rep))
            return rep

    reps = await asyncio.gather(*(one(x) for x in devs))
    return reps[0]["firmwareId"]


def progress_line(x, fw_id, p):
    return x.encode(devsim.msg_progress(x.device_id, VERSION, fw_id, p))


async def flood(devs, fw_id, updates, value=None, interval=0.0):
    """updates rounds, one every interval s; round r: every device writes
    progress r*100/updates (or value). Pacing keeps a device's updates apart
    as a real device's are (it does not dump them into its socket at once)."""
    loop = asyncio.get_running_loop()
    t_next = loop.time()
    for r in range(1, updates + 1):
        p = r * 100 // updates if value is None else value
        for x in devs:
            x.writer.write(progress_line(x, fw_id, p))
        await asyncio.gather(*(x.writer.drain() for x in devs))
        t_next += interval
        if t_next > loop.time():
            await asyncio.sleep(t_next - loop.time())
    return updates * len(devs)


async def complete_paced(probes, fw_id, interval, stop_when=None):
    """Completes probes one by one every interval s (t0 just before the
    write); stops early when stop_when() is true. Returns {id: t0}."""
    sent = {}
    for x in probes:
        if stop_when and stop_when():
            break
        t0 = time.time()
        x.writer.write(x.encode(devsim.msg_progress(x.device_id, VERSION, fw_id, 100,
                                                    complete=True, success=True)))
        sent[x.device_id] = t0
        await x.writer.drain()
        await asyncio.sleep(interval)
    return sent


def delays(cloud, sent):
    arrived = {}
    for dev, to, t, _ in cloud.states():
        if to == "success" and dev in sent:
            arrived[dev] = t
    return [arrived[k] - sent[k] for k in sent if k in arrived], len(sent) - len(arrived)


# -- reference encodings ------------------------------------------------------------------

def ws_header(n):
    """Bytes of a masked client WebSocket frame header for n payload bytes."""
    return 2 + 4 + (2 if n >= 126 else 0) + (6 if n >= 65536 else 0)


def per_update_bytes(ids, fw_id, updates, first_seq, t_start):
    """Bytes of one message per update: each update as the CHILD frame a
    gateway without aggregation would send (PROTOCOL.md 5.2: JetLinks'
    UPGRADE_FIRMWARE_PROGRESS of the child, compact JSON, real seq numbers
    and 13-digit ms timestamps). Returns (JSON bytes, bytes on the wire
    with the same permessage-deflate otagw negotiates: raw deflate with
    context takeover, a sync flush per message minus its 4-byte tail, plus
    each frame's header)."""
    total = 0
    wire = 0
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    seq = first_seq
    ts = int(t_start * 1000)
    for r in range(1, updates + 1):
        p = r * 100 // updates
        for dev in ids:
            seq += 1
            inner = {"messageType": "UPGRADE_FIRMWARE_PROGRESS", "deviceId": dev,
                     "timestamp": ts, "version": VERSION, "progress": p, "complete": False,
                     "success": True, "firmwareId": fw_id}
            frame = {"seq": seq, "messageType": "CHILD", "timestamp": ts, "deviceId": GW_ID,
                     "childDeviceId": dev, "childDeviceMessage": inner}
            text = json.dumps(frame, separators=(",", ":")).encode()
            total += len(text)
            n = len(z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH)) - 4
            wire += n + ws_header(n)
    return total, wire


def sqlite_reference(workdir, frames):
    """SQLite alone: the same frames inserted with a seq update each, in one
    transaction, WAL, synchronous=FULL. Returns seconds."""
    path = os.path.join(workdir, "ref.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, "
               "frame TEXT NOT NULL, create_time INTEGER NOT NULL)")
    db.execute("INSERT INTO settings VALUES ('outbox_seq', '0')")
    t0 = time.monotonic()
    db.execute("BEGIN")
    for f in frames:
        seq = db.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = "
                         "'outbox_seq' RETURNING CAST(value AS INTEGER)").fetchone()[0]
        db.execute("INSERT INTO outbox VALUES (?, 'RECORD_STATE', ?, ?)",
                   (seq, f, int(time.time() * 1000)))
    db.execute("COMMIT")
    took = time.monotonic() - t0
    db.close()
    return took


# -- the run ----------------------------------------------------------------------------

def run(binary, tmp):
    res = {"n": N, "updates": U}
    cloud = Cloud()
    d = None
    loop = asyncio.new_event_loop()
    try:
        d = Daemon(binary, os.path.join(tmp, "gw"), cloud.url, N + 2 * L)
        ids = ["b%05d" % i for i in range(N)]
        pids = ["q%05d" % i for i in range(2 * L)]         # latency probes
        image = os.urandom(4096)
        fw = d.ok("POST", "/api/firmware", {"productId": PRODUCT, "name": "bench",
                                            "version": VERSION, "size": len(image),
                                            "sign": hashlib.sha256(image).hexdigest(),
                                            "signMethod": "sha256"})
        d.ok("PUT", "/api/firmware/%s/image" % fw["id"], raw=image,
             headers={"Content-Type": "application/octet-stream"})
        t0 = time.monotonic()
        devs = loop.run_until_complete(connect_all(d, ids + pids))
        wait_for(lambda: d.ok("GET", "/api/devices?size=1")["total"] == N + 2 * L, 120,
                 "%d devices" % (N + 2 * L))
        res["connect_s"] = time.monotonic() - t0
        fleet, probes = devs[:N], devs[N:]
        wait_for(lambda: d.cloud()["outbox"] == 0, 120, "the CHILD reports to drain")

        # 3. outbox insert rate: one publish, N + 2L RECORD_STATE frames
        task = d.ok("POST", "/api/firmware/%s/tasks" % fw["id"],
                    {"name": "bench", "mode": "pull"})
        before = cloud.stats()
        seq0 = d.cloud()["lastSeq"]
        t0 = time.monotonic()
        pub = d.ok("POST", "/api/tasks/%s/publish" % task["id"], {"all": True})
        res["publish_s"] = time.monotonic() - t0
        total = N + 2 * L
        if pub["added"] != total:
            raise SystemExit("publish added %r of %d" % (pub["added"], total))
        last, stable_since = d.cloud()["lastSeq"], time.monotonic()
        while time.monotonic() - stable_since < 0.5:
            time.sleep(0.05)
            now = d.cloud()["lastSeq"]
            if now != last:
                last, stable_since = now, time.monotonic()
        res["queued"] = last - seq0
        wait_for(lambda: cloud.stats()["states"] >= before["states"] + total, 300,
                 "the created records at the cloud", interval=0.05)
        res["deliver_s"] = time.monotonic() - t0
        st = cloud.stats()
        res["ref_insert_s"] = sqlite_reference(tmp, ["x" * (st["bytes"]["RECORD_STATE"] //
                                                           max(1, st["frames"]["RECORD_STATE"]))]
                                               * total)

        # every record to processing
        t0 = time.monotonic()
        fw_id = loop.run_until_complete(pull_all(devs))
        res["pull_s"] = time.monotonic() - t0
        wait_for(lambda: cloud.stats()["states"] >= before["states"] + 2 * total, 300,
                 "the processing states at the cloud")
        wait_for(lambda: (lambda c: c["outbox"] == 0 and c["pendingProgress"] == 0)(d.cloud()),
                 120, "the outbox to drain")

        # 1 + 2. the flood, with L probes completed meanwhile
        # a dry run: one round of progress 1, timed until the daemon stored it
        updates = U
        t0 = time.monotonic()
        loop.run_until_complete(flood(fleet, fw_id, 1, value=1))
        wait_for(lambda: all_progress(d, task["id"], total, 1), 600, "the dry run",
                 interval=0.05)
        one_round = time.monotonic() - t0
        interval = max(0.05, one_round * 1.1)
        if interval * U > BUDGET:
            updates = max(2, int(BUDGET / interval))
        res["updates"] = updates
        res["round_s"] = one_round
        res["interval"] = interval
        wait_for(lambda: (lambda c: c["outbox"] == 0 and c["pendingProgress"] == 0)(d.cloud()),
                 120, "the dry run's progress to drain")
        base = cloud.stats()
        seq0 = d.cloud()["lastSeq"]
        cpu0, t_start = cpu_seconds(d.proc.pid), time.time()
        done = {"flag": False}

        async def flood_and_probe():
            async def fl():
                await flood(fleet, fw_id, updates, interval=interval)
            fl_task = asyncio.ensure_future(fl())
            sent = await complete_paced(probes[:L], fw_id, 0.1,
                                        stop_when=lambda: done["flag"])
            await fl_task
            return sent

        # the writes finish long before the daemon has read them all: the
        # flood ends when every record shows the last round's progress
        waiter = loop.run_in_executor(None, lambda: (wait_for(
            lambda: all_progress(d, task["id"], total, 100), 1800, "the flood to be processed",
            interval=0.5), done.__setitem__("flag", True)))
        sent_load = loop.run_until_complete(flood_and_probe())
        loop.run_until_complete(waiter)
        t_end = time.time()
        res["flood_s"] = t_end - t_start
        res["daemon_cpu"] = (cpu_seconds(d.proc.pid) - cpu0) / res["flood_s"]
        wait_for(lambda: (lambda c: c["outbox"] == 0 and c["pendingProgress"] == 0)(d.cloud()),
                 300, "the progress to be flushed and acked", interval=0.2)
        after = cloud.stats()
        res["pb_frames"] = after["frames"].get("PROGRESS_BATCH", 0) - \
            base["frames"].get("PROGRESS_BATCH", 0)
        res["pb_bytes"] = after["bytes"].get("PROGRESS_BATCH", 0) - \
            base["bytes"].get("PROGRESS_BATCH", 0)
        res["pb_items"] = after["items"] - base["items"]
        res["max_items"] = after["max_items"]
        res["up_frames"] = sum(after["frames"].values()) - sum(base["frames"].values())
        res["up_bytes"] = sum(after["bytes"].values()) - sum(base["bytes"].values())
        res["updates_made"] = updates * N
        res["ref_bytes"], res["ref_wire"] = per_update_bytes(ids, fw_id, updates, seq0, t_start)
        res["up_wire"] = after["wire"] - base["wire"]
        res["lat_load"], res["lat_load_lost"] = delays(cloud, sent_load)

        # 2. idle: the other L probes, one every 50 ms
        sent_idle = loop.run_until_complete(complete_paced(probes[L:], fw_id, 0.05))
        time.sleep(2)
        res["lat_idle"], res["lat_idle_lost"] = delays(cloud, sent_idle)
        res["violations"] = cloud.stats()["violations"]
        res["dups"] = cloud.stats()["dups"]
        for x in devs:
            x.close()
    finally:
        loop.close()
        if d:
            d.stop()
        cloud.close()
    return res


def main():
    if len(sys.argv) != 2:
        print("usage: cloud_bench.py BUILD_DIR", file=sys.stderr)
        return 2
    binary = os.path.abspath(os.path.join(sys.argv[1], "otagw"))
    if not os.access(binary, os.X_OK):
        print("no otagw binary at %s (run make)" % binary, file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N + 2 * L + 1024         # client sockets; the daemon has its own limit
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    if min(want, hard) < want:
        print("warning: RLIMIT_NOFILE %d < %d needed" % (hard, want), file=sys.stderr)
    tmp = tempfile.mkdtemp(prefix="otagw-cloud-bench-")
    try:
        r = run(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("%-52s %14s %14s %8s" % ("benchmark", "otagw", "reference", "ratio"))
    scale = "%d devices x %d updates" % (r["n"], r["updates"])
    scale += ", a round every %.2f s" % r["interval"]
    if r["updates"] != U:
        scale += " (scaled down from %d updates: one round of %d took %.2f s, budget %.0f s)" % (
            U, r["n"], r["round_s"], BUDGET)
    print("%-52s %12d fr %12d fr %8.0fx  (%s = %d updates in %.1f s, %.0f/s, daemon CPU "
          "%.0f %%; reference: one frame per update; %d items, max %d per frame)"
          % ("cloud progress frames upstream (PROGRESS_BATCH)", r["pb_frames"],
             r["updates_made"], r["updates_made"] / max(1, r["pb_frames"]), scale,
             r["updates_made"], r["flood_s"], r["updates_made"] / r["flood_s"],
             100 * r["daemon_cpu"], r["pb_items"], r["max_items"]))
    benchtab.row("cloud: progress frames upstream, %d devices" % r["n"], r["pb_frames"],
                 "frames", r["updates_made"], "one frame per update",
                 ratio=r["updates_made"] / max(1, r["pb_frames"]),
                 target=("ratio", ">=", 20), note="ratio = times fewer; " + scale)
    print("%-52s %10.1f MiB %10.1f MiB %8.1fx  (target >= 20x fewer; reference: the "
          "canonical per-update CHILD frame, %.0f B avg, per update)"
          % ("cloud progress bytes upstream", r["pb_bytes"] / 1048576.0,
             r["ref_bytes"] / 1048576.0, r["ref_bytes"] / max(1, r["pb_bytes"]),
             r["ref_bytes"] / max(1, r["updates_made"])))
    benchtab.row("cloud: progress JSON bytes upstream", r["pb_bytes"] / 1048576.0, "MiB",
                 r["ref_bytes"] / 1048576.0, "one CHILD frame per update",
                 ratio=r["ref_bytes"] / max(1, r["pb_bytes"]),
                 note="ratio = times fewer; before compression")
    print("%-52s %10.1f MiB %10.1f MiB %8.1fx  (target >= 20x fewer; every byte the cloud's "
          "sockets received during the flood, all frame types, permessage-deflate; reference: "
          "one CHILD frame per update uncompressed; with the same deflate it would be %.1f MiB, "
          "%.1fx)" % ("cloud bytes upstream on the wire", r["up_wire"] / 1048576.0,
                      r["ref_bytes"] / 1048576.0, r["ref_bytes"] / max(1, r["up_wire"]),
                      r["ref_wire"] / 1048576.0, r["ref_wire"] / max(1, r["up_wire"])))
    benchtab.row("cloud: bytes upstream on the wire (deflate)", r["up_wire"] / 1048576.0, "MiB",
                 r["ref_bytes"] / 1048576.0, "one CHILD frame per update",
                 ratio=r["ref_bytes"] / max(1, r["up_wire"]), target=("ratio", ">=", 20),
                 note="ratio = times fewer; all frames; vs the per-update frames under the "
                      "same deflate (%.1f MiB): %.1fx" % (r["ref_wire"] / 1048576.0,
                                                         r["ref_wire"] / max(1, r["up_wire"])))
    print("%-52s %12d fr %12d fr %8.0fx  (every upstream frame during the flood, %.1f MiB, "
          "incl. the probes' RECORD_STATE and GATEWAY_STATUS)"
          % ("cloud frames upstream, all types", r["up_frames"], r["updates_made"],
             r["updates_made"] / max(1, r["up_frames"]), r["up_bytes"] / 1048576.0))
    for label, key in (("under the progress flood", "lat_load"), ("idle gateway", "lat_idle")):
        xs = r[key]
        if not xs:
            print("%-52s %14s %14s %8s  (no samples)" % ("state change -> RECORD_STATE, " +
                                                        label, "-", "-", "-"))
            benchtab.row("cloud: state change -> cloud p99, " + label, None, "ms",
                         target=("figure", "<", 1000), note="no samples")
            continue
        p50, p99 = pct(xs, 0.5), pct(xs, 0.99)
        print("%-52s %9.1f ms p50 %7.0f ms p99 %8.2f  (p99 vs target 1000 ms; %d changes, "
              "max %.1f ms, %d lost)" % ("state change -> RECORD_STATE, " + label,
                                         1000 * p50, 1000 * p99, p99 / 1.0, len(xs),
                                         1000 * max(xs), r[key + "_lost"]))
        benchtab.row("cloud: state change -> cloud p99, " + label, 1000 * p99, "ms",
                     note="p50 %.1f ms, %d changes, %d lost" % (1000 * p50, len(xs),
                                                                r[key + "_lost"]),
                     target=("figure", "<", 1000))
    rate = r["queued"] / r["publish_s"]
    ref = r["queued"] / r["ref_insert_s"]
    print("%-52s %12.0f/s %12.0f/s %8.2f  (publish to %d devices: %d RECORD_STATE queued in "
          "%.2f s; reference: SQLite alone, same frames, one transaction)"
          % ("outbox insert rate (state changes queued)", rate, ref, rate / ref,
             r["queued"], r["queued"], r["publish_s"]))
    benchtab.row("cloud: outbox insert rate (publish, %d devices)" % r["queued"], rate, "/s",
                 ref, "SQLite alone, same frames, one transaction")
    print("%-52s %12.0f/s %14s %8s  (publish -> all %d at the simulator, acked one by one)"
          % ("upstream delivery rate (RECORD_STATE frames)", r["queued"] / r["deliver_s"],
             "-", "-", r["queued"]))
    if r["violations"]:
        print("WARNING: cloudsim saw protocol violations: %r" % r["violations"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
