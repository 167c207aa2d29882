"""The memory maps as linked: flash and SRAM split into code and each model table, from the ELF.

The firmware stage records the ELF's sized symbols (``nm -S --size-sort``: edgebuild/firmware/build.py
`symbol_sizes`); here they become report.json's ``linker_map`` rows, whose per-medium totals are
exactly the figures of ``size`` (flash = .text + .data, static SRAM = .data + .bss) plus, for SRAM,
the measured stack high-water mark, so the plot, the memory table and avr-size agree.
"""

from __future__ import annotations

from edgebuild.model.names import c_identifier

CODE_TYPES, RODATA_TYPES, DATA_TYPES = set("tTwW"), set("rR"), set("dDbBgGsS")
_SRAM_NAMES = {"eb_arena": ("activation arena", "arena"), "eb_input": ("model input", "io"),
               "eb_output": ("model output", "io"),
               "eb_pad": ("padded conv input (AVR)", "scratch")}


def _table_index(memory_map: list[dict]) -> dict[str, dict]:
    """C identifier of each model table (as the code generator names it: ``t_<name>``) -> its plan row."""
    index = {}
    for row in memory_map:
        if row.get("kind") != "activation":
            index.setdefault(c_identifier("t_" + str(row["name"]), set()), row)
    return index


def linker_map(symbols: list[list], size: dict, memory_map: list[dict], stack_bytes: int | None) -> list[dict]:
    """Rows {name, medium, kind, offset, nbytes} for flash and SRAM, laid end to end per medium.

    flash: ``code`` (every function, libgcc's included), each model table, then ``startup, vectors,
    constants, .data init`` for the rest of .text + .data. sram: the activation arena, the model's
    input and output buffers, tables placed in SRAM, ``other static data`` and the stack.
    """
    tables = _table_index(memory_map)
    flash_tables, sram_rows, code = [], [], 0
    for name, nbytes, kind in symbols:
        row = tables.get(name)
        medium = row and row.get("medium")
        if row is not None and medium == "flash" and kind in CODE_TYPES | RODATA_TYPES:
            flash_tables.append({"name": row["name"], "kind": row["kind"], "nbytes": nbytes, "symbol": name})
        elif row is not None and medium != "sram":
            continue            # a table in EEPROM or external storage: the plan's rows show those media
        elif kind in CODE_TYPES:
            code += nbytes
        elif kind in DATA_TYPES:
            if name in _SRAM_NAMES:
                label, k = _SRAM_NAMES[name]
                sram_rows.append({"name": label, "kind": k, "nbytes": nbytes, "symbol": name})
            elif row is not None:
                sram_rows.append({"name": row["name"], "kind": row["kind"], "nbytes": nbytes, "symbol": name})
    flash = [{"name": "code", "kind": "code", "nbytes": code}, *sorted(flash_tables, key=lambda r: r["name"])]
    rest = int(size.get("flash_bytes") or 0) - sum(r["nbytes"] for r in flash)
    flash.append({"name": "startup, vectors, constants, .data init", "kind": "other", "nbytes": max(rest, 0)})
    sram = sorted(sram_rows, key=lambda r: (r["kind"] != "arena", r["name"]))
    rest = int(size.get("sram_static_bytes") or 0) - sum(r["nbytes"] for r in sram)
    sram.append({"name": "other static data", "kind": "other", "nbytes": max(rest, 0)})
    if stack_bytes:
        sram.append({"name": "stack (high-water)", "kind": "stack", "nbytes": int(stack_bytes)})
    rows = []
    for medium, items in (("flash", flash), ("sram", sram)):
        offset = 0
        for r in items:
            if r["nbytes"] > 0:
                rows.append({**r, "medium": medium, "offset": offset})
                offset += r["nbytes"]
    return rows
