#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""soak - N simulated TCP devices cycling through upgrades against the real
daemon for a given time, on loopback, while the daemon's resident memory,
open file descriptors and database size are sampled; after a warm-up they
must stay flat. Not part of `make test` (it runs for minutes):

    /usr/bin/python3 tests/soak/soak.py --devices 1000 --minutes 10 --bin build/otagw

The devices (devsim.AsyncDevice, jsonline, all in this one asyncio process)
connect once, report v0 and then loop: wait for an UPGRADE_FIRMWARE push
(answered with success) or, after 5-15 s without one, pull; with a firmware
to take they fetch the image by chunks (sha256 checked), report progress
and complete it, with success (then report the new version) or, for
--fail-share of them, failure; --stall-share go silent instead and leave
the record in processing for the daemon's timeout to fail. After an
upgrade a few (--churn) disconnect and come back 0.5-2 s later.

The waves: every time the current task has (almost) every record final, or
after its timeout plus 15 s, a new firmware version is created (a 32 KiB
image, uploaded), a task for it (pull and push by turns, timeoutSeconds
--task-timeout) published to all, and the firmware of the wave three back
is canceled and deleted (its records go; the history stays): so the live
records stay bounded and only the history grows.

Every --interval s: VmRSS of /proc/PID/status, the entries of /proc/PID/fd,
otagw.db + otagw.db-wal, the history rows, the devices connected (as the
simulator sees them), the upgrades completed, the time GET /api/health
takes and otagw_loop_lag_max_seconds of /metrics. After the warm-up (the
first --warmup of the time, default 20 %), every sample must keep:
  RSS      <= RSS at the end of the warm-up x 1.10 + 2 MiB: past the warm-up
           the connections, the live records (bounded by the waves) and
           SQLite's page cache (bounded) are all there, so growth beyond
           allocator noise is a leak;
  fds      within +-5 of (fds before any device connected) + (devices
           connected): one socket per device and nothing else that grows;
           the 5 covers connections in the middle of the churn. In a burst
           the daemon can be behind (one commit and WAL sync per loop pass;
           before group commit, one per state change: seconds behind) and
           still hold sockets the devices already closed: fds are compared
           only in samples where a health
           round trip took <= 0.1 s (the sampler tries three times), and at
           least a quarter of the samples must be such quiet ones;
  database growth (db + WAL, from the end of the warm-up) <= 512 bytes per
           history row added + 8 MiB: live records are bounded by the waves,
           so only the history may grow (a row costs ~250 bytes with its
           two indexes; 512 leaves room for b-tree page splits) and the WAL
           is checkpointed at ~4 MiB (SQLite's 1000-page default; 8 MiB
           allows it to overshoot while the checkpoint waits for readers).
At the end no record may still be processing past its task's timeout (plus
3 s: the daemon checks every second), every minute after the warm-up must
have completed upgrades, once every device has closed the daemon must be
back to the fds it had before the first one came (+-2: any leaked socket
of the ~1,000 reconnects would show), and it must stop cleanly on SIGTERM.
Prints one table and exits 1 if any bound was broken (2 when the run could
not be set up).

Standard library only (plus the tests' own modules)."""

import argparse
import asyncio
import collections
import hashlib
import math
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path[:0] = [TESTS, os.path.join(TESTS, "it")]

import cachesrv  # noqa: E402
import crashcheck  # noqa: E402
import devsim  # noqa: E402
import otagw_it  # noqa: E402
from otagw_it import HOST  # noqa: E402
from test_tcp import tcp_section  # noqa: E402
from test_tcp_scale import raise_nofile  # noqa: E402

PRODUCT = "soak"
IMAGE_SIZE = 32 * 1024
CHUNK = 4096
RSS_FACTOR, RSS_SLACK = 1.10, 2 << 20
FD_SLACK = 5
FD_END_SLACK = 2          # fds once every device is gone, against before the first came
QUIET = 0.1               # s: a health round trip this fast means no backlog of commits
QUIET_SHARE = 0.25        # of the samples after the warm-up must be quiet (fds checked)
DB_PER_HISTORY_ROW, DB_SLACK = 512, 8 << 20
OVERDUE_SLACK_MS = 3000
API_TIMEOUT = 30.0        # s: one REST call of the wave driver
MiB = 1 << 20


def now_ms():
    return int(time.time() * 1000)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def db_bytes(data_dir):
    n = 0
    for suffix in ("", "-wal"):
        try:
            n += os.path.getsize(crashcheck.db_path(data_dir) + suffix)
        except FileNotFoundError:
            pass
    return n


class Sim:
    """The devices' shared state and counters (one asyncio loop: no locks)."""

    def __init__(self, args, g, rng):
        self.args, self.g, self.rng = args, g, rng
        self.stop = False
        self.connected = 0
        self.completed = []            # monotonic time of each success sent
        self.failed = 0
        self.stalled = 0
        self.pushes = 0
        self.pulls = 0
        self.waves = 0
        self.api_max = (0.0, "")       # slowest REST call: (s, what)
        self.errors = collections.Counter()
        self.problems = []
        self.connect_sem = asyncio.Semaphore(100)
        self.churn_sem = asyncio.Semaphore(2)

    def problem(self, text):
        if len(self.problems) < 20:
            self.problems.append(text)


async def device_main(sim, i):
    rng = random.Random(sim.rng.random())
    d = devsim.AsyncDevice(HOST, sim.g.tcp_port, "jsonline", "s%04d" % i, product_id=PRODUCT,
                           timeout=30)
    version = "v0"
    while not sim.stop:
        try:
            async with sim.connect_sem:
                await d.connect()
        except (OSError, asyncio.TimeoutError) as e:
            sim.errors["connect: %s" % type(e).__name__] += 1
            await asyncio.sleep(1 + rng.random())
            continue
        sim.connected += 1
        churn = False
        try:
            await d.report(version)
            version, churn = await device_session(sim, d, rng, version)
        except (devsim.DevsimError, OSError, TimeoutError, asyncio.TimeoutError) as e:
            sim.errors["%s" % type(e).__name__] += 1
        finally:
            sim.connected -= 1
            d.close()
        if churn:
            async with sim.churn_sem:
                await asyncio.sleep(0.5 + 1.5 * rng.random())
        elif not sim.stop:
            await asyncio.sleep(1)


async def device_session(sim, d, rng, version):
    """One connection's life; returns (version, True to churn) when it
    chooses to disconnect."""
    a = sim.args
    while not sim.stop:
        try:
            try:
                job = await d.wait_for("UPGRADE_FIRMWARE", timeout=rng.uniform(5, 15))
                sim.pushes += 1
                await d.send(devsim.msg_upgrade_reply(d.device_id, job.get("messageId"), True))
            except TimeoutError:
                sim.pulls += 1
                job = await d.pull()
                if job.get("success") is not True:
                    continue
            if rng.random() < a.stall_share:
                sim.stalled += 1               # silent: the daemon's timeout fails it
                await asyncio.sleep(a.task_timeout + 5)
                d.inbox.clear()
                continue
            version = await upgrade(sim, d, rng, job, version)
        except devsim.GatewayError as e:
            # the record was canceled or superseded meanwhile (a wave retired)
            sim.errors["ERROR %s" % e.msg.get("code")] += 1
            d.inbox.clear()
            continue
        if rng.random() < a.churn:
            return version, True
    return version, False


async def upgrade(sim, d, rng, job, version):
    fw, size, target = job.get("firmwareId"), int(job.get("size") or 0), job.get("version")
    img = await d.fetch_image(fw, size, chunk=CHUNK)
    if hashlib.sha256(img).hexdigest() != (job.get("sign") or "").lower():
        sim.problem("%s: image of %s does not match its sign" % (d.device_id, fw))
        await d.progress(target, fw, 100, complete=True, success=False)
        return version
    await d.progress(target, fw, 50)
    if rng.random() < sim.args.fail_share:
        await d.progress(target, fw, 60, complete=True, success=False)
        sim.failed += 1
        return version
    await d.progress(target, fw, 100, complete=True, success=True)
    await d.report(target)
    sim.completed.append(time.monotonic())
    return target


# -- the waves of upgrades ---------------------------------------------------------------

def api(sim, method, path, body=None, expect=200):
    """One REST call, timed (the slowest is reported); any other status
    than expect stops the soak."""
    t = time.monotonic()
    st, js, _, raw = otagw_it.http_request(sim.g.port, method, path, body=body,
                                           timeout=API_TIMEOUT)
    took = time.monotonic() - t
    if took > sim.api_max[0]:
        sim.api_max = (took, "%s %s" % (method, path))
    if st != expect:
        raise AssertionError("%s %s -> %d %r (expected %d)" % (method, path, st, raw[:300],
                                                               expect))
    return js


def new_wave(sim, k, seed, mode, timeout):
    data = cachesrv.rand_bytes(seed * 1009 + k, IMAGE_SIZE)
    fw = api(sim, "POST", "/api/firmware", {
        "productId": PRODUCT, "name": "soak %d" % k, "version": "v%d" % k, "versionOrder": k,
        "size": len(data), "sign": hashlib.sha256(data).hexdigest(),
        "signMethod": "sha256"}, expect=201)["id"]
    st, js, raw = cachesrv.put_bytes(sim.g.port, fw, data, timeout=API_TIMEOUT)
    if st != 200:
        raise AssertionError("upload of wave %d: %s %r" % (k, st, raw[:200]))
    task = api(sim, "POST", "/api/firmware/%s/tasks" % fw, {
        "name": "wave %d" % k, "mode": mode, "timeoutSeconds": timeout}, expect=201)["id"]
    api(sim, "POST", "/api/tasks/%s/publish" % task, {"all": True})
    return fw, task


def retire(sim, fw, task):
    api(sim, "POST", "/api/tasks/%s/cancel" % task)
    api(sim, "DELETE", "/api/firmware/%s" % fw, expect=204)


async def waves(sim, seed):
    a = sim.args
    loop = asyncio.get_running_loop()
    live = []
    k = 0
    while not sim.stop:
        k += 1
        sim.waves = k
        fw, task = await loop.run_in_executor(None, new_wave, sim, k, seed,
                                              "pull" if k % 2 else "push", a.task_timeout)
        live.append((fw, task))
        if len(live) > 3:
            await loop.run_in_executor(None, retire, sim, *live.pop(0))
        t0 = time.monotonic()
        while not sim.stop and time.monotonic() - t0 < a.task_timeout + 15:
            await asyncio.sleep(2)
            c = (await loop.run_in_executor(None, api, sim, "GET", "/api/tasks/" + task))["counts"]
            if c["waiting"] + c["processing"] <= c["total"] * 0.03:
                break


# -- sampling ---------------------------------------------------------------------------

Sample = collections.namedtuple("Sample", "t rss fds db hist connected completed lag health"
                                           " quiet")


def loop_lag_max(g):
    """otagw_loop_lag_max_seconds of GET /metrics: the longest the event
    loop was late, since start (None when it does not answer)."""
    try:
        st, _, _, raw = otagw_it.http_request(g.port, "GET", "/metrics", timeout=API_TIMEOUT)
    except OSError:
        return None
    for ln in raw.decode(errors="replace").splitlines():
        if ln.startswith("otagw_loop_lag_max_seconds "):
            return float(ln.split()[1])
    return None


def history_count(data_dir):
    return crashcheck._query(crashcheck.db_path(data_dir),
                             "SELECT count(*) FROM record_history")[0][0]


def health_latency(g):
    """Seconds GET /api/health takes. The daemon serves ready sockets in
    turn, one SQLite commit (an fsync) per state change, so by the time it
    answers it has also read the EOFs of connections closed before."""
    t = time.monotonic()
    otagw_it.http_request(g.port, "GET", "/api/health", timeout=API_TIMEOUT)
    return time.monotonic() - t


async def sampler(sim, samples, t0):
    """One sample every --interval s. fds and the devices connected are
    read together right after a health round trip, so closes the daemon has
    not got to yet (it may be seconds behind in a burst of commits) do not
    count as leaks."""
    g = sim.g
    loop = asyncio.get_running_loop()
    while not sim.stop:
        for _ in range(3):                     # up to three tries for a quiet moment
            health = await loop.run_in_executor(None, health_latency, g)
            if health <= QUIET:
                break
            await asyncio.sleep(0.5)
        conn_before = sim.connected
        fds = fd_count(g.proc.pid)
        connected = (conn_before + sim.connected) / 2.0
        hist = await loop.run_in_executor(None, history_count, g.data_dir)
        s = Sample(time.monotonic() - t0, cachesrv.rss(g.proc.pid), fds, db_bytes(g.data_dir),
                   hist, connected, len(sim.completed),
                   await loop.run_in_executor(None, loop_lag_max, g), health, health <= QUIET)
        samples.append(s)
        await asyncio.sleep(sim.args.interval)


async def run(sim, seed, samples):
    """Connects the devices, runs the waves and the sampler for the time
    given; returns (start of the measured time, overdue records). Every
    task is ended before it returns or raises."""
    a, g = sim.args, sim.g
    devs = [asyncio.ensure_future(device_main(sim, i)) for i in range(a.devices)]
    jobs = []
    try:
        t0 = time.monotonic()
        while sim.connected < a.devices:
            if time.monotonic() > t0 + 120:
                raise AssertionError("only %d of %d devices connected in 120 s"
                                     % (sim.connected, a.devices))
            await asyncio.sleep(0.2)
        print("%d devices connected in %.1f s" % (a.devices, time.monotonic() - t0), flush=True)
        t0 = sim.t0 = time.monotonic()
        jobs = [asyncio.ensure_future(waves(sim, seed)),
                asyncio.ensure_future(sampler(sim, samples, t0))]
        end = t0 + a.minutes * 60
        while time.monotonic() < end:
            await asyncio.sleep(min(10, end - time.monotonic()))
            s = samples[-1] if samples else None
            if s:
                print("  %5.0f s  rss %6.1f MiB  fds %5d  db %6.1f MiB  history %7d  connected"
                      " %5d  upgrades %6d  health %.2f s" % (
                          s.t, s.rss / MiB, s.fds, s.db / MiB, s.hist, s.connected, s.completed,
                          s.health), flush=True)
            for j in jobs:
                if j.done() and j.exception():
                    raise j.exception()
        sim.stop = True
        overdue = await asyncio.get_running_loop().run_in_executor(
            None, crashcheck.overdue_processing, crashcheck.db_path(g.data_dir), now_ms(),
            OVERDUE_SLACK_MS)
        return t0, overdue
    finally:
        sim.stop = True
        for j in jobs + devs:
            j.cancel()
        await asyncio.gather(*jobs, *devs, return_exceptions=True)


# -- the verdict --------------------------------------------------------------------------

def fds_after_devices(g, fds0, timeout=60.0):
    """The daemon's fd count once it has taken every device's close: polled
    until it is back within FD_END_SLACK of fds0 (or timeout s passed)."""
    deadline = time.monotonic() + timeout
    n = fd_count(g.proc.pid)
    while abs(n - fds0) > FD_END_SLACK and time.monotonic() < deadline:
        time.sleep(0.5)
        n = fd_count(g.proc.pid)
    return n


def judge(a, samples, fds0, overdue, sim):
    """The table and the list of broken bounds."""
    bad = []
    if len(samples) < 5:
        return ["only %d samples" % len(samples)], []
    warm = a.minutes * 60 * a.warmup
    after = [s for s in samples if s.t >= warm]
    if not after:
        return ["no sample after the warm-up"], []
    base = after[0]
    rss_bound = base.rss * RSS_FACTOR + RSS_SLACK
    for s in after:
        if s.rss > rss_bound:
            bad.append("RSS %.1f MiB at %.0f s > %.1f MiB (warm-up end %.1f MiB x %.2f + 2 MiB)"
                       % (s.rss / MiB, s.t, rss_bound / MiB, base.rss / MiB, RSS_FACTOR))
        want = fds0 + s.connected
        if s.quiet and abs(s.fds - want) > FD_SLACK:
            bad.append("%d fds at %.0f s, expected %d +- %d (%d before devices + %.0f connected)"
                       % (s.fds, s.t, want, FD_SLACK, fds0, s.connected))
        allowed = (s.hist - base.hist) * DB_PER_HISTORY_ROW + DB_SLACK
        if s.db - base.db > allowed:
            bad.append("database grew %.1f MiB by %.0f s with %d history rows added; allowed %.1f"
                       " MiB" % ((s.db - base.db) / MiB, s.t, s.hist - base.hist, allowed / MiB))
    quiet = sum(1 for s in after if s.quiet)
    if quiet < QUIET_SHARE * len(after):
        bad.append("only %d of %d samples found the daemon quiet (health <= %.1f s): fds "
                   "hardly checked" % (quiet, len(after), QUIET))
    bad += overdue
    minutes = collections.Counter(int(s // 60) for s in
                                  (t - sim.t0 for t in sim.completed) if s >= 0)
    per_min = [minutes.get(m, 0) for m in range(max(1, math.ceil(a.minutes)))]
    for m in range(int(a.minutes)):                 # whole minutes only
        if m * 60 >= warm and per_min[m] == 0:
            bad.append("no upgrade completed in minute %d" % (m + 1))
    rows = []
    for name, f, unit in (("RSS (MiB)", lambda s: s.rss / MiB, "%.1f"),
                          ("open fds", lambda s: s.fds, "%d"),
                          ("fds - connected", lambda s: s.fds - s.connected, "%.0f"),
                          ("db + wal (MiB)", lambda s: s.db / MiB, "%.2f"),
                          ("history rows", lambda s: s.hist, "%d"),
                          ("connected", lambda s: s.connected, "%.0f"),
                          ("health (s)", lambda s: s.health, "%.3f"),
                          ("loop lag max (s)", lambda s: s.lag or 0, "%.3f")):
        vals = [f(s) for s in after]
        rows.append((name, len(vals), unit % min(vals), unit % max(vals), unit % vals[-1],
                     unit % f(base)))
    return bad, (rows, per_min, base, after)


def report(a, rows, per_min, base, after, sim, fds0, took, bad):
    print("\nsoak: %d devices, %.1f min, %d waves, warm-up %.0f s; samples every %.0f s (%d after"
          " the warm-up)" % (a.devices, took / 60, sim.waves,
                             a.minutes * 60 * a.warmup, a.interval, len(after)))
    print("%-18s %8s %10s %10s %10s %12s" % ("metric", "samples", "min", "max", "last",
                                             "warm-up end"))
    for r in rows:
        print("%-18s %8d %10s %10s %10s %12s" % r)
    growth = after[-1].db - base.db
    rows_added = after[-1].hist - base.hist
    print("database growth after the warm-up: %.2f MiB for %d history rows (%.0f bytes/row; "
          "bound %d bytes/row + 8 MiB)" % (growth / MiB, rows_added,
                                           growth / rows_added if rows_added else 0,
                                           DB_PER_HISTORY_ROW))
    print("fds before any device: %d; RSS bound %.1f MiB; slowest REST call %.2f s (%s)" % (
        fds0, (base.rss * RSS_FACTOR + RSS_SLACK) / MiB, sim.api_max[0], sim.api_max[1]))
    print("upgrades completed per minute: %s" % " ".join(str(n) for n in per_min))
    print("upgrades: %d completed, %d failed by the device, %d stalled (left to the timeout); "
          "%d pushes, %d pulls; device errors %s" % (
              len(sim.completed), sim.failed, sim.stalled, sim.pushes, sim.pulls,
              dict(sim.errors) or "none"))
    if bad:
        print("\nFAILED: %d bound(s) broken:" % len(bad))
        for b in bad[:40]:
            print("  " + b)
    else:
        print("\nOK: every bound held")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--bin", default=os.path.join(os.path.dirname(TESTS), "build", "otagw"))
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=0.2, help="share of the time left out")
    p.add_argument("--task-timeout", type=int, default=15, help="timeoutSeconds of each task")
    p.add_argument("--fail-share", type=float, default=0.1)
    p.add_argument("--stall-share", type=float, default=0.02)
    p.add_argument("--churn", type=float, default=0.03,
                   help="share of upgrades after which the device reconnects")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--log-level", default="warn", help="the daemon's [gateway] log_level")
    a = p.parse_args(argv)
    if a.devices < 1 or a.minutes <= 0 or not 0 <= a.warmup < 1 or a.interval <= 0:
        p.error("--devices, --minutes, --interval must be positive and --warmup in [0, 1)")
    binary = os.path.abspath(a.bin)
    if not os.access(binary, os.X_OK):
        p.error("no executable at %s (run make)" % binary)
    os.environ["OTAGW_BIN"] = binary
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 30)
    print("soak: seed %d, %s" % (seed, binary), flush=True)
    limit = raise_nofile(a.devices + 1024)
    if limit < a.devices + 100:
        print("RLIMIT_NOFILE %d is too low for %d devices" % (limit, a.devices))
        return 2
    work = tempfile.mkdtemp(prefix="otagw-soak-")
    tcp_port = otagw_it.free_port()
    g = otagw_it.Gateway(work, log_level=a.log_level, config_extra=tcp_section(
        tcp_port, "jsonline", idle_timeout=3600, max_connections=a.devices + 64))
    g.tcp_port = tcp_port
    code = 2
    try:
        g.start()
        fds0 = fd_count(g.proc.pid)
        loop = asyncio.new_event_loop()
        sim = Sim(a, g, random.Random(seed))
        samples = []
        t_start = time.monotonic()
        t0, overdue = loop.run_until_complete(run(sim, seed, samples))
        took = time.monotonic() - t0
        loop.run_until_complete(asyncio.sleep(0.5))      # the transports' closes
        loop.close()
        fds_end = fds_after_devices(g, fds0)
        rc, secs = g.stop(timeout=15)
        bad, extra = judge(a, samples, fds0, overdue, sim)
        if abs(fds_end - fds0) > FD_END_SLACK:
            bad.append("%d fds once every device had gone, %d before the first came (+-%d)"
                       % (fds_end, fds0, FD_END_SLACK))
        print("fds once every device had gone: %d (before the first: %d)" % (fds_end, fds0))
        bad += sim.problems
        if rc != 0:
            bad.append("the daemon exited %s on SIGTERM" % rc)
        if extra:
            report(a, *extra, sim, fds0, took, bad)
        else:
            print("FAILED: %s" % bad)
        print("total %.1f min (connects included); data in %s" % (
            (time.monotonic() - t_start) / 60, work if a.keep else "(removed)"))
        code = 1 if bad else 0
    except (AssertionError, OSError) as e:
        traceback.print_exc()
        print("soak could not run: %s\n%s" % (e, g.stderr(tail=30)))
    finally:
        if g.running():
            g.proc.kill()
            g.proc.wait(10)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
