"""The network cut of the offline course run: no network at all, but a working loopback.

`make course` and the notebook tests run the notebooks under ``network_cut_prefix()``; this
checks, cheaply, that the prefix does what the offline claim needs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import network_cut_prefix

# Runs under the prefix and reports what the network looks like from inside.
PROBE = r"""
import json, socket

report = {"interfaces": sorted(name for _, name in socket.if_nameindex())}
outside = {}
for address in (("192.0.2.1", 80), ("10.255.255.1", 80)):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(2)
    try:
        probe.connect(address)
        outside[address[0]] = "connected"
    except OSError as error:
        outside[address[0]] = [error.errno, error.strerror or str(error)]
    finally:
        probe.close()
report["outside"] = outside

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.settimeout(2)
try:
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    peer, _ = server.accept()
    client.sendall(b"ping")
    report["loopback"] = peer.recv(4).decode()
    client.close()
    peer.close()
except OSError as error:
    report["loopback"] = [error.errno, error.strerror or str(error)]
finally:
    server.close()
print(json.dumps(report))
"""


def test_network_cut_prefix_cuts_the_network_but_keeps_loopback():
    prefix = network_cut_prefix()
    if not prefix:
        pytest.skip(
            "this machine does not allow `unshare -n` (needs root or unprivileged user "
            "namespaces): the offline run cannot cut the network here"
        )
    done = subprocess.run(
        [*prefix, sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"the probe failed under {prefix}: {done.stderr[-2000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["interfaces"] == ["lo"], report  # a fresh network namespace: loopback only
    for address, outcome in report["outside"].items():
        assert outcome[1:] == ["Network is unreachable"], f"{address}: {outcome}"
    assert report["loopback"] == "ping", report  # local servers (MLflow, ...) still work
