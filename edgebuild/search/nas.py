"""Architecture search with a weight-sharing supernet, one Pareto front and one choice per target.

    result = nas_search(space, ds, targets, supernet_epochs=10, samples=100, epochs=10, lr=0.01, seed=0)
    result.choices["uno"].net          # a plain Net: export with edgebuild.train.export_onnx

The costs of a sub-network (flash, SRAM peak from the layout planner, latency and energy from the
cost model) depend on its shapes only, so they are computed first for a pool of candidates, per
target, and a target that no candidate fits fails before any training. The sub-networks to score
are drawn round-robin from each target's feasible candidates, so a tight target gets as many as a
loose one. The supernet is then trained once (sandwich rule, see ``Supernet.train``); each drawn
sub-network is scored by validation accuracy with the inherited weights; per target the Pareto
front (max accuracy, min flash, SRAM, latency) of the feasible ones is kept and the most accurate
is fine-tuned from its inherited weights.
"""

from __future__ import annotations

import copy
import json
import time

import numpy as np

from edgebuild.errors import BudgetError, ConfigError
from edgebuild.search.common import Choice, Progress, SearchResult, TargetBudget
from edgebuild.search.supernet import Supernet

# Objectives of the per-target Pareto front: accuracy up, resources down.
OBJECTIVES = {"val_accuracy": "max", "flash_bytes": "min", "sram_bytes": "min", "latency_ms": "min"}
_FIGURES = ("flash_bytes", "sram_bytes", "latency_ms", "energy_uj", "params", "macs")


def pareto_front(points: list[dict], keys: dict[str, str]) -> list[int]:
    """Indices (ascending) of the points no other point dominates.

    ``keys`` maps each objective to "max" or "min". A point dominates another when it is at least
    as good in every objective and strictly better in one; equal points do not dominate each other.
    """
    if not points:
        return []
    for key, sense in keys.items():
        if sense not in ("max", "min"):
            raise ValueError(f"objective {key!r}: sense must be 'max' or 'min', got {sense!r}")
    # Every objective as "smaller is better".
    vals = np.array([[(-p[k] if s == "max" else p[k]) for k, s in keys.items()] for p in points], dtype=float)
    no_worse = (vals[:, None, :] <= vals[None, :, :]).all(axis=2)      # [i, j]: i no worse than j everywhere
    better = (vals[:, None, :] < vals[None, :, :]).any(axis=2)         # [i, j]: i strictly better somewhere
    dominated = (no_worse & better).any(axis=0)
    return [int(i) for i in np.flatnonzero(~dominated)]


def arch_key(arch: dict) -> str:
    """A canonical string of an architecture (for caches and de-duplication)."""
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def _pool(supernet: Supernet, size: int, rng: np.random.Generator) -> list[dict]:
    """The two corners and up to ``size`` further distinct random architectures (the whole space if small)."""
    if size + 2 >= supernet.size():
        return supernet.enumerate()
    archs = {arch_key(a): a for a in (supernet.largest(), supernet.smallest())}
    wanted, attempts = size + len(archs), 0
    while len(archs) < wanted and attempts < 50 * wanted:
        arch = supernet.sample(rng)
        archs.setdefault(arch_key(arch), arch)
        attempts += 1
    return list(archs.values())


def _pick(feasible: dict[str, list[int]], corners: list[int], samples: int, rng: np.random.Generator) -> list[int]:
    """Indices to score: the corners that fit some target, then round-robin over the targets one
    random feasible candidate at a time until ``samples`` more are picked or none are left. Every
    target that has feasible candidates gets at least one, even when ``samples`` is smaller."""
    fits_some = set().union(*feasible.values())
    chosen = {i for i in corners if i in fits_some}
    queues = [[int(i) for i in rng.permutation(idx)] for idx in feasible.values()]
    picked = 0
    for idx, queue in zip(feasible.values(), queues):
        if chosen.isdisjoint(idx):
            chosen.add(queue.pop(0))
            picked += 1
    while picked < samples and any(queues):
        for queue in queues:
            while queue and queue[0] in chosen:
                queue.pop(0)
            if queue and picked < samples:
                chosen.add(queue.pop(0))
                picked += 1
    return sorted(chosen)


def _no_fit_error(target: TargetBudget, archs: list[dict], figures: list[dict], space_size: int) -> BudgetError:
    """BudgetError for a target no candidate fits, naming the closest candidate's shortfalls."""
    best = min(range(len(archs)), key=lambda i: target.budget.excess(figures[i]))
    short = target.budget.shortfalls(figures[best])
    text = "; ".join(f"{k} {v['value']:,.1f} > {v['limit']:,.1f} (over by {v['over']:,.1f})" for k, v in short.items())
    which = "of the search space" if len(archs) == space_size else f"of {len(archs)} sampled (space: {space_size})"
    return BudgetError(f"no sub-network {which} fits target '{target.name}'; the closest "
                       f"({arch_key(archs[best])}) misses: {text}", shortfalls=short,
                       field=f"{target.field}." + next(iter(short), "flash_bytes"),
                       fix="loosen this target's budget or add smaller choices (fewer channels, smaller "
                           "kernels, depth 1, no hidden dense layer) to the search space")


def _point(arch: dict, accuracy: float, figures: dict) -> dict:
    return {"arch": arch, "val_accuracy": accuracy, **{k: figures.get(k) for k in _FIGURES}}


def nas_search(space: dict, ds, targets: list[TargetBudget], *, supernet_epochs: int, samples: int, epochs: int,
               lr: float, seed: int, progress: Progress | None = None, base_val_accuracy: float | None = None,
               finetune_top: int = 1, finetune_lr: float | None = None, pool_factor: int = 10) -> SearchResult:
    """Search ``space`` once for every target of ``targets``; one fine-tuned sub-network per target.

    ``supernet_epochs``: weight-sharing training epochs (lr ``lr``). ``samples``: sub-networks
    scored by accuracy besides the largest and smallest, drawn from a costed pool of
    ``pool_factor * samples`` random candidates (the whole space when that is smaller).
    ``epochs``: fine-tuning epochs of each chosen sub-network (lr ``finetune_lr``, default
    ``lr / 2``). Per target the ``finetune_top`` most accurate feasible sub-networks are
    fine-tuned and the best after fine-tuning is kept (on mnist5k 14x14, 2 did not beat 1 on the
    test set: the validation differences among the finalists are within noise).
    ``base_val_accuracy``: a reference accuracy; a choice more than the target's
    ``max_accuracy_drop`` below it gets ``detail["within_accuracy_budget"] = False``. Without it,
    ``SearchResult.base_val_accuracy`` is the largest sub-network's inherited-weight accuracy and
    no check is made.

    Each choice's ``detail``: ``arch``, ``layers`` (build_net list), ``inherited_val_accuracy``,
    ``pareto`` (its target's front), ``finalists`` and maybe ``within_accuracy_budget``.
    ``SearchResult.stats`` (JSON-able): ``space_size``, ``costed``, ``evaluated``, ``feasible``
    (per target, among the scored), ``supernet_seconds``, ``supernet_epochs``, ``supernet_history``,
    ``eval_seconds``, ``finetune_seconds``, ``finetuned`` and ``pareto``: per target the front as
    a list of {arch, val_accuracy (inherited weights), flash_bytes, sram_bytes, latency_ms,
    energy_uj, params, macs}, by increasing flash.

    Raises BudgetError (before any training) when no candidate fits a target, naming the target
    and the closest candidate's shortfalls. Deterministic for ``seed``.
    """
    from threadpoolctl import threadpool_limits

    from edgebuild.compress.budget import net_graph
    from edgebuild.compress.finetune import train as finetune
    from edgebuild.train import evaluate

    say = progress or (lambda _msg: None)
    start = time.perf_counter()
    supernet = Supernet(space, ds.x_train.shape[1:], seed)
    classes = supernet.space["classes"]
    if int(ds.y_train.max()) >= classes:
        raise ConfigError(f"the dataset has labels up to {int(ds.y_train.max())} but the space has {classes} classes",
                          field="search.space.classes", fix=f"set classes to {int(ds.y_train.max()) + 1}")
    if not targets:
        raise ConfigError("no targets to search for", field="search.targets", fix="list at least one target")

    # 1. A pool of candidates and their costs on every target (shapes only: no training needed).
    rng = np.random.default_rng([seed, 1])
    archs = _pool(supernet, pool_factor * samples, rng)
    figures: dict[str, list[dict]] = {t.name: [] for t in targets}
    for arch in archs:
        graph = net_graph(supernet.extract(arch))
        for t in targets:
            figures[t.name].append(t.costing.figures(graph))
    feasible = {t.name: [i for i, f in enumerate(figures[t.name]) if not t.budget.shortfalls(f)] for t in targets}
    for t in targets:
        if not feasible[t.name]:
            raise _no_fit_error(t, archs, figures[t.name], supernet.size())
    keys = [arch_key(a) for a in archs]
    scored = _pick(feasible, [keys.index(arch_key(c)) for c in (supernet.largest(), supernet.smallest())],
                   samples, rng)
    say(f"costed {len(archs)} sub-networks of {supernet.size()} (feasible: "
        + ", ".join(f"{name} {len(idx)}" for name, idx in feasible.items()) + f"); scoring {len(scored)}")
    in_scored = set(scored)
    feasible = {name: [i for i in idx if i in in_scored] for name, idx in feasible.items()}

    with threadpool_limits(limits=1):
        # 2. Train the supernet once.
        history = supernet.train(ds, supernet_epochs, lr, seed, progress)

        # 3. Inherited-weight accuracy of the drawn candidates.
        t0 = time.perf_counter()
        accuracy = {i: evaluate(supernet.extract(archs[i]), ds.x_val, ds.y_val) for i in scored}
        eval_seconds = time.perf_counter() - t0
        say(f"scored {len(scored)} sub-networks in {eval_seconds:.1f}s")
        base = base_val_accuracy if base_val_accuracy is not None else evaluate(
            supernet.extract(supernet.largest()), ds.x_val, ds.y_val)

        # 4. Per target: Pareto front, ranking, fine-tuning of the best (cached by architecture).
        t0 = time.perf_counter()
        tuned: dict[str, tuple[object, float]] = {}

        def tune(i: int):
            key = arch_key(archs[i])
            if key not in tuned:
                net = supernet.extract(archs[i])
                finetune(net, ds, epochs=epochs, lr=lr / 2 if finetune_lr is None else finetune_lr, seed=seed)
                tuned[key] = (net, evaluate(net, ds.x_val, ds.y_val))
                say(f"fine-tuned {key}: val {accuracy[i]:.4f} -> {tuned[key][1]:.4f}")
            return tuned[key]

        choices, fronts = {}, {}
        for t in targets:
            idx = feasible[t.name]
            points = [_point(archs[i], accuracy[i], figures[t.name][i]) for i in idx]
            front = sorted((points[j] for j in pareto_front(points, OBJECTIVES)),
                           key=lambda p: (p["flash_bytes"], -p["val_accuracy"]))
            fronts[t.name] = front
            ranked = sorted(idx, key=lambda i: (-accuracy[i], figures[t.name][i]["flash_bytes"],
                                                figures[t.name][i]["sram_bytes"], arch_key(archs[i])))
            finalists = ranked[:max(1, finetune_top)]
            best = max(finalists, key=lambda i: tune(i)[1])                 # first wins a tie
            net, val = tune(best)
            net = copy.deepcopy(net)
            detail = {"arch": archs[best], "layers": supernet.arch_to_layers(archs[best]),
                      "inherited_val_accuracy": accuracy[best], "pareto": front,
                      "finalists": [{"arch": archs[i], "inherited_val_accuracy": accuracy[i],
                                     "val_accuracy": tune(i)[1]} for i in finalists]}
            if base_val_accuracy is not None:
                detail["within_accuracy_budget"] = val >= base_val_accuracy - t.budget.max_accuracy_drop
            choices[t.name] = Choice(target=t.name, net=net, val_accuracy=val,
                                     figures=t.costing.net_figures(net), method="nas", detail=detail)
            say(f"{t.name}: {arch_key(archs[best])} val {val:.4f}")
        finetune_seconds = time.perf_counter() - t0

    stats = {"space_size": supernet.size(), "costed": len(archs), "evaluated": len(scored),
             "supernet_seconds": history["total_seconds"], "supernet_epochs": supernet_epochs,
             "supernet_history": {k: v for k, v in history.items() if k != "total_seconds"},
             "eval_seconds": eval_seconds, "finetune_seconds": finetune_seconds, "finetuned": len(tuned),
             "feasible": {name: len(idx) for name, idx in feasible.items()}, "pareto": fronts}
    return SearchResult(choices=choices, seconds=time.perf_counter() - start, base_val_accuracy=base, stats=stats)


def plot_fronts(stats: dict, path, choices: dict | None = None) -> None:
    """Plot validation accuracy against flash bytes of every target's Pareto front to ``path``:
    the front's points (non-dominated in four objectives) and, as a staircase, its accuracy/flash front.

    ``stats``: ``SearchResult.stats``; ``choices``: ``SearchResult.choices`` to mark the chosen
    sub-networks (inherited-weight accuracy, as on the fronts).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, front in stats["pareto"].items():
        flash = [p["flash_bytes"] for p in front]
        acc = [p["val_accuracy"] for p in front]
        dots, = ax.plot(flash, acc, "o", alpha=0.6, label=f"{name} front (acc, flash, SRAM, latency)")
        two_d = sorted(pareto_front(front, {"val_accuracy": "max", "flash_bytes": "min"}), key=lambda i: flash[i])
        ax.step([flash[i] for i in two_d], [acc[i] for i in two_d], where="post", color=dots.get_color(), alpha=0.6)
        if choices and name in choices:
            ax.plot([choices[name].figures["flash_bytes"]], [choices[name].detail["inherited_val_accuracy"]], "*",
                    ms=16, color=dots.get_color(), markeredgecolor="black", label=f"{name} chosen")
    ax.set_xscale("log")
    ax.set_xlabel("flash bytes (firmware estimate)")
    ax.set_ylabel("validation accuracy (inherited weights)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
