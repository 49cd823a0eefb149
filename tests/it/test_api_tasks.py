# SPDX-License-Identifier: MIT
"""REST: upgrade tasks - create, list, publish, cancel, records."""

import pytest

from otagw_it import assert_error, assert_list, mk_dev, mk_fw, mk_task, now_ms, records

TASK_KEYS = {"id", "firmwareId", "productId", "name", "mode", "timeoutSeconds", "description",
             "state", "createTime", "counts"}
COUNT_KEYS = {"waiting", "processing", "success", "failed", "canceled", "total"}
REC_KEYS = {"id", "taskId", "deviceId", "firmwareId", "version", "versionOrder", "state",
            "progress", "errorReason", "createTime", "upgradeTime", "completeTime", "updateTime",
            "timeoutSeconds"}


@pytest.fixture
def fleet(gw):
    """prodA firmware 2.0 (versionOrder 20); a1, a2 on 1.0, a3 already on 2.0; b1 of prodB."""
    fw = mk_fw(gw, id="fwA2", productId="prodA", version="2.0", versionOrder=20,
               url="/images/a2.bin", size=1000)
    for d, v in (("a1", "1.0"), ("a2", "1.0"), ("a3", "2.0")):
        mk_dev(gw, d, productId="prodA", firmwareVersion=v)
    mk_dev(gw, "b1", productId="prodB", firmwareVersion="1.0")
    return fw


def counts(gw, tid):
    c = gw.ok("GET", "/api/tasks/" + tid)["counts"]
    assert COUNT_KEYS <= set(c), c
    return c


def test_create_task(gw, fleet):
    t0 = now_ms()
    st, t, _ = gw.req("POST", "/api/firmware/fwA2/tasks",
                      {"name": "roll-out", "mode": "pull", "timeoutSeconds": 600,
                       "description": "first wave"})
    assert st == 201, t
    assert TASK_KEYS <= set(t), "missing keys: %s" % (TASK_KEYS - set(t))
    assert (t["firmwareId"], t["productId"], t["name"], t["mode"], t["timeoutSeconds"],
            t["description"], t["state"]) == \
        ("fwA2", "prodA", "roll-out", "pull", 600, "first wave", "created")
    assert t0 - 5000 <= t["createTime"] <= now_ms() + 5000
    assert all(t["counts"][k] == 0 for k in COUNT_KEYS), t["counts"]
    assert gw.ok("GET", "/api/tasks/" + t["id"]) == t
    push = mk_task(gw, "fwA2", name="push one", mode="push")
    assert push["mode"] == "push" and push["id"] != t["id"]
    assert push["timeoutSeconds"] == 0


def test_create_task_unknown_firmware_404(gw):
    st, js, _ = gw.req("POST", "/api/firmware/nope/tasks", {"name": "t", "mode": "pull"})
    assert_error(st, js, 404)
    assert gw.ok("GET", "/api/tasks")["total"] == 0


@pytest.mark.parametrize("body,field", [
    ({"mode": "pull"}, "name"),
    ({"name": "t"}, "mode"),
    ({"name": "t", "mode": "both"}, "mode"),
    ({"name": "t", "mode": "PUSHY"}, "mode"),
    ({"name": "t", "mode": 1}, "mode"),
    ({"name": 7, "mode": "pull"}, "name"),
    ({"name": "t", "mode": "pull", "timeoutSeconds": -1}, "timeoutSeconds"),
    ({"name": "t", "mode": "pull", "timeoutSeconds": "60"}, "timeoutSeconds"),
    ({"name": "t", "mode": "pull", "timeoutSeconds": 1.5}, "timeoutSeconds"),
    ({"name": "t", "mode": "pull", "description": {}}, "description"),
    ({"name": "t", "mode": "pull", "state": "published"}, "state"),
])
def test_create_task_bad_400(gw, fleet, body, field):
    st, js, _ = gw.req("POST", "/api/firmware/fwA2/tasks", body)
    assert_error(st, js, 400, field)
    assert gw.ok("GET", "/api/tasks")["total"] == 0


def test_list_tasks_filter(gw, fleet):
    other = mk_fw(gw, id="fwB", productId="prodB", version="5")
    t1 = mk_task(gw, "fwA2", name="t1")
    t2 = mk_task(gw, "fwA2", name="t2")
    t3 = mk_task(gw, "fwB", name="t3")
    items = assert_list(gw.ok("GET", "/api/tasks"), total=3)
    assert {t["id"] for t in items} == {t1["id"], t2["id"], t3["id"]}
    assert all("counts" in t for t in items)
    items = assert_list(gw.ok("GET", "/api/tasks?firmwareId=fwA2"), total=2)
    assert {t["id"] for t in items} == {t1["id"], t2["id"]}
    items = assert_list(gw.ok("GET", "/api/tasks?firmwareId=" + other["id"]), total=1)
    assert items[0]["productId"] == "prodB"
    items = assert_list(gw.ok("GET", "/api/tasks?size=1&page=1"), total=3, page=1, size=1)
    assert len(items) == 1
    st, js, _ = gw.req("GET", "/api/tasks?size=5000")
    assert_error(st, js, 400)


def test_publish_all(gw, fleet):
    t = mk_task(gw, "fwA2", timeoutSeconds=120)
    st, res, _ = gw.req("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    assert st == 200, res
    assert (res["added"], res["already"], res["upToDate"]) == (2, 0, 1), res
    assert res["pushed"] == 0, "pull task: nothing is pushed"
    assert res["task"]["state"] == "published"
    assert res["task"]["counts"]["total"] == 3

    recs = records(gw, t["id"])
    by_dev = {r["deviceId"]: r for r in recs}
    assert set(by_dev) == {"a1", "a2", "a3"}, "b1 is of another product"
    for r in recs:
        assert REC_KEYS <= set(r), "missing keys: %s" % (REC_KEYS - set(r))
        assert (r["taskId"], r["firmwareId"], r["version"], r["versionOrder"],
                r["timeoutSeconds"]) == (t["id"], "fwA2", "2.0", 20, 120), r
    assert by_dev["a1"]["state"] == by_dev["a2"]["state"] == "waiting"
    assert by_dev["a1"]["progress"] == 0
    assert by_dev["a3"]["state"] == "success", "a3 is already on 2.0"
    assert len({r["id"] for r in recs}) == 3

    c = counts(gw, t["id"])
    assert (c["waiting"], c["processing"], c["success"], c["failed"], c["canceled"],
            c["total"]) == (2, 0, 1, 0, 0, 3), c


def test_publish_again_adds_only_new_devices(gw, fleet):
    t = mk_task(gw, "fwA2")
    gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["a1"]})
    before = {r["deviceId"]: r for r in records(gw, t["id"])}
    res = gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    assert (res["added"], res["already"], res["upToDate"]) == (1, 1, 1), res
    res = gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    assert (res["added"], res["already"], res["upToDate"]) == (0, 3, 0), res
    mk_dev(gw, "a4", productId="prodA", firmwareVersion="0.9")
    res = gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["a1", "a4"]})
    assert (res["added"], res["already"]) == (1, 1), res
    recs = records(gw, t["id"])
    assert len(recs) == 4
    a1 = [r for r in recs if r["deviceId"] == "a1"][0]
    assert a1 == before["a1"], "re-publishing rewrote an existing record"


def test_publish_selected(gw, fleet):
    t = mk_task(gw, "fwA2")
    res = gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["a2"]})
    assert (res["added"], res["already"], res["upToDate"]) == (1, 0, 0), res
    recs = records(gw, t["id"])
    assert [(r["deviceId"], r["state"]) for r in recs] == [("a2", "waiting")]


def test_publish_unknown_devices_400_nothing_created(gw, fleet):
    t = mk_task(gw, "fwA2")
    st, js, _ = gw.req("POST", "/api/tasks/%s/publish" % t["id"],
                       {"deviceIds": ["a1", "ghost-1", "a2", "ghost-2"]})
    assert_error(st, js, 400, "ghost-1", "ghost-2")
    assert records(gw, t["id"]) == []
    assert gw.ok("GET", "/api/tasks/" + t["id"])["state"] == "created"
    assert gw.ok("GET", "/api/devices/a1/history")["total"] == 0


def test_publish_other_product_400(gw, fleet):
    t = mk_task(gw, "fwA2")
    st, js, _ = gw.req("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["a1", "b1"]})
    assert_error(st, js, 400, "b1")
    assert records(gw, t["id"]) == []


@pytest.mark.parametrize("body", [{}, {"all": "yes"}, {"deviceIds": "a1"}, {"deviceIds": [1]},
                                  {"deviceIds": ["a1"], "extra": 1}, [], {"all": 1}])
def test_publish_bad_body_400(gw, fleet, body):
    t = mk_task(gw, "fwA2")
    st, js, _ = gw.req("POST", "/api/tasks/%s/publish" % t["id"], body)
    assert_error(st, js, 400)
    assert records(gw, t["id"]) == []


def test_publish_unknown_task_404(gw, fleet):
    st, js, _ = gw.req("POST", "/api/tasks/nope/publish", {"all": True})
    assert_error(st, js, 404)


def test_push_task_publish(gw, fleet):
    """No device is connected: pushed counts attempts, records are unfinished."""
    t = mk_task(gw, "fwA2", mode="push")
    res = gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    assert (res["added"], res["upToDate"]) == (2, 1), res
    assert 0 <= res["pushed"] <= 2, res
    c = counts(gw, t["id"])
    assert c["waiting"] + c["processing"] == 2 and c["success"] == 1, c
    assert c["processing"] <= res["pushed"], "records processing without a push: %r" % c


def test_cancel(gw, fleet):
    t = mk_task(gw, "fwA2")
    gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    st, res, _ = gw.req("POST", "/api/tasks/%s/cancel" % t["id"], {})
    assert st == 200, res
    assert res["canceled"] == 2, res
    assert res["task"]["state"] == "canceled"
    by_dev = {r["deviceId"]: r for r in records(gw, t["id"])}
    assert by_dev["a1"]["state"] == by_dev["a2"]["state"] == "canceled"
    assert by_dev["a3"]["state"] == "success", "cancel must not touch finished records"
    assert by_dev["a1"]["completeTime"] > 0 or by_dev["a1"]["updateTime"] > 0
    c = counts(gw, t["id"])
    assert (c["waiting"], c["canceled"], c["success"], c["total"]) == (0, 2, 1, 3), c
    assert gw.ok("GET", "/api/tasks/" + t["id"])["state"] == "canceled"

    st, js, _ = gw.req("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    assert_error(st, js, 409)
    mk_dev(gw, "a9", productId="prodA")
    st, js, _ = gw.req("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["a9"]})
    assert_error(st, js, 409)
    assert len(records(gw, t["id"])) == 3


def test_cancel_unpublished_and_unknown(gw, fleet):
    t = mk_task(gw, "fwA2")
    res = gw.ok("POST", "/api/tasks/%s/cancel" % t["id"], {})
    assert res["canceled"] == 0 and res["task"]["state"] == "canceled"
    st, js, _ = gw.req("POST", "/api/tasks/nope/cancel", {})
    assert_error(st, js, 404)


def test_cancel_only_touches_its_task(gw, fleet):
    mk_fw(gw, id="fwA3", productId="prodA", version="3.0", versionOrder=30)
    t1 = mk_task(gw, "fwA2")
    t2 = mk_task(gw, "fwA3")
    gw.ok("POST", "/api/tasks/%s/publish" % t1["id"], {"deviceIds": ["a1"]})
    gw.ok("POST", "/api/tasks/%s/publish" % t2["id"], {"deviceIds": ["a1", "a2"]})
    gw.ok("POST", "/api/tasks/%s/cancel" % t1["id"], {})
    assert [r["state"] for r in records(gw, t2["id"])] == ["waiting", "waiting"]
    assert counts(gw, t2["id"])["waiting"] == 2


def test_records_state_filter(gw, fleet):
    t = mk_task(gw, "fwA2")
    gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"all": True})
    w = records(gw, t["id"], "waiting")
    assert sorted(r["deviceId"] for r in w) == ["a1", "a2"]
    s = records(gw, t["id"], "success")
    assert [r["deviceId"] for r in s] == ["a3"]
    both = records(gw, t["id"], "waiting,success")
    assert len(both) == 3
    assert records(gw, t["id"], "failed") == []
    js = gw.ok("GET", "/api/tasks/%s/records?size=2" % t["id"])
    assert len(assert_list(js, total=3, size=2)) == 2
    for bad in ("bogus", "waiting,bogus", "WAITING;", ""):
        st, js, _ = gw.req("GET", "/api/tasks/%s/records?state=%s" % (t["id"], bad))
        if bad == "":
            # an empty filter may mean "no filter"; it must not be an error 500
            assert st in (200, 400), (bad, st, js)
            continue
        assert_error(st, js, 400)
    st, js, _ = gw.req("GET", "/api/tasks/nope/records")
    assert_error(st, js, 404)


def test_tasks_after_firmware_delete_refused(gw, fleet):
    t = mk_task(gw, "fwA2")
    gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["a1"]})
    st, js, _ = gw.req("DELETE", "/api/firmware/fwA2")
    assert_error(st, js, 409)
    assert gw.ok("GET", "/api/tasks/" + t["id"])["counts"]["waiting"] == 1
