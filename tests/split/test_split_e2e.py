"""A split build through the real CLI on a tiny recipe: the Uno runs the head (conv1) in simavr on
held-out samples, the server runner finishes every inference from a CRC-32 frame, and the final
int8 outputs equal the unsplit build's reference byte for byte. The reference comes from a
second build of the same recipe with partition.mode none (the quantise stage's outputs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from edgebuild_testlib import recipe_dir

from edgebuild.errors import VerificationError
from edgebuild.partition import encode_frame
from edgebuild.partition.server import TailRunner

pytestmark = pytest.mark.skipif(not (shutil.which("avr-gcc") and shutil.which("gcc")),
                                reason="avr-gcc and gcc are needed (./install.sh installs them)")

SAMPLES = 120
TINY_SPLIT = textwrap.dedent(f"""\
    defaults:
      - targets@target: uno
      - _self_
    name: tiny_split
    dataset: {{name: mnist5k, resize: [14, 14], split: {{test: 300, val: 100, seed: 0}}, limit: 1500}}
    model:
      train:
        arch:
          - conv: {{out: 4, kernel: 3, pad: 1}}
          - relu: {{}}
          - maxpool: {{kernel: 2}}
          - flatten: {{}}
          - dense: {{out: 10}}
        epochs: 2
        batch_size: 32
        lr: 0.01
    compression: {{quantize: {{calibration_samples: 200}}}}
    partition:
      mode: at
      at: conv1
      link: {{bandwidth_bps: 115200, latency_ms: 20}}
    verify: {{samples: {SAMPLES}}}
    """)


def cli(*args, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "edgebuild.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"edgebuild {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = recipe_dir(tmp_path_factory, "split", {"tiny_split": TINY_SPLIT})
    cli("recipes/tiny_split.yaml", "--cache", "cache", cwd=root)
    cli("recipes/tiny_split.yaml", "partition.mode=none", "--cache", "cache", "--build-dir", "build/unsplit",
        cwd=root)
    return root / "build" / "tiny_split", root / "build" / "unsplit"


@pytest.fixture(scope="module")
def device_cut(builds):
    """The head's outputs (cut tensors) as the simulated Uno computes them."""
    from edgebuild.sim import run_simavr

    split, _ = builds
    fw = json.loads((split / "firmware" / "firmware.json").read_text())
    vec = np.load(split / "partition" / "vectors.npz")
    sim = run_simavr(split / "firmware" / fw["elf"], mcu="atmega328p", f_cpu=16_000_000,
                     inputs=vec["inputs"][:SAMPLES], output_size=vec["outputs"].shape[1], baud=115200,
                     workdir=split.parent / "sim")
    return sim["outputs"]


def test_report_carries_the_split(builds):
    split, unsplit = builds
    r = json.loads((split / "report.json").read_text())
    p = r["partition"]
    assert p["mode"] == "at" and p["chosen"]["layers_on_device"] == ["conv1"]
    assert p["chosen"]["sent_bytes"] == 4 * 7 * 7
    assert [c["k"] for c in p["candidates"]] == [0, 1, 2]
    assert [c["chosen"] for c in p["candidates"]] == [False, True, False]
    for key in ("device_ms", "transfer_ms", "server_ms", "device_energy_uj", "total_ms"):
        assert p["chosen"][key] >= 0, key
    assert p["table"]["bytes"] == np.prod(p["table"]["shape"]) and 0 < p["table"]["lookup_seconds_median"] < 1e-3
    assert p["server"]["final_bit_exact"] == SAMPLES
    assert (split / p["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "edge_split_lookup" in (split / "partition" / "table.h").read_text()
    assert r["verify"] == {"samples": SAMPLES, "bit_exact": SAMPLES, "simulator": "simavr"}
    assert r["model"]["layers"] == 2 and len(r["layers"]) == 1       # whole model vs device head
    u = json.loads((unsplit / "report.json").read_text())
    assert u["partition"] == {"mode": "none"}
    assert r["accuracy"]["device"] == u["accuracy"]["device"]        # same predictions, split or not
    assert r["memory"]["flash_bytes"] < u["memory"]["flash_bytes"]  # the dense layer left the board


def test_device_head_plus_server_tail_equals_the_unsplit_reference(builds, device_cut):
    split, unsplit = builds
    vec = np.load(split / "partition" / "vectors.npz")
    ref = np.load(unsplit / "partition" / "vectors.npz")["outputs"][:SAMPLES]   # unsplit int8 reference
    assert len(device_cut) == SAMPLES >= 100
    np.testing.assert_array_equal(device_cut, vec["outputs"][:SAMPLES])
    runner = TailRunner(split / "partition" / "tail")
    final = np.stack([runner.finish(encode_frame(1, row.reshape(4, 7, 7))) for row in device_cut])
    assert final.dtype == np.int8
    np.testing.assert_array_equal(final, ref)


def test_corrupt_and_truncated_frames_are_rejected(builds, device_cut):
    split, _ = builds
    runner = TailRunner(split / "partition" / "tail")
    frame = encode_frame(1, device_cut[0].reshape(4, 7, 7))
    flipped = bytearray(frame)
    flipped[len(frame) // 2] ^= 0x80
    with pytest.raises(VerificationError, match="CRC"):
        runner.finish(bytes(flipped))
    with pytest.raises(VerificationError, match="corrupt"):
        runner.finish(frame[: len(frame) - 40])
