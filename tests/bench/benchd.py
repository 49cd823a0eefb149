# SPDX-License-Identifier: MIT
"""benchd - starting and stopping otagw for the benchmarks in tests/bench/
(each keeps its own Daemon class for its requests; the process handling is
here once). Needs tests/it on sys.path for otagw_it."""

import os
import signal
import subprocess
import time

import otagw_it


def spawn(binary, workdir, http_port, extra="", ready=None, timeout=10.0, what=""):
    """Writes <workdir>/otagw.conf ([http] port, log_level warn, extra),
    starts binary with its log in <workdir>/otagw.log and data in
    <workdir>/data, and waits until ready() is true (default: /api/health
    answers 200), at most timeout s. Returns (proc, log file, config path);
    SystemExit when the daemon exits or does not come up."""
    os.makedirs(workdir, exist_ok=True)
    config = os.path.join(workdir, "otagw.conf")
    otagw_it.write_config(config, http_port, log_level="warn", extra=extra)
    log = open(os.path.join(workdir, "otagw.log"), "w")
    proc = subprocess.Popen([binary, "-c", config, "-d", os.path.join(workdir, "data")],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if ready is None:
        def ready():
            return otagw_it.http_request(http_port, "GET", "/api/health", timeout=1)[0] == 200
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("otagw exited with %d; see %s" % (proc.returncode, log.name))
        try:
            if ready():
                return proc, log, config
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(0.05)
    stop(proc, log)
    raise SystemExit("otagw did not come up%s within %.0f s; see %s" % (what, timeout, log.name))


def stop(proc, log, wait=10):
    """SIGTERM, then SIGKILL after wait s; closes the log."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    log.close()
