"""The benchmark networks as int8 .tflite files, and the TFLite reference interpreter's outputs.

The four MLPerf Tiny networks are edgebuild's own (edgebuild.model.zoo: the ONNX graphs, seeded
weights, BatchNorm statistics): ``keras_from_onnx`` rebuilds the same graph layer by layer in Keras
(NCHW -> NHWC, weights transposed, explicit ZeroPadding2D wherever ONNX's pads differ from
TensorFlow's 'same'), and TensorFlow's converter quantises it to full int8 (int8 input and
output) with a representative dataset. mnist_uno's float network comes out of edgebuild's own
training (its cached ``import`` stage ONNX) and goes through the same route.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebuild.errors import ModelError

REPRESENTATIVE_SAMPLES = 200


def _same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after) for size n, kernel k, stride s."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def keras_from_onnx(onnx_model, tf_padding: bool = False):
    """A Keras model (NHWC) computing the ONNX graph (NCHW) ``onnx_model``, same weights.

    ``tf_padding`` uses 'same' wherever it gives the ONNX output size even though it splits the
    padding differently (stride 2 on even sizes: TF pads bottom/right only, ONNX both sides), as
    the MLPerf Tiny Keras references do: no PAD ops, but not exactly the ONNX network.

    Covers the ops of edgebuild.model.zoo and the trained mnist models: Conv (group 1 or
    depthwise), BatchNormalization, Relu, Add, GlobalAveragePool, MaxPool, Flatten, Gemm/MatMul."""
    import onnx
    import tensorflow as tf
    from onnx import numpy_helper

    keras = tf.keras
    graph = onnx_model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    inp = [i for i in graph.input if i.name not in inits][0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim][1:]
    shape = (dims[1], dims[2], dims[0]) if len(dims) == 3 else tuple(dims)
    x_in = keras.Input(shape=shape, name="input")
    env = {inp.name: x_in}
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        x = env.get(node.input[0]) if node.input else None
        op = node.op_type
        if op == "Conv":
            w = inits[node.input[1]]
            b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            group = attrs.get("group", 1)
            k = tuple(attrs["kernel_shape"])
            s = tuple(attrs.get("strides", (1, 1)))
            pads = list(attrs.get("pads", (0, 0, 0, 0)))
            h, wd = x.shape[1], x.shape[2]
            same = all((tf_padding or _same_pads(n, kk, ss)[0] == p0)
                       and -(-n // ss) == (n + p0 + p1 - kk) // ss + 1
                       for n, kk, ss, p0, p1 in ((h, k[0], s[0], pads[0], pads[2]),
                                                 (wd, k[1], s[1], pads[1], pads[3])))
            padding = "same"
            if not same:
                if any(pads):
                    x = keras.layers.ZeroPadding2D(((pads[0], pads[2]), (pads[1], pads[3])))(x)
                padding = "valid"
            if group == 1:
                layer = keras.layers.Conv2D(w.shape[0], k, strides=s, padding=padding, name=node.name)
                x = layer(x)
                layer.set_weights([w.transpose(2, 3, 1, 0), b])
            elif group == w.shape[0] and w.shape[1] == 1:
                layer = keras.layers.DepthwiseConv2D(k, strides=s, padding=padding, name=node.name)
                x = layer(x)
                layer.set_weights([w[:, 0].transpose(1, 2, 0)[..., None], b])
            else:
                raise ModelError("grouped convolution that is not depthwise", field=node.name,
                                 fix="bench/peers converts group 1 and depthwise Conv only")
        elif op == "BatchNormalization":
            layer = keras.layers.BatchNormalization(epsilon=attrs.get("epsilon", 1e-5), name=node.name)
            x = layer(x)
            layer.set_weights([inits[n] for n in node.input[1:5]])
        elif op == "Relu":
            x = keras.layers.ReLU(name=node.name)(x)
        elif op == "Add":
            x = keras.layers.Add(name=node.name)([env[node.input[0]], env[node.input[1]]])
        elif op == "GlobalAveragePool":
            x = keras.layers.GlobalAveragePooling2D(name=node.name)(x)
        elif op == "MaxPool":
            x = keras.layers.MaxPooling2D(tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", (1, 1))),
                                          name=node.name)(x)
        elif op == "Flatten":
            if len(x.shape) == 4:
                # NCHW flatten order, so the following dense layer's weights apply unchanged.
                x = keras.layers.Permute((3, 1, 2))(x)
            x = keras.layers.Flatten(name=node.name)(x)
        elif op in ("Gemm", "MatMul"):
            w = inits[node.input[1]]
            if op == "Gemm" and attrs.get("transB", 0):
                w = w.T
            b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[1], np.float32)
            layer = keras.layers.Dense(w.shape[1], name=node.name)
            x = layer(x)
            layer.set_weights([w, b])
        else:
            raise ModelError(f"ONNX op {op} is not converted", field=f"{node.name} ({op})",
                             fix="extend bench/peers/models.py keras_from_onnx")
        env[node.output[0]] = x
    return keras.Model(x_in, env[graph.output[0].name])


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C); other ranks unchanged."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def convert_int8(keras_model, calibration: np.ndarray, path: Path) -> Path:
    """Full-integer (int8 in and out) .tflite of ``keras_model``; ``calibration`` is NHWC float."""
    from edgebuild.tflite import keras_to_int8

    return keras_to_int8(keras_model, calibration, path, samples=REPRESENTATIVE_SAMPLES)


def io_details(tflite_path: Path) -> dict:
    """Input/output shapes, sizes and (scale, zero point) of the .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite_path))
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    return {"input_shape": tuple(i["shape"]), "output_shape": tuple(o["shape"]),
            "input_size": int(np.prod(i["shape"])), "output_size": int(np.prod(o["shape"])),
            "input_quant": i["quantization"], "output_quant": o["quantization"]}


def quantize_inputs(tflite_path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    """Float inputs quantised with the model's input scale/zero point: (N, input_size) int8."""
    scale, zero = io_details(tflite_path)["input_quant"]
    q = np.clip(np.round(x_nhwc / scale) + zero, -128, 127).astype(np.int8)
    return q.reshape(len(q), -1)


def reference_outputs(tflite_path: Path, inputs_int8: np.ndarray) -> np.ndarray:
    """Outputs of TFLite's reference kernels (BUILTIN_REF) for each int8 input row."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(tflite_path),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for row in inputs_int8:
        it.set_tensor(i["index"], row.reshape(i["shape"]).astype(np.int8))
        it.invoke()
        outs.append(it.get_tensor(o["index"]).reshape(-1).copy())
    return np.stack(outs)
