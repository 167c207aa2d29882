"""train: train the recipe's architecture with the numpy trainer and export ONNX."""

from __future__ import annotations

from edgebuild.stages.common import write_json


def run(ctx):
    from threadpoolctl import threadpool_limits

    from edgebuild.data import load_saved
    from edgebuild.train import build_net, evaluate, export_onnx, fit

    spec = ctx.params["spec"]
    ds = load_saved(ctx.inputs["data"] / "data.npz")
    net = build_net(spec["arch"], tuple(ds.x_train.shape[1:]), spec["seed"])
    # One BLAS thread: summation order (and so the trained weights) is then the same on every
    # machine, which keeps the cache's early cutoff working across machines and reruns.
    with threadpool_limits(limits=1):
        history = fit(net, ds, spec, progress=ctx.progress)
    export_onnx(net, ctx.out / "model.onnx")
    # Wall-clock seconds go to the log, not to the output: an output that is the same bytes on
    # every rerun keeps the keys of the rules reading it (import, report) the same across caches.
    seconds = history.pop("seconds", None), history.pop("total_seconds", None)
    summary = {
        "history": history,
        "val_accuracy": evaluate(net, ds.x_val, ds.y_val) if len(ds.y_val) else None,
        "test_accuracy": evaluate(net, ds.x_test, ds.y_test),
        "train_samples": int(len(ds.y_train)),
    }
    write_json(ctx.out / "train.json", summary)
    ctx.log(f"test accuracy {summary['test_accuracy']:.4f}"
            + (f" ({seconds[1]:.1f} s of training)" if seconds[1] is not None else ""))
