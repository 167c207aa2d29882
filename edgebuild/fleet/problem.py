"""The fleet assignment problem: tasks (a model at a request rate) onto nodes (one board each).

Every figure is per (task, node) pair, so nodes of different board types simply have different
columns. Memory model: a node runs its models one inference at a time from one firmware image, so
it needs the SUM of their flash (each model's weights and code are resident) and the MAX of their
SRAM (the activation arena is reused between inferences). Because max(SRAM) <= limit holds iff every
single model fits, SRAM is a per-pair feasibility test; flash, load and energy are additive per node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNASSIGNED = -1


@dataclass(frozen=True)
class Problem:
    """Costs of running each task on each node, and each node's budgets.

    load[t, n]   fraction of node n's time task t uses (request rate x latency per inference)
    energy[t, n] energy per second of task t on node n (request rate x energy per inference), uJ/s
    flash[t, n]  flash bytes of task t's model built for node n's board
    sram[t, n]   peak SRAM bytes of that build
    fits[t, n]   the build fits the board on its own (SRAM within the limit, build succeeded)
    flash_limit[n], sram_limit[n], energy_budget[n] (uJ/s, inf for none), capacity[n] (1.0 = all its time)
    """

    load: np.ndarray
    energy: np.ndarray
    flash: np.ndarray
    sram: np.ndarray
    fits: np.ndarray
    flash_limit: np.ndarray
    sram_limit: np.ndarray
    energy_budget: np.ndarray
    capacity: np.ndarray

    @property
    def n_tasks(self) -> int:
        return self.load.shape[0]

    @property
    def n_nodes(self) -> int:
        return self.load.shape[1]

    def allowed(self) -> np.ndarray:
        """Pairs a task may ever use: the model fits alone (flash, SRAM, load, energy budget)."""
        return (self.fits & (self.sram <= self.sram_limit) & (self.flash <= self.flash_limit)
                & (self.load <= self.capacity) & (self.energy <= self.energy_budget))


class NodeState:
    """Running totals of a partial assignment, to test and apply moves in O(1) per node."""

    def __init__(self, problem: Problem):
        self.p = problem
        self.load = np.zeros(problem.n_nodes)
        self.flash = np.zeros(problem.n_nodes)
        self.energy = np.zeros(problem.n_nodes)

    def feasible_nodes(self, t: int, allowed: np.ndarray) -> np.ndarray:
        """Boolean mask of the nodes task t can join now."""
        p = self.p
        return (allowed[t] & (self.load + p.load[t] <= p.capacity + 1e-12)
                & (self.flash + p.flash[t] <= p.flash_limit) & (self.energy + p.energy[t] <= p.energy_budget + 1e-9))

    def add(self, t: int, n: int) -> None:
        self.load[n] += self.p.load[t, n]
        self.flash[n] += self.p.flash[t, n]
        self.energy[n] += self.p.energy[t, n]

    def remove(self, t: int, n: int) -> None:
        self.load[n] -= self.p.load[t, n]
        self.flash[n] -= self.p.flash[t, n]
        self.energy[n] -= self.p.energy[t, n]


@dataclass(frozen=True)
class Metrics:
    """Figures of one assignment: total energy (uJ/s), makespan (max node load), imbalance (max/mean
    load over all nodes), unassigned task count and whether every budget holds."""

    energy: float
    makespan: float
    imbalance: float
    unassigned: int
    feasible: bool


def evaluate(problem: Problem, assign: np.ndarray) -> Metrics:
    """Metrics of ``assign`` (node index per task, UNASSIGNED for none), budgets checked from scratch."""
    p, a = problem, np.asarray(assign)
    placed = a != UNASSIGNED
    t_idx, n_idx = np.nonzero(placed)[0], a[placed]
    per_node = lambda m: np.bincount(n_idx, weights=m[t_idx, n_idx], minlength=p.n_nodes)   # noqa: E731
    load, flash, energy = per_node(p.load), per_node(p.flash), per_node(p.energy)
    ok = (bool(placed.all()) and bool(p.allowed()[t_idx, n_idx].all())
          and bool((load <= p.capacity + 1e-9).all()) and bool((flash <= p.flash_limit).all())
          and bool((energy <= p.energy_budget + 1e-9).all()))
    mean = load.mean()
    return Metrics(energy=float(energy.sum()), makespan=float(load.max(initial=0.0)),
                   imbalance=float(load.max(initial=0.0) / mean) if mean > 0 else 1.0,
                   unassigned=int((~placed).sum()), feasible=ok)
