# SPDX-License-Identifier: MIT
"""vg_timeouts - a pytest plugin (-p vg_timeouts) that tests/lint/valgrind.sh loads: under
valgrind the daemon starts and answers 20-50x slower, so the fixed waits of the integration
helpers (tests/it/otagw_it.py: START_TIMEOUT 5 s, STOP_TIMEOUT 2 s, HTTP_TIMEOUT 5 s, and
run_once()'s 5 s) are multiplied by $OTAGW_IT_TIMEOUT_SCALE. Waits written into single tests
are not touched. Does nothing when otagw_it reads OTAGW_IT_TIMEOUT_SCALE itself."""

import os
import sys

IT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "it")


def pytest_configure(config):
    k = float(os.environ.get("OTAGW_IT_TIMEOUT_SCALE", "1"))
    if IT_DIR not in sys.path:
        sys.path.insert(0, IT_DIR)
    import otagw_it
    if k == 1 or hasattr(otagw_it, "TIMEOUT_SCALE"):
        return
    for name in ("START_TIMEOUT", "STOP_TIMEOUT", "HTTP_TIMEOUT"):
        setattr(otagw_it, name, getattr(otagw_it, name) * k)
    # default arguments were bound when the functions were defined
    for fn in (otagw_it.Gateway.wait_ready, otagw_it.Gateway.stop, otagw_it.run_once,
               otagw_it.http_request):
        names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
        defaults = list(fn.__defaults__ or ())
        first = len(names) - len(defaults)
        for i, n in enumerate(names[first:]):
            if n == "timeout" and isinstance(defaults[i], (int, float)):
                defaults[i] = defaults[i] * k
        fn.__defaults__ = tuple(defaults)
