# SPDX-License-Identifier: MIT
"""GET/HEAD /images/{firmwareId} next to nginx serving the same file.

Each case sends the same request (Range, If-Range, HEAD) to the gateway's
/images/<id> and to Debian's nginx (its own temp config on 127.0.0.1:<free
port>, the image at the same path) and requires the same status, the same
Content-Range and Content-Length and the same bytes (which must also be the
right slice of the image). ETag values differ by design (the gateway's is
the image's SHA-256, nginx's mtime-size): only their presence is compared,
and If-Range cases send each server its own validator.

416 bodies differ by design (nginx sends an HTML page): for 416 only the
status and Content-Range are compared. Several ranges (nginx: multipart
206; the gateway: the whole image) and malformed ranges (nginx: 416 for
most; the gateway: ignored, 200) differ by design too: those are checked
against the gateway's spec alone in test_http_dev.py."""

import hashlib
import os
import signal
import subprocess
import time

import pytest

from otagw_it import HOST, free_port, http_request, port_accepts, wait_exit
from test_tcp import make_fw

NGINX = "/usr/sbin/nginx"
SIZE = 1024 * 1024 + 333


class Nginx:
    """nginx (master_process off, daemon off) serving root on 127.0.0.1:port."""

    def __init__(self, workdir, root):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        t = self.dir
        with open(self.conf, "w") as f:
            f.write("daemon off; master_process off; worker_processes 1;\n"
                    "pid %s/nginx.pid; error_log %s/error.log;\n"
                    "events { worker_connections 256; }\n"
                    "http { access_log off; default_type application/octet-stream;\n"
                    "  sendfile on;\n"
                    "  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
                    "  uwsgi_temp_path %s; scgi_temp_path %s;\n"
                    "  server { listen %s:%d; root %s; } }\n"
                    % (t, t, t, t, t, t, t, HOST, self.port, root))
        self.proc = None

    def start(self, timeout=5.0):
        if not os.access(NGINX, os.X_OK):
            raise AssertionError("nginx not found at %s (apt-get install nginx-light)" % NGINX)
        with open(os.path.join(self.dir, "nginx.stderr"), "w") as err:
            self.proc = subprocess.Popen([NGINX, "-c", self.conf, "-p", self.dir + "/"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited with %d" % self.proc.returncode)
            if port_accepts(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError("nginx did not listen within %.0f s" % timeout)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if wait_exit(self.proc, 5) is None:
                self.proc.kill()
                wait_exit(self.proc, 5)
        self.proc = None


@pytest.fixture
def pair(gw_factory, tmp_path):
    """(gateway, nginx, path, image): the same image at the same path on both."""
    g = gw_factory()
    fw, image = make_fw(g, tmp_path, productId="sensor", version="2.0", size=SIZE)
    root = tmp_path / "www"
    (root / "images").mkdir(parents=True)
    (root / "images" / fw["id"]).write_bytes(image)
    n = Nginx(tmp_path / "nginx", str(root)).start()
    try:
        yield g, n, "/images/" + fw["id"], image
    finally:
        n.stop()


def validators(port, path):
    st, _, hd, _ = http_request(port, "HEAD", path)
    assert st == 200, st
    return {"etag": hd["ETag"], "lm": hd["Last-Modified"]}


OLD_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"

# (id, method, headers; "{etag}" / "{lm}" are each server's own validators,
#  expected status, expected (first, last) of the body or None for all)
CASES = [
    ("get", "GET", {}, 200, None),
    ("head", "HEAD", {}, 200, None),
    ("0-0", "GET", {"Range": "bytes=0-0"}, 206, (0, 0)),
    ("0-99", "GET", {"Range": "bytes=0-99"}, 206, (0, 99)),
    ("100-", "GET", {"Range": "bytes=100-"}, 206, (100, SIZE - 1)),
    ("-100", "GET", {"Range": "bytes=-100"}, 206, (SIZE - 100, SIZE - 1)),
    ("-99999999", "GET", {"Range": "bytes=-99999999"}, 206, (0, SIZE - 1)),
    ("last-byte", "GET", {"Range": "bytes=%d-" % (SIZE - 1)}, 206, (SIZE - 1, SIZE - 1)),
    ("end-past-size", "GET", {"Range": "bytes=1000-%d" % (SIZE + 5000)}, 206, (1000, SIZE - 1)),
    ("middle", "GET", {"Range": "bytes=65536-131071"}, 206, (65536, 131071)),
    ("whole-as-range", "GET", {"Range": "bytes=0-%d" % (SIZE - 1)}, 206, (0, SIZE - 1)),
    ("start-at-size", "GET", {"Range": "bytes=%d-" % SIZE}, 416, None),
    ("start-beyond", "GET", {"Range": "bytes=%d-%d" % (2 * SIZE, 3 * SIZE)}, 416, None),
    ("suffix-0", "GET", {"Range": "bytes=-0"}, 416, None),
    ("unit-case", "GET", {"Range": "Bytes=0-99"}, 206, (0, 99)),
    ("not-bytes", "GET", {"Range": "items=0-99"}, 200, None),
    ("if-range-etag", "GET", {"Range": "bytes=0-99", "If-Range": "{etag}"}, 206, (0, 99)),
    ("if-range-etag-suffix", "GET", {"Range": "bytes=-5000", "If-Range": "{etag}"}, 206,
     (SIZE - 5000, SIZE - 1)),
    ("if-range-other-etag", "GET", {"Range": "bytes=0-99", "If-Range": '"not-this-one"'}, 200,
     None),
    ("if-range-weak-etag", "GET", {"Range": "bytes=0-99", "If-Range": "W/{etag}"}, 200, None),
    ("if-range-date", "GET", {"Range": "bytes=100-199", "If-Range": "{lm}"}, 206, (100, 199)),
    ("if-range-old-date", "GET", {"Range": "bytes=100-199", "If-Range": OLD_DATE}, 200, None),
    ("if-range-no-range", "GET", {"If-Range": "{etag}"}, 200, None),
    ("if-range-416", "GET", {"Range": "bytes=%d-" % SIZE, "If-Range": "{etag}"}, 416, None),
    ("if-range-mismatch-416", "GET", {"Range": "bytes=%d-" % SIZE,
                                      "If-Range": '"not-this-one"'}, 200, None),
    ("head-0-99", "HEAD", {"Range": "bytes=0-99"}, 206, (0, 99)),
    ("head-suffix", "HEAD", {"Range": "bytes=-100"}, 206, (SIZE - 100, SIZE - 1)),
    ("head-416", "HEAD", {"Range": "bytes=%d-" % SIZE}, 416, None),
    ("head-if-range", "HEAD", {"Range": "bytes=0-99", "If-Range": '"not-this-one"'}, 200, None),
]


def fill(headers, v):
    return {k: val.replace("{etag}", v["etag"]).replace("{lm}", v["lm"])
            for k, val in headers.items()}


@pytest.mark.parametrize("name,method,headers,status,span", CASES, ids=[c[0] for c in CASES])
def test_same_as_nginx(pair, name, method, headers, status, span):
    g, n, path, image = pair
    got = {}
    for who, port in (("gateway", g.port), ("nginx", n.port)):
        h = fill(headers, validators(port, path))
        st, _, hd, body = http_request(port, method, path, headers=h, timeout=10)
        got[who] = (st, hd, body)
    (gs, gh, gb), (ns, nh, nb) = got["gateway"], got["nginx"]
    diag = "%s %s %r\n  gateway: %d %r\n  nginx:   %d %r" % (
        method, path, headers, gs, sorted(gh.items()), ns, sorted(nh.items()))

    # nginx is the reference; the expectation documents what it does
    assert ns == status, "nginx itself answered differently than expected: " + diag
    assert gs == ns, "status differs: " + diag
    assert gh.get("Content-Range") == nh.get("Content-Range"), "Content-Range differs: " + diag
    if status == 416:
        assert gh.get("Content-Range") == "bytes */%d" % SIZE, diag
        return
    assert gh.get("Content-Length") == nh.get("Content-Length"), "Content-Length differs: " + diag
    first, last = span if span else (0, SIZE - 1)
    assert int(gh["Content-Length"]) == last - first + 1, diag
    if status == 206:
        assert gh["Content-Range"] == "bytes %d-%d/%d" % (first, last, SIZE), diag
    if method == "HEAD":
        assert gb == b"" and nb == b"", (len(gb), len(nb))
    else:
        assert len(gb) == len(nb) == last - first + 1, (len(gb), len(nb))
        assert gb == nb, "the bytes differ"
        assert hashlib.sha256(gb).digest() == hashlib.sha256(image[first:last + 1]).digest(), \
            "not the right slice of the image"
    for h in ("ETag", "Last-Modified"):
        assert (h in gh) == (h in nh), "%s present on one side only: %s" % (h, diag)
    if status == 200:
        assert gh.get("Accept-Ranges") == nh.get("Accept-Ranges") == "bytes", diag


def test_resume_like_curl(pair, tmp_path):
    """curl -C - against both servers from the same partial file gives the
    same whole file; a second -C - on a complete file is a 416 on both,
    which curl takes as done."""
    g, n, path, image = pair
    for who, port in (("gateway", g.port), ("nginx", n.port)):
        out = tmp_path / ("resume-%s.bin" % who)
        out.write_bytes(image[:300001])
        for _ in range(2):
            p = subprocess.run(["curl", "-sS", "--max-time", "30", "-C", "-", "-o", str(out),
                                "http://%s:%d%s" % (HOST, port, path)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=40)
            assert p.returncode == 0, (who, p.returncode, p.stderr)
            assert out.read_bytes() == image, who


def test_keepalive_sequence(pair):
    """Several range requests on one connection, as a resuming device does:
    each answer is framed right (the next one parses) on both servers."""
    import http.client
    g, n, path, image = pair
    reqs = [("GET", {"Range": "bytes=0-99"}), ("HEAD", {}), ("GET", {"Range": "bytes=-10"}),
            ("GET", {"Range": "bytes=%d-" % SIZE}), ("GET", {"Range": "bytes=500-999"}),
            ("GET", {})]
    seen = {}
    for who, port in (("gateway", g.port), ("nginx", n.port)):
        c = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            seen[who] = []
            for method, h in reqs:
                c.request(method, path, headers=h)
                r = c.getresponse()
                body = r.read()
                seen[who].append((r.status, r.getheader("Content-Range"),
                                  hashlib.sha256(body).hexdigest() if r.status != 416 else None))
        finally:
            c.close()
    assert seen["gateway"] == seen["nginx"], seen
    assert seen["gateway"][-1] == (200, None, hashlib.sha256(image).hexdigest())
