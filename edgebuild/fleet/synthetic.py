"""Synthetic heterogeneous fleets for the benchmark and tests (fixed seeds, no builds)."""

from __future__ import annotations

import numpy as np

from edgebuild.fleet.problem import Problem

# board types: relative speed (higher: less time per inference), energy per inference factor,
# flash and SRAM of the board (bytes); loosely uno, mega2560 and a Cortex-M4
_TYPES = (
    (1.0, 1.0, 32256, 2048),
    (1.0, 1.6, 253952, 8192),
    (3.0, 0.5, 1048576, 196608),
)


def synthetic_problem(n_nodes: int, n_tasks: int, seed: int = 0, utilisation: float = 0.8) -> Problem:
    """A random fleet of ``n_nodes`` mixed board types and ``n_tasks`` models with request rates.

    Each model has a base latency, energy, flash and SRAM; a board type scales latency by 1/speed and
    energy by its factor, with +-20% per-pair noise (compilers and memory layouts differ). Request rates
    are set so the total load at the fastest placement is ``utilisation`` x the node count, which makes
    capacity matter. Some models do not fit the small boards (SRAM/flash), as in real fleets.
    """
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, len(_TYPES), n_nodes)
    kinds[: min(n_nodes, len(_TYPES))] = np.arange(min(n_nodes, len(_TYPES)))
    speed, efac, flash_lim, sram_lim = (np.array([_TYPES[k][i] for k in kinds], float) for i in range(4))
    base_latency = rng.uniform(0.002, 0.05, n_tasks)           # s per inference on a speed-1 board
    base_energy = base_latency * rng.uniform(60e3, 100e3, n_tasks)   # uJ per inference (~80 mW)
    flash = rng.uniform(2e3, 20e3, n_tasks)[:, None] * rng.uniform(0.9, 1.1, (n_tasks, n_nodes))
    sram = rng.uniform(300, 4000, n_tasks)[:, None] * np.ones((1, n_nodes))
    noise = rng.uniform(0.8, 1.2, (2, n_tasks, n_nodes))
    latency = base_latency[:, None] / speed[None, :] * noise[0]
    energy_per_inf = base_energy[:, None] * efac[None, :] * noise[1]
    rate = rng.uniform(0.5, 1.5, n_tasks)
    rate *= utilisation * n_nodes / (rate * latency.min(axis=1)).sum() * (n_nodes / (n_nodes + 2 * (speed < 2).sum()))
    load = rate[:, None] * latency
    energy = rate[:, None] * energy_per_inf
    return Problem(load=load, energy=energy, flash=flash, sram=sram, fits=np.ones((n_tasks, n_nodes), bool),
                   flash_limit=flash_lim, sram_limit=sram_lim, energy_budget=np.full(n_nodes, np.inf),
                   capacity=np.ones(n_nodes))
