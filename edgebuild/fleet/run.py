"""`edgebuild fleet FLEET.yaml`: build every (workload, board type) pair, schedule, write the outputs.

Every pair is one normal build (same pipeline, same cache) into build/fleet-<name>/builds/<workload>@<board>/;
its report.json gives the real figures: load = rate x latency.ms / 1000, energy = rate x
energy.from_measured_cycles_uj (uJ/s; for boards timed by instruction count, as QEMU's, the
target's supply_v x active_current_ma x latency.ms, the same formula), flash = memory.flash_bytes, SRAM = memory.sram_peak_bytes,
limits = memory.flash_limit / sram_limit. A pair whose build fails a budget (BudgetError: the model
does not fit the board) is infeasible for every node of that board type.

Outputs in build/fleet-<name>/: assignment.json and assignment.csv (the chosen scheduler's node ->
models, load, energy, memory), schedulers.png (energy and load imbalance of every scheduler), and
per node the firmware of each model it runs (the pair's build folder; a node with several models
gets one image per model: a combined multi-model image is not generated).
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from edgebuild.errors import BudgetError, ConfigError, EdgebuildError
from edgebuild.fleet.config import Fleet, load_fleet


@dataclass
class PairFigures:
    """Figures of one workload built for one board (None when it does not fit)."""

    build_dir: Path
    latency_ms: float | None = None
    energy_uj: float | None = None
    flash_bytes: float | None = None
    sram_bytes: float | None = None
    flash_limit: float | None = None
    sram_limit: float | None = None
    error: str | None = None


def _recipe_path(recipe: str, fleet_file: Path) -> str:
    p = Path(recipe)
    if p.is_file() or p.is_absolute():
        return str(p)
    beside = fleet_file.parent / recipe
    if beside.is_file():
        return str(beside)
    raise ConfigError(f"recipe {recipe} not found", file=str(fleet_file), field="workloads.recipe",
                      fix="give the recipe path relative to the working folder or to the fleet file")


def build_pair(opts: dict, recipe: str, overrides: list[str], board: str, build_dir: Path) -> PairFigures:
    """Build ``recipe`` for ``board`` through the normal cached pipeline and read its report.json;
    ``opts`` are `run_config`'s cache, pipeline and debug."""
    from edgebuild.config import load_recipe
    from edgebuild.driver import cache_dir, run_config

    config = load_recipe(recipe, [*overrides, f"target={board}"], cache_dir=cache_dir(opts.get("cache")))
    try:
        run_config(config, label=f"{config['name']}@{board}", build_dir=build_dir, **opts)
    except EdgebuildError as e:
        if isinstance(e, BudgetError) or isinstance(e.__cause__, BudgetError):
            return PairFigures(build_dir, error=str(e).splitlines()[0])
        raise
    return measured_figures(config, build_dir)


def measured_figures(config: dict, build_dir: Path) -> PairFigures:
    """Latency, energy, flash and SRAM of a finished build, from its report.json.

    Energy: the report's energy from measured cycles; for boards timed by instruction count (QEMU)
    the target's supply_v x active_current_ma x the measured time, the formula report.py uses.
    """
    r = json.loads((build_dir / "report.json").read_text())
    mem, lat, energy = r["memory"], r["latency"], r.get("energy") or {}
    uj = energy.get("from_measured_cycles_uj")
    power = config["target"].get("energy") or {}
    if uj is None and lat.get("ms") and "supply_v" in power and "active_current_ma" in power:
        uj = lat["ms"] * 1e-3 * power["supply_v"] * power["active_current_ma"] * 1e-3 * 1e6
    if lat.get("ms") is None or uj is None:
        raise ConfigError(f"the build in {build_dir} for {config['target']['name']} reports no latency or energy",
                          file=str(build_dir / "report.json"), field="target",
                          fix="use a board with a simulator (cycle counts)")
    return PairFigures(build_dir, lat["ms"], uj, mem["flash_bytes"], mem["sram_peak_bytes"],
                       mem["flash_limit"], mem["sram_limit"])


def make_problem(fleet: Fleet, pairs: dict[tuple[str, str], PairFigures]):
    """The scheduling Problem and the node list [(name, board, group)] from the built pairs."""
    import numpy as np

    from edgebuild.fleet.problem import Problem

    nodes = [(n, g.board, g) for g in fleet.nodes for n in g.node_names()]
    T, N = len(fleet.workloads), len(nodes)
    mats = {k: np.zeros((T, N)) for k in ("load", "energy", "flash", "sram")}
    fits = np.zeros((T, N), bool)
    flash_limit, sram_limit = np.full(N, np.inf), np.full(N, np.inf)
    for t, w in enumerate(fleet.workloads):
        for n, (_, board, _) in enumerate(nodes):
            f = pairs[(w.name, board)]
            if f.error is not None:
                continue
            fits[t, n] = True
            mats["load"][t, n] = w.rate_hz * f.latency_ms / 1000.0
            mats["energy"][t, n] = w.rate_hz * f.energy_uj
            mats["flash"][t, n], mats["sram"][t, n] = f.flash_bytes, f.sram_bytes
            flash_limit[n], sram_limit[n] = f.flash_limit, f.sram_limit
    budget = np.array([g.energy_budget_mw * 1000.0 if g.energy_budget_mw else np.inf for _, _, g in nodes])
    cap = np.array([g.capacity for _, _, g in nodes])
    return Problem(fits=fits, flash_limit=flash_limit, sram_limit=sram_limit, energy_budget=budget,
                   capacity=cap, **mats), nodes


def run_fleet(fleet_file: str | Path, *, cache_dir: Path, pipeline: Path | None = None,
              out_root: Path = Path("build"), debug: bool = False) -> dict:
    """Build, schedule and write the outputs of one fleet file; returns the assignment document."""
    from edgebuild.fleet.problem import UNASSIGNED, evaluate
    from edgebuild.fleet.schedulers import SCHEDULERS

    fleet_file = Path(fleet_file)
    fleet = load_fleet(fleet_file)
    out = out_root / f"fleet-{fleet.name}"
    opts = {"cache": cache_dir, "pipeline": pipeline, "debug": debug}
    boards = sorted({g.board for g in fleet.nodes})
    pairs = {}
    for w in fleet.workloads:
        recipe = _recipe_path(w.recipe, fleet_file)
        for board in boards:
            print(f"fleet: building {w.name} for {board}", file=sys.stderr)
            pairs[(w.name, board)] = build_pair(opts, recipe, w.overrides, board, out / "builds" / f"{w.name}@{board}")
    problem, nodes = make_problem(fleet, pairs)
    results = {}
    for name, fn in SCHEDULERS.items():
        a = fn(problem, seed=fleet.seed) if name in ("ant_colony", "genetic") else fn(problem)
        results[name] = (a, evaluate(problem, a))
    assign, metrics = results[fleet.scheduler]
    unplaced = [fleet.workloads[t].name for t in range(problem.n_tasks) if assign[t] == UNASSIGNED]
    rows = []
    for n, (node, board, group) in enumerate(nodes):
        ts = [t for t in range(problem.n_tasks) if assign[t] == n]
        rows.append({
            "node": node, "board": board, "link": group.link,
            "models": [fleet.workloads[t].name for t in ts],
            "load": round(float(sum(problem.load[t, n] for t in ts)), 6),
            "energy_uw": round(float(sum(problem.energy[t, n] for t in ts)), 3),
            "flash_bytes": int(sum(problem.flash[t, n] for t in ts)), "flash_limit": int(problem.flash_limit[n]),
            "sram_bytes": int(max((problem.sram[t, n] for t in ts), default=0)), "sram_limit": int(problem.sram_limit[n]),
            "firmware": [str(pairs[(fleet.workloads[t].name, board)].build_dir / "firmware") for t in ts],
        })
    doc = {"fleet": fleet.name, "scheduler": fleet.scheduler, "seed": fleet.seed,
           "total_energy_uw": metrics.energy, "makespan": metrics.makespan, "imbalance": metrics.imbalance,
           "feasible": metrics.feasible, "unassigned": unplaced, "nodes": rows,
           "infeasible_pairs": {f"{w}@{b}": f.error for (w, b), f in pairs.items() if f.error},
           "schedulers": {k: {"energy_uw": m.energy, "makespan": m.makespan, "imbalance": m.imbalance,
                              "feasible": m.feasible} for k, (_, m) in results.items()}}
    _write(out, doc, {k: m for k, (_, m) in results.items()})
    _print_table(doc, out)
    if unplaced:
        raise EdgebuildError(f"no node can take workload(s) {', '.join(unplaced)} within its budgets",
                             file=str(fleet_file), field="nodes",
                             fix="add boards, raise energy_budget_mw or lower the workloads' rate_hz")
    return doc


def _write(out: Path, doc: dict, metrics: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "assignment.json").write_text(json.dumps(doc, indent=2) + "\n")
    with open(out / "assignment.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["node", "board", "models", "load", "energy_uw", "flash_bytes", "flash_limit",
                    "sram_bytes", "sram_limit", "firmware"])
        for r in doc["nodes"]:
            w.writerow([r["node"], r["board"], ";".join(r["models"]), r["load"], r["energy_uw"], r["flash_bytes"],
                        r["flash_limit"], r["sram_bytes"], r["sram_limit"], ";".join(r["firmware"])])
    names = list(metrics)
    labels = [n if metrics[n].feasible else f"{n}\n(not all placed)" for n in names]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(labels, [metrics[n].energy for n in names], color="tab:blue")
    ax1.set_ylabel("total inference energy (uJ/s)")
    ax2.bar(labels, [metrics[n].imbalance for n in names], color="tab:orange")
    ax2.set_ylabel("load imbalance (max/mean)")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"fleet {doc['fleet']}: schedulers")
    fig.tight_layout()
    fig.savefig(out / "schedulers.png", dpi=100)
    plt.close(fig)


def _print_table(doc: dict, out: Path) -> None:
    print(f"fleet {doc['fleet']} ({doc['scheduler']}): total energy {doc['total_energy_uw']:,.1f} uJ/s, "
          f"makespan {doc['makespan']:.3f}, imbalance {doc['imbalance']:.2f}")
    print(f"{'node':<16}{'board':<15}{'load':>7}{'uJ/s':>11}{'flash B':>16}{'SRAM B':>14}  models")
    for r in doc["nodes"]:
        print(f"{r['node']:<16}{r['board']:<15}{r['load']:>7.3f}{r['energy_uw']:>11,.1f}"
              f"{r['flash_bytes']:>8}/{r['flash_limit']:<7}{r['sram_bytes']:>6}/{r['sram_limit']:<7}  "
              f"{', '.join(r['models']) or '-'}")
    print(f"firmware: {', '.join(sorted({p for r in doc['nodes'] for p in r['firmware']})) or '-'}")
    print(f"outputs: {out / 'assignment.json'}, {out / 'assignment.csv'}, {out / 'schedulers.png'}")
