# SPDX-License-Identifier: MIT
"""Hostile and malformed input on the REST API. Each test seeds a store,
throws bad requests at the daemon, and checks that nothing changed and the
daemon still answers."""

import json
import os

import pytest

from otagw_it import NO_ANSWER, assert_error, curl, mk_dev, mk_fw, mk_task

FW_OK = {"productId": "prodA", "name": "n", "version": "9.9"}
BODY_MAX = 1024 * 1024
HEADER_MAX = 8192


@pytest.fixture
def seeded(gw):
    mk_fw(gw, id="fw1", version="2.0")
    mk_dev(gw, "d1", firmwareVersion="1.0")
    t = mk_task(gw, "fw1")
    gw.ok("POST", "/api/tasks/%s/publish" % t["id"], {"deviceIds": ["d1"]})
    gw.task_id = t["id"]
    return gw.snapshot()


def intact(gw, before):
    assert gw.ok("GET", "/api/health")["status"] == "ok", "daemon not healthy"
    assert gw.snapshot() == before, "the store changed"


MALFORMED = [
    b"", b" ", b"{", b"}", b"{]", b"nul", b"null", b"true", b"123", b'"str"', b"[]",
    b'[{"productId":"p","name":"n","version":"1"}]',
    b'{"productId":"p","name":"n","version":"1"',
    b'{"productId":"p","name":"n","version":"1",}',
    b'{"productId":"p","name":"n","version":"1"}{"x":1}',
    b'{"productId":"p","name":"n","version":"1"} garbage',
    b"{'productId':'p','name':'n','version':'1'}",
    b'{productId:"p",name:"n",version:"1"}',
    b'{"productId":"p","name":"n","version":"1\x00"}',
    b'{"productId":"p","name":"n\x01","version":"1"}',
    b'{"productId":"p","name":"\xff\xfe","version":"1"}',
    b'{"productId":"p","name":"\xc0\xaf","version":"1"}',
    b'{"productId":"p","name":"\\ud800","version":"1"}',
    b'{"productId":"p","name":"n","version":"1","size":01}',
    b'{"productId":"p","name":"n","version":"1","size":1e}',
    b'{"productId":"p","name":"n","version":"1","size":NaN}',
    b'{"productId":"p","name":"n","version":"1","size":Infinity}',
    b'{"productId":"p","name":"n","version":"1","properties":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"productId":"p","name":"n","version":"1","properties":' + b'{"a":' * 5000 + b"1" +
    b"}" * 5001,
    b'\xef\xbb\xbf{"productId":"p","name":"n","version":"1"',
    b'{"productId":"p","name":"n","version":"1"}' + b"\x00" + b"{",
]


@pytest.mark.parametrize("raw", MALFORMED, ids=["json%d" % i for i in range(len(MALFORMED))])
def test_malformed_json_firmware(gw, seeded, raw):
    st, js, _ = gw.req("POST", "/api/firmware", raw=raw)
    assert_error(st, js, 400)
    intact(gw, seeded)


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/devices"), ("PUT", "/api/firmware/fw1"), ("POST", "/api/firmware/fw1/tasks"),
    ("POST", "/api/tasks/{task}/publish")])
@pytest.mark.parametrize("raw", [b"{", b"[1,", b'{"id":}', b"\xff", b'{"a":1}x'])
def test_malformed_json_everywhere(gw, seeded, method, path, raw):
    st, js, _ = gw.req(method, path.replace("{task}", gw.task_id), raw=raw)
    assert_error(st, js, 400)
    intact(gw, seeded)


WRONG_TYPES = [
    ("productId", 1), ("productId", None), ("productId", ["p"]), ("productId", {"a": 1}),
    ("name", 1), ("name", None), ("name", True),
    ("version", 1.0), ("version", []),
    ("versionOrder", "1"), ("versionOrder", 1.5), ("versionOrder", True), ("versionOrder", None),
    ("versionOrder", 1e300), ("versionOrder", 9223372036854775808),
    ("url", 5), ("url", ["http://x"]),
    ("size", "10"), ("size", -1), ("size", 1.5), ("size", False), ("size", 1e30),
    ("size", 18446744073709551616),
    ("sign", 1234), ("signMethod", 5),
    ("properties", "x"), ("properties", [1]), ("properties", 1),
    ("description", 1), ("description", {"a": "b"}),
    ("id", 5), ("id", True),
]


@pytest.mark.parametrize("field,value", WRONG_TYPES,
                         ids=["%s-%s" % (f, type(v).__name__) for f, v in WRONG_TYPES])
def test_wrong_types_firmware(gw, seeded, field, value):
    body = dict(FW_OK)
    body[field] = value
    st, js, _ = gw.req("POST", "/api/firmware", body)
    assert_error(st, js, 400, field)
    st, js, _ = gw.req("PUT", "/api/firmware/fw1", {field: value})
    if field == "id":
        assert st == 400, js
    else:
        assert_error(st, js, 400, field)
    intact(gw, seeded)


@pytest.mark.parametrize("method,path,body,field", [
    ("POST", "/api/firmware", dict(FW_OK, productID="x"), "productID"),
    ("POST", "/api/firmware", dict(FW_OK, parameters={}), "parameters"),
    ("POST", "/api/firmware", dict(FW_OK, createTime=1), "createTime"),
    ("POST", "/api/firmware", dict(FW_OK, **{"": 1}), None),
    ("PUT", "/api/firmware/fw1", {"name": "x", "evil": True}, "evil"),
    ("PUT", "/api/firmware/fw1", {"updateTime": 5}, "updateTime"),
    ("POST", "/api/devices", {"id": "d9", "productId": "prodA", "firmware": "1"}, "firmware"),
    ("POST", "/api/firmware/fw1/tasks", {"name": "t", "mode": "pull", "devices": []}, "devices"),
    ("POST", "/api/tasks/{task}/publish", {"all": True, "force": True}, "force"),
])
def test_unknown_fields_400(gw, seeded, method, path, body, field):
    st, js, _ = gw.req(method, path.replace("{task}", gw.task_id), body)
    if field:
        assert_error(st, js, 400, field)
    else:
        assert_error(st, js, 400)
    intact(gw, seeded)


def test_oversized_string_fields(gw, seeded):
    for field, n in (("name", 200000), ("version", 1000), ("url", 4000), ("description", 100000),
                     ("productId", 65), ("sign", 300)):
        body = dict(FW_OK)
        body[field] = ("/" if field == "url" else "") + "a" * n
        st, js, _ = gw.req("POST", "/api/firmware", body)
        assert_error(st, js, 400, field)
    st, js, _ = gw.req("POST", "/api/firmware",
                       dict(FW_OK, properties={"k%d" % i: "v" * 100 for i in range(2000)}))
    assert_error(st, js, 400, "properties")
    intact(gw, seeded)


# -- body size ------------------------------------------------------------------

def _big_body(n):
    """A firmware body of exactly n bytes (valid JSON apart from its size)."""
    head = json.dumps({"productId": "prodA", "name": "big", "version": "7",
                       "description": ""}).encode()
    body = head[:-2] + b"x" * (n - len(head)) + head[-2:]
    assert len(body) == n
    return body


@pytest.mark.parametrize("expect_hdr", ["default", "no-expect"])
def test_oversized_body_curl_413(gw, seeded, tmp_path, expect_hdr):
    path = tmp_path / "big.json"
    path.write_bytes(_big_body(2 * BODY_MAX))
    extra = ["-H", "Expect:"] if expect_hdr == "no-expect" else []
    st, out, err, rc = curl(["-X", "POST", "-H", "Content-Type: application/json"] + extra +
                            ["--data-binary", "@" + str(path), gw.url("/api/firmware")])
    assert st == 413, "curl: status %s rc %d out %r err %r" % (st, rc, out[:200], err)
    assert json.loads(out).get("error"), out
    intact(gw, seeded)


def test_oversized_body_by_content_length_413(gw, seeded):
    body = _big_body(BODY_MAX + 1)
    assert len(body) > BODY_MAX
    head = ("POST /api/firmware HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)).encode()
    st, resp = gw.raw(head + body)
    assert st == 413, resp[:300]
    intact(gw, seeded)


def test_oversized_body_chunked_refused(gw, seeded):
    body = _big_body(2 * BODY_MAX)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                      for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
    head = (b"POST /api/firmware HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
    st, resp = gw.raw(head + chunks)
    assert st != NO_ANSWER, "no answer in 5 s and the connection left open"
    assert st is None or 400 <= st < 500, resp[:300]
    intact(gw, seeded)


def test_body_under_cap_is_read_whole(gw, seeded):
    """A valid body near the cap (padding in properties is refused by the
    properties cap, so whitespace pads it): parsed, not truncated."""
    body = json.dumps(dict(FW_OK, id="fwbig")).encode()
    body = body[:-1] + b" " * (BODY_MAX - len(body) - 100) + b"}"
    st, js, _ = gw.req("POST", "/api/firmware", raw=body)
    assert st == 201, js
    assert gw.ok("GET", "/api/firmware/fwbig")["version"] == "9.9"


@pytest.mark.parametrize("cl", [b"-1", b"abc", b"1e3", b"18446744073709551617",
                                b"99999999999999999999999999", b"10, 20", b" "])
def test_bad_content_length(gw, seeded, cl):
    body = json.dumps(FW_OK).encode()
    req = (b"POST /api/firmware HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: " + cl + b"\r\n\r\n" + body)
    st, resp = gw.raw(req, timeout=3)
    assert st is None or 400 <= st < 500, resp[:300]
    intact(gw, seeded)


def test_short_body_then_close(gw, seeded):
    req = (b"POST /api/firmware HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: 500\r\n\r\n" + json.dumps(FW_OK).encode())
    import socket
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=2)
    s.sendall(req)
    s.close()
    intact(gw, seeded)


# -- headers --------------------------------------------------------------------

def _post_with_headers(gw, extra_headers):
    body = json.dumps(FW_OK).encode()
    head = (b"POST /api/firmware HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers +
            b"Content-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    return gw.raw(head + body)


@pytest.mark.parametrize("kind", ["one-huge", "many", "huge-url"])
def test_huge_headers_refused(gw, seeded, kind):
    if kind == "one-huge":
        extra = b"X-Big: " + b"a" * (HEADER_MAX + 100) + b"\r\n"
    elif kind == "many":
        extra = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(300))
    else:
        extra = b""
    if kind == "huge-url":
        body = json.dumps(FW_OK).encode()
        req = (b"POST /api/firmware?x=" + b"a" * (HEADER_MAX + 100) + b" HTTP/1.1\r\n"
               b"Host: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        st, resp = gw.raw(req)
        assert st is None or st in (414, 431, 400), resp[:300]
    else:
        st, resp = _post_with_headers(gw, extra)
        assert st is None or st == 431, "status %s: %r" % (st, resp[:300])
    assert st is None or not 200 <= st < 300
    intact(gw, seeded)


def test_headers_under_cap_accepted(gw, seeded):
    st, resp = _post_with_headers(gw, b"X-Pad: " + b"a" * 5000 + b"\r\n")
    assert st == 201, resp[:300]
    assert gw.ok("GET", "/api/firmware?productId=prodA")["total"] == 2


# -- unknown ids, paths, methods ---------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("GET", "/api/firmware/nope"), ("PUT", "/api/firmware/nope"),
    ("DELETE", "/api/firmware/nope"), ("POST", "/api/firmware/nope/tasks"),
    ("GET", "/api/devices/nope"), ("DELETE", "/api/devices/nope"),
    ("GET", "/api/devices/nope/history"),
    ("GET", "/api/tasks/nope"), ("POST", "/api/tasks/nope/publish"),
    ("POST", "/api/tasks/nope/cancel"), ("GET", "/api/tasks/nope/records"),
])
def test_unknown_ids_404(gw, seeded, method, path):
    body = {"all": True} if path.endswith("publish") else \
        {"name": "t", "mode": "pull"} if path.endswith("tasks") else \
        {"name": "x"} if method == "PUT" else None
    st, js, _ = gw.req(method, path, body)
    assert_error(st, js, 404)
    intact(gw, seeded)


UNKNOWN_PATHS = ["/api/", "/api/nope", "/api/firmware/fw1/nope", "/api/firmware/fw1/tasks/x/y",
                 "/api/devices/d1/history/x", "/api/tasks/x/y/z", "/api/healthz",
                 "/api/firmware/%2e%2e%2f%2e%2e%2fetc", "/api/firmware/" + "a" * 3000]


@pytest.mark.parametrize("path", UNKNOWN_PATHS, ids=[p[:40] for p in UNKNOWN_PATHS])
def test_unknown_paths(gw, seeded, path):
    st, js, _ = gw.req("GET", path)
    assert st in (400, 404, 414), (path, st, js)
    assert_error(st, js, st)
    intact(gw, seeded)


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/api/firmware"), ("PUT", "/api/firmware"), ("PATCH", "/api/firmware/fw1"),
    ("POST", "/api/firmware/fw1"), ("GET", "/api/tasks/{task}/publish"),
    ("GET", "/api/tasks/{task}/cancel"), ("DELETE", "/api/tasks/{task}/records"),
    ("PUT", "/api/devices"), ("POST", "/api/health"), ("DELETE", "/api/health"),
    ("POST", "/api/devices/d1/history"), ("POST", "/api/tasks"),
])
def test_wrong_method_405(gw, seeded, method, path):
    st, js, _ = gw.req(method, path.replace("{task}", gw.task_id), raw=b"{}")
    assert_error(st, js, 405)
    intact(gw, seeded)


@pytest.mark.parametrize("line", [
    b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /api/health HTTP/9.9\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + os.urandom(64),
    b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + b"\x00" * 100 + b"\r\n\r\n",
    b"POST /api/firmware HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n{}{}{",
    b"POST /api/firmware HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\nTransfer-Encoding: chunked"
    b"\r\n\r\n0\r\n\r\n" + json.dumps(FW_OK).encode(),
])
def test_garbage_requests(gw, seeded, line):
    st, resp = gw.raw(line, timeout=3)
    assert st is None or st == NO_ANSWER or not 200 <= st < 300 or line.startswith(b"GET /api/health"), resp[:300]
    intact(gw, seeded)


# -- requests without a body ----------------------------------------------------

BODILESS = [
    # method, path, status when sent with no body at all
    ("POST", "/api/tasks/{task}/cancel", 200),
    ("POST", "/api/tasks/nope/cancel", 404),
    ("POST", "/api/firmware", 400),
    ("POST", "/api/devices", 400),
    ("PUT", "/api/firmware/fw1", 400),
    ("PUT", "/api/devices", 405),
    ("PATCH", "/api/firmware/fw1", 405),
    ("POST", "/api/tasks/{task}/publish", 400),
]


@pytest.mark.parametrize("how", ["curl", "no-length", "length-0"])
@pytest.mark.parametrize("method,path,expect", BODILESS,
                         ids=["%s %s" % (m, p) for m, p, _ in BODILESS])
def test_bodiless_requests_answered(gw, seeded, how, method, path, expect):
    """`curl -X POST URL` sends no body and no Content-Length: the daemon must
    answer at once, not wait for a body that never comes."""
    path = path.replace("{task}", gw.task_id)
    if how == "curl":
        st, out, err, rc = curl(["--max-time", "3", "-X", method, gw.url(path)])
        assert rc == 0 and st == expect, "curl -X %s %s: rc %d status %s %r %s" % (
            method, path, rc, st, out[:200], err)
        assert json.loads(out).get("error") if expect >= 400 else json.loads(out)
    else:
        length = b"Content-Length: 0\r\n" if how == "length-0" else b""
        req = (b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n"
               % (method.encode(), path.encode(), length))
        st, resp = gw.raw(req, timeout=3)
        assert st == expect, "%s %s (%s): %r" % (method, path, how, resp[:300])
    if expect == 200:
        assert gw.ok("GET", "/api/tasks/" + gw.task_id)["state"] == "canceled"
    else:
        intact(gw, seeded)


def test_chunked_body_answered(gw, seeded, tmp_path):
    """curl sends a chunked body when asked to; the daemon must either read it
    (201) or refuse it at once (400/411/501), never leave the client hanging."""
    path = tmp_path / "fw.json"
    path.write_text(json.dumps(dict(FW_OK, id="fwchunk")))
    st, out, err, rc = curl(["--max-time", "3", "-X", "POST", "-H", "Content-Type: application/json",
                             "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + str(path),
                             gw.url("/api/firmware")])
    assert rc == 0, "curl rc %d (28 = no answer in 3 s): %s" % (rc, err)
    assert st in (201, 400, 411, 501), (st, out)
    st2, js, _ = gw.req("GET", "/api/firmware/fwchunk")
    if st == 201:
        assert st2 == 200 and js["version"] == "9.9"
    else:
        intact(gw, seeded)


def test_stalled_request_dropped(gw, seeded):
    """A client that sends half a request and goes quiet is dropped by the
    daemon's own timeout (bounded here at 15 s), while others are served."""
    import socket
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=2)
    try:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        assert gw.ok("GET", "/api/health")["status"] == "ok", "one stalled client blocks others"
        s.settimeout(15)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            pytest.fail("a stalled request was kept open for over 15 s")
        assert not data.startswith(b"HTTP/1.1 2"), data[:100]
    finally:
        s.close()
    intact(gw, seeded)
