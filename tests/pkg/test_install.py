# SPDX-License-Identifier: MIT
"""make install / uninstall / dist and the cross-build variables of the
Makefile: the layout and modes a package build relies on."""

import hashlib
import os
import re
import stat
import subprocess
import tarfile

from .helpers import REPO, elf_sections, make, makefile_version, need, run

WWW = os.path.join(REPO, "rootfs", "share", "otagw", "www")
SHIPPED_CONF = os.path.join(REPO, "rootfs", "etc", "otagw", "otagw.conf")


def www_files():
    out = []
    for root, _, files in os.walk(WWW):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), WWW))
    assert out, "no console files under rootfs/share/otagw/www"
    return sorted(out)


def tree(d):
    """Every non-directory under d, relative, sorted."""
    out = []
    for root, dirs, files in os.walk(d):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), d))
        for x in dirs:
            if os.path.islink(os.path.join(root, x)):
                out.append(os.path.relpath(os.path.join(root, x), d))
    return sorted(out)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def expected_layout(prefix="usr", etc="etc"):
    files = ["%s/sbin/otagw" % prefix, "%s/otagw/otagw.conf" % etc,
             "%s/lib/systemd/system/otagw.service" % prefix,
             "%s/lib/sysusers.d/otagw.conf" % prefix]
    files += ["%s/share/otagw/www/%s" % (prefix, f) for f in www_files()]
    return sorted(files)


def test_install_layout_and_modes(installed):
    assert tree(installed) == expected_layout()
    assert mode(os.path.join(installed, "usr/sbin/otagw")) == 0o755
    for f in expected_layout():
        if not f.endswith("sbin/otagw"):
            assert mode(os.path.join(installed, f)) == 0o644, f
    for root, dirs, _ in os.walk(installed):
        for d in dirs:
            assert mode(os.path.join(root, d)) == 0o755, os.path.join(root, d)
    for f in www_files():
        with open(os.path.join(WWW, f), "rb") as a, \
                open(os.path.join(installed, "usr/share/otagw/www", f), "rb") as b:
            assert a.read() == b.read(), f


def test_installed_binary_is_stripped_and_runs(installed):
    binary = os.path.join(installed, "usr/sbin/otagw")
    names = elf_sections(binary)
    assert ".text" in names
    assert ".symtab" not in names and not [n for n in names if n.startswith(".debug")], names
    r = run([binary, "--version"])
    assert r.stdout.strip() == "otagw %s" % makefile_version()


def test_installed_config_is_every_key_at_its_default(installed):
    binary = os.path.join(installed, "usr/sbin/otagw")
    with open(os.path.join(installed, "etc/otagw/otagw.conf")) as f:
        conf = f.read()
    with open(SHIPPED_CONF) as f:
        assert conf == f.read()
    assert conf == run([binary, "--print-config"]).stdout
    # every key line is commented out: the file changes nothing until edited
    keys = [line for line in conf.splitlines() if re.match(r"^#?[a-z_]+ = ", line)]
    assert len(keys) > 40 and all(k.startswith("#") for k in keys)


def test_unit_follows_sbindir_and_sysconfdir(build_dir, destdir):
    make("B=%s" % build_dir, "install", "DESTDIR=%s" % destdir, "SBINDIR=/opt/ota/sbin",
         "SYSCONFDIR=/opt/ota/etc")
    assert os.path.isfile(os.path.join(destdir, "opt/ota/sbin/otagw"))
    assert os.path.isfile(os.path.join(destdir, "opt/ota/etc/otagw/otagw.conf"))
    with open(os.path.join(destdir, "usr/lib/systemd/system/otagw.service")) as f:
        unit = f.read()
    assert re.search(r"^ExecStart=/opt/ota/sbin/otagw -c /opt/ota/etc/otagw/otagw.conf "
                     r"-d /var/lib/otagw$", unit, re.M), unit


# Where a real `make install` (PREFIX=/usr) would write without DESTDIR.
SYSTEM_PATHS = ["/usr/sbin/otagw", "/etc/otagw", "/etc/otagw/otagw.conf", "/usr/share/otagw",
                "/usr/lib/systemd/system/otagw.service", "/lib/systemd/system/otagw.service",
                "/usr/lib/sysusers.d/otagw.conf"]


def snapshot(paths):
    out = {}
    for p in paths:
        try:
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            out[p] = None
    return out


def test_install_and_uninstall_touch_nothing_outside_destdir(build_dir, destdir):
    before = snapshot(SYSTEM_PATHS)
    make("B=%s" % build_dir, "install", "DESTDIR=%s" % destdir)
    assert snapshot(SYSTEM_PATHS) == before
    assert tree(destdir) == expected_layout()
    make("B=%s" % build_dir, "uninstall", "DESTDIR=%s" % destdir)
    assert snapshot(SYSTEM_PATHS) == before


def test_uninstall_leaves_nothing(build_dir, destdir):
    make("B=%s" % build_dir, "install", "DESTDIR=%s" % destdir)
    assert tree(destdir)
    r = make("B=%s" % build_dir, "uninstall", "DESTDIR=%s" % destdir)
    assert tree(destdir) == [], r.stdout
    for d in ("etc/otagw", "usr/share/otagw"):
        assert not os.path.exists(os.path.join(destdir, d)), d


def test_edited_config_survives_reinstall_and_uninstall(build_dir, destdir):
    conf = os.path.join(destdir, "etc/otagw/otagw.conf")
    make("B=%s" % build_dir, "install", "DESTDIR=%s" % destdir)
    with open(conf, "a") as f:
        f.write("[http]\nport = 8099\n")
    r = make("B=%s" % build_dir, "install", "DESTDIR=%s" % destdir)
    assert "kept the edited" in r.stdout
    with open(conf) as f:
        assert f.read().endswith("port = 8099\n")
    r = make("B=%s" % build_dir, "uninstall", "DESTDIR=%s" % destdir)
    assert "kept the edited" in r.stdout
    assert tree(destdir) == ["etc/otagw/otagw.conf"]


def test_install_strip_0_and_without_systemd(build_dir, destdir):
    make("B=%s" % build_dir, "install", "DESTDIR=%s" % destdir, "INSTALL_STRIP=0",
         "WITH_SYSTEMD=0")
    names = elf_sections(os.path.join(destdir, "usr/sbin/otagw"))
    assert ".symtab" in names
    files = tree(destdir)
    assert not [f for f in files if "systemd" in f or "sysusers" in f], files
    assert "usr/sbin/otagw" in files and "etc/otagw/otagw.conf" in files


def test_dist_tarball_builds_on_its_own(build_dir, tmp_path):
    need("tar")
    version = makefile_version()
    top = "otagw-%s" % version
    tgz = os.path.join(build_dir, top + ".tar.gz")
    make("B=%s" % build_dir, "dist")
    with open(tgz, "rb") as f:
        first = hashlib.sha256(f.read()).hexdigest()
    with tarfile.open(tgz) as t:
        names = t.getnames()
        members = t.getmembers()
    assert all(n == top or n.startswith(top + "/") for n in names), names[:5]
    for must in ("Makefile", "LICENSE", "gateway/main.c", "rootfs/etc/otagw/otagw.conf",
                 "rootfs/systemd/otagw.service", "rootfs/openwrt/otagw/Makefile",
                 "rootfs/openwrt/otagw/files/otagw.init",
                 "rootfs/yocto/recipes-otagw/otagw/otagw_%s.bb" % version,
                 "tests/cross/run.sh", "rootfs/share/otagw/www/index.html"):
        assert "%s/%s" % (top, must) in names, must
    for bad in ("/build/", "node_modules", "__pycache__", "/.git/"):
        assert not [n for n in names if bad in n + "/"], bad
    assert {m.uid for m in members} == {0} and {m.gid for m in members} == {0}

    # reproducible: the same tree gives the same bytes
    make("B=%s" % build_dir, "dist")
    with open(tgz, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == first

    with tarfile.open(tgz) as t:
        t.extractall(tmp_path)
    src = str(tmp_path / top)
    make(cwd=src)
    r = run([os.path.join(src, "build", "otagw"), "--version"], cwd=src)
    assert r.stdout.strip() == "otagw %s" % version
    # and the unpacked tree (no git) makes its own tarball
    make("dist", cwd=src)
    assert os.path.isfile(os.path.join(src, "build", top + ".tar.gz"))


def make_vars(*args):
    """B, CC, AR, STRIP and PKG_CONFIG as the Makefile computes them."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("B", "CC", "AR", "STRIP", "PKG_CONFIG", "CROSS_COMPILE")}
    r = subprocess.run([need("make"), "-s", "--no-print-directory", "--eval",
                        "pkgvars: ; @printf 'B=%s\\nCC=%s\\nAR=%s\\nSTRIP=%s\\n"
                        "PKG_CONFIG=%s\\n' '$(B)' '$(CC)' '$(AR)' '$(STRIP)' '$(PKG_CONFIG)'",
                        "pkgvars"] + list(args), cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = dict(line.split("=", 1) for line in r.stdout.splitlines())
    return {k: v.strip() for k, v in out.items()}


def test_cross_compile_variables():
    native = make_vars()
    assert native["B"] == "build" and native["PKG_CONFIG"] == "pkg-config"
    v = make_vars("CROSS_COMPILE=aarch64-linux-gnu-")
    assert v["B"] == "build/aarch64-linux-gnu"
    assert v["CC"] == "aarch64-linux-gnu-gcc" and v["AR"] == "aarch64-linux-gnu-ar"
    assert v["STRIP"] == "aarch64-linux-gnu-strip"
    assert v["PKG_CONFIG"].endswith("pkg-config")
    # Debian: no aarch64-linux-gnu-pkg-config, so the multiarch .pc directory
    if "PKG_CONFIG_LIBDIR=" in v["PKG_CONFIG"]:
        assert "/usr/lib/aarch64-linux-gnu/pkgconfig" in v["PKG_CONFIG"]
    # what a packager passes wins
    v = make_vars("CROSS_COMPILE=arm-linux-gnueabihf-", "CC=clang", "PKG_CONFIG=my-pc",
                  "B=out")
    assert (v["CC"], v["PKG_CONFIG"], v["B"]) == ("clang", "my-pc", "out")
    assert v["AR"] == "arm-linux-gnueabihf-ar"


def test_cross_test_needs_an_arch():
    r = run([need("make"), "-s", "cross-test"], check=False)
    assert r.returncode != 0 and "ARCH=arm64" in r.stdout + r.stderr
    r = run([need("make"), "-s", "cross-test", "ARCH=mips"], check=False)
    assert r.returncode != 0 and "usage" in r.stdout + r.stderr
    r = run([os.path.join(REPO, "tests", "cross", "run.sh"), "sparc"], check=False)
    assert r.returncode == 2 and "usage" in r.stderr
    r = run([os.path.join(REPO, "tests", "cross", "run.sh"), "arm64", "bogus"], check=False)
    assert r.returncode == 2 and "unknown step" in r.stderr


def test_plain_build_targets_unchanged():
    """make test / unit / bench keep their recipes (the packaging work must not
    change what CI runs)."""
    r = run([need("make"), "-n", "test"])
    # under a parent make (make test -> tests/run.sh) make -n also prints
    # "make[N]: Entering/Leaving directory" lines: not recipes
    lines = [line for line in r.stdout.splitlines()
             if line.strip() and not line.startswith("make[")]
    assert "tests/run.sh build build/san" in lines[-1], lines[-3:]
    assert any("WERROR=1 SAN=1 B=build/san unit" in line for line in lines)
    r = run([need("make"), "-n", "bench"])
    assert "tests/bench/run.sh build" in r.stdout
