"""`edgebuild search RECIPE`: one search for every board of ``search.targets``, then a verified build per board.

1. The recipe's model (trained or imported) and dataset come from the normal cached rules.
2. The ``search`` rule (cached like any other: same recipe, same boards, same code -> no rerun)
   runs the recipe's method across all targets and writes, per target, the chosen model as ONNX.
3. Each chosen model is built for its board through the normal pipeline (quantise, layout, codegen,
   firmware, simulation) into build/<name>/<target>/, with its own report.json/html.
4. The measured figures (not the search's predictions) are checked against each target's budget
   and summarised in build/<name>/search.json, search.csv and search.png, and printed as a table.

A target whose measured firmware misses a budget, or whose simulation is not bit-exact, fails the
command (exit 2) after every target has been built and the summary written.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from edgebuild.errors import ConfigError, EdgebuildError

LIMITS = ("flash_bytes", "sram_bytes", "energy_uj", "latency_ms")


def _targets(recipe: str, config: dict, overrides: list[str], cache_dir: Path) -> list[dict]:
    """Each search target's composed board description and limits (validated by composing the
    recipe with ``target=NAME``)."""
    from edgebuild.config import available_targets, load_recipe

    known = available_targets(Path(recipe).resolve())
    out = []
    for i, t in enumerate(config["search"]["targets"]):
        if t["target"] not in known:
            raise ConfigError(f"unknown board '{t['target']}'", file=recipe, field=f"search.targets[{i}].target",
                              fix=f"use one of: {', '.join(known)} (or add targets/{t['target']}.yaml)")
        composed = load_recipe(recipe, [*overrides, f"target={t['target']}"], cache_dir=cache_dir)
        limits = {k: t[k] for k in (*LIMITS, "max_accuracy_drop") if t.get(k) is not None}
        out.append({"target": composed["target"], "limits": limits, "config": composed})
    return out


def _on_recipe(err: EdgebuildError, recipe: str) -> EdgebuildError:
    """A search method's BudgetError about one board (its field names ``search.targets[i]``, see
    ``TargetBudget.field``) restated with the recipe file."""
    from edgebuild.errors import BudgetError

    cause = err.__cause__
    if not isinstance(cause, BudgetError) or not (cause.field or "").startswith("search.targets["):
        return err
    out = BudgetError(cause.message, shortfalls=cause.shortfalls, file=recipe, field=cause.field, fix=cause.fix)
    out.exit_code = err.exit_code
    return out


def _board_config(composed: dict, onnx: Path) -> dict:
    """The recipe for one board with the chosen model imported from ``onnx`` and no compression
    (the search already met the budget; the build measures it)."""
    cfg = json.loads(json.dumps(composed))
    cfg.pop("search", None)
    cfg["model"] = {"onnx": str(onnx.resolve()), "train": None}
    cfg["compression"].update({k: None for k in LIMITS}, method=None, ratio=None)
    return cfg


def run_search(recipe: str, overrides: list[str], build_dir: Path | None = None, *, cache=None,
               pipeline=None, debug: bool = False) -> dict:
    """Search, build and verify every target of ``recipe``; returns the summary document."""
    from edgebuild.config import load_recipe
    from edgebuild.driver import cache_dir, run_config
    from edgebuild.fleet.run import measured_figures

    cache = cache_dir(cache)
    opts = {"cache": cache, "pipeline": pipeline, "debug": debug}
    config = load_recipe(recipe, overrides, cache_dir=cache)
    if not config.get("search"):
        raise ConfigError("the recipe has no search section", file=recipe, field="search",
                          fix="add search: {targets: [{target: uno, flash_bytes: ...}, ...]} (see recipes/mnist_multi.yaml)")
    out = Path(build_dir or Path("build") / config["name"])
    targets = _targets(recipe, config, overrides, cache)
    search_config = dict(config, search_targets=[{"target": t["target"], "limits": t["limits"]} for t in targets])
    print(f"search: {config['search']['method']} across {', '.join(t['target']['name'] for t in targets)}",
          file=sys.stderr)
    try:
        res = run_config(search_config, label=f"{config['name']}:search", build_dir=out, only=["search"], **opts)
    except EdgebuildError as e:
        raise _on_recipe(e, recipe) from e
    found = json.loads((out / "search" / "search.json").read_text())
    rows, problems, kinds = [], [], set()
    for t in targets:
        name = t["target"]["name"]
        print(f"search: building the {name} model", file=sys.stderr)
        board = _board_config(t["config"], out / "search" / name / "model.onnx")
        run_config(board, label=f"{config['name']}@{name}", build_dir=out / name, **opts)
        fig = measured_figures(board, out / name)
        report = json.loads((out / name / "report.json").read_text())
        row = _row(name, found["targets"][name], fig, report, t["limits"])
        rows.append(row)
        problems += [f"{name}: {m}" for m in row["misses"]]
        kinds |= {m.split()[0] for m in row["misses"]}
    doc = {"recipe": config["name"], "method": config["search"]["method"], "base": found["base"],
           "search_seconds": {m: v["seconds"] for m, v in found["methods"].items()},
           "search_status": res.rules["search"].status, "targets": rows}
    _write(out, doc, found)
    _print_table(doc, out)
    if problems:
        fixes = []
        if kinds & {"validation", "bit-exact"} != kinds:
            fixes.append("the cost model under-predicted: recalibrate it (bench/compress.py calibrate) or "
                         "tighten that budget")
        if "validation" in kinds:
            fixes.append("raise max_accuracy_drop, relax the budget, or search longer (search.policy.episodes, "
                         "search.nas.samples, search.finetune.epochs)")
        if "bit-exact" in kinds:
            fixes.append("the device disagrees with the int8 reference: a bug, report it with the build folder")
        raise EdgebuildError("the chosen models miss the search budget: " + "; ".join(problems),
                             file=recipe, field="search.targets", fix="; ".join(fixes))
    return doc


def _row(name: str, chosen: dict, fig, report: dict, limits: dict) -> dict:
    """One summary row: the search's choice, the measured figures and whether they meet the limits."""
    measured = {"flash_bytes": fig.flash_bytes, "sram_bytes": fig.sram_bytes, "energy_uj": fig.energy_uj,
                "latency_ms": fig.latency_ms}
    ver, acc = report.get("verify", {}), report.get("accuracy", {})
    misses = [f"{k} {measured[k]:,.4g} > {limits[k]:,.4g}" for k in LIMITS
              if k in limits and measured[k] is not None and measured[k] > limits[k]]
    if ver.get("bit_exact") != ver.get("samples"):
        misses.append(f"bit-exact {ver.get('bit_exact')}/{ver.get('samples')}")
    if not chosen["within_accuracy_budget"]:
        misses.append(f"validation accuracy drop {100 * chosen['accuracy_drop']:.1f} points (+ standard error "
                      f"{100 * chosen['accuracy_drop_se']:.1f}) > {100 * limits.get('max_accuracy_drop', 0.01):.1f}")
    return {"target": name, "method": chosen["chosen"], "detail": chosen.get("detail", {}),
            "val_accuracy": chosen["val_accuracy"], "test_accuracy": chosen["test_accuracy"],
            "accuracy_drop": chosen["accuracy_drop"], "accuracy_drop_se": chosen["accuracy_drop_se"],
            "params": chosen.get("params"), "predicted": {k: chosen.get(k) for k in LIMITS},
            "measured": measured, "limits": {k: limits.get(k) for k in LIMITS},
            "board_limits": {"flash_bytes": fig.flash_limit, "sram_bytes": fig.sram_limit},
            "device_accuracy": acc.get("device"), "int8_accuracy": acc.get("int8_host"),
            "accuracy_samples": acc.get("samples"),
            "bit_exact": ver.get("bit_exact"), "samples": ver.get("samples"), "misses": misses,
            "report": str(fig.build_dir / "report.html")}


def _write(out: Path, doc: dict, found: dict) -> None:
    (out / "search.json").write_text(json.dumps(doc, indent=2) + "\n")
    with open(out / "search.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["target", "method", "val_accuracy", "test_accuracy", "device_accuracy", "params",
                    *[f"{k}_measured" for k in LIMITS], *[f"{k}_predicted" for k in LIMITS],
                    *[f"{k}_limit" for k in LIMITS], "bit_exact", "samples", "fits"])
        for r in doc["targets"]:
            w.writerow([r["target"], r["method"], r["val_accuracy"], r["test_accuracy"], r["device_accuracy"],
                        r["params"], *[r["measured"][k] for k in LIMITS], *[r["predicted"][k] for k in LIMITS],
                        *[r["limits"][k] for k in LIMITS], r["bit_exact"], r["samples"], not r["misses"]])
    _plot(out / "search.png", doc, found)


def _plot(path: Path, doc: dict, found: dict) -> None:
    """Per target: test accuracy against measured flash of the chosen model, every method's choice
    (predicted flash) and, for the supernet search, its Pareto front; the flash budget as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["targets"]
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.6), squeeze=False)
    for ax, r in zip(axes[0], rows):
        front = (found["methods"].get("nas", {}).get("stats", {}).get("pareto") or {}).get(r["target"]) or []
        if front:
            ax.plot([p["flash_bytes"] for p in front], [100 * p["val_accuracy"] for p in front], ".", color="0.6",
                    label="supernet Pareto front (accuracy, flash, SRAM, latency; val, inherited weights)")
        for m, info in found["methods"].items():
            c = info["choices"].get(r["target"])
            if c:
                ax.plot(c["flash_bytes"], 100 * c["val_accuracy"], "o", label=f"{m} choice (val, predicted flash)")
        ax.plot(r["measured"]["flash_bytes"], 100 * r["device_accuracy"], "k*", ms=12,
                label=f"built: device accuracy ({r['accuracy_samples']} digits)")
        if r["limits"]["flash_bytes"]:
            ax.axvline(r["limits"]["flash_bytes"], color="r", ls="--", label="flash budget")
        ax.set_title(r["target"])
        ax.set_xlabel("flash bytes")
        ax.set_ylabel("accuracy %")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _print_table(doc: dict, out: Path) -> None:
    def cell(r, k, fmt):
        v = r["limits"][k]
        return format(r["measured"][k], fmt) + ("" if v is None else "/" + format(v, fmt))

    print(f"\n{doc['recipe']}: {doc['method']} search "
          + ", ".join(f"{m} {s:.0f} s" for m, s in doc["search_seconds"].items())
          + f" ({doc['search_status']}); base model val {100 * doc['base']['val_accuracy']:.1f}%, "
            f"test {100 * doc['base']['test_accuracy']:.1f}%", file=sys.stderr)
    print(f"{'target':<14}{'method':<11}{'params':>7}{'val':>7}{'test':>7}{'device':>8}  {'flash B':<16}"
          f"{'SRAM B':<12}{'ms':<14}{'uJ':<14}bit-exact", file=sys.stderr)
    for r in doc["targets"]:
        print(f"{r['target']:<14}{r['method']:<11}{r['params'] or 0:>7,}{100 * r['val_accuracy']:>6.1f}%"
              f"{100 * r['test_accuracy']:>6.1f}%{100 * (r['device_accuracy'] or 0):>7.1f}%  "
              f"{cell(r, 'flash_bytes', ',.0f'):<16}{cell(r, 'sram_bytes', ',.0f'):<12}"
              f"{cell(r, 'latency_ms', '.4g'):<14}{cell(r, 'energy_uj', ',.0f'):<14}{r['bit_exact']}/{r['samples']}"
              + ("" if not r["misses"] else "  MISSES " + "; ".join(r["misses"])), file=sys.stderr)
    print(f"summary: {out / 'search.json'}, {out / 'search.csv'}, {out / 'search.png'}", file=sys.stderr)
