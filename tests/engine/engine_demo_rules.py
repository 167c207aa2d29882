"""Small test-only rule actions for the engine tests (nothing about neural networks).

Every action appends one JSON line per event to the file named by $EB_TEST_LOG (if set), so
tests can see exactly which actions ran, when, and in which process.
"""

import json
import os
import time

from edgebuild.errors import DatasetError


def record(ctx, event: str, **extra) -> None:
    """Append an event line for this rule to $EB_TEST_LOG."""
    log = os.environ.get("EB_TEST_LOG")
    if log:
        line = json.dumps({"rule": ctx.name, "event": event, "t": time.time(),
                           "pid": os.getpid(), **extra})
        with open(log, "a") as fh:
            fh.write(line + "\n")


def source(ctx):
    """Writes the params it got, plus a nested file, into out."""
    record(ctx, "run")
    (ctx.out / "params.json").write_text(json.dumps(ctx.params, sort_keys=True))
    (ctx.out / "sub" / "deep").mkdir(parents=True)
    (ctx.out / "sub" / "deep" / "blob.bin").write_bytes(bytes(range(256)) * 4)


def slow_writer(ctx):
    """Writes its params, then four files with short pauses (a window for SIGKILL).
    EB_TEST_SLOW sets the pause (seconds), so a child process can be made slow enough to kill."""
    (ctx.out / "params.json").write_text(json.dumps(ctx.params, sort_keys=True))
    pause = float(os.environ.get("EB_TEST_SLOW", "0.02"))
    for i in range(4):
        time.sleep(pause)
        (ctx.out / f"chunk{i}.bin").write_bytes(bytes([i]) * 50_000)
    record(ctx, "run")


def parity(ctx):
    """Output depends only on seed % 2 (so seed 1 -> 3 gives identical bytes)."""
    record(ctx, "run")
    (ctx.out / "parity.txt").write_text(str(ctx.params["seed"] % 2))


def concat(ctx):
    """Concatenates every file of every input (sorted), after a header naming the present
    inputs and the params."""
    record(ctx, "run", inputs=sorted(ctx.inputs))
    parts = [(",".join(sorted(ctx.inputs)) + ";" + json.dumps(ctx.params)).encode()]
    for name in sorted(ctx.inputs):
        for path in sorted(p for p in ctx.inputs[name].rglob("*") if p.is_file()):
            parts.append(path.read_bytes())
    (ctx.out / "concat.bin").write_bytes(b"|".join(parts))


def copy_file(ctx):
    """Copies the user file (or every file of a user directory) named by files.src."""
    record(ctx, "run")
    src = ctx.files["src"]
    paths = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    (ctx.out / "copy.bin").write_bytes(b"".join(p.read_bytes() for p in paths))


def sleepy(ctx):
    """Sleeps params.seconds, recording start and end times."""
    record(ctx, "start")
    ctx.progress("sleeping")
    time.sleep(ctx.params["seconds"])
    (ctx.out / "done.txt").write_text(ctx.name)
    ctx.log(f"slept {ctx.params['seconds']}s")
    record(ctx, "end")


def half_then_hang(ctx):
    """Writes half its outputs, announces it, then sleeps $EB_TEST_HANG seconds (to be killed
    with SIGKILL)."""
    (ctx.out / "part1.bin").write_bytes(b"x" * 100_000)
    record(ctx, "half")
    time.sleep(float(os.environ.get("EB_TEST_HANG", "0")))
    (ctx.out / "part2.bin").write_bytes(b"y" * 100_000)
    record(ctx, "run")


def counted(ctx):
    """Appends to the counter file named by $EB_TEST_COUNTER (outside the cache), slowly."""
    with open(os.environ["EB_TEST_COUNTER"], "a") as fh:
        fh.write(f"{ctx.name} {os.getpid()}\n")
    time.sleep(0.5)
    (ctx.out / "value.txt").write_text(f"{ctx.name}:{ctx.params['n']}")
    record(ctx, "run")


def user_error(ctx):
    """Fails the way a user-caused problem does."""
    record(ctx, "run")
    (ctx.out / "partial.txt").write_text("should never be stored")
    raise DatasetError("no samples found", file="data/x.npz", field="dataset.path",
                       fix="point dataset.path at a real file")


def crash(ctx):
    """Fails with a programming error."""
    record(ctx, "run")
    return 1 / 0



def script(ctx):
    """Writes a shell script; executable when params.exec is true."""
    path = ctx.out / "run.sh"
    path.write_text("#!/bin/sh\necho hello\n")
    if ctx.params.get("exec"):
        os.chmod(path, 0o755)
