# SPDX-License-Identifier: MIT
"""The systemd unit and sysusers.d file as `make install` puts them: checked
by systemd's own tools (systemd-analyze verify and security, systemd-sysusers)
and for the settings the daemon's deployment depends on."""

import os
import re

from .helpers import REPO, need, run

UNIT_SRC = os.path.join(REPO, "rootfs", "systemd", "otagw.service")


def unit_for_verify(installed, tmp_path, text=None):
    """The installed unit with ExecStart pointing at the DESTDIR binary
    (verify checks that the command exists and is executable)."""
    if text is None:
        with open(os.path.join(installed, "usr/lib/systemd/system/otagw.service")) as f:
            text = f.read()
    text = text.replace("ExecStart=/usr/sbin/otagw",
                        "ExecStart=%s/usr/sbin/otagw" % installed)
    p = tmp_path / "otagw.service"
    p.write_text(text)
    return str(p)


def verify(path):
    """systemd-analyze verify: its exit status, and every line it printed
    about the unit (it only warns about unknown keys and bad values)."""
    r = run([need("systemd-analyze"), "verify", "--man=no", path], check=False, timeout=60)
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    return r.returncode, lines


def directives(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_systemd_analyze_verify(installed, tmp_path):
    rc, lines = verify(unit_for_verify(installed, tmp_path))
    assert rc == 0 and lines == [], lines


def test_verify_catches_a_broken_unit(installed, tmp_path):
    """The check above can fail: a misspelt key and a bad value are reported."""
    with open(os.path.join(installed, "usr/lib/systemd/system/otagw.service")) as f:
        text = f.read()
    text = text.replace("ProtectSystem=strict", "ProtectSystem=bogus\nProtectSytem=strict")
    rc, lines = verify(unit_for_verify(installed, tmp_path, text))
    assert any("ProtectSytem" in line for line in lines), lines
    assert any("bogus" in line for line in lines), lines
    rc, lines = verify(unit_for_verify(installed, tmp_path,
                                       text.replace("ExecStart=/usr/sbin/otagw",
                                                    "ExecStart=/nonexistent/otagw")))
    assert rc != 0 and any("/nonexistent/otagw" in line for line in lines), lines


def test_unit_settings():
    with open(UNIT_SRC) as f:
        d = directives(f.read())
    one = {k: v[-1] for k, v in d.items()}
    assert one["ExecStart"] == "/usr/sbin/otagw -c /etc/otagw/otagw.conf -d /var/lib/otagw"
    assert one["Type"] in ("simple", "exec", "notify")
    assert one["Restart"] == "on-failure"
    assert one["StateDirectory"] == "otagw"
    assert one["User"] == "otagw" and one["Group"] == "otagw"
    assert one["SupplementaryGroups"] == "dialout"
    assert one["DevicePolicy"] == "closed" and one["DeviceAllow"].startswith("char-tty")
    for k, v in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                 ("PrivateTmp", "yes"), ("ProtectHome", "yes")):
        assert one.get(k) == v, k
    assert one["CapabilityBoundingSet"] == ""
    assert one["WantedBy"] == "multi-user.target"
    # the network is up before the cloud link and downloads start
    assert "network-online.target" in one["After"] and "network-online.target" in one["Wants"]


def test_security_exposure_is_low(installed, tmp_path):
    r = run([need("systemd-analyze"), "security", "--offline=yes", "--no-pager",
             unit_for_verify(installed, tmp_path)], check=False, timeout=60)
    m = re.search(r"Overall exposure level for otagw.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr[-2000:]
    # 0 = fully sandboxed, 10 = not at all; systemd calls below 2 "OK"
    assert float(m.group(1)) < 2.0, r.stdout[-3000:]


def test_sysusers_creates_the_user(installed, tmp_path):
    root = tmp_path / "sysroot"
    (root / "etc").mkdir(parents=True)
    run([need("systemd-sysusers"), "--root=%s" % root,
         os.path.join(installed, "usr/lib/sysusers.d/otagw.conf")], timeout=60)
    passwd = (root / "etc" / "passwd").read_text()
    group = (root / "etc" / "group").read_text()
    m = re.search(r"^otagw:x:(\d+):(\d+):[^:]*:/var/lib/otagw:(\S+)$", passwd, re.M)
    assert m, passwd
    assert int(m.group(1)) < 1000, "a system user"
    assert m.group(3).endswith("nologin")
    assert re.search(r"^otagw:x:%s:" % m.group(2), group, re.M), group
