"""The quantiser's hook for a near-dead channel: tiny weights beside a real bias (weight decay)."""

from __future__ import annotations

import numpy as np

from edgebuild.compress.budget import net_graph
from edgebuild.compress.quantize import quantize
from edgebuild.train import build_net


def test_channel_with_tiny_weights_and_a_bias_quantises_within_int32():
    net = build_net([{"flatten": {}}, {"dense": {"out": 6}}], (1, 8, 8), seed=0)
    p = net.params()
    p["dense1.weight"][2] = 1e-7 * np.sign(p["dense1.weight"][2])   # decayed to ~1e-7 of the layer's largest
    p["dense1.bias"][2] = 0.05                                     # ... but not its bias
    x = np.random.default_rng(0).uniform(0, 1, (100, 1, 8, 8)).astype(np.float32)
    qm = quantize(net_graph(net), x)                               # used to raise "may overflow" here
    lay = next(l for l in qm.layers if l["name"] == "dense1")
    assert np.abs(qm.arrays[lay["tables"]["bias"]].astype(np.int64)).max() < 2 ** 30
    # against the float model (onnx export = net.forward): every output within rounding of the int8 steps
    got = qm.dequantize_output(qm.run(qm.quantize_input(x)))
    assert np.abs(got - net.forward(x)).max() < 2 * qm.output_scale
