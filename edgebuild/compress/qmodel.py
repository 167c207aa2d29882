"""QModel: the quantised model (json + raw tables) and the golden numpy int8 reference.

Every integer operation here is mirrored exactly by the generated C kernels
(edgebuild/codegen/templates); see edgebuild.compress.fixedpoint for the requantisation
contract. Layer ``q`` parameters:

- conv/dense: ``zp_in``; tables weight (int8, conv (CO, C/g, KH, KW), dense (OUT, IN)),
  bias (int32 ``b_q - zp_in * sum(w_q[c])``: the input zero point folded in), requant
  (int32 (CO, 2) rows ``(M, r)``). Fused MaxPool: max of accumulators, then one requantisation.
- maxpool/avgpool: output qparams equal input qparams; avgpool = round-half-away(sum / count).
- add: ``acc = (x1 - zp1) * a1 + (x2 - zp2) * a2`` (a_i int16), one ``(M, r)``.
- concat: per input ``acc = (x - zp_i) << 16``, ``(M_i, r_i)``.
- lut: 256-entry int8 table indexed by ``x + 128``.
All layers then add ``zp_out`` and clamp to ``[act_min, act_max]``.

Second variant, ``q["requant"] == "tflite"`` (a .tflite imported with its own quantisation,
edgebuild.tflite): conv/dense requant rows are TFLite ``(M, shift)`` applied by
``fixedpoint.tfl_multiply`` (two roundings); add is TFLite's int8 ADD: ``x_i' =
tfl_multiply((x_i - zp_i) << left_shift, in_mult[i], in_shift[i])``, then
``tfl_multiply(x_1' + x_2', mult, shift)``. A dense layer is ``"tflite_fc_double"``:
TFLite's reference kernel scales in IEEE double (``fixedpoint.tfl_fc_double``), its requant rows
holding the float32 bits of the weight scales. An avgpool ``"tflite_mean"`` is TFLite's int8 MEAN
over H and W: ``tfl_multiply(sum(x) - zp_in * count, mult, shift)`` (1/count folded into mult).
Other pools are the same in every variant.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import fixedpoint as fp
from .windows import conv_sum, padded, valid_counts, windows

META_FILE = "qmodel.json"
DATA_FILE = "qmodel.bin"
CHUNK = 200


def _round_div(s: np.ndarray, n) -> np.ndarray:
    """Integer division rounding half away from zero (C: see avgpool template)."""
    n = np.asarray(n, dtype=np.int64)
    return np.where(s >= 0, (s + n // 2) // n, -((-s + n // 2) // n))


class QModel:
    """An int8 model: layer list (json-able dicts) plus named constant tables (numpy arrays)."""

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray]):
        self.meta = meta
        self.arrays = arrays

    # -- attributes ---------------------------------------------------------------------------
    input_shape = property(lambda self: tuple(self.meta["input_shape"]))
    input_size = property(lambda self: int(np.prod(self.meta["input_shape"])))
    output_size = property(lambda self: int(np.prod(self.meta["output_shape"])))
    input_scale = property(lambda self: self.meta["input_scale"])
    input_zero_point = property(lambda self: self.meta["input_zero_point"])
    output_scale = property(lambda self: self.meta["output_scale"])
    output_zero_point = property(lambda self: self.meta["output_zero_point"])
    layers = property(lambda self: self.meta["layers"])
    notes = property(lambda self: self.meta["notes"])
    input_name = property(lambda self: self.meta["input"])
    output_name = property(lambda self: self.meta["output"])

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory) -> list[Path]:
        """Write qmodel.json + qmodel.bin (deterministic bytes); returns the two paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        index, blobs, offset = {}, [], 0
        for name in sorted(self.arrays):
            a = np.ascontiguousarray(self.arrays[name])
            raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
            index[name] = {"dtype": a.dtype.name, "shape": list(a.shape), "offset": offset}
            blobs.append(raw)
            offset += len(raw)
        meta = dict(self.meta, arrays=index)
        (d / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        (d / DATA_FILE).write_bytes(b"".join(blobs))
        return [d / META_FILE, d / DATA_FILE]

    @classmethod
    def load(cls, directory) -> "QModel":
        """Read a QModel written by :meth:`save`."""
        d = Path(directory)
        meta = json.loads((d / META_FILE).read_text())
        data = (d / DATA_FILE).read_bytes()
        arrays = {}
        for name, ent in meta.pop("arrays").items():
            dt = np.dtype(ent["dtype"]).newbyteorder("<")
            count = int(np.prod(ent["shape"]))
            arrays[name] = np.frombuffer(data, dt, count, ent["offset"]).astype(
                ent["dtype"]).reshape(ent["shape"])
        return cls(meta, arrays)

    # -- quantisation helpers -----------------------------------------------------------------
    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float input (N, *input_shape) -> int8 with the input scale / zero point."""
        q = np.round(np.asarray(x, dtype=np.float64) / self.input_scale) + self.input_zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize_output(self, q: np.ndarray) -> np.ndarray:
        """int8 outputs -> float32 real values."""
        return ((np.asarray(q, dtype=np.float64) - self.output_zero_point)
                * self.output_scale).astype(np.float32)

    def stored(self, name: str) -> np.ndarray:
        """Table ``name`` as the device stores it: a dense or conv layer's weights sparse-encoded
        (edgebuild.compress.sparse) when that is smaller, every other table as it is."""
        from .sparse import device_weights

        if any(lay["kind"] in ("dense", "conv") and lay["tables"].get("weight") == name for lay in self.layers):
            return device_weights(self.arrays[name])
        return self.arrays[name]

    def layout_request(self) -> tuple[list[dict], list[dict]]:
        """(weights, activations) for the memory planner.

        weights: one entry per constant table the device stores, ``{"name", "nbytes", "layer"
        (index of the first layer using it), "kind" ("weight" | "bias" | "requant" | "lut")}``.
        activations: one entry per intermediate tensor, ``{"name", "nbytes", "first", "last"}``
        (producing / last consuming layer index); the model input and output are excluded.
        """
        weights, seen = [], set()
        for i, lay in enumerate(self.layers):
            for kind, name in lay["tables"].items():
                if name not in seen:
                    seen.add(name)
                    weights.append({"name": name, "nbytes": int(self.stored(name).nbytes),
                                    "layer": i, "kind": kind})
        acts, owned = {}, {self.input_name, self.output_name}
        for i, lay in enumerate(self.layers):
            if lay["output"] not in owned:
                acts[lay["output"]] = {"name": lay["output"],
                                       "nbytes": int(np.prod(lay["out_shape"])),
                                       "first": i, "last": i}
            for t in lay["inputs"]:
                if t in acts:
                    acts[t]["last"] = i
        return weights, list(acts.values())

    # -- edge/server split ----------------------------------------------------------------------
    def cut_points(self) -> list[int]:
        """Split indices ``k`` (0 .. len(layers)) where exactly one tensor crosses from
        ``layers[:k]`` to ``layers[k:]``: the model input (k = 0), else ``layers[k-1]``'s output.
        A skip connection spanning the boundary makes a k unrealisable."""
        n, ok = len(self.layers), []
        for k in range(n + 1):
            cut = self.input_name if k == 0 else self.layers[k - 1]["output"]
            early = {self.input_name} | {lay["output"] for lay in self.layers[:k]}
            if all(t == cut or t not in early for lay in self.layers[k:] for t in lay["inputs"]):
                ok.append(k)
        return ok

    def head(self, k: int) -> "QModel":
        """The model of ``layers[:k]`` (1 <= k <= len(layers)); its output is the cut tensor
        ``layers[k-1]["output"]`` with that tensor's shape, scale and zero point."""
        self._check_cut(k, low=1)
        last = self.layers[k - 1]
        meta = dict(self.meta, layers=self.layers[:k], output=last["output"],
                    output_shape=list(last["out_shape"]), output_scale=last["scale_out"],
                    output_zero_point=last["q"]["zp_out"])
        return QModel(meta, self._tables_of(meta["layers"]))

    def tail(self, k: int) -> "QModel":
        """The model of ``layers[k:]`` (0 <= k <= len(layers)) whose input is the cut tensor
        (shape as ``head(k)`` outputs it); k = len(layers) gives the identity (no layers)."""
        self._check_cut(k, low=0)
        if k == 0:
            return QModel(dict(self.meta), dict(self.arrays))
        last = self.layers[k - 1]
        layers = self.layers[k:]
        meta = dict(self.meta, layers=layers, input=last["output"], input_shape=list(last["out_shape"]),
                    input_scale=last["scale_out"], input_zero_point=last["q"]["zp_out"])
        if not layers:
            meta.update(output=last["output"], output_shape=list(last["out_shape"]),
                        output_scale=last["scale_out"], output_zero_point=last["q"]["zp_out"])
        return QModel(meta, self._tables_of(layers))

    def _check_cut(self, k: int, low: int) -> None:
        if not low <= k <= len(self.layers) or k not in self.cut_points():
            names = [lay["name"] for lay in self.layers]
            raise ModelError(f"cannot split the int8 model after {k} of its layers {names}: "
                             "the boundary must lie inside the model and only one tensor may cross it",
                             field="partition.at",
                             fix=f"split after one of layers {[names[i - 1] for i in self.cut_points() if i]}")

    def _tables_of(self, layers: list[dict]) -> dict[str, np.ndarray]:
        names = {t for lay in layers for t in lay["tables"].values()}
        return {n: a for n, a in self.arrays.items() if n in names}

    # -- golden reference ---------------------------------------------------------------------
    def run(self, x_q: np.ndarray) -> np.ndarray:
        """Run the int8 reference on (N, *input_shape) int8; returns (N, output_size) int8."""
        x_q = np.asarray(x_q)
        if x_q.dtype != np.int8:
            raise TypeError("QModel.run expects int8 input")
        x_q = x_q.reshape((-1,) + self.input_shape)
        outs = [self._run_chunk(x_q[i:i + CHUNK]) for i in range(0, len(x_q), CHUNK)]
        if not outs:
            return np.zeros((0, self.output_size), dtype=np.int8)
        return np.concatenate(outs).reshape(len(x_q), self.output_size)

    def _run_chunk(self, x: np.ndarray) -> np.ndarray:
        vals = {self.input_name: x}
        for lay in self.layers:
            xs = [vals[t].reshape((len(x),) + tuple(s))
                  for t, s in zip(lay["inputs"], lay["in_shapes"])]
            vals[lay["output"]] = getattr(self, "_" + lay["kind"])(lay, xs)
        return vals[self.output_name]

    def _requant_finish(self, lay, acc, mult, shift):
        q = lay["q"]
        if q.get("requant") == "tflite_fc_double":
            scaled = fp.tfl_fc_double(acc, mult, q["s_in"], q["s_out"])
        else:
            scaled = (fp.tfl_multiply if q.get("requant") == "tflite" else fp.requantize)(acc, mult, shift)
        return fp.finish(scaled, q["zp_out"], q["act_min"], q["act_max"])

    def _conv(self, lay, xs):
        a, q = lay["attrs"], lay["q"]
        w = self.arrays[lay["tables"]["weight"]]
        rq = self.arrays[lay["tables"]["requant"]]
        bias = self.arrays[lay["tables"]["bias"]].astype(np.int64)
        bias_raw = bias + q["zp_in"] * w.reshape(len(w), -1).astype(np.int64).sum(axis=1)
        hw = a.get("conv_out", lay["out_shape"][1:])
        xc = xs[0].astype(np.float64) - q["zp_in"]
        acc = np.rint(conv_sum(padded(xc, a, hw, 0.0), w, a, a["groups"], hw)).astype(np.int64)
        acc += bias_raw[None, :, None, None]
        y = self._requant_finish(lay, acc, rq[None, :, 0, None, None], rq[None, :, 1, None, None])
        if "pool" in a:
            p, ohw = a["pool"], lay["out_shape"][1:]
            y = windows(padded(y.astype(np.int16), p, ohw, -129), p, ohw).max(axis=(-1, -2))
        return y.astype(np.int8)

    def _dense(self, lay, xs):
        q = lay["q"]
        w = self.arrays[lay["tables"]["weight"]]
        rq = self.arrays[lay["tables"]["requant"]]
        bias = self.arrays[lay["tables"]["bias"]].astype(np.int64)
        xm = xs[0].reshape(len(xs[0]), -1).astype(np.float64)
        acc = np.rint(xm @ w.T.astype(np.float64)).astype(np.int64) + bias
        return self._requant_finish(lay, acc, rq[:, 0], rq[:, 1])

    def _maxpool(self, lay, xs):
        a, q, ohw = lay["attrs"], lay["q"], lay["out_shape"][1:]
        y = windows(padded(xs[0].astype(np.int16), a, ohw, -129), a, ohw).max(axis=(-1, -2))
        return np.clip(y, q["act_min"], q["act_max"]).astype(np.int8)

    def _avgpool(self, lay, xs):
        a, q, ohw = lay["attrs"], lay["q"], lay["out_shape"][1:]
        if q.get("requant") == "tflite_mean":
            acc = xs[0].astype(np.int64).sum(axis=(2, 3), keepdims=True) - q["zp_in"] * q["count"]
            return fp.finish(fp.tfl_multiply(acc, q["mult"], q["shift"]), q["zp_out"], q["act_min"], q["act_max"])
        s = windows(padded(xs[0].astype(np.int64), a, ohw, 0), a, ohw).sum(axis=(-1, -2))
        hw = lay["in_shapes"][0][1:]
        n_valid = valid_counts(hw, a, ohw, False)
        n = n_valid
        if a["include_pad"]:
            n = valid_counts(hw, a, ohw, True)
            s = s + q["zp_in"] * (n - n_valid)
        return np.clip(_round_div(s, n), q["act_min"], q["act_max"]).astype(np.int8)

    def _add(self, lay, xs):
        q = lay["q"]
        if q.get("requant") == "tflite":
            acc = sum(fp.tfl_multiply((x.astype(np.int64) - z) << q["left_shift"], m, s)
                      for x, z, m, s in zip(xs, q["zp_in"], q["in_mult"], q["in_shift"]))
            return self._requant_finish(lay, acc, q["mult"], q["shift"])
        acc = ((xs[0].astype(np.int64) - q["zp_in"][0]) * q["a"][0]
               + (xs[1].astype(np.int64) - q["zp_in"][1]) * q["a"][1])
        return self._requant_finish(lay, acc, q["mult"], q["shift"])

    def _concat(self, lay, xs):
        q = lay["q"]
        parts = [self._requant_finish(lay, (x.astype(np.int64) - z) << 16, m, r)
                 for x, z, m, r in zip(xs, q["zp_in"], q["mult"], q["shift"])]
        return np.concatenate(parts, axis=lay["attrs"]["axis"] + 1)

    def _lut(self, lay, xs):
        return self.arrays[lay["tables"]["lut"]][xs[0].astype(np.int16) + 128]
