# SPDX-License-Identifier: MIT
"""1,000 simultaneous TCP devices (asyncio, one process) each doing
report -> pull -> fetch (an 8 KiB image, 2 chunks) -> progress 50 ->
progress 100 complete, for a pull task
published to all of them; every record must end success, and the daemon's
resident memory must stay bounded.

RSS bound: 64 MiB for the plain build. A sanitizer build (OTAGW_BIN ending
in build/san/otagw, or libasan mapped into the daemon) keeps shadow memory
and a quarantine of freed blocks, so its RSS says little about ours: the
bound there is 512 MiB, only a guard against unbounded growth. The file
descriptor limit is raised in the test process before the daemon starts
(the daemon inherits it)."""

import asyncio
import hashlib
import resource
import time

import pytest

import otagw_it
from otagw_it import HOST
from test_tcp import CODECS, make_fw, sessions, tcpgw, wait_until  # noqa: F401

import devsim  # noqa: E402

N = 1000
TOTAL_TIMEOUT = 120.0          # s: the whole 1,000-device scenario
RSS_LIMIT_PLAIN = 64 * 1024 * 1024
RSS_LIMIT_SAN = 512 * 1024 * 1024


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def is_sanitized(pid):
    src = otagw_it.BIN_SOURCE or otagw_it.otagw_bin()
    if src.rstrip("/").endswith("build/san/otagw"):
        return True
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


async def _scenario(g, fw, codec, stats):
    loop = asyncio.get_running_loop()
    devs = [devsim.AsyncDevice(HOST, g.tcp_port, codec, "s%04d" % i, product_id="scale",
                               timeout=60) for i in range(N)]
    sem = asyncio.Semaphore(200)           # connects in flight (listen backlog)

    async def hello(d):
        async with sem:
            await d.connect()
        await d.report("1.0.0")

    t0 = loop.time()
    res = await asyncio.gather(*(hello(d) for d in devs), return_exceptions=True)
    bad = [(d.device_id, r) for d, r in zip(devs, res) if isinstance(r, BaseException)]
    assert not bad, "%d of %d devices failed to connect/report, e.g. %r" % (len(bad), N, bad[:5])
    stats["connect_s"] = loop.time() - t0

    # every device is known and online before the task is published to all
    await loop.run_in_executor(None, lambda: wait_until(
        lambda: sessions(g) == N, "%d sessions" % N, timeout=30))
    stats["rss_connected"] = rss_bytes(g.proc.pid)
    task = g.ok("POST", "/api/firmware/%s/tasks" % fw["id"],
                {"name": "scale", "mode": "pull", "timeoutSeconds": 600}, expect=201)
    pub = g.ok("POST", "/api/tasks/%s/publish" % task["id"], {"all": True})
    assert pub["added"] == N, pub
    stats["task"] = task["id"]

    async def upgrade(d):
        rep = await d.pull()
        if rep.get("success") is not True or rep.get("firmwareId") != fw["id"]:
            raise AssertionError("%s: pull reply %r" % (d.device_id, rep))
        img = await d.fetch_image(fw["id"], fw["size"])
        if hashlib.sha256(img).hexdigest() != fw["sign"]:
            raise AssertionError("%s: image digest mismatch" % d.device_id)
        await d.progress(rep["version"], fw["id"], 50)
        await d.progress(rep["version"], fw["id"], 100, complete=True, success=True)
        rep = await d.pull()              # a round trip: everything above was handled
        if rep.get("success") is not False or rep.get("code") != "not_found":
            raise AssertionError("%s: pull after success %r" % (d.device_id, rep))
        if d.inbox:
            raise AssertionError("%s: unexpected messages %r" % (d.device_id, list(d.inbox)))

    t0 = loop.time()
    res = await asyncio.gather(*(upgrade(d) for d in devs), return_exceptions=True)
    bad = [(d.device_id, r) for d, r in zip(devs, res) if isinstance(r, BaseException)]
    assert not bad, "%d of %d upgrades failed, e.g. %r" % (len(bad), N, bad[:5])
    stats["upgrade_s"] = loop.time() - t0
    stats["rss_after"] = rss_bytes(g.proc.pid)
    assert sessions(g) == N, "connections were lost during the run"

    for d in devs:
        d.close()
    await asyncio.sleep(0)


@pytest.mark.parametrize("codec", CODECS)
def test_1000_devices(tcpgw, tmp_path, codec):
    limit = raise_nofile(N + 1024)
    assert limit >= N + 100, "RLIMIT_NOFILE %d is too low for %d connections" % (limit, N)
    g = tcpgw(codec)
    fw, _ = make_fw(g, tmp_path, "scale", "2.0.0", size=8192)
    san = is_sanitized(g.proc.pid)
    rss_limit = RSS_LIMIT_SAN if san else RSS_LIMIT_PLAIN
    stats = {"rss_start": rss_bytes(g.proc.pid)}
    t0 = time.monotonic()
    asyncio.run(asyncio.wait_for(_scenario(g, fw, codec, stats), TOTAL_TIMEOUT))
    took = time.monotonic() - t0

    c = g.ok("GET", "/api/tasks/" + stats["task"])["counts"]
    assert (c["success"], c["total"]) == (N, N), c
    assert g.ok("GET", "/api/tasks/%s/records?state=success&size=1" % stats["task"])["total"] == N
    wait_until(lambda: sessions(g) == 0, "all sessions gone", timeout=10)
    online = g.ok("GET", "/api/devices?size=1000")["items"]
    assert len(online) == N and not [x["id"] for x in online if x["online"]], \
        "devices still online after every connection closed"
    peak = max(stats["rss_connected"], stats["rss_after"])
    print("\n%d devices (%s%s): connect+report %.1f s, upgrades %.1f s, total %.1f s; "
          "RSS start %.1f MiB, %d connected %.1f MiB, after %.1f MiB (%.1f KiB/connection), "
          "limit %d MiB" % (N, codec, ", sanitizer build" if san else "", stats["connect_s"],
                            stats["upgrade_s"], took, stats["rss_start"] / 2**20, N,
                            stats["rss_connected"] / 2**20, stats["rss_after"] / 2**20,
                            (stats["rss_connected"] - stats["rss_start"]) / 1024 / N,
                            rss_limit >> 20))
    assert peak < rss_limit, "daemon RSS %.1f MiB with %d connections, limit %d MiB" % (
        peak / 2**20, N, rss_limit >> 20)
    assert g.ok("GET", "/api/health")["status"] == "ok"


def test_connection_churn(tcpgw):
    """3 rounds of 500 devices connecting, identifying and going away (half
    of them with a reset): no session or memory left behind."""
    raise_nofile(2048)
    g = tcpgw("jsonline")
    san = is_sanitized(g.proc.pid)
    rounds = []

    async def one_round(r):
        devs = [devsim.AsyncDevice(HOST, g.tcp_port, "jsonline", "c%03d" % i, product_id="churn",
                                   timeout=30) for i in range(500)]
        sem = asyncio.Semaphore(200)

        async def hello(d):
            async with sem:
                await d.connect()
            await d.report("1.%d" % r)
            rep = await d.pull()
            if rep.get("code") != "not_found":
                raise AssertionError(rep)

        await asyncio.gather(*(hello(d) for d in devs))
        for i, d in enumerate(devs):
            if i % 2:
                d.writer.transport.abort()      # RST
                d.writer = None
            else:
                d.close()
        await asyncio.sleep(0)

    for r in range(3):
        asyncio.run(asyncio.wait_for(one_round(r), 60))
        wait_until(lambda: sessions(g) == 0, "sessions == 0 after round %d" % r, timeout=10)
        rounds.append(rss_bytes(g.proc.pid))
    items = g.ok("GET", "/api/devices?size=1000")["items"]
    assert len(items) == 500 and all(x["firmwareVersion"] == "1.2" and not x["online"]
                                     for x in items), items[:3]
    print("\nchurn RSS after each round: %s MiB" % ", ".join("%.1f" % (x / 2**20) for x in rounds))
    if not san:       # ASan's quarantine grows by design; LeakSanitizer checks at exit
        assert rounds[2] - rounds[0] < 2 * 2**20, "RSS grew by %.1f MiB over 2 rounds of 500 " \
            "connections" % ((rounds[2] - rounds[0]) / 2**20)
