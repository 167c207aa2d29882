"""Budget-driven per-layer width search, and energy-constrained pruning.

Automatic search (``search``) — sensitivity analysis plus a greedy, cost-aware descent, chosen over
an evolutionary or RL search (AMC) because the resource budgets are *analytic* (flash, SRAM,
energy and latency of a width vector come from the cost model in milliseconds, no training) and
only accuracy needs training. So:

1. Sensitivity: prune each layer alone (L1 filters/neurons; for every conv and dense layer also
   weight magnitude) to a few keep ratios and measure the validation-accuracy drop without fine-tuning.
2. Greedy descent: from the full model, repeatedly take the one move that removes the most budget
   excess per unit of predicted accuracy drop (``drop ** beta``), until every resource budget is
   met. A move either shrinks a layer's width (to ``STEP`` of it) or lowers a conv or dense layer's
   weight density to the next of ``DENSITIES`` (magnitude pruning; below about one half the code
   generator stores the weights sparsely, so flash falls, while each stored weight costs more
   cycles): structured and unstructured compression combine. Several ``beta`` trade-offs
   (0: cheapest path, larger: accuracy-aware) give a few distinct candidates, then each is grown
   back greedily while it still fits.
3. Each candidate is pruned from the trained weights and fine-tuned with the numpy trainer; the
   most accurate one that meets every budget wins and is fine-tuned for as long again (kept if
   that does not lower its validation accuracy).

The accuracy limit is enforced with a noise margin (``within_limit``): 500 validation digits
measure an accuracy drop only to about +-0.6 points (one standard error of the paired difference,
``sqrt(n01 + n10) / n`` from the digits only one of the two models gets right), so a candidate
passes only if its drop *plus one standard error* stays within ``max_accuracy_drop``. More held-out
digits were the alternative, but the only other labelled digits (the training split) were seen by
the uncompressed model, which makes its accuracy there a training accuracy and the measured drop
meaningless; k-fold would need the base model retrained per fold.

Everything is deterministic for a seed. A budget no width vector can meet (even one output per
layer) fails before any training, naming the budget and the shortfall.

Energy-constrained pruning (``energy_prune``, after Yang, Chen & Sze, CVPR 2017): repeatedly prune
the layer that costs the most energy (its own energy plus the next layer's, which shrinks with
it), fine-tune briefly, and keep the step only if accuracy holds; until the budgets are met.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgebuild.compress.budget import Budget, Costing, net_graph
from edgebuild.compress.finetune import train
from edgebuild.compress.prune import (apply_masks, magnitude_masks, prunable_layers, prune_structured, weighted_layers,
                                      widths)
from edgebuild.errors import BudgetError
from edgebuild.train import evaluate
from edgebuild.train.net import Net

STEP = 0.8                      # a greedy move keeps 80% of a layer's current outputs
RATIOS = (0.75, 0.5, 0.25, 0.125)
DENSITIES = (0.45, 0.3, 0.2, 0.12, 0.07, 0.04)   # weight densities a dense layer may step down to
BETAS = (0.0, 1.0, 2.0)
EPS = 1e-3                      # predicted drop floor (one validation sample in a thousand)
TOL = 1e-9                      # accuracies are ratios of counts: compare drops up to rounding

Progress = Callable[[str], None]


@dataclass
class Candidate:
    """A width vector, its cost figures and (once fine-tuned) its validation accuracy."""

    keep: dict[str, int]
    figures: dict
    origin: str
    val_accuracy: float | None = None
    net: Net | None = field(default=None, repr=False)
    density: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"keep": self.keep, "density": self.density, "origin": self.origin, "val_accuracy": self.val_accuracy,
                **{k: self.figures[k] for k in ("params", "macs", "weight_flash_bytes", "flash_bytes",
                                                "sram_bytes", "energy_uj", "latency_ms")}}


def realise(net: Net, keep: dict[str, int], density: dict[str, float] | None = None) -> Net:
    """``net`` pruned to widths ``keep`` (L1), then to weight ``density`` per layer (magnitude masks)."""
    pruned = prune_structured(net, keep)
    if density:
        apply_masks(pruned, magnitude_masks(pruned, {n: 1.0 - d for n, d in density.items()}))
    return pruned


def density_layers(net: Net) -> list[str]:
    """Layers whose weight density the search may lower: every conv and dense layer."""
    return weighted_layers(net)


def drop_and_error(base: Net, cand: Net, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy drop of ``cand`` against ``base`` on (x, y), and its standard error
    ``sqrt(n01 + n10) / n`` (paired: only digits exactly one of the two gets right count)."""
    a = np.argmax(base.forward(x), axis=1) == y
    b = np.argmax(cand.forward(x), axis=1) == y
    return float(a.mean() - b.mean()), float(np.sqrt(np.count_nonzero(a != b)) / len(y))


def within_limit(base: Net, cand: Net, x: np.ndarray, y: np.ndarray, limit: float) -> bool:
    """True when ``cand``'s drop on (x, y) plus one standard error is within ``limit``."""
    drop, se = drop_and_error(base, cand, x, y)
    return drop + se <= limit + TOL


def sensitivity(net: Net, x: np.ndarray, y: np.ndarray, layers: list[str] | None = None) -> dict:
    """(kind, layer) -> [(kept fraction, validation accuracy drop)] for pruning that layer alone
    without fine-tuning: kind "width" (L1 outputs, ``layers``, default the prunable ones) and
    "density" (weight magnitude, every conv and dense layer)."""
    base = evaluate(net, x, y)
    full = widths(net)
    out = {}
    for name in layers or prunable_layers(net):
        curve = [(1.0, 0.0)]
        for r in RATIOS:
            keep = max(1, int(round(full[name] * r)))
            curve.append((keep / full[name], max(0.0, base - evaluate(prune_structured(net, {name: keep}), x, y))))
        out["width", name] = sorted(curve)
    for name in density_layers(net):
        curve = [(1.0, 0.0)] + [(d, max(0.0, base - evaluate(realise(net, {}, {name: d}), x, y))) for d in DENSITIES]
        out["density", name] = sorted(curve)
    return out


def predicted_drop(sens: dict, keep: dict[str, int], full: dict[str, int], density: dict[str, float] | None = None) -> float:
    """Sum over the sensitivity curves at the state's kept fractions (linear interpolation)."""
    total = 0.0
    for (kind, name), curve in sens.items():
        ratios, drops = zip(*curve)
        at = keep[name] / full[name] if kind == "width" else (density or {}).get(name, 1.0)
        total += float(np.interp(at, ratios, drops))
    return total


class _Figures:
    """Cost figures of (widths, densities) states, memoised (the descent revisits them)."""

    def __init__(self, net: Net, costing: Costing):
        self.net, self.costing, self.memo = net, costing, {}

    def __call__(self, keep: dict[str, int], density: dict[str, float] | None = None) -> dict:
        key = (tuple(sorted(keep.items())), tuple(sorted((density or {}).items())))
        if key not in self.memo:
            self.memo[key] = self.costing.net_figures(realise(self.net, keep, density))
        return self.memo[key]


def _moves(keep: dict, density: dict, dense: list[str]):
    """Every single-step reduction of a (widths, densities) state, and every width's step at once
    (when several equal activations share the SRAM peak, as DS-CNN's 64-channel blocks do, no
    single layer's step lowers it)."""
    steps = {name: max(1, min(k - 1, int(k * STEP))) for name, k in keep.items() if k > 1}
    for name, k in steps.items():
        yield dict(keep, **{name: k}), density
    if len(steps) > 1:
        yield dict(keep, **steps), density
    for name in dense:
        lower = [d for d in DENSITIES if d < density.get(name, 1.0) - 1e-12]
        if lower:
            yield keep, dict(density, **{name: lower[0]})


def _descend(full: dict, dense: list[str], figs: _Figures, budget: Budget, sens: dict, beta: float):
    """Greedy descent until the resource budgets are met; (widths, densities), or None if stuck."""
    keep, density = dict(full), {}
    while budget.excess(figs(keep, density)) > 0:
        now_excess, now_drop = budget.excess(figs(keep, density)), predicted_drop(sens, keep, full, density)
        best, best_score = None, -1.0
        for trial in _moves(keep, density, dense):
            gain = now_excess - budget.excess(figs(*trial))
            cost = max(predicted_drop(sens, trial[0], full, trial[1]) - now_drop, 0.0) + EPS
            score = gain / cost ** beta
            if gain > 0 and score > best_score:
                best, best_score = trial, score
        if best is None:
            return None
        keep, density = best
    return keep, density


def _grow(keep: dict, density: dict, full: dict, figs: _Figures, budget: Budget, sens: dict) -> dict:
    """Add outputs back, most sensitive layer first, while every resource budget is still met."""
    keep = dict(keep)

    def benefit(n):
        return predicted_drop(sens, keep, full, density) - predicted_drop(sens, dict(keep, **{n: keep[n] + 1}), full, density)

    grown = True
    while grown:
        grown = False
        for name in sorted((n for n in keep if keep[n] < full[n]), key=lambda n: -benefit(n)):
            trial = dict(keep, **{name: keep[name] + 1})
            if budget.excess(figs(trial, density)) == 0:
                keep, grown = trial, True
                break
    return keep


def _fail(budget: Budget, cand: Candidate, base_acc: float, why: str, drop: float | None = None,
          field: str = "compression") -> BudgetError:
    """BudgetError naming what ``cand`` misses (kept as the error's ``candidate``); ``drop``: its
    accuracy drop as the limit counts it (default: base minus its validation accuracy); ``field``:
    where the budget stands in the recipe (the error names ``<field>.<first budget missed>``)."""
    short = budget.shortfalls(cand.figures)
    if drop is None and cand.val_accuracy is not None:
        drop = base_acc - cand.val_accuracy
    if drop is not None and drop > budget.max_accuracy_drop + TOL:
        short["max_accuracy_drop"] = {"value": drop, "limit": budget.max_accuracy_drop,
                                      "over": drop - budget.max_accuracy_drop}
    parts = [f"{k} {v['value']:,.4g} > {v['limit']:,.4g} (over by {v['over']:,.4g})" for k, v in short.items()]
    acc = "" if cand.val_accuracy is None else f", val accuracy {cand.val_accuracy:.4f}"
    err = BudgetError(
        f"{why}; best candidate {cand.origin} (widths {cand.keep}, flash ~{cand.figures['flash_bytes']:,} B, "
        f"SRAM ~{cand.figures['sram_bytes']:,} B, {cand.figures['energy_uj']:.1f} uJ, "
        f"{cand.figures['latency_ms']:.1f} ms{acc}) misses: " + "; ".join(parts),
        shortfalls=short, field=f"{field}." + next(iter(short), "flash_bytes"),
        fix=f"relax that budget, raise {field}.max_accuracy_drop, or start from a smaller model")
    err.candidate = cand
    return err


def finetune(net: Net, keep: dict[str, int], ds, *, epochs: int, lr: float, seed: int,
             density: dict[str, float] | None = None) -> Net:
    """Prune ``net`` to widths ``keep`` (L1) and weight ``density`` (magnitude masks, held during
    training) and fine-tune the result; returns the new net."""
    pruned = realise(net, keep, density)
    if epochs:
        train(pruned, ds, epochs=epochs, lr=lr, seed=seed)
    return pruned


def search(net: Net, ds, costing: Costing, budget: Budget, *, epochs: int = 6, lr: float = 1e-3,
           seed: int = 0, progress: Progress | None = None,
           field: str = "compression") -> tuple[Candidate, list[Candidate]]:
    """The most accurate pruned net meeting every budget (fine-tuned), and all candidates tried.

    A candidate is a (widths, dense-layer densities) state; the winner's ``net`` is the model.
    Raises BudgetError (before any training) when no state meets the resource budgets, or when no
    fine-tuned candidate stays within ``budget.max_accuracy_drop`` of ``net`` (validation split);
    the error names ``<field>.<budget missed>`` (``field``: where the budget stands in the recipe).
    """
    say = progress or (lambda _m: None)
    layers = prunable_layers(net)
    full = {n: w for n, w in widths(net).items() if n in layers}
    figs = _Figures(net, costing)
    # The smallest states: one output per layer, weights stored densely or at the lowest
    # density (sparse storage saves flash but costs cycles, so neither need be the cheaper).
    smallest = {n: 1 for n in layers}
    sparsest = {n: DENSITIES[-1] for n in density_layers(net)}
    floor = min(({}, sparsest), key=lambda d: budget.excess(figs(smallest, d)))
    if budget.excess(figs(smallest, floor)) > 0:
        raise _fail(budget, Candidate(smallest, figs(smallest, floor), "one output per layer", density=floor), 0.0,
                    "no pruning meets the budget, not even one output per layer", field=field)
    base_acc = evaluate(net, ds.x_val, ds.y_val)
    if budget.excess(figs(full)) == 0:
        say("the model already meets every budget")
        return Candidate(dict(full), figs(full), "unpruned", base_acc, net), []
    dense = density_layers(net)
    say(f"sensitivity of {len(layers)} widths and {len(dense)} densities")
    sens = sensitivity(net, ds.x_val, ds.y_val, layers)
    states = []
    for beta in BETAS:
        state = _descend(full, dense, figs, budget, sens, beta)
        if state is not None:
            state = (_grow(*state, full, figs, budget, sens), state[1])
            if state not in states:
                states.append(state)
        say(f"descent beta={beta}: widths {state and state[0]}, densities {state and state[1]}")
    if not states:
        raise _fail(budget, Candidate(smallest, figs(smallest, floor), "one output per layer", density=floor), base_acc,
                    "the greedy descent found no widths that meet the budget", field=field)
    cands = []
    for i, (keep, density) in enumerate(states):
        say(f"fine-tuning candidate {i + 1}/{len(states)}: widths {keep}, densities {density}")
        tuned = finetune(net, keep, ds, epochs=epochs, lr=lr, seed=seed, density=density)
        cands.append(Candidate(keep, figs(keep, density), f"search#{i + 1}", evaluate(tuned, ds.x_val, ds.y_val),
                               tuned, density))
        say(f"candidate {i + 1}: val accuracy {cands[-1].val_accuracy:.4f} (base {base_acc:.4f})")
    best = max(cands, key=lambda c: (c.val_accuracy, -c.figures["flash_bytes"]))
    longer = copy.deepcopy(best.net)
    train(longer, ds, epochs=epochs, lr=lr / 2, seed=seed + 1)        # the winner's longer fine-tune
    acc = evaluate(longer, ds.x_val, ds.y_val)
    say(f"longer fine-tune of {best.origin}: val accuracy {best.val_accuracy:.4f} -> {acc:.4f}")
    if acc >= best.val_accuracy:
        best.net, best.val_accuracy = longer, acc
    if not within_limit(net, best.net, ds.x_val, ds.y_val, budget.max_accuracy_drop):
        drop, se = drop_and_error(net, best.net, ds.x_val, ds.y_val)
        raise _fail(budget, best, base_acc, f"no candidate stays within the accuracy budget with its noise margin "
                                            f"(base {base_acc:.4f}; best drop {drop:.4f} + standard error {se:.4f})",
                    drop + se, field=field)
    return best, cands


def admm_polish(net: Net, best: Candidate, ds, costing: Costing, budget: Budget, *, epochs: int = 6,
                lr: float = 1e-3, seed: int = 0, rounds: int = 4, progress: Progress | None = None) -> Candidate:
    """``best`` (a ``search`` result) with its weight densities reached by ADMM instead of
    magnitude masks: ``net`` pruned to ``best.keep`` (L1), then ADMM-pruned (compress.admm,
    unstructured) to ``best.density`` per layer, ``rounds`` rounds of 2 epochs, and retrained for
    ``epochs`` with the mask. Returned when it meets every resource budget and is at least as
    accurate on validation; otherwise ``best`` (so ADMM is used only where it helps)."""
    from edgebuild.compress.admm import admm_prune

    say = progress or (lambda _m: None)
    if not best.density:
        return best
    tuned = admm_prune(prune_structured(net, best.keep), ds, dict(best.density), rounds=rounds, epochs_per_round=2,
                       retrain_epochs=epochs, lr=lr, seed=seed, progress=progress)
    figures, acc = costing.net_figures(tuned), evaluate(tuned, ds.x_val, ds.y_val)
    say(f"ADMM to densities {best.density}: val accuracy {acc:.4f} (magnitude + fine-tune {best.val_accuracy:.4f})")
    if budget.shortfalls(figures) or acc < best.val_accuracy:
        return best
    return Candidate(best.keep, figures, best.origin + "+admm", acc, tuned, best.density)


def energy_prune(net: Net, ds, costing: Costing, budget: Budget, *, epochs: int = 6, lr: float = 1e-3,
                 seed: int = 0, progress: Progress | None = None) -> Candidate:
    """Energy-first structured pruning until every resource budget is met (see module doc)."""
    say = progress or (lambda _m: None)
    layers = prunable_layers(net)
    full = {n: w for n, w in widths(net).items() if n in layers}
    base_acc = evaluate(net, ds.x_val, ds.y_val)
    keep, current, frozen = {n: full[n] for n in layers}, net, set()
    figures = costing.net_figures(net)
    step = 0
    while budget.excess(figures) > 0:
        table = {row["name"]: row["energy_uj"] for row in costing.table(net_graph(current))}
        names = list(table)          # fused layers in order; a pruned layer's successor shrinks too
        order = sorted((n for n in layers if n not in frozen and keep[n] > 1),
                       key=lambda n: -(table[n] + table[names[names.index(n) + 1]]))
        if not order:
            raise _fail(budget, Candidate(keep, figures, "energy-first", evaluate(current, ds.x_val, ds.y_val)),
                        base_acc, "energy-first pruning cannot shrink any layer further without losing accuracy")
        name = order[0]
        trial = dict(keep, **{name: max(1, min(keep[name] - 1, int(keep[name] * STEP)))})
        tuned = finetune(net, trial, ds, epochs=1, lr=lr, seed=seed + step)
        acc = evaluate(tuned, ds.x_val, ds.y_val)
        step += 1
        if base_acc - acc > 2 * budget.max_accuracy_drop:
            frozen.add(name)
            say(f"energy step {step}: {name} -> {trial[name]} loses {base_acc - acc:.4f}; layer frozen")
            continue
        keep, current = trial, tuned
        figures = costing.net_figures(current)
        say(f"energy step {step}: {name} -> {keep[name]} outputs, {figures['energy_uj']:.1f} uJ, val {acc:.4f}")
    tuned = finetune(net, keep, ds, epochs=epochs, lr=lr, seed=seed)
    best = Candidate(keep, costing.net_figures(tuned), "energy-first", evaluate(tuned, ds.x_val, ds.y_val), tuned)
    if base_acc - best.val_accuracy > budget.max_accuracy_drop + TOL:
        raise _fail(budget, best, base_acc, f"energy-first pruning loses too much accuracy (base {base_acc:.4f})")
    return best

