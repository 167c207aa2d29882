"""quantise: int8 model, accuracies (onnxruntime, float reference, int8 reference) and test vectors."""

from __future__ import annotations

from edgebuild.stages.common import write_json


def run(ctx):
    import numpy as np
    import onnxruntime as ort

    from edgebuild.compress.quantize import quantize
    from edgebuild.data import load_saved
    from edgebuild.model import load

    qspec = ctx.params["quantize"]
    src = ctx.inputs["model"] / "model.onnx"
    graph = load(src)
    ds = load_saved(ctx.inputs["data"] / "data.npz")

    ctx.progress("calibrating")
    calib = ds.x_train[: qspec["calibration_samples"]]
    qm = quantize(graph, calib, per_channel=qspec["per_channel"])
    qm.save(ctx.out / "qmodel")

    ctx.progress("evaluating float and int8 references")
    x, y = ds.x_test, ds.y_test
    float_logits = graph.run({graph.inputs[0]: x})[graph.outputs[0]].reshape(len(x), -1)
    sess = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    ort_logits = np.concatenate([sess.run(None, {graph.inputs[0]: x[i:i + 1]})[0].reshape(1, -1)
                                 for i in range(len(x))])
    xq = qm.quantize_input(x)
    ref = qm.run(xq)
    float_pred = float_logits.argmax(1)
    int8_pred = ref.argmax(1)
    np.savez(ctx.out / "vectors.npz", inputs=xq.reshape(len(xq), -1), outputs=ref, labels=y.astype(np.int64),
             float_pred=float_pred.astype(np.int64))
    metrics = {
        "test_samples": int(len(y)),
        "float_accuracy": float((float_pred == y).mean()),
        "int8_accuracy": float((int8_pred == y).mean()),
        "onnxruntime_argmax_agreement": float((ort_logits.argmax(1) == float_pred).mean()),
        "float_int8_argmax_agreement": float((float_pred == int8_pred).mean()),
        "notes": list(qm.notes),
    }
    write_json(ctx.out / "metrics.json", metrics)
    ctx.log(f"float {metrics['float_accuracy']:.4f}, int8 {metrics['int8_accuracy']:.4f} "
            f"on {len(y)} test samples")
