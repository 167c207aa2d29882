"""Run edgebuild ARM device firmware in QEMU and talk to its harness over the emulated UART.

QEMU's first serial port is a ``stdio`` chardev on pipes, so this module speaks the framed
protocol of firmware/harness/protocol.h directly (ready, infer/output, stack), the same exchange
the simavr runner drives. The harness times model_run with SysTick on the processor clock. QEMU
runs with ``-icount shift=S``: every instruction advances virtual time by exactly 2**S ns, and
SysTick counts that virtual time at ``f_cpu``, so ticks = instructions * 2**S * f_cpu / 1e9.
S is chosen so that one instruction is more than 4 ticks: the harness' two readings (model and
empty calibration call) are each within one tick, so the rounded instruction count is exact.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from pathlib import Path

from edgebuild.errors import ConfigError, ToolchainError, VerificationError
from edgebuild.sim.vectors import prepare_vectors

SYNC = bytes([0xA5, 0x5A])
KIND_READY, KIND_INFER, KIND_OUTPUT, KIND_ERROR, KIND_STACK, KIND_LAYERS = b"RIOESL"
CRC_INIT = 0xFFFF
# Minimum SysTick ticks per instruction for exact counts (see the module docstring).
TICKS_PER_INSTRUCTION_FLOOR = 4.0
SEMIHOSTING_FAULT_EXIT = 1   # the start-up fault handler's SYS_EXIT status in QEMU


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16 with the reflected CCITT polynomial 0x8408 (avr-libc's _crc_ccitt_update)."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def frame(kind: int, payload: bytes = b"") -> bytes:
    """A host -> device frame: sync, kind, payload, little-endian CRC over kind + payload."""
    body = bytes([kind]) + payload
    return SYNC + body + crc16(body).to_bytes(2, "little")


def icount_shift(f_cpu: int) -> int:
    """Smallest -icount shift giving more than TICKS_PER_INSTRUCTION_FLOOR SysTick ticks per
    instruction at ``f_cpu`` Hz."""
    shift = 0
    while (2 ** shift) * f_cpu / 1e9 <= TICKS_PER_INSTRUCTION_FLOOR:
        shift += 1
    return shift


def qemu_command(elf: Path, target: dict, shift: int) -> list[str]:
    """The qemu-system-* command line for ``elf`` on ``target`` (UART 0 on stdin/stdout)."""
    sim = target.get("simulator") or {}
    return [sim["executable"], "-M", sim["machine"], "-nodefaults", "-display", "none",
            "-monitor", "none", "-chardev", "stdio,id=eb,signal=off", "-serial", "chardev:eb",
            "-icount", f"shift={shift}", "-semihosting-config", "enable=on,target=native",
            "-kernel", str(elf)]


def _check_target(target: dict) -> None:
    file = f"targets/{target.get('name')}.yaml"
    sim = target.get("simulator") or {}
    for field in ("executable", "machine"):
        if not sim.get(field):
            raise ConfigError("a QEMU target needs the emulator and its machine model", file=file,
                              field=f"simulator.{field}",
                              fix="set simulator.executable (e.g. qemu-system-arm) and "
                                  "simulator.machine (e.g. netduinoplus2)")
    if shutil.which(sim["executable"]) is None:
        apt = " ".join(sim.get("apt") or [])
        raise ToolchainError(f"'{sim['executable']}' was not found on PATH", file=file,
                             field="simulator.executable",
                             fix=f"sudo apt-get install {apt}" if apt
                             else f"install '{sim['executable']}' and put it on PATH")
    if not target.get("f_cpu"):
        raise ConfigError("QEMU instruction counts need the SysTick clock", file=file,
                          field="f_cpu", fix="set f_cpu to the clock QEMU models for the machine")


class _Link:
    """Byte pipe to the device through QEMU's stdio chardev, with one wall-clock deadline."""

    def __init__(self, proc: subprocess.Popen, deadline: float, describe):
        self.proc, self.deadline, self.describe = proc, deadline, describe
        self.pending = b""
        os.set_blocking(proc.stdout.fileno(), False)
        os.set_blocking(proc.stdin.fileno(), False)

    def _wait(self, want_read: bool, what: str) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise VerificationError(f"no reply from the device while waiting for {what} "
                                    f"({self.describe()}): firmware hung or too slow",
                                    fix="raise timeout_s, or check the firmware with the host "
                                        "harness")
        reads = [self.proc.stdout] if want_read else []
        writes = [self.proc.stdin] if self.pending else []
        ready_r, ready_w, _ = select.select(reads, writes, [], min(left, 0.5))
        if ready_w:
            try:
                sent = os.write(self.proc.stdin.fileno(), self.pending)
            except BrokenPipeError:
                raise _Exited(what) from None
            self.pending = self.pending[sent:]

    def send(self, data: bytes) -> None:
        """Queue ``data``; it is written while the device drains the UART."""
        self.pending += data
        while self.pending:
            self._wait(False, "the device to read its input")

    def read(self, n: int, what: str) -> bytes:
        """Exactly ``n`` bytes from the device, else VerificationError."""
        out = b""
        while len(out) < n:
            try:
                chunk = os.read(self.proc.stdout.fileno(), n - len(out))
            except BlockingIOError:
                chunk = None
            if chunk == b"":
                raise _Exited(what)
            if chunk:
                out += chunk
            else:
                self._wait(True, what)
        return out


class _Exited(Exception):
    """QEMU closed its end of the UART (it exited)."""


def _read_kind(link: _Link, what: str) -> int:
    """The kind byte of the next frame (after its sync bytes)."""
    head = link.read(3, what)
    if head[:2] != SYNC:
        raise VerificationError(f"corrupted frame from device: {head.hex()} does not start with "
                                f"the sync sequence ({what})", fix="rebuild the firmware")
    return head[2]


def _read_frame(link: _Link, expect: int, payload_size: int, what: str) -> bytes:
    kind = _read_kind(link, what)
    if kind == KIND_ERROR:
        link.read(2, what)
        raise VerificationError(f"device rejected the host frame (checksum mismatch seen by the "
                                f"device) while waiting for {what}",
                                fix="check the UART link; rebuild the firmware")
    if kind != expect:
        raise VerificationError(f"corrupted frame from device: kind 0x{kind:02x} while "
                                f"waiting for {what}", fix="rebuild the firmware")
    return _payload(link, kind, payload_size, what)


def _payload(link: _Link, kind: int, size: int, what: str, head: bytes = b"") -> bytes:
    """``head`` (payload bytes already read) plus the next ``size`` bytes of a frame of ``kind``,
    checked against the frame's CRC."""
    rest = link.read(size + 2, what)
    payload, crc = head + rest[:size], int.from_bytes(rest[size:], "little")
    if crc16(bytes([kind]) + payload) != crc:
        raise VerificationError(f"corrupted frame from device: bad CRC ({what})",
                                fix="check the UART link; rebuild the firmware")
    return payload


def _read_layers(link: _Link, what: str) -> list[int] | None:
    """The 'L' reply (protocol.h): per-layer SysTick ticks since the measurement started, or None
    when the firmware answers 'E' (built without EB_LAYER_HOOK: no per-layer timing)."""
    kind = _read_kind(link, what)
    if kind == KIND_ERROR:
        link.read(2, what)
        return None
    if kind != KIND_LAYERS:
        raise VerificationError(f"corrupted frame from device: kind 0x{kind:02x} while "
                                f"waiting for {what}", fix="rebuild the firmware")
    n = link.read(1, what)
    payload = _payload(link, KIND_LAYERS, 4 * n[0], what, head=n)
    return [int.from_bytes(payload[1 + 4 * i:5 + 4 * i], "little") for i in range(n[0])]


def run_qemu(elf: Path, *, target: dict, inputs, output_size: int, workdir: Path,
             timeout_s: float = 600) -> dict:
    """Run ``inputs`` (N, in_size) int8 through the firmware ``elf`` in QEMU.

    ``target`` is the target dict (simulator.executable/machine, f_cpu). Returns {outputs
    (N, output_size) int8, instructions (N,) int64 executed by model_run (exact, from SysTick
    under -icount), device_ticks (N,) int64 as the harness reported them, stack_bytes (SRAM
    stack high-water mark), wall_seconds, icount_shift, layer_instructions (mean instructions from
    the start of the measurement, or the previous layer's end, to each layer's end; empty unless
    the firmware was built with EB_LAYER_HOOK)}. A missing emulator raises
    ToolchainError naming the apt packages; a hang (``timeout_s`` wall clock), a fault, a
    checksum failure or a malformed frame raise VerificationError.
    """
    import numpy as np

    _check_target(target)
    inputs, workdir = prepare_vectors(inputs, workdir)
    n, in_size = inputs.shape
    shift = icount_shift(int(target["f_cpu"]))
    stderr_path = workdir / "qemu_stderr.txt"
    outputs = np.zeros((n, output_size), dtype=np.int8)
    ticks = np.zeros(n, dtype=np.int64)
    layer_ticks, timed = [], True        # per vector, while the firmware answers 'L' requests
    state = {"vec": 0}
    start = time.perf_counter()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(qemu_command(Path(elf), target, shift), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err)
        link = _Link(proc, time.monotonic() + timeout_s,
                     lambda: f"vector {state['vec']} of {n}, {elf}")
        try:
            ready = _read_frame(link, KIND_READY, 6, "the ready frame")
            got_in, got_out = (int.from_bytes(ready[i:i + 2], "little") for i in (0, 2))
            if (got_in, got_out) != (in_size, output_size):
                raise VerificationError(f"firmware model sizes are input {got_in} / output "
                                        f"{got_out} bytes, expected {in_size} / {output_size}",
                                        fix="rebuild the firmware from the current model")
            for k in range(n):
                state["vec"] = k
                link.send(frame(KIND_INFER, inputs[k].tobytes()))
                reply = _read_frame(link, KIND_OUTPUT, output_size + 4, f"output {k}")
                outputs[k] = np.frombuffer(reply[:output_size], dtype=np.int8)
                ticks[k] = int.from_bytes(reply[output_size:], "little")
                if timed:
                    link.send(frame(KIND_LAYERS))
                    marks = _read_layers(link, f"layer times {k}")
                    timed = marks is not None
                    if timed:
                        layer_ticks.append(marks)
            link.send(frame(KIND_STACK))
            stack_bytes = int.from_bytes(_read_frame(link, KIND_STACK, 2, "the stack frame"),
                                         "little")
        except _Exited as exc:
            status = proc.wait()
            detail = stderr_path.read_text(errors="replace").strip()[-2000:]
            kind = ("firmware crashed (fault handler)" if status == SEMIHOSTING_FAULT_EXIT
                    else f"QEMU exited with status {status}")
            raise VerificationError(f"QEMU run of {elf} on {target['simulator']['machine']}: "
                                    f"{kind} while waiting for {exc} (vector {state['vec']})"
                                    + (f": {detail}" if detail else ""),
                                    fix="check the firmware with the host harness and the "
                                        "numpy reference; rebuild it from clean sources") from None
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                pipe.close()
    wall = time.perf_counter() - start
    ticks_per_instruction = (2 ** shift) * int(target["f_cpu"]) / 1e9
    layer_instructions = []
    if layer_ticks and len({len(m) for m in layer_ticks}) == 1:
        ends = np.rint(np.asarray(layer_ticks, dtype=np.float64) / ticks_per_instruction)
        layer_instructions = np.diff(ends, axis=1, prepend=0.0).mean(axis=0).tolist()
    return {
        "outputs": outputs,
        "instructions": np.rint(ticks / ticks_per_instruction).astype(np.int64),
        "device_ticks": ticks,
        "stack_bytes": stack_bytes,
        "wall_seconds": wall,
        "icount_shift": shift,
        "layer_instructions": layer_instructions,
    }
