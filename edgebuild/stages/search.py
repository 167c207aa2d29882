"""search: per target of ``search.targets``, the most accurate model that meets its budgets.

Runs only under `edgebuild search` (the driver adds ``search_targets``: each target's composed board
description with its limits). Inputs: the recipe's optimised model and its dataset. Methods: the
multi-target pruning policy, the supernet architecture search, both (per target the more accurate
feasible choice), or the per-target compression search (the baseline). Outputs, per target,
``<target>/model.onnx`` (optimised, ready for the normal pipeline), and ``search.json``: the base
model's accuracy, every method's choices (validation and test accuracy, predicted figures, widths or
architecture), which one was chosen per target, and each method's wall time and statistics.
"""

from __future__ import annotations

import json

from edgebuild.stages.common import _default, write_json


def _jsonable(stats: dict) -> dict:
    """The JSON-able part of a method's statistics (drops objects such as a trained agent)."""
    out = {}
    for k, v in stats.items():
        try:
            json.dumps(v, default=_default)
        except (TypeError, ValueError):
            continue
        out[k] = v
    return out


def _judge(base, choice, ds, limit: float) -> dict:
    """A choice's summary with its test accuracy and its validation drop against ``base`` judged as
    the compression search judges it: the drop plus one (paired) standard error within ``limit``."""
    from edgebuild.compress.search import drop_and_error
    from edgebuild.train import evaluate

    drop, se = drop_and_error(base, choice.net, ds.x_val, ds.y_val)
    return {**choice.summary(), "test_accuracy": evaluate(choice.net, ds.x_test, ds.y_test),
            "accuracy_drop": drop, "accuracy_drop_se": se, "within_accuracy_budget": drop + se <= limit + 1e-9}


def run(ctx):
    from threadpoolctl import threadpool_limits

    from edgebuild.data import load_saved
    from edgebuild.model import load, optimise
    from edgebuild.search.common import TargetBudget
    from edgebuild.train import evaluate, export_onnx, net_from_onnx

    spec, seed = ctx.params["spec"], ctx.params["seed"]
    targets = [TargetBudget.from_target(t["target"], t["limits"], field=f"search.targets[{i}]")
               for i, t in enumerate(ctx.params["targets"])]
    src = ctx.inputs["model"] / "model.onnx"
    graph = load(src)
    ds = load_saved(ctx.inputs["data"] / "data.npz")
    net = net_from_onnx(src)
    ft = dict(epochs=spec["finetune"]["epochs"], lr=spec["finetune"]["lr"], seed=seed)
    method = spec["method"]
    results = {}
    with threadpool_limits(limits=1):        # one BLAS thread: the same weights on every machine
        base_val, base_test = evaluate(net, ds.x_val, ds.y_val), evaluate(net, ds.x_test, ds.y_test)
        if method in ("policy", "both"):
            from edgebuild.search.policy import multi_target_policy
            pol = spec["policy"]
            results["policy"] = multi_target_policy(net, ds, targets, episodes=pol["episodes"],
                                                    reward_samples=pol["reward_samples"], polish=pol["polish"],
                                                    reward_on=pol["reward_on"],
                                                    progress=ctx.progress, **ft)
        if method == "per-target":
            from edgebuild.search.policy import per_target_searches
            results["per-target"] = per_target_searches(net, ds, targets, progress=ctx.progress, **ft)
        if method in ("nas", "both"):
            from edgebuild.search.nas import nas_search
            nas = spec["nas"]
            results["nas"] = nas_search(nas["space"], ds, targets, supernet_epochs=nas["supernet_epochs"],
                                        samples=nas["samples"], lr=nas["lr"], finetune_lr=ft["lr"],
                                        epochs=nas["finetune_epochs"], seed=seed, base_val_accuracy=base_val,
                                        progress=ctx.progress)
        doc = {"method": method, "base": {"val_accuracy": base_val, "test_accuracy": base_test,
                                          "params": net.num_params()},
               "methods": {}, "targets": {}}
        limit = {t.name: t.budget.max_accuracy_drop for t in targets}
        for name, res in results.items():
            doc["methods"][name] = {"seconds": res.seconds, "stats": _jsonable(res.stats),
                                    "choices": {t: _judge(net, c, ds, limit[t]) for t, c in res.choices.items()}}
    for t in targets:
        options = [(name, res.choices[t.name]) for name, res in results.items() if t.name in res.choices]
        name, choice = max(options, key=lambda o: (doc["methods"][o[0]]["choices"][t.name]["within_accuracy_budget"],
                                                   o[1].val_accuracy, -o[1].figures["flash_bytes"]))
        folder = ctx.out / t.name
        folder.mkdir()
        tmp = folder / "pruned.onnx"
        export_onnx(choice.net, tmp, input_name=graph.inputs[0], output_name=graph.outputs[0])
        optimise(load(tmp)).save(folder / "model.onnx")
        tmp.unlink()
        doc["targets"][t.name] = {"chosen": name, "search_limits": t.budget.limits(),
                                  "max_accuracy_drop": t.budget.max_accuracy_drop,
                                  **doc["methods"][name]["choices"][t.name]}
        ctx.log(f"{t.name}: {name} choice, val accuracy {choice.val_accuracy:.4f} (base {base_val:.4f}), "
                f"~{choice.figures['flash_bytes']:,} B flash, ~{choice.figures['latency_ms']:.1f} ms")
    write_json(ctx.out / "search.json", doc)
