"""Independent reference for the partition tests: random cost DAGs and a brute-force optimum over
every predecessor-closed device set, costed here from the raw layer fields."""

from __future__ import annotations

import itertools

import numpy as np

from edgebuild.partition import CostGraph, Layer


def random_dag(seed: int, n: int, chain: bool = False, weights: bool = False) -> CostGraph:
    """A random cost DAG of ``n`` layers (fan-in 1-3, so residual adds, concats and fan-out)."""
    rng = np.random.default_rng(seed)
    names = ["x"]
    layers = []
    for i in range(n):
        if chain:
            preds = (names[-1],)
        else:
            k = int(rng.integers(1, 4))
            preds = tuple(dict.fromkeys(rng.choice(names, size=min(k, len(names)),
                                                   replace=False).tolist()))
            preds = tuple(sorted(set(preds) | {names[-1]}))  # stay connected
        dev = float(rng.uniform(0.001, 0.05))
        layers.append(Layer(name=f"L{i}", preds=preds, device_time_s=dev,
                            server_time_s=dev / float(rng.uniform(5, 50)),
                            device_energy_j=dev * float(rng.uniform(0.02, 0.06)),
                            out_bytes=int(rng.integers(10, 5000)),
                            weight_bytes=int(rng.integers(0, 2000)) if weights else 0,
                            act_bytes=int(rng.integers(100, 3000))))
        names.append(f"L{i}")
    return CostGraph(tuple(layers), {"x": int(rng.integers(500, 4000))})


def closed_sets(costs: CostGraph):
    """Every device set closed under predecessors (brute force over all subsets)."""
    names = [x.name for x in costs.layers]
    preds = {x.name: set(x.preds) - set(costs.inputs) for x in costs.layers}
    for bits in itertools.product((0, 1), repeat=len(names)):
        d = {n for n, b in zip(names, bits) if b}
        if all(preds[n] <= d for n in d):
            yield frozenset(d)


def ref_cost(costs: CostGraph, device, bw, latency_ms=0.0, epb_uj=0.0):
    """(latency, device energy, memory) of a device set, from the raw fields."""
    out_bytes = {x.name: x.out_bytes for x in costs.layers} | dict(costs.inputs)
    on_dev = set(device) | set(costs.inputs)
    sent = set()
    for x in costs.layers:
        if x.name not in device:
            sent |= {p for p in x.preds if p in on_dev}
    nbytes = sum(out_bytes[s] for s in sent)
    dev = [x for x in costs.layers if x.name in device]
    t = (sum(x.device_time_s for x in dev)
         + sum(x.server_time_s for x in costs.layers if x.name not in device)
         + (nbytes * 8 / bw + latency_ms / 1000 if sent else 0.0))
    e = sum(x.device_energy_j for x in dev) + nbytes * epb_uj * 1e-6
    mem = sum(x.weight_bytes for x in dev) + max([x.act_bytes for x in dev], default=0)
    return t, e, mem


def brute_best(costs, bw, latency_ms=0.0, epb_uj=0.0, objective="latency", memory=None,
               energy=None):
    """Minimum objective over all feasible closed device sets (None if none is feasible)."""
    best = None
    for d in closed_sets(costs):
        t, e, m = ref_cost(costs, d, bw, latency_ms, epb_uj)
        if (memory is not None and m > memory) or (energy is not None and e > energy):
            continue
        v = t if objective == "latency" else e
        best = v if best is None else min(best, v)
    return best
