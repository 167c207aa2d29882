"""A sweep on a Ray cluster through Hydra's Ray launcher (hydra-ray-launcher).

Starts a local Ray head on 127.0.0.1 in its own process group, runs a 3-point sweep of the tiny
recipe on it with `--ray-address`, checks every point's report.json, and stops the head by its
process group.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from edgebuild_testlib import TINY


def _missing() -> list[str]:
    if importlib.util.find_spec("ray") is None:
        return ["ray"]
    return [] if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") else ["hydra-ray-launcher"]


pytestmark = [
    pytest.mark.skipif(bool(_missing()), reason=f"not installed: {', '.join(_missing())} "
                                                "(pip install ray; pip install --no-deps hydra-ray-launcher)"),
    pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("simavr")),
                       reason="avr-gcc and simavr are needed (./install.sh installs them)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head --block` on 127.0.0.1 in a new session; yields its address."""
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))   # short: Ray's socket paths must stay < 108 chars
    port = free_port()
    # Explicit: a private test cluster without token auth, whatever ~/.ray/auth_token holds (Ray 2.5x
    # turns token auth on for `ray start` when that file exists, and drivers then need RAY_AUTH_MODE=token).
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with open(temp / "head.log", "w") as log:
        head = subprocess.Popen([ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
                                 "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                                 f"--temp-dir={temp}"], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (temp / "head.log").read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray head did not start:\n{(temp / 'head.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)    # gcs_server, raylet and workers share the head's group
        except ProcessLookupError:
            pass
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_three_point_sweep_on_a_ray_cluster(ray_head, tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "tiny.yaml").write_text(TINY)
    driver = subprocess.Popen([sys.executable, "-m", "edgebuild.cli", "recipes/tiny.yaml", "-m",
                               "verify.samples=20,25,30", "--ray-address", ray_head, "--cache", "cache"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    _, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    assert "Connected to Ray cluster" in stderr
    assert "sweep: 3 done, 0 running, 0 failed, 0 pending (of 3)" in stderr
    trained = []
    for samples in (20, 25, 30):
        point = tmp_path / "build" / "tiny" / f"verify.samples={samples}"
        r = json.loads((point / "report.json").read_text())
        assert r["verify"] == {"samples": samples, "bit_exact": samples, "simulator": "simavr"}
        assert r["accuracy"]["device"] == r["accuracy"]["int8_host"]
        assert (point / r["artifacts"]["hex"]).is_file()
        trained.append(r["stages"]["train"]["status"])
        row = json.loads((point / "point.json").read_text())
        assert row["status"] == "ok" and row["pid"] != driver.pid    # built by a Ray worker
    assert sorted(trained) == ["cached", "cached", "ran"]
