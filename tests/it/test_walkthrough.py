# SPDX-License-Identifier: MIT
"""The README walkthrough, with the real curl: a firmware, two devices, a
pull task published to one selected device, its waiting record, cancel."""

import json

from conftest import TOKEN
from otagw_it import curl


def _curl(g, method, path, data=None, expect=200):
    """The README's own form: `curl -s -XPOST $API/... -d '{...}'` (no
    Content-Type header, so curl sends its form default; a bodiless POST for
    cancel)."""
    args = ["-X" + method]
    if g.token:
        args += ["-H", "Authorization: Bearer " + g.token]
    if data is not None:
        args += ["-d", json.dumps(data)]
    st, out, err, rc = curl(args + [g.url(path)])
    assert rc == 0, "curl -X%s %s failed (%d): %s" % (method, path, rc, err)
    assert st == expect, "curl -X%s %s %s -> %s %s" % (method, path, data, st, out)
    return json.loads(out) if out.strip() else None


def _walk(g):
    fw = _curl(g, "POST", "/api/firmware",
               {"productId": "sensor", "name": "sensor fw", "version": "2.0", "versionOrder": 2,
                "url": "http://files.example/sensor-2.0.bin", "size": 524288,
                "sign": "9e107d9d372bb6826bd81d3542a419d6", "signMethod": "md5"}, 201)
    assert fw["version"] == "2.0" and fw["productId"] == "sensor"

    for dev in ("s1", "s2"):
        d = _curl(g, "POST", "/api/devices",
                  {"id": dev, "productId": "sensor", "firmwareVersion": "1.0"}, 201)
        assert d["id"] == dev
    devs = _curl(g, "GET", "/api/devices?productId=sensor")
    assert devs["total"] == 2

    task = _curl(g, "POST", "/api/firmware/%s/tasks" % fw["id"],
                 {"name": "roll out 2.0", "mode": "pull", "timeoutSeconds": 600}, 201)
    assert task["state"] == "created" and task["firmwareId"] == fw["id"]

    res = _curl(g, "POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["s1"]})
    assert res["added"] == 1 and res["task"]["state"] == "published"

    recs = _curl(g, "GET", "/api/tasks/%s/records?state=waiting" % task["id"])
    assert recs["total"] == 1
    r = recs["items"][0]
    assert (r["deviceId"], r["state"], r["version"], r["progress"], r["timeoutSeconds"]) == \
        ("s1", "waiting", "2.0", 0, 600)
    t = _curl(g, "GET", "/api/tasks/" + task["id"])
    assert (t["counts"]["waiting"], t["counts"]["total"]) == (1, 1)

    res = _curl(g, "POST", "/api/tasks/%s/cancel" % task["id"])
    assert res["canceled"] == 1 and res["task"]["state"] == "canceled"
    recs = _curl(g, "GET", "/api/tasks/%s/records" % task["id"])
    assert [(x["deviceId"], x["state"]) for x in recs["items"]] == [("s1", "canceled")]
    assert _curl(g, "GET", "/api/tasks/%s/records?state=waiting" % task["id"])["total"] == 0
    t = _curl(g, "GET", "/api/tasks/" + task["id"])
    assert t["state"] == "canceled" and t["counts"]["canceled"] == 1

    hist = _curl(g, "GET", "/api/devices/s1/history")
    assert [h["to"] for h in hist["items"]] == ["canceled", "waiting"]
    assert _curl(g, "GET", "/api/devices/s2/history")["total"] == 0


def test_walkthrough(gw):
    _walk(gw)


def test_walkthrough_with_token(gw_token):
    assert gw_token.token == TOKEN
    _walk(gw_token)
