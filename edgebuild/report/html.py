"""The human report: one self-contained HTML page rendered from the report.json dict.

Every value is looked up defensively: a missing key, a ``None`` or a missing section renders as
"—" and drops the plot that needed it; the page is still produced.
"""

from __future__ import annotations

import base64
import html as html_lib
from pathlib import Path

from edgebuild.report import plots
from edgebuild.report.json_io import atomic_write_text

DASH = "—"
TEMPLATE_DIR = Path(__file__).parent / "templates"


def _get(d, *keys):
    """``d[k1][k2]...`` or None when any level is missing or not a dict."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt_int(v) -> str:
    """``12,345`` for numbers, "—" for None, the text itself otherwise."""
    if v is None:
        return DASH
    return f"{round(v):,}" if _is_num(v) else str(v)


def fmt_float(v, digits: int = 2, unit: str = "") -> str:
    """Fixed-point number with optional unit, "—" for None."""
    if v is None:
        return DASH
    return f"{v:,.{digits}f}{unit}" if _is_num(v) else str(v)


def fmt_pct(v) -> str:
    """An accuracy given as a fraction in [0, 1] shown as a percentage."""
    return fmt_float(v * 100, 2, " %") if _is_num(v) else fmt_float(v)


def fmt_bool(v) -> str:
    """yes / no / —."""
    return DASH if v is None else ("yes" if v else "no")


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _memory_rows(mem: dict | None) -> list[dict]:
    rows = []
    for label, used_key, limit_key in (("flash (.text + .data, as linked)", "flash_bytes", "flash_limit"),
                                       ("SRAM (static)", "sram_static_bytes", "sram_limit"),
                                       ("SRAM (peak, with stack)", "sram_peak_bytes", "sram_limit"),
                                       ("EEPROM", "eeprom_bytes", "eeprom_limit"),
                                       ("activation arena + model I/O", "sram_arena_with_io_bytes", "sram_limit"),
                                       ("TFLite Micro arena (estimate)", ("tflm_arena_estimate", "total"),
                                        "sram_limit")):
        keys = used_key if isinstance(used_key, tuple) else (used_key,)
        used, limit = _get(mem, *keys), _get(mem, limit_key)
        if used is None and keys[0] in ("sram_arena_with_io_bytes", "tflm_arena_estimate"):
            continue      # reports from before these figures existed
        pct = 100 * used / limit if _is_num(used) and _is_num(limit) and limit > 0 else None
        rows.append({"label": label, "used": fmt_int(used), "limit": fmt_int(limit),
                     "pct": fmt_float(pct, 1, " %"), "bar": min(pct, 100) if pct is not None else 0,
                     "over": pct is not None and pct > 100})
    return rows


def _capacities(report: dict, media) -> dict[str, int | None]:
    caps = {}
    for medium in media:
        limit = _get(report, "memory", f"{medium}_limit")
        caps[medium] = limit if _is_num(limit) and limit > 0 else None
    return caps


def _fallback_map(mem: dict | None) -> list[dict]:
    """Without a memory_map, draw one 'used' segment per medium from the totals."""
    rows = []
    for medium, key in (("flash", "flash_bytes"), ("sram", "sram_peak_bytes"),
                        ("eeprom", "eeprom_bytes")):
        used = _get(mem, key)
        if _is_num(used):
            rows.append({"name": "used", "medium": medium, "offset": 0, "nbytes": used, "kind": "used"})
    return rows


def _map_rows(report: dict) -> tuple[list[dict], dict[str, str]]:
    """The memory map's rows and a note per medium saying where its figures come from.

    With the linker's symbols (report.json ``linker_map``) flash and SRAM show code, each table,
    the arena and the stack, summing to the memory table's figures; EEPROM and external media,
    and reports without symbols, show the storage plan's model tables only, and say so.
    """
    plan = [r for r in (_get(report, "memory_map") or []) if isinstance(r, dict)]
    linked = [r for r in (_get(report, "linker_map") or []) if isinstance(r, dict)]
    notes = {}
    if linked:
        media = {r.get("medium") for r in linked}
        rows = linked + [r for r in plan if r.get("medium") not in media and r.get("kind") != "activation"]
        for m in media:
            notes[m] = "as linked (nm)" + (", stack measured" if m == "sram" else "")
    else:
        rows = plan
    for m in {r.get("medium") for r in rows} - set(notes):
        notes[m] = "model tables only (storage plan)"
    if not rows:
        rows = _fallback_map(_get(report, "memory"))
        notes = {r["medium"]: "totals only" for r in rows}
    return rows, notes


def _images(report: dict) -> dict[str, str | None]:
    rows, notes = _map_rows(report)
    images: dict[str, str | None] = {"memory": None, "memory_alt": None, "layers": None, "arena": None,
                                     "partition": None}
    if rows:
        segments = plots.memory_map_segments(rows)
        caps = _capacities(report, segments)
        images["memory"] = _b64(plots.memory_map_png(segments, caps, notes))
        images["memory_alt"] = "memory map — " + "; ".join(plots.memory_map_titles(segments, caps, notes).values())
    rows = [r for r in (_get(report, "memory_map") or []) if isinstance(r, dict)]
    acts = [r for r in rows if r.get("kind") == "activation"
            and r.get("first") is not None and r.get("last") is not None]
    if acts:
        base = min(int(r["offset"]) for r in acts)
        extent = max(int(r["offset"]) + int(r["nbytes"]) for r in acts) - base
        names = [str(layer.get("name")) for layer in (_get(report, "layers") or []) if isinstance(layer, dict)]
        images["arena"] = _b64(plots.arena_png(acts, extent, names))
    layers = [layer for layer in (_get(report, "layers") or []) if isinstance(layer, dict)]
    if layers:
        images["layers"] = _b64(plots.layers_png(layers))
    return images


def _layer_rows(layers) -> list[dict]:
    rows = []
    for layer in layers or []:
        if not isinstance(layer, dict):
            continue
        macs, cycles = layer.get("macs"), layer.get("cycles")
        per_mac = cycles / macs if _is_num(cycles) and _is_num(macs) and macs else None
        rows.append({"name": layer.get("name", DASH), "op": layer.get("op", DASH),
                     "macs": fmt_int(macs), "params": fmt_int(layer.get("params")),
                     "cycles": fmt_int(cycles), "per_mac": fmt_float(per_mac, 2),
                     "predicted": fmt_int(layer.get("predicted_cycles")),
                     "error": (fmt_float(100 * layer["prediction_error"], 1, " %")
                               if _is_num(layer.get("prediction_error")) else DASH),
                     "energy": fmt_float(layer.get("energy_uj"), 0)})
    return rows


def _stage_rows(stages) -> list[dict]:
    if not isinstance(stages, dict):
        return []
    rows = []
    for name, s in stages.items():
        s = s if isinstance(s, dict) else {}
        key = s.get("key")
        rows.append({"name": name, "status": s.get("status") or DASH,
                     "seconds": fmt_float(s.get("seconds"), 2, " s"),
                     "key": str(key)[:12] if key else DASH, "full_key": str(key or "")})
    return rows


STAGES_BEGIN, STAGES_END = "<!--eb:stages-->", "<!--/eb:stages-->"


def stages_html(stages) -> str:
    """The "Build stages" section's body: one row per rule (ran / cached / cutoff, seconds, key).

    Plain string building, no jinja2: the build publishes the page again with this section
    filled in after every build, no-op rebuilds included (see `fill_stages`).
    """
    rows = _stage_rows(stages)
    if not rows:
        return '<p class="muted">—</p>'
    esc = html_lib.escape
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    body = "".join(f'<tr><td>{esc(r["name"])}</td><td>{esc(r["status"])}</td><td class="num">{esc(r["seconds"])}'
                   f'</td><td><code title="{esc(r["full_key"])}">{esc(r["key"])}</code></td></tr>\n' for r in rows)
    return (f'<p>{esc(summary)}</p>\n<table>\n<tr><th>stage</th><th>status</th><th class="num">time</th>'
            f'<th>key</th></tr>\n{body}</table>')


def fill_stages(page: str, stages) -> str:
    """``page`` (a rendered report.html) with its "Build stages" section showing ``stages``."""
    start, end = page.find(STAGES_BEGIN), page.find(STAGES_END)
    if start < 0 or end < start:
        return page
    return page[:start + len(STAGES_BEGIN)] + stages_html(stages) + page[end:]


def _artifact_rows(artifacts) -> list[tuple[str, str]]:
    if not isinstance(artifacts, dict):
        return []
    rows = []
    for name, value in artifacts.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value) or DASH
        rows.append((name, DASH if value is None else str(value)))
    return rows


def _partition_rows(part) -> dict | None:
    """The split table: one row per candidate cut, the chosen one marked; None when not split."""
    if not isinstance(part, dict) or part.get("mode") in (None, "none"):
        return None
    rows = []
    for c in part.get("candidates") or []:
        if not isinstance(c, dict):
            continue
        on_device = c.get("layers_on_device") or []
        rows.append({"device": ", ".join(on_device) or "(none: server only)",
                     "sent": fmt_int(c.get("sent_bytes")), "device_ms": fmt_float(c.get("device_ms"), 1),
                     "transfer_ms": fmt_float(c.get("transfer_ms"), 1), "server_ms": fmt_float(c.get("server_ms"), 2),
                     "energy": fmt_float(c.get("device_energy_uj"), 0), "total_ms": fmt_float(c.get("total_ms"), 1),
                     "chosen": bool(c.get("chosen"))})
    table = _get(part, "table") or {}
    lookup = _get(table, "lookup_seconds_median")
    return {"mode": part.get("mode"), "objective": part.get("objective") or DASH, "rows": rows,
            "table": f"{fmt_int(_get(table, 'bytes'))} B, grid {table.get('shape', DASH)}, lookup "
                     + (fmt_float(lookup * 1e6, 2, " µs") if _is_num(lookup) else DASH)}


def _score_rows(report: dict, acc, drop) -> list[tuple[str, str]]:
    """Accuracy rows, or for regression/anomaly tasks the MSE (and AUC) rows."""
    task = _get(report, "task") or {}
    if task.get("metric") == "mse":
        rows = [(f"{who} MSE", fmt_float(task.get(f"{key}_mse"), 6)) for who, key in
                (("float (host)", "float"), ("int8 (host reference)", "int8_host"), ("device (simulator)", "device"))]
        if task.get("float_auc") is not None:
            rows += [(f"{who} AUC", fmt_float(task.get(f"{key}_auc"), 4)) for who, key in
                     (("float", "float"), ("int8", "int8_host"), ("device", "device"))]
        return rows + [("task", str(task.get("kind"))), ("samples", fmt_int(task.get("samples")))]
    return [("float (host)", fmt_pct(_get(acc, "float"))),
            ("int8 (host reference)", fmt_pct(_get(acc, "int8_host"))),
            ("int8 − float", drop or DASH),
            ("device (simulator)", fmt_pct(_get(acc, "device"))),
            ("samples", fmt_int(_get(acc, "samples")))]


def build_context(report: dict) -> dict:
    """All strings and images the template needs; no formatting happens in the template."""
    acc = _get(report, "accuracy")
    drop = None
    if _is_num(_get(acc, "float")) and _is_num(_get(acc, "int8_host")):
        drop = fmt_float(100 * (acc["int8_host"] - acc["float"]), 2, " pp")
    return {
        "recipe": _get(report, "recipe") or DASH,
        "target": _get(report, "target") or DASH,
        "model": [("parameters", fmt_int(_get(report, "model", "params"))),
                  ("MACs per inference", fmt_int(_get(report, "model", "macs")))]
                 + ([("ONNX opset", str(_get(report, "model", "opset")))] if _get(report, "model", "opset") else [])
                 + [("import", str(line)) for line in (_get(report, "model", "import_log") or [])],
        "dataset": [("source", fmt_int(_get(report, "dataset", "source"))),
                    ("train", fmt_int(_get(report, "dataset", "train"))),
                    ("validation", fmt_int(_get(report, "dataset", "val"))),
                    ("test", fmt_int(_get(report, "dataset", "test")))],
        "accuracy": _score_rows(report, acc, drop),
        "accuracy_title": "Accuracy" if _get(report, "task", "metric") in (None, "accuracy") else "Error (MSE)",
        "latency": [("cycles per inference", fmt_int(_get(report, "latency", "cycles"))),
                    ("milliseconds", fmt_float(_get(report, "latency", "ms"), 3, " ms")),
                    ("cycles per MAC", fmt_float(_get(report, "latency", "cycles_per_mac"), 2))],
        "verify": [("samples compared", fmt_int(_get(report, "verify", "samples"))),
                   ("bit-exact with the int8 reference", fmt_bool(_get(report, "verify", "bit_exact")))],
        "bit_exact": _get(report, "verify", "bit_exact"),
        "memory": _memory_rows(_get(report, "memory")),
        "stages_html": stages_html(_get(report, "stages")),
        "layers": _layer_rows(_get(report, "layers")),
        "artifacts": _artifact_rows(_get(report, "artifacts")),
        "images": _images(report),
        "partition": _partition_rows(_get(report, "partition")),
    }


def render_html(report: dict, out_path: Path, *, extra_images: dict[str, bytes] | None = None) -> Path:
    """Write the self-contained HTML report for ``report`` to ``out_path`` and return the path.

    ``extra_images`` are PNGs a stage drew itself (e.g. {"partition": ...}), embedded in their section.
    The file is written atomically (temporary file + rename) so a crash never leaves half a page.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    context = build_context(report if isinstance(report, dict) else {})
    for name, png in (extra_images or {}).items():
        context["images"][name] = _b64(png)
    html = env.get_template("report.html.j2").render(**context)
    return atomic_write_text(Path(out_path), html)
