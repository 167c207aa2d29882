"""edgebuild against TensorFlow Lite Micro + CMSIS-NN on the Cortex-M4 (netduinoplus2), same QEMU.

For each network (the four MLPerf Tiny ones of edgebuild.model.zoo, and mnist_uno trained by
edgebuild) this benchmark:

1. converts edgebuild's float network to a full-int8 .tflite with TensorFlow's converter
   (bench/peers/models.py: layer-by-layer Keras rebuild of the ONNX graph, representative dataset);
2. builds TFLM + CMSIS-NN from upstream sources into a static library (bench/peers/tflm.py: the
   flags of TFLM's cortex_m_generic make build with OPTIMIZED_KERNEL_DIR=cmsis_nn, cached under
   --build-dir keyed on the source revisions and flags) and links it with edgebuild's own ARM
   start-up code, linker script and device harness (bench/peers/firmware.py);
3. runs it with edgebuild.sim.qemu.run_qemu (QEMU -icount, SysTick around model_run, painted
   stack) on --vectors int8 inputs and checks every output against TFLite's reference kernels
   (ai-edge-litert, OpResolverType.BUILTIN_REF);
4. builds the same float network with edgebuild (its recipe: edgebuild's own int8 quantisation),
   verified on QEMU by edgebuild itself, and prints both side by side.

Figures, per side: instructions per inference (QEMU -icount, mean over the vectors), flash
(.text incl. .rodata + .data of the ELF, arm-none-eabi-size; "model" is the .tflite flatbuffer
for TFLM, the weight/bias/requant tables of edgebuild's memory map for edgebuild), RAM (.data +
.bss + stack high-water mark; TFLM's .bss counts its arena at arena_used_bytes() + 16). Accuracy:
the zoo networks have untrained weights, so "agree" is the share of vectors whose int8 argmax
matches the float network's (reconstruction error relative to the float output for the
autoencoder); mnist_uno has real test accuracy.

Getting the sources (nothing is downloaded by this script; see docs/peers.md for the revisions
TFLM pins): check out tensorflow/tflite-micro, ARM-software/CMSIS-NN, ARM-software/CMSIS_6,
google/flatbuffers (TFLM's flatbuffers.patch applied), google/gemmlowp and google/ruy side by
side in one directory and pass --peers-src DIR, or run TFLM's
``make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads
OPTIMIZED_KERNEL_DIR=cmsis_nn TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp`` in a
tflite-micro checkout and pass --tflm DIR. Needs arm-none-eabi-g++ (apt
libstdc++-arm-none-eabi-newlib), qemu-system-arm, TensorFlow (the ``tflite`` extra) and
ai-edge-litert.

usage: python bench/peers.py --peers-src /work/peers-src [--models ds_cnn,mnist_uno]
                             [--vectors 20] [--build-dir build/peers] [--jobs 2] [--no-edgebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgebuild.errors import BudgetError, EdgebuildError  # noqa: E402
from peers import compare  # noqa: E402

MODELS = ("ds_cnn", "resnet8", "mobilenet_v1", "fc_autoencoder", "mnist_uno")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers-src", help="directory holding all six checkouts (see the docstring)")
    for opt in ("--tflm", "--cmsis-nn", "--cmsis", "--flatbuffers", "--gemmlowp", "--ruy"):
        ap.add_argument(opt, help=f"checkout of {opt[2:]} (overrides --peers-src)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS))
    ap.add_argument("--vectors", type=int, default=20, help="int8 inputs per network (>= 20)")
    ap.add_argument("--build-dir", default=str(ROOT / "build" / "peers"))
    ap.add_argument("--jobs", type=int, default=2, help="parallel compiler processes for the library")
    ap.add_argument("--build-type", default="release", choices=("release", "release_with_logs", "default"),
                    help="TFLM BUILD_TYPE (release_with_logs adds per-operator counts)")
    ap.add_argument("--generic-kernels", action="store_true",
                    help="register TFLM's all-type kernels instead of the int8-only ones (Register_*_INT8)")
    ap.add_argument("--tf-padding", action="store_true",
                    help="TF 'same' padding for stride-2 convolutions instead of PAD ops (not exactly "
                         "edgebuild's network; see bench/peers/models.py)")
    ap.add_argument("--reference-kernels", action="store_true",
                    help="TFLM's reference kernels instead of CMSIS-NN (a second cached library)")
    ap.add_argument("--no-edgebuild", action="store_true", help="only the TFLM side")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    from peers.sources import locate

    try:
        src = locate(args.peers_src, {"tflm": args.tflm, "cmsis_nn": args.cmsis_nn, "cmsis": args.cmsis,
                                      "flatbuffers": args.flatbuffers, "gemmlowp": args.gemmlowp,
                                      "ruy": args.ruy})
        names = [m for m in args.models.split(",") if m]
        unknown = sorted(set(names) - set(MODELS))
        if unknown:
            raise EdgebuildError(f"unknown network(s) {', '.join(unknown)}", file="bench/peers.py",
                                 field="--models", fix=f"use some of {', '.join(MODELS)}")
        rows = []
        for name in names:
            t0 = time.perf_counter()
            kw = dict(vectors=args.vectors, jobs=args.jobs, build_type=args.build_type,
                      with_edgebuild=not args.no_edgebuild, int8_only=not args.generic_kernels,
                      cmsis_nn=not args.reference_kernels)
            try:
                row = compare.run_network(name, src, Path(args.build_dir), tf_padding=args.tf_padding, **kw)
            except BudgetError as err:
                if args.tf_padding:
                    raise
                # The exact network does not fit TFLM on this board: say so, and measure the
                # TF-padded variant (no PAD ops) instead, marked as such in the table.
                print(f"{name}: {err}", flush=True)
                try:
                    row = compare.run_network(name, src, Path(args.build_dir), tf_padding=True, **kw)
                    row["exact_padding_error"] = str(err).splitlines()[0]
                except BudgetError as err2:
                    row = {"network": name, "error": str(err2).splitlines()[0]}
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(compare.format_row(row), flush=True)
    except EdgebuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print()
    print(compare.format_table(rows, src))
    for row in rows:
        layers = compare.format_layers(row)
        if layers:
            print()
            print(layers)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
