# SPDX-License-Identifier: MIT
"""The README walkthrough, with the real curl: a firmware, two devices, a
pull task published to one selected device, its waiting record, cancel."""

import json

from conftest import TOKEN


def _curl(g, method, path, data=None, expect=200):
    st, out, err, rc = g.curl(method, path, None if data is None else json.dumps(data))
    assert rc == 0, "curl -X %s %s failed (%d): %s" % (method, path, rc, err)
    assert st == expect, "curl -X %s %s %s -> %s %s" % (method, path, data, st, out)
    return json.loads(out) if out.strip() else None


def _walk(g):
    fw = _curl(g, "POST", "/api/firmware",
               {"productId": "pump", "name": "pump firmware", "version": "1.1.0",
                "versionOrder": 110, "url": "/images/pump-1.1.0.bin", "size": 524288,
                "sign": "9e107d9d372bb6826bd81d3542a419d6", "signMethod": "md5"}, 201)
    assert fw["version"] == "1.1.0" and fw["productId"] == "pump"

    for dev in ("pump-1", "pump-2"):
        d = _curl(g, "POST", "/api/devices",
                  {"id": dev, "productId": "pump", "firmwareVersion": "1.0.0"}, 201)
        assert d["id"] == dev
    devs = _curl(g, "GET", "/api/devices?productId=pump")
    assert devs["total"] == 2

    task = _curl(g, "POST", "/api/firmware/%s/tasks" % fw["id"],
                 {"name": "first wave", "mode": "pull", "timeoutSeconds": 3600}, 201)
    assert task["state"] == "created" and task["firmwareId"] == fw["id"]

    res = _curl(g, "POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["pump-1"]})
    assert res["added"] == 1 and res["task"]["state"] == "published"

    recs = _curl(g, "GET", "/api/tasks/%s/records?state=waiting" % task["id"])
    assert recs["total"] == 1
    r = recs["items"][0]
    assert (r["deviceId"], r["state"], r["version"], r["progress"]) == \
        ("pump-1", "waiting", "1.1.0", 0)
    t = _curl(g, "GET", "/api/tasks/" + task["id"])
    assert (t["counts"]["waiting"], t["counts"]["total"]) == (1, 1)

    res = _curl(g, "POST", "/api/tasks/%s/cancel" % task["id"], {})
    assert res["canceled"] == 1 and res["task"]["state"] == "canceled"
    recs = _curl(g, "GET", "/api/tasks/%s/records" % task["id"])
    assert [(x["deviceId"], x["state"]) for x in recs["items"]] == [("pump-1", "canceled")]
    assert _curl(g, "GET", "/api/tasks/%s/records?state=waiting" % task["id"])["total"] == 0
    t = _curl(g, "GET", "/api/tasks/" + task["id"])
    assert t["state"] == "canceled" and t["counts"]["canceled"] == 1

    hist = _curl(g, "GET", "/api/devices/pump-1/history")
    assert [h["to"] for h in hist["items"]] == ["canceled", "waiting"]
    assert _curl(g, "GET", "/api/devices/pump-2/history")["total"] == 0


def test_walkthrough(gw):
    _walk(gw)


def test_walkthrough_with_token(gw_token):
    assert gw_token.token == TOKEN
    _walk(gw_token)
