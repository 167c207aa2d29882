"""The sweep summary and the point bookkeeping, on hand-made rows (no builds).

The Pareto front is checked against a sort-and-scan reference written here, the PNG by reading its
pixels back, the budget checks and energy against figures worked out by hand.
"""

from __future__ import annotations

import base64
import csv
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgebuild.report.sweep import (FRONT_COLOUR, OTHER_COLOUR, best_point, pareto_figure, pareto_front,
                                    write_sweep_summary)
from edgebuild.sweeps import budget_violations, expand_sweep, point_name, user_override


def front_by_scan(costs, gains):
    """Reference: sort by cost; a point is on the front iff it has the best gain at its cost and
    beats every gain at strictly lower cost."""
    best_at = {}
    for c, g in zip(costs, gains):
        best_at[c] = max(g, best_at.get(c, g))
    out = []
    for c, g in zip(costs, gains):
        lower = [best_at[c2] for c2 in best_at if c2 < c]
        out.append(g == best_at[c] and all(g > g2 for g2 in lower))
    return out


def test_front_of_a_hand_made_set():
    costs = [100, 200, 150, 300, 200, 120]
    gains = [0.90, 0.95, 0.90, 0.95, 0.97, 0.80]
    # 100/0.90 (cheapest at 0.90), 200/0.97 (best); 150/0.90 loses to 100/0.90, 300/0.95 and
    # 200/0.95 lose to 200/0.97, 120/0.80 loses to 100/0.90.
    assert pareto_front(costs, gains) == [True, False, False, False, True, False]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=25))
def test_front_matches_the_scan_reference(points):
    costs, gains = [p[0] for p in points], [p[1] for p in points]
    assert pareto_front(costs, gains) == front_by_scan(costs, gains)


def row(point, acc, flash, ms, status="ok", violations=()):
    return {"point": point, "overrides": [f"x={point}"], "status": status, "target": "uno", "accuracy": acc,
            "accuracy_float": acc, "accuracy_int8": acc, "flash_bytes": flash, "sram_bytes": 500, "cycles": ms * 16000,
            "latency_ms": ms, "energy_uj": 47.5 * ms, "seconds": 1.5, "cache_hits": 9, "rules_ran": 2,
            "violations": list(violations), "error": None if status == "ok" else "boom"}


ROWS = [row("a", 0.90, 4000, 30.0), row("b", 0.95, 9000, 10.0), row("c", 0.93, 9500, 20.0),
        row("d", 0.97, 12000, 40.0, violations=["flash 12,000 B > 10,000 B"]),
        row("e", None, None, 0.0, status="failed")]


def test_best_point_is_the_most_accurate_within_budget():
    assert best_point(ROWS)["point"] == "b"          # d is more accurate but over budget, e failed
    assert best_point([ROWS[3], ROWS[4]]) is None


def test_figure_draws_the_front_of_each_panel():
    fig = pareto_figure(ROWS)
    ok = [r for r in ROWS if r["status"] == "ok"]
    for ax, field in zip(fig.axes, ("flash_bytes", "latency_ms")):
        lines = [ln for ln in ax.get_lines() if ln.get_label() == "Pareto front"]
        assert len(lines) == 1
        on = front_by_scan([r[field] for r in ok], [r["accuracy"] for r in ok])
        expect = sorted((r[field], r["accuracy"]) for r, f in zip(ok, on) if f)
        assert list(zip(lines[0].get_xdata(), lines[0].get_ydata())) == expect
    # flash: a (4000) and b (9000) and d (12000, most accurate); latency: b (10 ms) and d (40 ms)
    assert [x for x, _ in expect] == [10.0, 40.0]


def colour_pixels(png_path, hex_colour: str) -> int:
    import matplotlib.image

    img = matplotlib.image.imread(png_path)[..., :3]
    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(img - rgb).max(axis=2) < 0.03).sum())


def test_summary_files(tmp_path):
    paths = write_sweep_summary(ROWS, tmp_path, title="demo: sweep")
    assert {p.name for p in paths.values()} == {"sweep.csv", "sweep.json", "sweep.png", "sweep.html"}

    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert [r["point"] for r in table] == ["a", "b", "c", "d", "e"]
    assert table[1]["accuracy"] == "0.95" and table[1]["flash_bytes"] == "9000"
    assert table[1]["cache_hits"] == "9" and table[1]["seconds"] == "1.5"
    assert table[3]["violations"] == "flash 12,000 B > 10,000 B"
    assert table[4]["status"] == "failed" and table[4]["error"] == "boom"

    summary = json.loads(paths["json"].read_text())
    assert summary["pareto"] == {"flash_bytes": ["a", "b", "d"], "latency_ms": ["b", "d"]}
    assert summary["best"] == "b"
    assert len(summary["points"]) == 5

    # The PNG shows the front: a good number of pixels in the front colour, and dominated points in grey.
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert colour_pixels(paths["png"], FRONT_COLOUR) > 500
    assert colour_pixels(paths["png"], OTHER_COLOUR) > 50
    html = paths["html"].read_text()
    assert base64.b64encode(png).decode() in html
    assert "boom" in html and "x=b" in html


def test_png_without_a_front_colour_when_nothing_was_built(tmp_path):
    paths = write_sweep_summary([ROWS[4]], tmp_path, title="all failed")
    assert colour_pixels(paths["png"], FRONT_COLOUR) == 0
    assert json.loads(paths["json"].read_text())["best"] is None


def test_budget_violations():
    report = {"budget": {"flash_bytes": 8000, "sram_bytes": None, "latency_ms": 100.0, "energy_uj": None,
                         "max_accuracy_drop": 0.01},
              "memory": {"flash_limit": 32256, "sram_limit": 2048}}
    r = {"flash_bytes": 9138, "sram_bytes": 2100, "latency_ms": 175.19, "energy_uj": 8321.5,
         "accuracy_float": 0.977, "accuracy_int8": 0.962}
    found = budget_violations(report, r)
    assert found == ["flash 9,138 B > 8,000 B (over by 1,138 B)", "SRAM 2,100 B > 2,048 B (over by 52 B)",
                     "latency 175.2 ms > 100 ms (over by 75.19 ms)",
                     "accuracy drop 0.0150 > max_accuracy_drop 0.01"]
    r.update(flash_bytes=8000, sram_bytes=2048, latency_ms=99.0, accuracy_int8=0.967)
    assert budget_violations(report, r) == []
    r.update(energy_uj=120.0)
    report["budget"]["energy_uj"] = 100.0
    assert budget_violations(report, r) == ["energy 120 uJ > 100 uJ (over by 20 uJ)"]


def test_point_names_and_spelling():
    assert expand_sweep(["a=1,2", "target=uno,host"]) == [["a=1", "target=uno"], ["a=1", "target=host"],
                                                          ["a=2", "target=uno"], ["a=2", "target=host"]]
    assert user_override("++verify.samples=20") == "verify.samples=20"
    assert user_override("targets@target=host") == "target=host"
    assert point_name(["target=host", "verify.samples=200"]) == "target=host,verify.samples=200"
    assert point_name([]) == "default"
    long_a = [f"compression.max_accuracy_drop=0.0{'1' * 80}", "target=uno", "verify.samples=1"]
    long_b = [f"compression.max_accuracy_drop=0.0{'1' * 80}", "target=uno", "verify.samples=2"]
    assert len(point_name(long_a)) <= 120 and point_name(long_a) != point_name(long_b)


def test_best_point_prefers_a_known_flash_size_on_ties():
    host = row("h", 0.95, None, 1.0)
    assert best_point([host, ROWS[1]])["point"] == "b"
    assert best_point([host])["point"] == "h"
