"""Sweeps through the real CLI on a tiny recipe: parallel points, one shared cache, a failing point,
the summary, and `edgebuild tune` (Optuna through hydra-optuna-sweeper).

Figures are checked against each point's own report.json (written by the report stage), never
against the sweep's summary code.
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
from pathlib import Path

import pytest
from edgebuild_testlib import TINY, recipe_dir, run_cli as cli

pytestmark = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("gcc") and shutil.which("simavr")),
                                reason="avr-gcc, gcc and simavr are needed (./install.sh installs them)")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return recipe_dir(tmp_path_factory, "sweep", {"tiny": TINY})


@pytest.fixture(scope="module")
def sweep(work):
    """6 points, 2 at a time, on an empty cache; target=nosuch fails in 2 of them."""
    proc = cli("recipes/tiny.yaml", "-m", "verify.samples=20,30", "target=uno,host,nosuch", "-P", "2",
               "--cache", "cache", cwd=work)
    return proc, work / "build" / "tiny"


def reports(root: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(root.glob("*/report.json"))}


def test_points_build_in_parallel_sharing_one_cache(sweep):
    proc, root = sweep
    assert proc.returncode == 2, proc.stderr          # some points failed
    assert "Traceback" not in proc.stderr
    built = reports(root)
    assert sorted(built) == ["target=host,verify.samples=20", "target=host,verify.samples=30",
                             "target=uno,verify.samples=20", "target=uno,verify.samples=30"]
    for name, r in built.items():
        samples = int(name.rsplit("=", 1)[1])
        assert r["target"] == name.split(",")[0].split("=")[1]
        assert r["verify"]["samples"] == samples and r["verify"]["bit_exact"] == samples
    # The model was trained once for the whole sweep; every other point took it from the cache.
    train = sorted(r["stages"]["train"]["status"] for r in built.values())
    assert train == ["cached", "cached", "cached", "ran"]
    assert len({r["stages"]["train"]["key"] for r in built.values()}) == 1


def test_failed_points_are_reported_and_the_others_go_on(sweep):
    proc, root = sweep
    assert proc.stderr.count("FAILED") == 2
    assert "unknown target 'nosuch'" in proc.stderr
    assert "sweep: 4 done, 0 running, 2 failed, 0 pending (of 6)" in proc.stderr
    assert "sweep: 4 of 6 points built" in proc.stderr
    log = root / "target=nosuch,verify.samples=20" / "build.log"
    assert "unknown target 'nosuch'" in log.read_text()


def test_summary_has_one_row_per_point(sweep):
    _, root = sweep
    with open(root / "sweep.csv") as f:
        rows = {r["point"]: r for r in csv.DictReader(f)}
    assert len(rows) == 6
    for name, r in reports(root).items():
        row = rows[name]
        assert row["status"] == "ok"
        assert float(row["accuracy"]) == r["accuracy"]["device"]
        if r["memory"]["flash_bytes"] is not None:
            assert int(row["flash_bytes"]) == r["memory"]["flash_bytes"]
        statuses = [s["status"] for s in r["stages"].values()]
        assert int(row["rules_ran"]) == statuses.count("ran")
        assert int(row["cache_hits"]) == statuses.count("cached") + statuses.count("cutoff")
    uno = reports(root)["target=uno,verify.samples=20"]
    # uno: 5 V x 9.5 mA (targets/uno.yaml) x latency
    assert float(rows["target=uno,verify.samples=20"]["energy_uj"]) == pytest.approx(5.0 * 9.5 * uno["latency"]["ms"])
    assert rows["target=nosuch,verify.samples=30"]["status"] == "failed"
    summary = json.loads((root / "sweep.json").read_text())
    assert len(summary["points"]) == 6 and summary["pareto"]["flash_bytes"]
    html = (root / "sweep.html").read_text()
    assert "data:image/png;base64," in html and (root / "sweep.png").stat().st_size > 10_000


def test_sequential_rerun_is_all_cached(sweep, work):
    proc = cli("recipes/tiny.yaml", "verify.samples=20,30", "-m", "target=uno", "--cache", "cache", cwd=work)
    assert proc.returncode == 0, proc.stderr
    for name in ("target=uno,verify.samples=20", "target=uno,verify.samples=30"):
        r = reports(work / "build" / "tiny")[name]
        assert {s["status"] for n, s in r["stages"].items() if n != "report"} == {"cached"}


def test_tune_maximises_accuracy_within_budget(sweep, work):
    proc = cli("tune", "recipes/tiny.yaml", "verify.samples=choice(20,30,40)", "target=uno",
               "compression.max_accuracy_drop=interval(0.0,0.05)", "--trials", "4", "--build-dir", "build/tune",
               "--cache", "cache", cwd=work)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((work / "build" / "tune" / "sweep.json").read_text())
    assert len(summary["points"]) == 4
    # Independent pick: from each point's report.json, the most accurate point whose int8 model
    # lost no more than its own max_accuracy_drop.
    ok = {}
    for name, r in reports(work / "build" / "tune").items():
        acc = r["accuracy"]
        if acc["float_full_test"] - acc["int8_full_test"] <= r["budget"]["max_accuracy_drop"] + 1e-12:
            ok[name] = acc["device"]
    best = max(ok.values())
    assert ok[summary["best"]] == best
    assert f"accuracy {100 * best:.1f}%" in proc.stdout


def test_sweep_errors_are_one_line(work):
    proc = cli("recipes/tiny.yaml", "-m", "verify.samples=20,,", "--cache", "cache", cwd=work)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and "fix:" in proc.stderr


def test_submitit_local_launcher_runs_the_slurm_code_path(sweep, work):
    """hydra-submitit-launcher's local executor: the SLURM path (one submitted job per point) on this machine."""
    proc = cli("recipes/tiny.yaml", "-m", "verify.samples=21,22", "--launcher", "submitit_local",
               "--build-dir", "build/submitit", "--cache", "cache", cwd=work)
    assert proc.returncode == 0, proc.stderr
    for samples in (21, 22):
        r = json.loads((work / "build" / "submitit" / f"verify.samples={samples}" / "report.json").read_text())
        assert r["verify"]["bit_exact"] == samples
        assert r["stages"]["train"]["status"] == "cached"
    assert (work / "build" / "submitit" / ".hydra" / ".submitit").is_dir()


def test_unreachable_ray_cluster_fails_fast(work):
    with socket.socket() as s:        # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli("recipes/tiny.yaml", "-m", "verify.samples=21,22", "--ray-address", f"127.0.0.1:{port}",
               "--cache", "cache", cwd=work)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in proc.stderr and "ray start --head" in proc.stderr


@pytest.mark.slow
def test_mnist_uno_six_point_sweep_trains_once(tmp_path):
    """The issue's sweep: 3 budgets x 2 boards of recipes/mnist_uno.yaml, 2 points at a time."""
    repo = Path(__file__).resolve().parents[2]
    proc = cli(repo / "recipes" / "mnist_uno.yaml", "-m", "compression.max_accuracy_drop=0.005,0.01,0.02",
               "target=uno,host", "-P", "2", "--cache", tmp_path / "cache", "--build-dir", tmp_path / "build",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    built = reports(tmp_path / "build")
    assert len(built) == 6
    assert sorted(r["stages"]["train"]["status"] for r in built.values()) == ["cached"] * 5 + ["ran"]
    for name, r in built.items():
        assert r["budget"]["max_accuracy_drop"] == float(name.split(",")[0].split("=")[1])
        assert r["verify"]["bit_exact"] == r["verify"]["samples"] == 500
