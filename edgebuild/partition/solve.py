"""Choosing a split: Neurosurgeon for chains, the DADS minimum s-t cut for DAGs.

Both produce a ``Candidates`` set (device sets with their objective, energy and memory), from
which the best split meeting the memory and energy budgets is picked. The adaptive table reuses
the same candidates, so a table entry equals the direct solve at its grid point."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..errors import BudgetError, ModelError
from .costs import CostGraph, Link
from .plan import Plan, check_objective, evaluate

# Lagrange multipliers (relative to the device-only objective) tried when a budget binds on a DAG.
LAMBDAS = tuple(float(x) for x in np.logspace(-3, 3, 19))
_SCALE = 1e12  # min-cut capacities are integers: total finite capacity ~ _SCALE


@dataclass
class Candidates:
    """Candidate device sets and, per set, the objective value, device energy and memory.

    ``exhaustive``: every valid split is present (chains), so the best feasible one is optimal.
    Otherwise the first ``n_primary`` sets are the min-cut optimum (layers that alone exceed the
    memory budget pinned to the server) and, when allowed, device-only: when the best of them
    meets the budgets it is optimal; else the rest (Lagrangian min-cuts) are a heuristic
    fallback."""

    sets: list[frozenset]
    value: np.ndarray
    energy: np.ndarray
    memory: np.ndarray
    n_primary: int
    exhaustive: bool

    def choose(self, memory_bytes: float | None, energy_budget_j: float | None) -> int | None:
        """Index of the best set meeting the budgets (first on ties), or None."""
        ok = np.ones(len(self.sets), bool)
        if memory_bytes is not None:
            ok &= self.memory <= memory_bytes
        if energy_budget_j is not None:
            ok &= self.energy <= energy_budget_j * (1 + 1e-12)
        if not ok.any():
            return None
        return int(np.argmin(np.where(ok, self.value, np.inf)))

    def is_exact(self, index: int) -> bool:
        """True if the set at ``index`` is provably optimal under the budgets it was chosen for."""
        if self.exhaustive:
            return True
        return int(np.argmin(self.value[:self.n_primary])) == index


def chain_candidates(costs: CostGraph, link: Link, objective: str) -> Candidates:
    """Neurosurgeon: every layer boundary of a chain, k = 0 (server-only) .. n (device-only),
    evaluated at once with numpy."""
    layers = costs.layers
    n = len(layers)
    dev_t = np.concatenate([[0.0], np.cumsum([x.device_time_s for x in layers])])
    srv_t = np.concatenate([[0.0], np.cumsum([x.server_time_s for x in layers])])
    dev_e = np.concatenate([[0.0], np.cumsum([x.device_energy_j for x in layers])])
    weights = np.concatenate([[0], np.cumsum([x.weight_bytes for x in layers])])
    act = np.concatenate([[0], np.maximum.accumulate([x.act_bytes for x in layers])]) \
        if n else np.zeros(1)
    cut_bytes = np.array([costs.tensor_bytes(next(iter(costs.inputs)))]
                         + [x.out_bytes for x in layers], float)
    sent = np.where(np.arange(n + 1) < n, cut_bytes, 0.0)
    transfer = np.where(np.arange(n + 1) < n,
                        sent * 8.0 / link.bandwidth_bps + link.latency_ms * 1e-3, 0.0)
    latency = dev_t + transfer + (srv_t[-1] - srv_t)
    energy = dev_e + sent * link.energy_per_byte_uj * 1e-6
    names = costs.names
    return Candidates(sets=[frozenset(names[:k]) for k in range(n + 1)],
                      value=latency if objective == "latency" else energy, energy=energy,
                      memory=(weights + act).astype(float), n_primary=n + 1, exhaustive=True)


def _weights(costs: CostGraph, link: Link, objective: str):
    """Per layer (device, server) costs and per sender transmission cost for the objective,
    plus the normalised resource use (energy, weights) the Lagrangian penalises."""
    cons = costs.consumers()
    senders = [n for n in [*costs.inputs, *costs.names] if cons[n]]
    nbytes = np.array([costs.tensor_bytes(n) for n in senders], float)
    tx_e = nbytes * link.energy_per_byte_uj * 1e-6
    dev_e = np.array([x.device_energy_j for x in costs.layers])
    if objective == "latency":
        dev = np.array([x.device_time_s for x in costs.layers])
        srv = np.array([x.server_time_s for x in costs.layers])
        tx = nbytes * 8.0 / link.bandwidth_bps
    else:
        dev, srv, tx = dev_e, np.zeros(len(costs.layers)), tx_e
    e_tot = max(dev_e.sum() + tx_e.sum(), 1e-30)
    w = np.array([x.weight_bytes for x in costs.layers], float)
    res_dev = dev_e / e_tot + w / max(w.sum(), 1.0)
    return senders, cons, (dev, srv, tx), (res_dev, tx_e / e_tot)


def min_cut(costs: CostGraph, dev, srv, tx, senders, cons, forced=frozenset()) -> frozenset:
    """DADS (Hu et al., INFOCOM 2019): the device set minimising sum(dev over device) +
    sum(srv over server) + sum(tx of each sender with a consumer on the server, counted once).

    Source = device, sink = server. Edges: s->v (srv[v]) and v->t (dev[v]); a sender u with one
    consumer c gets u->c (tx[u]); with several, u->aux (tx[u]) and aux->c (inf), so the tensor is
    paid once; c->u (inf) keeps the device set closed under predecessors. Graph inputs are
    pinned to the device; ``forced`` layers are pinned to the server."""
    names = costs.names
    finite = float(np.sum(dev) + np.sum(srv) + np.sum(tx))
    scale = _SCALE / finite if finite > 0 else 1.0

    def cap(x):
        return int(round(float(x) * scale))

    g = nx.DiGraph()
    g.add_nodes_from(["s", "t", *costs.inputs, *names])
    for name in costs.inputs:
        g.add_edge("s", name)
    for i, name in enumerate(names):
        if name in forced:
            g.add_edge(name, "t")
            continue
        if cap(srv[i]):
            g.add_edge("s", name, capacity=cap(srv[i]))
        if cap(dev[i]):
            g.add_edge(name, "t", capacity=cap(dev[i]))
    for k, u in enumerate(senders):
        users = cons[u]
        if len(users) == 1:
            g.add_edge(u, users[0], capacity=cap(tx[k]))
        else:
            aux = ("tx", u)
            g.add_edge(u, aux, capacity=cap(tx[k]))
            for c in users:
                g.add_edge(aux, c)
        for c in users:
            g.add_edge(c, u)
    _, (side, _) = nx.minimum_cut(g, "s", "t")
    return frozenset(n for n in names if n in side)


def dag_candidates(costs: CostGraph, link: Link, objective: str,
                   memory_bytes: float | None = None, lagrangian: bool = True) -> Candidates:
    """DADS candidates: the min-cut optimum and device-only first, then (``lagrangian``) the
    min-cuts with the energy/weight use penalised by each multiplier in LAMBDAS. Layers whose own
    need exceeds ``memory_bytes`` are pinned to the server (with all their successors)."""
    forced = frozenset(x.name for x in costs.layers
                       if memory_bytes is not None and x.device_memory > memory_bytes)
    senders, cons, (dev, srv, tx), (r_dev, r_tx) = _weights(costs, link, objective)
    sets = [min_cut(costs, dev, srv, tx, senders, cons, forced)]
    if not forced and sets[0] != frozenset(costs.names):
        sets.append(frozenset(costs.names))  # device-only escapes the per-transfer link latency
    n_primary = len(sets)
    if lagrangian:
        scale = max(float(dev.sum()), 1e-30)
        for lam in LAMBDAS:
            s = min_cut(costs, dev + lam * scale * r_dev, srv, tx + lam * scale * r_tx,
                        senders, cons, forced)
            if s not in sets:
                sets.append(s)
    plans = [evaluate(costs, s, link, objective) for s in sets]
    return Candidates(sets=sets, value=np.array([p.value for p in plans]),
                      energy=np.array([p.device_energy_j for p in plans]),
                      memory=np.array([p.device_memory for p in plans], float),
                      n_primary=n_primary, exhaustive=False)


def candidates(costs: CostGraph, link, objective: str = "latency",
               memory_bytes: float | None = None, lagrangian: bool = True) -> Candidates:
    """Neurosurgeon candidates for a chain, DADS candidates otherwise."""
    check_objective(objective)
    link = Link.of(link)
    if costs.is_chain():
        return chain_candidates(costs, link, objective)
    return dag_candidates(costs, link, objective, memory_bytes, lagrangian)


def solve(costs: CostGraph, link, objective: str = "latency", *,
          memory_bytes: float | None = None, energy_budget_j: float | None = None) -> Plan:
    """The split minimising ``objective`` ("latency" or "energy") under the link, with the head's
    device memory <= ``memory_bytes`` and device energy <= ``energy_budget_j`` (hard budgets).

    Chains: exhaustive over every layer boundary (exact). DAGs: DADS min-cut (exact without
    binding budgets, or when only per-layer memory binds); when the weight-sum or energy budget
    binds, the best of Lagrangian min-cuts (``Plan.exact`` False). Raises BudgetError when no
    candidate meets the budgets."""
    link = Link.of(link)
    cand = candidates(costs, link, objective, memory_bytes, lagrangian=False)
    best = cand.choose(memory_bytes, energy_budget_j)
    if not cand.exhaustive and (best is None or not cand.is_exact(best)):
        cand = candidates(costs, link, objective, memory_bytes, lagrangian=True)
        best = cand.choose(memory_bytes, energy_budget_j)
    if best is None:
        raise BudgetError(
            "no split of the model meets the device budgets",
            shortfalls={"memory_bytes": memory_bytes, "energy_budget_j": energy_budget_j},
            field="partition", fix="raise the SRAM/energy budget or speed up the link")
    return evaluate(costs, cand.sets[best], link, objective, exact=cand.is_exact(best))


def split_at(costs: CostGraph, at: str, link, objective: str = "latency") -> Plan:
    """The plan for ``partition: {mode: at, at: NAME}``: the named layer (or the layer producing
    the named tensor) and all its ancestors on the device, the rest on the server."""
    by_tensor = {t: x.name for x in costs.layers for t in x.out_tensor.split(",")}
    name = at if at in costs.names else by_tensor.get(at)
    if name is None:
        raise ModelError(f"'{at}' is neither a node nor a tensor of the model",
                         field="partition.at", fix="name a node or tensor from `edgebuild graph`")
    return evaluate(costs, costs.ancestors(name), Link.of(link), objective)


def plan_for(costs: CostGraph, spec, *, memory_bytes: float | None = None,
             energy_budget_j: float | None = None) -> Plan:
    """The Plan a recipe's ``partition`` section asks for (``spec``: recipe.Partition or any
    object with mode, at, objective, link): none -> device-only, at -> :func:`split_at`,
    auto -> :func:`solve` under the budgets."""
    link = Link.of(spec.link)
    if spec.mode == "none":
        return evaluate(costs, costs.names, link, spec.objective)
    if spec.mode == "at":
        if not spec.at:
            raise ModelError("mode 'at' needs a split point", field="partition.at",
                             fix="set partition.at to a node or tensor name")
        return split_at(costs, spec.at, link, spec.objective)
    return solve(costs, link, spec.objective, memory_bytes=memory_bytes,
                 energy_budget_j=energy_budget_j)
