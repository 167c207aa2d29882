"""Generated C (host gcc) must equal QModel.run byte for byte; avr-gcc must compile it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quant"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgen_helpers import HAVE_AVR, compile_avr, run_host  # noqa: E402
from onnx_graphs import Builder, structured_images, to_graph  # noqa: E402

from edgebuild.compress.quantize import quantize  # noqa: E402


def _check(b: Builder, out: str, tmp_path: Path, n=40, media=("flash",), seed=0):
    """Quantise the model, run reference and host C on n inputs (+ extreme ones), compare."""
    g = to_graph(b.model(out))
    shape = b.in_shape[1:]
    x = structured_images(120, shape, seed) if len(shape) == 3 else \
        np.random.default_rng(seed).uniform(0, 1, (120,) + shape).astype(np.float32)
    qm = quantize(g, x[:80])
    xq = np.concatenate([qm.quantize_input(x[80:80 + n]),
                         np.full((1,) + shape, -128, np.int8), np.full((1,) + shape, 127, np.int8),
                         np.random.default_rng(seed).integers(-128, 128, (3,) + shape,
                                                              dtype=np.int8)])
    ref = qm.run(xq)
    try:
        got = run_host(qm, xq, tmp_path, media)
    except subprocess.CalledProcessError as e:  # show the compiler's message
        pytest.fail(f"host build failed:\n{e.stderr}")
    assert got.dtype == np.int8 and got.shape == ref.shape
    mism = np.argwhere(got != ref)
    assert len(mism) == 0, f"{len(mism)} mismatches, first {mism[:5].tolist()}"
    assert len(np.unique(ref)) > 1, "degenerate test: constant output"
    if HAVE_AVR:
        try:
            compile_avr(qm, tmp_path)
        except subprocess.CalledProcessError as e:
            pytest.fail(f"avr build failed:\n{e.stderr}")
    return qm


CONV_CASES = [
    # (in_shape, cout, kernel, attrs, group)
    ((3, 9, 11), 5, 3, {"pads": [1, 1, 1, 1]}, 1),
    ((2, 10, 9), 4, (3, 2), {"pads": [2, 0, 1, 1], "strides": [2, 1]}, 1),
    ((4, 12, 12), 6, 3, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}, 1),
    ((4, 8, 8), 4, 3, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, 4),      # depthwise
    ((4, 7, 9), 6, 3, {"pads": [0, 1, 2, 0], "dilations": [1, 2]}, 2),     # grouped
    ((3, 8, 8), 4, 7, {"auto_pad": "SAME_UPPER"}, 1),                       # KW > 5 loop path
    ((1, 5, 5), 3, 5, {"pads": [4, 4, 4, 4]}, 1),                           # all-border
    ((3, 9, 9), 3, 3, {"auto_pad": "SAME_LOWER", "strides": [2, 2]}, 3),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv(case, tmp_path):
    shape, cout, k, attrs, group = CONV_CASES[case]
    b = Builder(shape, seed=case)
    t = b.conv("x", shape[0], cout, k, group=group, bias=case % 2 == 0, **attrs)
    _check(b, b.op("Flatten", [t]), tmp_path, seed=case)


@pytest.mark.parametrize("pool", [
    {"kernel_shape": [2, 2], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1},
])
def test_conv_relu_maxpool_fused(pool, tmp_path):
    b = Builder((2, 11, 10), seed=3)
    t = b.op("Relu", [b.conv("x", 2, 5, 3, pads=[1, 1, 1, 1])])
    t = b.op("MaxPool", [t], **pool)
    qm = _check(b, b.op("Flatten", [t]), tmp_path)
    assert [l["kind"] for l in qm.layers] == ["conv"] and "pool" in qm.layers[0]["attrs"]


def test_mnist_like_all_media(tmp_path):
    b = Builder((1, 14, 14), seed=5)
    t = b.op("Relu", [b.conv("x", 1, 4, 3, pads=[1, 1, 1, 1])])
    t = b.op("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2])
    t = b.op("Clip", [b.conv(t, 4, 8, 3), b.const("lo", 0.0), b.const("hi", 6.0)])
    t = b.op("Relu", [b.gemm(b.op("Flatten", [t]), 8 * 5 * 5, 16)])
    t = b.op("Softmax", [b.gemm(t, 16, 10)])
    qm = _check(b, t, tmp_path, media=("flash", "sram", "eeprom"))
    assert any("Softmax" in n for n in qm.notes)


@pytest.mark.parametrize("kind", ["max", "avg", "avg_pad", "global"])
def test_pools(kind, tmp_path):
    b = Builder((3, 9, 8), seed=7)
    t = b.conv("x", 3, 4, 3, pads=[1, 1, 1, 1])
    if kind == "max":
        t = b.op("MaxPool", [b.op("Tanh", [t])], kernel_shape=[3, 3], strides=[2, 2],
                 pads=[1, 1, 1, 1])
    elif kind == "avg":
        t = b.op("AveragePool", [t], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1])
    elif kind == "avg_pad":
        t = b.op("AveragePool", [t], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                 count_include_pad=1)
    else:
        t = b.op("GlobalAveragePool", [t])
    _check(b, b.op("Flatten", [t]), tmp_path)


def test_residual_add_concat_luts(tmp_path):
    b = Builder((3, 8, 8), seed=11)
    a = b.op("Relu", [b.conv("x", 3, 4, 3, pads=[1, 1, 1, 1])])
    c = b.conv(a, 4, 4, 3, pads=[1, 1, 1, 1])
    r = b.op("Relu", [b.op("Add", [a, c])])
    s = b.op("Sigmoid", [b.conv(r, 4, 2, 1)])
    lk = b.op("LeakyRelu", [b.conv(r, 4, 3, 1)], alpha=0.1)
    t = b.op("Concat", [r, s, lk], axis=1)
    t = b.op("Gemm", [b.op("Flatten", [b.op("GlobalAveragePool", [t])]),
                      b.const("head.weight", np.random.default_rng(0).normal(0, 0.5, (9, 6))),
                      b.const("head.bias", np.zeros(6))], name="head")
    qm = _check(b, t, tmp_path)
    kinds = [l["kind"] for l in qm.layers]
    for k in ("add", "concat", "lut", "avgpool", "dense"):
        assert k in kinds


def test_dense_matmul_add(tmp_path):
    b = Builder((20,), seed=13)
    rng = np.random.default_rng(1)
    t = b.op("MatMul", ["x", b.const("w1", rng.normal(0, 0.3, (20, 12)))])
    t = b.op("Relu", [b.op("Add", [t, b.const("b1", rng.normal(0, 0.1, 12))])])
    t = b.op("Tanh", [b.op("MatMul", [t, b.const("w2", rng.normal(0, 0.3, (12, 7)))])])
    qm = _check(b, t, tmp_path)
    assert [l["kind"] for l in qm.layers] == ["dense", "dense", "lut"]


def test_hostile_names(tmp_path):
    b = Builder((2, 6, 6), seed=17, in_name="in put;*/ \"x\"")
    t = b.conv(b.in_name, 2, 3, 3, name='c*/ 1;"\'\nint main', pads=[1, 1, 1, 1])
    t = b.op("Relu", [t], name="r e*/lu")
    t2 = b.conv(t, 3, 3, 1, name="c*/ 1;\"'\nint_main")
    t = b.op("Add", [t, t2], name="a;d d")
    t = b.op("Flatten", [t], name="/* flat */")
    _check(b, t, tmp_path)
    src = (tmp_path / "gen" / "edgebuild_model.c").read_text()
    assert "*/ 1" not in src and "in put" not in src


def test_with_storage_memory_plan(tmp_path):
    """The real planner's MemoryPlan (shared arena, EEPROM spill) drives the generated code."""
    from cgen_helpers import CFLAGS, DRIVER

    from edgebuild.codegen import generate
    from edgebuild.storage.plan import plan_memory

    b = Builder((1, 10, 10), seed=23)
    t = b.op("Relu", [b.conv("x", 1, 4, 3, pads=[1, 1, 1, 1])])
    t = b.op("Relu", [b.conv(t, 4, 4, 3, pads=[1, 1, 1, 1])])
    t = b.op("MaxPool", [t], kernel_shape=[2, 2], strides=[2, 2])
    t = b.op("Relu", [b.conv(t, 4, 4, 3, pads=[1, 1, 1, 1])])
    t = b.gemm(b.op("Flatten", [t]), 100, 10)
    qm = quantize(to_graph(b.model(t)), structured_images(40, (1, 10, 10), 0))
    weights, acts = qm.layout_request()
    plan = plan_memory(weights, acts, {"flash": {"capacity": 600}, "sram": {"capacity": 2048},
                                       "eeprom": {"capacity": 1024}}, policy="auto")
    assert {p.medium for p in plan.weights.values()} == {"flash", "eeprom"}
    assert plan.arena_size < sum(a["nbytes"] for a in acts)  # buffers are reused
    generate(qm, plan, tmp_path, arch="host")
    (tmp_path / "driver.c").write_text(DRIVER)
    subprocess.run(["gcc", *CFLAGS, "-I", str(tmp_path), str(tmp_path / "edgebuild_model.c"),
                    str(tmp_path / "driver.c"), "-o", str(tmp_path / "m")], check=True)
    xq = qm.quantize_input(structured_images(20, (1, 10, 10), 1))
    (tmp_path / "in.bin").write_bytes(xq.tobytes())
    subprocess.run([str(tmp_path / "m"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                   check=True)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8).reshape(20, -1)
    assert np.array_equal(got, qm.run(xq))
    if HAVE_AVR:
        generate(qm, plan, tmp_path / "avr", arch="avr")
        subprocess.run(["avr-gcc", "-mmcu=atmega328p", "-Os", "-std=c99", "-Wall", "-Wextra",
                        "-Werror", "-c", str(tmp_path / "avr" / "edgebuild_model.c"), "-o",
                        str(tmp_path / "m.o")], check=True)
