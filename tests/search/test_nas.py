"""Weight-sharing supernet and NAS: scatter gradients, extraction, Pareto fronts, per-target choices.

References are independent of the code under test: finite differences for the gradient scatter,
build_net + onnxruntime for extracted sub-networks, plain numpy slicing / zeroed weights for the
slice semantics, a brute-force loop for the Pareto front, and the exported ONNX files read with
onnx (plus a fresh cost computation from those files) for the budgets.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebuild.compress.budget import Budget, Costing
from edgebuild.config import load_recipe
from edgebuild.errors import BudgetError, ConfigError
from edgebuild.search.common import TargetBudget
from edgebuild.search.nas import OBJECTIVES, nas_search, pareto_front
from edgebuild.search.supernet import Supernet
from edgebuild.train import build_net, export_onnx

ROOT = Path(__file__).resolve().parents[2]

SPACE = {"stages": [{"channels": [2, 3], "kernels": [1, 3, 5], "depth": [1, 2]},
                    {"channels": [2, 4], "kernels": [3], "depth": [1, 2]}],
         "dense": [0, 5, 6], "classes": 4}


def _ce(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy, written here from scratch (float64)."""
    z = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def _f64(sn: Supernet) -> Supernet:
    sn.weights = {k: v.astype(np.float64) for k, v in sn.weights.items()}
    for k, v in sn.weights.items():
        if k.endswith(".bias"):
            v[...] = np.random.default_rng(len(k)).normal(0, 0.1, v.shape)
    return sn


def test_space_validation_names_the_field():
    with pytest.raises(ConfigError) as err:
        Supernet({**SPACE, "stages": [{"channels": [2], "kernels": [2], "depth": [1]}]}, (1, 8, 8))
    assert "search.space.stages[0].kernels" in str(err.value) and "odd" in str(err.value)
    with pytest.raises(ConfigError) as err:
        Supernet({**SPACE, "stages": SPACE["stages"] * 2}, (1, 8, 8))
    assert "search.space.stages" in str(err.value) and "fewer stages" in str(err.value)
    with pytest.raises(ConfigError) as err:
        Supernet({**SPACE, "width": [1]}, (1, 8, 8))
    assert "width" in str(err.value)
    sn = Supernet(SPACE, (1, 8, 8))
    with pytest.raises(ConfigError) as err:
        sn.extract({"stages": [{"channels": 3, "kernel": 3, "depth": 1}, {"channels": 5, "kernel": 3, "depth": 1}],
                    "dense": 0})
    assert "arch.stages[1].channels" in str(err.value)


@pytest.mark.parametrize("arch", [
    {"stages": [{"channels": 2, "kernel": 3, "depth": 2}, {"channels": 2, "kernel": 3, "depth": 1}], "dense": 5},
    {"stages": [{"channels": 3, "kernel": 1, "depth": 1}, {"channels": 4, "kernel": 3, "depth": 2}], "dense": 0},
])
def test_scatter_gradient_matches_finite_differences(arch):
    sn = _f64(Supernet(SPACE, (1, 8, 8), seed=3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 1, 8, 8))
    y = rng.integers(0, 4, size=6)
    _, grads = sn.loss_and_grads(arch, x, y)
    eps = 1e-6
    for name, w in sn.weights.items():
        picks = [tuple(int(rng.integers(s)) for s in w.shape) for _ in range(6)]
        nonzero = np.argwhere(grads[name] != 0)
        picks += [tuple(int(v) for v in nonzero[rng.integers(len(nonzero))]) for _ in range(6)] if len(nonzero) else []
        for idx in picks:
            old = w[idx]
            w[idx] = old + eps
            up = _ce(sn.extract(arch).forward(x), y)
            w[idx] = old - eps
            down = _ce(sn.extract(arch).forward(x), y)
            w[idx] = old
            fd = (up - down) / (2 * eps)
            assert grads[name][idx] == pytest.approx(fd, rel=1e-4, abs=1e-7), (name, idx)
    # Tensors the sub-net does not use get no gradient at all.
    unused = "head_flat" if arch["dense"] else "hidden"
    assert not grads[f"{unused}.weight"].any()


def test_extract_largest_equals_build_net_and_onnxruntime(tmp_path):
    import onnxruntime as ort

    sn = Supernet(SPACE, (1, 8, 8), seed=1)
    arch = sn.largest()
    sub = sn.extract(arch)
    ref = build_net(sn.arch_to_layers(arch), (1, 8, 8), seed=99)
    # Load the shared tensors, in layer order, into the independently built net.
    shared = [f"s0.conv{j}" for j in range(2)] + [f"s1.conv{j}" for j in range(2)] + ["hidden", "head"]
    with_params = [layer for layer in ref.layers if layer.params]
    assert len(with_params) == len(shared)
    for layer, prefix in zip(with_params, shared):
        assert layer.params["weight"].shape == sn.weights[f"{prefix}.weight"].shape
        layer.params = {"weight": sn.weights[f"{prefix}.weight"].copy(), "bias": sn.weights[f"{prefix}.bias"].copy()}
    assert sub.arch() == ref.arch()
    x = np.random.default_rng(5).normal(size=(3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(sub.forward(x), ref.forward(x))
    export_onnx(sub, tmp_path / "sub.onnx")
    sess = ort.InferenceSession(str(tmp_path / "sub.onnx"), providers=["CPUExecutionProvider"])
    for i in range(3):
        (out,) = sess.run(None, {"input": x[i:i + 1]})
        np.testing.assert_allclose(out, ref.forward(x[i:i + 1]), rtol=1e-5, atol=1e-5)


def test_smaller_kernel_channels_depth_are_slices():
    sn = Supernet(SPACE, (1, 8, 8), seed=2)
    arch = {"stages": [{"channels": 2, "kernel": 3, "depth": 2}, {"channels": 2, "kernel": 3, "depth": 1}], "dense": 5}
    convs = [layer for layer in sn.extract(arch).layers if layer.kind == "conv"]
    w00, w01, w10 = sn.weights["s0.conv0.weight"], sn.weights["s0.conv1.weight"], sn.weights["s1.conv0.weight"]
    assert w00.shape == (3, 1, 5, 5)
    np.testing.assert_array_equal(convs[0].params["weight"], w00[:2, :1, 1:4, 1:4])   # centre 3x3 of 5x5
    np.testing.assert_array_equal(convs[1].params["weight"], w01[:2, :2, 1:4, 1:4])
    np.testing.assert_array_equal(convs[2].params["weight"], w10[:2, :2])
    k1 = {"stages": [{"channels": 3, "kernel": 1, "depth": 1}, {"channels": 4, "kernel": 3, "depth": 1}], "dense": 0}
    np.testing.assert_array_equal(sn.extract(k1).layers[0].params["weight"], w00[:, :, 2:3, 2:3])
    # Copies, not views (also for the largest, whose slices are whole tensors): training an
    # extracted net leaves the supernet alone.
    before = {k: v.copy() for k, v in sn.weights.items()}
    for net in (sn.extract(arch), sn.extract(sn.largest())):
        for p in net.params().values():
            p += 1.0
    for k, v in sn.weights.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_subnet_equals_largest_net_with_unused_weights_zeroed():
    """Slicing semantics end to end (channel order through flatten, kernel centre, hidden units):
    a full-depth sub-net equals the largest net whose weights outside the sub-net are zero."""
    sn = Supernet(SPACE, (1, 8, 8), seed=4)
    arch = {"stages": [{"channels": 2, "kernel": 3, "depth": 2}, {"channels": 2, "kernel": 3, "depth": 2}], "dense": 5}
    big = sn.extract(sn.largest())
    params = big.params()
    for name in ("conv1", "conv2"):                               # stage 0: 3 -> 2 channels, 5x5 -> 3x3
        w = params[f"{name}.weight"]
        ring = np.ones((5, 5), bool)
        ring[1:4, 1:4] = False
        w[:, :, ring] = 0
        w[2:] = 0
        params[f"{name}.bias"][2:] = 0
    for name in ("conv3", "conv4"):                               # stage 1: 4 -> 2 channels
        params[f"{name}.weight"][2:] = 0
        params[f"{name}.bias"][2:] = 0
    params["dense1.weight"][5:] = 0                               # hidden 6 -> 5 units
    params["dense1.bias"][5:] = 0
    x = np.random.default_rng(6).normal(size=(4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(sn.extract(arch).forward(x), big.forward(x), rtol=1e-5, atol=1e-6)


def _dominates(a, b, keys):
    ge = all((a[k] >= b[k]) if s == "max" else (a[k] <= b[k]) for k, s in keys.items())
    gt = any((a[k] > b[k]) if s == "max" else (a[k] < b[k]) for k, s in keys.items())
    return ge and gt


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)), max_size=25))
def test_pareto_front_matches_brute_force(rows):
    keys = {"acc": "max", "flash": "min", "sram": "min"}
    points = [{"acc": a, "flash": f, "sram": s} for a, f, s in rows]
    expected = [i for i, p in enumerate(points) if not any(_dominates(q, p, keys) for q in points)]
    assert pareto_front(points, keys) == expected


# ---- the whole search on a tiny space ---------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_ds():
    from edgebuild.data import load_dataset

    return load_dataset({"name": "mnist5k", "resize": [8, 8], "limit": 1300,
                         "split": {"test": 300, "val": 300, "seed": 0}})


TINY = {"stages": [{"channels": [2, 4], "kernels": [1, 3], "depth": [1, 2]},
                   {"channels": [4, 6], "kernels": [3], "depth": [1]}], "dense": [0, 8], "classes": 10}


def _target(name: str, **limits) -> TargetBudget:
    tgt = load_recipe(str(ROOT / "recipes/mnist_uno.yaml"), [f"target={name}"])["target"]
    return TargetBudget.from_target(tgt, limits)


def _search(ds, targets, seed=0):
    return nas_search(TINY, ds, targets, supernet_epochs=2, samples=10, epochs=1, lr=0.01, seed=seed,
                      base_val_accuracy=0.99)


@pytest.fixture(scope="module")
def tiny_targets():
    # Uno flash limit: halfway between the smallest and the largest sub-network of TINY.
    sn = Supernet(TINY, (1, 8, 8))
    uno = _target("uno")
    small, large = (uno.costing.net_figures(sn.extract(a))["flash_bytes"] for a in (sn.smallest(), sn.largest()))
    return [_target("uno", flash_bytes=(small + large) / 2, sram_bytes=2048), _target("netduinoplus2")]


@pytest.fixture(scope="module")
def tiny_result(tiny_ds, tiny_targets):
    return _search(tiny_ds, tiny_targets)


def _expected_initializers(arch: dict, in_ch: int, side: int, classes: int) -> dict:
    """Initializer shapes an architecture implies, derived here from the arch dict alone."""
    shapes, n = {}, itertools.count(1)
    for stage in arch["stages"]:
        for _ in range(stage["depth"]):
            i = next(n)
            shapes[f"conv{i}.weight"] = (stage["channels"], in_ch, stage["kernel"], stage["kernel"])
            shapes[f"conv{i}.bias"] = (stage["channels"],)
            in_ch = stage["channels"]
        side //= 2
    flat = in_ch * side * side
    if arch["dense"]:
        shapes["dense1.weight"], shapes["dense1.bias"] = (arch["dense"], flat), (arch["dense"],)
        shapes["dense2.weight"], shapes["dense2.bias"] = (classes, arch["dense"]), (classes,)
    else:
        shapes["dense1.weight"], shapes["dense1.bias"] = (classes, flat), (classes,)
    return shapes


def test_nas_choices_meet_budgets(tiny_result, tiny_targets, tiny_ds, tmp_path):
    import onnx

    from edgebuild.model import load, optimise

    by_name = {t.name: t for t in tiny_targets}
    assert set(tiny_result.choices) == {"uno", "netduinoplus2"}
    for name, choice in tiny_result.choices.items():
        budget: Budget = by_name[name].budget
        path = tmp_path / f"{name}.onnx"
        export_onnx(choice.net, path)
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        got = {t.name: tuple(t.dims) for t in model.graph.initializer}
        assert got == _expected_initializers(choice.detail["arch"], 1, 8, 10)
        assert choice.figures["params"] == sum(int(np.prod(s)) for s in got.values())
        # Fresh cost computation from the ONNX file on this target: within every limit.
        tgt = load_recipe(str(ROOT / "recipes/mnist_uno.yaml"), [f"target={name}"])["target"]
        fresh = Costing(tgt["energy"], tgt["f_cpu"]).figures(optimise(load(path)))
        for key, limit in budget.limits().items():
            assert fresh[key] <= limit, (name, key, fresh[key], limit)
        assert fresh["flash_bytes"] == choice.figures["flash_bytes"]
        # The layer list in the detail rebuilds the same network.
        assert build_net(choice.detail["layers"], (1, 8, 8)).arch() == choice.net.arch()
        # The reported validation accuracy is the fine-tuned net's (recomputed here in numpy).
        pred = choice.net.forward(tiny_ds.x_val).argmax(axis=1)
        assert choice.val_accuracy == pytest.approx(float((pred == tiny_ds.y_val).mean()))
        assert choice.method == "nas" and choice.detail["within_accuracy_budget"] is (choice.val_accuracy >= 0.98)


def test_nas_fronts_are_pareto_and_choice_is_most_accurate(tiny_result, tiny_targets):
    import json

    stats = tiny_result.stats
    json.dumps(stats, allow_nan=False)
    json.dumps([c.detail for c in tiny_result.choices.values()], allow_nan=False)
    assert stats["evaluated"] >= 3 and stats["supernet_seconds"] > 0
    for t in tiny_targets:
        front = stats["pareto"][t.name]
        assert front and all(not t.budget.shortfalls(p) for p in front)
        for p in front:
            assert not any(_dominates(q, p, OBJECTIVES) for q in front)
        chosen = tiny_result.choices[t.name].detail
        assert chosen["inherited_val_accuracy"] == max(p["val_accuracy"] for p in front)
        assert chosen["pareto"] == front
    assert stats["feasible"]["uno"] < stats["feasible"]["netduinoplus2"]


def test_nas_is_deterministic(tiny_ds, tiny_targets, tiny_result):
    again = _search(tiny_ds, tiny_targets)
    for name, choice in tiny_result.choices.items():
        other = again.choices[name]
        assert other.detail["arch"] == choice.detail["arch"] and other.val_accuracy == choice.val_accuracy
        for (k, a), (_, b) in zip(choice.net.params().items(), other.net.params().items()):
            np.testing.assert_array_equal(a, b, err_msg=k)
    assert again.stats["pareto"] == tiny_result.stats["pareto"]


def test_nas_impossible_target_raises_budget_error(tiny_ds):
    impossible = _target("uno", flash_bytes=1000)
    with pytest.raises(BudgetError) as err:
        nas_search(TINY, tiny_ds, [_target("netduinoplus2"), impossible], supernet_epochs=50, samples=4,
                   epochs=50, lr=0.01, seed=0)
    assert "'uno'" in str(err.value) and "flash_bytes" in err.value.shortfalls
    assert err.value.shortfalls["flash_bytes"]["limit"] == 1000


def test_scored_candidates_are_shared_out_round_robin():
    from edgebuild.search.nas import _pick

    chosen = _pick({"loose": list(range(10)), "tight": [8, 9]}, corners=[0, 9], samples=4,
                   rng=np.random.default_rng(0))
    assert len(chosen) == 6 and {0, 8, 9} <= set(chosen) and chosen == sorted(set(chosen))
    assert _pick({"a": [1, 2], "b": [2]}, corners=[0], samples=10, rng=np.random.default_rng(0)) == [1, 2]
    # Even with no samples, every target gets one of its own candidates.
    few = _pick({"a": [1, 2], "b": [3, 4], "c": [1]}, corners=[0], samples=0, rng=np.random.default_rng(0))
    assert {1} <= set(few) and len(set(few) & {3, 4}) == 1 and len(few) <= 3


def test_plot_fronts_writes_a_png(tiny_result, tmp_path):
    from edgebuild.search.nas import plot_fronts

    plot_fronts(tiny_result.stats, tmp_path / "fronts.png", tiny_result.choices)
    assert (tmp_path / "fronts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nas_rejects_labels_beyond_classes(tiny_ds):
    with pytest.raises(ConfigError) as err:
        nas_search({**TINY, "classes": 5}, tiny_ds, [_target("netduinoplus2")], supernet_epochs=50, samples=4,
                   epochs=50, lr=0.01, seed=0)
    assert "search.space.classes" in str(err.value) and "set classes to 10" in str(err.value)
