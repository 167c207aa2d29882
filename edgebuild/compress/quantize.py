"""Post-training int8 quantisation (TFLite integer spec, fixed-point requantisation).

``quantize(graph, calib)`` lowers the graph to fused layers (edgebuild.compress.lowering),
calibrates every activation's min/max on ``calib`` in float, then derives per-channel
symmetric int8 weights, int32 biases (input zero point folded in), fixed-point multipliers
(edgebuild.compress.fixedpoint) and LUTs. The result is a :class:`QModel`.
"""

from __future__ import annotations

import math

import numpy as np

from edgebuild.errors import DatasetError, ModelError
from edgebuild.model.ir import Graph

from . import fixedpoint as fp
from .lowering import LUT_FUNCS, float_layer, lower
from .qmodel import QModel

__all__ = ["quantize", "QModel"]

INT32 = (-(2 ** 31), 2 ** 31 - 1)
BIAS_LIMIT = 2 ** 28            # largest |int32 bias| a weight scale is chosen for (room for the MACs)
ADD_BITS = 14


def _calibrate(layers, in_name: str, in_shape, calib: np.ndarray) -> dict[str, tuple]:
    """Float forward over ``calib`` in chunks; returns {tensor: (min, max)}."""
    ranges: dict[str, list[float]] = {}

    def note(t, v):
        lo, hi = float(v.min()), float(v.max())
        old = ranges.get(t, [lo, hi])
        ranges[t] = [min(old[0], lo), max(old[1], hi)]

    for i in range(0, len(calib), 256):
        x = calib[i:i + 256].astype(np.float64).reshape((-1,) + tuple(in_shape))
        vals = {in_name: x}
        note(in_name, x)
        for lay in layers:
            xs = [vals[t].reshape((len(x),) + tuple(s)) for t, s in zip(lay["inputs"],
                                                                      lay["in_shapes"])]
            vals[lay["output"]] = y = float_layer(lay, xs)
            if not np.all(np.isfinite(y)):
                raise ModelError(f"layer '{lay['name']}' produced non-finite values on the "
                                 "calibration data", field=lay["name"],
                                 fix="check the model weights and the calibration inputs")
            note(lay["output"], y)
    return {t: tuple(r) for t, r in ranges.items()}


def _act_range(clamp, zp: int, scale: float) -> tuple[int, int]:
    if clamp is None:
        return -128, 127
    lo = -128 if math.isinf(clamp[0]) else int(np.clip(zp + round(clamp[0] / scale), -128, 127))
    hi = 127 if math.isinf(clamp[1]) else int(np.clip(zp + round(clamp[1] / scale), -128, 127))
    return lo, hi


def _floored(rng: tuple, min_scale: float) -> tuple[float, int]:
    """qparams for ``rng`` with the scale raised to ``min_scale`` if needed (keeps m <= 1/8)."""
    scale, zp = fp.choose_qparams(*rng)
    if scale < min_scale:
        scale = min_scale
        zp = int(np.clip(round(-128 - min(0.0, rng[0]) / scale), -128, 127))
    return scale, zp


class _Builder:
    def __init__(self, per_channel: bool):
        self.per_channel = per_channel
        self.arrays: dict[str, np.ndarray] = {}
        self.qp: dict[str, tuple[float, int]] = {}

    def table(self, name: str, arr: np.ndarray) -> str:
        """Register a constant table under a unique name (identical re-use keeps the name)."""
        base, k = name, 0
        while name in self.arrays and not np.array_equal(self.arrays[name], arr):
            k += 1
            name = f"{base}_{k}"
        self.arrays[name] = arr
        return name

    def weighted(self, lay: dict, rng: tuple) -> dict:
        s_in, zp_in = self.qp[lay["inputs"][0]]
        wq, s_w = fp.symmetric_weights(lay["w"], self.per_channel)
        # A channel whose weights are tiny next to its bias (a neuron that weight decay has all but
        # switched off) would need a bias beyond int32 in units of s_in * s_w: coarsen that channel's
        # weight scale until the bias fits BIAS_LIMIT (its weights stay the negligible few steps they are).
        floor = np.abs(lay["b"]) / (s_in * BIAS_LIMIT)
        if (s_w < floor).any():
            s_w = np.maximum(s_w, floor)
            flat = lay["w"].reshape(len(s_w), -1) / s_w[:, None]
            wq = np.clip(np.round(flat), -127, 127).astype(np.int8).reshape(lay["w"].shape)
        s_out, zp_out = _floored(rng, s_in * s_w.max() / fp.MAX_MULTIPLIER)
        self.qp[lay["output"]] = (s_out, zp_out)
        bias = np.round(lay["b"] / (s_in * s_w)).astype(np.int64)
        bias -= zp_in * wq.reshape(len(wq), -1).astype(np.int64).sum(axis=1)
        k = int(np.prod(wq.shape[1:]))
        raw = bias + zp_in * wq.reshape(len(wq), -1).astype(np.int64).sum(axis=1)
        if max(np.abs(bias).max(), np.abs(raw).max()) + k * 255 * 127 > INT32[1]:
            raise ModelError(f"layer '{lay['name']}' may overflow its int32 accumulator",
                             field=lay["name"], fix="reduce the layer's fan-in")
        rq = np.array([fp.quantize_multiplier(s_in * s / s_out) for s in s_w], dtype=np.int32)
        wname = lay["weight"]
        base = wname[:-len(".weight")] if wname.endswith(".weight") else lay["name"]
        lo, hi = _act_range(lay["clamp"], zp_out, s_out)
        lay["tables"] = {"weight": self.table(wname, wq),
                         "bias": self.table(base + ".bias", bias.astype(np.int32)),
                         "requant": self.table(base + ".requant", rq)}
        return {"zp_in": zp_in, "zp_out": zp_out, "act_min": lo, "act_max": hi}

    def quantize_layer(self, lay: dict, rng: tuple) -> dict:
        kind = lay["kind"]
        lay["tables"] = {}
        if kind in ("conv", "dense"):
            return self.weighted(lay, rng)
        if kind in ("maxpool", "avgpool"):
            s, zp = self.qp[lay["inputs"][0]]
            self.qp[lay["output"]] = (s, zp)
            lo, hi = _act_range(lay["clamp"], zp, s)
            return {"zp_in": zp, "zp_out": zp, "act_min": lo, "act_max": hi}
        ins = [self.qp[t] for t in lay["inputs"]]
        if kind == "add":
            smax = max(s for s, _ in ins)
            s_out, zp_out = _floored(rng, smax * 2.0 ** -ADD_BITS / fp.MAX_MULTIPLIER)
            mult, shift = fp.quantize_multiplier(smax * 2.0 ** -ADD_BITS / s_out)
            a = [int(round(s / smax * 2 ** ADD_BITS)) for s, _ in ins]
            q = {"a": a, "mult": mult, "shift": shift}
        elif kind == "concat":
            s_out, zp_out = _floored(rng, max(s for s, _ in ins) * 2.0 ** -16 / fp.MAX_MULTIPLIER)
            mr = [fp.quantize_multiplier(s * 2.0 ** -16 / s_out) for s, _ in ins]
            q = {"mult": [m for m, _ in mr], "shift": [r for _, r in mr]}
        else:  # lut
            (s_in, zp_in), = ins
            s_out, zp_out = fp.choose_qparams(*rng)
            real = (np.arange(-128, 128) - zp_in) * s_in
            y = LUT_FUNCS[lay["func"]](real, lay["func_attrs"])
            if lay["clamp"]:
                y = np.clip(y, *lay["clamp"])
            lut = np.clip(np.round(y / s_out) + zp_out, -128, 127).astype(np.int8)
            lay["tables"] = {"lut": self.table(lay["name"] + ".lut", lut)}
            q = {}
        self.qp[lay["output"]] = (s_out, zp_out)
        lo, hi = _act_range(lay["clamp"], zp_out, s_out)
        zps = [z for _, z in ins]
        return dict(q, zp_in=zps if kind != "lut" else zps[0], zp_out=zp_out,
                    act_min=lo, act_max=hi)


def _macs(lay: dict) -> int:
    k, a, out = lay["kind"], lay["attrs"], lay["out_shape"]
    if k == "conv":
        hw = a.get("conv_out", out[1:])
        return int(out[0] * hw[0] * hw[1] * lay["w"][0].size)
    if k == "dense":
        return int(lay["w"].size)
    if k in ("maxpool", "avgpool"):
        return int(np.prod(out) * a["kernel"][0] * a["kernel"][1])
    return int(np.prod(out))


def quantize(graph: Graph, calib: np.ndarray, *, per_channel: bool = True) -> QModel:
    """Quantise ``graph`` to int8, calibrating activations on the float batch ``calib`` (NCHW)."""
    layers, alias, notes = lower(graph)
    in_name = graph.inputs[0]
    out_name = graph.outputs[0]
    while out_name in alias:
        out_name = alias[out_name]
    if not layers or out_name == in_name:
        raise ModelError("the model has no computing layer", field=graph.outputs[0],
                         fix="export a model with at least one Conv/Gemm layer")
    in_shape = tuple(int(d) for d in graph.shapes[in_name][1:])
    calib = np.asarray(calib, dtype=np.float32)
    if calib.size == 0 or calib.size % int(np.prod(in_shape)):
        raise ModelError(f"calibration data of shape {calib.shape} does not match the model "
                         f"input {in_shape}", field="calib", fix="pass samples shaped like the input")
    if not np.all(np.isfinite(calib)):
        raise DatasetError("calibration data contains NaN or infinite values", field="calib",
                           fix="clean the dataset (or its normalisation) before quantising")
    ranges = _calibrate(layers, in_name, in_shape, calib)
    b = _Builder(per_channel)
    b.qp[in_name] = fp.choose_qparams(*ranges[in_name])
    qlayers = []
    for lay in layers:
        q = b.quantize_layer(lay, ranges[lay["output"]])
        qlayers.append({
            "name": lay["name"], "kind": lay["kind"], "inputs": lay["inputs"],
            "output": lay["output"], "in_shapes": [list(s) for s in lay["in_shapes"]],
            "out_shape": [int(d) for d in lay["out_shape"]], "macs": _macs(lay),
            "attrs": lay["attrs"], "q": q, "tables": lay["tables"],
            "scale_out": b.qp[lay["output"]][0]})
    s_out, zp_out = b.qp[out_name]
    meta = {"format": 1, "input": in_name, "output": out_name, "input_shape": list(in_shape),
            "output_shape": next(l["out_shape"] for l in qlayers if l["output"] == out_name),
            "input_scale": b.qp[in_name][0], "input_zero_point": b.qp[in_name][1],
            "output_scale": s_out, "output_zero_point": zp_out, "layers": qlayers,
            "notes": notes, "per_channel": per_channel}
    return QModel(json_clean(meta), b.arrays)


def json_clean(obj):
    """Convert numpy scalars/arrays nested in ``obj`` to plain python (json-serialisable)."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_clean(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj
