"""One network, both sides: TFLM + CMSIS-NN firmware and edgebuild's, figures and agreement."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
# network -> (recipe, overrides): the recipes edgebuild's own side builds (netduinoplus2).
RECIPES = {"ds_cnn": ("recipes/kws_m4.yaml", []), "resnet8": ("recipes/resnet8_m4.yaml", []),
           "mobilenet_v1": ("recipes/vww_m4.yaml", []), "fc_autoencoder": ("recipes/anomaly_m4.yaml", []),
           "mnist_uno": ("recipes/mnist_uno.yaml", ["target=netduinoplus2"])}
ARENA_SLACK = 16   # TFLM: "the optimal arena size would be arena_used_bytes() + 16"


def _config(name: str, vectors: int) -> dict:
    """The recipe of ``name``; edgebuild verifies ``vectors`` samples on QEMU (as many as TFLM)."""
    from edgebuild.api import load_recipe

    recipe, overrides = RECIPES[name]
    return load_recipe(ROOT / recipe, [*overrides, f"verify.samples={vectors}"])


def _trained_onnx(config: dict, build_dir: Path) -> Path:
    """mnist_uno's float ONNX as edgebuild's train stage wrote it (builds the recipe if needed)."""
    from edgebuild.api import build
    from edgebuild.engine.store import Cache

    report = build(config, build_dir=build_dir, check_budget=False)
    key = report.stages["train"].key
    cache = Cache(Path(os.environ.get("EDGEBUILD_CACHE", "cache")))
    record = cache.read_action(key)
    return cache.object_dir(record["output_hash"]) / "model.onnx"


def network(name: str, build_dir: Path, vectors: int):
    """(float ONNX ModelProto, NCHW calibration set, NCHW test inputs, test labels, config)."""
    import onnx

    config = _config(name, vectors)
    from edgebuild.data import load_dataset

    ds = load_dataset(config["dataset"], base_dir=ROOT)
    calib = ds.x_train[: config["compression"]["quantize"]["calibration_samples"]]
    if (config.get("model") or {}).get("zoo"):
        from edgebuild.model.zoo import zoo_model

        z = config["model"]["zoo"]
        model = zoo_model(z["name"], seed=z.get("seed", 0), width=z.get("width", 1.0))
    else:
        model = onnx.load(str(_trained_onnx(config, build_dir / "edgebuild" / name)))
    return model, calib, ds.x_test[:vectors], ds.y_test[:vectors], config


def tflite_model(name: str, model, calib: np.ndarray, build_dir: Path, tf_padding: bool = False) -> Path:
    """The int8 .tflite of ``model``, cached on the ONNX bytes, calibration data and converter code."""
    import tensorflow as tf

    from . import models

    digest = hashlib.sha256(model.SerializeToString() + calib.tobytes() + tf.__version__.encode()
                            + Path(models.__file__).read_bytes() + bytes([tf_padding])).hexdigest()[:12]
    path = build_dir / "models" / f"{name}-{digest}.tflite"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        models.convert_int8(models.keras_from_onnx(model, tf_padding), models.to_nhwc(calib), tmp)
        tmp.rename(path)
    return path


def float_outputs(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString())
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: row[None].astype(np.float32)})[0] for row in x])


def _runs(fw: dict, target: dict, x: np.ndarray, output_size: int, workdir: Path) -> bool:
    from edgebuild.errors import VerificationError
    from edgebuild.sim.qemu import run_qemu

    try:
        run_qemu(fw["elf"], target=target, inputs=x, output_size=output_size, workdir=workdir,
                 timeout_s=120)
        return True
    except VerificationError:
        return False


def smallest_arena(build, target: dict, x: np.ndarray, output_size: int, start: int, workdir: Path) -> int:
    """The smallest arena (16-byte steps) with which the firmware allocates and runs ``x``.

    arena_used_bytes() + 16 is not always enough: AllocateTensors() needs temporary space at the
    arena's tail while it prepares the operators, which arena_used_bytes() no longer counts."""
    from edgebuild.errors import BudgetError

    if _runs(build(start), target, x, output_size, workdir):
        return start
    lo, step = start, 256
    while True:
        hi = lo + step
        try:
            fw = build(hi)
        except BudgetError:
            raise BudgetError(f"TFLM's arena needs more than {lo} B, and {hi} B does not fit the "
                              "board's SRAM beside the harness", shortfalls={"sram": None},
                              file=f"targets/{target['name']}.yaml", field="memories.sram.size",
                              fix="a board with more SRAM, or a smaller model") from None
        if _runs(fw, target, x, output_size, workdir):
            break
        lo, step = hi, step * 2
    while hi - lo > 16:
        mid = (lo + hi) // 32 * 16
        if _runs(build(mid), target, x, output_size, workdir):
            hi = mid
        else:
            lo = mid
    return hi


def tflm_side(name, src, build_dir: Path, tflite: Path, x_nchw: np.ndarray, target: dict, *, jobs: int,
              build_type: str, int8_only: bool = True, cmsis_nn: bool = True) -> dict:
    from edgebuild.sim.qemu import run_qemu

    from . import firmware, models, tflm

    io = models.io_details(tflite)
    q = models.quantize_inputs(tflite, models.to_nhwc(x_nchw))
    ref = models.reference_outputs(tflite, q)
    lib = tflm.build_library(src, build_dir, build_type, jobs, cmsis_nn=cmsis_nn)
    fw_dir = (build_dir / "fw" / f"{tflite.stem}-{build_type}{'' if int8_only else '-generic'}"
              f"{'' if cmsis_nn else '-ref'}")
    used = firmware.probe_arena(src, lib, target, tflite, fw_dir, input_size=io["input_size"],
                                output_size=io["output_size"], build_type=build_type,
                                int8_only=int8_only, cmsis_nn=cmsis_nn)
    hook = build_type != "release"

    def build(arena: int) -> dict:
        return firmware.build_firmware(src, lib, target, tflite, fw_dir / "measured", input_size=io["input_size"],
                                       output_size=io["output_size"], arena=arena, layer_hook=hook,
                                       build_type=build_type, int8_only=int8_only, cmsis_nn=cmsis_nn)

    arena = smallest_arena(build, target, q[:1], io["output_size"], -(-used // 16) * 16 + ARENA_SLACK,
                           fw_dir / "search")
    fw = build(arena)
    res = run_qemu(fw["elf"], target=target, inputs=q, output_size=io["output_size"],
                   workdir=fw_dir / "measured" / "run")
    size = fw["size"]
    outputs = np.asarray(res["outputs"], np.int8)
    return {
        "instructions": float(np.mean(res["instructions"])),
        "instructions_min_max": [int(np.min(res["instructions"])), int(np.max(res["instructions"]))],
        "flash": size["text"] + size["data"], "flash_model": fw["model_bytes"],
        "flash_runtime": size["text"] + size["data"] - fw["model_bytes"],
        "ram": size["data"] + size["bss"] + int(res["stack_bytes"]),
        "arena_used": used, "arena_linked": fw["arena_bytes"], "data": size["data"], "bss": size["bss"],
        "stack": int(res["stack_bytes"]),
        "bit_exact_vs_tflite_ref": int((outputs == ref).all(axis=1).sum()), "vectors": len(q),
        "max_abs_diff_vs_tflite_ref": int(np.abs(outputs.astype(int) - ref).max()),
        "differing_bytes_vs_tflite_ref": int((outputs != ref).sum()),
        "outputs": outputs, "output_quant": io["output_quant"], "ops": fw["ops"],
        "layer_instructions": list(res.get("layer_instructions") or []), "elf": str(fw["elf"]),
    }


def edgebuild_build(name: str, config: dict, build_dir: Path) -> dict:
    """Build the recipe with edgebuild (its own quantisation), figures from its ELF and report."""
    from edgebuild.api import build
    from edgebuild.firmware.build import _section_sizes, size_report

    out = build_dir / "edgebuild" / name
    report = build(config, build_dir=out, check_budget=False).data
    size = size_report(_section_sizes(config["target"]["toolchain"]["size"], out / report["artifacts"]["elf"]))
    weights = sum(m["nbytes"] for m in report["memory_map"] if m["medium"] == "flash")
    mem = report["memory"]
    return {
        "instructions": report["latency"]["instructions"], "flash": size["text"] + size["data"],
        "flash_model": weights, "flash_runtime": size["text"] + size["data"] - weights,
        "ram": size["data"] + size["bss"] + mem["sram_stack_bytes"], "stack": mem["sram_stack_bytes"],
        "bit_exact": report["verify"]["bit_exact"], "verified": report["verify"]["samples"],
        "accuracy": report["accuracy"], "layers": report["layers"],
    }


def _agreement(kind: str, int8_out: np.ndarray, quant, float_out: np.ndarray, labels) -> dict:
    scale, zero = quant
    deq = (int8_out.astype(np.float32) - zero) * scale
    if kind == "anomaly":
        rel = np.linalg.norm(deq - float_out, axis=1) / np.maximum(np.linalg.norm(float_out, axis=1), 1e-9)
        return {"rel_error_vs_float": float(np.mean(rel))}
    agree = float(np.mean(deq.argmax(1) == float_out.argmax(1)))
    return {"argmax_agree_float": agree, "accuracy": float(np.mean(deq.argmax(1) == labels))}


def run_network(name: str, src, build_dir: Path, *, vectors: int, jobs: int, build_type: str,
                with_edgebuild: bool = True, int8_only: bool = True, tf_padding: bool = False,
                cmsis_nn: bool = True) -> dict:
    build_dir = Path(build_dir).resolve()
    model, calib, x, labels, config = network(name, build_dir, vectors)
    tflite = tflite_model(name, model, calib, build_dir, tf_padding)
    kind = config["task"]["kind"]
    f_out = float_outputs(model, x)
    t = tflm_side(name, src, build_dir, tflite, x, config["target"], jobs=jobs, build_type=build_type,
                  int8_only=int8_only, cmsis_nn=cmsis_nn)
    t.update(_agreement(kind, t["outputs"], t["output_quant"], f_out, labels))
    row = {"network": name + (" (TF padding)" if tf_padding else ""), "tflite": str(tflite), "tflm": t,
           "kernels": "cmsis_nn" if cmsis_nn else "reference"}
    if with_edgebuild:
        row["edgebuild"] = edgebuild_build(name, config, build_dir)
    return row


def _ratio(e, t):
    return f"{e / t:.2f}x" if e and t else "-"


def format_row(row: dict) -> str:
    if "error" in row:
        return f"{row['network']}: TFLM does not fit: {row['error']}"
    t = row["tflm"]
    line = (f"{row['network']}: TFLM {t['instructions']:.0f} instr, flash {t['flash']} "
            f"(model {t['flash_model']}), RAM {t['ram']} (arena used {t['arena_used']}, linked {t['arena_linked']}, "
            f"stack {t['stack']}), bit-exact vs TFLite ref {t['bit_exact_vs_tflite_ref']}/{t['vectors']} "
            f"(max |diff| {t['max_abs_diff_vs_tflite_ref']}, {t['differing_bytes_vs_tflite_ref']} bytes)")
    e = row.get("edgebuild")
    if e:
        line += (f"; edgebuild {e['instructions']:.0f} instr, flash {e['flash']}, RAM {e['ram']}, "
                 f"bit-exact {e['bit_exact']}/{e['verified']}")
    return line


def format_layers(row: dict) -> str:
    """Per-layer instructions of both sides (TFLM's need --build-type release_with_logs: its
    per-operator profiler events call the harness' layer hook)."""
    t, e = row.get("tflm") or {}, row.get("edgebuild") or {}
    tl = list(zip(t.get("ops") or [], t.get("layer_instructions") or []))
    el = [(f"{l['name']} ({l['op']})", l.get("cycles")) for l in e.get("layers") or []]
    if not tl and not el:
        return ""
    lines = [f"per layer, {row['network']}: | # | TFLM op | instructions | edgebuild layer | instructions |",
             "|---|---|---|---|---|"]
    for i in range(max(len(tl), len(el))):
        op, n = tl[i] if i < len(tl) else ("", None)
        name, c = el[i] if i < len(el) else ("", None)
        lines.append(f"| {i} | {op} | {'' if n is None else f'{n:,.0f}'} | {name} | "
                     f"{'' if c is None else f'{c:,.0f}'} |")
    return "\n".join(lines)


def format_table(rows: list[dict], src) -> str:
    head = ("| network | side | instructions | flash B (model + runtime) | RAM B (stack) | outputs checked | "
            "float agreement |")
    lines = [head, "|" + "---|" * 7]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['network']} | TFLM | does not fit: {row['error']} | | | | |")
            continue
        t = row["tflm"]
        agree = (f"argmax {t['argmax_agree_float']:.2f}" if "argmax_agree_float" in t
                 else f"rel. err {t['rel_error_vs_float']:.3f}")
        side = "TFLM+CMSIS-NN" if row["kernels"] == "cmsis_nn" else "TFLM (reference kernels)"
        lines.append(f"| {row['network']} | {side} | {t['instructions']:,.0f} | {t['flash']:,} "
                     f"({t['flash_model']:,} + {t['flash_runtime']:,}) | {t['ram']:,} ({t['stack']}) | "
                     f"{t['bit_exact_vs_tflite_ref']}/{t['vectors']} = TFLite ref | {agree} |")
        e = row.get("edgebuild")
        if e:
            acc = e["accuracy"]
            ea = (f"argmax {acc['onnxruntime_argmax_agreement']:.2f}"
                  if acc.get("onnxruntime_argmax_agreement") is not None else json.dumps(acc)[:40])
            lines.append(f"| | edgebuild | {e['instructions']:,.0f} ({_ratio(e['instructions'], t['instructions'])}) "
                         f"| {e['flash']:,} ({e['flash_model']:,} + {e['flash_runtime']:,}; "
                         f"{_ratio(e['flash'], t['flash'])}) | {e['ram']:,} ({e['stack']}; "
                         f"{_ratio(e['ram'], t['ram'])}) | {e['bit_exact']}/{e['verified']} = numpy int8 | {ea} |")
    revs = src.revisions()
    lines.append("")
    lines.append("sources: " + ", ".join(f"{k} {v[:12]}" for k, v in revs.items()))
    return "\n".join(lines)
