"""Adaptive table: entries equal the direct solve at grid points; fast lookup; the C form agrees."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time

import numpy as np
import pytest

from edgebuild.errors import BudgetError, ConfigError
from edgebuild.partition import Link, build_table, solve
from partition_ref import random_dag, ref_cost

BW = [1e4, 5e4, 2e5, 5e7]
EN = [1e-3, 5e-3, 2e-2, np.inf]
SR = [800, 1500, 2500, 1e9]


def _check_grid(costs, link, objective):
    tab = build_table(costs, link, objective, bandwidths=BW, energies=EN, srams=SR)
    for i, b in enumerate(BW):
        for j, e in enumerate(EN):
            for k, s in enumerate(SR):
                sid = tab.lookup(b, e, s)
                try:
                    plan = solve(costs, link.with_bandwidth(b), objective, memory_bytes=s,
                                 energy_budget_j=None if np.isinf(e) else e)
                except BudgetError:
                    assert sid == -1
                    continue
                assert sid >= 0 and tab.splits[sid] == plan.device
                t, en, m = ref_cost(costs, tab.splits[sid], b, link.latency_ms,
                                    link.energy_per_byte_uj)
                assert m <= s and en <= e * (1 + 1e-9)
    return tab


@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_chain_table_equals_solve(objective):
    _check_grid(random_dag(11, 10, chain=True), Link(1e6, 3.0, 0.3), objective)


@pytest.mark.parametrize("seed", range(3))
def test_dag_table_equals_solve(seed):
    tab = _check_grid(random_dag(40 + seed, 9, weights=seed == 2), Link(1e6, 3.0, 0.3), "latency")
    assert len(tab.splits) >= 2   # the context changes the split


def test_lookup_rounds_down_and_is_fast():
    costs = random_dag(5, 12, chain=True)
    link = Link(1e6, 2.0, 0.2)
    tab = build_table(costs, link, bandwidths=np.geomspace(1e5, 1e8, 24),
                      energies=np.geomspace(1e-4, 1e-1, 16), srams=np.linspace(200, 8000, 16))
    rng = np.random.default_rng(0)
    for _ in range(300):
        b, e, s = 10 ** rng.uniform(4.5, 8.5), 10 ** rng.uniform(-4.5, -0.5), rng.uniform(0, 9e3)
        sid = tab.lookup(b, e, s)
        if sid >= 0:   # the chosen split meets the actual (not only the grid) budgets
            _, en, m = ref_cost(costs, tab.splits[sid], b, 2.0, 0.2)
            assert m <= s and en <= e
    assert tab.lookup(1e6, 1e-5, 5000) == -1 and tab.lookup(1e6, 1e-2, 100) == -1
    times = []
    for _ in range(2000):
        t0 = time.perf_counter()
        tab.lookup(3.3e6, 2.2e-3, 1234.0)
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 1e-4


def test_bad_axis_is_a_config_error():
    with pytest.raises(ConfigError, match="bandwidths"):
        build_table(random_dag(0, 3, chain=True), Link(1e6), bandwidths=[2e6, 1e6],
                    energies=[1.0], srams=[1e4])


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs host gcc")
def test_c_table_lookup_matches_python(tmp_path):
    costs = random_dag(42, 8)
    tab = build_table(costs, Link(1e6, 3.0, 0.3), bandwidths=BW, energies=EN, srams=SR)
    rng = np.random.default_rng(1)
    queries = [tuple(float(np.float32(v)) for v in
                     (10 ** rng.uniform(3.5, 8), 10 ** rng.uniform(-3.5, 0), rng.uniform(0, 4000)))
               for _ in range(200)]
    queries += [(float(b), float(e), float(s)) for b in BW for e in EN[:-1] for s in SR[:-1]]
    main = "\n".join(f"  printf(\"%d\\n\", (int)edge_split_lookup("
                     f"(float){b!r}, (float){e!r}, (float){s!r}));" for b, e, s in queries)
    src = tmp_path / "t.c"
    src.write_text(tab.to_c() + "#include <stdio.h>\nint main(void) {\n" + main + "\n}\n")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-Wno-unused-function", "-o",
                    str(tmp_path / "t"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True, check=True)
    got = [int(x) for x in out.stdout.split()]
    want = [tab.lookup(b, e, s) % 256 for b, e, s in queries]
    assert got == want
