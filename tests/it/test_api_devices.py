# SPDX-License-Identifier: MIT
"""REST: /api/devices - register, view, list, delete, history."""

import pytest

from otagw_it import assert_error, assert_list, mk_dev, mk_fw, mk_task, now_ms, records

DEV_KEYS = {"id", "productId", "name", "firmwareVersion", "properties", "transport", "online",
            "lastSeen", "createTime"}
HIST_KEYS = {"id", "recordId", "taskId", "deviceId", "from", "to", "progress", "reason", "time"}


def test_create_and_get(gw):
    t0 = now_ms()
    st, d, _ = gw.req("POST", "/api/devices", {"id": "d1", "productId": "prodA", "name": "pump 1",
                                               "firmwareVersion": "1.0.0",
                                               "properties": {"hw": "A2", "slot": 4}})
    assert st == 201, d
    assert DEV_KEYS <= set(d), "missing keys: %s" % (DEV_KEYS - set(d))
    assert (d["id"], d["productId"], d["name"], d["firmwareVersion"]) == \
        ("d1", "prodA", "pump 1", "1.0.0")
    assert d["properties"] == {"hw": "A2", "slot": 4}
    assert d["online"] is False, "a device registered by REST is not connected"
    assert isinstance(d["createTime"], int) and t0 - 5000 <= d["createTime"] <= now_ms() + 5000
    assert gw.ok("GET", "/api/devices/d1") == d


def test_create_minimal(gw):
    d = mk_dev(gw, "d-min", productId="prodB")
    assert d["productId"] == "prodB" and d["properties"] == {}
    assert isinstance(d["firmwareVersion"], str) and isinstance(d["name"], str)


def test_duplicate_409(gw):
    d = mk_dev(gw, "d1")
    st, js, _ = gw.req("POST", "/api/devices", {"id": "d1", "productId": "prodB"})
    assert_error(st, js, 409)
    assert gw.ok("GET", "/api/devices/d1") == d
    assert gw.ok("GET", "/api/devices")["total"] == 1


@pytest.mark.parametrize("body,field", [
    ({"productId": "p"}, "id"),
    ({"id": "d1"}, "productId"),
    ({"id": "", "productId": "p"}, "id"),
    ({"id": "a" * 65, "productId": "p"}, "id"),
    ({"id": "d/1", "productId": "p"}, "id"),
    ({"id": "d 1", "productId": "p"}, "id"),
    ({"id": 1, "productId": "p"}, "id"),
    ({"id": "d1", "productId": ["p"]}, "productId"),
    ({"id": "d1", "productId": "p", "name": 5}, "name"),
    ({"id": "d1", "productId": "p", "firmwareVersion": 1.0}, "firmwareVersion"),
    ({"id": "d1", "productId": "p", "properties": []}, "properties"),
    ({"id": "d1", "productId": "p", "online": True}, "online"),
    ({"id": "d1", "productId": "p", "color": "red"}, "color"),
])
def test_bad_create_400(gw, body, field):
    st, js, _ = gw.req("POST", "/api/devices", body)
    assert_error(st, js, 400, field)
    assert gw.ok("GET", "/api/devices")["total"] == 0


def test_list_filter_and_paging(gw):
    for i in range(4):
        mk_dev(gw, "a%d" % i, productId="prodA")
    mk_dev(gw, "b0", productId="prodB")
    items = assert_list(gw.ok("GET", "/api/devices"), total=5)
    assert {d["id"] for d in items} == {"a0", "a1", "a2", "a3", "b0"}
    items = assert_list(gw.ok("GET", "/api/devices?productId=prodB"), total=1)
    assert [d["id"] for d in items] == ["b0"]
    got = []
    for page in range(2):
        items = assert_list(gw.ok("GET", "/api/devices?productId=prodA&size=3&page=%d" % page),
                            total=4, page=page, size=3)
        got += [d["id"] for d in items]
    assert sorted(got) == ["a0", "a1", "a2", "a3"]
    for q in ("page=-1", "size=1001", "size=x"):
        st, js, _ = gw.req("GET", "/api/devices?" + q)
        assert_error(st, js, 400)


def test_get_delete_unknown_404(gw):
    for m, p in (("GET", "/api/devices/nope"), ("DELETE", "/api/devices/nope"),
                 ("GET", "/api/devices/nope/history")):
        st, js, _ = gw.req(m, p)
        assert_error(st, js, 404)


def test_delete(gw):
    mk_dev(gw, "d1")
    keep = mk_dev(gw, "d2")
    st, js, _ = gw.req("DELETE", "/api/devices/d1")
    assert st == 204, js
    st, js, _ = gw.req("GET", "/api/devices/d1")
    assert_error(st, js, 404)
    assert gw.ok("GET", "/api/devices")["items"] == [keep]
    assert mk_dev(gw, "d1", productId="prodZ")["productId"] == "prodZ"  # id reusable


def test_delete_cancels_unfinished_records(gw):
    fw = mk_fw(gw, version="2.0")
    mk_dev(gw, "d1", firmwareVersion="1.0")
    mk_dev(gw, "d2", firmwareVersion="1.0")
    mk_dev(gw, "d3", firmwareVersion="2.0")
    task = mk_task(gw, fw["id"])
    gw.ok("POST", "/api/tasks/%s/publish" % task["id"], {"all": True})
    st, js, _ = gw.req("DELETE", "/api/devices/d1")
    assert st == 204, js
    st, js, _ = gw.req("DELETE", "/api/devices/d3")
    assert st == 204, js
    by_dev = {r["deviceId"]: r for r in records(gw, task["id"])}
    assert by_dev["d1"]["state"] == "canceled"
    assert by_dev["d2"]["state"] == "waiting", "another device's record was touched"
    assert by_dev["d3"]["state"] == "success", "a finished record must stay finished"
    counts = gw.ok("GET", "/api/tasks/" + task["id"])["counts"]
    assert (counts["canceled"], counts["waiting"], counts["success"]) == (1, 1, 1), counts


def test_history_newest_first(gw):
    fw = mk_fw(gw, version="2.0")
    mk_dev(gw, "d1", firmwareVersion="1.0")
    assert gw.ok("GET", "/api/devices/d1/history")["items"] == []
    task = mk_task(gw, fw["id"])
    gw.ok("POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["d1"]})
    rec = records(gw, task["id"])[0]

    items = assert_list(gw.ok("GET", "/api/devices/d1/history"), total=1)
    h = items[0]
    assert HIST_KEYS <= set(h), "missing keys: %s" % (HIST_KEYS - set(h))
    assert (h["recordId"], h["taskId"], h["deviceId"], h["to"]) == \
        (rec["id"], task["id"], "d1", "waiting")
    assert h["from"] in ("", None)

    gw.ok("POST", "/api/tasks/%s/cancel" % task["id"], {})
    items = assert_list(gw.ok("GET", "/api/devices/d1/history"), total=2)
    assert (items[0]["from"], items[0]["to"]) == ("waiting", "canceled"), items
    assert items[1]["to"] == "waiting"
    assert items[0]["time"] >= items[1]["time"]
    assert items[0]["id"] != items[1]["id"]


def test_history_is_per_device(gw):
    fw = mk_fw(gw, version="2.0")
    mk_dev(gw, "d1", firmwareVersion="1.0")
    mk_dev(gw, "d2", firmwareVersion="1.0")
    task = mk_task(gw, fw["id"])
    gw.ok("POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["d2"]})
    assert gw.ok("GET", "/api/devices/d1/history")["total"] == 0
    items = gw.ok("GET", "/api/devices/d2/history")["items"]
    assert [h["deviceId"] for h in items] == ["d2"]
