"""firmware: build the generated C twice with SCons — for the host (checked byte for byte against the
numpy int8 reference on every test vector) and for the device (the target's toolchain)."""

from __future__ import annotations

import shutil

from edgebuild.errors import VerificationError
from edgebuild.stages.common import write_json

# The host check always runs on the build machine, whatever the target board is.
HOST_CHECK = {"name": "host-check", "arch": "host", "mcu": "native", "f_cpu": 0,
              "memories": {}, "toolchain": {"cc": "gcc", "cflags": ["-O2", "-std=c99"], "ldflags": [],
                                            "apt": ["gcc", "libc6-dev"]}}


def first_mismatch(got, ref) -> str:
    """Describe the first differing sample, for error messages."""
    import numpy as np

    bad = np.nonzero((got != ref).any(axis=1))[0]
    i = int(bad[0])
    cols = np.nonzero(got[i] != ref[i])[0][:8]
    return (f"{len(bad)} of {len(ref)} samples differ; first: sample {i}, bytes {cols.tolist()}: "
            f"got {got[i][cols].tolist()}, expected {ref[i][cols].tolist()}")


def run(ctx):
    import numpy as np

    from edgebuild.firmware import build, run_host

    p = ctx.params
    sources = sorted(f for f in ctx.inputs["src"].rglob("*") if f.is_file())
    vec = np.load(ctx.inputs["q"] / "vectors.npz")
    ref = vec["outputs"]

    ctx.progress("host build")
    host = build(HOST_CHECK, sources, ctx.tmp / "host", name="model_host", harness="host")
    ctx.progress(f"host check on {len(ref)} vectors")
    got = run_host(host["exe"], vec["inputs"], output_size=ref.shape[1], workdir=ctx.tmp / "host-run")
    if not np.array_equal(got, ref):
        raise VerificationError("generated C (host build) differs from the numpy int8 reference: "
                                + first_mismatch(got, ref), fix="a codegen bug: rerun with --debug and report it")

    target = {"name": p["target"], "arch": p["arch"], "mcu": p["mcu"], "f_cpu": p["f_cpu"],
              "memories": dict(p["memories"]), "toolchain": p["toolchain"], "uart": p["uart"]}
    if p["flash_budget"] is not None:   # the recipe's budget tightens the board's limit
        fl = dict(target["memories"]["flash"])
        fl["size"] = min(fl["size"], p["flash_budget"] + fl.get("reserved", 0))
        target["memories"]["flash"] = fl
    if p["sram_budget"] is not None:
        sr = dict(target["memories"]["sram"])
        sr["size"] = min(sr["size"], p["sram_budget"])
        target["memories"]["sram"] = sr

    info = {"sources": [s.name for s in sources], "host_check": {"samples": int(len(ref)), "bit_exact": True}}
    if p["arch"] == "host":
        shutil.copy2(host["exe"], ctx.out / "model_host")
        info.update(exe="model_host", size={"flash_bytes": None, "sram_static_bytes": None})
    else:
        ctx.progress(f"{p['mcu']} build")
        dev = build(target, sources, ctx.tmp / "device", name="firmware", harness="device",
                    defines=p["toolchain"].get("defines") or {})
        for key in ("elf", "hex", "eep"):
            if dev.get(key):
                shutil.copy2(dev[key], ctx.out / dev[key].name)
                info[key] = dev[key].name
        info["size"] = dev["size"]
        if "symbols" in dev:
            info["symbols"] = dev["symbols"]    # the report's flash and SRAM maps, as linked
    write_json(ctx.out / "firmware.json", info)
