"""codegen: render the model as C99 sources for the target architecture."""

from __future__ import annotations


def run(ctx):
    from edgebuild.codegen import generate
    from edgebuild.compress.quantize import QModel
    from edgebuild.stages.common import read_json
    from edgebuild.storage import MemoryPlan

    qm = QModel.load(ctx.inputs["q"] / "qmodel")
    plan = MemoryPlan.from_json(read_json(ctx.inputs["plan"] / "plan.json"))
    files = generate(qm, plan, ctx.out, arch=ctx.params["arch"])
    ctx.log(f"{len(files)} files")
