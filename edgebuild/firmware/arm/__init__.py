"""ARM Cortex-M support: linker script, start-up code and board header generated from a target.

Everything board-specific comes from the target file: the flash and SRAM ``base``/``size``/
``reserved`` (memory map), ``toolchain.cflags`` (an FPU ABI enables the FPU at reset) and
``uart.driver``/``uart.base`` (which UART the harness talks through). ``arm_main.c`` is the
device harness; it speaks the framed protocol of ``firmware/harness/protocol.h``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgebuild.errors import ConfigError

TEMPLATE_DIR = Path(__file__).parent / "templates"
# SRAM that must stay free above .data + .bss for the stack (checked by the linker). The harness
# and the kernels need a few hundred bytes; run_qemu reports the measured high-water mark.
MIN_STACK_BYTES = 1024
HARD_FP_FLAGS = ("-mfloat-abi=hard", "-mfloat-abi=softfp")


def _field(target: dict, path: str):
    """Value at a dotted ``path`` of the target dict, or a ConfigError naming the field."""
    value = target
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            raise ConfigError("ARM firmware needs this field to generate its memory map and "
                              "harness", file=f"targets/{target.get('name')}.yaml", field=path,
                              fix=f"add {path} to the target (see targets/netduinoplus2.yaml)")
    return value


def layout(target: dict) -> dict:
    """Memory map and board parameters the templates render, all taken from ``target``."""
    flash, sram = target["memories"]["flash"], target["memories"]["sram"]
    flags = target["toolchain"].get("cflags") or []
    return {
        "name": target["name"],
        "flash_base": _field(target, "memories.flash.base"),
        "flash_size": flash["size"],
        "flash_reserved": flash.get("reserved", 0),
        "sram_base": _field(target, "memories.sram.base"),
        "sram_length": sram["size"],
        "stack_top": sram["base"] + sram["size"],
        "min_stack": MIN_STACK_BYTES,
        "fpu": any(f in flags for f in HARD_FP_FLAGS),
        "uart_driver": _field(target, "uart.driver"),
        "uart_base": _field(target, "uart.base"),
    }


def generate(target: dict, out_dir: Path) -> dict:
    """Write link-<hash>.ld, startup.c and edgebuild_board.h for ``target`` into ``out_dir``.

    Returns the build inputs: {sources: [startup.c], include_dirs: [out_dir],
    ldflags: ['-T', link-<hash>.ld]}. Files are rewritten only when their text changes, so SCons'
    signatures stay valid across no-op rebuilds.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    values = layout(target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for template, name in (("link.ld.j2", "link-{}.ld"), ("startup.c.j2", "startup.c"),
                           ("board.h.j2", "edgebuild_board.h")):
        text = env.get_template(template).render(**values)
        # SCons does not scan linker scripts: a content hash in the name changes the link
        # command line, and with it SCons' signature, whenever the memory map changes.
        path = out_dir / name.format(hashlib.sha256(text.encode()).hexdigest()[:12])
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written[template] = path
    return {"sources": [written["startup.c.j2"]], "include_dirs": [out_dir],
            "ldflags": ["-T", str(written["link.ld.j2"])]}
