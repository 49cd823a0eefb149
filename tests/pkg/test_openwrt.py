# SPDX-License-Identifier: MIT
"""The OpenWrt package: the UCI -> INI mapping (otagw-uci2ini.sh) and the
procd init script, run by dash on top of tests/pkg/uci_stub.sh (a stand-in
for /lib/functions.sh, procd.sh and rc.common that reads real UCI file text),
the INI checked against an exact expectation and fed to the real daemon;
shellcheck on every shell script; the package Makefile's variables."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from .helpers import REPO, need, run

PKG = os.path.join(REPO, "rootfs", "openwrt", "otagw")
FILES = os.path.join(PKG, "files")
HELPER = os.path.join(FILES, "otagw-uci2ini.sh")
INIT = os.path.join(FILES, "otagw.init")
UCI_DEFAULT = os.path.join(FILES, "otagw.config")
STUB = os.path.join(REPO, "tests", "pkg", "uci_stub.sh")
SINGLE = ("gateway", "http", "tcp", "cache", "cloud")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def uci2ini(tmp_path, uci_text, name="otagw"):
    """Runs otagw_uci2ini on uci_text; returns (exit status, stderr, INI text
    or None when no INI was written)."""
    uci = tmp_path / "uci"
    uci.mkdir(exist_ok=True)
    (uci / name).write_text(uci_text)
    out = tmp_path / "var" / "etc" / "otagw.conf"
    if out.exists():
        out.unlink()
    script = '. "%s"; . "%s"; otagw_uci2ini "%s"' % (STUB, HELPER, out)
    r = run([need("dash"), "-c", script], env={"UCI_DIR": str(uci)}, check=False, timeout=30)
    return r.returncode, r.stderr, out.read_text() if out.exists() else None


FULL_UCI = r"""
package otagw

config gateway 'main'
	option enabled '1'
	option user 'root'
	option jail '1'
	option log_level 'debug'
	option syslog '1'
	option data_dir '@DATA@'
	option bundle_key ''
	option import_interval '7'

config http 'http'
	option bind '127.0.0.1'
	option port '@HTTP@'
	option api_token 'tok #1 "x" ;y'
	option www_dir '@WWW@'

# an anonymous section is found by its type
config tcp
	option port '@TCP@'
	option codec 'frame'

config cache 'cache'
	option max_bytes '268435456'

config cloud 'cloud'

config serial 'line1'
	option path '/dev/ttyUSB7'
	option baud '9600'
	option parity 'even'
	option rs485 '1'

config serial 'spare'
	option enabled '0'
	option path '/dev/ttyS3'

config serial
	option path '/dev/ttyS4'
	option product 'meter'
"""

FULL_INI = """# Generated from /etc/config/otagw by /etc/init.d/otagw: edit that file.

[gateway]
log_level = "debug"
syslog = "1"
data_dir = "@DATA@"
import_interval = "7"

[http]
bind = "127.0.0.1"
port = "@HTTP@"
api_token = "tok #1 "x" ;y"
www_dir = "@WWW@"

[tcp]
port = "@TCP@"
codec = "frame"

[cache]
max_bytes = "268435456"

[cloud]

[serial line1]
path = "/dev/ttyUSB7"
baud = "9600"
parity = "even"
rs485 = "1"

[serial cfg000008]
path = "/dev/ttyS4"
product = "meter"
"""


def fill(text, **kw):
    for k, v in kw.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def test_uci2ini_maps_every_section(tmp_path):
    v = dict(DATA=tmp_path / "data", HTTP=free_port(), TCP=free_port(), WWW=tmp_path)
    rc, err, ini = uci2ini(tmp_path, fill(FULL_UCI, **v))
    assert rc == 0, err
    assert ini == fill(FULL_INI, **v)
    mode = os.stat(tmp_path / "var" / "etc" / "otagw.conf").st_mode & 0o777
    assert mode == 0o640, oct(mode)   # it holds tokens


def start_daemon(binary, ini, data, port, token=None, timeout=10.0):
    """Starts otagw on ini; waits for /api/health; returns the process."""
    p = subprocess.Popen([binary, "-c", str(ini), "-d", str(data)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise AssertionError("otagw exited %d on %s:\n%s" % (p.returncode, ini,
                                                                  p.stderr.read()))
        if health(port, token) is not None:
            return p
        time.sleep(0.1)
    stop(p)
    raise AssertionError("otagw did not answer /api/health on port %d" % port)


def health(port, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d/api/health" % port)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)
        return "killed"


def test_daemon_accepts_the_mapped_ini(tmp_path, build_dir):
    """The generated INI starts the real daemon, and the quoted token with '#',
    '"' and ';' in it arrives intact (the right one answers 200, a cut one
    401)."""
    v = dict(DATA=tmp_path / "data", HTTP=free_port(), TCP=free_port(), WWW=tmp_path)
    rc, err, ini = uci2ini(tmp_path, fill(FULL_UCI, **v))
    assert rc == 0, err
    token = 'tok #1 "x" ;y'
    p = start_daemon(os.path.join(build_dir, "otagw"), tmp_path / "var/etc/otagw.conf",
                     v["DATA"], v["HTTP"], token)
    try:
        assert health(v["HTTP"], token) == 200
        assert health(v["HTTP"], "tok") == 401
        assert health(v["HTTP"]) == 401
    finally:
        assert stop(p) == 0


def test_packaged_uci_config_starts_the_daemon(tmp_path, build_dir):
    """/etc/config/otagw as shipped (data_dir and ports moved into the test's
    reach) maps to an INI the daemon runs with."""
    with open(UCI_DEFAULT) as f:
        text = f.read()
    http, tcp = free_port(), free_port()
    text = text.replace("'/srv/otagw'", "'%s'" % (tmp_path / "data"))
    text = text.replace("option port '8080'", "option port '%d'" % http)
    text = text.replace("option port '9000'", "option port '%d'" % tcp)
    rc, err, ini = uci2ini(tmp_path, text)
    assert rc == 0, err
    assert '[cache]\nmax_bytes = "268435456"' in ini
    p = start_daemon(os.path.join(build_dir, "otagw"), tmp_path / "var/etc/otagw.conf",
                     tmp_path / "data", http)
    try:
        assert health(http) == 200
    finally:
        assert stop(p) == 0
    assert os.path.isfile(tmp_path / "data" / "otagw.db")


@pytest.mark.parametrize("uci,why", [
    ("config http 'http'\n\toption prot '8080'\n", "unknown option otagw.http.prot"),
    ("config gateway 'gateway'\n\toption data_dri '/x'\n", "otagw.gateway.data_dri"),
    ("config serial 's1'\n\toption baudrate '9600'\n", "otagw.s1.baudrate"),
    ("config htpp 'x'\n\toption port '1'\n", "unknown section type 'htpp'"),
    ("config http 'a'\nconfig http 'b'\n", "more than one 'http' section"),
    ("config cloud 'cloud'\n\tlist url 'ws://a'\n", "otagw.cloud.url is a list"),
    ("config cloud 'cloud'\n\toption token 'a\nb'\n", "cannot span lines"),
])
def test_uci2ini_refuses_bad_config(tmp_path, uci, why):
    rc, err, ini = uci2ini(tmp_path, uci)
    assert rc == 1 and why in err, err
    assert ini is None


def helper_keys():
    script = '. "%s"; for t in %s serial; do eval "echo $t: \\$OTAGW_KEYS_$t"; done' % (
        HELPER, " ".join(SINGLE))
    r = run([need("dash"), "-c", script], timeout=30)
    out = {}
    for line in r.stdout.splitlines():
        t, keys = line.split(":", 1)
        out[t] = keys.split()
    return out


def daemon_keys(binary):
    """{section: [keys]} from `otagw --print-config`, serial included."""
    out, sec = {}, None
    for line in run([binary, "--print-config"]).stdout.splitlines():
        m = re.match(r"^#?\[(\w+)( NAME)?\]$", line)
        if m:
            sec = m.group(1)
            out[sec] = []
            continue
        m = re.match(r"^#(\w+) = ", line)
        if m and sec:
            out[sec].append(m.group(1))
    return out


def test_helper_knows_every_daemon_key(build_dir):
    want = daemon_keys(os.path.join(build_dir, "otagw"))
    assert set(want) == set(SINGLE) | {"serial"}
    assert helper_keys() == want


def test_packaged_uci_config_lists_every_key(build_dir):
    """Every daemon key appears in /etc/config/otagw (serial ones in the
    commented example), so a site sees what it can set."""
    with open(UCI_DEFAULT) as f:
        text = f.read()
    sections = re.split(r"^#?config ", text, flags=re.M)[1:]
    found = {}
    for s in sections:
        t = s.split()[0]
        found[t] = re.findall(r"^#?\toption (\w+) ", s, re.M)
    want = daemon_keys(os.path.join(build_dir, "otagw"))
    for t, keys in want.items():
        missing = set(keys) - set(found.get(t, []))
        assert not missing, "%s: %s" % (t, sorted(missing))


# --- the init script -------------------------------------------------------

HARNESS = r"""
. "%(stub)s"
IPKG_INSTROOT=%(root)s
id() { echo otagw; }
chown() { echo "chown $*" >>"$PROCD_LOG"; }
chgrp() { echo "chgrp $*" >>"$PROCD_LOG"; }
. "%(init)s"
CONF=%(conf)s
start_service
echo "start_service=$?" >>"$PROCD_LOG"
service_triggers
"""


def init_run(tmp_path, uci_text, passwd="root:x:0:0::/root:/bin/ash\n"):
    root = tmp_path / "instroot"
    (root / "usr/share/otagw").mkdir(parents=True, exist_ok=True)
    shutil.copy(HELPER, root / "usr/share/otagw/otagw-uci2ini.sh")
    uci = tmp_path / "uci"
    uci.mkdir(exist_ok=True)
    (uci / "otagw").write_text(uci_text)
    (tmp_path / "passwd").write_text(passwd)
    log = tmp_path / "procd.log"
    if log.exists():
        log.unlink()
    conf = tmp_path / "var" / "etc" / "otagw.conf"
    script = HARNESS % dict(stub=STUB, root=root, init=INIT, conf=conf)
    r = run([need("dash"), "-c", script], check=False, timeout=30,
            env={"UCI_DIR": str(uci), "PROCD_LOG": str(log),
                 "STUB_PASSWD": str(tmp_path / "passwd")})
    calls = log.read_text().splitlines() if log.exists() else []
    return r, calls, conf


INIT_UCI = """
config gateway 'gateway'
	option user '%(user)s'
	option jail '%(jail)s'
	option enabled '%(enabled)s'
	option data_dir '%(data)s'
	option bundle_key '/nonexistent/key.pem'

config http 'http'
	option port '0'
	option www_dir '%(www)s'

config serial 'line1'
	option path '/dev/null'
"""


def init_uci(tmp_path, user="otagw", jail="1", enabled="1"):
    (tmp_path / "www").mkdir(exist_ok=True)
    return INIT_UCI % dict(user=user, jail=jail, enabled=enabled, data=tmp_path / "data",
                           www=tmp_path / "www")


def test_init_hands_procd_a_jailed_unprivileged_instance(tmp_path):
    r, calls, conf = init_run(tmp_path, init_uci(tmp_path),
                              passwd="otagw:x:440:440::/var/run/otagw:/bin/false\n")
    data = str(tmp_path / "data")
    assert "start_service=0" in calls, (r.stderr, calls)
    assert conf.is_file()
    i = calls.index("procd_open_instance")
    j = calls.index("procd_close_instance")
    inst = calls[i:j + 1]
    assert "procd_set_param|command|/usr/sbin/otagw|-c|%s|-d|%s" % (conf, data) in inst
    for want in ("procd_set_param|file|%s" % conf, "procd_set_param|respawn",
                 "procd_set_param|stderr|1", "procd_set_param|user|otagw",
                 "procd_set_param|group|otagw", "procd_add_jail|otagw|log",
                 "procd_add_jail_mount|%s" % conf, "procd_add_jail_mount|%s" % (tmp_path / "www"),
                 "procd_add_jail_mount_rw|%s" % data, "procd_add_jail_mount_rw|/dev/null"):
        assert want in inst, (want, inst)
    # a key file that is not there is not mounted (ujail would refuse to start)
    assert not [c for c in inst if "/nonexistent/" in c], inst
    # the data directory and the INI go to the daemon's user; the serial port to its group
    assert "chown otagw:otagw %s" % data in calls
    assert "chgrp otagw %s" % conf in calls
    assert "chgrp otagw /dev/null" in calls
    assert os.path.isdir(data)
    assert calls[-1] == "procd_add_reload_trigger|otagw"


def test_init_without_jail_and_as_root(tmp_path):
    r, calls, conf = init_run(tmp_path, init_uci(tmp_path, user="root", jail="0"))
    assert "start_service=0" in calls, (r.stderr, calls)
    assert not [c for c in calls if c.startswith("procd_add_jail")], calls
    assert not [c for c in calls if c.startswith(("chown", "chgrp"))], calls
    assert not [c for c in calls if "|user|" in c or "|group|" in c], calls
    assert "procd_open_instance" in calls


def test_init_refuses_an_unknown_user(tmp_path):
    """procd would run the daemon as root when the user is missing: the init
    stops instead."""
    r, calls, conf = init_run(tmp_path, init_uci(tmp_path, user="nosuchuser"))
    assert "start_service=1" in calls
    assert "procd_open_instance" not in calls
    assert "user 'nosuchuser' does not exist" in r.stderr


def test_init_disabled_starts_nothing(tmp_path):
    r, calls, conf = init_run(tmp_path, init_uci(tmp_path, user="root", enabled="0"))
    assert "start_service=0" in calls
    assert "procd_open_instance" not in calls


def test_init_refuses_a_bad_uci_config(tmp_path):
    r, calls, conf = init_run(tmp_path, init_uci(tmp_path, user="root") +
                              "\tlist path '/dev/ttyS9'\n")
    assert "start_service=1" in calls
    assert "procd_open_instance" not in calls
    assert "is a list" in r.stderr and not conf.exists()


# --- static checks -----------------------------------------------------------

SHELL_SCRIPTS = [INIT, HELPER, STUB, os.path.join(REPO, "tests", "cross", "run.sh")]


def test_shellcheck():
    sc = need("shellcheck")
    r = run([sc, "-x", "--severity=style"] + SHELL_SCRIPTS, check=False, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_shellcheck_catches_a_mistake(tmp_path):
    """The check above can fail: an unquoted variable in the init's dialect."""
    with open(INIT) as f:
        text = f.read()
    bad = tmp_path / "otagw.init"
    bad.write_text(text.replace('mkdir -p "$data_dir"', "mkdir -p $data_dir"))
    r = run([need("shellcheck"), "--severity=style", "-e", "SC1091", str(bad)], check=False,
            timeout=60)
    assert r.returncode != 0 and "SC2086" in r.stdout


def test_init_script_dialect_and_procd():
    with open(INIT) as f:
        text = f.read()
    assert text.startswith("#!/bin/sh /etc/rc.common\n")
    assert re.search(r"^# shellcheck shell=dash", text, re.M)
    assert re.search(r"^USE_PROCD=1$", text, re.M)
    assert re.search(r"^START=\d+$", text, re.M)
    assert re.search(r"^start_service\(\) \{", text, re.M)
    assert re.search(r"^service_triggers\(\) \{\n\tprocd_add_reload_trigger \"otagw\"", text,
                     re.M)
    # bash-only syntax would break OpenWrt's ash
    assert "[[" not in text and "function " not in text
    r = run([need("dash"), "-n", INIT], check=False, timeout=30)
    assert r.returncode == 0, r.stderr
    r = run([need("dash"), "-n", HELPER], check=False, timeout=30)
    assert r.returncode == 0, r.stderr


def make_assignments(text):
    """NAME:=value / NAME=value / NAME+=value lines of a makefile (not in
    define blocks), as {NAME: [values]}."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z_][A-Z0-9_]*)\s*(:=|\+=|\?=|=)\s*(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(3).strip())
    return out


def define_block(text, name):
    m = re.search(r"^define %s\n(.*?)^endef$" % re.escape(name), text, re.M | re.S)
    assert m, "no define %s" % name
    return m.group(1)


def test_openwrt_package_makefile():
    with open(os.path.join(PKG, "Makefile")) as f:
        text = f.read()
    with open(os.path.join(REPO, "Makefile")) as f:
        version = re.search(r"^VERSION\s*:=\s*(\S+)", f.read(), re.M).group(1)
    a = make_assignments(text)
    assert text.index("include $(TOPDIR)/rules.mk") < text.index("PKG_NAME:=")
    assert text.index("PKG_RELEASE:=") < text.index("include $(INCLUDE_DIR)/package.mk")
    assert a["PKG_NAME"] == ["otagw"]
    assert a["PKG_VERSION"] == [version]
    assert re.fullmatch(r"[1-9]\d*", a["PKG_RELEASE"][0])
    assert a["PKG_LICENSE"] == ["MIT"] and a["PKG_LICENSE_FILES"] == ["LICENSE"]
    assert a["PKG_SOURCE"] == ["$(PKG_NAME)-$(PKG_VERSION).tar.gz"]

    pkg = define_block(text, "Package/otagw")
    fields = dict(re.findall(r"^\s*([A-Z]+):=(.*)$", pkg, re.M))
    for k in ("SECTION", "CATEGORY", "TITLE", "DEPENDS"):
        assert fields.get(k, "").strip(), k
    deps = fields["DEPENDS"].split()
    assert all(d.startswith("+") for d in deps), deps
    deps = {d[1:] for d in deps}
    assert {"libsqlite3", "cJSON", "libarchive", "libmbedtls"} <= deps, deps
    assert [d for d in deps if d.startswith("libwebsockets-")], deps
    assert fields["USERID"].startswith("otagw")

    assert define_block(text, "Package/otagw/conffiles").split() == ["/etc/config/otagw"]
    inst = define_block(text, "Package/otagw/install")
    for want in ("$(INSTALL_BIN) $(PKG_INSTALL_DIR)/usr/sbin/otagw $(1)/usr/sbin/",
                 "$(INSTALL_BIN) ./files/otagw.init $(1)/etc/init.d/otagw",
                 "$(INSTALL_CONF) ./files/otagw.config $(1)/etc/config/otagw",
                 "./files/otagw-uci2ini.sh $(1)/usr/share/otagw/",
                 "$(PKG_INSTALL_DIR)/usr/share/otagw/www"):
        assert want in inst, want
    assert all(line.startswith("\t") for line in inst.splitlines() if line.strip())
    for f in re.findall(r"\./files/(\S+)", inst):
        assert os.path.isfile(os.path.join(FILES, f)), f
    # what the init sources is where the package puts it
    with open(INIT) as f:
        assert '"$IPKG_INSTROOT/usr/share/otagw/otagw-uci2ini.sh"' in f.read()
    assert text.rstrip().endswith("$(eval $(call BuildPackage,otagw))")
