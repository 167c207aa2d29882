"""`edgebuild fleet`: the fleet file's errors, and an end-to-end fleet of the tiny recipe on two AVR
boards whose assignment is checked against the builds' own report.json figures and a brute-force
optimum computed here."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import textwrap

import pytest

from edgebuild.errors import ConfigError
from edgebuild.fleet.config import load_fleet
from edgebuild_testlib import TINY, cli, run_cli

needs_avr = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("simavr")),
                               reason="avr-gcc and simavr are needed (./install.sh installs them)")


@pytest.mark.parametrize("body, field", [
    ("name: f\nnodes: [{board: uno, colour: red}]\nworkloads: [{name: a, recipe: r.yaml, rate_hz: 1}]",
     "nodes.0.colour"),
    ("name: f\nnodes: [{board: uno, count: 2, names: [a, b]}]\nworkloads: [{name: a, recipe: r.yaml, rate_hz: 1}]",
     "nodes.0"),
    ("name: f\nnodes: [{board: uno}]\nworkloads: [{name: a, recipe: r.yaml, rate_hz: 0}]", "workloads.0.rate_hz"),
    ("name: f\nnodes: [{board: uno}]\nworkloads: [{name: a, recipe: r.yaml, rate_hz: 1}, "
     "{name: a, recipe: r.yaml, rate_hz: 2}]", "(top level)"),
])
def test_fleet_file_errors_name_file_and_field(tmp_path, body, field):
    path = tmp_path / "fleet.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as e:
        load_fleet(path)
    assert e.value.file == str(path) and e.value.field == field and e.value.fix


def test_cli_reports_a_missing_recipe_without_traceback(tmp_path):
    (tmp_path / "fleet.yaml").write_text(
        "name: f\nnodes: [{board: uno}]\nworkloads: [{name: a, recipe: nowhere.yaml, rate_hz: 1}]\n")
    proc = run_cli("fleet", "fleet.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "fleet.yaml" in proc.stderr and "workloads.recipe" in proc.stderr and "Traceback" not in proc.stderr


@needs_avr
def test_fleet_builds_and_assigns_from_real_reports(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "tiny.yaml").write_text(TINY)
    (tmp_path / "fleet.yaml").write_text(textwrap.dedent("""\
        name: t
        nodes:
          - {board: uno, count: 1}
          - {board: mega2560, names: [m1]}
        workloads:
          - {name: a, recipe: recipes/tiny.yaml, rate_hz: 20}
          - {name: b, recipe: recipes/tiny.yaml, overrides: [verify.samples=20], rate_hz: 30}
        """))
    proc = cli("fleet", "fleet.yaml", "--cache", "cache", cwd=tmp_path)
    out = tmp_path / "build" / "fleet-t"
    doc = json.loads((out / "assignment.json").read_text())
    assert "uno-1" in proc.stdout and (out / "schedulers.png").stat().st_size > 0
    rates = {"a": 20, "b": 30}
    reports = {(w, b): json.loads((out / "builds" / f"{w}@{b}" / "report.json").read_text())
               for w in rates for b in ("uno", "mega2560")}
    node_board = {"uno-1": "uno", "m1": "mega2560"}

    def figures(w, b):
        r = reports[(w, b)]
        return rates[w] * r["latency"]["ms"] / 1000, rates[w] * r["energy"]["from_measured_cycles_uj"], r
    # brute force over the 4 assignments, from the reports alone
    best = None
    for nodes in itertools.product(node_board, repeat=2):
        loads = {n: sum(figures(w, node_board[n])[0] for w, m in zip(rates, nodes) if m == n) for n in node_board}
        if max(loads.values()) <= 1:
            e = sum(figures(w, node_board[m])[1] for w, m in zip(rates, nodes))
            best = min(best or (e, nodes), (e, nodes))
    assert best is not None
    assert doc["feasible"] and doc["total_energy_uw"] == pytest.approx(best[0], rel=1e-9)
    rows = {r["node"]: r for r in doc["nodes"]}
    for n, board in node_board.items():
        ws = rows[n]["models"]
        assert rows[n]["load"] == pytest.approx(sum(figures(w, board)[0] for w in ws), abs=1e-5)
        assert rows[n]["flash_bytes"] == sum(figures(w, board)[2]["memory"]["flash_bytes"] for w in ws)
        assert rows[n]["sram_bytes"] == max((figures(w, board)[2]["memory"]["sram_peak_bytes"] for w in ws), default=0)
        for fw in rows[n]["firmware"]:
            assert (tmp_path / fw / "firmware.hex").is_file()
    with open(out / "assignment.csv") as f:
        assert {r["node"] for r in csv.DictReader(f)} == set(node_board)
