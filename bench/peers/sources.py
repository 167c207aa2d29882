"""Where the peer sources are, and which revision each one is (the library cache key).

The benchmark never downloads anything: the user points it at checkouts (see bench/peers.py and
docs/peers.md). Two layouts are understood:

- ``--peers-src DIR`` holding ``tflite-micro``, ``CMSIS-NN``, ``CMSIS_6``, ``flatbuffers``,
  ``gemmlowp`` and ``ruy`` (any of them may also be given on its own with --tflm, --cmsis-nn, ...);
- a tflite-micro checkout on which TFLM's own ``make ... third_party_downloads`` ran: the
  dependencies are then found under ``tensorflow/lite/micro/tools/make/downloads/`` (``cmsis``,
  ``cmsis_nn``, ``flatbuffers``, ``gemmlowp``, ``ruy``).
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgebuild.errors import ConfigError

# name -> (directory under --peers-src, directory under TFLM's downloads, a file that must exist)
LAYOUT = {
    "tflm": ("tflite-micro", None, "tensorflow/lite/micro/micro_interpreter.cc"),
    "cmsis_nn": ("CMSIS-NN", "cmsis_nn", "Include/arm_nnfunctions.h"),
    "cmsis": ("CMSIS_6", "cmsis", "CMSIS/Core/Include/cmsis_gcc.h"),
    "flatbuffers": ("flatbuffers", "flatbuffers", "include/flatbuffers/flatbuffers.h"),
    "gemmlowp": ("gemmlowp", "gemmlowp", "fixedpoint/fixedpoint.h"),
    "ruy": ("ruy", "ruy", "ruy/profiler/instrumentation.h"),
}
OPTION = {"tflm": "--tflm", "cmsis_nn": "--cmsis-nn", "cmsis": "--cmsis", "flatbuffers": "--flatbuffers",
          "gemmlowp": "--gemmlowp", "ruy": "--ruy"}
TFLM_DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"


@dataclass(frozen=True)
class Sources:
    tflm: Path
    cmsis_nn: Path
    cmsis: Path
    flatbuffers: Path
    gemmlowp: Path
    ruy: Path

    def revisions(self) -> dict[str, str]:
        return {name: revision(getattr(self, name)) for name in LAYOUT}


def revision(path: Path) -> str:
    """The git commit of ``path`` if it is a checkout, its ``.revision`` file (written by the
    extraction commands of docs/peers.md) otherwise, else a hash of its file names and sizes."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=20)
        if out.returncode == 0 and (path / ".git").exists():
            return out.stdout.strip()
    except OSError:
        pass
    marker = path / ".revision"
    if marker.is_file():
        return marker.read_text().strip()
    digest = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file():
            digest.update(f"{f.relative_to(path)}:{f.stat().st_size}\n".encode())
    return "tree-" + digest.hexdigest()[:16]


def locate(peers_src: str | None, given: dict[str, str | None]) -> Sources:
    """The checkouts from ``--peers-src`` and/or the per-project options; ConfigError naming the
    missing option and how to obtain the sources otherwise."""
    found = {}
    tflm_given = given.get("tflm") or (str(Path(peers_src) / LAYOUT["tflm"][0]) if peers_src else None)
    for name, (sub, download_sub, probe) in LAYOUT.items():
        candidates = []
        if given.get(name):
            candidates.append(Path(given[name]))
        else:
            if peers_src:
                candidates.append(Path(peers_src) / sub)
            if download_sub and tflm_given:
                candidates.append(Path(tflm_given) / TFLM_DOWNLOADS / download_sub)
        path = next((c for c in candidates if (c / probe).is_file()), None)
        if path is None:
            tried = ", ".join(str(c) for c in candidates) or "nothing (no option given)"
            raise ConfigError(f"the {name} sources were not found (looked for {probe} in {tried})",
                              file="bench/peers.py", field=OPTION[name],
                              fix="pass --peers-src DIR or " + OPTION[name] + " DIR; docs/peers.md "
                                  "says which revision of which repository to check out")
        found[name] = path.resolve()
    return Sources(**found)
