"""Activation planning on DAGs with residual branches (ResNet-8 from the zoo), checked by a brute-force
step-by-step liveness scan written here, and the TFLite Micro arena estimate by hand on a tiny chain."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgebuild.storage import Buffer, plan_arena
from edgebuild.storage.tflm import tflm_arena_estimate


@pytest.fixture(scope="module")
def resnet_q(tmp_path_factory):
    from edgebuild.compress.quantize import quantize
    from edgebuild.model import load, optimise
    from edgebuild.model.zoo import write_zoo

    path = write_zoo("resnet8", tmp_path_factory.mktemp("r8") / "r8.onnx", seed=0, width=0.5)
    g = optimise(load(path))
    calib = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    return quantize(g, calib)


def _brute_live_sets(layers, owned):
    """At each step i: the tensors produced at or before i and read at or after i (or produced at i)."""
    produced = {lay["output"]: i for i, lay in enumerate(layers)}
    reads = {}
    for i, lay in enumerate(layers):
        for t in lay["inputs"]:
            reads.setdefault(t, []).append(i)
    sizes = {lay["output"]: int(np.prod(lay["out_shape"])) for lay in layers}
    steps = []
    for i in range(len(layers)):
        steps.append({t for t, p in produced.items() if t not in owned and p <= i
                      and (p == i or any(r >= i for r in reads.get(t, [])))})
    return steps, sizes


def test_residual_tensors_stay_live_until_the_add(resnet_q):
    qm = resnet_q
    _, acts = qm.layout_request()
    life = {a["name"]: (a["first"], a["last"]) for a in acts}
    adds = [i for i, lay in enumerate(qm.layers) if lay["kind"] == "add"]
    assert len(adds) == 3
    for i in adds:
        for t in qm.layers[i]["inputs"]:
            assert life[t][1] >= i           # both branches (main path and shortcut) live until the Add
    # the identity shortcut of the first stack is read by the first conv of the block and by the Add
    first_add_inputs = qm.layers[adds[0]]["inputs"]
    assert any(life[t][1] - life[t][0] >= 2 for t in first_add_inputs)


def test_plan_against_brute_force_liveness(resnet_q):
    qm = resnet_q
    _, acts = qm.layout_request()
    plan = plan_arena([Buffer(a["name"], a["nbytes"], a["first"], a["last"]) for a in acts])
    steps, sizes = _brute_live_sets(qm.layers, {qm.input_name, qm.output_name})
    assert max(len(s) for s in steps) >= 3                  # a real DAG: three tensors live at once
    brute_bound = max(sum(sizes[t] for t in s) for s in steps)
    assert plan.lower_bound == brute_bound
    assert brute_bound <= plan.size
    for live in steps:                                       # no two tensors live together share a byte
        for a, b in itertools.combinations(sorted(live), 2):
            oa, ob = plan.offsets[a], plan.offsets[b]
            assert oa + sizes[a] <= ob or ob + sizes[b] <= oa, (a, b)


def test_tflm_estimate_by_hand():
    # input 100 B -> conv (8 ch, 8x4x4 = 128 B) -> dense 10 B (the output).
    layers = [{"kind": "conv", "inputs": ["x"], "output": "a", "out_shape": [8, 4, 4]},
              {"kind": "dense", "inputs": ["a"], "output": "y", "out_shape": [10]}]
    est = tflm_arena_estimate(layers, "x", 100)
    # head: x (112 aligned, ops 0..0), a (128, 0..1), y (16, 1..1); greedy by size: a@0, x@128, y@128
    # (y does not overlap x) -> 240 bytes.
    assert est["head"] == 240
    # tail: 3 + 2*2 = 7 tensors * 24 = 168 -> 176 aligned; 2 ops * 56 = 112; conv 8 ch * 8 = 64.
    assert est["tensors"] == 7 and est["tail"] == 176 + 112 + 64 and est["total"] == 240 + 352
