# SPDX-License-Identifier: MIT
"""The Yocto recipe: well-formed BitBake (every line an assignment, an
inherit, a comment or part of a shell task; modern ':' override syntax), the
variables its classes need, and its install step replayed with the values
poky gives the variables, checked against FILES and CONFFILES the way
do_package's installed-vs-shipped check would."""

import fnmatch
import glob
import hashlib
import os
import re

import pytest

from .helpers import REPO, elf_sections, make, makefile_version

RECIPE_DIR = os.path.join(REPO, "rootfs", "yocto", "recipes-otagw", "otagw")

# poky's values (no usrmerge) for the variables the recipe uses
POKY = {"prefix": "/usr", "exec_prefix": "/usr", "sbindir": "/usr/sbin", "bindir": "/usr/bin",
        "libexecdir": "/usr/libexec", "sysconfdir": "/etc", "datadir": "/usr/share",
        "localstatedir": "/var", "sharedstatedir": "/com", "libdir": "/usr/lib",
        "nonarch_libdir": "/usr/lib", "base_sbindir": "/sbin",
        "systemd_system_unitdir": "/lib/systemd/system", "PN": "otagw", "BPN": "otagw"}
ASSIGN = re.compile(r'^([A-Za-z_][A-Za-z0-9_\-]*(?::[A-Za-z0-9_\-${}]+)*(?:\[[a-z0-9_]+\])?)'
                    r'\s*(\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*"([^"]*)"$')


def recipe_path():
    found = glob.glob(os.path.join(RECIPE_DIR, "otagw_*.bb"))
    assert len(found) == 1, found
    return found[0]


def parse(path):
    """(assignments {name: [(op, value)]}, inherits [class], tasks {name: body})
    of a recipe; fails on any line that is none of those."""
    with open(path) as f:
        lines = f.read().split("\n")
    assigns, inherits, tasks = {}, [], {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            i += 1
            continue
        m = re.match(r"^(do_[a-z_]+|[a-z_]+)\(\) \{$", line)
        if m:
            body = []
            i += 1
            while i < len(lines) and lines[i] != "}":
                body.append(lines[i])
                i += 1
            assert i < len(lines), "task %s never closed" % m.group(1)
            tasks[m.group(1)] = "\n".join(body)
            i += 1
            continue
        if line.startswith("inherit "):
            inherits += line.split()[1:]
            i += 1
            continue
        # an assignment, continued over lines ending in a backslash
        full = line
        while full.endswith("\\"):
            i += 1
            assert i < len(lines), "continuation at the end of the file"
            full = full[:-1] + " " + lines[i].strip()
        m = ASSIGN.match(full)
        assert m, "not BitBake: %r" % full
        assigns.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
        i += 1
    return assigns, inherits, tasks


def expand(value, extra=None):
    v = dict(POKY)
    v.update(extra or {})
    return re.sub(r"\$\{(\w+)\}", lambda m: v[m.group(1)], value)


def value(assigns, name):
    vals = assigns.get(name)
    assert vals, "%s is not set" % name
    return " ".join(v for _, v in vals)


def test_recipe_is_well_formed_bitbake():
    assigns, inherits, tasks = parse(recipe_path())
    # overrides in the ':' syntax (honister and later); the old '_' forms are errors there
    for name in assigns:
        assert not re.search(r"_(\$\{PN\}|append|prepend|remove)$", name), name
    assert "do_install" in tasks
    assert os.path.basename(recipe_path()) == "otagw_%s.bb" % makefile_version()


def test_parse_rejects_what_bitbake_would(tmp_path):
    """The parser above can fail: an unclosed quote, stray text, an unclosed
    task, single quotes."""
    for n, bad in enumerate(('DEPENDS = "a b\n', 'this is not bitbake\n',
                             'do_install() {\n\ttrue\n', "DEPENDS = 'single'\n")):
        f = tmp_path / ("bad%d.bb" % n)
        f.write_text(bad)
        with pytest.raises(AssertionError):
            parse(str(f))


def test_recipe_variables():
    assigns, inherits, tasks = parse(recipe_path())
    assert value(assigns, "LICENSE") == "MIT"
    m = re.fullmatch(r"file://LICENSE;md5=([0-9a-f]{32})", value(assigns, "LIC_FILES_CHKSUM"))
    assert m, value(assigns, "LIC_FILES_CHKSUM")
    with open(os.path.join(REPO, "LICENSE"), "rb") as f:
        assert hashlib.md5(f.read()).hexdigest() == m.group(1), "LICENSE changed: update md5"
    assert value(assigns, "SRC_URI").startswith(("file://", "git://", "https://"))
    assert {"pkgconfig", "systemd"} <= set(inherits), inherits
    deps = value(assigns, "DEPENDS").split()
    assert {"libwebsockets", "sqlite3", "cjson", "libarchive", "mbedtls"} <= set(deps), deps
    assert value(assigns, "SYSTEMD_SERVICE:${PN}") == "otagw.service"
    assert os.path.isfile(os.path.join(REPO, "rootfs", "systemd", "otagw.service"))
    assert value(assigns, "CONFFILES:${PN}") == "${sysconfdir}/otagw/otagw.conf"
    inst = tasks["do_install"]
    assert re.search(r"^\s+oe_runmake install DESTDIR=\$\{D\} PREFIX=\$\{prefix\}$", inst, re.M)
    # the unit's User= exists in the image
    if "useradd" in inherits:
        assert "${PN}" in value(assigns, "USERADD_PACKAGES")
        assert value(assigns, "USERADD_PARAM:${PN}").split()[-1] == "otagw"


def test_recipe_install_step_ships_every_file(tmp_path):
    """do_install as BitBake would run it (EXTRA_OEMAKE expanded with poky's
    values), then every installed file must fall under FILES:${PN} (the
    default list plus the recipe's additions and the systemd class's unit),
    and CONFFILES and SYSTEMD_SERVICE must name installed files."""
    assigns, inherits, tasks = parse(recipe_path())
    extra = expand(value(assigns, "EXTRA_OEMAKE"))
    extra = re.sub(r"\$\{@bb\.utils\.contains\('DISTRO_FEATURES', 'systemd', '1', '0', d\)\}",
                   "1", extra)
    assert "${" not in extra, extra
    d = tmp_path / "image"
    b = tmp_path / "build"
    cmd = re.search(r"oe_runmake (install .*)$", tasks["do_install"], re.M).group(1)
    cmd = expand(cmd, {"D": str(d)})
    make("B=%s" % b, *(extra.split() + cmd.split()))
    installed = sorted("/" + os.path.relpath(os.path.join(r, f), d)
                       for r, _, fs in os.walk(d) for f in fs)
    default_files = ["${bindir}/*", "${sbindir}/*", "${libexecdir}/*", "${sysconfdir}",
                     "${sharedstatedir}", "${localstatedir}", "${datadir}/${BPN}",
                     "${libdir}/${BPN}/*"]
    patterns = [expand(p) for p in default_files + value(assigns, "FILES:${PN}").split()]
    patterns.append(expand("${systemd_system_unitdir}/") + value(assigns,
                                                                 "SYSTEMD_SERVICE:${PN}"))

    def shipped(f):
        return any(fnmatch.fnmatch(f, p) or f.startswith(p.rstrip("/") + "/") for p in patterns)
    assert [f for f in installed if not shipped(f)] == []
    assert expand(value(assigns, "CONFFILES:${PN}")) in installed
    assert expand("${systemd_system_unitdir}/otagw.service") in installed
    # OE strips and splits debug info itself: an already stripped binary is a QA error
    assert ".symtab" in elf_sections(str(d / "usr/sbin/otagw"))
