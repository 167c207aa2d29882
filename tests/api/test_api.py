"""The public Python API (edgebuild.build / load_recipe / Report) and the module boundaries behind it.

The API build is checked against the CLI's own build of the same recipe (separate caches, so both
really ran), the flash map against the linker's sizes (avr-size), and the import graph by parsing
the sources, not by trusting a docstring.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import pytest
from edgebuild_testlib import TINY, cli, recipe_dir

import edgebuild
from edgebuild.api import Figures, Report
from edgebuild.errors import ConfigError, EdgebuildError

ROOT = Path(edgebuild.__file__).parent

needs_avr = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("avr-size")),
                               reason="avr-gcc is needed (./install.sh installs it)")


# --- the import graph -----------------------------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    """edgebuild module -> edgebuild modules it imports (anywhere in the file, lazy imports included)."""
    mods = {_module_name(p): p for p in ROOT.rglob("*.py")}
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            g.add_edges_from((name, t) for t in targets if t in mods and t != name)
    return g


def test_nothing_imports_the_cli():
    g = import_graph()
    assert "edgebuild.cli" in g
    assert list(g.predecessors("edgebuild.cli")) == []


def test_subpackages_have_no_import_cycle():
    """Between subpackages (edgebuild.model, edgebuild.codegen, ...) imports go one way; the root
    package is left out because its lazy `__getattr__` points at the API on purpose."""
    g = import_graph()
    top = nx.DiGraph()
    for a, b in g.edges:
        pa, pb = (".".join(m.split(".")[:2]) for m in (a, b))
        if pa != pb and "edgebuild" not in (pa, pb):
            top.add_edge(pa, pb)
    assert "edgebuild.api" in top and "edgebuild.driver" in top
    assert list(nx.simple_cycles(top)) == []


def test_import_edgebuild_is_light():
    """The no-op rebuild path imports the package: the API (and numpy/hydra) load on first use only."""
    code = ("import sys, edgebuild; heavy = [m for m in ('numpy', 'onnx', 'hydra', 'edgebuild.api') "
            "if m in sys.modules]; print(heavy); edgebuild.build; print('edgebuild.api' in sys.modules)")
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


# --- Figures and Report without a build -----------------------------------------------------------

def test_figures_reads_like_attributes_and_a_mapping():
    f = Figures({"flash_bytes": 10, "tflm": {"total": 3}, "rows": [1, 2]}, "report.memory")
    assert f.flash_bytes == 10 and f["flash_bytes"] == 10 and dict(f)["rows"] == [1, 2]
    assert isinstance(f.tflm, Figures) and f.tflm.total == 3
    with pytest.raises(AttributeError, match=r"report.memory has no figure 'sram'.*flash_bytes"):
        f.sram
    with pytest.raises(AttributeError, match="read-only"):
        f.flash_bytes = 3
    assert f.to_dict() == {"flash_bytes": 10, "tflm": {"total": 3}, "rows": [1, 2]}


def test_report_load_of_a_missing_build_names_the_file(tmp_path):
    with pytest.raises(EdgebuildError) as e:
        Report.load(tmp_path / "nothing")
    assert "report.json" in str(e.value) and "build the recipe first" in str(e.value)


def test_report_load_reads_sections_stages_and_artifacts(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({
        "recipe": "r", "target": "uno", "accuracy": {"device": 0.5},
        "artifacts": {"elf": "firmware/firmware.elf"},
        "stages": {"import": {"status": "cached", "seconds": 0.1, "key": "ab"}}}))
    r = Report.load(tmp_path)
    assert r.accuracy.device == 0.5 and r["target"] == "uno"
    assert r.stages["import"].status == "cached" and r.stages["import"].key == "ab"
    assert r.elf == tmp_path / "firmware" / "firmware.elf" and r.hex is None


def test_load_recipe_error_names_the_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        edgebuild.load_recipe(tmp_path / "missing.yaml")
    assert "missing.yaml" in str(e.value) and "recipe file not found" in str(e.value)


# --- a real build through the API -------------------------------------------------------------------

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return recipe_dir(tmp_path_factory, "api", {"tiny": TINY})


@pytest.fixture(scope="module")
def api_report(work):
    return edgebuild.build(work / "recipes" / "tiny.yaml", ["verify.samples=20"], cache=work / "cache-api",
                           build_dir=work / "build" / "api")


@needs_avr
def test_api_build_equals_the_cli_build(work, api_report):
    cli("recipes/tiny.yaml", "verify.samples=20", "--cache", "cache-cli", cwd=work)
    from_cli = json.loads((work / "build" / "tiny" / "report.json").read_text())
    r = api_report
    assert {s.status for s in r.stages.values()} <= {"ran", "cutoff"}
    for section in ("accuracy", "memory", "latency", "verify", "model", "linker_map"):
        assert r[section] == from_cli[section], section
    assert r.verify.bit_exact == r.verify.samples == 20
    assert r.elf.is_file() and r.hex.is_file()
    # Stage keys are content hashes: the same recipe gives the same keys in either cache (the
    # train output holds no wall-clock time, so import agrees too). Only report differs: it reads
    # verify.json, which records the simulator's wall-clock seconds that the report shows.
    keys = {n: s.key for n, s in r.stages.items()}
    cli_keys = {n: s["key"] for n, s in from_cli["stages"].items()}
    assert keys.pop("report") and cli_keys.pop("report") and keys == cli_keys


@needs_avr
def test_published_report_html_shows_the_stages(api_report):
    page = api_report.html.read_text()
    body = page.split("<!--eb:stages-->", 1)[1].split("<!--/eb:stages-->", 1)[0]
    for name, stage in api_report.stages.items():
        assert re.search(rf">\s*{name}\s*<", body), name
        assert stage.key[:12] in body


@needs_avr
def test_a_second_api_build_comes_from_the_cache(work, api_report):
    again = edgebuild.build(work / "recipes" / "tiny.yaml", ["verify.samples=20"], cache=work / "cache-api",
                            build_dir=work / "build" / "api")
    assert {s.status for s in again.stages.values()} == {"cached"}
    assert again.memory == api_report.memory


def _avr_size(elf: Path) -> dict[str, int]:
    out = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\.\w+)\s+(\d+)", out, re.M)}


@needs_avr
def test_flash_map_is_what_the_linker_placed(api_report):
    """The flash rows of the report's linker map add up to .text + .data as avr-size reads the ELF,
    and every model table the storage plan put in flash is there with the plan's size."""
    sizes = _avr_size(api_report.elf)
    lm = api_report.linker_map
    flash = [row for row in lm if row["medium"] == "flash"]
    assert sum(r["nbytes"] for r in flash) == sizes[".text"] + sizes[".data"] == api_report.memory.flash_bytes
    planned = {r["name"]: r["nbytes"] for r in api_report.memory_map if r["medium"] == "flash"}
    linked = {r["name"]: r["nbytes"] for r in flash if r["kind"] not in ("code", "other")}
    assert linked == planned
    code = next(r for r in flash if r["kind"] == "code")
    assert code["nbytes"] > 500        # the kernels, main and the UART loop are real code
    sram = [row for row in lm if row["medium"] == "sram"]
    assert sum(r["nbytes"] for r in sram) == api_report.memory.sram_peak_bytes
    arena = next(r for r in sram if r["kind"] == "arena")
    assert arena["nbytes"] == api_report.memory.sram_arena_bytes
