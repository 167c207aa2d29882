"""Fleet schedulers against independent references: brute-force enumeration, hand-worked answers,
and a budget checker written here (loops over tasks, not the library's NodeState/evaluate)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgebuild.fleet.problem import UNASSIGNED, Problem, evaluate
from edgebuild.fleet.schedulers import SCHEDULERS, ant_colony, exact, greedy, improve, round_robin
from edgebuild.fleet.synthetic import synthetic_problem


def _problem(load, energy, flash=None, sram=None, flash_limit=None, sram_limit=None, budget=None):
    load, energy = np.asarray(load, float), np.asarray(energy, float)
    T, N = load.shape
    return Problem(load=load, energy=energy,
                   flash=np.zeros((T, N)) if flash is None else np.asarray(flash, float),
                   sram=np.zeros((T, N)) if sram is None else np.asarray(sram, float),
                   fits=np.ones((T, N), bool),
                   flash_limit=np.full(N, np.inf) if flash_limit is None else np.asarray(flash_limit, float),
                   sram_limit=np.full(N, np.inf) if sram_limit is None else np.asarray(sram_limit, float),
                   energy_budget=np.full(N, np.inf) if budget is None else np.asarray(budget, float),
                   capacity=np.ones(N))


def _valid(p: Problem, assign) -> bool:
    """Independent check: every task placed, per node sum(load) <= 1, sum(flash) <= limit,
    max(SRAM) <= limit, sum(energy) <= budget."""
    for n in range(p.n_nodes):
        ts = [t for t in range(p.n_tasks) if assign[t] == n]
        if sum(p.load[t, n] for t in ts) > p.capacity[n] + 1e-9:
            return False
        if sum(p.flash[t, n] for t in ts) > p.flash_limit[n]:
            return False
        if ts and max(p.sram[t, n] for t in ts) > p.sram_limit[n]:
            return False
        if sum(p.energy[t, n] for t in ts) > p.energy_budget[n] + 1e-9:
            return False
    return all(a != UNASSIGNED for a in assign)


def _brute_force(p: Problem):
    best, best_e = None, np.inf
    for a in itertools.product(range(p.n_nodes), repeat=p.n_tasks):
        if _valid(p, a):
            e = sum(p.energy[t, a[t]] for t in range(p.n_tasks))
            if e < best_e:
                best, best_e = a, e
    return best, best_e


def test_greedy_and_round_robin_hand_worked():
    # node 0 is cheap but holds at most one of tasks 0/1 (load 0.6 each)
    p = _problem(load=[[0.6, 0.3], [0.6, 0.3], [0.2, 0.2]], energy=[[1, 5], [2, 3], [1, 4]])
    # greedy: pairs by energy: (0,0)=1 taken, (2,0)=1 taken (load .8), (1,0)=2 no room, (1,1)=3 taken
    assert greedy(p).tolist() == [0, 1, 0]
    # round robin: t0->0, t1->1, t2->0
    assert round_robin(p).tolist() == [0, 1, 0]


def test_memory_model_flash_adds_sram_is_max():
    # both models fit node 0 alone; flash 600+600 > 1000 so they cannot share; SRAM 900 each <= 1000 is fine
    p = _problem(load=[[0.1, 0.1], [0.1, 0.1]], energy=[[1, 10], [1, 10]],
                 flash=[[600, 600], [600, 600]], sram=[[900, 900], [900, 900]],
                 flash_limit=[1000, 1000], sram_limit=[1000, 1000])
    for name, fn in SCHEDULERS.items():
        a = fn(p)
        assert sorted(a.tolist()) == [0, 1], name
    # a model whose SRAM exceeds a node's never goes there, even if it is cheaper
    q = _problem(load=[[0.1, 0.1]], energy=[[1, 10]], sram=[[2000, 100]], sram_limit=[1000, 4000])
    for fn in SCHEDULERS.values():
        assert fn(q).tolist() == [1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_and_ant_colony_match_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    T, N = 7, 3
    p = _problem(load=rng.uniform(0.1, 0.6, (T, N)), energy=rng.uniform(1, 10, (T, N)),
                 flash=rng.uniform(100, 500, (T, N)), flash_limit=[1200, 1500, 5000],
                 budget=[20, 20, np.inf])
    _, e_opt = _brute_force(p)
    a_exact, bound = exact(p)
    assert _valid(p, a_exact)
    assert evaluate(p, a_exact).energy == pytest.approx(e_opt, rel=1e-7)
    assert bound == pytest.approx(e_opt, rel=1e-6)
    a = ant_colony(p, seed=seed)
    assert _valid(p, a)
    # ACO weighs balance at <= 1% of the energy lower bound, so it is within 1% of the optimum
    assert evaluate(p, a).energy <= 1.01 * e_opt


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_respect_budgets_and_are_deterministic(name):
    p = synthetic_problem(8, 40, seed=3)
    fn = SCHEDULERS[name]
    a = fn(p)
    assert _valid(p, a)
    assert evaluate(p, a).feasible
    assert np.array_equal(a, fn(p))


def test_local_search_never_worsens_and_keeps_budgets():
    p = synthetic_problem(6, 30, seed=5)
    start = round_robin(p)
    better = improve(p, start)
    assert _valid(p, better)
    e0 = sum(p.energy[t, start[t]] for t in range(p.n_tasks))
    e1 = sum(p.energy[t, better[t]] for t in range(p.n_tasks))
    assert e1 < e0


def test_ant_colony_beats_baselines_on_a_synthetic_fleet():
    p = synthetic_problem(10, 40, seed=2)
    energies = {}
    for name, fn in SCHEDULERS.items():
        a = fn(p)
        assert _valid(p, a)
        energies[name] = sum(p.energy[t, a[t]] for t in range(p.n_tasks))
    assert energies["ant_colony"] <= 1.02 * min(energies.values())
    assert energies["ant_colony"] < energies["greedy"] and energies["ant_colony"] < energies["round_robin"]


def test_unplaceable_task_is_reported_unassigned():
    p = _problem(load=[[1.5, 1.2]], energy=[[1, 1]])
    for name, fn in SCHEDULERS.items():
        a = fn(p)
        assert a.tolist() == [UNASSIGNED], name
        assert not evaluate(p, a).feasible
