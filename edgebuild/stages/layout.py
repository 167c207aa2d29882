"""layout: assign every tensor a medium and plan the activation arena (memory map)."""

from __future__ import annotations

from edgebuild.stages.common import write_json


def media_limits(memories: dict, flash_budget: int | None, sram_budget: int | None) -> dict:
    """Usable bytes per medium: the board's capacity less reserved bytes, capped by the recipe's budget."""
    limits = {m: spec["size"] - spec.get("reserved", 0) for m, spec in memories.items()}
    if flash_budget is not None:
        limits["flash"] = min(limits["flash"], flash_budget)
    if sram_budget is not None:
        limits["sram"] = min(limits["sram"], sram_budget)
    return limits


def run(ctx):
    from edgebuild.compress.quantize import QModel
    from edgebuild.storage import plan_memory

    p = ctx.params
    qm = QModel.load(ctx.inputs["q"] / "qmodel")
    weights, activations = qm.layout_request()
    limits = media_limits(p["memories"], p["flash_budget"], p["sram_budget"])
    plan = plan_memory(
        weights=weights, activations=activations,
        media={m: {"capacity": cap} for m, cap in limits.items()},
        pins=p["storage"]["pins"], policy=p["storage"]["policy"],
        # The caller owns the model's input and output buffers: they live in SRAM too, with the
        # harness's statics and the stack (the target's measured overhead).
        reserved={"sram": qm.input_size + qm.output_size + (p["sram_overhead"] or 0)},
        source=f"recipe '{p['recipe']}'", target=p["mcu"],
    )
    write_json(ctx.out / "plan.json", plan.to_json())
