"""quantise: int8 model, task scores (onnxruntime, float reference, int8 reference) and test vectors."""

from __future__ import annotations

from edgebuild.errors import ConfigError
from edgebuild.stages.common import read_json, write_json


def _compressed(folder) -> bool:
    """Whether the compress stage changed the model (it copies it unchanged without a budget)."""
    info = read_json(folder / "compress.json")
    return bool(info.get("method")) and info.get("method") != "none"


def run(ctx):
    import numpy as np
    import onnxruntime as ort

    from edgebuild.compress.quantize import quantize
    from edgebuild.data import load_saved
    from edgebuild.data.tasks import check_labels, reference_of, score
    from edgebuild.model import load

    qspec = ctx.params["quantize"]
    kind = ctx.params.get("task") or "classification"
    src = ctx.inputs["model"] / "model.onnx"
    graph = load(src)
    ds = load_saved(ctx.inputs["data"] / "data.npz")
    check_labels(kind, ds.y_test)

    kept = ctx.inputs["imported"] / "kept" if "imported" in ctx.inputs else None
    if kept is not None and (kept / "qmodel.json").is_file():
        # an int8 .tflite: its own scales and zero points, no calibration (edgebuild.tflite)
        from edgebuild.compress.qmodel import QModel

        if (ctx.inputs["model"] / "compress.json").is_file() and _compressed(ctx.inputs["model"]):
            raise ConfigError("the model's int8 quantisation is kept from the .tflite file, so it cannot be "
                              "pruned before quantisation", field="compression",
                              fix="drop compression.method and the compression budgets, or give a float .tflite")
        qm = QModel.load(kept)
        ctx.log("quantisation kept from the file (no calibration)")
    else:
        ctx.progress("calibrating")
        calib = ds.x_train[: qspec["calibration_samples"]]
        qm = quantize(graph, calib, per_channel=qspec["per_channel"])
    qm.save(ctx.out / "qmodel")

    ctx.progress("evaluating float and int8 references")
    x, y = ds.x_test, ds.y_test
    float_out = graph.run({graph.inputs[0]: x})[graph.outputs[0]].reshape(len(x), -1)
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    ort_out = np.concatenate([sess.run(None, {graph.inputs[0]: x[i:i + 1]})[0].reshape(1, -1)
                              for i in range(len(x))])
    xq = qm.quantize_input(x)
    ref = qm.run(xq)
    reference = reference_of(kind, x, y)
    labels = y.astype(np.int64) if y.ndim == 1 else np.full(len(y), -1, dtype=np.int64)
    vectors = dict(inputs=xq.reshape(len(xq), -1), outputs=ref, labels=labels,
                   float_pred=float_out.argmax(1).astype(np.int64))
    if reference is not None:
        vectors.update(reference=reference, float_outputs=float_out.astype(np.float32))
    np.savez(ctx.out / "vectors.npz", **vectors)
    f = score(kind, float_out, reference=reference, labels=labels)
    q = score(kind, qm.dequantize_output(ref), reference=reference, labels=labels)
    metrics = {"test_samples": int(len(y)), "task": kind, "metric": f["metric"], "notes": list(qm.notes)}
    if kind == "classification":
        metrics.update(float_accuracy=f["accuracy"], int8_accuracy=q["accuracy"],
                       onnxruntime_argmax_agreement=float((ort_out.argmax(1) == float_out.argmax(1)).mean()),
                       float_int8_argmax_agreement=float((float_out.argmax(1) == ref.argmax(1)).mean()))
        ctx.log(f"float {metrics['float_accuracy']:.4f}, int8 {metrics['int8_accuracy']:.4f} "
                f"on {len(y)} test samples")
    else:
        metrics.update(float_mse=f["mse"], int8_mse=q["mse"], float_auc=f.get("auc"), int8_auc=q.get("auc"),
                       onnxruntime_max_abs_diff=float(np.abs(ort_out - float_out).max()),
                       float_int8_output_mse=float(((qm.dequantize_output(ref) - float_out) ** 2).mean()))
        ctx.log(f"{kind}: float MSE {metrics['float_mse']:.5g}, int8 MSE {metrics['int8_mse']:.5g} "
                f"on {len(y)} test samples")
    write_json(ctx.out / "metrics.json", metrics)
