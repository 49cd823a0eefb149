# SPDX-License-Identifier: MIT
"""Crash consistency of the image cache: the daemon is killed with SIGKILL
at a random moment while it downloads a 24 MiB image from nginx, then
started again, OTAGW_CRASH_RUNS times (default 100).

Each run serves a new image (a 24 MiB pseudo-random buffer with the run
number and random bytes written into it), creates its firmware (size and
sha256 sign) and a pull task, publishes it, waits a random 0-1.5 s (run 0:
1.2 s, past the first 4 MiB checkpoint, so at least one run resumes; every
tenth run 2.4-3.6 s instead, around the end of the transfer, to hit the
final verify/fsync/rename), kills the daemon, restarts it and requires,
within a bound, the image `ready` with the right SHA-256, the file in cache/
holding exactly those bytes and no partial left. Its task is then canceled
so the image is unpinned; [cache] max_bytes = 128 MiB keeps about five
images, so LRU eviction runs along.

nginx serves the first request of an image at 8 MiB/s (limit_rate 8m: the
whole image takes ~3 s, so the kill lands inside the transfer) and requests
carrying a Range header without a limit, so resumed runs finish quickly and
100 runs fit in about 4 minutes. After all runs: at least one run resumed
with `Range: bytes=N-` (N > 0), answered 206, with If-Range; every file in
cache/ matches its name; cache/partial/ is empty; GET /api/cache agrees with
the files."""

import hashlib
import os
import random
import time

import cachesrv
from cachesrv import cache_items, cache_listing, image_of, wait_for, wait_image

RUNS = int(os.environ.get("OTAGW_CRASH_RUNS", "100"))
SIZE = 24 << 20
MAX_BYTES = 128 << 20
CONF = "\n[cache]\nmax_retry_delay = 1\ntimeout = 10\nmax_bytes = %d\n" % MAX_BYTES
READY_WAIT = 60.0        # s: one run's download after the restart


def kill9(gw):
    """SIGKILL, reaped; the next gw.start() runs a new daemon on the same
    data directory."""
    gw.proc.kill()
    rc = gw.proc.wait(timeout=10)
    gw.proc = None
    return rc


def test_kill9_during_download_then_resume(gw_factory, tmp_path):
    rnd = random.Random(os.environ.get("OTAGW_CRASH_SEED") or os.urandom(8))
    ngx_dir = str(tmp_path / "nginx")
    os.makedirs(ngx_dir)
    ifrange_log = os.path.join(ngx_dir, "ifrange.log")
    ngx = cachesrv.Nginx(
        ngx_dir,
        http_extra="  map $http_range $otagw_rate { default 0; \"\" 8m; }\n"
                   "  log_format ir '$status $http_range \"$http_if_range\" $request';\n",
        server_extra="    location /img/ { limit_rate $otagw_rate;\n"
                     "      access_log %s r; access_log %s ir; }\n"
                     % (os.path.join(ngx_dir, "access.log"), ifrange_log))
    ngx.start()
    gw = gw_factory(config_extra=CONF)
    try:
        gw.ok("POST", "/api/devices", {"id": "dc", "productId": "pc"}, expect=201)
        base = bytearray(cachesrv.rand_bytes(0xc4a54, SIZE))
        prev = None
        t_start = time.monotonic()
        delays = []
        for i in range(RUNS):
            base[0:8] = i.to_bytes(8, "big")
            at = rnd.randrange(8, SIZE - 16)
            base[at:at + 16] = os.urandom(16)
            data = bytes(base)
            digest = hashlib.sha256(data).hexdigest()
            path = ngx.put("img/run%03d.bin" % i, data)
            if prev:
                os.unlink(os.path.join(ngx.www, prev.lstrip("/")))
            prev = path
            fw = gw.ok("POST", "/api/firmware", {
                "productId": "pc", "name": "crash %d" % i, "version": "1.%d" % i,
                "url": ngx.url(path), "size": SIZE, "sign": digest,
                "signMethod": "sha256"}, expect=201)["id"]
            task = gw.ok("POST", "/api/firmware/%s/tasks" % fw, {"name": "run %d" % i,
                                                                 "mode": "pull"},
                         expect=201)["id"]
            pub = gw.ok("POST", "/api/tasks/%s/publish" % task, {"all": True})
            assert pub["added"] == 1, pub
            if i == 0:
                delay = 1.2          # past the first 4 MiB checkpoint: run 0 resumes
            elif i % 10 == 9:
                delay = rnd.uniform(2.4, 3.6)
            else:
                delay = rnd.uniform(0.0, 1.5)
            delays.append(delay)
            time.sleep(delay)
            kill9(gw)
            gw.start()
            try:
                img = wait_image(gw, fw, "ready", READY_WAIT, never=("failed",))
                assert img["sha256"] == digest, img
                p = os.path.join(cachesrv.cache_dir(gw), digest)
                assert cachesrv.sha256_file(p) == digest, "cache/%s holds other bytes" % digest
                wait_for(lambda: not cache_listing(gw)[1] or None, 3.0,
                         "no partial left once ready")
            except AssertionError as e:
                raise AssertionError("run %d (killed %.3f s after publish): %s\nnginx: %r" % (
                    i, delay, e, ngx.requests(path))) from None
            gw.ok("POST", "/api/tasks/%s/cancel" % task)
        took = time.monotonic() - t_start

        resumed = []
        for st, rng, _, uri in ngx.log():
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                n = int(rng[6:-1])
                if n > 0 and st == 206:
                    resumed.append((uri, n))
        print("%d runs in %.0f s; %d resumed with a Range (offsets %s)" % (
            RUNS, took, len(resumed), sorted(set(n for _, n in resumed))[:8]))
        assert resumed, "no run resumed with Range: bytes=N- (N > 0) answered 206; " \
            "delays %r" % delays[:20]
        with open(ifrange_log) as f:
            ir = [ln for ln in f.read().splitlines() if " bytes=" in ln]
        assert any('"-"' not in ln for ln in ir), \
            "resumed requests carried no If-Range: %r" % ir[:5]

        # the cache after all runs: every file matches its name, no partials,
        # the index agrees with the files, within the quota
        finals, partials = cache_listing(gw)
        assert partials == [], partials
        for f in finals:
            assert cachesrv.HEX64.match(f), "unexpected file cache/%s" % f
            assert cachesrv.sha256_file(os.path.join(cachesrv.cache_dir(gw), f)) == f, \
                "cache/%s does not match its name" % f
        items, js = cache_items(gw)
        assert set(items) == set(finals), (sorted(items), finals)
        assert js["usedBytes"] <= MAX_BYTES, js
        assert image_of(gw, fw)["state"] == "ready"
    finally:
        ngx.stop()
