"""compress: prune the optimised model to the recipe's budget (or pass it through unchanged).

Outputs ``model.onnx`` (the model the quantiser reads) and ``compress.json``: the method, the
budget, whole-model figures and a per-layer table (params, MACs, flash bytes, cycles, latency,
energy and memory traffic) before and after, float accuracies before and after, and the
candidates the search tried. With no budget and no method the input file is copied as is.
"""

from __future__ import annotations

import shutil

from edgebuild.stages.common import write_json

BUDGET_KEYS = ("flash_bytes", "sram_bytes", "energy_uj", "latency_ms")


def _method(spec: dict) -> str | None:
    if spec.get("method"):
        return spec["method"]
    return "auto" if any(spec.get(k) is not None for k in BUDGET_KEYS) else None


def run(ctx):
    from edgebuild.compress.budget import Budget, Costing
    from edgebuild.model import load

    spec, p = ctx.params["spec"], ctx.params
    src = ctx.inputs["model"] / "model.onnx"
    costing = Costing(p["energy"], p["f_cpu"])
    graph = load(src)
    before = {"figures": costing.figures(graph), "layers": costing.table(graph)}
    method = _method(spec)
    if method is None:
        shutil.copyfile(src, ctx.out / "model.onnx")
        write_json(ctx.out / "compress.json", {"method": None, "before": before, "after": before})
        return
    # Aim under latency and energy by the cycle model's error, as the multi-target search does.
    error = p["energy"].get("cycle_model_error", 0.0)
    budget = Budget.from_recipe(spec, p["memories"], model_error=error)
    net = _trainable(src, method, budget, before["figures"], p.get("recipe"))
    result = _compress(ctx, method, spec, budget, costing, graph, net, src)
    after_graph = load(ctx.out / "model.onnx")
    after = {"figures": costing.figures(after_graph), "layers": costing.table(after_graph)}
    write_json(ctx.out / "compress.json", {"method": method, "budget": Budget.from_recipe(spec, p["memories"]).limits(),
                                          "aimed_at": budget.limits(), "cycle_model_error": error,
                                          "max_accuracy_drop": budget.max_accuracy_drop,
                                          "before": before, "after": after, **result})
    ctx.log(f"{method}: params {before['figures']['params']:,} -> {after['figures']['params']:,}, "
            f"weight flash {before['figures']['weight_flash_bytes']:,} -> {after['figures']['weight_flash_bytes']:,} B, "
            f"energy {before['figures']['energy_uj']:.0f} -> {after['figures']['energy_uj']:.0f} uJ, "
            f"val accuracy {result['accuracy']['val_before']:.4f} -> {result['accuracy']['val_after']:.4f}")


UNITS = {"flash_bytes": ("B", "{:,.0f}"), "sram_bytes": ("B", "{:,.0f}"), "energy_uj": ("uJ", "{:,.1f}"),
         "latency_ms": ("ms", "{:,.2f}")}


def _trainable(src, method, budget, figures, recipe):
    """The model as the numpy trainer's Net, which every compression method fine-tunes; when the
    trainer cannot represent a layer, one error saying so and which budgets the uncompressed model
    misses, by how much (the cost model's estimate, as the search uses)."""
    from edgebuild.errors import BudgetError, ModelError
    from edgebuild.train import net_from_onnx

    try:
        return net_from_onnx(src)
    except ModelError as exc:
        short = budget.shortfalls(figures)

        def fmt(k, v):
            unit, f = UNITS[k]
            return f"{k} {f.format(v)} {unit}"
        misses = "; ".join(f"{fmt(k, v['value'])} against {fmt(k, v['limit']).split(' ', 1)[1]} "
                           f"(short by {f'{UNITS[k][1]}'.format(v['over'])} {UNITS[k][0]})" for k, v in short.items())
        state = (f"uncompressed it misses the budget (the cost model's estimate): {misses}" if short
                 else "uncompressed it meets every budget by the cost model's estimate")
        raise BudgetError(f"compression.method '{method}' fine-tunes with edgebuild's trainer, which cannot take "
                          f"{exc.field}: {exc.message}; {state}",
                          shortfalls={k: {"need": v["value"], "limit": v["limit"], "shortfall": v["over"]}
                                      for k, v in short.items()}, file=f"recipe '{recipe}'", field="compression",
                          fix="narrow the model before export (fewer channels: the largest activation sets the "
                              "SRAM), or build it uncompressed for a bigger board (compression.method: null with "
                              "no budgets, e.g. target=netduinoplus2)") from None


def _compress(ctx, method, spec, budget, costing, graph, net, src) -> dict:
    from threadpoolctl import threadpool_limits

    from edgebuild.compress.admm import admm_prune
    from edgebuild.compress.finetune import train
    from edgebuild.compress.prune import apply_masks, magnitude_masks, prune_structured, prunable_layers, widths
    from edgebuild.compress.search import TOL, admm_polish, drop_and_error, energy_prune, search
    from edgebuild.data import load_saved
    from edgebuild.errors import BudgetError
    from edgebuild.model import load, optimise
    from edgebuild.train import evaluate, export_onnx

    ds = load_saved(ctx.inputs["data"] / "data.npz")
    ft = dict(epochs=spec["finetune"]["epochs"], lr=spec["finetune"]["lr"], seed=ctx.params["seed"])
    acc = {"val_before": evaluate(net, ds.x_val, ds.y_val), "test_before": evaluate(net, ds.x_test, ds.y_test)}
    result: dict = {}
    # One BLAS thread: the same summation order, so the same weights, on every machine (see train).
    with threadpool_limits(limits=1):
        if method in ("auto", "auto-admm"):
            best, cands = search(net, ds, costing, budget, progress=ctx.progress, **ft)
            if method == "auto-admm":
                best = admm_polish(net, best, ds, costing, budget, progress=ctx.progress, **ft)
            out, result["candidates"] = best.net, [c.summary() for c in cands]
            result["chosen"] = best.origin
        elif method == "energy":
            out = energy_prune(net, ds, costing, budget, progress=ctx.progress, **ft).net
        elif method == "l1":
            keep = {n: max(1, round(w * spec["ratio"])) for n, w in widths(net).items() if n in prunable_layers(net)}
            out = prune_structured(net, keep)
            train(out, ds, **ft)
        elif method == "magnitude":
            out = net
            apply_masks(out, magnitude_masks(out, {n: 1 - spec["ratio"] for n in widths(out)}))
            train(out, ds, **ft)
        else:
            out = admm_prune(net, ds, {n: spec["ratio"] for n in (prunable_layers(net) if method == "admm-filters"
                                                                   else widths(net))},
                             structure="filters" if method == "admm-filters" else "weights",
                             retrain_epochs=ft["epochs"], lr=ft["lr"], seed=ft["seed"], progress=ctx.progress)
    acc.update(val_after=evaluate(out, ds.x_val, ds.y_val), test_after=evaluate(out, ds.x_test, ds.y_test))
    tmp = ctx.out / "pruned.onnx"
    export_onnx(out, tmp, input_name=graph.inputs[0], output_name=graph.outputs[0])
    optimise(load(tmp)).save(ctx.out / "model.onnx")
    tmp.unlink()
    short = budget.shortfalls(costing.net_figures(out))
    # Every method is judged as the search judges its candidates: drop plus one paired standard
    # error of the validation split (compress.search.within_limit), not the bare drop.
    drop, se = drop_and_error(net, out, ds.x_val, ds.y_val)
    acc["val_drop_standard_error"] = se
    if drop + se > budget.max_accuracy_drop + TOL:
        short["max_accuracy_drop"] = {"value": drop + se, "limit": budget.max_accuracy_drop,
                                      "over": drop + se - budget.max_accuracy_drop,
                                      "note": f"drop {drop:.4f} + standard error {se:.4f}"}
    if short:
        raise BudgetError("the compressed model misses the budget: " + "; ".join(
            f"{k} {v['value']:,.4g}{' (' + v['note'] + ')' if 'note' in v else ''} > {v['limit']:,.4g} "
            f"(over by {v['over']:,.4g})" for k, v in short.items()),
            shortfalls=short, field="compression." + next(iter(short)),
            fix="use compression.method auto (searches per-layer widths to the budget), or change "
                "compression.ratio or the budget")
    result["accuracy"] = acc
    result["widths"] = widths(out)
    result["nonzero_weights"] = int(sum(int((v != 0).sum()) for k, v in out.params().items() if k.endswith(".weight")))
    return result
