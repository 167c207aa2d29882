"""partition: split the int8 model between the board (head) and an edge server (tail).

mode none: the quantise outputs pass through byte for byte (qmodel/, vectors.npz, metrics.json),
so downstream cache entries keep their keys. mode at / auto: the split after ``k`` fused layers
(at: the named layer or tensor; auto: the best realisable split with at least one layer on the
device, minimising the objective under the recipe's link) and writes

- ``qmodel/``: the head (layers[:k]; its output is the cut tensor), which layout, codegen and
  firmware build as usual; ``vectors.npz``: the head's reference ``outputs`` plus ``final``
  (the unsplit model's reference outputs), inputs, labels, float_pred; ``metrics.json``;
- ``tail/``: the server's QModel (input: the cut tensor) and ``cut.json`` (frame tensor id);
  absent when the whole model runs on the device;
- ``table.h`` (C) and ``table.npz``: the best split over a grid of contexts (bandwidth x device
  energy budget x free SRAM) for run-time re-partitioning (the server loads it with
  ``edgebuild.partition.server.load_table``; verify measures its lookup time);
- ``partition.json``: the chosen split, per-candidate costs, link, table grid and legend, and
  latency-vs-bandwidth curves for the report's plot.
Every output is a pure function of the inputs (no timings), so an unchanged split cuts the
rebuild off here.
"""

from __future__ import annotations

import shutil

from edgebuild.errors import ConfigError, ModelError
from edgebuild.stages.common import write_json

PASS_THROUGH = ("qmodel", "vectors.npz", "metrics.json")
# Adaptive table grid: common serial/radio bit rates; device energy budgets as fractions of the
# device-only energy (plus no budget); free SRAM as fractions of the board's SRAM.
BANDWIDTHS = (300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 250000, 1e6, 1e7)
ENERGY_FRACTIONS = (0.25, 0.5, 0.75, 1.0, 1.5)
SRAM_FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0)
CURVE_BANDWIDTHS = (100, 1e7, 41)   # logspace for the report's latency-vs-bandwidth plot


def run(ctx):
    spec = ctx.params["partition"]
    src = ctx.inputs["q"]
    if spec["mode"] == "none":
        for name in PASS_THROUGH:
            (shutil.copytree if (src / name).is_dir() else shutil.copyfile)(src / name, ctx.out / name)
        return
    import numpy as np

    from edgebuild.compress.qmodel import QModel
    from edgebuild.partition import Link, build_table, evaluate

    qm = QModel.load(src / "qmodel")
    costs = _costs(qm, ctx.params)
    link, objective = Link(**spec["link"]), spec["objective"]
    names, ks = costs.names, qm.cut_points()
    plans = {k: evaluate(costs, names[:k], link, objective) for k in ks}
    k = _chosen(spec, costs, plans, link, objective)

    head = _write_split(qm, k, src, ctx.out)
    device_only = plans[len(names)]
    table = build_table(costs, link, objective, bandwidths=BANDWIDTHS,
                        energies=[f * device_only.device_energy_j for f in ENERGY_FRACTIONS] + [np.inf],
                        srams=[f * ctx.params["memories"]["sram"]["size"] for f in SRAM_FRACTIONS])
    (ctx.out / "table.h").write_text(table.to_c("edge_split"))
    np.savez(ctx.out / "table.npz", bandwidths=table.bandwidths, energies=table.energies,
             srams=table.srams, table=table.table)
    write_json(ctx.out / "partition.json", {
        "mode": spec["mode"], "objective": objective, "at": spec.get("at"), "link": spec["link"],
        "server": spec["server"], "cycles_per_mac": ctx.params["energy"]["cycles_per_mac"],
        "chosen": _row(plans[k], k, names, chosen=True),
        "candidates": [_row(p, i, names, chosen=i == k) for i, p in plans.items()],
        "table": _table_summary(table, costs, objective),
        "curves": _curves(costs, link, objective, k),
    })
    ctx.log(f"{spec['mode']}: {k} of {len(names)} layers on the device, "
            f"{'sends ' + head.output_name + f' ({plans[k].sent_bytes} B)' if k < len(names) else 'nothing sent'}, "
            f"{plans[k].latency_s * 1e3:.1f} ms, {plans[k].device_energy_j * 1e6:.0f} uJ (estimated)")
    best = min(plans, key=lambda i: plans[i].value)
    if spec["mode"] == "auto" and best == 0:
        ctx.log(f"server-only (send the raw input) would be better: {plans[0].value:.4g} vs "
                f"{plans[k].value:.4g} ({objective}); the build needs at least one layer on the device")


def _write_split(qm, k: int, src, out):
    """head qmodel/, vectors.npz (head outputs + the unsplit ``final``), metrics.json and, unless
    the whole model stays on the device, tail/ with cut.json. Returns the head QModel."""
    import numpy as np

    head = qm.head(k)
    head.save(out / "qmodel")
    vec = np.load(src / "vectors.npz")
    x = vec["inputs"].reshape((-1,) + qm.input_shape)
    np.savez(out / "vectors.npz", inputs=vec["inputs"], outputs=head.run(x), final=vec["outputs"],
             labels=vec["labels"], float_pred=vec["float_pred"])
    shutil.copyfile(src / "metrics.json", out / "metrics.json")
    if k < len(qm.layers):
        tail = qm.tail(k)
        tail.save(out / "tail" / "qmodel")
        write_json(out / "tail" / "cut.json", {
            "cut_id": k, "tensor": head.output_name, "shape": list(tail.input_shape),
            "scale": tail.input_scale, "zero_point": tail.input_zero_point})
    return head


def _costs(qm, p):
    """The partitioner's cost graph from the target's energy figures and the recipe's server."""
    from edgebuild.partition import costs_from_qmodel

    energy = p["energy"]
    if not energy.get("cycles_per_mac"):
        raise ConfigError(f"target '{p['target']}' has no energy.cycles_per_mac, needed to cost a split",
                          file=f"targets/{p['target']}.yaml", field="energy.cycles_per_mac",
                          fix="measure cycles per MAC on a reference build (report.json latency."
                              "cycles_per_mac) and set it, or use partition.mode none")
    return costs_from_qmodel(qm, cycles_per_mac=energy["cycles_per_mac"], f_cpu=p["f_cpu"],
                             power_w=energy["supply_v"] * energy["active_current_ma"] * 1e-3,
                             speedup=p["partition"]["server"]["speedup"])


def _chosen(spec, costs, plans, link, objective) -> int:
    """The number of layers on the device: where ``at`` names (mode at), or the best realisable
    split with at least one device layer (mode auto; the device head must be built)."""
    from edgebuild.partition import split_at

    if spec["mode"] == "at":
        if not spec.get("at"):
            raise ConfigError("partition.mode 'at' needs partition.at", field="partition.at",
                              fix="name the last layer (or its output tensor) to run on the device")
        device = split_at(costs, spec["at"], link, objective).device
        k = len(device)
        if k not in plans or set(costs.names[:k]) != device:
            raise ModelError(f"the firmware cannot stop after '{spec['at']}': another tensor besides its "
                             "output crosses the split", field="partition.at",
                             fix="split after one of " + ", ".join(costs.names[i - 1] for i in plans if i))
        return k
    return min((i for i in plans if i > 0), key=lambda i: plans[i].value)


def _row(plan, k: int, names: list[str], chosen: bool) -> dict:
    return {"k": k, "cut": plan.cut[0] if plan.cut else None, "layers_on_device": names[:k],
            "sent_bytes": plan.sent_bytes, "device_ms": plan.device_time_s * 1e3,
            "transfer_ms": plan.transfer_s * 1e3, "server_ms": plan.server_time_s * 1e3,
            "device_energy_uj": plan.device_energy_j * 1e6, "total_ms": plan.latency_s * 1e3,
            "device_memory_bytes": plan.device_memory, "buildable": k > 0, "chosen": chosen}


def _table_summary(table, costs, objective) -> dict:
    """Grid, split legend and size of the adaptive table."""
    import numpy as np

    return {"shape": list(table.table.shape), "bytes": int(table.table.nbytes),
            "bandwidths_bps": table.bandwidths.tolist(),
            "energies_j": [None if np.isinf(e) else float(e) for e in table.energies],
            "srams_bytes": table.srams.tolist(), "objective": objective,
            "splits": [{"id": i, "layers_on_device": sorted(s, key=costs.names.index), "cut": list(c)}
                       for i, (s, c) in enumerate(zip(table.splits, table.cuts))],
            "note": "entries are the unconstrained optimum of edgebuild.partition (server-only allowed)"}


def _curves(costs, link, objective, k: int) -> dict:
    """Estimated latency vs bandwidth of device-only, server-only and the chosen split."""
    import numpy as np

    from edgebuild.partition import evaluate

    bws = np.logspace(np.log10(CURVE_BANDWIDTHS[0]), np.log10(CURVE_BANDWIDTHS[1]), CURVE_BANDWIDTHS[2])
    names = costs.names

    def ms(n):
        return [evaluate(costs, names[:n], link.with_bandwidth(b), objective).latency_s * 1e3 for b in bws]

    return {"bandwidth_bps": bws.tolist(), "device_only_ms": ms(len(names)), "server_only_ms": ms(0),
            "chosen_ms": ms(k), "chosen_k": k, "chosen_layers": names[:k], "link_bandwidth_bps": link.bandwidth_bps}
