"""verify: run the device firmware in the target's simulator on held-out test vectors and compare
every output byte with the numpy int8 reference; measure cycles and the stack high-water mark.
For a split model the device runs the head; each cut tensor then goes to the server runner in a
CRC-32 frame, and the final outputs must equal the unsplit int8 reference byte for byte."""

from __future__ import annotations

from edgebuild.errors import BudgetError, VerificationError
from edgebuild.stages.common import read_json, write_json
from edgebuild.stages.firmware import first_mismatch


def run(ctx):
    import numpy as np

    p = ctx.params
    fw_dir = ctx.inputs["fw"]
    fw = read_json(fw_dir / "firmware.json")
    vec = np.load(ctx.inputs["q"] / "vectors.npz")
    n = min(p["samples"], len(vec["inputs"]))
    inputs, ref, labels = vec["inputs"][:n], vec["outputs"][:n], vec["labels"][:n]
    kind = p["simulator"]["kind"]
    ctx.progress(f"{kind}: {n} samples")
    result: dict = {"simulator": kind, "samples": int(n)}
    if kind == "simavr":
        from edgebuild.sim import run_simavr

        sim = run_simavr(fw_dir / fw["elf"], mcu=p["simulator"].get("mcu") or p["mcu"], f_cpu=p["f_cpu"],
                         inputs=inputs, output_size=ref.shape[1], baud=p["uart"]["baud"], workdir=ctx.tmp)
        got = sim["outputs"]
        cycles = np.asarray(sim["cycles"], dtype=np.int64)
        result.update(cycles_mean=float(cycles.mean()), cycles_min=int(cycles.min()), cycles_max=int(cycles.max()),
                      sim_cycles_mean=float(np.mean(sim["sim_cycles"])) if "sim_cycles" in sim else None,
                      stack_bytes=int(sim["stack_bytes"]), sim_mhz=sim.get("sim_mhz"),
                      layer_cycles=sim.get("layer_cycles") or None,
                      wall_seconds=sim["wall_seconds"])
        _check_sram(fw, sim["stack_bytes"], p["memories"]["sram"]["size"])
    elif kind == "qemu":
        from edgebuild.sim import run_qemu

        target = {"name": p["target"], "f_cpu": p["f_cpu"], "simulator": p["simulator"]}
        sim = run_qemu(fw_dir / fw["elf"], target=target, inputs=inputs, output_size=ref.shape[1],
                       workdir=ctx.tmp)
        got = sim["outputs"]
        instr = np.asarray(sim["instructions"], dtype=np.int64)
        result.update(instructions_mean=float(instr.mean()), instructions_min=int(instr.min()),
                      instructions_max=int(instr.max()), stack_bytes=sim.get("stack_bytes"),
                      layer_cycles=sim.get("layer_instructions") or None,   # 1 instruction per cycle, as above
                      wall_seconds=sim["wall_seconds"])
        _check_sram(fw, sim.get("stack_bytes") or 0, p["memories"]["sram"]["size"])
    elif kind == "native":
        from edgebuild.firmware import run_host

        got = run_host(fw_dir / fw["exe"], inputs, output_size=ref.shape[1], workdir=ctx.tmp)
        result.update(cycles_mean=None, stack_bytes=None)
    else:
        raise VerificationError(f"no runner for simulator '{kind}'", field="target.simulator.kind",
                                fix="use a target whose simulator is simavr, qemu or native")
    exact = int((got == ref).all(axis=1).sum())
    result.update(bit_exact=exact, **_device_score(p.get("task") or "classification", ctx.inputs["q"], vec, got, n))
    np.save(ctx.out / "outputs.npy", got)
    if exact != n:
        write_json(ctx.out / "verify.json", result)
        raise VerificationError(f"device outputs differ from the int8 reference: {first_mismatch(got, ref)}",
                                fix="a codegen or toolchain bug: rerun with --debug and report it")
    if (ctx.inputs["q"] / "table.npz").is_file():
        from edgebuild.partition.server import load_table, lookup_seconds_median

        result["table_lookup_seconds_median"] = lookup_seconds_median(load_table(ctx.inputs["q"]))
    if (ctx.inputs["q"] / "tail").is_dir():
        ctx.progress(f"server: finishing {n} inferences from framed cut tensors")
        final, result["split"] = _finish_on_server(ctx.inputs["q"] / "tail", got, vec["final"][:n])
        result["accuracy"] = float((final.argmax(1) == labels).mean())
        np.save(ctx.out / "final_outputs.npy", final)
    write_json(ctx.out / "verify.json", result)
    ctx.log(f"{exact}/{n} bit-exact, " + (f"device accuracy {result['accuracy']:.4f}" if result.get("accuracy")
                                          is not None else f"device MSE {result.get('mse')}"))


def _device_score(kind: str, q_dir, vec, got, n: int) -> dict:
    """The task's score of the device outputs: accuracy (classification) or, dequantised, the MSE
    (and anomaly AUC) against the reference the quantise stage stored; None where it has none
    (a split model's head outputs)."""
    import numpy as np

    from edgebuild.compress.qmodel import QModel
    from edgebuild.data.tasks import score

    labels = vec["labels"][:n]
    if kind == "classification":
        return {"accuracy": float((got.argmax(1) == labels).mean())}
    if "reference" not in vec.files or "final" in vec.files:
        return {"accuracy": None, "mse": None}
    out = QModel.load(q_dir / "qmodel").dequantize_output(got)
    s = score(kind, out, reference=vec["reference"][:n], labels=labels)
    return {"accuracy": None, "mse": s["mse"], "auc": s.get("auc"),
            "mse_per_sample_max": float(np.max(((out - vec["reference"][:n]) ** 2).mean(axis=1)))}


def _finish_on_server(tail_dir, head_out, final_ref):
    """Send each device cut tensor to the server runner as a CRC-32 frame; the server's final
    outputs must equal the unsplit int8 reference byte for byte. Returns (final, summary)."""
    import time

    import numpy as np

    from edgebuild.partition import encode_frame
    from edgebuild.partition.server import TailRunner

    runner = TailRunner(tail_dir)
    shape, cut_id = tuple(runner.cut["shape"]), runner.cut["cut_id"]
    frames = [encode_frame(cut_id, row.reshape(shape)) for row in head_out]
    t0 = time.perf_counter()
    final = np.stack([runner.finish(f) for f in frames])
    seconds = time.perf_counter() - t0
    exact = int((final == final_ref).all(axis=1).sum())
    summary = {"cut_id": cut_id, "tensor": runner.cut["tensor"], "frame_bytes": len(frames[0]),
               "final_bit_exact": exact, "server_seconds_per_inference": seconds / len(frames)}
    if exact != len(final_ref):
        raise VerificationError("server outputs (device head + tail) differ from the unsplit int8 reference: "
                                + first_mismatch(final, final_ref), file=str(tail_dir),
                                fix="a partition bug: rerun with --debug and report it")
    return final, summary


def _check_sram(fw: dict, stack_bytes: int, sram_limit: int) -> None:
    """Peak SRAM = static data (.data + .bss) + the stack high-water mark measured on the device."""
    peak = fw["size"]["sram_static_bytes"] + stack_bytes
    # Stack painting cannot see past the end of free SRAM: a stack that reached it overflowed.
    if peak >= sram_limit:
        raise BudgetError(f"SRAM peak measured in the simulator is {peak:,} bytes (static "
                          f"{fw['size']['sram_static_bytes']:,} + stack {stack_bytes:,}), limit "
                          f"{sram_limit:,}: short by {peak - sram_limit:,} bytes",
                          shortfalls={"sram": {"need": peak, "limit": sram_limit, "shortfall": peak - sram_limit}},
                          fix="compress the model, move tensors out of SRAM, or pick a larger target")
