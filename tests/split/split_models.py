"""Small int8 models for the split tests: a chain CNN and a residual DAG, built with
edgebuild.model, optimised and quantised the way the pipeline does it."""

from __future__ import annotations

import numpy as np

from edgebuild.compress.quantize import quantize
from edgebuild.model import build, optimise
from edgebuild.model.builder import GraphBuilder


def _quantised(net, out, calib_seed=1):
    graph = optimise(build(net.nodes, {"x": ((1, 1, 8, 8), "float32")}, [out], net.inits, name="m"))
    calib = np.random.default_rng(calib_seed).uniform(0, 1, (64, 1, 8, 8)).astype(np.float32)
    return quantize(graph, calib, per_channel=True)


def chain_qmodel():
    """conv(1->4)+relu+maxpool, conv(4->6)+relu+maxpool, flatten, gemm(24->5): three fused layers."""
    n = GraphBuilder(scale=0.3, seed=0)
    h = n.op("MaxPool", [n.conv("x", 1, 4)], kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("MaxPool", [n.conv(h, 4, 6)], kernel_shape=[2, 2], strides=[2, 2])
    return _quantised(n, n.gemm(n.op("Flatten", [h], axis=1), 24, 5))


def residual_qmodel():
    """conv a, conv b(a), add(a, b), flatten, gemm: the skip spans the boundary after conv b."""
    n = GraphBuilder(scale=0.3, seed=1)
    a = n.conv("x", 1, 3)
    s = n.op("Add", [a, n.conv(a, 3, 3)])
    return _quantised(n, n.gemm(n.op("Flatten", [s], axis=1), 192, 4))
