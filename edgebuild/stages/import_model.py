"""import: read and check the ONNX model (trained in the build, generated from the zoo, or given by the recipe)."""

from __future__ import annotations

from edgebuild.errors import ConfigError
from edgebuild.stages.common import write_json


def run(ctx):
    from edgebuild.model import load

    zoo = ctx.params.get("zoo")
    if "trained" in ctx.inputs:
        source = ctx.inputs["trained"] / "model.onnx"
    elif zoo:
        from edgebuild.model.zoo import write_zoo

        source = write_zoo(zoo["name"], ctx.tmp / f"{zoo['name']}.onnx", seed=zoo.get("seed", 0),
                           width=zoo.get("width", 1.0))
    elif ctx.files.get("onnx") is not None:
        source = ctx.files["onnx"]
    else:
        raise ConfigError("no model to import", field="model",
                          fix="set model.onnx to an ONNX file, model.train to an architecture or model.zoo to a network")
    graph = load(source)
    graph.save(ctx.out / "model.onnx")
    write_json(ctx.out / "params.json", graph.params())
    write_json(ctx.out / "cost.json", graph.cost())
    # what the import changed in the file (an opset upgrade), for the report's model section
    write_json(ctx.out / "import.json", {"opset": graph.opset, "log": list(graph.log)})
    for line in graph.log:
        ctx.log(line)
