"""Budgets and the cost of a candidate network on a target.

``Costing`` turns a ``Net`` (or a Graph) into the figures the budgets speak of (flash bytes, SRAM
bytes, energy µJ, latency ms) with the per-layer model of ``edgebuild.compress.energy``;
``Budget.shortfalls`` says which limits a set of figures misses and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgebuild.compress.energy import apply_energy, footprint, layer_costs, totals

RESOURCES = ("flash_bytes", "sram_bytes", "energy_uj", "latency_ms")


@dataclass(frozen=True)
class Budget:
    """Limits (None: no limit) and the accepted accuracy drop (a fraction, 0.01 = 1 point)."""

    flash_bytes: float | None = None
    sram_bytes: float | None = None
    energy_uj: float | None = None
    latency_ms: float | None = None
    max_accuracy_drop: float = 0.01

    @classmethod
    def from_recipe(cls, compression: dict, memories: dict, model_error: float = 0.0) -> "Budget":
        """The recipe's ``compression`` limits, flash and SRAM capped by the board's usable bytes.

        ``model_error`` (the target's ``energy.cycle_model_error``, e.g. 0.1) lowers the latency
        and energy limits to ``limit / (1 + model_error)``: searches see the cycle model's
        predictions, and the firmware must meet the limit when measured. (LeNet-5 on the Uno,
        searched to the bare 12,000 uJ, was predicted at 11,519 uJ and measured at 12,052 uJ.)"""
        def cap(key, medium):
            board = memories[medium]["size"] - memories[medium].get("reserved", 0)
            return min(board, compression[key]) if compression.get(key) else board

        def aim(key):
            value = compression.get(key)
            return value / (1 + model_error) if value is not None else None
        return cls(flash_bytes=cap("flash_bytes", "flash"), sram_bytes=cap("sram_bytes", "sram"),
                   energy_uj=aim("energy_uj"), latency_ms=aim("latency_ms"),
                   max_accuracy_drop=compression.get("max_accuracy_drop", 0.01))

    def limits(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in RESOURCES if getattr(self, k) is not None}

    def shortfalls(self, figures: dict) -> dict[str, dict]:
        """Resource -> {"value", "limit", "over"} for every limit ``figures`` exceeds."""
        return {k: {"value": figures[k], "limit": lim, "over": figures[k] - lim}
                for k, lim in self.limits().items() if figures[k] > lim}

    def excess(self, figures: dict, margin: float = 1.0) -> float:
        """Sum over limits of the relative excess max(0, value / (margin * limit) - 1)."""
        return sum(max(0.0, figures[k] / (margin * lim) - 1.0) for k, lim in self.limits().items())


def net_graph(net):
    """The optimised IR Graph of a numpy-trainer ``Net`` (converted through ONNX, in memory)."""
    from edgebuild.model import optimise
    from edgebuild.model.loader import from_onnx
    from edgebuild.train.onnx_io import to_onnx

    return optimise(from_onnx(to_onnx(net), source="<pruned net>"))


class Costing:
    """Cost of models on one target: ``energy`` (the target's energy section) and ``f_cpu``."""

    def __init__(self, energy: dict, f_cpu: int):
        self.energy, self.f_cpu = energy, f_cpu

    def table(self, graph) -> list[dict]:
        """Per fused layer: params, MACs, flash bytes, cycles, latency, energy, traffic."""
        return [c.to_json() for c in apply_energy(layer_costs(graph), self.energy, self.f_cpu)]

    def figures(self, graph) -> dict:
        """Whole-model figures: flash_bytes, sram_bytes (firmware estimates), energy_uj,
        latency_ms, params, macs, weight_flash_bytes, cycles."""
        tot = totals(apply_energy(layer_costs(graph), self.energy, self.f_cpu))
        return {**tot, **footprint(graph, self.energy)}

    def net_figures(self, net) -> dict:
        return self.figures(net_graph(net))
