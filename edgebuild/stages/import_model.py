"""import: read and check the model (ONNX trained in the build, generated from the zoo or given by the recipe, or a
TFLite file: edgebuild.tflite)."""

from __future__ import annotations

from edgebuild.errors import ConfigError
from edgebuild.stages.common import write_json


def run(ctx):
    from edgebuild.model import load

    zoo = ctx.params.get("zoo")
    if "trained" in ctx.inputs:
        source = named = ctx.inputs["trained"] / "model.onnx"
    elif zoo:
        from edgebuild.model.zoo import write_zoo

        source = write_zoo(zoo["name"], ctx.tmp / f"{zoo['name']}.onnx", seed=zoo.get("seed", 0),
                           width=zoo.get("width", 1.0))
        named = f"model.zoo '{zoo['name']}'"
    elif ctx.files.get("onnx") is not None:
        source = named = ctx.files["onnx"]
    elif ctx.files.get("tflite") is not None:
        return _import_tflite(ctx, ctx.files["tflite"])
    else:
        raise ConfigError("no model to import", field="model",
                          fix="set model.onnx to an ONNX file, model.tflite to a .tflite file, model.train to an architecture or model.zoo to a network")
    graph = load(source, narrow_float64=True)
    _check_data_shape(graph, ctx.inputs["data"] / "data.npz", str(named))
    _write(ctx, graph, {"opset": graph.opset, "log": list(graph.log)})


def _import_tflite(ctx, path):
    """A .tflite: its float model (NCHW, int8 weights dequantised) as model.onnx, and for a fully-int8
    file the QModel with the file's own quantisation in kept/, which the quantise stage passes on."""
    from edgebuild import tflite

    m = tflite.read(path)
    low = tflite.lower(m)
    graph = tflite.to_graph(m, low)
    _check_data_shape(graph, ctx.inputs["data"] / "data.npz", str(path))
    info = {"opset": graph.opset, "source": "tflite", "quantised": low["quant"],
            "log": [f"TFLite file with {len(m.ops)} operators converted to NCHW"
                    + (" (fully int8: quantisation kept from the file)" if low["quant"] else " (float)")]}
    if low["quant"]:
        qm = tflite.to_qmodel(m, low)
        qm.save(ctx.out / "kept")
    _write(ctx, graph, info)


def _write(ctx, graph, info: dict):
    graph.save(ctx.out / "model.onnx")
    write_json(ctx.out / "params.json", graph.params())
    write_json(ctx.out / "cost.json", graph.cost())
    # what the import changed in the file (an opset upgrade), for the report's model section
    write_json(ctx.out / "import.json", info)
    for line in info["log"]:
        ctx.log(line)


def _check_data_shape(graph, data_file, model_file) -> None:
    """The dataset's samples must have the model input's shape: said here, naming the model file,
    before any stage spends time on a model that cannot read the data."""
    import numpy as np

    from edgebuild.data.tasks import check_input_shape

    with np.load(data_file, allow_pickle=False) as npz:
        data_shape = npz["x_test"].shape[1:]
    check_input_shape(graph.shapes[graph.inputs[0]][1:], data_shape, model_file,
                      input_name=graph.inputs[0])
