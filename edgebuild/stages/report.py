"""report: report.json (stable keys) and report.html from the outputs of every stage.

The per-stage status table (ran / cached / cut off) is known only to the engine during a build; the
CLI adds it as `stages` to the published report.json after each build.
"""

from __future__ import annotations

from edgebuild.stages.common import read_json


def run(ctx):
    import numpy as np

    from edgebuild.compress.quantize import QModel
    from edgebuild.report import render_html, write_json
    from edgebuild.report.linkmap import linker_map
    from edgebuild.storage import MemoryPlan
    from edgebuild.storage.tflm import tflm_arena_estimate

    p = ctx.params
    target = p["target"]
    inp = ctx.inputs
    meta = read_json(inp["data"] / "meta.json")
    qmetrics = read_json(inp["q"] / "metrics.json")
    qm = QModel.load(inp["q"] / "qmodel")            # what the device runs (the head when split)
    full = QModel.load(inp["full"] / "qmodel")       # the whole int8 model
    plan = MemoryPlan.from_json(read_json(inp["plan"] / "plan.json"))
    memory_map = plan.memory_map()
    fw = read_json(inp["fw"] / "firmware.json")
    ver = read_json(inp["verify"] / "verify.json")
    vec = np.load(inp["q"] / "vectors.npz")

    n = ver["samples"]
    kind = p.get("task") or "classification"
    labels = vec["labels"][:n]
    final = vec["final"] if "final" in vec.files else vec["outputs"]   # the model's outputs, split or not
    macs = int(sum(layer["macs"] for layer in full.layers))
    device_macs = int(sum(layer["macs"] for layer in qm.layers))
    comp = read_json(inp["compress"] / "compress.json")
    params = int(comp["after"]["figures"]["params"])
    mem = target["memories"]
    sram_static = fw["size"]["sram_static_bytes"]
    report = {
        "recipe": p["recipe"],
        "target": target["name"],
        "mcu": target["mcu"],
        "dataset": {"source": meta.get("source"), **{k: meta.get("counts", {}).get(k)
                                                     for k in ("train", "val", "test")},
                    "preprocessing": meta.get("preprocessing")},
        "model": {"params": params, "params_before_compression": int(comp["before"]["figures"]["params"]),
                  "macs": macs, "layers": len(full.layers), "notes": full.notes,
                  **_import_figures(inp["imported"])},
        "accuracy": _accuracy(kind, vec, final, labels, n, ver, qmetrics),
        "task": _task(kind, vec, final, labels, n, ver, qmetrics, full),
        "memory": {
            "flash_bytes": fw["size"]["flash_bytes"],
            "flash_limit": mem["flash"]["size"] - mem["flash"].get("reserved", 0),
            "sram_static_bytes": sram_static,
            "sram_stack_bytes": ver.get("stack_bytes"),
            "sram_peak_bytes": (sram_static + (ver.get("stack_bytes") or 0)) if sram_static is not None else None,
            "sram_limit": mem["sram"]["size"],
            "sram_arena_bytes": plan.arena_size,
            "sram_arena_lower_bound": plan.arena_lower_bound,
            "sram_arena_with_io_bytes": plan.arena_size + qm.input_size + qm.output_size,
            "tflm_arena_estimate": tflm_arena_estimate(qm.layers, qm.input_name, qm.input_size),
            "eeprom_bytes": fw["size"].get("eeprom"),
            "eeprom_limit": mem["eeprom"]["size"] if "eeprom" in mem else 0,
        },
        "latency": _latency(ver, device_macs, target["f_cpu"]),
        "verify": {"samples": n, "bit_exact": ver["bit_exact"], "simulator": ver.get("simulator")},
        "artifacts": {
            "elf": fw.get("elf") and f"firmware/{fw['elf']}",
            "hex": fw.get("hex") and f"firmware/{fw['hex']}",
            "eep": fw.get("eep") and f"firmware/{fw['eep']}",
            "sources": [f"codegen/{s}" for s in fw.get("sources", [])],
        },
        "memory_map": memory_map,
        "linker_map": (linker_map(fw["symbols"], fw["size"], memory_map, ver.get("stack_bytes"))
                       if fw.get("symbols") else None),
        "layers": _layers(qm.layers, ver.get("layer_cycles"), comp["after"]["layers"]),
        "compression": _compression(comp),
        "energy": _energy(comp, ver, target),
        "budget": p["budget"],
        "storage": p["storage"],
        "partition": _partition(inp["q"], ctx.out, p["recipe"], ver, target["f_cpu"]),
    }
    write_json(report, ctx.out / "report.json")
    plot = ctx.out / "partition.png"
    render_html(report, ctx.out / "report.html",
                extra_images={"partition": plot.read_bytes()} if plot.is_file() else None)


def _accuracy(kind, vec, final, labels, n, ver, qmetrics) -> dict:
    """Argmax accuracies (float, int8 host, device) for classification; all None for error tasks."""
    if kind != "classification":
        return {"float": None, "int8_host": None, "device": None, "samples": n}
    return {
        "float": float((vec["float_pred"][:n] == labels).mean()),
        "int8_host": float((final[:n].argmax(1) == labels).mean()),
        "device": ver["accuracy"],
        "samples": n,
        "float_full_test": qmetrics["float_accuracy"],
        "int8_full_test": qmetrics["int8_accuracy"],
        "full_test_samples": qmetrics["test_samples"],
        "onnxruntime_argmax_agreement": qmetrics["onnxruntime_argmax_agreement"],
    }


def _task(kind, vec, final, labels, n, ver, qmetrics, full) -> dict:
    """The task and its score on the verified samples: accuracy, or the MSE (and anomaly AUC) of the
    float model, the int8 host reference (dequantised) and the device, against targets or the input."""
    if kind == "classification":
        return {"kind": kind, "metric": "accuracy"}
    from edgebuild.data.tasks import score

    ref = vec["reference"][:n]
    f = score(kind, vec["float_outputs"][:n], reference=ref, labels=labels)
    q = score(kind, full.dequantize_output(final[:n]), reference=ref, labels=labels)
    return {"kind": kind, "metric": "mse", "samples": n, "float_mse": f["mse"], "int8_host_mse": q["mse"],
            "device_mse": ver.get("mse"), "float_auc": f.get("auc"), "int8_host_auc": q.get("auc"),
            "device_auc": ver.get("auc"), "float_mse_full_test": qmetrics.get("float_mse"),
            "int8_mse_full_test": qmetrics.get("int8_mse"), "full_test_samples": qmetrics["test_samples"]}


def _partition(q_dir, out_dir, recipe: str, ver: dict, f_cpu: int) -> dict:
    """The split the partition stage chose (estimated costs), its candidates and adaptive table,
    and from verify the server's bit-exactness, the table's lookup time and the head's measured
    device time; writes the latency-vs-bandwidth plot to
    partition.png. ``{"mode": "none"}`` when the model is not split."""
    path = q_dir / "partition.json"
    if not path.is_file():
        return {"mode": "none"}
    from edgebuild.partition.figures import latency_vs_bandwidth_png

    part = read_json(path)
    (out_dir / "partition.png").write_bytes(latency_vs_bandwidth_png(
        part["curves"], title=f"{recipe}: latency vs bandwidth ({part['objective']} objective)"))
    keys = ("cut", "layers_on_device", "sent_bytes", "device_ms", "transfer_ms", "server_ms",
            "device_energy_uj", "total_ms")
    table = part["table"]
    return {"mode": part["mode"], "objective": part["objective"], "link": part["link"],
            "chosen": {k: part["chosen"][k] for k in keys},
            "candidates": part["candidates"],
            "table": {"shape": table["shape"], "bytes": table["bytes"],
                      "lookup_seconds_median": ver.get("table_lookup_seconds_median")},
            "server": ver.get("split"),
            "measured_device_ms": (ver["cycles_mean"] / f_cpu * 1e3) if ver.get("cycles_mean") and f_cpu else None,
            "plot": "report/partition.png"}


def _layers(layers: list[dict], cycles: list[float] | None, model_rows: list[dict]) -> list[dict]:
    """Per-layer rows: measured cycles (the simulator's layer marks) beside the cost model's
    prediction, energy and parameters (the compress stage's table, matched by layer name)."""
    if not cycles or len(cycles) != len(layers):
        cycles = [None] * len(layers)
    model = {r["name"]: r for r in model_rows}
    rows = []
    for layer, c in zip(layers, cycles):
        m = model.get(layer["name"], {})
        pred = m.get("cycles") or None     # 0 = the target has no fitted cycle model: no prediction
        rows.append({"name": layer["name"], "op": layer["kind"], "macs": layer["macs"], "params": m.get("params"),
                     "cycles": c, "cycles_per_mac": (c / layer["macs"]) if c and layer["macs"] else None,
                     "predicted_cycles": pred,
                     "prediction_error": ((pred - c) / c) if pred is not None and c else None,
                     "energy_uj": m.get("energy_uj") if pred else None,
                     "predicted_latency_ms": m.get("latency_ms") if pred else None})
    return rows


def _compression(comp: dict) -> dict:
    """What the compress stage did: method, whole-model figures and per-layer rows, before and after."""
    keys = ("params", "macs", "flash_bytes", "energy_uj", "latency_ms")
    before = {r["name"]: r for r in comp["before"]["layers"]}
    layers = [{"name": r["name"], **{f"{k}_before": before.get(r["name"], {}).get(k) for k in keys},
               **{f"{k}_after": r.get(k) for k in keys}} for r in comp["after"]["layers"]]
    return {"method": comp.get("method"), "before": comp["before"]["figures"],
            "after": comp["after"]["figures"], "layers": layers,
            **{k: comp[k] for k in ("budget", "accuracy", "widths") if k in comp}}


def _energy(comp: dict, ver: dict, target: dict) -> dict:
    """Energy per inference: the cost model's estimate, and supply power x the measured time."""
    e, f_cpu = target.get("energy") or {}, target["f_cpu"]
    cycles = ver.get("cycles_mean")
    measured = (cycles / f_cpu * e["supply_v"] * e["active_current_ma"] * 1e-3 * 1e6) if cycles and f_cpu else None
    # Without a fitted cycle model (energy.cycle_model) the compress stage cannot estimate energy.
    estimated = comp["after"]["figures"].get("energy_uj") if e.get("cycle_model") else None
    return {"estimated_uj": estimated, "from_measured_cycles_uj": measured}


def _latency(ver: dict, macs: int, f_cpu: int) -> dict:
    """Cycles per inference as the device measured them (AVR: Timer1), or, under QEMU, executed
    instructions (-icount, exact) with time estimated at one instruction per cycle."""
    cycles, instructions = ver.get("cycles_mean"), ver.get("instructions_mean")
    count = cycles if cycles is not None else instructions
    return {
        "cycles": cycles,
        "instructions": instructions,
        "ms": (count / f_cpu * 1000.0) if count and f_cpu else None,
        "cycles_per_mac": (cycles / macs) if cycles and macs else None,
        "instructions_per_mac": (instructions / macs) if instructions and macs else None,
        "basis": ("device cycle counter" if cycles is not None else
                  "instructions counted by the simulator, 1 per cycle assumed" if instructions is not None else None),
    }


def _import_figures(folder) -> dict:
    """The imported file's opset and what the import did to it (e.g. "upgraded from opset 6 to 7
    with onnx.version_converter")."""
    info = read_json(folder / "import.json")
    return {"opset": info.get("opset"), "import_log": info.get("log", [])}
