"""The partition report's figure: estimated latency vs link bandwidth for device-only,
server-only and the chosen split (curves from the partition stage's partition.json)."""

from __future__ import annotations

import io


def latency_vs_bandwidth_png(curves: dict, title: str = "") -> bytes:
    """PNG bytes of the three latency curves (log-log), the recipe's bandwidth marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bw = curves["bandwidth_bps"]
    ax.loglog(bw, curves["device_only_ms"], label="device only", color="#4C72B0")
    ax.loglog(bw, curves["server_only_ms"], label="server only (raw input sent)", color="#DD8452")
    ax.loglog(bw, curves["chosen_ms"], label=f"chosen split (device: {', '.join(curves['chosen_layers'])})",
              color="#55A868", linestyle="--", linewidth=2)
    ax.axvline(curves["link_bandwidth_bps"], color="#937860", linestyle=":", label="recipe link")
    ax.set_xlabel("link bandwidth (bit/s)")
    ax.set_ylabel("latency per inference (ms, estimated)")
    ax.set_title(title or "Latency vs bandwidth")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
