# SPDX-License-Identifier: MIT
"""Group commit (gateway/store.h: store_set_batching, store_flush): the
daemon commits once per event-loop pass and never tells a peer of a change
before it is on disk.

  - a burst of 60 messages that arrive together costs a few WAL syncs, not
    60 (read from /metrics: otagw_store_syncs_total);
  - progress alone commits without a sync;
  - the moment an answer arrives (a TCP pull reply, an HTTP device pull, a
    REST 201), a second SQLite connection already sees the change it
    reports: nothing is sent before its commit (the cloud's outbox frames
    are held to the same rule; tests/it/test_crash_consistency.py checks
    what the cloud was sent against what survived each kill).
The database is read with Python's sqlite3, read-only, as another process
would (or as the disk would after a crash)."""

import os
import sqlite3
import time

from otagw_it import http_request
from test_console_srv import metrics, value
from test_tcp import make_fw, publish, tcpgw, wait_online, wait_until  # noqa: F401

import devsim


def db_read(g, sql, *args):
    """One row of sql from the gateway's database through a new read-only
    connection."""
    path = os.path.join(g.data_dir, "otagw.db")
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchone()
    finally:
        con.close()


def store_counters(g):
    f = metrics(g)
    return {k: value(f, "otagw_store_%s_total" % k) for k in ("commits", "syncs",
                                                               "commit_failures")}


def test_burst_of_messages_is_a_few_commits(tcpgw):
    g = tcpgw("jsonline")
    d = g.device("gc1", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "gc1", True)
    time.sleep(0.3)                     # the first report's pass is over
    before = store_counters(g)
    m0 = value(metrics(g), "otagw_device_messages_total", transport="tcp")
    n = 60
    burst = b"".join(d.encode(devsim.msg_report("gc1", "1.0.%d" % i, {"n": i}))
                     for i in range(1, n + 1))
    d.send_raw(burst)                   # one write: the daemon reads it in one go
    wait_until(lambda: db_read(g, "SELECT firmware_version FROM device WHERE id = ?",
                               "gc1") == ("1.0.%d" % n,), "the last report stored")
    after = store_counters(g)
    handled = value(metrics(g), "otagw_device_messages_total", transport="tcp") - m0
    assert handled == n, handled
    syncs = after["syncs"] - before["syncs"]
    # one per loop pass that changed something: the burst, and the odd pass
    # of the /metrics requests themselves (which change nothing)
    assert 1 <= syncs <= 6, "%d WAL syncs for %d reports: not batched" % (syncs, n)
    assert after["commit_failures"] == 0, after


def test_progress_alone_commits_without_a_sync(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=4096)
    d = g.device("gc2", product_id="p1")
    d.report("1.0.0")
    task, _ = publish(g, fw["id"], "pull", ["gc2"])
    assert d.pull(current_version="1.0.0")["success"] is True
    wait_until(lambda: db_read(g, "SELECT state FROM record WHERE device_id = ?", "gc2")
               == ("processing",), "the record in processing")
    time.sleep(0.3)
    before = store_counters(g)
    for pct in range(5, 95, 5):
        d.progress("2.0.0", fw["id"], pct)
    wait_until(lambda: db_read(g, "SELECT progress FROM record WHERE device_id = ?", "gc2")
               == (90,), "progress 90 stored")
    after = store_counters(g)
    assert after["commits"] > before["commits"], (before, after)
    assert after["syncs"] == before["syncs"], \
        "progress is relaxed: committed without a WAL sync (%r -> %r)" % (before, after)


def test_tcp_pull_reply_follows_its_commit(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=4096)
    for i in range(5):
        dev = "gc3-%d" % i
        d = g.device(dev, product_id="p1")
        d.report("1.0.0")
        publish(g, fw["id"], "pull", [dev], name="t%d" % i)
        rep = d.pull(current_version="1.0.0")
        assert rep["success"] is True, rep
        # the reply is here: the record's move is already on disk
        assert db_read(g, "SELECT state FROM record WHERE device_id = ?", dev) == \
            ("processing",), "reply sent before the commit of %s" % dev


def test_http_pull_and_rest_answers_follow_their_commits(gw, tmp_path):
    for i in range(5):
        st, fw, _ = gw.req("POST", "/api/firmware", {
            "productId": "hp", "name": "f%d" % i, "version": "2.%d" % i, "versionOrder": i,
            "url": "http://example.invalid/f%d.bin" % i, "size": 10})
        assert st == 201, fw
        assert db_read(gw, "SELECT version FROM firmware WHERE id = ?", fw["id"]) == \
            ("2.%d" % i,), "201 sent before the firmware was committed"
    dev = "gc4"
    fw, _ = make_fw(gw, tmp_path, "hp", "3.0.0", size=4096, versionOrder=9)
    st, _, _, raw = http_request(gw.port, "POST", "/device/hp/%s/firmware/report" % dev,
                                 body={"version": "1.0"})
    assert st == 200, raw
    publish(gw, fw["id"], "pull", [dev])
    st, rep, _, raw = http_request(gw.port, "POST", "/device/hp/%s/firmware/pull" % dev,
                                   body={"messageId": "m1", "requestVersion": ""})
    assert st == 200 and rep["success"] is True, raw
    assert db_read(gw, "SELECT state FROM record WHERE device_id = ?", dev) == \
        ("processing",), "pull answered before the record's commit"
