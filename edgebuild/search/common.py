"""What every multi-target search method shares: a target with its budget, and a per-target choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from edgebuild.compress.budget import Budget, Costing

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TargetBudget:
    """One board of a multi-target search: its name, its cost model and the budget to meet.

    ``costing`` turns a numpy-trainer Net into flash/SRAM/energy/latency figures on this board;
    ``budget`` holds the limits (flash and SRAM capped by the board's usable bytes) and
    ``max_accuracy_drop`` against the unpruned model's validation accuracy; ``field``: where the
    limits stand in the recipe (``search.targets[i]``), which a BudgetError about this target names.
    """

    name: str
    costing: Costing
    budget: Budget
    field: str = "compression"

    @classmethod
    def from_target(cls, target: dict, limits: dict, field: str = "compression") -> "TargetBudget":
        """From a composed target dict (targets/NAME.yaml) and a ``compression``-style ``limits``
        mapping (flash_bytes, sram_bytes, energy_uj, latency_ms, max_accuracy_drop; any may be absent).

        Latency and energy limits are lowered by the target's ``energy.cycle_model_error`` (the
        search sees predictions; the firmware must meet the limit when measured)."""
        return cls(name=target["name"], costing=Costing(target["energy"], target["f_cpu"]),
                   budget=Budget.from_recipe(limits, target["memories"],
                                             model_error=target["energy"].get("cycle_model_error", 0.0)),
                   field=field)


@dataclass
class Choice:
    """The model a search chose for one target.

    ``net``: the fine-tuned numpy-trainer Net (export with edgebuild.train.export_onnx);
    ``figures``: ``target.costing.net_figures(net)``; ``val_accuracy``: on ``ds.x_val``;
    ``method``: "policy", "per-target" or "nas"; ``detail``: JSON-able description (widths, the
    sub-network's architecture, episodes, ...).
    """

    target: str
    net: object = field(repr=False)
    val_accuracy: float
    figures: dict
    method: str
    detail: dict = field(default_factory=dict)

    def summary(self) -> dict:
        keys = ("params", "macs", "flash_bytes", "sram_bytes", "energy_uj", "latency_ms")
        return {"target": self.target, "method": self.method, "val_accuracy": self.val_accuracy,
                **{k: self.figures.get(k) for k in keys}, "detail": self.detail}


@dataclass
class SearchResult:
    """Per-target choices of one search run and what it cost."""

    choices: dict[str, Choice]
    seconds: float
    base_val_accuracy: float
    stats: dict = field(default_factory=dict)
