# SPDX-License-Identifier: MIT
"""REST: /api/firmware - create, view, list, update, delete."""

import pytest

from otagw_it import MD5_A, SHA256_A, assert_error, assert_list, mk_dev, mk_fw, mk_task, now_ms

FW_KEYS = {"id", "productId", "name", "version", "versionOrder", "url", "size", "sign",
           "signMethod", "properties", "description", "createTime", "updateTime"}


def test_create_minimal_fills_every_field(gw):
    t0 = now_ms()
    st, fw, hd = gw.req("POST", "/api/firmware",
                        {"productId": "prodA", "name": "base", "version": "1.0.0"})
    assert st == 201, fw
    assert hd.get("Content-Type", "").startswith("application/json")
    assert FW_KEYS <= set(fw), "missing keys: %s" % (FW_KEYS - set(fw))
    assert isinstance(fw["id"], str) and 1 <= len(fw["id"]) <= 64
    assert (fw["productId"], fw["name"], fw["version"]) == ("prodA", "base", "1.0.0")
    assert isinstance(fw["versionOrder"], int)
    assert fw["url"] == "" and fw["size"] == 0 and fw["sign"] == ""
    assert fw["properties"] == {}
    assert isinstance(fw["createTime"], int) and isinstance(fw["updateTime"], int)
    assert t0 - 5000 <= fw["createTime"] <= now_ms() + 5000, "createTime is not ms now"
    assert fw["updateTime"] >= fw["createTime"]


def test_create_full_roundtrip_and_get(gw):
    body = {"id": "fw-A_1.2:x", "productId": "prodA", "name": "固件 A", "version": "1.2.0",
            "versionOrder": 120, "url": "https://example.com/fw/a-1.2.0.bin", "size": 524288,
            "sign": MD5_A.upper(), "signMethod": "MD5",
            "properties": {"hw": "A2", "n": 3, "nested": {"k": [1, 2]}},
            "description": "line1\nline2 \"quoted\""}
    fw = gw.ok("POST", "/api/firmware", body, expect=201)
    assert fw["id"] == "fw-A_1.2:x"
    assert fw["signMethod"] == "md5", "signMethod must be stored lower case"
    assert fw["sign"].lower() == MD5_A
    for k in ("productId", "name", "version", "versionOrder", "url", "size", "properties",
              "description"):
        assert fw[k] == body[k], k
    got = gw.ok("GET", "/api/firmware/fw-A_1.2:x")
    assert got == fw


@pytest.mark.parametrize("method,sign", [("sha256", SHA256_A), ("SHA256", SHA256_A),
                                         ("Md5", MD5_A)])
def test_sign_methods_case_insensitive(gw, method, sign):
    fw = mk_fw(gw, version="2.0", sign=sign, signMethod=method)
    assert fw["signMethod"] == method.lower()
    assert fw["sign"].lower() == sign


@pytest.mark.parametrize("url", ["", "http://10.0.0.1/a.bin", "https://h/x?y=1", "/images/a.bin"])
def test_url_forms_accepted(gw, url):
    assert mk_fw(gw, url=url)["url"] == url


@pytest.mark.parametrize("fid", ["a", "A" * 64, "x.y:z-w_v", "0"])
def test_id_forms_accepted(gw, fid):
    assert mk_fw(gw, id=fid)["id"] == fid
    assert gw.ok("GET", "/api/firmware/" + fid)["id"] == fid


@pytest.mark.parametrize("field,value", [
    ("id", ""), ("id", "A" * 65), ("id", "a/b"), ("id", "a b"), ("id", "../x"), ("id", "é"),
    ("url", "ftp://h/a.bin"), ("url", "file:///etc/passwd"), ("url", "images/a.bin"),
    ("url", "javascript:alert(1)"),
    ("size", -1),
    ("versionOrder", 1.5),
    ("properties", [1, 2]), ("properties", "x"),
    ("signMethod", "crc32"),
    ("productId", ""), ("productId", "a/b"),
])
def test_bad_field_values_400(gw, field, value):
    body = {"productId": "prodA", "name": "n", "version": "1.0"}
    body[field] = value
    if field == "signMethod":
        body["sign"] = MD5_A
    st, js, _ = gw.req("POST", "/api/firmware", body)
    assert_error(st, js, 400, field)
    assert gw.ok("GET", "/api/firmware")["total"] == 0


@pytest.mark.parametrize("sign,method", [
    (MD5_A[:-1], "md5"), (MD5_A + "0", "md5"), ("z" * 32, "md5"), (MD5_A, "sha256"),
    (SHA256_A, "md5"), (SHA256_A[:-1], "sha256"), ("g" + SHA256_A[1:], "sha256"),
])
def test_sign_must_match_method(gw, sign, method):
    st, js, _ = gw.req("POST", "/api/firmware", {"productId": "p", "name": "n", "version": "1",
                                                 "sign": sign, "signMethod": method})
    assert st == 400, js
    assert "sign" in js["error"], js
    assert gw.ok("GET", "/api/firmware")["total"] == 0


@pytest.mark.parametrize("missing", ["productId", "name", "version"])
def test_missing_required_400_names_field(gw, missing):
    body = {"productId": "prodA", "name": "n", "version": "1.0"}
    del body[missing]
    st, js, _ = gw.req("POST", "/api/firmware", body)
    assert_error(st, js, 400, missing)
    assert gw.ok("GET", "/api/firmware")["total"] == 0


def test_duplicates_409(gw):
    a = mk_fw(gw, productId="prodA", version="1.0", id="fwA")
    st, js, _ = gw.req("POST", "/api/firmware", {"productId": "prodA", "name": "again",
                                                 "version": "1.0"})
    assert_error(st, js, 409)
    st, js, _ = gw.req("POST", "/api/firmware", {"id": "fwA", "productId": "prodB",
                                                 "name": "other", "version": "9"})
    assert_error(st, js, 409)
    b = mk_fw(gw, productId="prodB", version="1.0")  # same version, other product: fine
    assert b["id"] != a["id"]
    assert gw.ok("GET", "/api/firmware")["total"] == 2
    assert gw.ok("GET", "/api/firmware/fwA") == a


def test_list_filter_and_paging(gw):
    ids = set()
    for i in range(5):
        ids.add(mk_fw(gw, productId="prodA", version="1.%d" % i, versionOrder=i)["id"])
    other = mk_fw(gw, productId="prodB", version="1.0")["id"]

    js = gw.ok("GET", "/api/firmware")
    items = assert_list(js, total=6, page=0, size=20)
    assert {f["id"] for f in items} == ids | {other}

    js = gw.ok("GET", "/api/firmware?productId=prodA")
    assert {f["id"] for f in assert_list(js, total=5)} == ids
    js = gw.ok("GET", "/api/firmware?productId=nobody")
    assert assert_list(js, total=0) == []

    seen = []
    for page in range(3):
        js = gw.ok("GET", "/api/firmware?productId=prodA&size=2&page=%d" % page)
        items = assert_list(js, total=5, page=page, size=2)
        assert len(items) == (2 if page < 2 else 1)
        seen += [f["id"] for f in items]
    assert sorted(seen) == sorted(ids), "pages overlap or miss items"
    js = gw.ok("GET", "/api/firmware?size=2&page=50")
    assert assert_list(js, total=6, page=50, size=2) == []
    assert assert_list(gw.ok("GET", "/api/firmware?size=1000"), total=6, size=1000)


@pytest.mark.parametrize("q", ["page=-1", "page=abc", "page=1.5", "size=1001", "size=-1",
                               "size=abc", "size=10x", "page=99999999999999999999999"])
def test_list_bad_paging_400(gw, q):
    mk_fw(gw)
    st, js, _ = gw.req("GET", "/api/firmware?" + q)
    assert_error(st, js, 400)


def test_get_unknown_404(gw):
    st, js, _ = gw.req("GET", "/api/firmware/nope")
    assert_error(st, js, 404)


def test_put_partial_update(gw):
    fw = mk_fw(gw, id="fw1", version="1.0", versionOrder=1, url="/a.bin", description="old",
               properties={"a": 1})
    st, new, _ = gw.req("PUT", "/api/firmware/fw1",
                        {"name": "renamed", "description": "new", "properties": {"b": 2}})
    assert st == 200, new
    assert new["name"] == "renamed" and new["description"] == "new"
    assert new["properties"] == {"b": 2}
    for k in ("id", "productId", "version", "versionOrder", "url", "size", "sign",
              "signMethod", "createTime"):
        assert new[k] == fw[k], k
    assert new["updateTime"] >= fw["updateTime"]
    assert gw.ok("GET", "/api/firmware/fw1") == new

    new2 = gw.ok("PUT", "/api/firmware/fw1", {"sign": SHA256_A, "signMethod": "SHA256",
                                             "size": 7, "versionOrder": 3})
    assert (new2["signMethod"], new2["size"], new2["versionOrder"]) == ("sha256", 7, 3)
    assert new2["name"] == "renamed"


def test_put_errors(gw):
    mk_fw(gw, id="fw1", version="1.0")
    fw2 = mk_fw(gw, id="fw2", version="2.0")
    st, js, _ = gw.req("PUT", "/api/firmware/fw2", {"version": "1.0"})
    assert_error(st, js, 409)
    st, js, _ = gw.req("PUT", "/api/firmware/nope", {"name": "x"})
    assert_error(st, js, 404)
    st, js, _ = gw.req("PUT", "/api/firmware/fw2", {"bogusField": 1})
    assert_error(st, js, 400, "bogusField")
    st, js, _ = gw.req("PUT", "/api/firmware/fw2", {"size": "big"})
    assert_error(st, js, 400, "size")
    st, js, _ = gw.req("PUT", "/api/firmware/fw2", {"url": "gopher://x"})
    assert_error(st, js, 400, "url")
    assert gw.ok("GET", "/api/firmware/fw2") == fw2, "a refused PUT changed the firmware"


def test_delete(gw):
    mk_fw(gw, id="fw1")
    keep = mk_fw(gw, id="fw2", version="2.0")
    st, js, hd = gw.req("DELETE", "/api/firmware/fw1")
    assert st == 204, js
    st, js, _ = gw.req("GET", "/api/firmware/fw1")
    assert_error(st, js, 404)
    st, js, _ = gw.req("DELETE", "/api/firmware/fw1")
    assert_error(st, js, 404)
    assert gw.ok("GET", "/api/firmware")["items"] == [keep]
    # the (productId, version) is free again
    assert mk_fw(gw, id="fw1b")["version"] == "1.0.0"


def test_delete_in_use_409_until_canceled(gw):
    mk_fw(gw, id="fw1", version="2.0")
    mk_dev(gw, "d1", firmwareVersion="1.0")
    task = mk_task(gw, "fw1")
    gw.ok("POST", "/api/tasks/%s/publish" % task["id"], {"deviceIds": ["d1"]})
    st, js, _ = gw.req("DELETE", "/api/firmware/fw1")
    assert_error(st, js, 409)
    assert gw.ok("GET", "/api/firmware/fw1")["id"] == "fw1"
    gw.ok("POST", "/api/tasks/%s/cancel" % task["id"], {})
    st, js, _ = gw.req("DELETE", "/api/firmware/fw1")
    assert st == 204, js
    st, js, _ = gw.req("GET", "/api/firmware/fw1")
    assert_error(st, js, 404)


def test_nul_in_string_not_truncated(gw):
    """"a\\u0000b" is valid JSON: refuse it or keep all of it, never store "a"."""
    st, js, _ = gw.req("POST", "/api/firmware", raw=b'{"productId":"p","version":"1",'
                                                     b'"name":"a\\u0000b"}')
    if st == 400:
        assert gw.ok("GET", "/api/firmware")["total"] == 0
    else:
        assert st == 201, js
        assert js["name"] == "a\u0000b", "name silently truncated to %r" % js["name"]
