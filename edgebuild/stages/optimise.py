"""optimise: simplify the graph, then check it against onnxruntime on random inputs."""

from __future__ import annotations

from edgebuild.errors import ModelError
from edgebuild.stages.common import write_json

TOLERANCE = 1e-4


def run(ctx):
    import numpy as np
    import onnxruntime as ort

    from edgebuild.model import load, optimise

    src = ctx.inputs["model"] / "model.onnx"
    graph = load(src)
    opt = optimise(graph)
    opt.save(ctx.out / "model.onnx")

    # Independent check: the optimised graph against onnxruntime running the *unoptimised* model.
    rng = np.random.default_rng(0)
    name = graph.inputs[0]
    x = rng.standard_normal((4,) + tuple(graph.shapes[name][1:])).astype(np.float32)
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    ref = np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    got = opt.run({opt.inputs[0]: x})[opt.outputs[0]]
    err = float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) + 1e-12))
    if err > TOLERANCE:
        raise ModelError(f"optimised graph differs from onnxruntime by {err:.2e} (relative)",
                         file=str(src), fix="report this model; rerun with the optimise stage's log")
    write_json(ctx.out / "optimise.json", {
        "log": list(getattr(opt, "log", [])),
        "nodes_before": len(graph.nodes), "nodes_after": len(opt.nodes),
        "max_rel_error_vs_onnxruntime": err,
    })
    write_json(ctx.out / "cost.json", opt.cost())
