"""`edgebuild search`: recipe errors, and one search across two AVR boards end to end (tiny model).

The end-to-end test checks the driver's claims against independent evidence: the chosen model's
shapes are read from the ONNX file the board was built from (onnx, not the search's bookkeeping),
the flash figure against avr-size's own reading of the ELF, bit-exactness from each board's
report.json, and the budget from the measured figures.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest

from edgebuild_testlib import TINY, cli, recipe_dir, run_cli

needs_avr = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("avr-size")),
                               reason="avr-gcc toolchain not installed")

# The tiny recipe with an 8-filter conv (6,422 B of flash on the Uno as built), searched for the
# Uno under a 5,500-byte flash budget (so it must prune) and for the Mega under a looser one.
MULTI = TINY.replace("name: tiny", "name: multi").replace("out: 4, kernel: 3", "out: 8, kernel: 3") + """\
search:
  method: policy
  targets:
    - {target: uno, flash_bytes: 5500, max_accuracy_drop: 0.05}
    - {target: mega2560, flash_bytes: 9000, max_accuracy_drop: 0.05}
  policy: {episodes: 30}
  finetune: {epochs: 1, lr: 0.002}
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return recipe_dir(tmp_path_factory, "search", {"tiny": TINY, "multi": MULTI})


def _write(work, name: str, text: str) -> str:
    (work / "recipes" / f"{name}.yaml").write_text(text)
    return f"recipes/{name}.yaml"


@pytest.mark.parametrize("edit, field", [
    (lambda s: s.replace("method: policy", "method: nas"), "search.nas"),
    (lambda s: s.replace("target: mega2560", "target: uno"), "more than once"),
    (lambda s: s.replace("target: mega2560", "target: mega9999"), "search.targets[1].target"),
    (lambda s: s.replace("flash_bytes: 5500", "flash_bytes: -3"), "search.targets"),
])
def test_bad_search_section_is_a_clear_error(work, edit, field):
    recipe = _write(work, "bad", edit(MULTI))
    proc = run_cli("search", recipe, "--cache", "cache", cwd=work)
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr and "Traceback" not in proc.stderr
    assert "bad.yaml" in proc.stderr


def test_impossible_board_budget_names_its_recipe_line(work):
    recipe = _write(work, "impossible", MULTI.replace("flash_bytes: 9000", "flash_bytes: 1500"))
    proc = run_cli("search", recipe, "--cache", "cache", cwd=work)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    last = "\n".join(err[-2:])
    assert "impossible.yaml: field 'search.targets[1].flash_bytes'" in last and "mega2560" in last
    assert "over by" in last and "fix:" in last and "Traceback" not in proc.stderr
    # the failed rule's line and the fix name the recipe's field too, not the single-board compression section
    assert "compression." not in proc.stderr and "search.targets[1].max_accuracy_drop" in last


def test_recipe_without_search_section(work):
    proc = run_cli("search", "recipes/tiny.yaml", "--cache", "cache", cwd=work)
    assert proc.returncode == 2
    assert "search" in proc.stderr and "fix:" in proc.stderr and "Traceback" not in proc.stderr


@needs_avr
def test_search_builds_and_verifies_every_board(work):
    import onnx

    proc = cli("search", "recipes/multi.yaml", "--cache", "cache", cwd=work)
    out = work / "build" / "multi"
    doc = json.loads((out / "search.json").read_text())
    assert [r["target"] for r in doc["targets"]] == ["uno", "mega2560"]
    widths = {}
    for row in doc["targets"]:
        name = row["target"]
        report = json.loads((out / name / "report.json").read_text())
        assert report["target"] == name
        assert report["verify"]["bit_exact"] == report["verify"]["samples"] > 0
        elf = next((out / name / "firmware").rglob("*.elf"))
        size = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
        sections = {l.split()[0]: int(l.split()[1]) for l in size.splitlines() if l.startswith(".")}
        assert report["memory"]["flash_bytes"] == sections[".text"] + sections.get(".data", 0)
        assert row["measured"]["flash_bytes"] == report["memory"]["flash_bytes"] <= row["limits"]["flash_bytes"]
        model = onnx.load(str(out / "search" / name / "model.onnx"))
        conv = next(i for i in model.graph.initializer if len(i.dims) == 4)
        widths[name] = conv.dims[0]
    assert widths["uno"] < 8, "the Uno's budget needs fewer filters than the 8 of the recipe's model"
    assert widths["uno"] <= widths["mega2560"]
    rows = list(csv.DictReader(open(out / "search.csv")))
    assert [r["fits"] for r in rows] == ["True", "True"]
    assert (out / "search.png").stat().st_size > 0
    # A second run: the search rule and every board's build come from the cache.
    again = cli("search", "recipes/multi.yaml", "--cache", "cache", cwd=work)
    assert json.loads((out / "search.json").read_text())["search_status"] == "cached"
    assert not any(line.split()[:1] == ["ran"] for line in again.stderr.splitlines()), again.stderr


@needs_avr
@pytest.mark.slow
def test_mnist_multi_fits_and_verifies_on_three_boards(tmp_path):
    """The shipped recipe end to end: every board's model meets its budget when measured and is
    bit-exact in its simulator (simavr, simavr, QEMU)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm not installed")
    cli("search", root / "recipes" / "mnist_multi.yaml", "--cache", tmp_path / "cache",
        "--build-dir", tmp_path / "build", cwd=tmp_path)
    doc = json.loads((tmp_path / "build" / "search.json").read_text())
    assert [r["target"] for r in doc["targets"]] == ["uno", "mega2560", "netduinoplus2"]
    for row in doc["targets"]:
        assert not row["misses"], row
        assert row["bit_exact"] == row["samples"] == 300
        for key, limit in row["limits"].items():
            if limit is not None:
                assert row["measured"][key] <= limit, (row["target"], key)
