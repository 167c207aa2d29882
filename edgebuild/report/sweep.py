"""The sweep summary: sweep.csv, sweep.json and sweep.html (a table and a Pareto plot).

One row per point: overrides, status, accuracy, flash, SRAM, cycles, latency, energy, build seconds
and cache hits. The plot shows accuracy against flash and against latency with the Pareto front
(highest accuracy for the least flash / time) highlighted. matplotlib and jinja2 are imported
inside the functions that draw and render.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from edgebuild.report.json_io import atomic_write_text

COLUMNS = ("point", "overrides", "status", "target", "accuracy", "accuracy_float", "accuracy_int8", "flash_bytes",
           "sram_bytes", "cycles", "latency_ms", "energy_uj", "seconds", "cache_hits", "rules_ran", "violations",
           "error")
DASH = "—"
FRONT_COLOUR = "#d62728"
OTHER_COLOUR = "#9a9a9a"
# (row field, axis label) of each panel: accuracy against these, smaller is better.
PANELS = (("flash_bytes", "flash (bytes)"), ("latency_ms", "latency per inference (ms)"))
TEMPLATE = Path(__file__).parent / "templates" / "sweep.html.j2"


def pareto_front(costs: list[float], gains: list[float]) -> list[bool]:
    """For each point, whether no other point is at least as good on both axes and better on one
    (lower cost, higher gain)."""
    pts = list(zip(costs, gains))
    return [not any(c2 <= c and g2 >= g and (c2 < c or g2 > g) for c2, g2 in pts) for c, g in pts]


def panel_points(rows: list[dict], field: str) -> tuple[list[dict], list[bool]]:
    """The built rows that have ``field`` and an accuracy, and which of them are on the front."""
    usable = [r for r in rows if r.get("status") == "ok" and r.get(field) is not None
              and r.get("accuracy") is not None]
    return usable, pareto_front([r[field] for r in usable], [r["accuracy"] for r in usable])


def best_point(rows: list[dict]) -> dict | None:
    """The most accurate built point within its budgets (ties: a point with a flash size, then the
    least flash); None if there is none."""
    ok = [r for r in rows if r.get("status") == "ok" and not r.get("violations") and r.get("accuracy") is not None]
    return max(ok, key=lambda r: (r["accuracy"], r.get("flash_bytes") is not None, -(r.get("flash_bytes") or 0)),
               default=None)


def pareto_figure(rows: list[dict]):
    """A matplotlib Figure, one panel per entry of PANELS; the front is drawn in FRONT_COLOUR as
    points joined by a step line labelled "Pareto front"."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure(figsize=(11, 4.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (field, label) in zip(fig.subplots(1, len(PANELS), squeeze=False)[0], PANELS):
        pts, front = panel_points(rows, field)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy (device)")
        ax.grid(True, alpha=0.3)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if not pts:
            ax.text(0.5, 0.5, f"no point reports {field}", ha="center", va="center", transform=ax.transAxes)
            continue
        others = [p for p, on in zip(pts, front) if not on]
        ax.scatter([p[field] for p in others], [p["accuracy"] for p in others], s=36, color=OTHER_COLOUR,
                   label="dominated", zorder=2)
        best = sorted((p for p, on in zip(pts, front) if on), key=lambda p: p[field])
        ax.plot([p[field] for p in best], [p["accuracy"] for p in best], drawstyle="steps-post", marker="o",
                markersize=8, linewidth=2, color=FRONT_COLOUR, label="Pareto front", zorder=3)
        for (x, y), (labels, on) in _same_spot(pts, front, field).items():
            text = "\n".join(labels[:3] + ([f"+{len(labels) - 3} more"] if len(labels) > 3 else []))
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7,
                        color="#333" if on else "#888", va="bottom")
        missing = sum(r.get("status") == "ok" for r in rows) - len(pts)
        if missing:
            ax.text(0.01, 0.01, f"{missing} built point{'s' if missing > 1 else ''} without {field}: not shown",
                    transform=ax.transAxes, fontsize=7, color="#888")
        xs = [p[field] for p in pts]
        if min(xs) > 0 and max(xs) / min(xs) > 50:
            ax.set_xscale("log")
        else:
            ax.ticklabel_format(axis="x", style="plain", useOffset=False)
        ax.margins(0.15)
        low, high = ax.get_ylim()
        ax.set_ylim(low, min(high, 1.005))
        ax.legend(loc="best", fontsize=8)
    return fig


def pareto_png(rows: list[dict]) -> bytes:
    """The Pareto plot as PNG bytes."""
    buf = io.BytesIO()
    pareto_figure(rows).savefig(buf, format="png")
    return buf.getvalue()


def _same_spot(pts: list[dict], front: list[bool], field: str) -> dict[tuple, tuple[list[str], bool]]:
    """Points drawn at the same place, grouped: (x, accuracy) -> (their labels, on the front)."""
    spots: dict[tuple, tuple[list[str], bool]] = {}
    for p, on in zip(pts, front):
        labels, _ = spots.setdefault((p[field], p["accuracy"]), ([], on))
        labels.append(_short(p))
    return spots


def _short(row: dict) -> str:
    return " ".join(o.split("=", 1)[0].rsplit(".", 1)[-1] + "=" + o.split("=", 1)[-1]
                    for o in row.get("overrides") or []) or "defaults"


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "overrides": " ".join(r.get("overrides") or []),
                         "violations": "; ".join(r.get("violations") or [])})
    return buf.getvalue()


def write_sweep_summary(rows: list[dict], out_dir: Path, *, title: str) -> dict[str, Path]:
    """Write sweep.csv, sweep.json, sweep.png and sweep.html into ``out_dir``; returns their paths.

    Rows are sorted by point name; sweep.json also lists the front of each panel and the best point.
    """
    import jinja2

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda r: r.get("point", ""))
    fronts = {field: [p["point"] for p, on in zip(*panel_points(rows, field)) if on] for field, _ in PANELS}
    best = best_point(rows)
    paths = {k: out_dir / f"sweep.{k}" for k in ("csv", "json", "png", "html")}
    atomic_write_text(paths["csv"], _csv_text(rows))
    atomic_write_text(paths["json"], json.dumps(
        {"title": title, "points": [{k: r.get(k) for k in COLUMNS} for r in rows],
         "pareto": fronts, "best": best and best["point"]}, indent=2) + "\n")
    png = pareto_png(rows)
    tmp = paths["png"].with_name(".sweep.png.tmp")
    tmp.write_bytes(png)
    tmp.replace(paths["png"])
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE.parent), autoescape=True)
    env.filters.update(num=lambda v, fmt="{:,.0f}": DASH if v is None else fmt.format(v),
                       pct=lambda v: DASH if v is None else f"{100 * v:.1f}%")
    html = env.get_template(TEMPLATE.name).render(
        title=title, rows=rows, best=best, fronts=fronts, png=base64.b64encode(png).decode(),
        ok=sum(r.get("status") == "ok" for r in rows), failed=sum(r.get("status") != "ok" for r in rows))
    atomic_write_text(paths["html"], html)
    return paths
