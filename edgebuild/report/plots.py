"""Report figures drawn with matplotlib (Agg) and returned as PNG bytes.

matplotlib is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import io

KIND_COLOURS = {
    "weight": "#4C72B0",
    "bias": "#8172B3",
    "activation": "#DD8452",
    "reserved": "#937860",
    "used": "#55A868",
    "code": "#2F4B7C",
    "requant": "#A05195",
    "arena": "#DD8452",
    "io": "#F95D6A",
    "stack": "#C9B037",
    "scratch": "#F4A582",
}
OTHER_COLOUR = "#64B5CD"
FREE_COLOUR = "#EEEEEE"
THOUSANDS = "{x:,.0f}"  # tick label format (matplotlib accepts a format string)


def _compact(x, _pos=None) -> str:
    """Short tick labels for wide ranges: 950, 12k, 1.3M."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.0f}"
BAR_PIXELS = 900  # approximate drawn width of a memory bar at 10 in x 100 dpi
PIXELS_PER_CHAR = 5.5  # approximate width of one 7.5 pt character, to decide if a label fits


def _figure(width: float, height: float):
    """A pyplot-free Figure on the Agg canvas (no global backend state, thread-friendly)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _bytes(n: int) -> str:
    return f"{n:,} B" if n < 10_000 else f"{n / 1024:,.1f} KiB"


def memory_map_segments(rows: list[dict]) -> dict[str, list[dict]]:
    """Group memory-map rows per medium into drawable segments sorted by offset.

    Activation rows overlap in offset (they share the arena over time), so they are merged into
    one ``activation arena`` segment spanning their extent.
    """
    media: dict[str, list[dict]] = {}
    arenas: dict[str, list[int]] = {}
    for r in rows:
        medium = str(r.get("medium", "?"))
        offset, nbytes = int(r.get("offset") or 0), int(r.get("nbytes") or 0)
        if r.get("kind") == "activation":
            lo_hi = arenas.setdefault(medium, [offset, offset + nbytes])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], offset), max(lo_hi[1], offset + nbytes)
            media.setdefault(medium, [])
            continue
        media.setdefault(medium, []).append(
            {"name": str(r.get("name", "?")), "kind": str(r.get("kind", "other")),
             "offset": offset, "nbytes": nbytes})
    for medium, (lo, hi) in arenas.items():
        media[medium].append({"name": "activation arena", "kind": "activation",
                              "offset": lo, "nbytes": hi - lo})
    return {m: sorted(segs, key=lambda s: (s["offset"], s["name"])) for m, segs in media.items()}


def memory_map_titles(segments: dict[str, list[dict]], capacities: dict[str, int | None],
                      notes: dict[str, str] | None = None) -> dict[str, str]:
    """Per medium "flash: 4,906 of 32,256 bytes, 15% used — as linked (nm)": the bar's title in the
    plot and, joined, the image's alt text (so the page states the figure in text too)."""
    titles = {}
    for medium, segs in segments.items():
        end = max((s["offset"] + s["nbytes"] for s in segs), default=0)
        capacity = capacities.get(medium) or end or 1
        used_pct = f", {100 * end / capacity:.0f}% used" if capacities.get(medium) else ""
        note = (notes or {}).get(medium)
        titles[medium] = f"{medium}: {end:,} of {capacity:,} bytes{used_pct}" + (f" — {note}" if note else "")
    return titles


def memory_map_png(segments: dict[str, list[dict]], capacities: dict[str, int | None],
                   notes: dict[str, str] | None = None) -> bytes:
    """One horizontal bar per medium, segments labelled, the free space and capacity shown;
    ``notes`` (per medium) say in the title where the figures come from."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    media = list(segments)
    titles = memory_map_titles(segments, capacities, notes)
    fig = _figure(10, 0.4 + 1.25 * len(media))
    axes = fig.subplots(len(media), 1, squeeze=False)[:, 0]
    for ax, medium in zip(axes, media):
        segs = segments[medium]
        end = max((s["offset"] + s["nbytes"] for s in segs), default=0)
        capacity = capacities.get(medium) or end or 1
        width = max(capacity, end)
        ax.barh(0, width, left=0, height=0.6, color=FREE_COLOUR, edgecolor="#BBBBBB")
        for s in segs:
            colour = KIND_COLOURS.get(s["kind"], OTHER_COLOUR)
            ax.barh(0, s["nbytes"], left=s["offset"], height=0.6, color=colour, edgecolor="white",
                    linewidth=0.6)
            label = f"{s['name']}\n{_bytes(s['nbytes'])}"
            if s["nbytes"] / width * BAR_PIXELS >= PIXELS_PER_CHAR * max(map(len, label.split("\n"))):
                ax.text(s["offset"] + s["nbytes"] / 2, 0, label, ha="center", va="center",
                        fontsize=7.5, color="white", clip_on=True)
        ax.axvline(capacity, color="#C44E52", linestyle="--", linewidth=1.2)
        ax.set_title(titles[medium], loc="left", fontsize=9)
        ax.set_xlim(0, width * 1.01)
        ax.set_yticks([])
        ax.xaxis.set_major_formatter(THOUSANDS)
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right", "left"]].set_visible(False)
    kinds = sorted({s["kind"] for segs in segments.values() for s in segs})
    handles = [Patch(color=KIND_COLOURS.get(k, OTHER_COLOUR), label=k) for k in kinds]
    handles.append(Patch(facecolor=FREE_COLOUR, edgecolor="#BBBBBB", label="free"))
    handles.append(Line2D([], [], color="#C44E52", linestyle="--", label="capacity"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8,
               frameon=False)
    axes[-1].set_xlabel("offset within the medium (bytes)", fontsize=8)
    return _png(fig)


def layers_png(layers: list[dict]) -> bytes:
    """Per-layer MACs (and cycles, when any layer has them) as horizontal bars."""
    names = [str(layer.get("name", f"#{i}")) for i, layer in enumerate(layers)]
    series = [("MACs", [float(layer.get("macs") or 0) for layer in layers], "#4C72B0")]
    if any(layer.get("cycles") is not None for layer in layers):
        series.append(("cycles", [float(layer.get("cycles") or 0) for layer in layers], "#DD8452"))
    fig = _figure(10, 0.9 + 0.32 * len(layers))
    axes = fig.subplots(1, len(series), sharey=True, squeeze=False)[0]
    ys = range(len(layers))
    for ax, (title, values, colour) in zip(axes, series):
        ax.barh(ys, values, color=colour)
        top = max(values, default=0) or 1
        for y, v in zip(ys, values):
            ax.text(v + 0.01 * top, y, f"{v:,.0f}", va="center", fontsize=7.5)
        ax.set_xlim(0, top * 1.22)
        ax.xaxis.set_major_formatter(_compact)
        ax.set_title(f"{title} per layer", loc="left", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_yticks(list(ys), names)
    axes[0].invert_yaxis()
    return _png(fig)


def arena_png(rows: list[dict], arena_size: int, layer_names: list[str] | None = None) -> bytes:
    """Activation lifetimes (x: layer step, one integer tick per layer, named by ``layer_names``)
    against their arena offsets (y: bytes)."""
    import matplotlib
    from matplotlib.patches import Rectangle

    acts = [r for r in rows if r.get("kind") == "activation" and r.get("first") is not None
            and r.get("last") is not None]
    base = min(int(r["offset"]) for r in acts)
    fig = _figure(10, 3.2)
    ax = fig.subplots()
    cmap = matplotlib.colormaps["tab20"]
    for i, r in enumerate(acts):
        x0, x1 = int(r["first"]) - 0.45, int(r["last"]) + 0.45
        y0, h = int(r["offset"]) - base, int(r["nbytes"])
        ax.add_patch(Rectangle((x0, y0), x1 - x0, h, facecolor=cmap(i % 20), edgecolor="black",
                               linewidth=0.5))
        if h >= 0.06 * arena_size:
            ax.text((x0 + x1) / 2, y0 + h / 2, str(r["name"]), ha="center", va="center",
                    fontsize=7, clip_on=True)
    last = max(int(r["last"]) for r in acts)
    ax.set_xlim(-0.6, last + 0.6)
    steps = list(range(last + 1))
    names = list(layer_names or [])
    ax.set_xticks(steps, [f"{i}: {names[i]}" if i < len(names) else str(i) for i in steps],
                  rotation=30 if names else 0, ha="right" if names else "center")
    ax.set_ylim(0, max(arena_size, 1) * 1.05)
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.axhline(arena_size, color="#C44E52", linestyle="--", linewidth=1)
    ax.set_xlabel("layer step", fontsize=8)
    ax.set_ylabel("arena offset (bytes)", fontsize=8)
    ax.set_title(f"activation arena: {arena_size:,} bytes", loc="left", fontsize=9)
    ax.tick_params(labelsize=8)
    return _png(fig)
