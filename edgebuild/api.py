"""edgebuild's public Python API: build, compose and sweep recipes from a notebook or a script.

    import edgebuild
    r = edgebuild.build("recipes/mnist_uno.yaml", ["verify.samples=50"])
    print(r.accuracy.device, r.memory.flash_bytes, r.latency.ms)
    print(r.stages["verify"].status, r.html)

The command line is a thin layer over these functions, and sweeps, the fleet and the search share
their single build path (edgebuild/driver.py). Errors a user can cause are `EdgebuildError`s
(edgebuild.errors) naming the file, the field and the fix; a measured budget miss is a
`BudgetError` carrying the finished `Report` as ``.report``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgebuild.driver import cache_dir as _cache_dir
from edgebuild.driver import run_config
from edgebuild.errors import BudgetError, EdgebuildError

__all__ = ["Figures", "Report", "Stage", "SweepResult", "build", "check_measured", "load_recipe", "sweep"]

PathLike = str | os.PathLike


class Figures(Mapping):
    """A read-only view of one section of report.json with its keys as attributes.

    ``r.memory.flash_bytes`` is ``report["memory"]["flash_bytes"]``; nested sections are Figures
    too, lists and numbers are returned as they are; a missing key raises AttributeError naming
    the keys there are. It is a Mapping, so ``dict(r.memory)`` and ``r.memory["flash_bytes"]`` work.
    """

    __slots__ = ("_data", "_where")

    def __init__(self, data: Mapping, where: str = "report"):
        object.__setattr__(self, "_data", dict(data))
        object.__setattr__(self, "_where", where)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{self._where} has no figure {name!r}; it has: {', '.join(self._data)}") from None

    def __getitem__(self, key):
        v = self._data[key]
        return Figures(v, f"{self._where}.{key}") if isinstance(v, Mapping) else v

    def __setattr__(self, name, value):
        raise AttributeError("report figures are read-only")

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __dir__(self):
        return [*self._data, *super().__dir__()]

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self._data))

    def __repr__(self) -> str:
        return f"Figures({self._where}: {', '.join(self._data)})"


@dataclass(frozen=True)
class Stage:
    """One rule of the build: ``status`` is ran, cached or cutoff (its inputs' outputs were unchanged)."""

    name: str
    status: str
    seconds: float
    key: str


@dataclass(frozen=True)
class Report:
    """A finished build: report.json's sections as attributes (``accuracy``, ``memory``, ``latency``,
    ``verify``, ``model``, ``dataset``, ``energy``, ``compression``, ``partition``, ``layers``, ...),
    the stages of this build, and where its outputs are.

    ``build_dir`` holds report.json, report.html and a folder per rule's outputs (firmware/,
    codegen/, ...); ``artifacts`` are paths relative to it, ``elf`` and ``hex`` absolute.
    """

    data: dict
    build_dir: Path
    stages: dict[str, Stage] = field(default_factory=dict)

    @classmethod
    def load(cls, build_dir: PathLike) -> Report:
        """The Report of a build folder (its report.json), e.g. one point of a sweep."""
        build_dir = Path(build_dir)
        path = build_dir / "report.json"
        if not path.is_file():
            raise EdgebuildError(f"{path} does not exist", file=str(path),
                                 fix="build the recipe first (edgebuild.build or `edgebuild RECIPE`)")
        data = json.loads(path.read_text())
        stages = {name: Stage(name, s.get("status"), s.get("seconds"), s.get("key"))
                  for name, s in (data.get("stages") or {}).items()}
        return cls(data, build_dir, stages)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("data", "build_dir", "stages"):
            raise AttributeError(name)
        return Figures(self.data, "report").__getattr__(name)

    def __getitem__(self, key):
        return Figures(self.data, "report")[key]

    @property
    def json(self) -> Path:
        return self.build_dir / "report.json"

    @property
    def html(self) -> Path:
        return self.build_dir / "report.html"

    @property
    def elf(self) -> Path | None:
        rel = (self.data.get("artifacts") or {}).get("elf")
        return self.build_dir / rel if rel else None

    @property
    def hex(self) -> Path | None:
        rel = (self.data.get("artifacts") or {}).get("hex")
        return self.build_dir / rel if rel else None

    def __repr__(self) -> str:
        return f"Report({self.data.get('recipe')} on {self.data.get('target')}, {self.build_dir})"


def load_recipe(recipe: PathLike, overrides: Iterable[str] = (), *, cache: PathLike | None = None) -> dict:
    """The recipe composed by Hydra with ``overrides`` (``key=value``, ``target=NAME``) and validated:
    a plain dict with the target board filled in. Raises ConfigError naming the file and field."""
    from edgebuild.config import load_recipe as _load

    return _load(str(recipe), list(overrides), cache_dir=_cache_dir(cache))


def build(recipe: PathLike | Mapping, overrides: Iterable[str] = (), *, cache: PathLike | None = None,
          jobs: int = 1, dry_run: bool = False, explain: bool = False, build_dir: PathLike | None = None,
          pipeline: PathLike | None = None, check_budget: bool = True, debug: bool = False) -> Report | None:
    """Build ``recipe`` (a YAML path, or a dict from `load_recipe`) and return its Report.

    Only the rules a change touches run; the rest come from the content-addressed ``cache``
    (default $EDGEBUILD_CACHE or ./cache). Outputs go to ``build_dir`` (default build/<recipe name>).
    ``dry_run`` prints what would run and returns None. With ``check_budget`` a firmware that
    misses a compression budget when measured raises BudgetError (its ``report`` attribute is the
    finished Report: the firmware and report are kept). ``debug`` prints the traceback of a rule
    that failed with an internal error.
    """
    config = dict(recipe) if isinstance(recipe, Mapping) else load_recipe(recipe, overrides, cache=cache)
    if config.get("search"):
        raise EdgebuildError("the recipe has a search section: it builds one model per board",
                             file=None if isinstance(recipe, Mapping) else str(recipe), field="search",
                             fix="run `edgebuild search RECIPE`, or drop the search section to build one model")
    out = Path(build_dir) if build_dir is not None else Path("build") / config["name"]
    run_config(config, label=config["name"], build_dir=out, cache=cache, pipeline=pipeline, jobs=jobs,
                     dry_run=dry_run, explain=explain, debug=debug)
    if dry_run or not (out / "report.json").is_file():
        return None
    report = Report.load(out)
    if check_budget:
        check_measured(report, recipe=None if isinstance(recipe, Mapping) else str(recipe))
    return report


def check_measured(report: Report, recipe: str | None = None) -> None:
    """BudgetError when the firmware misses a compression budget as measured in the simulator
    (the compress stage's search only sees predictions)."""
    from edgebuild.sweeps import point_row, resource_misses

    misses = resource_misses(report.data, point_row(report.json))
    if misses:
        err = BudgetError("the built firmware misses the budget when measured: " + "; ".join(misses.values()),
                          shortfalls={k: {"measured": v} for k, v in misses.items()}, file=recipe,
                          field=f"compression.{next(iter(misses))}",
                          fix="loosen the budget, or raise the target's energy.cycle_model_error (the search "
                              "aims that far under the latency and energy budgets); the firmware and "
                              f"{report.json} are kept")
        err.report = report
        raise err


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: one row per point (status, overrides, accuracy, flash, SRAM, cycles, ...),
    the summary files (csv, json, html) and each point's Report."""

    rows: list[dict]
    paths: dict[str, Path]
    build_root: Path

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] != "ok"]

    def report(self, point: str) -> Report:
        return Report.load(self.build_root / point)

    def best(self) -> dict | None:
        """The point with the highest device accuracy within every budget (None if there is none)."""
        from edgebuild.report.sweep import best_point

        return best_point(self.rows)


def sweep(recipe: PathLike, overrides: Sequence[str], *, cache: PathLike | None = None, jobs: int = 1,
          parallel: int = 1, launcher: str | None = None, ray_address: str | None = None,
          build_dir: PathLike | None = None, pipeline: PathLike | None = None, explain: bool = False,
          trials: int | None = None, seed: int = 0) -> SweepResult:
    """Run a Hydra multirun over ``overrides`` (``key=a,b`` sweeps; with ``trials`` an Optuna search
    over ``key=interval(lo,hi)``/``choice(...)``), every point a full build sharing one cache.

    A failed point is reported in its row and the others go on. Writes sweep.{csv,json,html} to
    ``build_dir`` (default build/<recipe name>).
    """
    from edgebuild.report.sweep import write_sweep_summary
    from edgebuild.sweeps import SweepOptions, run_sweep

    if trials is not None and trials < 1:
        raise EdgebuildError("trials must be at least 1", field="trials", fix="e.g. trials=20 (--trials 20)")
    name = load_recipe(recipe, [], cache=cache)["name"]
    build_root = Path(build_dir) if build_dir is not None else Path("build") / name
    opts = SweepOptions(cache_dir=_cache_dir(cache), build_root=build_root, pipeline=pipeline, jobs=jobs,
                        explain=explain, parallel=max(1, parallel), launcher=launcher, ray_address=ray_address,
                        trials=trials, seed=seed)
    rows = run_sweep(str(recipe), list(overrides), opts)
    paths = write_sweep_summary(rows, build_root, title=f"{name}: {'tune' if trials else 'sweep'}")
    return SweepResult(rows, {k: Path(v) for k, v in paths.items()}, build_root)
