"""The MLPerf Tiny reference networks written as ONNX with the ``onnx`` helper API, seeded weights.

    from edgebuild.model.zoo import write_zoo
    write_zoo("ds_cnn", "kws.onnx", seed=0)          # 49x10x1 MFCC keyword spotter, 12 classes

The architectures follow the MLPerf Tiny inference benchmark's reference models (mlcommons/tiny,
Apache-2.0; Banbury et al., "MLPerf Tiny Benchmark", NeurIPS 2021):

- ``ds_cnn``: DS-CNN keyword spotting, input 1x49x10; conv 10x4 stride 2 (64 ch), BN, ReLU; four
  depthwise 3x3 + pointwise 1x1 blocks of 64 channels, each followed by BN + ReLU; global average
  pool; dense 12.
- ``resnet8``: CIFAR-10 ResNet-8, input 3x32x32; conv 3x3 16, BN, ReLU; three residual stacks of
  16/32/64 channels (stride 1/2/2), 1x1 projection shortcuts on the strided stacks, Add, ReLU;
  global average pool; dense 10.
- ``mobilenet_v1``: visual wake words MobileNetV1 width 0.25 at 3x96x96, 2 classes.
- ``fc_autoencoder``: anomaly detection autoencoder 640-128-128-128-128-8-128-128-128-128-640, each
  hidden dense layer followed by BN + ReLU; the output is the reconstruction.

Weights are He-normal from ``numpy.random.default_rng(seed)``; BatchNormalization statistics are
realistic (running means around 0, variances around the He-scaled pre-activation variance, scale
near 1) so that folding and quantisation see the spread of a trained network. ``width`` scales
every channel count (tests build narrow variants quickly). The weights are *not* trained: the
float accuracy of these models on any data is chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebuild.errors import ConfigError

ZOO = ("ds_cnn", "resnet8", "mobilenet_v1", "fc_autoencoder")
INPUT_SHAPES = {"ds_cnn": (1, 49, 10), "resnet8": (3, 32, 32), "mobilenet_v1": (3, 96, 96),
                "fc_autoencoder": (640,)}
TASKS = {"ds_cnn": "classification", "resnet8": "classification", "mobilenet_v1": "classification",
         "fc_autoencoder": "anomaly"}


class _Net:
    """Accumulates ONNX nodes and initializers with readable names."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def _name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def _init(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        from onnx import helper

        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: tuple[int, int], stride: int = 1, group: int = 1,
             pads: list[int] | None = None, base: str = "conv") -> str:
        name = self._name(base)
        fan_in = (cin // group) * k[0] * k[1]
        w = self.rng.standard_normal((cout, cin // group, *k)) * np.sqrt(2.0 / fan_in)
        b = self.rng.standard_normal(cout) * 0.01
        if pads is None:
            pads = [(k[0] - 1) // 2, (k[1] - 1) // 2, k[0] // 2, k[1] // 2]
        return self.node("Conv", [x, self._init(f"{name}.weight", w), self._init(f"{name}.bias", b)], name,
                         kernel_shape=list(k), strides=[stride, stride], pads=pads, group=group)

    def dense(self, x: str, cin: int, cout: int, base: str = "dense") -> str:
        name = self._name(base)
        w = self.rng.standard_normal((cout, cin)) * np.sqrt(2.0 / cin)
        b = self.rng.standard_normal(cout) * 0.01
        return self.node("Gemm", [x, self._init(f"{name}.weight", w), self._init(f"{name}.bias", b)], name,
                         transB=1)

    def bn(self, x: str, c: int) -> str:
        """Inference BatchNormalization with statistics of the kind training leaves behind."""
        name = self._name("bn")
        gamma = 1.0 + 0.1 * self.rng.standard_normal(c)
        beta = 0.05 * self.rng.standard_normal(c)
        mean = 0.1 * self.rng.standard_normal(c)
        var = np.exp(0.3 * self.rng.standard_normal(c))
        ins = [x] + [self._init(f"{name}.{k}", v) for k, v in
                     (("scale", gamma), ("bias", beta), ("mean", mean), ("var", var))]
        return self.node("BatchNormalization", ins, name, epsilon=1e-3)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], self._name("relu"))

    def conv_bn_relu(self, x, cin, cout, k, stride=1, group=1, base="conv", relu=True):
        y = self.bn(self.conv(x, cin, cout, k, stride, group, base=base), cout)
        return self.relu(y) if relu else y

    def model(self, name: str, x: str, shape: tuple, y: str, opset: int):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, *shape])],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, None])], self.inits)
        return helper.make_model(graph, producer_name="edgebuild.model.zoo",
                                 opset_imports=[helper.make_opsetid("", opset)])


def _c(ch: int, width: float) -> int:
    return max(1, int(round(ch * width)))


def _ds_cnn(n: _Net, width: float) -> str:
    c = _c(64, width)
    h = n.conv_bn_relu("input", 1, c, (10, 4), stride=2, base="conv1")
    for i in range(4):
        h = n.conv_bn_relu(h, c, c, (3, 3), group=c, base=f"dw{i + 1}")
        h = n.conv_bn_relu(h, c, c, (1, 1), base=f"pw{i + 1}")
    h = n.node("GlobalAveragePool", [h], "pool")
    h = n.node("Flatten", [h], "flatten", axis=1)
    return n.dense(h, c, 12, base="fc")


def _resnet8(n: _Net, width: float) -> str:
    c0 = _c(16, width)
    h = n.conv_bn_relu("input", 3, c0, (3, 3), base="conv1")
    cin = c0
    for stack, (ch, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
        ch = _c(ch, width)
        y = n.conv_bn_relu(h, cin, ch, (3, 3), stride=stride, base=f"s{stack + 1}a")
        y = n.conv_bn_relu(y, ch, ch, (3, 3), base=f"s{stack + 1}b", relu=False)
        short = h if (stride == 1 and cin == ch) else n.conv(h, cin, ch, (1, 1), stride=stride,
                                                             pads=[0, 0, 0, 0], base=f"s{stack + 1}proj")
        h = n.relu(n.node("Add", [y, short], n._name(f"s{stack + 1}add")))
        cin = ch
    h = n.node("GlobalAveragePool", [h], "pool")
    h = n.node("Flatten", [h], "flatten", axis=1)
    return n.dense(h, cin, 10, base="fc")


# MobileNetV1: (output channels, stride) of the 13 depthwise-separable blocks at width 1.0.
_MOBILENET = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
              (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _mobilenet_v1(n: _Net, width: float) -> str:
    alpha = 0.25 * width
    cin = _c(32, alpha)
    h = n.conv_bn_relu("input", 3, cin, (3, 3), stride=2, base="conv1")
    for i, (ch, stride) in enumerate(_MOBILENET):
        ch = _c(ch, alpha)
        h = n.conv_bn_relu(h, cin, cin, (3, 3), stride=stride, group=cin, base=f"dw{i + 1}")
        h = n.conv_bn_relu(h, cin, ch, (1, 1), base=f"pw{i + 1}")
        cin = ch
    h = n.node("GlobalAveragePool", [h], "pool")
    h = n.node("Flatten", [h], "flatten", axis=1)
    return n.dense(h, cin, 2, base="fc")


def _fc_autoencoder(n: _Net, width: float) -> str:
    hidden = [_c(128, width)] * 4 + [8] + [_c(128, width)] * 4
    h, cin = "input", 640
    for i, units in enumerate(hidden):
        h = n.relu(n.bn(n.dense(h, cin, units, base=f"fc{i + 1}"), units))
        cin = units
    return n.dense(h, cin, 640, base="out")


_BUILDERS = {"ds_cnn": _ds_cnn, "resnet8": _resnet8, "mobilenet_v1": _mobilenet_v1,
             "fc_autoencoder": _fc_autoencoder}


def zoo_model(name: str, seed: int = 0, width: float = 1.0, opset: int = 13):
    """The ONNX ModelProto of zoo network ``name`` (see the module docstring)."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown zoo network '{name}'", field="model.zoo.name",
                          fix=f"use one of {', '.join(ZOO)}")
    n = _Net(seed)
    out = _BUILDERS[name](n, width)
    model = n.model(name, "input", INPUT_SHAPES[name], out, opset)
    import onnx

    onnx.checker.check_model(model)
    return model


def write_zoo(name: str, path: str | Path, seed: int = 0, width: float = 1.0, opset: int = 13) -> Path:
    """Write zoo network ``name`` to ``path`` (deterministic bytes for the same arguments)."""
    import onnx

    path = Path(path)
    onnx.save_model(zoo_model(name, seed, width, opset), str(path))
    return path


def param_count(model) -> int:
    """Parameters of ``model`` as its framework counts them (BN: scale and bias; running stats excluded)."""
    from onnx import numpy_helper

    total = 0
    for init in model.graph.initializer:
        if init.name.endswith((".mean", ".var")):
            continue
        total += int(np.prod(numpy_helper.to_array(init).shape))
    return total
