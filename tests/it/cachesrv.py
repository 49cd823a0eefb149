# SPDX-License-Identifier: MIT
"""cachesrv - helpers for the image cache tests (test_cache.py,
test_cache_crash.py, tests/bench/cache_bench.py). Standard library only;
everything listens on 127.0.0.1; every wait is bounded.

  Nginx          Debian's nginx as a child process (daemon off, master_process
                 off), its pid, logs and temp files in a private directory; an
                 access log "$status $http_range $request" to count requests
                 and see Range headers; optional TLS server and extra config.
  FileServer     a small Python HTTP server for one file: can cut the first N
                 responses mid-body (sends part, then closes), can ignore
                 Range (always 200 with the whole file); records requests.
  DnsBlackhole   a UDP socket on <127.x.y.z>:53 that takes queries and never
                 answers (a hanging DNS server for a resolv.conf).
  make_tls(), make_ec_key(), ecdsa_sign_b64()   openssl CLI wrappers.
  put_image()    a streaming PUT /api/firmware/{id}/image over a raw socket
                 (tolerates the daemon answering and closing before the body is
                 sent, as it does on a refusal).
  wait_for(), image_of(), wait_image(), cache_listing(), rand_bytes(),
  gen_chunks(), rss(), publish_download()."""

import base64
import hashlib
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import otagw_it

HOST = otagw_it.HOST
NGINX = "/usr/sbin/nginx"
OPENSSL = "openssl"


# -- waits ----------------------------------------------------------------------

def wait_for(fn, timeout, what, interval=0.05):
    """Calls fn() until it returns something truthy; returns that. Raises
    AssertionError naming what (and fn's last value) after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


# -- data -----------------------------------------------------------------------

def rand_bytes(seed, n):
    """n deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(n)


def gen_chunks(seed, total, chunk=1 << 20):
    """Yields total deterministic pseudo-random bytes in pieces of chunk;
    the same seed gives the same stream, so it can be hashed first and sent
    later without ever holding it whole."""
    r = random.Random(seed)
    left = total
    while left > 0:
        n = min(chunk, left)
        yield r.randbytes(n)
        left -= n


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def rss(pid):
    """VmRSS of pid in bytes (0 when unknown)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return 0


def is_san_build():
    """True for the sanitizer build (build/san/otagw)."""
    names = (os.environ.get("OTAGW_BIN", ""), otagw_it.BIN_SOURCE or "", otagw_it.otagw_bin())
    return any("/san/" in n for n in names)


# -- the gateway's cache as seen from outside ----------------------------------------

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def cache_dir(gw):
    return os.path.join(gw.data_dir, "cache")


def cache_listing(gw):
    """(final images: names of regular files in cache/, partials: names in
    cache/partial/)."""
    d = cache_dir(gw)
    finals, partials = [], []
    try:
        for n in sorted(os.listdir(d)):
            if os.path.isfile(os.path.join(d, n)):
                finals.append(n)
    except FileNotFoundError:
        pass
    try:
        partials = sorted(os.listdir(os.path.join(d, "partial")))
    except FileNotFoundError:
        pass
    return finals, partials


def image_of(gw, fw_id):
    """The "image" object of GET /api/firmware/{id}."""
    js = gw.ok("GET", "/api/firmware/%s" % fw_id)
    assert isinstance(js.get("image"), dict), "GET /api/firmware/%s has no image: %r" % (fw_id, js)
    return js["image"]


def wait_image(gw, fw_id, states, timeout=20.0, never=()):
    """Polls the firmware's image until its state is one of states; fails at
    once when it enters one of never. Returns the image object."""
    states = (states,) if isinstance(states, str) else tuple(states)
    seen = []

    def probe():
        img = image_of(gw, fw_id)
        if not seen or seen[-1] != (img.get("state"), img.get("reason")):
            seen.append((img.get("state"), img.get("reason")))
        assert img.get("state") not in never, \
            "firmware %s image entered %r: %r (history %r)" % (fw_id, img.get("state"), img, seen)
        return img if img.get("state") in states else None

    try:
        return wait_for(probe, timeout, "firmware %s image state in %r" % (fw_id, states))
    except AssertionError as e:
        raise AssertionError("%s; states seen: %r" % (e, seen)) from None


def cache_items(gw):
    """GET /api/cache items by sha256."""
    js = gw.ok("GET", "/api/cache")
    return {it["sha256"]: it for it in js["items"]}, js


_uniq = [0]


def uniq(prefix="x"):
    _uniq[0] += 1
    return "%s%d-%s" % (prefix, _uniq[0], os.urandom(3).hex())


def publish_download(gw, url, size=None, sign=None, method=None, product=None, version="2.0"):
    """Creates a product of its own with one device, a firmware with url (and
    size/sign/signMethod when given), a pull task, and publishes it to all:
    that starts the download. Returns (firmware id, task id)."""
    product = product or uniq("p")
    body = {"productId": product, "name": "fw " + product, "version": version, "url": url}
    if size is not None:
        body["size"] = size
    if sign is not None:
        body["sign"] = sign
        body["signMethod"] = method or "sha256"
    fw = gw.ok("POST", "/api/firmware", body, expect=201)
    gw.ok("POST", "/api/devices", {"id": uniq("d"), "productId": product}, expect=201)
    task = gw.ok("POST", "/api/firmware/%s/tasks" % fw["id"],
                 {"name": "get " + product, "mode": "pull"}, expect=201)
    pub = gw.ok("POST", "/api/tasks/%s/publish" % task["id"], {"all": True})
    assert pub.get("added") == 1, "publish did not add the device: %r" % (pub,)
    return fw["id"], task["id"]


# -- streaming upload ----------------------------------------------------------------

def _read_response(s, deadline):
    got = b""
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            break
        if not b:
            break
        got += b
        if otagw_it._response_complete(got):
            break
    return got


def put_image(port, fw_id, chunks, length, token=None, timeout=60.0, on_chunk=None):
    """PUT /api/firmware/{fw_id}/image with Content-Length: length and the
    body from the iterable chunks (bytes), streamed. Stops sending when the
    daemon has already answered or closed. Returns (status or None, parsed
    JSON or None, raw response bytes)."""
    deadline = time.monotonic() + timeout
    s = socket.create_connection((HOST, port), timeout=timeout)
    head = ("PUT /api/firmware/%s/image HTTP/1.1\r\nHost: %s:%d\r\n"
            "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
            "Connection: close\r\n" % (fw_id, HOST, port, length))
    if token:
        head += "Authorization: Bearer %s\r\n" % token
    head += "\r\n"
    got = b""
    try:
        try:
            s.sendall(head.encode())
            for c in chunks:
                if time.monotonic() > deadline:
                    raise AssertionError("upload of %d bytes did not finish within %.0f s"
                                         % (length, timeout))
                s.settimeout(max(0.05, deadline - time.monotonic()))
                s.sendall(c)
                if on_chunk:
                    on_chunk(len(c))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except socket.timeout:
            pass     # the daemon stopped reading: it may have answered already
        got = _read_response(s, deadline)
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    status = int(m.group(1)) if m else None
    js = None
    body = got.partition(b"\r\n\r\n")[2]
    if body:
        try:
            js = json.loads(body)
        except ValueError:
            js = None
    return status, js, got


def put_bytes(port, fw_id, data, token=None, timeout=30.0):
    return put_image(port, fw_id, [data[i:i + 65536] for i in range(0, len(data), 65536)] or [b""],
                     len(data), token=token, timeout=timeout)


# -- nginx ---------------------------------------------------------------------------

class Nginx:
    """nginx serving workdir/www on 127.0.0.1:port (and TLS on ssl_port
    when tls = (cert, key) is given). server_extra goes into the plain
    server block, http_extra into the http block."""

    LOG_FORMAT = "log_format r '$status $http_range $request';"

    def __init__(self, workdir, tls=None, server_extra="", http_extra="", sendfile=True,
                 access_log=True):
        self.dir = os.path.abspath(workdir)
        self.www = os.path.join(self.dir, "www")
        self.tmp = os.path.join(self.dir, "tmp")
        os.makedirs(self.www, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        self.port = otagw_it.free_port()
        self.ssl_port = otagw_it.free_port() if tls else None
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        t = self.tmp
        ssl = ""
        if tls:
            ssl = ("  server { listen %s:%d ssl; server_name localhost; root %s;\n"
                   "    ssl_certificate %s; ssl_certificate_key %s; }\n"
                   % (HOST, self.ssl_port, self.www, tls[0], tls[1]))
        text = (
            "daemon off; master_process off; worker_processes 1;\n"
            "pid %s/nginx.pid; error_log %s info;\n"
            "events { worker_connections 512; }\n"
            "http {\n  %s\n  access_log %s;\n  default_type application/octet-stream;\n"
            "  sendfile %s; keepalive_timeout 30s;\n"
            "  client_body_temp_path %s/cb; proxy_temp_path %s/px; fastcgi_temp_path %s/fc;\n"
            "  uwsgi_temp_path %s/uw; scgi_temp_path %s/sc;\n%s\n"
            "  server { listen %s:%d; root %s;\n%s\n  }\n%s}\n"
            % (self.dir, self.error_log, self.LOG_FORMAT,
               (self.access_log + " r") if access_log else "off",
               "on" if sendfile else "off", t, t, t, t, t, http_extra, HOST, self.port,
               self.www, server_extra, ssl))
        with open(self.conf, "w") as f:
            f.write(text)
        self.proc = None

    def start(self, timeout=5.0):
        if not os.access(NGINX, os.X_OK):
            raise AssertionError("nginx not found at %s (apt-get install nginx-light)" % NGINX)
        err = open(os.path.join(self.dir, "nginx.stderr"), "w")
        try:
            self.proc = subprocess.Popen([NGINX, "-c", self.conf, "-p", self.dir + "/"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        finally:
            err.close()
        deadline = time.monotonic() + timeout
        ports = [self.port] + ([self.ssl_port] if self.ssl_port else [])
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited with %d: %s\n%s" % (
                    self.proc.returncode, self._read(os.path.join(self.dir, "nginx.stderr")),
                    self._read(self.error_log)))
            if all(otagw_it.port_accepts(p) for p in ports):
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError("nginx did not listen within %.0f s: %s" % (timeout,
                                                                         self._read(self.error_log)))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if otagw_it.wait_exit(self.proc, 5) is None:
                self.proc.kill()
                otagw_it.wait_exit(self.proc, 5)
        self.proc = None

    @staticmethod
    def _read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def url(self, path, host=HOST):
        return "http://%s:%d%s" % (host, self.port, path)

    def ssl_url(self, path, host="localhost"):
        return "https://%s:%d%s" % (host, self.ssl_port, path)

    def put(self, name, data):
        """Writes www/name (name may contain a directory) and returns its path
        ("/name") for url()."""
        p = os.path.join(self.www, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return "/" + name

    def log(self):
        """Access log lines as (status int, range or None, method, uri)."""
        out = []
        try:
            with open(self.access_log, errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return out
        for ln in lines:
            parts = ln.split(" ")
            if len(parts) < 4:
                continue
            try:
                st = int(parts[0])
            except ValueError:
                continue
            rng = None if parts[1] == "-" else parts[1]
            out.append((st, rng, parts[2], parts[3]))
        return out

    def requests(self, uri):
        return [e for e in self.log() if e[3] == uri]


# -- a small Python file server ---------------------------------------------------------

class _Quiet(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass


class FileServer:
    """Serves data at path on 127.0.0.1:port (HTTP/1.1, ETag and
    Last-Modified). The first `drops` responses to GETs of path are cut:
    their headers promise the whole (remaining) body, then only the bytes up
    to absolute offset drop_at (default: half of what was asked) are sent and
    the connection is closed. ranges=False ignores Range (always 200, the
    whole file). .requests records {"range", "if_range", "status", "sent",
    "cut"} per GET."""

    ETAG = '"otagw-test-1"'
    LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"

    def __init__(self, data, path="/img.bin", drops=0, drop_at=None, ranges=True):
        self.data = data
        self.path = path
        self.drops = drops
        self.drop_at = drop_at
        self.ranges = ranges
        self.requests = []
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def start(self):
        owner = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                owner._get(self)

            def do_HEAD(self):
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = _Quiet((HOST, 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def url(self, host=HOST):
        return "http://%s:%d%s" % (host, self.port, self.path)

    def _get(self, h):
        if h.path != self.path:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        rng = h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        start, status = 0, 200
        m = re.match(r"^bytes=(\d+)-$", rng or "")
        if self.ranges and m and int(m.group(1)) < len(self.data) and \
                (if_range is None or if_range in (self.ETAG, self.LAST_MODIFIED)):
            start, status = int(m.group(1)), 206
        with self.lock:
            n = len(self.requests)
            rec = {"range": rng, "if_range": if_range, "status": status, "sent": 0,
                   "cut": n < self.drops}
            self.requests.append(rec)
        body = memoryview(self.data)[start:]
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("ETag", self.ETAG)
        h.send_header("Last-Modified", self.LAST_MODIFIED)
        h.send_header("Content-Type", "application/octet-stream")
        if self.ranges:
            h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(self.data) - 1,
                                                               len(self.data)))
        h.end_headers()
        limit = len(body)
        if rec["cut"]:
            if self.drop_at is not None and self.drop_at > start:
                limit = min(len(body), self.drop_at - start)
            else:
                limit = len(body) // 2
        try:
            off = 0
            while off < limit:
                n = min(65536, limit - off)
                h.wfile.write(body[off:off + n])
                off += n
                rec["sent"] = off
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
            return
        if rec["cut"]:
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None


# -- DNS that never answers ----------------------------------------------------------------

class DnsBlackhole:
    """A UDP socket on a loopback address, port 53, that counts queries and
    never answers. Raises OSError when no address could be bound."""

    def __init__(self):
        self.queries = 0
        self.names = []
        self.sock = None
        last = None
        rnd = random.Random()
        for _ in range(20):
            addr = "127.%d.%d.%d" % (rnd.randint(1, 254), rnd.randint(1, 254), rnd.randint(2, 254))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((addr, 53))
            except OSError as e:
                s.close()
                last = e
                if e.errno in (13, 1):      # EACCES, EPERM: no use trying again
                    break
                continue
            self.sock, self.addr = s, addr
            break
        if self.sock is None:
            raise last or OSError("no loopback address for port 53")
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.stopping:
            try:
                data, _ = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            self.queries += 1
            self.names.append(_dns_qname(data))

    def resolv_conf(self, path, timeout=30):
        with open(path, "w") as f:
            f.write("nameserver %s\noptions timeout:%d attempts:1\n" % (self.addr, timeout))
        return path

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def _dns_qname(pkt):
    labels, i = [], 12
    try:
        while i < len(pkt) and pkt[i]:
            n = pkt[i]
            labels.append(pkt[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
    except IndexError:
        pass
    return ".".join(labels)


def start_in_mount_ns(gw, resolv_conf, timeout=otagw_it.START_TIMEOUT):
    """Starts gw (a not yet started otagw_it.Gateway) inside `unshare --mount`
    with resolv_conf bind-mounted over /etc/resolv.conf; the daemon is exec'd,
    so gw.proc is the daemon itself and gw.stop() works as usual."""
    b = otagw_it.require_bin()
    script = 'mount --bind "$1" /etc/resolv.conf || exit 97; shift; exec "$@"'
    with open(gw.stderr_path, "a") as f:
        f.write("==== start (unshare --mount, resolv.conf %s) %s\n" % (resolv_conf, b))
    err = open(gw.stderr_path, "a")
    out = open(gw.stdout_path, "a")
    try:
        gw.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                    "sh", "-c", script, "sh", resolv_conf,
                                    b, "-c", gw.config, "-d", gw.data_dir],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   cwd=gw.workdir)
    finally:
        err.close()
        out.close()
    gw.wait_ready(timeout)


def mount_ns_usable(tmpdir):
    """None when `unshare --mount` with a bind mount over /etc/resolv.conf
    works here, else the reason why not."""
    if os.geteuid() != 0:
        return "needs root for unshare --mount"
    if not shutil.which("unshare"):
        return "unshare(1) not installed"
    probe = os.path.join(tmpdir, "resolv.probe")
    with open(probe, "w") as f:
        f.write("# otagw probe\n")
    try:
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            'mount --bind "$1" /etc/resolv.conf && cat /etc/resolv.conf',
                            "sh", probe], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10, text=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unshare --mount failed: %r" % e
    if p.returncode != 0 or "otagw probe" not in p.stdout:
        return "unshare --mount + mount --bind not usable: rc %d %s" % (p.returncode,
                                                                        p.stderr.strip())
    return None


# -- openssl ---------------------------------------------------------------------------------

def _openssl(*args, cwd=None):
    p = subprocess.run([OPENSSL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, cwd=cwd)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout


def make_tls(d, names=("localhost",), ips=("127.0.0.1",)):
    """A test CA and a server certificate signed by it (subjectAltName =
    names and ips). Returns (ca.pem, server.pem, server.key) paths."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(d, "server.ext")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", ca_key, "-out", ca, "-days", "3", "-subj",
             "/CN=otagw test CA %s" % os.urandom(4).hex(),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=%s" % names[0])
    san = ",".join(["DNS:%s" % n for n in names] + ["IP:%s" % i for i in ips])
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n" % san)
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


def make_ec_key(d, name):
    """An EC P-256 key pair: (private PEM path, public PEM path)."""
    os.makedirs(d, exist_ok=True)
    priv, pub = os.path.join(d, name + ".key"), os.path.join(d, name + ".pub")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", priv)
    _openssl("ec", "-in", priv, "-pubout", "-out", pub)
    return priv, pub


def ecdsa_sign_b64(priv, path):
    """base64 of the DER ECDSA signature over SHA-256 of the file at path."""
    sig = path + ".sig.der"
    _openssl("dgst", "-sha256", "-sign", priv, "-out", sig, path)
    with open(sig, "rb") as f:
        return base64.b64encode(f.read()).decode()
