"""The edge server's side of a split model: read a cut-tensor frame sent by the device, check it,
and finish the inference with the int8 reference of the tail (bit-exact with the unsplit model).

A tail directory (written by the partition stage) holds ``qmodel/`` (the tail QModel, whose
input is the cut tensor) and ``cut.json`` (``cut_id``, the frame's tensor id; ``tensor``;
``shape``; ``scale``; ``zero_point``). The partition directory also holds the adaptive table
(``table.npz`` + the legend in ``partition.json``), which ``load_table`` reads for run-time
re-partitioning.

Usage: ``python -m edgebuild.partition.server TAIL_DIR FRAME_FILE...`` prints, per frame, the
int8 outputs and their argmax; a corrupt or truncated frame exits with status 2 and the reason.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import EdgebuildError, VerificationError
from .frame import decode_frame
from .table import AdaptiveTable

CUT_FILE = "cut.json"


class TailRunner:
    """A loaded tail: ``finish(frame)`` decodes one frame and returns the model's int8 outputs."""

    def __init__(self, tail_dir):
        from edgebuild.compress.qmodel import QModel

        self.dir = Path(tail_dir)
        self.model = QModel.load(self.dir / "qmodel")
        self.cut = json.loads((self.dir / CUT_FILE).read_text())

    def finish(self, frame: bytes) -> np.ndarray:
        """Decode ``frame`` (VerificationError if it is corrupt, truncated, or carries another
        tensor or shape than this tail's cut) and run the tail; returns (output_size,) int8."""
        tensor_id, tensor = decode_frame(frame)
        if tensor_id != self.cut["cut_id"]:
            raise VerificationError(f"frame carries tensor {tensor_id}, this server finishes cut "
                                    f"{self.cut['cut_id']} ('{self.cut['tensor']}')", field="tensor_id",
                                    file=str(self.dir), fix="deploy the tail built with this firmware")
        if list(tensor.shape) != list(self.model.input_shape):
            raise VerificationError(f"frame tensor shape {list(tensor.shape)} differs from the cut "
                                    f"'{self.cut['tensor']}' {list(self.model.input_shape)}",
                                    field="frame", file=str(self.dir),
                                    fix="deploy the tail built with this firmware")
        return self.model.run(tensor[None])[0]


def finish(tail_dir, frame: bytes) -> np.ndarray:
    """Finish one inference: the tail in ``tail_dir`` run on the cut tensor in ``frame``."""
    return TailRunner(tail_dir).finish(frame)


def load_table(partition_dir) -> AdaptiveTable:
    """The adaptive split table the partition stage wrote (table.npz + partition.json legend)."""
    d = Path(partition_dir)
    legend = json.loads((d / "partition.json").read_text())["table"]
    with np.load(d / "table.npz") as z:
        arrays = {k: z[k] for k in ("bandwidths", "energies", "srams", "table")}
    return AdaptiveTable(**arrays, splits=[frozenset(s["layers_on_device"]) for s in legend["splits"]],
                         cuts=[tuple(s["cut"]) for s in legend["splits"]], objective=legend["objective"])


def lookup_seconds_median(table: AdaptiveTable, repeats: int = 31, batch: int = 1000) -> float:
    """Median wall time of one ``table.lookup`` over ``repeats`` batches of ``batch`` random
    contexts spanning (and exceeding) the grid."""
    rng = np.random.default_rng(0)
    finite = table.energies[np.isfinite(table.energies)]
    contexts = list(zip(rng.uniform(0, 2 * table.bandwidths[-1], batch),
                        rng.uniform(0, 2 * (finite[-1] if len(finite) else 1.0), batch),
                        rng.uniform(0, 2 * table.srams[-1], batch)))
    per_lookup = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b, e, s in contexts:
            table.lookup(b, e, s)
        per_lookup.append((time.perf_counter() - t0) / batch)
    return float(np.median(per_lookup))


def main(argv: list[str] | None = None) -> int:
    """Command line: finish every frame file given; prints outputs and argmax per frame."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m edgebuild.partition.server TAIL_DIR FRAME_FILE...", file=sys.stderr)
        return 2
    try:
        runner = TailRunner(args[0])
        for name in args[1:]:
            out = runner.finish(Path(name).read_bytes())
            print(f"{name}: argmax {int(out.argmax())} outputs {out.tolist()}")
    except (EdgebuildError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
