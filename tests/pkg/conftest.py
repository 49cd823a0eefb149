# SPDX-License-Identifier: MIT
"""Fixtures of the packaging tests (tests/pkg/): one build and one
`make install` into a temporary DESTDIR per session.

    /usr/bin/python3 -m pytest -q tests/pkg

These tests build their own copy of the daemon (into a temp dir, never
build/), so they need no OTAGW_BIN. tests/pkg is a package (__init__.py) so
that this conftest never shadows tests/it's when both run in one pytest."""

import pytest

from .helpers import make


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    """A private build directory (B=...) holding build/otagw's equivalent."""
    b = tmp_path_factory.mktemp("pkg-build")
    make("B=%s" % b, "all")
    return str(b)


@pytest.fixture(scope="session")
def installed(build_dir, tmp_path_factory):
    """`make install DESTDIR=<tmp>` with the defaults (PREFIX=/usr)."""
    d = str(tmp_path_factory.mktemp("destdir"))
    make("B=%s" % build_dir, "install", "DESTDIR=%s" % d)
    return d


@pytest.fixture
def destdir(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    return str(d)
