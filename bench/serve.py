"""A fresh `kumo serve` for the driver benchmarks (`ns_boot.py`, `volume_iops.py`): the
release build (or KUMO_BENCH_BIN, another build, for an A/B in one session) on a free
loopback port with a data directory of its own, removed when the benchmark ends."""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(driver, prefix):
    """Yields (endpoint, data directory) of a server on `driver`, healthy."""
    binary = os.environ.get("KUMO_BENCH_BIN") or os.path.join(ROOT, "target", "release", "kumo")
    data = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    log = open(os.path.join(data, "serve.log"), "ab")
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--driver", driver], stdout=log, stderr=log)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(2000):
            try:
                urllib.request.urlopen(endpoint + "/_kumo/health", timeout=1)
                break
            except OSError:
                time.sleep(0.02)
        yield endpoint, data
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def timed(rounds, call):
    """The seconds each of `rounds` calls took."""
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out
