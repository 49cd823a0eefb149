# SPDX-License-Identifier: MIT
"""Hostile input on the TCP device transport: oversized lines and frames,
bad CRCs, invalid UTF-8 and JSON, garbage, a byte-at-a-time sender, a
client that never reads, connection floods and abrupt disconnects. After
each, a well-behaved device still completes report -> pull -> fetch ->
success, GET /api/health is ok, and (conftest) the daemon exits 0 with no
sanitizer report."""

import json
import os
import socket
import struct
import time
import zlib

import pytest

from test_tcp import (CODECS, assert_closed_with, full_flow, get_dev, make_fw,  # noqa: F401
                      publish, record_of, sessions, tcpgw, wait_online, wait_until)

import devsim  # noqa: E402
from otagw_it import mk_dev  # noqa: E402

MAX_FRAME = 65536          # [tcp] max_frame default


def flood(sock, data, timeout):
    """sendall() that tolerates the peer closing. True if everything went
    out; False if the peer closed/reset first. Fails if the daemon neither
    reads nor closes within timeout."""
    sock.settimeout(timeout)
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False
    except socket.timeout:
        raise AssertionError("the daemon stopped reading %d bytes without closing the "
                             "connection within %.0f s" % (len(data), timeout)) from None


def report_line(device_id, pad=0):
    m = devsim.msg_report(device_id, "1.0.0")
    if pad:
        m["pad"] = "a" * pad            # unknown keys are ignored
    return m


def check_after(g, tmp_path, name):
    full_flow(g, tmp_path, "good-" + name)
    h = g.ok("GET", "/api/health")
    assert h["status"] == "ok", h


# -- size limits ---------------------------------------------------------------

def test_10mib_line(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    d = g.device("h10", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "h10", True)
    head = b'{"messageType":"REPORT_FIRMWARE","deviceId":"h10","version":"'
    flood(d.sock, head + b"x" * (10 * 1024 * 1024) + b'"}\n', timeout=20)
    assert d.wait_closed(5.0), "a 10 MiB line did not close the connection"
    errs = d.errors()
    # The daemon closes with our bytes unread, so the ERROR may be lost to
    # the reset; when something arrived it must be the too_large error.
    assert all(e.get("code") == "too_large" for e in errs), errs
    assert [m for m in d.received if m.get("messageType") != "ERROR"] == [], d.received
    wait_online(g, "h10", False)
    assert get_dev(g, "h10")["firmwareVersion"] == "1.0.0"
    check_after(g, tmp_path, "10mib")


@pytest.mark.parametrize("codec", CODECS)
def test_just_over_max_frame(tcpgw, tmp_path, codec):
    """max_frame + 1 bytes (a line without its newline, or a frame header
    announcing that payload): ERROR too_large, then the gateway closes."""
    g = tcpgw(codec)
    d = g.device("hmax", product_id="p1")
    d.report("1.0.0")
    assert d.pull()["code"] == "not_found"
    if codec == "jsonline":
        d.send_raw(b"{" + b" " * MAX_FRAME)
    else:
        d.send_raw(devsim.frame_header(MAX_FRAME + 1, 0))
    assert_closed_with(d, "too_large")
    check_after(g, tmp_path, "max")


@pytest.mark.parametrize("codec", CODECS)
def test_max_frame_boundary(tcpgw, tmp_path, codec):
    """A line of exactly max_frame bytes ("\\n" included) or a frame of
    exactly max_frame bytes (header included) is accepted (PROTOCOL.md 2,
    3.3); one byte more is too_large."""
    g = tcpgw(codec)
    d = g.device("hbig", product_id="p1")

    def sized(msg, total):
        """msg with an unknown "pad" key so that its wire form is total bytes."""
        msg = dict(msg, pad="")
        msg["pad"] = "a" * (total - len(devsim.encode(codec, msg)))
        wire = devsim.encode(codec, msg)
        assert len(wire) == total, len(wire)
        return wire

    d.send_raw(sized(d._with_headers(report_line("hbig")), MAX_FRAME))
    d.sent_first = True
    assert d.pull()["code"] == "not_found"
    assert get_dev(g, "hbig")["firmwareVersion"] == "1.0.0"
    assert not d.errors(), d.errors()
    d.send_raw(sized(report_line("hbig"), MAX_FRAME + 1))
    assert_closed_with(d, "too_large")
    check_after(g, tmp_path, "boundary")


def test_frame_header_4gib(tcpgw, tmp_path):
    g = tcpgw("frame")
    d = g.device("h4g", product_id="p1")
    d.report("1.0.0")
    wait_online(g, "h4g", True)
    d.send_raw(devsim.frame_header(0xFFFFFFFF, 0x12345678))
    assert_closed_with(d, "too_large")
    # also as the very first bytes of a connection
    x = g.device("h4g-b")
    x.send_raw(devsim.frame_header(0xFFFFFFFF, 0) + b"\x00" * 1000)
    assert_closed_with(x, "too_large")
    check_after(g, tmp_path, "4gib")


# -- undecodable input ---------------------------------------------------------

def test_bad_crc(tcpgw, tmp_path):
    """A bad CRC is bad_message. As the first message (nothing identified
    the device yet) the connection closes (PROTOCOL.md 6.5); later it goes
    on with the next frame."""
    g = tcpgw("frame")
    d = g.device("hcrc", product_id="p1")
    good = devsim.encode("frame", d._with_headers(report_line("hcrc")))
    bad = bytearray(good)
    bad[12:16] = struct.pack(">I", (zlib.crc32(good[16:]) ^ 0xDEADBEEF) & 0xFFFFFFFF)
    d.send_raw(bytes(bad))                 # as the first message
    assert_closed_with(d, "bad_message")
    assert get_dev(g, "hcrc") is None, "a message with a bad CRC was acted on"
    d.connect()
    d.send_raw(good)
    assert d.pull()["code"] == "not_found"
    assert get_dev(g, "hcrc")["firmwareVersion"] == "1.0.0"
    d.send_raw(bytes(bad))                 # identified now: the connection survives
    err = d.wait_for("ERROR")
    assert err["code"] == "bad_message", err
    assert d.pull()["code"] == "not_found"
    # a flipped payload byte under a correct-looking length
    pull = bytearray(devsim.encode("frame", devsim.msg_pull("hcrc", "q-bad")))
    pull[20] ^= 0x01
    d.send_raw(bytes(pull))
    err = d.wait_for("ERROR")
    assert err["code"] == "bad_message", err
    assert d.pull()["code"] == "not_found"
    assert not d.closed
    check_after(g, tmp_path, "crc")


@pytest.mark.parametrize("codec", CODECS)
def test_bad_first_message_closes(tcpgw, tmp_path, codec):
    """Until a valid message identified the device, one bad_message closes
    the connection (PROTOCOL.md 6.5)."""
    g = tcpgw(codec)
    for i, raw in enumerate([b"{nope", b"\xff\xfe", b"[]",
                             b'{"messageType":"REPORT_FIRMWARE","version":"1"}',
                             b'{"messageType":"NO_SUCH_TYPE","deviceId":"hf"}']):
        x = g.device("hf%d" % i, product_id="p1")
        x.send_raw(_payload(codec, raw))
        assert_closed_with(x, "bad_message")
    assert g.ok("GET", "/api/devices")["total"] == 0
    check_after(g, tmp_path, "first")


BAD_PAYLOADS = [
    b"\xff\xfe\xfd",
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"\xc0\xaf"}',
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"\xed\xa0\x80"}',
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"1"',
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"1",}',
    b"{'messageType':'REPORT_FIRMWARE'}",
    b"[]",
    b"null",
    b'"REPORT_FIRMWARE"',
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"1"} trailing',
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"1\x00x"}',
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"1","properties":'
    + b"[" * 20000 + b"]" * 20000 + b"}",
    b'{"messageType":"REPORT_FIRMWARE","deviceId":"hb","version":"1","pad":'
    + b'{"a":' * 10000 + b"1" + b"}" * 10001,
]


def _payload(codec, raw):
    return raw + b"\n" if codec == "jsonline" else devsim.encode_frame(raw)


@pytest.mark.parametrize("codec", CODECS)
def test_invalid_utf8_and_json(tcpgw, tmp_path, codec):
    """Each undecodable message: ERROR bad_message, nothing stored, the
    connection survives up to 4 of them; the 5th closes it."""
    g = tcpgw(codec)
    d = g.device("hb", product_id="p1")
    d.report("0.1")
    assert d.pull()["code"] == "not_found"
    for i, raw in enumerate(BAD_PAYLOADS):
        if i and i % 4 == 0:               # stay under the limit of 5
            d.close()
            d.connect()
            d.report("0.1")
            assert d.pull()["code"] == "not_found"
        d.send_raw(_payload(codec, raw))
        err = d.wait_for("ERROR", timeout=5)
        assert err["code"] == "bad_message", (raw[:80], err)
        assert d.pull()["code"] == "not_found", "connection unusable after %r" % raw[:80]
    assert get_dev(g, "hb")["firmwareVersion"] == "0.1", "a bad message changed the store"
    # five in a row close the connection
    x = g.device("hb5", product_id="p1")
    x.report("0.1")
    x.send_raw(b"".join(_payload(codec, b"{nope") for _ in range(5)))
    assert_closed_with(x, "bad_message")
    assert len(x.errors()) <= 5
    check_after(g, tmp_path, "utf8")


def test_frame_garbage(tcpgw, tmp_path):
    g = tcpgw("frame")
    for i, junk in enumerate([os.urandom(4096),
                              b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                              devsim.frame_header(10, 0, version=7) + b"x" * 10,
                              devsim.frame_header(10, 0, magic=b"GO") + b"x" * 10]):
        if junk[:2] == devsim.FRAME_MAGIC and junk[2] == devsim.FRAME_VERSION:
            junk = b"\x00" + junk
        d = g.device("hg%d" % i, product_id="p1")
        d.report("1.0.0")
        assert d.pull()["code"] == "not_found"
        d.send_raw(junk)
        assert d.wait_closed(3.0), "garbage %r did not close the connection" % junk[:20]
        assert all(e.get("code") == "bad_message" for e in d.errors()), d.errors()
        wait_online(g, "hg%d" % i, False)
    # garbage before anything else
    x = g.device("hgx")
    x.send_raw(os.urandom(100))
    assert x.wait_closed(3.0)
    check_after(g, tmp_path, "garbage")


def test_jsonline_garbage(tcpgw, tmp_path):
    g = tcpgw("jsonline")
    x = g.device("hj")
    x.send_raw(os.urandom(3000).replace(b"\n", b"") + b"\n" +
               b"\n".join(os.urandom(200).replace(b"\n", b"") for _ in range(10)) + b"\n")
    assert x.wait_closed(3.0), "10 lines of garbage did not close the connection"
    assert x.errors() and all(e.get("code") == "bad_message" for e in x.errors()), x.received
    check_after(g, tmp_path, "jgarbage")


@pytest.mark.parametrize("codec", CODECS)
def test_odd_fields(tcpgw, tmp_path, codec):
    """Out-of-range numbers and wrong types in an otherwise valid message:
    an ERROR or a failed reply, never a crash; the connection survives."""
    g = tcpgw(codec)
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=8192)
    d = g.device("ho", product_id="p1")
    d.report("1.0.0")
    publish(g, fw["id"], "pull", ["ho"])
    assert d.pull()["success"] is True
    bad = [("offset", -1), ("offset", 1e30), ("offset", "12"), ("offset", None),
           ("length", -1), ("length", 2 ** 40), ("length", 1.5), ("firmwareId", 7),
           ("firmwareId", "x" * 300), ("messageId", "m" * 1000)]
    for i, (k, v) in enumerate(bad):
        m = devsim.msg_chunk("ho", "odd%d" % i, fw["id"], 0, 16)
        m[k] = v
        d.send(m)
        got = None
        deadline = time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            got = d.recv(timeout=max(0.1, deadline - time.monotonic()))
        assert got is not None, "no answer to %s = %r" % (k, v)
        if got["messageType"] == "REQUEST_FIRMWARE_CHUNK_REPLY":
            assert got["success"] is False or (k == "length" and 0 < got["length"] <= 4096), \
                (k, v, got)
        else:
            assert got["messageType"] == "ERROR" and got["code"] in ("bad_message", "refused"), \
                (k, v, got)
        assert d.pull()["success"] is True, "connection unusable after %s = %r" % (k, v)
        if i % 3 == 2:
            d.close()                      # stay clear of the bad_message limit
            d.connect()
            d.report("1.0.0")              # identify first: an unidentified bad message closes
    for dev_id in ("x" * 65, "a/b", "", "a b"):
        x = g.device(dev_id, product_id="p1")
        x.report("1.0.0")
        err = x.wait_for("ERROR", timeout=5)
        assert err["code"] in ("bad_message", "unknown_device"), (dev_id, err)
        assert x.wait_closed(3.0), "a first message with deviceId %r left the connection " \
            "open" % dev_id
        x.close()
    assert g.ok("GET", "/api/devices?size=1000")["total"] == 1
    check_after(g, tmp_path, "odd")


# -- slow and stalled peers --------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_byte_at_a_time(tcpgw, tmp_path, codec):
    g = tcpgw(codec)
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=3 * 4096 + 10)
    d = g.device("slow", product_id="p1", byte_delay=0.001)
    d.report("1.0.0")
    task, _ = publish(g, fw["id"], "pull", ["slow"])
    rep = d.pull(timeout=20)
    assert rep["success"] is True, rep
    got = d.fetch_image(fw["id"], fw["size"], chunk=4096, timeout=20)
    assert got == image
    d.progress("2.0.0", fw["id"], 100, complete=True, success=True)
    wait_until(lambda: record_of(g, task["id"], "slow")["state"] == "success", "success", 20)
    assert not d.errors(), d.errors()
    check_after(g, tmp_path, "bytewise")


@pytest.mark.parametrize("codec", CODECS)
def test_client_that_never_reads(tcpgw, tmp_path, codec):
    """Asks for 64 KiB chunks without ever reading: the daemon must not
    buffer without bound nor stall others, and eventually drops it."""
    g = tcpgw(codec, max_chunk=65536)
    fw, _ = make_fw(g, tmp_path, "p1", "2.0.0", size=4 * 1024 * 1024)
    d = g.device("hog", product_id="p1", rcvbuf=4096)
    d.report("1.0.0")
    publish(g, fw["id"], "pull", ["hog"])
    assert d.pull()["success"] is True
    other = g.device("bystander", product_id="p1")
    other.report("1.0.0")
    assert other.pull()["code"] == "not_found"

    reqs = b"".join(devsim.encode(codec, devsim.msg_chunk("hog", "h%d" % i, fw["id"],
                                                          (i % 64) * 65536, 65536))
                    for i in range(256))
    s = d.sock
    s.setblocking(False)
    pos = 0
    sent_reqs = 0
    dropped = False
    stalled_checked = False
    t0 = time.monotonic()
    last_api = 0.0
    while time.monotonic() - t0 < 60:
        try:
            n = s.send(reqs[pos:])
            pos += n
            if pos >= len(reqs):
                sent_reqs += 256
                pos = 0
            continue
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
        # our send buffer is full: the daemon stopped reading us
        if not stalled_checked:
            stalled_checked = True
            t1 = time.monotonic()
            other.report("1.0.0")
            assert other.pull(timeout=2.0)["code"] == "not_found"
            assert time.monotonic() - t1 < 2.0, "a stalled client slowed others"
        if time.monotonic() - last_api > 0.5:
            last_api = time.monotonic()
            t1 = time.monotonic()
            h = g.ok("GET", "/api/health")
            assert h["status"] == "ok" and time.monotonic() - t1 < 2.0
            if not get_dev(g, "hog")["online"]:
                dropped = True
                break
        time.sleep(0.02)
    took = time.monotonic() - t0
    assert dropped, "a client that never reads was not dropped within 60 s " \
        "(%d chunk requests sent)" % sent_reqs
    wait_online(g, "hog", False)
    assert other.pull()["code"] == "not_found"
    assert not other.closed
    d.close(reset=True)
    print("never-reading client dropped after %.1f s, %d+ requests" % (took, sent_reqs))
    check_after(g, tmp_path, "noread")


def test_max_connections(tcpgw, tmp_path):
    g = tcpgw("jsonline", max_connections=8)
    devs = []
    for i in range(8):
        d = g.device("mc%d" % i, product_id="p1")
        d.report("1.0.0")
        assert d.pull()["code"] == "not_found"
        devs.append(d)
    extra = []
    for i in range(4):
        try:
            x = g.device("mcx%d" % i, product_id="p1")
        except OSError:
            continue                       # refused at connect: fine
        try:
            x.report("1.0.0")
        except devsim.Closed:
            pass
        extra.append(x)
    for x in extra:
        assert x.wait_closed(3.0), "connection beyond max_connections = 8 stayed open"
        assert get_dev(g, x.device_id) is None
    for d in devs:
        assert d.pull()["code"] == "not_found"
    devs[0].close()
    wait_until(lambda: sessions(g) == 7, "sessions == 7")
    y = g.device("mc-new", product_id="p1")
    y.report("1.0.0")
    assert y.pull()["code"] == "not_found"
    for d in devs[1:]:
        d.close()
    check_after(g, tmp_path, "maxconn")


@pytest.mark.parametrize("codec", CODECS)
def test_abrupt_disconnects(tcpgw, tmp_path, codec):
    """Resets while big replies are queued, half frames, half lines."""
    g = tcpgw(codec, max_chunk=65536)
    fw, image = make_fw(g, tmp_path, "p1", "2.0.0", size=2 * 1024 * 1024)
    for i in range(5):
        mk_dev(g, "ab%d" % i, productId="p1", firmwareVersion="1.0.0")
    t, _ = publish(g, fw["id"], "pull", ["ab%d" % i for i in range(5)])
    for i in range(5):
        d = g.device("ab%d" % i, product_id="p1")
        d.report("1.0.0")
        assert d.pull()["success"] is True
        d.send_raw(b"".join(devsim.encode(codec, devsim.msg_chunk(
            d.device_id, "r%d" % k, fw["id"], k * 65536, 65536)) for k in range(32)))
        half = devsim.encode(codec, devsim.msg_report(d.device_id, "1.0.0"))
        d.send_raw(half[:len(half) // 2])
        d.close(reset=(i % 2 == 0))
    wait_until(lambda: sessions(g) == 0, "sessions == 0")
    for i in range(5):
        assert record_of(g, t["id"], "ab%d" % i)["state"] == "processing"
    # one of them resumes and finishes
    d = g.device("ab1", product_id="p1")
    got = d.fetch_image(fw["id"], fw["size"], chunk=65536)
    assert got == image
    d.progress("2.0.0", fw["id"], 100, complete=True, success=True)
    wait_until(lambda: record_of(g, t["id"], "ab1")["state"] == "success", "success")
    check_after(g, tmp_path, "abrupt")
