# SPDX-License-Identifier: MIT
"""Helpers of the packaging tests: the repository, tools that must be there
(a missing one fails the test and names its Debian package), running make
and other commands, reading ELF section names and the Makefile's VERSION."""

import os
import re
import shutil
import struct
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAKE_TIMEOUT = 600      # s: one full build on a 2-core machine takes ~20 s

# Tool -> the Debian package that has it (CI installs them from .ci/packages).
TOOLS = {
    "systemd-analyze": "systemd",
    "systemd-sysusers": "systemd",
    "shellcheck": "shellcheck",
    "dash": "dash",
    "make": "make",
    "tar": "tar",
}


def need(tool):
    """The path of tool, or a failure that says which package brings it."""
    path = shutil.which(tool)
    if not path:
        raise AssertionError("%s is missing: install the Debian package %s "
                             "(apt-get install %s)" % (tool, TOOLS.get(tool, tool),
                                                       TOOLS.get(tool, tool)))
    return path


def run(cmd, cwd=REPO, timeout=MAKE_TIMEOUT, env=None, check=True):
    """Runs cmd (a list); returns the CompletedProcess, text mode. With check,
    a non-zero exit fails the test showing the output."""
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=e)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d\n--- stdout\n%s\n--- stderr\n%s" %
                             (" ".join(cmd), r.returncode, r.stdout[-4000:], r.stderr[-4000:]))
    return r


def make(*args, cwd=REPO, **kw):
    return run([need("make"), "-s", "-j%d" % (os.cpu_count() or 2)] + list(args), cwd=cwd, **kw)


def makefile_version():
    with open(os.path.join(REPO, "Makefile")) as f:
        return re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)


def elf_sections(path):
    """Section names of an ELF file (32/64-bit, either endianness)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF", "%s is not an ELF file" % path
    bits64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if bits64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
        hdr = struct.Struct(end + "IIQQQQIIQQ")
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)
        hdr = struct.Struct(end + "IIIIIIIIII")
    secs = [hdr.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    stroff = secs[shstrndx][4]
    names = []
    for s in secs:
        n = data[stroff + s[0]: data.index(b"\0", stroff + s[0])]
        names.append(n.decode())
    return names
