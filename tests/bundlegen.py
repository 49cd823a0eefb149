#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bundlegen - builds otagw offline bundles (README "Offline bundles") in
Python, good and hostile, for tests/it/test_bundle.py and
tests/bench/bundle_bench.py. Standard library plus the openssl CLI (for
signatures). Every archive is written by this module entry by entry, so
names, types and sizes are exactly what the caller asked for (tarfile and
zipfile sanitise nothing when given a TarInfo/ZipInfo of our own).

Good bundles
  make_image(path, size, seed)        a pseudo-random image file (streamed)
  fw_entry(product, version, file, data_or_path, ...)
                                      one manifest firmware entry with size
                                      and sha256 filled in
  manifest(bundle_id, firmware, ...)  the manifest dict
  build(out, manifest, images, fmt=None, manifest_last=False, key=None, ...)
                                      writes the archive: manifest.json (and
                                      manifest.sig when key is given) first or
                                      last, the images in between
  good(out, ...)                      all of that for a one-image bundle

  Formats: "tar", "tar.gz", "tgz", "tar.xz", "zip" (default: out's suffix).

Signatures
  keypair(dir, name)                  (private PEM, public PEM) via openssl
  sign(manifest_bytes, priv, workdir) base64 of the DER ECDSA P-256 signature
                                      over SHA-256 of the bytes (the content of
                                      manifest.sig)

Hostile bundles
  HOSTILE: name -> (builder, reason words). builder(out_dir) writes one
  bundle and returns its path; the reason words are alternatives, one of
  which the daemon's error must contain (case-insensitive). Every hostile
  bundle holds a perfectly good image (named by its manifest) *before* the
  hostile part where the format allows, so a daemon that refuses late must
  also take back what it already put in its cache.

CLI: /usr/bin/python3 tests/bundlegen.py OUT.tar.gz --size N [--key K]
     [--manifest-last] writes a good one-image bundle (for poking by hand)."""

import base64
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import time
import zipfile

MiB = 1 << 20
FORMATS = ("tar", "tar.gz", "tgz", "tar.xz", "zip")
_BLOCK = 1 << 20


# -- images -------------------------------------------------------------------------

def rand_stream(seed, size, block=_BLOCK):
    """Yields size deterministic pseudo-random bytes in pieces."""
    r = random.Random(seed)
    left = size
    while left > 0:
        n = min(block, left)
        yield r.randbytes(n)
        left -= n


def make_image(path, size, seed=None):
    """Writes size pseudo-random bytes to path (never held whole in memory);
    returns (path, sha256 hex)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for b in rand_stream(seed if seed is not None else os.urandom(8), size):
            h.update(b)
            f.write(b)
    return path, h.hexdigest()


def sha256_of(data_or_path):
    if isinstance(data_or_path, (bytes, bytearray)):
        return hashlib.sha256(data_or_path).hexdigest()
    h = hashlib.sha256()
    with open(data_or_path, "rb") as f:
        for b in iter(lambda: f.read(_BLOCK), b""):
            h.update(b)
    return h.hexdigest()


def size_of(data_or_path):
    if isinstance(data_or_path, (bytes, bytearray)):
        return len(data_or_path)
    return os.path.getsize(data_or_path)


# -- manifests ------------------------------------------------------------------------

def fw_entry(product, version, file, data, name=None, tasks=None, **kw):
    """A manifest firmware entry for image data (bytes or a file path); kw
    adds or overrides fields (size=..., sha256=..., id=..., versionOrder=...)."""
    e = {"productId": product, "name": name or ("%s firmware %s" % (product, version)),
         "version": version, "file": file, "size": size_of(data), "sha256": sha256_of(data)}
    if tasks is not None:
        e["tasks"] = tasks
    e.update(kw)
    return e


def manifest(bundle_id, firmware, create_time=None, **kw):
    m = {"bundleId": bundle_id,
         "createTime": int(time.time() * 1000) if create_time is None else create_time,
         "firmware": list(firmware)}
    m.update(kw)
    return m


def manifest_bytes(m):
    """The exact bytes written as manifest.json (and signed)."""
    if isinstance(m, (bytes, bytearray)):
        return bytes(m)
    return json.dumps(m, indent=1).encode()


# -- signatures -------------------------------------------------------------------------

def _openssl(*args):
    p = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def keypair(d, name="bundle"):
    """An EC P-256 key pair made by openssl: (private PEM path, public PEM path)."""
    os.makedirs(d, exist_ok=True)
    priv, pub = os.path.join(d, name + ".pem"), os.path.join(d, name + ".pub.pem")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", priv)
    _openssl("ec", "-in", priv, "-pubout", "-out", pub)
    return priv, pub


def sign(mbytes, priv, workdir):
    """base64 of the DER ECDSA P-256 signature (openssl dgst -sha256 -sign)
    over mbytes: what manifest.sig holds."""
    os.makedirs(workdir, exist_ok=True)
    tag = os.urandom(6).hex()
    mp = os.path.join(workdir, "manifest-%s.json" % tag)
    sp = os.path.join(workdir, "sig-%s.der" % tag)
    with open(mp, "wb") as f:
        f.write(mbytes)
    try:
        _openssl("dgst", "-sha256", "-sign", priv, "-out", sp, mp)
        with open(sp, "rb") as f:
            return base64.b64encode(f.read()).decode()
    finally:
        for p in (mp, sp):
            try:
                os.unlink(p)
            except OSError:
                pass


def verify(mbytes, sig_b64, pub, workdir):
    """True when sig_b64 verifies over mbytes with the public key pub."""
    tag = os.urandom(6).hex()
    mp = os.path.join(workdir, "vm-%s.json" % tag)
    sp = os.path.join(workdir, "vs-%s.der" % tag)
    with open(mp, "wb") as f:
        f.write(mbytes)
    with open(sp, "wb") as f:
        f.write(base64.b64decode(sig_b64))
    try:
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sp, mp],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.returncode == 0
    finally:
        os.unlink(mp)
        os.unlink(sp)


# -- archive entries ----------------------------------------------------------------------

class Entry:
    """One archive entry. kind: "file" (data: bytes, or path: a file to
    stream, or zeros: that many zero bytes generated), "dir", "symlink" /
    "hardlink" (link: the target), "chr" / "blk" / "fifo" (device files)."""

    def __init__(self, name, data=None, path=None, zeros=None, kind="file", link="",
                 mode=0o644):
        self.name, self.data, self.path, self.zeros = name, data, path, zeros
        self.kind, self.link, self.mode = kind, link, mode

    def size(self):
        if self.kind != "file":
            return 0
        if self.data is not None:
            return len(self.data)
        if self.path is not None:
            return os.path.getsize(self.path)
        return self.zeros or 0

    def chunks(self):
        if self.data is not None:
            yield bytes(self.data)
        elif self.path is not None:
            with open(self.path, "rb") as f:
                for b in iter(lambda: f.read(_BLOCK), b""):
                    yield b
        elif self.zeros:
            z = bytes(_BLOCK)
            left = self.zeros
            while left > 0:
                n = min(_BLOCK, left)
                yield z if n == _BLOCK else z[:n]
                left -= n


class _ChunkReader(io.RawIOBase):
    """A file-like reader over an iterator of byte strings (for tarfile)."""

    def __init__(self, it):
        self.it = iter(it)
        self.buf = b""

    def readable(self):
        return True

    def readinto(self, b):
        while not self.buf:
            try:
                self.buf = next(self.it)
            except StopIteration:
                return 0
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def fmt_of(path):
    p = path.lower()
    for f in ("tar.gz", "tgz", "tar.xz", "tar", "zip"):
        if p.endswith("." + f):
            return f
    raise ValueError("no bundle suffix in %r (.tar .tar.gz .tgz .tar.xz .zip)" % path)


def _tar_mode(fmt):
    return {"tar": "w", "tar.gz": "w:gz", "tgz": "w:gz", "tar.xz": "w:xz"}[fmt]


def write_archive(out, entries, fmt=None, compresslevel=None, tar_format=tarfile.PAX_FORMAT):
    """Writes entries (a list of Entry) to out in format fmt (default: by
    out's suffix), exactly as given. Returns out."""
    fmt = fmt or fmt_of(out)
    tmp = out + ".part"
    if fmt == "zip":
        _write_zip(tmp, entries, compresslevel)
    else:
        kw = {}
        if fmt in ("tar.gz", "tgz"):
            kw["compresslevel"] = 6 if compresslevel is None else compresslevel
        elif fmt == "tar.xz" and compresslevel is not None:
            kw["preset"] = compresslevel
        with tarfile.open(tmp, _tar_mode(fmt), format=tar_format, **kw) as t:
            mtime = int(time.time())
            for e in entries:
                ti = tarfile.TarInfo(e.name)   # kept verbatim: "../x", "/etc/x" ...
                ti.mtime = mtime
                ti.mode = e.mode
                ti.uname = ti.gname = "otagw"
                if e.kind == "file":
                    ti.type = tarfile.REGTYPE
                    ti.size = e.size()
                    t.addfile(ti, io.BufferedReader(_ChunkReader(e.chunks()), _BLOCK))
                    continue
                ti.size = 0
                if e.kind == "dir":
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                elif e.kind == "symlink":
                    ti.type, ti.linkname = tarfile.SYMTYPE, e.link
                elif e.kind == "hardlink":
                    ti.type, ti.linkname = tarfile.LNKTYPE, e.link
                elif e.kind == "chr":
                    ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3   # /dev/null
                elif e.kind == "blk":
                    ti.type, ti.devmajor, ti.devminor = tarfile.BLKTYPE, 7, 0
                elif e.kind == "fifo":
                    ti.type = tarfile.FIFOTYPE
                else:
                    raise ValueError("unknown entry kind %r" % e.kind)
                t.addfile(ti)
    os.replace(tmp, out)
    return out


def _write_zip(path, entries, compresslevel):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED,
                         compresslevel=compresslevel, allowZip64=True) as z:
        for e in entries:
            zi = zipfile.ZipInfo(e.name, date_time=time.localtime()[:6])
            zi.create_system = 3                 # unix: external_attr holds st_mode
            zi.compress_type = zipfile.ZIP_DEFLATED
            if e.kind == "file":
                zi.external_attr = (0o100000 | e.mode) << 16
                zi.file_size = e.size()
                with z.open(zi, "w", force_zip64=e.size() > 0x7fffffff) as f:
                    for b in e.chunks():
                        f.write(b)
            elif e.kind == "dir":
                zi.external_attr = (0o040755 << 16) | 0x10
                z.writestr(zi, b"")
            elif e.kind == "symlink":
                zi.external_attr = (0o120777 << 16)
                zi.compress_type = zipfile.ZIP_STORED
                z.writestr(zi, e.link.encode())
            else:
                raise ValueError("zip cannot hold a %r entry here" % e.kind)


# -- good bundles -----------------------------------------------------------------------

def build(out, man, images, fmt=None, manifest_last=False, key=None, workdir=None,
          sig=None, extra=(), compresslevel=None, dirs=False):
    """Writes a bundle: man (dict, or the exact manifest bytes), images
    {name in the archive: bytes or file path}, optionally signed with the
    private key key (or with sig, the manifest.sig text as is), extra
    entries appended after the images. dirs: add directory entries for
    the images' folders. Returns (out, manifest bytes)."""
    mb = manifest_bytes(man)
    head = [Entry("manifest.json", data=mb)]
    if key is not None and sig is None:
        sig = sign(mb, key, workdir or os.path.dirname(os.path.abspath(out)))
    if sig is not None:
        head.append(Entry("manifest.sig", data=sig.encode() if isinstance(sig, str) else sig))
    body = []
    if dirs:
        seen = set()
        for name in images:
            d = os.path.dirname(name)
            if d and d not in seen:
                seen.add(d)
                body.append(Entry(d + "/", kind="dir"))
    for name, src in images.items():
        if isinstance(src, Entry):
            body.append(src)
        elif isinstance(src, (bytes, bytearray)):
            body.append(Entry(name, data=bytes(src)))
        else:
            body.append(Entry(name, path=src))
    entries = (body + head) if manifest_last else (head + body)
    entries += list(extra)
    write_archive(out, entries, fmt, compresslevel=compresslevel)
    return out, mb


def good(out, product="prod", version="2.0", size=64 * 1024 + 3, data=None, bundle_id=None,
         tasks=None, fmt=None, manifest_last=False, key=None, fw_kw=None, **kw):
    """A one-image bundle; returns a dict: path, manifest (dict), manifest_bytes,
    data (the image bytes), sha256, file (its name in the archive)."""
    data = data if data is not None else random.Random(os.urandom(8)).randbytes(size)
    file = "images/%s-%s.bin" % (product, version)
    m = manifest(bundle_id or ("b-%s-%s" % (product, version.replace(".", "_"))),
                 [fw_entry(product, version, file, data, tasks=tasks, **(fw_kw or {}))])
    path, mb = build(out, m, {file: data}, fmt=fmt, manifest_last=manifest_last, key=key, **kw)
    return {"path": path, "manifest": m, "manifest_bytes": mb, "data": data,
            "sha256": sha256_of(data), "file": file}


# -- hostile bundles ----------------------------------------------------------------------

def _base(tag, size=32 * 1024 + 5):
    """A good manifest and image for a hostile bundle: (manifest, file, data)."""
    data = random.Random(tag).randbytes(size)
    # a neutral name (hex): the error text must name the reason, not the file
    file = "images/%s.bin" % hashlib.sha256(tag.encode()).hexdigest()[:12]
    m = manifest("hostile-" + tag, [fw_entry("hostile-" + tag, "6.6", file, data)])
    return m, file, data


def h_traversal(d):
    m, file, data = _base("traversal")
    return build(os.path.join(d, "traversal.tar"), m, {file: data},
                 extra=[Entry("../x", data=b"escaped\n")])[0]


def h_traversal_deep(d):
    """A manifest whose image is named through ".." (the entry as well)."""
    data = random.Random("tdeep").randbytes(4096)
    m = manifest("hostile-tdeep", [fw_entry("hostile-tdeep", "6.6", "images/../../x.bin", data)])
    return build(os.path.join(d, "traversal_deep.tar.gz"), m, {"images/../../x.bin": data})[0]


def h_traversal_zip(d):
    m, file, data = _base("tzip")
    return build(os.path.join(d, "traversal.zip"), m, {file: data},
                 extra=[Entry("a/../../x", data=b"escaped\n")])[0]


def h_absolute(d):
    m, file, data = _base("absolute")
    return build(os.path.join(d, "absolute.tar.gz"), m, {file: data},
                 extra=[Entry("/etc/x", data=b"root:x:0:0::/:/bin/sh\n")])[0]


def h_symlink(d):
    """The image's name is a symlink to /etc/passwd."""
    m, file, data = _base("symlink")
    return build(os.path.join(d, "symlink.tar"), m,
                 {file: Entry(file, kind="symlink", link="/etc/passwd")})[0]


def h_symlink_zip(d):
    m, file, data = _base("symlinkzip")
    return build(os.path.join(d, "symlink.zip"), m,
                 {file: Entry(file, kind="symlink", link="/etc/passwd")})[0]


def h_hardlink(d):
    """A good image, then a hard link entry to /etc/passwd."""
    m, file, data = _base("hardlink")
    return build(os.path.join(d, "hardlink.tar"), m, {file: data},
                 extra=[Entry("images/other.bin", kind="hardlink", link="/etc/passwd")])[0]


def h_hardlink_image(d):
    """The image's name is a hard link to another (good) entry."""
    data = random.Random("hlimg").randbytes(8192)
    m = manifest("hostile-hlimg", [fw_entry("hostile-hlimg", "6.6", "images/a.bin", data),
                                   fw_entry("hostile-hlimg", "6.7", "images/b.bin", data)])
    return build(os.path.join(d, "hardlink_image.tar"), m,
                 {"images/a.bin": data,
                  "images/b.bin": Entry("images/b.bin", kind="hardlink",
                                        link="images/a.bin")})[0]


def h_oversize(d):
    """The entry is 1 byte larger than the manifest's size."""
    m, file, data = _base("oversize")
    m["firmware"][0]["size"] = len(data) - 1
    m["firmware"][0]["sha256"] = sha256_of(data[:-1])
    return build(os.path.join(d, "oversize.tar.gz"), m, {file: data})[0]


def h_undersize(d):
    """The entry is shorter than the manifest's size (sha256 of the full image)."""
    m, file, data = _base("undersize")
    return build(os.path.join(d, "undersize.tar"), m, {file: data[:-100]})[0]


def h_bad_sha(d):
    """The image does not match the manifest's sha256 (one bit flipped)."""
    m, file, data = _base("badsha")
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 1
    return build(os.path.join(d, "badsha.tar.xz"), m, {file: bytes(bad)})[0]


def h_truncated(d):
    """A good .tar.gz cut in the middle of its image."""
    m, file, data = _base("truncated", size=600 * 1024)
    p = build(os.path.join(d, "truncated-full.tar.gz"), m, {file: data})[0]
    with open(p, "rb") as f:
        blob = f.read()
    out = os.path.join(d, "truncated.tar.gz")
    with open(out, "wb") as f:
        f.write(blob[:len(blob) * 2 // 3])
    os.unlink(p)
    return out


def h_truncated_tail(d):
    """A good .tar.gz missing its last 20 bytes (the gzip trailer and the
    end of the tar padding): the data is complete, the archive is not."""
    m, file, data = _base("trtail", size=100 * 1024)
    p = build(os.path.join(d, "trtail-full.tar.gz"), m, {file: data})[0]
    with open(p, "rb") as f:
        blob = f.read()
    out = os.path.join(d, "truncated_tail.tar.gz")
    with open(out, "wb") as f:
        f.write(blob[:-20])
    os.unlink(p)
    return out


ZIP_BOMB_BYTES = 200 * MiB


def h_zip_bomb(d, zeros=None):
    """A zip whose image entry (named by the manifest, whose size is small)
    inflates to 200 MiB of zeros from ~200 KiB."""
    zeros = zeros or ZIP_BOMB_BYTES
    m, file, data = _base("zipbomb", size=4096)
    return build(os.path.join(d, "zipbomb.zip"), m,
                 {file: Entry(file, zeros=zeros)}, compresslevel=9)[0]


def h_gz_bomb(d, zeros=None):
    """The same as a .tar.gz (200 MiB of zeros where the manifest says 4 KiB)."""
    zeros = zeros or ZIP_BOMB_BYTES
    m, file, data = _base("gzbomb", size=4096)
    return build(os.path.join(d, "gzbomb.tar.gz"), m,
                 {file: Entry(file, zeros=zeros)}, compresslevel=9)[0]


def h_missing_file(d):
    """The manifest names two images; the archive holds one."""
    m, file, data = _base("missing")
    m["firmware"].append(fw_entry(m["firmware"][0]["productId"], "6.7", "images/gone.bin",
                                  b"never shipped"))
    return build(os.path.join(d, "missing.tar.gz"), m, {file: data})[0]


def h_extra_file(d):
    """A file the manifest does not name, after the good image."""
    m, file, data = _base("extra")
    return build(os.path.join(d, "extra.tar"), m, {file: data},
                 extra=[Entry("images/stowaway.bin", data=b"not in the manifest")])[0]


def h_extra_file_first(d):
    """A file the manifest does not name, before the manifest (two-pass read)."""
    m, file, data = _base("extrafirst")
    return build(os.path.join(d, "extra_first.zip"), m, {file: data}, manifest_last=True,
                 extra=[Entry("zz-stowaway.txt", data=b"not in the manifest")])[0]


def h_many_entries(d, n=10000):
    """10,000 tiny entries after the good image."""
    m, file, data = _base("many")
    extra = [Entry("junk/%05d" % i, data=b"x") for i in range(n)]
    return build(os.path.join(d, "many.tar.gz"), m, {file: data}, extra=extra)[0]


def h_many_dirs(d, n=10000):
    """10,000 directory entries (directories are allowed, in small numbers)
    after the good image."""
    m, file, data = _base("manydirs")
    extra = [Entry("d%05d/" % i, kind="dir") for i in range(n)]
    return build(os.path.join(d, "many_dirs.tar"), m, {file: data}, extra=extra)[0]


def h_many_entries_first(d, n=10000):
    """10,000 tiny entries before the manifest (the manifest-last pass)."""
    m, file, data = _base("manyfirst")
    entries = [Entry("junk/%05d" % i, data=b"x") for i in range(n)]
    entries.append(Entry(file, data=data))
    entries.append(Entry("manifest.json", data=manifest_bytes(m)))
    return write_archive(os.path.join(d, "many_first.tar"), entries)


def h_not_json(d):
    m, file, data = _base("notjson")
    return build(os.path.join(d, "notjson.tar.gz"), b'{"bundleId": "x", firmware: [',
                 {file: data})[0]


def h_manifest_missing(d):
    m, file, data = _base("nomanifest")
    return write_archive(os.path.join(d, "nomanifest.tar"), [Entry(file, data=data)])


def h_bad_manifest_fields(d):
    """JSON, but the firmware entry lacks sha256 and has an unknown key."""
    m, file, data = _base("fields")
    del m["firmware"][0]["sha256"]
    m["firmware"][0]["exec"] = "rm -rf /"
    return build(os.path.join(d, "fields.tar"), m, {file: data})[0]


def h_duplicate_entry(d):
    """The image twice under the same name."""
    m, file, data = _base("dup")
    return build(os.path.join(d, "duplicate.tar"), m, {file: data},
                 extra=[Entry(file, data=data)])[0]


def h_duplicate_manifest(d):
    """manifest.json twice, the second naming another image."""
    m, file, data = _base("dupman")
    m2 = json.loads(json.dumps(m))
    m2["firmware"][0]["version"] = "9.9"
    return build(os.path.join(d, "duplicate_manifest.tar"), m, {file: data},
                 extra=[Entry("manifest.json", data=manifest_bytes(m2))])[0]


def h_device_file(d):
    """A character device entry (1,3) after the good image."""
    m, file, data = _base("chr")
    return build(os.path.join(d, "device.tar"), m, {file: data},
                 extra=[Entry("images/null", kind="chr")])[0]


def h_device_as_image(d):
    """The image's name is a character device."""
    m, file, data = _base("chrimg")
    return build(os.path.join(d, "device_image.tar.xz"), m, {file: Entry(file, kind="chr")})[0]


def h_fifo(d):
    m, file, data = _base("fifo")
    return build(os.path.join(d, "fifo.tar"), m, {file: data},
                 extra=[Entry("images/pipe", kind="fifo")])[0]


def h_not_archive(d):
    out = os.path.join(d, "garbage.tar.gz")
    with open(out, "wb") as f:
        f.write(random.Random("garbage").randbytes(70000))
    return out


def h_unsigned_with_sig_garbage(d):
    """manifest.sig that is not base64 of a signature at all."""
    m, file, data = _base("siggarbage")
    return build(os.path.join(d, "siggarbage.tar"), m, {file: data}, sig="not a signature!!")[0]


# name -> (builder, words one of which the error must contain)
HOSTILE = {
    "traversal": (h_traversal, ("..",)),
    "traversal_deep": (h_traversal_deep, ("..", "path")),
    "traversal_zip": (h_traversal_zip, ("..",)),
    "absolute": (h_absolute, ("absolute",)),
    "symlink": (h_symlink, ("link",)),
    "symlink_zip": (h_symlink_zip, ("link",)),
    "hardlink": (h_hardlink, ("link",)),
    "hardlink_image": (h_hardlink_image, ("link",)),
    "oversize": (h_oversize, ("manifest says", "larger", "size")),
    "undersize": (h_undersize, ("expected", "short", "smaller")),
    "bad_sha256": (h_bad_sha, ("sha256", "digest", "expected")),
    "truncated": (h_truncated, ("truncat", "archive", "eof", "unexpected")),
    "truncated_tail": (h_truncated_tail, ("truncat", "archive", "eof", "unexpected")),
    "zip_bomb": (h_zip_bomb, ("manifest says", "larger", "size")),
    "gz_bomb": (h_gz_bomb, ("manifest says", "larger", "size")),
    "missing_file": (h_missing_file, ("gone.bin",)),
    "extra_file": (h_extra_file, ("not in the manifest",)),
    "extra_file_first": (h_extra_file_first, ("not in the manifest",)),
    "many_entries": (h_many_entries, ("entries", "not in the manifest")),
    "many_dirs": (h_many_dirs, ("entries",)),
    "many_entries_first": (h_many_entries_first, ("entries",)),
    "not_json": (h_not_json, ("json",)),
    "no_manifest": (h_manifest_missing, ("manifest",)),
    "bad_fields": (h_bad_manifest_fields, ("sha256", "exec")),
    "duplicate_entry": (h_duplicate_entry, ("twice", "duplicate")),
    "duplicate_manifest": (h_duplicate_manifest, ("twice", "duplicate")),
    "device_file": (h_device_file, ("regular", "device")),
    "device_as_image": (h_device_as_image, ("regular", "device")),
    "fifo": (h_fifo, ("regular", "fifo")),
    "not_archive": (h_not_archive, ("archive",)),
}

# need a gateway that requires signatures ([gateway] bundle_key set)
HOSTILE_SIGNED = {
    "sig_garbage": (h_unsigned_with_sig_garbage, ("signature", "manifest.sig", "base64")),
}


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description="write a good one-image otagw bundle")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=1 * MiB)
    ap.add_argument("--product", default="prod")
    ap.add_argument("--version", default="2.0")
    ap.add_argument("--key")
    ap.add_argument("--manifest-last", action="store_true")
    a = ap.parse_args(argv)
    info = good(a.out, product=a.product, version=a.version, size=a.size, key=a.key,
                manifest_last=a.manifest_last)
    print("%s: %s %s, %d bytes, sha256 %s" % (info["path"], a.product, a.version,
                                              len(info["data"]), info["sha256"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
