"""Split search: Neurosurgeon and DADS min-cut against a brute force over all closed device sets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgebuild.errors import BudgetError, ModelError
from edgebuild.partition import (CostGraph, Layer, Link, costs_from_graph, evaluate, plan_for,
                                 solve, split_at)
from edgebuild.partition.solve import dag_candidates
from partition_ref import brute_best, random_dag, ref_cost

LINKS = [(1e6, 0.0, 0.0), (1e7, 20.0, 0.5), (5e7, 5.0, 0.05), (2e5, 1.0, 2.0)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_chain_matches_brute_force(seed, objective):
    costs = random_dag(seed, 9, chain=True, weights=True)
    assert costs.is_chain()
    for bw, lat, epb in LINKS:
        plan = solve(costs, Link(bw, lat, epb), objective)
        want = brute_best(costs, bw, lat, epb, objective)
        assert plan.value == pytest.approx(want, rel=1e-12)
        t, e, _ = ref_cost(costs, plan.device, bw, lat, epb)
        assert plan.latency_s == pytest.approx(t) and plan.device_energy_j == pytest.approx(e)


@pytest.mark.parametrize("seed", range(4))
def test_chain_budgets_match_brute_force(seed):
    costs = random_dag(seed, 8, chain=True, weights=True)
    for bw, lat, epb in LINKS:
        for mem in (1500, 4000, 20000):
            for energy in (None, 5e-3, 2e-2):
                want = brute_best(costs, bw, lat, epb, "latency", mem, energy)
                if want is None:
                    with pytest.raises(BudgetError):
                        solve(costs, Link(bw, lat, epb), memory_bytes=mem,
                              energy_budget_j=energy)
                    continue
                plan = solve(costs, Link(bw, lat, epb), memory_bytes=mem, energy_budget_j=energy)
                assert plan.value == pytest.approx(want, rel=1e-12)
                _, e, m = ref_cost(costs, plan.device, bw, lat, epb)
                assert m <= mem and (energy is None or e <= energy * (1 + 1e-9))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("objective", ["latency", "energy"])
def test_dag_min_cut_matches_brute_force(seed, objective):
    costs = random_dag(100 + seed, 10)
    assert not costs.is_chain()
    for bw, lat, epb in LINKS:
        plan = solve(costs, Link(bw, lat, epb), objective)
        assert plan.exact
        want = brute_best(costs, bw, lat, epb, objective)
        assert plan.value == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_dag_sram_budget_is_exact(seed):
    """Per-layer activation budgets (weights in flash) are enforced exactly by pinning."""
    costs = random_dag(200 + seed, 10)
    for mem in (1000, 2000, 2800):
        want = brute_best(costs, 1e6, 2.0, 0.2, "latency", memory=mem)
        plan = solve(costs, Link(1e6, 2.0, 0.2), memory_bytes=mem)
        assert plan.exact and plan.value == pytest.approx(want, rel=1e-9)
        assert ref_cost(costs, plan.device, 1e6, 2.0, 0.2)[2] <= mem


def test_dag_binding_budgets_are_honoured():
    """Weight-sum and energy budgets: always feasible, never better than the true optimum, and
    equal to it when flagged exact; both the exact and the Lagrangian path are exercised."""
    link, paths = Link(1e5, 1.0, 1.0), set()
    for seed in range(6):
        costs = random_dag(300 + seed, 9, weights=True)
        for mem in (2500, 6000):
            for energy in (2e-3, 5e-3, 1e-2, None):
                want = brute_best(costs, 1e5, 1.0, 1.0, "latency", mem, energy)
                if want is None:
                    with pytest.raises(BudgetError):
                        solve(costs, link, memory_bytes=mem, energy_budget_j=energy)
                    continue
                plan = solve(costs, link, memory_bytes=mem, energy_budget_j=energy)
                paths.add(plan.exact)
                _, e, m = ref_cost(costs, plan.device, 1e5, 1.0, 1.0)
                assert m <= mem and (energy is None or e <= energy * (1 + 1e-9))
                assert plan.value >= want * (1 - 1e-9)
                if plan.exact:
                    assert plan.value == pytest.approx(want, rel=1e-9)
    assert paths == {True, False}


def test_shared_tensor_is_sent_once():
    """x feeds a and b; a and b go to the server: x (1000 B) is paid once, not twice."""
    layers = (Layer("a", ("x",), 1.0, 0.001, 1.0, 10), Layer("b", ("x",), 1.0, 0.001, 1.0, 10),
              Layer("c", ("a", "b"), 1.0, 0.001, 1.0, 10))
    costs = CostGraph(layers, {"x": 1000})
    # device-only: 3 s; server-only: 8000/10000 = 0.8 s once (1.6 s if counted twice) + 0.003
    plan = solve(costs, Link(1e4))
    assert plan.device == frozenset() and plan.latency_s == pytest.approx(0.803)
    assert plan.cut == ("x",) and plan.sent_bytes == 1000


def test_min_cut_on_chain_agrees_with_neurosurgeon():
    costs = random_dag(7, 12, chain=True)
    for bw, lat, epb in LINKS:
        link = Link(bw, lat, epb)
        cand = dag_candidates(costs, link, "latency", lagrangian=False)
        best = cand.choose(None, None)
        assert cand.value[best] == pytest.approx(solve(costs, link).value, rel=1e-9)


def test_memory_budget_too_small_raises():
    costs = random_dag(1, 5, chain=True)
    link = Link(1e6, 0.0, 1000.0)  # sending costs 1 mJ/byte, more than any energy budget here
    with pytest.raises(BudgetError):
        solve(costs, link, memory_bytes=10, energy_budget_j=1e-6)


def test_split_at_and_evaluate_errors():
    costs = random_dag(3, 6)
    plan = split_at(costs, "L3", Link(1e6))
    assert plan.device == frozenset(costs.ancestors("L3")) and "L3" in plan.device
    with pytest.raises(ModelError, match="partition.at"):
        split_at(costs, "nope", Link(1e6))
    with pytest.raises(ModelError, match="reads"):
        evaluate(costs, {"L5"}, Link(1e6))


def test_costs_from_mnist_cnn_graph():
    sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
    from model_builders import mnist_cnn

    from edgebuild.model import from_onnx, optimise
    graph = optimise(from_onnx(mnist_cnn()))
    costs = costs_from_graph(graph, cycles_per_mac=12, f_cpu=16e6, power_w=0.05, speedup=40)
    assert costs.is_chain() and costs.inputs == {"input": 28 * 28}
    conv1, conv2 = costs.layers[0], costs.layers[2]
    assert conv1.device_time_s == pytest.approx(28 * 28 * 8 * 9 * 12 / 16e6)   # hand-counted MACs
    assert conv2.device_time_s == pytest.approx(14 * 14 * 16 * 8 * 9 * 12 / 16e6)
    assert conv1.server_time_s == pytest.approx(conv1.device_time_s / 40)
    assert conv1.device_energy_j == pytest.approx(conv1.device_time_s * 0.05)
    assert conv1.out_bytes == 8 * 28 * 28 and conv1.act_bytes == 784 + 8 * 28 * 28
    plan = split_at(costs, "p2", Link(1e6))   # tensor name of the second pool
    assert plan.cut == ("p2",) and plan.cut_layers == (costs.layers[3].name,)
    assert plan.sent_bytes == 16 * 7 * 7


def _residual_graph():
    """x -> conv a -> relu r -> (conv b, conv c) -> concat -> add(concat, skip conv d of x)."""
    import numpy as np

    from edgebuild.model import Node, build
    rng = np.random.default_rng(0)
    w = {f"w{k}": rng.standard_normal(s).astype(np.float32)
         for k, s in enumerate([(4, 1, 3, 3), (2, 4, 1, 1), (2, 4, 1, 1), (4, 1, 1, 1)])}
    nodes = [Node("Conv", "a", ["x", "w0"], ["ta"], {"kernel_shape": [3, 3], "pads": [1] * 4}),
             Node("Relu", "r", ["ta"], ["tr"]),
             Node("Conv", "b", ["tr", "w1"], ["tb"], {"kernel_shape": [1, 1]}),
             Node("Conv", "c", ["tr", "w2"], ["tc"], {"kernel_shape": [1, 1]}),
             Node("Concat", "cat", ["tb", "tc"], ["tcat"], {"axis": 1}),
             Node("Conv", "d", ["x", "w3"], ["td"], {"kernel_shape": [1, 1]}),
             Node("Add", "add", ["tcat", "td"], ["y"])]
    return build(nodes, {"x": ((1, 1, 8, 8), "float32")}, ["y"], w)


def test_costs_from_dag_graph_and_plan_for():
    from edgebuild.recipe import Partition
    costs = costs_from_graph(_residual_graph(), cycles_per_mac=10, f_cpu=1e6, power_w=0.01,
                             speedup=10)
    assert not costs.is_chain()
    preds = {x.name: set(x.preds) for x in costs.layers}
    assert preds == {"a": {"x"}, "r": {"a"}, "b": {"r"}, "c": {"r"}, "cat": {"b", "c"},
                     "d": {"x"}, "add": {"cat", "d"}}
    assert costs.layer("b").device_time_s == pytest.approx(2 * 4 * 64 * 10 / 1e6)
    assert costs.layer("r").out_bytes == 4 * 64 and costs.inputs == {"x": 64}
    link = {"bandwidth_bps": 1e5, "latency_ms": 1.0, "energy_per_byte_uj": 0.1}
    auto = plan_for(costs, Partition(mode="auto", link=link))
    assert auto.value == pytest.approx(brute_best(costs, 1e5, 1.0, 0.1), rel=1e-9)
    none = plan_for(costs, Partition(mode="none", link=link))
    assert none.device == frozenset(costs.names) and none.cut == ()
    at = plan_for(costs, Partition(mode="at", at="tr", link=link, objective="energy"))
    assert at.device == {"a", "r"} and at.cut == ("x", "tr") and at.cut_layers == ("x", "r") and at.objective == "energy"
    with pytest.raises(ModelError, match="partition.at"):
        plan_for(costs, Partition(mode="at", link=link))


@pytest.mark.parametrize("seed", range(3))
def test_large_dag_min_cut_beats_every_sampled_split(seed):
    """Beyond brute-force size (80 layers): the min-cut is no worse than every topological prefix
    and than random closed device sets, costed by the reference."""
    import numpy as np
    costs = random_dag(500 + seed, 80)
    rng = np.random.default_rng(seed)
    names = costs.names
    for bw, lat, epb in LINKS:
        plan = solve(costs, Link(bw, lat, epb))
        got = ref_cost(costs, plan.device, bw, lat, epb)[0]
        assert plan.latency_s == pytest.approx(got, rel=1e-9)
        others = [set(names[:k]) for k in range(len(names) + 1)]
        for _ in range(200):   # closure of a random seed set
            others.append(set().union(*(costs.ancestors(n) for n in rng.choice(names, 3))))
        assert got <= min(ref_cost(costs, d, bw, lat, epb)[0] for d in others) * (1 + 1e-9)
