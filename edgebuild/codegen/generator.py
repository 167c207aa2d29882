"""Render a QModel + memory plan into portable C99.

Files: ``edgebuild_model.h`` (API + size/quantisation macros), ``edgebuild_model.c`` (one
kernel instance per fused layer with compile-time constants, ``model_run``),
``edgebuild_weights.h`` (constant tables with their medium's storage attribute, read in place),
``edgebuild_platform.h`` (medium access and MAC macros for ``arch``).

Kernel design (templates/kernels.c.j2): conv windows that lie fully inside the input (ranges
computed here, at generation time) run an unrolled pointer-incrementing dot product with the
input zero point folded into the bias; border windows copy one channel's valid taps into a
KH*KW patch pre-filled with the zero point and run the same dot product (exact). A fused
MaxPool takes the max of accumulators and requantises once. On AVR the MAC is an inline-asm
``ld / lpm Z+ / muls`` sequence, two taps summed in int16 before one sign-extended 32-bit add
(weights in [-127, 127] keep the pair sum within int16). The loop structure is chosen here per
layer shape for AVR: a dense conv with border windows whose input fits ``PAD_SCRATCH_MAX`` bytes
once padded first copies it into a zero-point-padded static buffer (``eb_pad``), so every window
takes the in-place dot product (no border path, no per-window range test); border-free convs step
running window pointers, a fully-inside fused pool of <= 9 windows unrolled at compile-time
offsets; dense loops run 4 MAC pairs per iteration. Requantisation's high word
``(acc * M) >> 32`` is an inline-asm 32x32 multiply (``eb_mulhi32``, no libgcc call); other
arches keep the portable C. Weights stored sparse
(edgebuild.compress.sparse, when smaller) select the ``dense_sparse`` / ``conv_sparse`` kernels,
which walk the encoded entries in place; a sparse conv reads interior taps through a per-layer
offset table and border windows through the same patch as the dense conv.

Every name that reaches C goes through ``edgebuild.model.c_identifier``; ONNX names never
appear verbatim in the output (not even in comments).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebuild.errors import ConfigError, ModelError

ARCHES = ("avr", "host", "arm")
MEDIA = ("flash", "sram", "eeprom")
CTYPES = {"int8": "int8_t", "int32": "int32_t"}
MACROS = {"conv": "conv", "dense": "dense", "maxpool": "pool", "avgpool": "pool", "add": "add",
          "concat": "concat", "lut": "lut"}


def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


def _float_literal(v: float) -> str:
    return f"{float(v):.9g}f" if "e" in f"{float(v):.9g}" or "." in f"{float(v):.9g}" \
        else f"{float(v):.9g}.0f"


def _rows(arr: np.ndarray, per_row: int = 16) -> list[str]:
    flat = [str(int(v)) for v in arr.reshape(-1)]
    if arr.dtype == np.int32:  # long literals (int is 16-bit on AVR); INT32_MIN spelled safely
        flat = [f"{v}L" if int(v) != -2 ** 31 else "(-2147483647L - 1)" for v in flat]
    return [", ".join(flat[i:i + per_row]) + "," for i in range(0, len(flat), per_row)]


def _geometry_consts(a: dict, prefix: str = "") -> dict:
    return {prefix + "KH": a["kernel"][0], prefix + "KW": a["kernel"][1],
            prefix + "SH": a["strides"][0], prefix + "SW": a["strides"][1],
            prefix + "DH": a["dilations"][0], prefix + "DW": a["dilations"][1],
            prefix + "PT": a["pads"][0], prefix + "PL": a["pads"][1],
            prefix + "PB": a["pads"][2], prefix + "PR": a["pads"][3]}


def _interior(n: int, on: int, k: int, stride: int, dil: int, pad: int) -> tuple[int, int]:
    """Output index range [o0, o1) whose windows lie fully inside an input of size n."""
    o0 = -(-pad // stride)
    o1 = (n - 1 - (k - 1) * dil + pad) // stride + 1
    o0, o1 = min(max(o0, 0), on), min(max(o1, 0), on)
    return o0, max(o0, o1)


def _dot_ops(kh: int, kw: int, rowstep: int) -> list[tuple[str, int]]:
    """Unrolled MAC sequence over one channel's KH x KW window (input pointer post-increments).

    Taps are paired ("pair": adjacent; "pairstep": a row change of 1..63 bytes in between);
    ("step", n) advances the input pointer; every row ends with a ROWSTEP advance overall.
    """
    gaps = [rowstep if (i + 1) % kw == 0 else 0 for i in range(kh * kw)]  # after tap i
    ops, i, n = [], 0, kh * kw
    while i < n:
        if i + 1 < n and (gaps[i] == 0 or 0 < gaps[i] <= 63):
            ops.append(("pair", 0) if gaps[i] == 0 else ("pairstep", gaps[i]))
            i += 2
        else:
            ops.append(("single", 0))
            i += 1
        if gaps[i - 1]:
            ops.append(("step", gaps[i - 1]))
    return ops


# Largest zero-point-padded copy of a conv input (bytes, static SRAM shared by the layers) the
# AVR kernels make so that every window takes the in-place dot product; bigger inputs keep the
# per-window border patch.
PAD_SCRATCH_MAX = 768


def _padded_extent(n: int, on: int, k: int, stride: int, dil: int, pad: int) -> int:
    """Length of the padded copy along one axis: the input at ``pad`` and every window inside."""
    return max(pad + n, (on - 1) * stride + (k - 1) * dil + 1)


def pad_copy_bytes(lay: dict) -> int:
    """SRAM bytes of the zero-point-padded input copy the AVR kernel of conv layer ``lay`` (a
    lowered/quantised layer dict) makes: 0 without border windows or above PAD_SCRATCH_MAX."""
    a = lay["attrs"]
    c, h, w = lay["in_shapes"][0]
    oh, ow = a.get("conv_out", lay["out_shape"][1:])
    (kh, kw), (sh, sw), (dh, dw), pads = a["kernel"], a["strides"], a["dilations"], a["pads"]
    if (_interior(h, oh, kh, sh, dh, pads[0]) == (0, oh)
            and _interior(w, ow, kw, sw, dw, pads[1]) == (0, ow)):
        return 0
    size = c * _padded_extent(h, oh, kh, sh, dh, pads[0]) * _padded_extent(w, ow, kw, sw, dw, pads[1])
    return size if size <= PAD_SCRATCH_MAX else 0


def _pad_geometry(d: dict, size: int) -> None:
    """Rewrite a dense conv's constants for its zero-point-padded input copy of ``size`` bytes.

    The copy holds ``C`` channels of ``HP x WP`` with the input at row ``PT``, column ``PL``;
    window (oy, ox) then starts at (oy*SH, ox*SW) of the copy and lies fully inside it.
    """
    hp = _padded_extent(d["H"], d["OH"], d["KH"], d["SH"], d["DH"], d["PT"])
    wp = _padded_extent(d["W"], d["OW"], d["KW"], d["SW"], d["DW"], d["PL"])
    d["PAD"] = {"H": d["H"], "W": d["W"], "HP": hp, "WP": wp, "PT": d["PT"], "PL": d["PL"],
                "SIZE": size}
    d.update(H=hp, W=wp, HW=hp * wp, PT=0, PL=0, OY0=0, OY1=d["OH"], OX0=0, OX1=d["OW"])


# Largest zero-point-padded input plane (bytes, static SRAM) the arm depthwise 3x3 kernel copies
# one channel at a time into; bigger planes take the im2col kernel.
DW_PAD_MAX = 4096


def arm_variant(lay: dict, sparse: bool = False) -> str | None:
    """The Cortex-M4 DSP kernel of a lowered/quantised layer (templates/arm_kernels.c.j2):
    "dw3" (depthwise 3x3, stride 1 or 2, no dilation or fused pool), "im2col" (any other conv),
    "dense", or None (sparse-stored weights and the other kinds keep the portable kernels)."""
    if sparse or lay["kind"] not in ("conv", "dense"):
        return None
    if lay["kind"] == "dense":
        return "dense"
    a = lay["attrs"]
    c = lay["in_shapes"][0][0]
    if (c // a["groups"] == 1 and tuple(a["kernel"]) == (3, 3) and tuple(a["dilations"]) == (1, 1)
            and a["strides"][0] == a["strides"][1] in (1, 2) and "pool" not in a
            and _dw_plane(lay)[2] <= DW_PAD_MAX):
        return "dw3"
    return "im2col"


def _dw_plane(lay: dict) -> tuple[int, int, int]:
    """(HP, WP, bytes) of the zero-point-padded input plane of a depthwise 3x3 conv (bytes 0 when
    the kernel reads the input in place: every window inside it and an even output width). An
    odd last output is computed as a pair too, so the copy then extends to its partner's taps."""
    a = lay["attrs"]
    _, h, w = lay["in_shapes"][0]
    oh, ow = a.get("conv_out", lay["out_shape"][1:])
    (kh, kw), (sh, sw), pads = a["kernel"], a["strides"], a["pads"]
    if (ow % 2 == 0 and _interior(h, oh, kh, sh, 1, pads[0]) == (0, oh)
            and _interior(w, ow, kw, sw, 1, pads[1]) == (0, ow)):
        return h, w, 0
    hp = _padded_extent(h, oh, kh, sh, 1, pads[0])
    wp = _padded_extent(w, ow, kw, sw, 1, pads[1])
    if ow % 2:
        wp = max(wp, sw * (ow - 1) + 4 + (sw == 2))
    return hp, wp, hp * wp


def arm_weight_order(w: np.ndarray, extra_rows: int = 0, pairs: bool = True) -> np.ndarray:
    """Weights of an arm SMLAD kernel as stored, (rows + extra_rows, k rounded up to 4): per
    output row (the other axes flattened) zero-padded to a multiple of 4; with ``pairs`` (the
    im2col convs, whose int16 columns are in natural order) every 4-group as w0 w2 w1 w3, so
    SXTB16 and SXTB16 ROR #8 of its word give the halfword pairs (w0, w1) and (w2, w3) (the dense
    kernel unpacks its int8 input the same way, so keeps the order); ``extra_rows`` zero rows
    follow, so the kernel's last block of 2 or 4 rows reads inside the table."""
    rows = w.reshape(w.shape[0], -1)
    k4 = -(-rows.shape[1] // 4) * 4
    out = np.zeros((len(rows) + extra_rows, k4), rows.dtype)
    out[:len(rows), :rows.shape[1]] = rows
    if not pairs:
        return out
    return out.reshape(len(out), -1, 4)[:, :, [0, 2, 1, 3]].reshape(len(out), k4)


def arm_extra_rows(lay: dict, variant: str | None) -> int:
    """Zero weight rows after the last one of an arm SMLAD layer: its output rows are taken in
    blocks of 2 (conv) or 4 (dense, conv with a fused max-pool) within each group."""
    if variant == "dense":
        return -lay["out_shape"][0] % 4
    if variant == "im2col":
        opg = lay["out_shape"][0] // lay["attrs"]["groups"]
        return -opg % 4 if "pool" in lay["attrs"] else opg % 2
    return 0


def arm_scratch(layers: list[dict], sparse: list[bool] | None = None) -> dict[str, int]:
    """Elements of the arm kernels' static scratch buffers for these lowered/quantised layers:
    ``col`` (int16: two im2col columns of the largest "im2col" conv, rows rounded up to whole
    words), ``pad`` (int8: the largest padded "dw3" plane) and
    ``best`` (int32: output channels per group of the widest conv with a fused max-pool)."""
    col = pad = best = 0
    for i, lay in enumerate(layers):
        v = arm_variant(lay, bool(sparse and sparse[i]))
        if v == "im2col":
            c, groups, (kh, kw) = lay["in_shapes"][0][0], lay["attrs"]["groups"], lay["attrs"]["kernel"]
            col = max(col, 2 * (-(-(c // groups * kh * kw) // 4) * 4))
            if "pool" in lay["attrs"]:
                best = max(best, lay["out_shape"][0] // groups)
        elif v == "dw3":
            pad = max(pad, _dw_plane(lay)[2])
    return {"col": col, "pad": pad, "best": best}


def arm_scratch_bytes(layers: list[dict], sparse: list[bool] | None = None) -> int:
    """Static SRAM bytes of arm_scratch (each buffer is shared by the layers, one at a time)."""
    s = arm_scratch(layers, sparse)
    return 2 * s["col"] + s["pad"] + 4 * s["best"]


def _layer_consts(lay: dict, qm, arch: str = "host", sparse: bool = False) -> dict:
    """Compile-time constants of one layer, as consumed by templates/kernels.c.j2."""
    q, a, kind = lay["q"], lay["attrs"], lay["kind"]
    base = {"ZO": q["zp_out"], "LO": q["act_min"], "HI": q["act_max"]}
    if kind == "conv":
        c, h, w = lay["in_shapes"][0]
        co = lay["out_shape"][0]
        oh, ow = a.get("conv_out", lay["out_shape"][1:])
        cpg = c // a["groups"]
        kh, kw = a["kernel"]
        d = dict(base, **_geometry_consts(a), C=c, H=h, W=w, HW=h * w, CO=co, OH=oh, OW=ow,
                 CPG=cpg, OPG=co // a["groups"], KHKW=kh * kw, KSIZE=cpg * kh * kw,
                 ZP=q["zp_in"], POOL="pool" in a)
        d["OY0"], d["OY1"] = _interior(h, oh, kh, d["SH"], d["DH"], d["PT"])
        d["OX0"], d["OX1"] = _interior(w, ow, kw, d["SW"], d["DW"], d["PL"])
        d["PAD"] = None
        if arch == "avr" and not sparse and pad_copy_bytes(lay):
            _pad_geometry(d, pad_copy_bytes(lay))
        h, w = d["H"], d["W"]
        d["BORDER"] = (d["OY0"], d["OY1"], d["OX0"], d["OX1"]) != (0, oh, 0, ow)
        row = d["DH"] * w
        d["ROWSTEP"] = row - kw if d["DW"] == 1 else row
        d["CHSTEP"] = h * w - kh * row
        d["DOT_OPS"] = _dot_ops(kh, kw, d["ROWSTEP"]) if d["DW"] == 1 and kh * kw <= 25 else None
        d["OFFS"] = [ky * row + kx * d["DW"] for ky in range(kh) for kx in range(kw)]  # sparse taps
        if "pool" in a:
            d.update(_geometry_consts(a["pool"], "P"), POH=lay["out_shape"][1],
                     POW=lay["out_shape"][2])
            # every pool window inside the conv output: no per-window range computation
            d["POOL_FULL"] = (d["PPT"] == 0 and d["PPL"] == 0
                              and (d["POH"] - 1) * d["PSH"] + d["PKH"] <= oh
                              and (d["POW"] - 1) * d["PSW"] + d["PKW"] <= ow)
            # input offsets of the pool window's conv windows after the first
            d["POOL_OFFS"] = [wy * d["SH"] * w + wx * d["SW"] for wy in range(d["PKH"])
                              for wx in range(d["PKW"])][1:]
        # loop structure: AVR convs without border windows step window pointers (a fully
        # inside pool of <= 9 windows unrolled); the rest index windows through _ACC
        d["LOOP"] = "acc"
        d["KP"] = -(-d["KSIZE"] // 4) * 4     # arm SMLAD: weight rows padded to whole words
        if arch == "arm" and arm_variant(lay, sparse) == "dw3":
            hp, wp, size = _dw_plane(lay)
            d["DWPAD"] = {"HP": hp, "WP": wp} if size else None
        if arch == "avr" and not d["BORDER"]:
            if not d["POOL"]:
                d["LOOP"] = "rows"
            elif d["POOL_FULL"] and d["PKH"] * d["PKW"] <= 9:
                d["LOOP"] = "pool_unrolled"
        return d
    if kind == "dense":
        n_in = lay["in_shapes"][0][0]
        # AVR: 4 MAC pairs per loop iteration (the loop's 16-bit count and branch cost ~5
        # cycles a pair otherwise); 1 elsewhere
        return dict(base, IN=n_in, INP=-(-n_in // 4) * 4, OUT=lay["out_shape"][0],
                    UNROLL=4 if arch == "avr" and n_in >= 16 else 1)
    if kind == "avgpool" and q.get("requant") == "tflite_mean":
        c, h, w = lay["in_shapes"][0]
        return dict(base, C=c, HW=h * w, ZP=q["zp_in"], COUNT=q["count"], M=q["mult"], S=q["shift"])
    if kind in ("maxpool", "avgpool"):
        c, h, w = lay["in_shapes"][0]
        return dict(base, **_geometry_consts(a), C=c, H=h, W=w, HW=h * w, OH=lay["out_shape"][1],
                    OW=lay["out_shape"][2], ZP=q["zp_in"], INCLUDE_PAD=a.get("include_pad", 0))
    n = int(np.prod(lay["out_shape"]))
    if kind == "add" and q.get("requant") == "tflite":
        return dict(base, N=n, Z0=q["zp_in"][0], Z1=q["zp_in"][1], LS=q["left_shift"], M0=q["in_mult"][0],
                    S0=q["in_shift"][0], M1=q["in_mult"][1], S1=q["in_shift"][1], M=q["mult"], S=q["shift"])
    if kind == "add":
        return dict(base, N=n, Z0=q["zp_in"][0], Z1=q["zp_in"][1], A0=q["a"][0], A1=q["a"][1],
                    M=q["mult"], R=q["shift"])
    if kind == "concat":
        axis = a["axis"]
        parts = [{"INNER": int(np.prod(s[axis:])), "Z": z, "M": m, "R": r}
                 for s, z, m, r in zip(lay["in_shapes"], q["zp_in"], q["mult"], q["shift"])]
        return dict(base, OUTER=int(np.prod(lay["out_shape"][:axis])), PARTS=parts)
    return dict(base, N=n)


def _requant_define(lay: dict) -> str:
    """The body of ``#define eb_requant`` for a layer of the TFLite variants (QModel
    ``q["requant"]``), or "" (edgebuild's own eb_requant): the kernels keep calling eb_requant."""
    q = lay["q"]
    if q.get("requant") == "tflite" and lay["kind"] in ("conv", "dense"):
        return " eb_requant_tfl"
    if q.get("requant") == "tflite_fc_double":
        return (f"(acc, m, r, zp, lo, hi) eb_requant_tfl_fcd((acc), (m), {float(q['s_in']).hex()}f, "
                f"{float(q['s_out']).hex()}f, (zp), (lo), (hi))")
    return ""


def _check_limits(qmodel, arch: str) -> None:
    """Reject what the kernels cannot run: weights of -128 (the AVR MAC pairs two products in
    int16), kernels of >255 taps, and on AVR tensors of >32767 elements (16-bit indices)."""
    for lay in qmodel.layers:
        a = lay["attrs"]
        w = qmodel.arrays[lay["tables"]["weight"]] if "weight" in lay["tables"] else None
        if w is not None and w.size and int(w.min()) < -127:
            raise ModelError(f"layer '{lay['name']}' has int8 weights of -128; the kernels need "
                             "[-127, 127]", field=lay["name"], fix="re-run the quantise stage")
        if lay["kind"] == "conv" and a["kernel"][0] * a["kernel"][1] > 255:
            raise ModelError(f"layer '{lay['name']}': kernel {a['kernel']} has more than 255 taps",
                             field=lay["name"], fix="use kernels of at most 255 taps")
        if arch == "avr":
            sizes = [int(np.prod(s)) for s in lay["in_shapes"]] + [int(np.prod(lay["out_shape"]))]
            sizes += [qmodel.stored(t).size for t in lay["tables"].values()]
            if max(sizes) > 32767:
                raise ModelError(f"layer '{lay['name']}' has a tensor of {max(sizes)} elements; "
                                 "AVR kernels index with 16-bit integers", field=lay["name"],
                                 fix="use smaller layers for AVR targets")


def _placement(plan_map, name: str, what: str):
    try:
        return plan_map[name]
    except KeyError:
        raise ConfigError(f"the memory plan has no placement for {what} '{name}'",
                          field=f"plan.{what}", fix="re-run the layout stage for this model")


def generate(qmodel, plan, out_dir, *, arch: str) -> list[Path]:
    """Write edgebuild_model.h/.c, edgebuild_weights.h and edgebuild_platform.h to ``out_dir``.

    ``plan.weights[name].medium`` selects each table's storage; ``plan.activations[name].offset``
    places intermediate tensors in the ``plan.arena_size`` byte arena. Returns the paths written.
    """
    from edgebuild.model import c_identifier

    if arch not in ARCHES:
        raise ConfigError(f"unknown arch '{arch}'", field="arch", fix=f"use one of {ARCHES}")
    _check_limits(qmodel, arch)
    taken: set[str] = {"model_run", "input", "output", "eb_arena", "eb_krange", "eb_requant",
                       "eb_int", "eb_pad", "eb_mulhi32", "eb_tfl_srdhm", "eb_tfl_rdbpot",
                       "eb_tfl_mbqm", "eb_requant_tfl", "eb_requant_tfl_fcd", "eb_col", "eb_best",
                       "eb_ld32", "eb_h16", "eb_sxtb16_ror8"}
    weights, acts = qmodel.layout_request()
    sparse = [lay["kind"] in ("dense", "conv") and qmodel.stored(lay["tables"]["weight"]) is not
              qmodel.arrays[lay["tables"]["weight"]] for lay in qmodel.layers]
    variants = [arm_variant(lay, sp) if arch == "arm" else None
                for lay, sp in zip(qmodel.layers, sparse)]
    arm_ordered = {lay["tables"]["weight"]: (arm_extra_rows(lay, v), v == "im2col")
                   for lay, v in zip(qmodel.layers, variants) if v in ("im2col", "dense")}
    tables, ids = [], {}
    for ent in weights:
        pl = _placement(plan.weights, ent["name"], "weights")
        if pl.medium not in MEDIA:
            raise ConfigError(f"unknown medium '{pl.medium}' for '{ent['name']}'",
                              field="plan.weights", fix=f"use one of {MEDIA}")
        arr = qmodel.stored(ent["name"])
        if ent["name"] in arm_ordered:
            arr = arm_weight_order(arr, *arm_ordered[ent["name"]])
        ids[ent["name"]] = {"id": c_identifier("t_" + ent["name"], taken),
                            "medium": pl.medium.upper()}
        tables.append(dict(ids[ent["name"]], kind=ent["kind"], layer=ent["layer"],
                           nbytes=ent["nbytes"], ctype=CTYPES[arr.dtype.name],
                           count=arr.size, rows=_rows(arr)))
    arena = int(plan.arena_size)
    offsets = {}
    for ent in acts:
        pl = _placement(plan.activations, ent["name"], "activations")
        if pl.offset < 0 or pl.offset + ent["nbytes"] > arena:
            raise ConfigError(f"activation '{ent['name']}' at offset {pl.offset} does not fit the "
                              f"{arena}-byte arena", field="plan.activations",
                              fix="re-run the layout stage")
        offsets[ent["name"]] = pl.offset

    def expr(t: str) -> str:
        if t == qmodel.input_name:
            return "input"
        if t == qmodel.output_name:
            return "output"
        return f"(eb_arena + {offsets[t]})"

    layers = []
    rq_variants = {lay["q"].get("requant") for lay in qmodel.layers} - {None}
    if "tflite_fc_double" in rq_variants and arch == "avr":
        raise ModelError("an int8 FULLY_CONNECTED of a .tflite is scaled in IEEE double by TFLite's "
                         "reference kernel; avr-gcc has no 64-bit double", field="target",
                         fix="build the .tflite for an ARM or host target, or give its float model (quantised "
                             "by edgebuild) for AVR")
    arm_macros = {"dw3": "dw_arm", "im2col": "conv_arm", "dense": "dense_arm"}
    for i, lay in enumerate(qmodel.layers):
        macro = arm_macros[variants[i]] if variants[i] else \
            MACROS[lay["kind"]] + ("_sparse" if sparse[i] else "")
        layers.append({"fn": c_identifier(f"eb_l{i}_{lay['name']}", taken), "kind": lay["kind"],
                       "macro": macro, "macs": lay["macs"],
                       "c": _layer_consts(lay, qmodel, arch, sparse[i]),
                       "t": {k: ids[n] for k, n in lay["tables"].items()},
                       "rq": _requant_define(lay),
                       "in_exprs": [expr(t) for t in lay["inputs"]],
                       "out_expr": expr(lay["output"])})
    for L, lay in zip(layers, qmodel.layers):
        if lay["kind"] == "add" and lay["q"].get("requant") == "tflite":
            L["macro"] = "add_tfl"
        if lay["q"].get("requant") == "tflite_mean":
            L["macro"] = "mean_tfl"
    scratch = arm_scratch(qmodel.layers, sparse) if arch == "arm" else {"col": 0, "pad": 0, "best": 0}
    pad_size = max([L["c"]["PAD"]["SIZE"] for L in layers if L["c"].get("PAD")] + [scratch["pad"]],
                   default=0)
    col_size, best_size = scratch["col"], scratch["best"]
    ctx = {"arch": arch, "layers": layers, "tables": tables, "arena_size": arena,
           "tflite": bool(rq_variants), "tflite_double": "tflite_fc_double" in rq_variants,
           "pad_size": pad_size, "col_size": col_size, "best_size": best_size,
           "macs": sum(l["macs"] for l in qmodel.layers),
           "input_size": qmodel.input_size, "output_size": qmodel.output_size,
           "input_scale": _float_literal(qmodel.input_scale),
           "input_zero_point": qmodel.input_zero_point,
           "output_scale": _float_literal(qmodel.output_scale),
           "output_zero_point": qmodel.output_zero_point}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = _env()
    written = []
    for template, name in (("platform.h.j2", "edgebuild_platform.h"),
                           ("weights.h.j2", "edgebuild_weights.h"),
                           ("model.h.j2", "edgebuild_model.h"),
                           ("model.c.j2", "edgebuild_model.c")):
        path = out / name
        path.write_text(env.get_template(template).render(**ctx))
        written.append(path)
    return written
