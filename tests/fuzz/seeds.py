#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""seeds - writes the seed corpora of the libFuzzer targets,
tests/fuzz/corpus/NAME/seed-*, from the tests: the string tables of the
cmocka tests (through the C preprocessor, so their macros are expanded),
the hostile payloads of tests/it/, bundles made with tests/bundlegen.py
(small images), and messages, frames, configs and YMODEM sessions built
here. Files named crash-* (inputs that once crashed a target, kept as
regressions) are never touched.

When build/fuzz/fuzz_NAME exists (make fuzz-build), only the seeds that
libFuzzer's -merge=1 keeps (those adding coverage) are written; --all keeps
every seed.

Usage: /usr/bin/python3 tests/fuzz/seeds.py [--all] [NAME...]   (from the
repo root; needs cc and the project's pkg-config flags, openssl for signed
bundles). Each target's header comment says what its input is."""

import base64
import glob
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
KEY = os.path.join(ROOT, "tests", "fuzz", "seed-key.pem")
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "it"))
import bundlegen as bg  # noqa: E402

MAX_SEED = 256 * 1024          # bytes of one seed file


# -- string tables of the C tests --------------------------------------------------------

def _pkg_cflags():
    p = subprocess.run(["pkg-config", "--cflags", "libwebsockets", "sqlite3", "libcjson",
                        "libarchive", "zlib", "cmocka"], stdout=subprocess.PIPE, text=True)
    return p.stdout.split()


def _c_unescape(body):
    out, i = bytearray(), 0
    simple = {"n": 10, "r": 13, "t": 9, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92,
              '"': 34, "'": 39, "?": 63}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = body[i + 1]
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n == "x":
            j = i + 2
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(body[i + 2:j], 16) & 0xFF)
            i = j
        elif n in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out += n.encode()
            i += 2
    return bytes(out)


def c_strings(test_c):
    """Every string literal (adjacent ones joined) of a test file, after the
    preprocessor, as bytes."""
    p = subprocess.run(["cc", "-E", "-P", "-std=gnu11", "-D_GNU_SOURCE", "-Igateway",
                        "-Isouthbound", "-Inorthbound", "-Icache"] + _pkg_cflags() + [test_c],
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                       errors="replace")
    src, out, i = p.stdout, [], 0
    # only the test file's own part (after the last system header)
    while i < len(src):
        c = src[i]
        if c == "'":
            j = i + 1
            while src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if c != '"':
            i += 1
            continue
        parts = []
        while i < len(src) and src[i] == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            parts.append(src[i + 1:j])
            i = j + 1
            while i < len(src) and src[i] in " \t\n":
                i += 1
        out.append(_c_unescape("".join(parts)))
    return out


def c_json(test_c, start=b"{"):
    return [s for s in c_strings(test_c) if s.lstrip().startswith(start)]


# -- writing ------------------------------------------------------------------------------

def merged(name, seeds):
    """The sha1s of the seeds fuzz_NAME's -merge=1 keeps; None without it."""
    binary = os.path.join(ROOT, "build", "fuzz", "fuzz_" + name)
    if not os.access(binary, os.X_OK):
        return None
    tmp = tempfile.mkdtemp()
    try:
        src, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        os.mkdir(src)
        os.mkdir(out)
        for s in seeds:
            with open(os.path.join(src, hashlib.sha1(s).hexdigest()), "wb") as f:
                f.write(s)
        subprocess.run([binary, "-merge=1", "-rss_limit_mb=1024", out, src],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return set(os.listdir(out))
    finally:
        shutil.rmtree(tmp)


def write_corpus(name, seeds, merge=True):
    """Replaces corpus/NAME/seed-* with seeds (bytes), deduplicated and,
    with merge, reduced to the ones that add coverage."""
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "seed-*")):
        os.unlink(f)
    seeds = [s for s in seeds if len(s) <= MAX_SEED]
    keep = merged(name, seeds) if merge else None
    seen, n = set(), 0
    for s in seeds:
        h = hashlib.sha1(s).hexdigest()
        if h in seen or (keep is not None and h not in keep):
            continue
        seen.add(h)
        with open(os.path.join(d, "seed-%03d-%s" % (n, h[:10])), "wb") as f:
            f.write(s)
        n += 1
    print("%-9s %4d seeds, %7d bytes" % (name, n, sum(
        os.path.getsize(f) for f in glob.glob(os.path.join(d, "*")))))


# -- messages ---------------------------------------------------------------------------

MSG_TYPES = ["REPORT_FIRMWARE", "REQUEST_FIRMWARE", "REQUEST_FIRMWARE_REPLY", "UPGRADE_FIRMWARE",
             "UPGRADE_FIRMWARE_REPLY", "UPGRADE_FIRMWARE_PROGRESS", "READ_FIRMWARE",
             "READ_FIRMWARE_REPLY", "REQUEST_FIRMWARE_CHUNK", "REQUEST_FIRMWARE_CHUNK_REPLY",
             "ERROR"]


def j(o):
    return json.dumps(o, separators=(",", ":")).encode()


def chunk_reply(data, with_data=True, **kw):
    m = {"messageType": "REQUEST_FIRMWARE_CHUNK_REPLY", "deviceId": "d1", "messageId": "c1",
         "success": True, "firmwareId": "fw1", "offset": 0, "length": len(data),
         "crc32": zlib.crc32(data), "size": 1000}
    if with_data:
        m["data"] = base64.b64encode(data).decode()
    m.update(kw)
    return m


def own_messages():
    ts = 1589277368209
    return [j(m) for m in [
        {"messageType": "REPORT_FIRMWARE", "deviceId": "d1", "timestamp": ts, "version": "1.0",
         "properties": {"hw": "A2", "n": 1.5e-7, "big": 1e300, "list": [1, "x", None]},
         "headers": {"productId": "p1", "secureKey": "k"}},
        {"messageType": "REQUEST_FIRMWARE", "deviceId": "d1", "messageId": "m1",
         "currentVersion": "1.0", "requestVersion": "", "headers": {"force": True,
                                                                    "latest": False}},
        {"messageType": "REQUEST_FIRMWARE_REPLY", "deviceId": "d1", "messageId": "m1",
         "success": True, "firmwareId": "fw1", "version": "2.0", "url": "http://gw/images/fw1",
         "size": 1234, "sign": "9e107d9d372bb6826bd81d3542a419d6", "signMethod": "md5",
         "parameters": {"k": "v"}},
        {"messageType": "REQUEST_FIRMWARE_REPLY", "deviceId": "d1", "messageId": "m1",
         "success": False, "code": "not_found", "message": "no upgrade"},
        {"messageType": "UPGRADE_FIRMWARE", "deviceId": "d1", "messageId": "m2",
         "firmwareId": "fw1", "version": "2.0", "url": "chunk:fw1", "size": 9007199254740992},
        {"messageType": "UPGRADE_FIRMWARE_REPLY", "deviceId": "d1", "messageId": "m2",
         "success": False, "code": "busy", "message": "later"},
        {"messageType": "UPGRADE_FIRMWARE_PROGRESS", "deviceId": "d1", "timestampe": ts,
         "version": "2.0", "progress": 55, "complete": False, "success": True,
         "firmwareId": "fw1"},
        {"messageType": "UPGRADE_FIRMWARE_PROGRESS", "deviceId": "d1", "version": "2.0",
         "progress": 100, "complete": True, "message": "flash failed"},
        {"messageType": "READ_FIRMWARE", "messageId": "r1"},
        {"messageType": "READ_FIRMWARE_REPLY", "deviceId": "d1", "messageId": "r1",
         "version": "1.0", "properties": {}},
        {"messageType": "REQUEST_FIRMWARE_CHUNK", "deviceId": "d1", "messageId": "c1",
         "firmwareId": "fw1", "offset": 4096, "length": 4096},
        chunk_reply(b"abc"),
        chunk_reply(b"", offset=1000, length=0),
        chunk_reply(bytes(range(256)) * 4),
        chunk_reply(b"", with_data=False, length=100, crc32=12345),
        {"messageType": "REQUEST_FIRMWARE_CHUNK_REPLY", "deviceId": "d1", "success": False,
         "code": "out_of_range", "offset": 99},
        {"messageType": "ERROR", "deviceId": "d1", "messageId": "m9", "code": "bad_message",
         "message": "field 'x'"},
        {"messageType": "report_firmware", "deviceId": "d-\u00e9", "version": "\u4e2d"},
        {"messageType": "REPORT_FIRMWARE", "deviceId": None, "version": "1"},
    ]]


def msg_seeds():
    out = own_messages()
    for f in ("tests/test_msg_json.c", "tests/test_codec.c", "tests/test_proto.c"):
        out += [s for s in c_json(f) if b"messageType" in s]
    try:
        import test_tcp_hostile
        out += [p[:4096] for p in test_tcp_hostile.BAD_PAYLOADS]
    except Exception as e:  # the it suite may need what this host lacks
        print("(no tests/it payloads: %s)" % e)
    return out


def msg_json_corpus():
    msgs = msg_seeds()
    out = list(msgs)
    # decode_as (HTTP topics, CHILD): '#', type + 11 x device (0 none, 1 "dev-1")
    bodies = {0: {"version": "1.0"}, 1: {"currentVersion": "1", "requestVersion": "2"},
              3: {"firmwareId": "fw1", "version": "2", "url": "http://x/y"},
              4: {"success": True}, 5: {"version": "2", "progress": 5}}
    for t, body in bodies.items():
        for dev in (0, 1):
            out.append(b"#" + bytes([t + 11 * dev]) + j(body))
        out.append(b"#" + bytes([t + 11]) + j(dict(body, deviceId="dev-1")))
        out.append(b"#" + bytes([t + 11]) + j(dict(body, deviceId=None, messageType=None)))
    return out


def stream(msgs, cuts=(), maxsel=0, sep=b"\n"):
    head = bytes([maxsel | (len(cuts) << 2)]) + b"".join(struct.pack(">H", c) for c in cuts)
    return head + sep.join(msgs) + sep


def jsonline_corpus():
    msgs = msg_seeds()
    good = own_messages()
    out = [stream([m], (1, len(m) // 2), 2) for m in msgs if len(m) < 4000]
    out.append(stream(good[:6], (3, 100, 101, 700), 2))
    out.append(stream(good[6:], (), 3, sep=b"\r\n"))
    out.append(stream([b"", b"  \t", good[0], b"{nope", good[1]], (0, 5, 9), 2))
    out.append(stream([b"x" * 300], (), 0))                # longer than max_frame 256
    out.append(stream([good[0] + b" " * 200], (50,), 0))    # exactly around the cap
    return out


def frame(ftype, payload, flags=0, crc=None, length=None):
    return (b"OG\x01" + bytes([ftype, flags, 0, 0, 0]) +
            struct.pack(">II", len(payload) if length is None else length,
                        zlib.crc32(payload) if crc is None else crc) + payload)


def frame2(data, **kw):
    hdr = j(chunk_reply(data, with_data=False, **kw))
    return frame(2, struct.pack(">I", len(hdr)) + hdr + data)


def frame_corpus():
    msgs = msg_seeds()
    good = own_messages()
    out = [stream([frame(1, m)], (2, 16, 17), 3, sep=b"") for m in msgs if len(m) < 4000]
    out.append(stream([frame2(b"abc"), frame2(bytes(range(256)) * 8), frame(1, good[0])],
                      (5, 16, 40, 2000), 3, sep=b""))
    out.append(stream([frame(1, b""), frame(1, good[1], crc=1), frame(3, good[1])], (), 3,
                      sep=b""))
    out.append(stream([frame(1, good[0], length=0xFFFFFFFF)], (8,), 0, sep=b""))
    out.append(stream([frame(1, good[0], flags=1)], (), 1, sep=b""))
    out.append(stream([b"OG\x02" + b"\0" * 13], (), 1, sep=b""))
    hdr = j(chunk_reply(b"abcd", with_data=True))
    out.append(stream([frame(2, struct.pack(">I", len(hdr)) + hdr + b"abcd")], (), 3, sep=b""))
    out.append(stream([frame(2, struct.pack(">I", 999) + b"{}")], (), 3, sep=b""))
    return out


# -- config ------------------------------------------------------------------------------

def config_corpus():
    out = [open(os.path.join(ROOT, "rootfs/etc/otagw/otagw.conf"), "rb").read()]
    out += [s for s in c_strings("tests/test_config.c")
            if s.startswith((b"[", b"#", b";")) or b"\n[" in s]
    out += [
        b"[gateway]\nlog_level = debug\ndata_dir = \"  /var/x \"\nsyslog=on\n"
        b"require_signed_bundles = true\nbundle_key=/etc/k.pem\n"
        b"[http]\nbind=0.0.0.0\napi_token=abc\nport=8081\ndevice_auth=token\n"
        b"[tcp]\ncodec=frame\nmax_frame=131072\nimage_url=chunk:{firmwareId}\n"
        b"[cache]\nmax_bytes=1125899906842624\nmin_free_bytes=0\n"
        b"[cloud]\nurl=wss://c.example/ws\ngateway_id=gw-1\n"
        b"[serial s1]\npath=/dev/ttyUSB0\nbaud=9600\nparity=even\nflow=rtscts\n"
        b"ymodem_blocks=1k\n[serial s2]\npath=/dev/ttyS1\nrs485=on\nproduct=p1\n",
        b"\r\n[http]\r\nport = 0\r\n",
        b"[serial a]\npath=/dev/x\n" * 3,
        b"".join(b"[serial p%d]\npath=/dev/t%d\n" % (i, i) for i in range(17)),
        b"[gateway]\ndata_dir=" + b"x" * 1013 + b"\n",
        b"[http]\napi_token=\"\"\n[tcp]\ndefault_product=\"a b\"\n",
    ]
    return out


# -- HTTP ------------------------------------------------------------------------------------

def http_corpus():
    out = []
    for s in c_strings("tests/test_http_dev.c"):
        if s.lower().startswith(b"bytes"):
            for size in (0, 1, 1000, 2 ** 64 - 1):
                out.append(b"\x00" + struct.pack(">Q", size) + s)
    out += [b"\x00" + struct.pack(">Q", 100) + v for v in
            (b"bytes=0-", b"BYTES=5-9", b"bytes=-1", b"bytes=1-2,3-4", b"bytes= 1-2",
             b"bytes=18446744073709551615-", b"bytes=18446744073709551616-", b"items=0-1")]
    paths = [b"/", b"/index.html", b"/css/app.css", b"/tasks", b"/a/b/c.js", b"/.hidden",
             b"/a/../b.js", b"/a//b.js", b"/a/", b"", b"x", b"/a.b/c", b"/" + b"a" * 300]
    out += [b"\x01" + p for p in paths]
    routes = ["/api/health", "/api/firmware", "/api/firmware/*", "/api/firmware/*/tasks",
              "/api/devices", "/api/devices/*", "/api/devices/*/history", "/api/tasks",
              "/api/tasks/*", "/api/tasks/*/publish", "/api/tasks/*/cancel",
              "/api/tasks/*/records", "/api/cache", "/api/cache/*", "*", "/*", "/api/*/*", ""]
    for i, r in enumerate(routes):
        out.append(b"\x02" + bytes([i]) + r.replace("*", "fw-1").encode())
        out.append(b"\x02" + bytes([i]) + r.replace("*", "fw-1").encode() + b"/")
    try:
        import test_bad_input
        out += [b"\x02\x05" + p.encode() for p in test_bad_input.UNKNOWN_PATHS]
    except Exception as e:
        print("(no tests/it paths: %s)" % e)
    out += [b"\x02\xff/api/x/*/y\n/api/x/id.1/y", b"\x02\xff**\nab"]
    return out


# -- REST bodies ---------------------------------------------------------------------------

def rest_corpus():
    out = []
    sources = {"tests/test_catalogue.c": (1, 2), "tests/test_tasks.c": (3,),
               "tests/test_devices.c": (4, 5), "tests/test_json_in.c": (0, 1)}
    for f, ops in sources.items():
        for s in c_json(f):
            out += [bytes([op]) + s for op in ops]
    try:
        import test_bad_input
        out += [b"\x01" + s for s in test_bad_input.MALFORMED if len(s) < 20000]
        for key, val in test_bad_input.WRONG_TYPES:
            body = dict(test_bad_input.FW_OK)
            body[key] = val
            out.append(b"\x01" + json.dumps(body).encode())
    except Exception as e:
        print("(no tests/it bodies: %s)" % e)
    out += [
        b"\x01" + j({"id": "fw-9", "productId": "p9", "name": "n", "version": "1",
                     "signMethod": "ecdsa-p256", "sign": "MEUCIQ==" * 4, "url": "/local/x",
                     "description": "d" * 100}),
        b"\x01" + j({"productId": "p1", "name": "n", "version": "1.0"}),   # clashes fw-base
        b"\x02" + j({"id": "fw-base", "createTime": 1, "productId": "p2"}),
        b"\x03" + j({"id": "t-1", "name": "t", "mode": "pull", "timeoutSeconds": 2592000}),
        b"\x04" + j({"id": "dev-base", "productId": "p1"}),
        b"\x05" + j({"secureKey": "x" * 128, "properties": {"a": [1, 2]}}),
        b"\x00" + "{\"a\":\"\u00e9\u4e2d\U0001f600\",\"b\":-0.5e-3}".encode(),
        b"\x00{\"a\":\"\\u0000\"}", b"\x00{\"a\":01}", b"\x00\xed\xa0\x80",
    ]
    return out


# -- YMODEM ----------------------------------------------------------------------------------

C, ACK, NAK, CAN, ALL = 0x02, 0x00, 0x01, 0x03, 0xFF


def ym(size, flags, name, steps, retries=0, t_start=0, t_ans=0):
    return (struct.pack(">I", size)[1:] + bytes([flags, retries, t_start, t_ans, len(name)]) +
            name + bytes(steps))


def ym_transfer(size, only_1k=False):
    blocks = (size + 1023) // 1024 if only_1k else size // 1024 + (size % 1024 + 127) // 128
    return [C, ALL, ACK, C] + [ALL, ACK] * blocks + [ALL, ACK, C, ALL, ACK]


def ymodem_corpus():
    out = [
        ym(3000, 0, b"fw.bin", ym_transfer(3000)),
        ym(3000, 1, b"fw.bin", ym_transfer(3000, True)),
        ym(0, 0, b"empty.bin", ym_transfer(0)),
        ym(300 * 1024, 0, b"wrap.bin", ym_transfer(300 * 1024)),            # seq wraps
        ym(3000, 0, b"fw.bin", [C, ALL, NAK, ALL, ACK, C, 0x83, ALL, NAK, 0x40, 0x15, 0xBF,
                                ACK]),
        ym(3000, 0, b"fw.bin", [C, 0xC1, 0xC1, ACK, 0xA0, 0xA0, 0xA0], retries=2, t_ans=1),
        ym(3000, 0, b"fw.bin", [C, ALL, ACK, C, ALL, CAN, CAN]),
        ym(5000, 2 | (1 << 3), b"fw.bin", ym_transfer(5000)),              # read error
        ym(5000, 4 | (2 << 3), b"fw.bin", ym_transfer(5000)),              # short read
        ym(2048, 0, b"fw.bin", ym_transfer(2048)[:-3] + [0xA0] * 12),       # lost last ACK
        ym(100, 0, b"fw.bin", [0xA0, 0xA0], t_start=1),                    # no start
        ym(100, 0, b"", [C]), ym(100, 0, b"a/b", [C]), ym(100, 0, b"n" * 64, [C]),
        ym(100, 0, b"n" * 63, ym_transfer(100)),
    ]
    return out


# -- northbound ------------------------------------------------------------------------------

def proto_corpus():
    out = c_json("tests/test_proto.c")
    out += [
        j({"messageType": "CHILD", "messageId": "u-1", "childDeviceId": "d1",
           "childDeviceMessage": {"messageType": "UPGRADE_FIRMWARE", "deviceId": None,
                                  "firmwareId": "fw1", "version": "1", "url": "http://h/x"}}),
        j({"messageType": "TASK_PUBLISH", "messageId": "m", "taskId": "t",
           "deviceIds": ["d%d" % i for i in range(50)]}),
        j({"messageType": "TASK_PUBLISH", "messageId": "m", "taskId": "t", "all": True}),
        j({"messageType": "ERROR", "code": "x", "message": "y", "seq": 9007199254740991}),
        j({"messageType": "NOPE", "messageId": "m1"}),
        b'{"messageType":"ACK","ack":1,' + b'"x":' * 40 + b"1" + b"}" * 40,
    ]
    return out


# -- bundles ---------------------------------------------------------------------------------

def _small_hostile(tmp):
    orig = bg._base

    def small(tag, size=256):
        return orig(tag, min(size, 2048))

    bg._base = small
    out = []
    try:
        for name, (fn, _) in list(bg.HOSTILE.items()) + list(bg.HOSTILE_SIGNED.items()):
            kw = {}
            if name in ("zip_bomb", "gz_bomb"):
                kw["zeros"] = 1 << 20
            elif name.startswith("many"):
                kw["n"] = 300
            elif name == "not_archive":
                continue
            try:
                p = fn(tmp, **kw)
            except TypeError:
                p = fn(tmp)
            out.append((name, open(p, "rb").read()))
    finally:
        bg._base = orig
    out.append(("not_archive", random.Random("garbage").randbytes(2048)))
    return out


def _sign(mb):
    if not os.path.exists(KEY):
        return None
    return bg.sign(mb, KEY, tempfile.mkdtemp())


def bundle_manifests():
    data = bytes(range(200))
    tasks = [{"name": "t", "mode": "push", "all": True},
             {"id": "t-2", "name": "t2", "mode": "pull", "devices": ["d1", "d2"],
              "timeoutSeconds": 600, "description": "x"}]
    one = bg.manifest("b-1", [bg.fw_entry("p1", "1.0", "images/a.bin", data, tasks=tasks)],
                      create_time=1700000000000, description="seed")
    two = bg.manifest("b-2", [bg.fw_entry("p1", "1.1", "a.bin", data, versionOrder=3,
                                          properties={"hw": "A"}),
                              bg.fw_entry("p2", "1.1", "sub/b.bin", data[:10],
                                          sign="9e107d9d372bb6826bd81d3542a419d6",
                                          signMethod="md5")],
                      create_time=1700000000000)
    return data, one, two


def manifest_corpus():
    data, one, two = bundle_manifests()
    out = []
    for m in (one, two):
        mb = bg.manifest_bytes(m)
        out += [mb, b"SIG!\n" + mb, b"SIG:\n" + mb]
        sig = _sign(mb)
        if sig:
            out += [b"SIG:" + sig.encode() + b"\n" + mb, b"SIG!" + sig.encode() + b"\n" + mb,
                    b"SIG!" + sig.encode() + b"\n" + mb + b" "]
    bad = json.loads(json.dumps(one))
    bad["firmware"][0]["file"] = "../x"
    out.append(j(bad))
    bad["firmware"][0]["file"] = "images/a.bin"
    bad["firmware"][0]["sha256"] = "A" * 64
    out.append(j(bad))
    out.append(j(bg.manifest("b-3", [bg.fw_entry("p", "1", "f%d" % i, b"x") for i in range(3)]
                             + [bg.fw_entry("p", "2", "f0", b"y")])))
    out.append(j(bg.manifest("b-4", [bg.fw_entry("p", "%d" % i, "f%d" % i, b"x")
                                     for i in range(257)])))
    out.append(j(bg.manifest("b-5", [bg.fw_entry("p", "1", "big", b"x", size=2 ** 53)])))
    out.append(b"SIG:bm90IGEgc2lnbmF0dXJl\n" + bg.manifest_bytes(one))
    return out


def _entries(*ents):
    """fuzz_bundle's described archive: kind, name, data/link."""
    b = b""
    for kind, name, data in ents:
        b += bytes([kind, len(name)]) + name + struct.pack(">H", len(data)) + data
    return b


def bundle_corpus():
    data, one, two = bundle_manifests()
    out = []
    tmp = tempfile.mkdtemp()
    try:
        mb1 = bg.manifest_bytes(one)
        for fmt in ("tar", "tar.gz", "tar.xz", "zip"):
            p, _ = bg.build(os.path.join(tmp, "one." + fmt), one, {"images/a.bin": data},
                            dirs=True)
            out.append(b"\x00" + open(p, "rb").read())
        p, _ = bg.build(os.path.join(tmp, "last.tar.gz"), two,
                        {"a.bin": data, "sub/b.bin": data[:10]}, manifest_last=True)
        out.append(b"\x00" + open(p, "rb").read())
        if os.path.exists(KEY):
            p, _ = bg.build(os.path.join(tmp, "signed.tar"), one, {"images/a.bin": data},
                            key=KEY)
            out.append(b"\x00" + open(p, "rb").read())
        for name, blob in _small_hostile(tmp):
            out.append(b"\x00" + blob)
        for fmt in (1, 2, 3):
            out.append(bytes([fmt]) + _entries((0, b"manifest.json", mb1), (1, b"images/", b""),
                                               (0, b"images/a.bin", data)))
        out.append(b"\x02" + _entries((0, b"images/a.bin", data), (0, b"junk", b"j"),
                                      (0, b"manifest.json", mb1)))
        out.append(b"\x01" + _entries((0, b"manifest.json", mb1), (2, b"images/a.bin",
                                                                   b"/etc/passwd")))
        out.append(b"\x01" + _entries((0, b"manifest.json", mb1), (3, b"images/a.bin",
                                                                   b"manifest.json")))
        out.append(b"\x02" + _entries((0, b"./manifest.json", mb1), (4, b"images/p", b""),
                                      (0, b"./images/a.bin", data)))
        out.append(b"\x01" + _entries((0, b"manifest.json", mb1), (0, b"manifest.sig", b"x"),
                                      (0, b"images/a.bin", data + b"!")))
    finally:
        shutil.rmtree(tmp)
    return out


TARGETS = {
    "msg_json": msg_json_corpus, "jsonline": jsonline_corpus, "frame": frame_corpus,
    "config": config_corpus, "http": http_corpus, "rest": rest_corpus,
    "ymodem": ymodem_corpus, "proto": proto_corpus, "manifest": manifest_corpus,
    "bundle": bundle_corpus,
}


def main(argv):
    os.chdir(ROOT)
    merge = "--all" not in argv
    names = [a for a in argv if a != "--all"]
    for name in names or TARGETS:
        write_corpus(name, TARGETS[name](), merge)


if __name__ == "__main__":
    main(sys.argv[1:])
