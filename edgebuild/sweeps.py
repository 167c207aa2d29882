"""Sweeps: `edgebuild RECIPE -m a=1,2 b=x,y` and `edgebuild tune RECIPE 'a=interval(0,1)'`.

Hydra runs them. Its sweeper turns the overrides into points (the BasicSweeper's cartesian product,
or the Optuna sweeper's search) and its launcher runs them: in this process (``basic``), in a local
process pool (``joblib``), on a Ray cluster (``ray``) or on SLURM (``submitit_slurm``). Every point
is one full build with its own build/<recipe>/<point>/ outputs against one shared cache, so points
share every stage whose key they share (the engine's per-key locks compute a rule once).

A point records its state in <point>/point.json (``running``, then its summary row); the driver
watches those files for progress and builds the summary from them. That works wherever the point
ran, provided build/ and the cache are on storage every worker sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from edgebuild.errors import ConfigError, EdgebuildError

LAUNCHERS = ("basic", "joblib", "ray", "submitit_local", "submitit_slurm")
POINT_FILE = "point.json"
_SWEEP_FIX = "write sweeps as key=a,b,c (e.g. target=uno,host verify.samples=100,200)"
_TUNE_FIX = ("write the search space as key=interval(lo,hi), key=range(a,b) or key=choice(x,y), "
             "e.g. 'compression.max_accuracy_drop=interval(0.005,0.03)'")


def parse_overrides(overrides: list[str], fix: str = _SWEEP_FIX) -> list:
    """Hydra's parse of the overrides; ConfigError (with ``fix``) when one does not parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise ConfigError(f"cannot parse sweep overrides: {str(e).splitlines()[0]}", fix=fix) from None


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """The list of points, each a list of plain `key=value` overrides (user spelling)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    batches = BasicSweeper.split_arguments(parse_overrides(overrides), max_batch_size=None)
    return [list(point) for batch in batches for point in batch]


def point_name(overrides: list[str]) -> str:
    """A folder-safe, readable name of one sweep point, e.g. `target=host,verify.samples=200`."""
    if not overrides:
        return "default"
    text = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", ",".join(sorted(overrides)))
    if len(text) <= 120:
        return text
    return f"{text[:107]}~{hashlib.sha256(text.encode()).hexdigest()[:12]}"   # long: unique, still readable


def user_override(override: str) -> str:
    """The user's spelling of an override edgebuild.config rewrote for Hydra (`++a=1` -> `a=1`,
    `targets@target=host` -> `target=host`)."""
    if override.startswith("targets@target="):
        return "target=" + override.split("=", 1)[1]
    return override[2:] if override.startswith("++") else override


@dataclass(frozen=True)
class PointTask:
    """The Hydra task function of a sweep: builds the job's point (picklable for every launcher).

    Paths are absolute so the task runs the same on any worker. With ``tune`` the task returns
    the point's accuracy (Optuna's objective), or None when the point failed or broke a budget
    (the Optuna sweeper records a failed trial); otherwise it returns the summary row. It never
    raises: one point must not stop the sweep.
    """

    recipe: str
    cache_dir: str
    build_root: str
    sweep_id: str
    pipeline: str | None = None
    jobs: int = 1
    explain: bool = False
    tune: bool = False

    def __call__(self, cfg) -> dict | float | None:
        from hydra.core.hydra_config import HydraConfig

        row = run_point(self, list(HydraConfig.get().overrides.task))
        if not self.tune:
            return row
        return row["accuracy"] if row["status"] == "ok" and not row["violations"] else None


def run_point(task: PointTask, overrides: list[str]) -> dict:
    """Build one point (``overrides`` in Hydra's spelling) and write its row to <point>/point.json.

    The build's console output goes to <point>/build.log. Every failure, expected or not, becomes a
    ``failed`` row so one point never stops the others.
    """
    user = [user_override(o) for o in overrides]
    name = point_name(user)
    point_dir = Path(task.build_root) / name
    point_dir.mkdir(parents=True, exist_ok=True)
    base = {"sweep": task.sweep_id, "point": name, "overrides": user, "host": socket.gethostname(),
            "pid": os.getpid(), "started": time.time()}
    _write_json(point_dir / POINT_FILE, {**base, "status": "running"})
    t0 = time.monotonic()
    result, error = None, None
    with open(point_dir / "build.log", "w") as log, redirect_stderr(log), redirect_stdout(log):
        try:
            result = _build_point(task, overrides, name, point_dir)
        except EdgebuildError as e:
            error = str(e)
            print(f"error: {e}", file=log)
        except Exception as e:   # a bug in one point must not stop the sweep; its traceback is in the log
            error = f"{type(e).__name__}: {e}"
            traceback.print_exc(file=log)
    row = {**base, **point_row(point_dir / "report.json" if result else None, result), "error": error,
           "status": "ok" if error is None else "failed", "seconds": round(time.monotonic() - t0, 2),
           "finished": time.time()}
    _write_json(point_dir / POINT_FILE, row)
    return row


def _build_point(task: PointTask, overrides: list[str], name: str, point_dir: Path):
    from edgebuild.config import load_recipe
    from edgebuild.driver import run_config

    config = load_recipe(task.recipe, overrides, cache_dir=Path(task.cache_dir))
    return run_config(config, label=f"{config['name']}/{name}", build_dir=point_dir, cache=task.cache_dir,
                      pipeline=task.pipeline, jobs=task.jobs, explain=task.explain)


def point_row(report_path: Path | None, result=None) -> dict:
    """The summary fields of one built point, from its report.json and the engine's result.

    accuracy is the device's (verified bit-exact against the int8 reference); energy per inference
    is the report's supply power x measured time (`energy.from_measured_cycles_uj`).
    """
    row = dict.fromkeys(("target", "accuracy", "accuracy_float", "accuracy_int8", "flash_bytes", "sram_bytes",
                         "cycles", "latency_ms", "energy_uj", "rules_ran", "cache_hits"))
    row["violations"] = []
    if result is not None:
        statuses = [r.status for r in result.rules.values()]
        row["rules_ran"] = statuses.count("ran")
        row["cache_hits"] = statuses.count("cached") + statuses.count("cutoff")
    if report_path is None or not report_path.is_file():
        return row
    r = json.loads(report_path.read_text())
    acc, mem, lat = r.get("accuracy", {}), r.get("memory", {}), r.get("latency", {})
    row.update(target=r.get("target"), accuracy=acc.get("device", acc.get("int8_host")),
               accuracy_float=acc.get("float_full_test"), accuracy_int8=acc.get("int8_full_test"),
               flash_bytes=mem.get("flash_bytes"), sram_bytes=mem.get("sram_peak_bytes"),
               cycles=lat.get("cycles"), latency_ms=lat.get("ms"),
               energy_uj=(r.get("energy") or {}).get("from_measured_cycles_uj"))
    row["violations"] = budget_violations(r, row)
    return row


def resource_misses(report: dict, row: dict) -> dict[str, str]:
    """The recipe's resource budgets (report.json `budget`, i.e. `compression`) that the built
    firmware breaks when measured: budget key -> words, e.g. {"energy_uj": "energy 12,052 uJ > ..."}."""
    budget, mem = report.get("budget") or {}, report.get("memory", {})
    limits = [("flash_bytes", "flash", row["flash_bytes"], budget.get("flash_bytes") or mem.get("flash_limit"), "B"),
              ("sram_bytes", "SRAM", row["sram_bytes"], budget.get("sram_bytes") or mem.get("sram_limit"), "B"),
              ("latency_ms", "latency", row["latency_ms"], budget.get("latency_ms"), "ms"),
              ("energy_uj", "energy", row["energy_uj"], budget.get("energy_uj"), "uJ")]
    return {key: f"{what} {value:,.4g} {unit} > {limit:,.4g} {unit} (over by {value - limit:,.4g} {unit})"
            for key, what, value, limit, unit in limits if value is not None and limit is not None and value > limit}


def budget_violations(report: dict, row: dict) -> list[str]:
    """The recipe budgets (report.json `budget`, i.e. `compression`) this point breaks, in words."""
    budget = report.get("budget") or {}
    out = list(resource_misses(report, row).values())
    drop = budget.get("max_accuracy_drop")
    if drop is not None and row["accuracy_float"] is not None and row["accuracy_int8"] is not None:
        lost = row["accuracy_float"] - row["accuracy_int8"]
        if lost > drop + 1e-12:
            out.append(f"accuracy drop {lost:.4f} > max_accuracy_drop {drop}")
    return out


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


class SweepMonitor:
    """Watches the point.json files of one sweep and prints progress (done / running / failed).

    Prints a line when a point finishes (its headline figures, or its error and log) and when the
    counts change. Lines go to the stream given at construction, even while a point redirects
    sys.stderr into its build log.
    """

    def __init__(self, build_root: Path, sweep_id: str, total: int, stream=None, interval: float = 0.5):
        self.build_root = Path(build_root)
        self.sweep_id = sweep_id
        self.total = total
        self.stream = stream or sys.stderr
        self.interval = interval
        self._seen: dict[tuple, dict] = {}
        self._last: tuple | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweep-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[dict]:
        """Stop watching; returns the final row of every finished point, in finishing order."""
        self._stop.set()
        self._thread.join()
        self.poll()
        return self.rows()

    def rows(self) -> list[dict]:
        """The final rows seen so far, in finishing order."""
        return list(self._seen.values())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """Read every point file once; print what changed."""
        running = 0
        for path in sorted(self.build_root.glob(f"*/{POINT_FILE}")):
            try:
                row = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if row.get("sweep") != self.sweep_id:
                continue
            if row.get("status") == "running":
                running += 1
                continue
            key = (row.get("point"), row.get("finished"))
            if key not in self._seen:
                self._seen[key] = row
                self._print(self._point_line(row))
        counts = (len([r for r in self.rows() if r["status"] == "ok"]), running,
                  len([r for r in self.rows() if r["status"] == "failed"]))
        if counts != self._last:
            self._last = counts
            done, running, failed = counts
            pending = max(self.total - done - running - failed, 0)
            self._print(f"sweep: {done} done, {running} running, {failed} failed, {pending} pending "
                        f"(of {self.total})")

    def _point_line(self, row: dict) -> str:
        n = len(self._seen)
        label = " ".join(row.get("overrides") or []) or "(defaults)"
        if row["status"] != "ok":
            lines = (row.get("error") or "").strip().splitlines() or ["failed"]
            fix = next((f"\n  {ln.strip()}" for ln in lines[1:] if ln.strip().startswith("fix:")), "")
            log = self.build_root / row["point"] / "build.log"
            return f"[{n}/{self.total}] FAILED {label}: {lines[0]}{fix}\n  log: {log}"
        acc = "—" if row.get("accuracy") is None else f"{100 * row['accuracy']:.1f}%"
        flash = "—" if row.get("flash_bytes") is None else f"{row['flash_bytes']:,} B"
        over = f", over budget: {'; '.join(row['violations'])}" if row.get("violations") else ""
        return (f"[{n}/{self.total}] ok {label}: accuracy {acc}, flash {flash}, {row['seconds']:.1f} s, "
                f"{row.get('cache_hits')} cached / {row.get('rules_ran')} ran{over}")

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


@dataclass
class SweepOptions:
    """How a sweep runs: where, with which launcher, how many points at once."""

    cache_dir: Path
    build_root: Path
    pipeline: Path | None = None
    jobs: int = 1
    explain: bool = False
    parallel: int = 1
    launcher: str | None = None
    ray_address: str | None = None
    trials: int | None = None
    seed: int = 0


def hydra_overrides(recipe: Path, overrides: list[str], opts: SweepOptions, build_root: Path) -> list[str]:
    """The Hydra command line of a sweep: the user's overrides plus launcher and sweeper settings."""
    from edgebuild.config import rewrite_overrides, target_dirs

    launcher = opts.launcher or ("ray" if opts.ray_address else "joblib" if opts.parallel > 1 else "basic")
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher '{launcher}'", field="--launcher",
                          fix=f"use one of: {', '.join(LAUNCHERS)}")
    searchpath = "[" + ",".join(f"file://{r}" for r in target_dirs(recipe)) + "]"
    out = rewrite_overrides(list(overrides)) + [
        f"hydra.searchpath={searchpath}", "hydra/job_logging=none", "hydra/hydra_logging=none",
        "hydra.output_subdir=null", "hydra.job.chdir=false",
        f"hydra.sweep.dir={build_root / '.hydra'}", "hydra.sweep.subdir=${hydra.job.num}"]
    if launcher != "basic":
        out.append(f"hydra/launcher={launcher}")
    if launcher == "joblib":
        out.append(f"hydra.launcher.n_jobs={opts.parallel}")
    if launcher == "ray" and opts.ray_address:
        # The launcher presets object_store_memory, which ray.init refuses when joining a cluster.
        out += [f"hydra.launcher.ray.init.address={opts.ray_address}",
                "++hydra.launcher.ray.init.object_store_memory=null"]
    if opts.trials is not None:
        out += ["hydra/sweeper=optuna", "hydra.sweeper.direction=maximize", f"hydra.sweeper.n_trials={opts.trials}",
                f"hydra.sweeper.n_jobs={opts.parallel}", f"hydra.sweeper.sampler.seed={opts.seed}",
                "hydra.sweeper.max_failure_rate=1.0", f"hydra.sweeper.study_name={recipe.stem}"]
    return out


def run_sweep(recipe: str | os.PathLike, overrides: list[str], opts: SweepOptions, stream=None) -> list[dict]:
    """Run every point of a sweep (``opts.trials`` set: an Optuna search) and return their rows.

    Raises ConfigError for a sweep Hydra cannot parse or compose, and EdgebuildError when the
    launcher cannot start (e.g. no Ray cluster at the address). Failed points are rows, not errors.
    """
    path = Path(recipe).resolve()
    if not path.is_file():
        raise ConfigError("recipe file not found", file=str(recipe),
                          fix="give the path of a recipe YAML, e.g. recipes/mnist_uno.yaml")
    build_root = Path(opts.build_root).resolve()
    sweep_id = uuid.uuid4().hex[:12]
    task = PointTask(recipe=str(path), cache_dir=str(Path(opts.cache_dir).resolve()), build_root=str(build_root),
                     sweep_id=sweep_id, pipeline=opts.pipeline and str(Path(opts.pipeline).resolve()),
                     jobs=opts.jobs, explain=opts.explain, tune=opts.trials is not None)
    user_points = [o for o in overrides if not o.startswith("hydra")]
    if opts.trials is None:
        total = len(expand_sweep(user_points))
    else:
        parse_overrides(user_points, fix=_TUNE_FIX)
        total = opts.trials
    monitor = SweepMonitor(build_root, sweep_id, total, stream=stream)
    build_root.mkdir(parents=True, exist_ok=True)
    hydra_args = hydra_overrides(path, overrides, opts, build_root)
    if opts.ray_address:
        check_reachable(opts.ray_address)
    monitor.start()
    try:
        _hydra_multirun(path, hydra_args, task)
    finally:
        rows = monitor.stop()
    return rows


_RAY_FIX = ("start one with `ray start --head --port=6379` and pass its address, e.g. --ray-address 127.0.0.1:6379; "
            "if the cluster uses token authentication, export RAY_AUTH_MODE=token (and its token) first")


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast when a HOST:PORT Ray address does not accept connections (ray.init would retry
    for minutes). Other address forms (auto, ray://) are left to Ray."""
    m = re.fullmatch(r"([A-Za-z0-9_.-]+):(\d+)", address)
    if not m:
        return
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout).close()
    except OSError as e:
        raise EdgebuildError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}",
                             field="--ray-address", fix=_RAY_FIX) from None


def _hydra_multirun(path: Path, overrides: list[str], task: PointTask) -> None:
    import logging

    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    # Progress and failures are the monitor's to print; keep the libraries' own lines quiet.
    logging.getLogger("hydra_plugins").setLevel(logging.ERROR)
    if task.tune:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2(task_name=path.stem, config_search_path=create_config_search_path(
            f"file://{path.parent}"))
        hydra.multirun(config_name=path.stem, task_function=task, overrides=overrides, with_log_configuration=False)
    except (HydraException, OmegaConfBaseException) as e:
        lines = str(e).strip().splitlines() or [type(e).__name__]
        raise ConfigError(f"cannot run the sweep: {lines[0]}", file=str(path),
                          fix=_TUNE_FIX if task.tune else _SWEEP_FIX) from None
    except ValueError as e:
        if not (task.tune and "No trials are completed" in str(e)):
            raise
        # Optuna asks for the best trial at the end; with every trial failed there is none. The
        # rows say why each point failed.
    except ConnectionError as e:
        raise EdgebuildError(f"cannot reach the Ray cluster: {e}", field="--ray-address", fix=_RAY_FIX) from None
    finally:
        GlobalHydra.instance().clear()
