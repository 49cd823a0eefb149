# SPDX-License-Identifier: MIT
"""Rollouts (gateway/rollout.c, issue 13) end to end against the real daemon
with simulated TCP devices (tests/devsim.py, asyncio): a concurrency cap
checked at every state change (replayed from record_history in the SQLite
file, in commit order), waves with a failure threshold that pause the task
and a resume, retries with their delay, a scheduled start, pull devices
told "not yet, retry after", pause/resume/abort through the API, and the
rollout's decisions in the task's events."""

import asyncio
import os
import random
import sqlite3
import time

import pytest

from test_tcp import make_fw, tcpgw, wait_until  # noqa: F401

import devsim  # noqa: E402

HOST = "127.0.0.1"


def mk_task(g, fw_id, mode, rollout, name="rollout"):
    return g.ok("POST", "/api/firmware/%s/tasks" % fw_id,
                {"name": name, "mode": mode, "timeoutSeconds": 0, "rollout": rollout},
                expect=201)


def counts(g, task_id):
    return g.ok("GET", "/api/tasks/%s" % task_id)["counts"]


def history(g):
    """Every record_history row in commit order (id), read from the file."""
    db = sqlite3.connect("file:%s/otagw.db?mode=ro" % g.data_dir, uri=True, timeout=5)
    try:
        return db.execute("SELECT record_id, from_state, to_state, reason FROM record_history"
                          " ORDER BY id").fetchall()
    finally:
        db.close()


def max_processing(rows, task_records):
    """Replays the history: the most records in processing at once."""
    busy, peak = set(), 0
    for rid, frm, to, _ in rows:
        if rid not in task_records:
            continue
        if to == "processing":
            busy.add(rid)
        elif frm == "processing":
            busy.discard(rid)
        peak = max(peak, len(busy))
    return peak


async def push_device(dev_id, port, fw, fail_first=0, fail_always=False, delay=(0.02, 0.1),
                      stop=None, version="1.0.0"):
    """Reports version, then answers every UPGRADE_FIRMWARE: reply, progress,
    and success (or failure for its first fail_first pushes, or always)."""
    d = devsim.AsyncDevice(HOST, port, "jsonline", dev_id, product_id="p1", timeout=60)
    await d.connect()
    await d.report(version)
    pushes = 0
    try:
        while not (stop and stop.is_set()):
            try:
                up = await d.wait_for("UPGRADE_FIRMWARE", timeout=0.5)
            except devsim.DevsimError:
                continue
            except TimeoutError:
                continue
            pushes += 1
            await d.send(devsim.msg_upgrade_reply(dev_id, up["messageId"], True))
            await asyncio.sleep(random.uniform(*delay))
            await d.send(devsim.msg_progress(dev_id, fw["version"], fw["id"], 50))
            await asyncio.sleep(random.uniform(*delay))
            fail = fail_always or pushes <= fail_first
            await d.send(devsim.msg_progress(dev_id, fw["version"], fw["id"], 100 if not fail
                                             else 50, complete=True, success=not fail,
                                             error_reason="flash write failed" if fail
                                             else None))
            if not fail:
                await d.report(fw["version"])
    finally:
        d.close()
    return pushes


def run_devices(g, fw, behaviours, until, timeout=60):
    """Runs one asyncio device per (id, kwargs) until until() is true."""
    async def main():
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(push_device(i, g.tcp_port, fw, stop=stop, **kw))
                 for i, kw in behaviours]
        deadline = time.monotonic() + timeout
        try:
            while not until():
                assert time.monotonic() < deadline, "rollout did not finish in %d s" % timeout
                for t in tasks:
                    if t.done() and t.exception():
                        raise t.exception()
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        return [t.result() if not t.exception() else None for t in tasks]
    return asyncio.run(main())


def test_max_concurrent_100_devices(tcpgw, tmp_path):
    g = tcpgw("jsonline", max_connections=200)
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=1024)
    ids = ["m%03d" % i for i in range(100)]
    for i in ids:
        g.ok("POST", "/api/devices", {"id": i, "productId": "p1", "firmwareVersion": "1.0.0"},
             expect=201)
    t = mk_task(g, fw["id"], "push", {"maxConcurrent": 10})
    assert t["rollout"]["maxConcurrent"] == 10 and t["rolloutStatus"]["slotsInUse"] == 0, t
    res = g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    assert res["added"] == 100, res
    run_devices(g, fw, [(i, {}) for i in ids],
                lambda: counts(g, t["id"])["success"] == 100, timeout=90)
    recs = {r["id"] for r in g.ok("GET", "/api/tasks/%s/records?size=1000" % t["id"])["items"]}
    rows = history(g)
    peak = max_processing(rows, recs)
    assert peak == 10, "at most 10 in processing at any state change, and the cap used: %d" % peak
    assert counts(g, t["id"])["success"] == 100


def test_waves_failure_threshold_pause_and_resume(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=1024)
    ids = ["w%02d" % i for i in range(30)]
    for i in ids:
        g.ok("POST", "/api/devices", {"id": i, "productId": "p1", "firmwareVersion": "1.0.0"},
             expect=201)
    # waves of 10 %, 30 %, 60 % in device id order: w00-w02, w03-w11, w12-w29;
    # two of wave 2 fail (22 % >= 20 %)
    t = mk_task(g, fw["id"], "push", {"waves": [{"percent": 10}, {"percent": 30},
                                                 {"percent": 60}],
                                       "successThreshold": 70, "failureThreshold": 20})
    g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    # the two that fail do so at once, the others take a while: the failure
    # threshold is crossed before wave 2 could reach its success threshold
    behaviours = [(i, {"fail_always": True, "delay": (0.0, 0.01)}) if i in ("w03", "w04")
                  else (i, {"delay": (0.3, 0.5)}) for i in ids]

    def paused():
        return g.ok("GET", "/api/tasks/%s" % t["id"])["paused"]

    async def main():
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(push_device(i, g.tcp_port, fw, stop=stop, **kw))
                 for i, kw in behaviours]
        try:
            deadline = time.monotonic() + 60
            while not paused():
                assert time.monotonic() < deadline, "the task never paused"
                await asyncio.sleep(0.2)
            task = g.ok("GET", "/api/tasks/%s" % t["id"])
            assert "wave 2" in task["pauseReason"] and "failureThreshold 20%" in \
                task["pauseReason"], task
            assert task["rolloutStatus"]["wave"] == 2 and task["rolloutStatus"]["waves"] == 3
            assert task["rolloutStatus"]["waveSizes"] == [3, 9, 18], task
            recs = g.ok("GET", "/api/tasks/%s/records?size=100" % t["id"])["items"]
            third = [r for r in recs if r["wave"] == 3]
            assert len(third) == 18 and all(r["state"] == "waiting" for r in third), third
            # nothing of wave 3 starts while paused
            await asyncio.sleep(1.5)
            recs = g.ok("GET", "/api/tasks/%s/records?size=100" % t["id"])["items"]
            assert all(r["state"] == "waiting" for r in recs if r["wave"] == 3)
            # the operator looked at the failures and resumes
            res = g.ok("POST", "/api/tasks/%s/resume" % t["id"])
            assert res["paused"] is False, res
            deadline = time.monotonic() + 60
            while counts(g, t["id"])["success"] < 28:
                assert time.monotonic() < deadline, counts(g, t["id"])
                assert not paused(), g.ok("GET", "/api/tasks/%s" % t["id"])
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    asyncio.run(main())
    c = counts(g, t["id"])
    assert (c["success"], c["failed"]) == (28, 2), c
    ev = g.ok("GET", "/api/tasks/%s/events" % t["id"])["items"]
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "published", kinds
    assert kinds.index("paused") < kinds.index("resumed"), kinds
    waves = [e for e in ev if e["event"] == "wave"]
    assert [w["wave"] for w in waves] == [2, 3], waves
    assert "3 of 3 succeeded" in waves[0]["reason"], waves
    assert "7 of 9 succeeded" in waves[1]["reason"], waves


def test_retries_with_delay(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=1024)
    for i in ("r1", "r2"):
        g.ok("POST", "/api/devices", {"id": i, "productId": "p1", "firmwareVersion": "1.0.0"},
             expect=201)
    t = mk_task(g, fw["id"], "push", {"retries": {"count": 2, "delaySeconds": 1}})
    g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    t0 = time.monotonic()
    pushes = run_devices(g, fw, [("r1", {"fail_first": 2}), ("r2", {"fail_always": True})],
                         lambda: (lambda c: c["success"] == 1 and c["failed"] == 1)(
                             counts(g, t["id"])) and
                         all(r["retries"] == 2 for r in
                             g.ok("GET", "/api/tasks/%s/records" % t["id"])["items"]),
                         timeout=30)
    took = time.monotonic() - t0
    assert took >= 2.0, "two retries 1 s apart cannot finish in %.2f s" % took
    assert pushes == [3, 3], pushes
    recs = {r["deviceId"]: r for r in g.ok("GET", "/api/tasks/%s/records" % t["id"])["items"]}
    assert recs["r1"]["state"] == "success" and recs["r2"]["state"] == "failed", recs
    hist = g.ok("GET", "/api/devices/r2/history")["items"]
    retry = sorted((h for h in hist if h.get("from") == "failed" and h.get("to") == "waiting"),
                   key=lambda h: h["id"])
    assert [h["reason"] for h in retry] == ["retry 1 of 2", "retry 2 of 2"], hist


def test_scheduled_start_and_pull_not_yet(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=1024)
    start = int(time.time() * 1000) + 2500
    t = mk_task(g, fw["id"], "pull", {"startTime": start, "maxConcurrent": 1})
    d1 = g.device("s1", product_id="p1")
    d2 = g.device("s2", product_id="p1")
    d1.report("1.0.0")
    d2.report("1.0.0")
    wait_until(lambda: g.req("GET", "/api/devices/s1")[0] == 200 and
               g.req("GET", "/api/devices/s2")[0] == 200, "s1 and s2 registered")
    g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["s1", "s2"]})
    rep = d1.pull()
    assert rep["success"] is False and rep["code"] == "not_yet", rep
    assert "scheduled to start" in rep["message"] and 1 <= rep["retryAfter"] <= 3, rep
    assert counts(g, t["id"])["waiting"] == 2
    wait_until(lambda: time.time() * 1000 >= start + 100, "the start time", timeout=5)
    rep = d1.pull()
    assert rep["success"] is True and rep["firmwareId"] == fw["id"], rep
    # one slot: the second device is told to come back later
    rep = d2.pull()
    assert rep["success"] is False and rep["code"] == "not_yet", rep
    assert "slots" in rep["message"] and rep["retryAfter"] == 10, rep
    d1.progress("2.0.0", fw["id"], 100, complete=True, success=True)
    wait_until(lambda: counts(g, t["id"])["success"] == 1, "s1 success")
    rep = d2.pull()
    assert rep["success"] is True, rep
    ev = [e["event"] for e in g.ok("GET", "/api/tasks/%s/events" % t["id"])["items"]]
    assert ev[:3] == ["published", "hold", "open"], ev


def test_window_closed_holds_pulls(tcpgw, tmp_path):
    """A window that does not contain now: pull devices wait with the time
    until it opens (window arithmetic with an injected clock is in
    tests/test_rollout.c)."""
    g = tcpgw("jsonline")
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=1024)
    now = time.localtime()
    frm = (now.tm_hour * 60 + now.tm_min + 120) % (24 * 60)
    to = (frm + 60) % (24 * 60)
    win = {"from": "%02d:%02d" % divmod(frm, 60), "to": "%02d:%02d" % divmod(to, 60)}
    t = mk_task(g, fw["id"], "pull", {"window": [win]})
    d = g.device("wd1", product_id="p1")
    d.report("1.0.0")
    wait_until(lambda: g.req("GET", "/api/devices/wd1")[0] == 200, "wd1 registered")
    g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["wd1"]})
    rep = d.pull()
    assert rep["code"] == "not_yet" and "maintenance window" in rep["message"], rep
    assert 3600 >= rep["retryAfter"] >= 60, rep
    task = g.ok("GET", "/api/tasks/%s" % t["id"])
    assert "maintenance window" in task["rolloutStatus"]["hold"], task


def test_pause_resume_abort_api(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=1024)
    t = mk_task(g, fw["id"], "pull", {"maxConcurrent": 5})
    st, js, _ = g.req("POST", "/api/tasks/%s/pause" % t["id"])
    assert st == 409, js            # not published yet
    d = g.device("pa1", product_id="p1")
    d.report("1.0.0")
    wait_until(lambda: g.req("GET", "/api/devices/pa1")[0] == 200, "pa1 registered")
    g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["pa1"]})
    res = g.ok("POST", "/api/tasks/%s/pause" % t["id"], {"reason": "line 3 maintenance"})
    assert res["paused"] is True and res["pauseReason"] == "line 3 maintenance", res
    st, js, _ = g.req("POST", "/api/tasks/%s/pause" % t["id"])
    assert st == 409 and "already paused" in js["error"], js
    rep = d.pull()
    assert rep["code"] == "not_yet" and "line 3 maintenance" in rep["message"], rep
    res = g.ok("POST", "/api/tasks/%s/resume" % t["id"])
    assert res["paused"] is False
    st, js, _ = g.req("POST", "/api/tasks/%s/resume" % t["id"])
    assert st == 409, js
    rep = d.pull()
    assert rep["success"] is True, rep
    res = g.ok("POST", "/api/tasks/%s/abort" % t["id"])
    assert res["canceled"] == 1 and res["task"]["state"] == "canceled", res
    ev = [e["event"] for e in g.ok("GET", "/api/tasks/%s/events" % t["id"])["items"]]
    assert ev == ["published", "paused", "resumed", "aborted"], ev
    st, js, _ = g.req("GET", "/api/tasks/nope/events")
    assert st == 404, js


@pytest.mark.parametrize("rollout, mention", [
    ({"maxConcurrent": -1}, "maxConcurrent"),
    ({"waves": []}, "waves"),
    ({"waves": [{"percent": 0}]}, "percent"),
    ({"waves": [{"percent": 50, "devices": ["a"]}]}, "either"),
    ({"waves": [{"devices": ["bad id!"]}]}, "device id"),
    ({"successThreshold": 101}, "successThreshold"),
    ({"failureThreshold": 0}, "failureThreshold"),
    ({"window": [{"from": "25:00", "to": "03:00"}]}, "HH:MM"),
    ({"window": [{"from": "01:00", "to": "01:00"}]}, "equal"),
    ({"window": [{"from": "01:00", "to": "03:00", "days": ["monday"]}]}, "sun"),
    ({"retries": {"count": 1000}}, "count"),
    ({"retries": 3}, "retries"),
    ({"surprise": 1}, "surprise"),
    ("fast", "rollout"),
])
def test_bad_rollout_refused(gw, rollout, mention):
    fw = gw.ok("POST", "/api/firmware", {"productId": "p1", "name": "f", "version": "2.0"},
               expect=201)
    st, js, _ = gw.req("POST", "/api/firmware/%s/tasks" % fw["id"],
                       {"name": "t", "mode": "push", "rollout": rollout})
    assert st == 400 and mention in js["error"], (st, js)
    assert gw.ok("GET", "/api/tasks")["total"] == 0


def test_rollout_decisions_go_upstream(gw_factory, tmp_path):
    """TASK_EVENT frames (northbound/PROTOCOL.md 5.8): the cloud sees the
    rollout's decisions in order, each once, checked by the simulator's
    frame checker."""
    from test_cloud import cloud_conf, wait_online, GW_ID, TOKEN  # noqa: F401
    from cloudsim import CloudSim
    sim = CloudSim(token=TOKEN, gateway_id=GW_ID)
    sim.start()
    try:
        g = gw_factory(config_extra=cloud_conf(sim))
        sim.wait_connected(timeout=15)
        wait_online(g)
        fw = g.ok("POST", "/api/firmware", {"productId": "p1", "name": "f", "version": "2.0"},
                  expect=201)
        g.ok("POST", "/api/devices", {"id": "c1", "productId": "p1", "firmwareVersion": "1.0"},
             expect=201)
        t = mk_task(g, fw["id"], "pull", {"maxConcurrent": 1})
        g.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["c1"]})
        g.ok("POST", "/api/tasks/%s/pause" % t["id"], {"reason": "night shift"})
        g.ok("POST", "/api/tasks/%s/resume" % t["id"])

        def events():
            return [(f["event"], f.get("reason", "")) for f in sim.frames("TASK_EVENT")
                    if f["taskId"] == t["id"]]
        wait_until(lambda: len(events()) >= 3, "three TASK_EVENT frames", timeout=15)
        got = events()
        assert [e for e, _ in got] == ["published", "paused", "resumed"], got
        assert got[1][1] == "night shift", got
        assert not sim.violations(), sim.violations()
    finally:
        sim.close()
