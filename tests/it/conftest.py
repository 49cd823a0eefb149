# SPDX-License-Identifier: MIT
"""Fixtures for the otagw integration tests.

gw        a running otagw (fresh temp data dir, generated config, free port on
          127.0.0.1), ready when GET /api/health answers 200.
gw_token  the same with [http] api_token set; gw_token.req() sends the token
          unless told otherwise (auth=False, or headers={"Authorization": ...}).
gw_factory(token=None, config_extra="", start=True) for tests needing more.

Teardown sends SIGTERM, requires exit code 0 within 2 s and no sanitizer
report on stderr. The daemon's stderr is kept in <tmp>/otagw.stderr and
printed when a test fails."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import otagw_it  # noqa: E402

TOKEN = "it-secret-5f0c2a9e"


def pytest_sessionstart(session):
    """Run a private copy of the binary, so a rebuild of build/otagw by
    someone else during the run cannot swap it under us."""
    src = otagw_it.otagw_bin()
    if os.path.isfile(src):
        d = tempfile.mkdtemp(prefix="otagw-it-bin-")
        dst = os.path.join(d, "otagw")
        shutil.copy2(src, dst)
        otagw_it.BIN_COPY = dst
        otagw_it.BIN_SOURCE = src


def pytest_sessionfinish(session):
    if otagw_it.BIN_COPY:
        shutil.rmtree(os.path.dirname(otagw_it.BIN_COPY), ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(node):
    return any(getattr(getattr(node, "rep_" + w, None), "failed", False)
               for w in ("setup", "call"))


@pytest.fixture
def gw_factory(request, tmp_path):
    made = []

    def make(token=None, config_extra="", start=True, log_level="info"):
        wd = tmp_path / ("gw%d" % len(made))
        wd.mkdir()
        g = otagw_it.Gateway(str(wd), token=token, config_extra=config_extra,
                             log_level=log_level)
        made.append(g)
        if start:
            g.start()
        return g

    yield make

    problems = []
    for g in made:
        try:
            rc, _ = g.stop()
            if rc is not None and rc != 0:
                problems.append("otagw (%s) exited %d on SIGTERM" % (g.workdir, rc))
        except AssertionError as e:
            problems.append(str(e).splitlines()[0])
        bad = [c for c in g.exit_codes if c != 0]
        if bad and not problems:
            problems.append("otagw (%s) earlier exit codes: %r" % (g.workdir, g.exit_codes))
        alarms = otagw_it.alarms_in(g.stderr())
        if alarms:
            problems.append("sanitizer report in %s:\n  %s" % (g.stderr_path,
                                                              "\n  ".join(alarms[:20])))
    if _failed(request.node) or problems:
        for g in made:
            print("\n----- otagw stderr (%s), last 200 lines -----" % g.stderr_path)
            print(g.stderr(tail=200))
    assert not problems, "\n".join(problems)


@pytest.fixture
def gw(gw_factory):
    return gw_factory()


@pytest.fixture
def gw_token(gw_factory):
    return gw_factory(token=TOKEN)
