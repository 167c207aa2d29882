"""Per-layer cost model: MACs, flash bytes, cycles, latency and energy on a target.

Layers are the fused int8 layers the code generator emits (``edgebuild.compress.lowering.lower``:
a Conv with its Relu and MaxPool is one layer), so the names match report["layers"].

Cycles come from a per-layer-kind linear model over features of the generated kernel::

    cycles = sum(coefficient[f] * feature[f])     # e.g. conv: macs, windows, window_channels, ...

with coefficients in the target file (``energy.cycle_model``), fitted against simavr
measurements by :func:`fit_cycle_model`. Memory traffic per medium counts the bytes each layer
reads (weights from their medium, activations from SRAM) and writes (SRAM). Energy is active power
times time (an AVR has no separate memory power domain): ``E = cycles / f_cpu * V * I``; the
part attributed to memory traffic is ``accesses * cycles_per_access[medium]`` cycles, the rest is
compute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# Features of each layer kind the cycle model may use (all counts per inference).
FEATURES = {
    # macs / windows / window_channels / border_*: every conv output; dot_*: the windows the kernel
    # computes (a fused pool's); patch_* = dot_border_* of the convs whose border windows go through
    # the per-window patch on targets with energy.conv_pad_copy (AVR); the others read a
    # zero-point-padded input copy of pad_bytes bytes (0 = none) and take the in-place dot product
    # for every window
    # im2col_* / pool_macs / dw_macs: the Cortex-M4 kernels' work besides the MACs (codegen
    # arm_variant): windows and int16 column entries an "im2col" conv gathers (those of border
    # windows take the range-checked path), MACs it runs 1 column x 4 rows at a time (a fused
    # max-pool: each window once per pool window holding it), MACs of a "dw3" depthwise conv
    "conv": ("macs", "windows", "window_channels", "border_windows", "border_taps", "border_rows",
             "patch_windows", "patch_taps", "pad_bytes", "outputs", "im2col_windows", "im2col_taps",
             "im2col_border_taps", "pool_macs", "dw_macs", "one"),
    "dense": ("macs", "outputs", "inputs", "one"),
    "dense_sparse": ("entries", "outputs", "one"),      # dense layer with sparse-encoded weights
    # conv with sparse-encoded weights: entries = non-zero weights x windows each is read in,
    # window_channels = (window, input channel) counts read; border windows gather taps as the dense conv
    "conv_sparse": ("entries", "windows", "window_channels", "border_windows", "border_taps", "border_rows",
                    "outputs"),
    "maxpool": ("taps", "outputs", "one"),
    "avgpool": ("taps", "outputs", "one"),
    "add": ("outputs", "one"),          # residual Add (two rescaled inputs, one requantisation)
}
# The AVR kernels' features (targets with energy.conv_pad_copy): counts of the windows computed, and
# for a dense conv the patch path or the padded copy; a border window that reads the padded copy
# costs as an interior one, so border_* describe no kernel there.
PAD_COPY_FEATURES = {
    "conv": ("dot_macs", "dot_windows", "dot_channels", "patch_windows", "patch_taps", "pad_bytes", "outputs", "one"),
    "conv_sparse": ("dot_entries", "dot_windows", "dot_channels", "dot_border_windows", "dot_border_taps",
                    "outputs"),
}
WEIGHTED = ("conv", "dense", "dense_sparse", "conv_sparse")
# Flash bytes of the constant tables per output channel besides the int8 weights:
# an int32 bias and an int32 (multiplier, shift) requantisation pair.
TABLE_BYTES_PER_CHANNEL = 4 + 8


@dataclass
class LayerCost:
    """Cost of one fused layer. Energies in µJ, latency in ms, traffic in bytes per inference."""

    name: str
    kind: str
    params: int
    macs: int
    flash_bytes: int
    out_bytes: int
    features: dict[str, float]
    cycles: float = 0.0
    latency_ms: float = 0.0
    energy_uj: float = 0.0
    compute_uj: float = 0.0
    traffic: dict[str, dict[str, int]] = field(default_factory=dict)
    memory_uj: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _valid_taps(n: int, on: int, k: int, stride: int, dil: int, pad: int) -> np.ndarray:
    """Per output position along one axis: how many of the k window taps fall inside the input."""
    start = np.arange(on) * stride - pad
    taps = start[:, None] + np.arange(k)[None, :] * dil
    return ((taps >= 0) & (taps < n)).sum(axis=1)


def _computed(n: int, on: int, k: int, stride: int, pad: int) -> np.ndarray:
    """Per conv output position along one axis: how many fused-pool windows (size k, output on)
    compute it. The kernels evaluate every pool window's conv windows afresh, so an overlapped
    one counts twice and one no pool window covers (the floor of an odd size) is never computed."""
    start = np.arange(on) * stride - pad
    idx = start[:, None] + np.arange(k)[None, :]
    idx = idx[(idx >= 0) & (idx < n)]
    return np.bincount(idx, minlength=n)[:n]


def _conv_features(lay: dict) -> dict[str, float]:
    """Cycle-model features of a dense conv. ``macs``, ``windows``, ``window_channels`` and
    ``border_*`` count every conv output; ``dot_*`` and ``patch_*`` the windows the kernel computes:
    with a fused MaxPool each pool window's conv windows (edgebuild.codegen kernels.c.j2 conv_main),
    so an uncovered one never, an overlapped one twice."""
    a = lay["attrs"]
    cout, cin_g, kh, kw = (int(d) for d in lay["w"].shape)
    oh, ow = a.get("conv_out", lay["out_shape"][1:])
    h, w = lay["in_shapes"][0][1:]
    vy = _valid_taps(h, oh, kh, a["strides"][0], a["dilations"][0], a["pads"][0])
    vx = _valid_taps(w, ow, kw, a["strides"][1], a["dilations"][1], a["pads"][1])
    my, mx = np.ones(oh, dtype=np.int64), np.ones(ow, dtype=np.int64)
    if "pool" in a:
        p, (ph, pw) = a["pool"], lay["out_shape"][1:]
        my = _computed(oh, ph, p["kernel"][0], p["strides"][0], p["pads"][0])
        mx = _computed(ow, pw, p["kernel"][1], p["strides"][1], p["pads"][1])
    mult = np.outer(my, mx)                                      # times each conv window is computed
    border = ~((vy == kh)[:, None] & (vx == kw)[None, :])        # windows not fully inside
    taps = np.outer(vy, vx) * border
    from edgebuild.codegen.generator import arm_variant, pad_copy_bytes

    pad = pad_copy_bytes(lay)
    windows, computed = cout * oh * ow, cout * int(mult.sum())
    bw, dbw = cout * int(border.sum()), cout * int((mult * border).sum())
    dbt = cout * cin_g * int((mult * taps).sum())
    variant = arm_variant(lay)
    # conv windows the im2col kernel gathers per group: each once, or once per fused-pool window
    gathered = oh * ow
    if "pool" in a:
        p = a["pool"]
        py = _valid_taps(oh, lay["out_shape"][1], p["kernel"][0], p["strides"][0], 1, p["pads"][0])
        px = _valid_taps(ow, lay["out_shape"][2], p["kernel"][1], p["strides"][1], 1, p["pads"][1])
        gathered = int(py.sum()) * int(px.sum())
    groups = a["groups"]
    im2col = variant == "im2col"
    return {"im2col_windows": groups * gathered if im2col else 0,
            "im2col_taps": groups * gathered * cin_g * kh * kw if im2col else 0,
            "im2col_border_taps": groups * int(border.sum()) * cin_g * kh * kw if im2col else 0,
            "pool_macs": gathered * cout * cin_g * kh * kw if im2col and "pool" in a else 0,
            "dw_macs": windows * kh * kw if variant == "dw3" else 0,
            "macs": windows * cin_g * kh * kw, "windows": windows, "window_channels": windows * cin_g,
            "border_windows": bw, "border_taps": cout * cin_g * int(taps.sum()),
            "border_rows": cout * cin_g * int((np.outer(vy, np.ones_like(vx)) * border).sum()),
            "dot_macs": computed * cin_g * kh * kw, "dot_windows": computed, "dot_channels": computed * cin_g,
            "dot_border_windows": dbw, "dot_border_taps": dbt,
            "patch_windows": 0 if pad else dbw, "patch_taps": 0 if pad else dbt, "pad_bytes": pad,
            "outputs": int(np.prod(lay["out_shape"])), "one": 1}


def sparse_conv_features(conv: dict[str, float], nonzeros: int, out_channels: int) -> dict[str, float]:
    """Features of a conv stored sparse, from its dense ``conv`` features and non-zero weight count
    (every output channel's entries are walked once per window of that channel: ``entries`` per
    conv output, ``dot_entries`` per computed window). The sparse kernels make no padded copy."""
    keep = ("windows", "window_channels", "border_windows", "border_taps", "border_rows", "dot_windows",
            "dot_channels", "dot_border_windows", "dot_border_taps", "outputs", "one")
    return {"entries": nonzeros * (conv["windows"] // out_channels),
            "dot_entries": nonzeros * (conv["dot_windows"] // out_channels), **{k: conv[k] for k in keep}}


def _features(lay: dict) -> dict[str, float]:
    kind, a = lay["kind"], lay["attrs"]
    out = int(np.prod(lay["out_shape"]))
    if kind == "conv":
        return _conv_features(lay)
    if kind == "dense":
        return {"macs": int(lay["w"].size), "outputs": out, "inputs": int(lay["w"].shape[1]), "one": 1}
    if kind in ("maxpool", "avgpool"):
        return {"taps": out * a["kernel"][0] * a["kernel"][1], "outputs": out, "one": 1}
    return {"outputs": out, "one": 1}


def layer_costs(graph) -> list[LayerCost]:
    """Structural cost (params, MACs, flash bytes, cycle-model features) of each fused layer of ``graph``."""
    from edgebuild.compress.lowering import lower

    return _costs(lower(graph)[0])


def _costs(layers: list[dict]) -> list[LayerCost]:
    from edgebuild.compress.sparse import stored_bytes

    costs = []
    for lay in layers:
        kind, feats = lay["kind"], _features(lay)
        params = int(lay["w"].size + lay["b"].size) if "w" in lay else 0
        flash = int(lay["w"].size + TABLE_BYTES_PER_CHANNEL * lay["w"].shape[0]) if "w" in lay else 0
        if kind == "dense" and (enc := stored_bytes(lay["w"])) < lay["w"].size:
            out = int(lay["w"].shape[0])
            kind, feats = "dense_sparse", {"entries": (enc - 2 * out) // 2, "outputs": out, "one": 1}
            flash = enc + TABLE_BYTES_PER_CHANNEL * out
        elif kind == "conv" and (enc := stored_bytes(lay["w"])) < lay["w"].size:
            kind, feats = "conv_sparse", sparse_conv_features(feats, np.count_nonzero(lay["w"]), lay["w"].shape[0])
            flash = enc + TABLE_BYTES_PER_CHANNEL * int(lay["w"].shape[0])
        costs.append(LayerCost(name=lay["name"], kind=kind, params=params,
                               macs=int(feats.get("macs", feats.get("taps", feats.get("entries", 0)))),
                               flash_bytes=flash, out_bytes=int(np.prod(lay["out_shape"])), features=feats))
    return costs


def code_counts(costs: list[LayerCost], code: dict) -> dict[str, int]:
    """How many of each ``energy.code_bytes`` term the layers ``costs`` bring: "one" per firmware,
    one per layer kind, and for a conv with border windows "conv" plus "conv_patch" where they take
    the border patch path (on targets without conv_pad_copy every border is, if ``code`` lists
    it) or else "conv_border"."""
    counts = {"one": 1}
    for c in costs:
        kinds = [c.kind]
        if c.kind == "conv" and c.features.get("border_windows"):
            kinds.append("conv_patch" if c.features.get("patch_windows") and "conv_patch" in code
                         else "conv_border")
        for k in kinds:
            counts[k] = counts.get(k, 0) + 1
    return counts


def footprint(graph, energy: dict) -> dict:
    """Estimated whole-firmware flash and peak SRAM bytes of ``graph`` on a target.

    flash = constant tables + code (``energy.code_bytes``: "one" + per "conv", "conv_border"
    (a conv with padded border windows; "conv_patch" where those take the border patch path, if
    the target lists it) and "dense" layer); SRAM = model input + output + the
    activation arena (planned like the layout stage) + ``energy.sram_overhead_bytes`` (harness
    statics and stack) + on targets with ``energy.conv_pad_copy`` (AVR) the largest
    zero-point-padded conv input copy (edgebuild.codegen.generator.pad_copy_bytes), on those with
    ``energy.dsp_scratch`` (Cortex-M4) the DSP kernels' scratch buffers (arm_scratch_bytes). Both are
    estimates for the search; the firmware stage measures the truth.
    """
    from edgebuild.compress.lowering import lower
    from edgebuild.storage.arena import Buffer, plan_arena

    layers, alias, _ = lower(graph)
    out_name = graph.outputs[0]
    while out_name in alias:
        out_name = alias[out_name]
    costs = _costs(layers)
    code = energy.get("code_bytes") or {}
    code_bytes = sum(code.get(k, 0.0) * n for k, n in code_counts(costs, code).items())
    acts = {}
    for i, lay in enumerate(layers):
        if lay["output"] != out_name:
            acts[lay["output"]] = [int(np.prod(lay["out_shape"])), i, i]
        for t in lay["inputs"]:
            if t in acts:
                acts[t][2] = i
    arena = plan_arena([Buffer(k, *v) for k, v in acts.items()]).size if acts else 0
    io = int(np.prod(graph.shapes[graph.inputs[0]][1:])) + int(np.prod(graph.shapes[graph.outputs[0]][1:]))
    pad = 0
    if energy.get("conv_pad_copy"):
        from edgebuild.codegen.generator import pad_copy_bytes

        pad = max([pad_copy_bytes(lay) for lay, c in zip(layers, costs) if c.kind == "conv"], default=0)
    if energy.get("dsp_scratch"):
        from edgebuild.codegen.generator import arm_scratch_bytes

        pad = arm_scratch_bytes(layers, [c.kind.endswith("_sparse") for c in costs])
    return {"flash_bytes": int(sum(c.flash_bytes for c in costs) + code_bytes),
            "sram_bytes": int(io + arena + pad + energy.get("sram_overhead_bytes", 0)),
            "arena_bytes": int(arena), "pad_copy_bytes": int(pad)}


def _traffic(c: LayerCost, weight_medium: str) -> dict[str, dict[str, int]]:
    """Bytes read/written per medium: every MAC reads one weight and one activation byte."""
    f = c.features
    reads = int(f.get("macs", f.get("taps", f.get("entries", 0))))
    traffic = {"sram": {"read": reads, "write": c.out_bytes}}
    if c.kind in WEIGHTED:          # a sparse entry is two bytes: input gap (or tap) and weight
        weight_reads = 2 * reads if c.kind.endswith("_sparse") else reads
        traffic.setdefault(weight_medium, {"read": 0, "write": 0})
        traffic[weight_medium]["read"] += weight_reads
    return traffic


def apply_energy(costs: list[LayerCost], energy: dict, f_cpu: int,
                 weight_media: dict[str, str] | None = None) -> list[LayerCost]:
    """Fill cycles, latency, energy and traffic of ``costs`` (in place) from a target's ``energy``.

    ``energy``: the target's energy section as a dict (supply_v, active_current_ma,
    cycles_per_access, cycle_model); ``weight_media``: layer name -> medium of its weights
    (default flash). The cycle model is calibrated with weights in flash; weights elsewhere add
    (cycles_per_access[medium] - cycles_per_access[flash]) per weight byte read. A layer kind the
    cycle model has no entry for (say a sparse kernel never calibrated on this board) costs
    ``cycles_per_mac`` per MAC or sparse entry rather than nothing, so a search cannot mistake an
    uncalibrated kernel for a free one. Without any cycle model every cycle figure is 0 (unknown).
    """
    model = energy.get("cycle_model") or {}
    per_access = energy.get("cycles_per_access") or {}
    uj_per_cycle = energy["supply_v"] * energy["active_current_ma"] * 1e-3 / f_cpu * 1e6 if f_cpu else 0.0
    for c in costs:
        medium = (weight_media or {}).get(c.name, "flash")
        c.traffic = _traffic(c, medium)
        if c.kind in model or not model:
            cycles = float(sum(model.get(c.kind, {}).get(k, 0.0) * v for k, v in c.features.items()))
        else:   # a kind this target's model was not fitted on: its average cycles per multiply-accumulate
            cycles = float(energy.get("cycles_per_mac", 0.0) * c.features.get("macs", c.features.get("entries", 0.0)))
        if medium != "flash" and c.kind in WEIGHTED:
            cycles += (per_access.get(medium, 0.0) - per_access.get("flash", 0.0)) * c.traffic[medium]["read"]
        c.cycles = cycles
        c.latency_ms = cycles / f_cpu * 1e3 if f_cpu else 0.0
        c.energy_uj = cycles * uj_per_cycle
        c.memory_uj = {m: (t.get("read", 0) + t.get("write", 0)) * per_access.get(m, 0.0) * uj_per_cycle
                       for m, t in c.traffic.items()}
        c.compute_uj = max(c.energy_uj - sum(c.memory_uj.values()), 0.0)
    return costs


def model_features(energy: dict | None = None) -> dict[str, tuple[str, ...]]:
    """The features the cycle model of a target with ``energy`` (its energy section) is fitted on."""
    if (energy or {}).get("conv_pad_copy"):
        return dict(FEATURES, **PAD_COPY_FEATURES)
    return FEATURES


def fit_cycle_model(samples: list[tuple[str, dict[str, float], float]],
                    features: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict[str, float]]:
    """Non-negative least-squares fit of the cycle model, minimising *relative* error per layer.

    ``samples``: (kind, features, measured cycles); ``features``: kind -> feature names (default
    FEATURES; :func:`model_features` gives a target's). Returns kind -> feature -> coefficient for
    the kinds present (those in ``features`` only).
    """
    from scipy.optimize import nnls

    model = {}
    for kind, names in (features or FEATURES).items():
        rows = [(f, y) for k, f, y in samples if k == kind]
        if not rows:
            continue
        a = np.array([[f.get(n, 0.0) for n in names] for f, _ in rows], dtype=np.float64)
        y = np.array([y for _, y in rows], dtype=np.float64)
        a = a / y[:, None]                                   # relative residuals: a.x / y - 1
        scale = np.where(a.max(axis=0) > 0, a.max(axis=0), 1.0)   # columns of one magnitude
        coef, _ = nnls(a / scale, np.ones_like(y), maxiter=50 * a.shape[1])
        coef = coef / scale
        model[kind] = {n: round(float(v), 4) for n, v in zip(names, coef) if v > 0}
    return model


def predict_cycles(kind: str, features: dict[str, float], model: dict) -> float:
    """Cycles of one layer under ``model`` (kind -> feature -> coefficient)."""
    return float(sum(model.get(kind, {}).get(k, 0.0) * v for k, v in features.items()))


def totals(costs: list[LayerCost]) -> dict:
    """Whole-model sums of a cost table."""
    return {"params": sum(c.params for c in costs), "macs": sum(c.macs for c in costs),
            "weight_flash_bytes": sum(c.flash_bytes for c in costs),
            "cycles": sum(c.cycles for c in costs), "latency_ms": sum(c.latency_ms for c in costs),
            "energy_uj": sum(c.energy_uj for c in costs)}
