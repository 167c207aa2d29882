"""import: read and check the ONNX model (trained in the build or given by the recipe)."""

from __future__ import annotations

from edgebuild.errors import ConfigError
from edgebuild.stages.common import write_json


def run(ctx):
    from edgebuild.model import load

    if "trained" in ctx.inputs:
        source = ctx.inputs["trained"] / "model.onnx"
    elif ctx.files.get("onnx") is not None:
        source = ctx.files["onnx"]
    else:
        raise ConfigError("no model to import", field="model",
                          fix="set model.onnx to an ONNX file or model.train to an architecture")
    graph = load(source)
    graph.save(ctx.out / "model.onnx")
    write_json(ctx.out / "params.json", graph.params())
    write_json(ctx.out / "cost.json", graph.cost())
