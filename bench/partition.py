"""Edge-device partitioning figures: split choice, solve time and adaptive-table lookup time.

Devices (costs from edgebuild.partition.costs_from_graph):
- uno: Arduino Uno, 12 cycles/MAC, 16 MHz, 47.5 mW (5 V x 9.5 mA); server 100x faster;
- m4:  an assumed Cortex-M4-class board (CMSIS-NN-like 1 cycle/MAC, 64 MHz, 20 mW); server 20x.
Models (real edgebuild.model Graphs):
- chain: an MNIST-style CNN (Conv/Relu/MaxPool x2, Flatten, Gemm, Relu, Gemm; 1x28x28);
- camera: a chain CNN on a 3x64x64 frame with a stride-2 stem (activations shrink early);
- dag:   a residual + inception CNN of ~100 nodes (3x64x64 input, stride-2 stem, four stages).
Links (one-way latency, device radio energy per byte are assumptions for illustration):
3G 1 Mbit/s 50 ms 5 uJ/B; 4G 10 Mbit/s 20 ms 2 uJ/B; Wi-Fi 50 Mbit/s 2 ms 0.5 uJ/B.

Usage: python bench/partition.py [--json]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from edgebuild.model.builder import GraphBuilder
from edgebuild.partition import Link, build_table, costs_from_graph, evaluate, solve

DEVICES = {"uno": {"cycles_per_mac": 12, "f_cpu": 16e6, "power_w": 5.0 * 9.5e-3, "speedup": 100.0},
           "m4": {"cycles_per_mac": 1, "f_cpu": 64e6, "power_w": 0.02, "speedup": 20.0}}
LINKS = {"3G": Link(1e6, 50.0, 5.0), "4G": Link(1e7, 20.0, 2.0), "Wi-Fi": Link(5e7, 2.0, 0.5)}


def chain_cnn():
    """MNIST-style chain CNN."""
    n = GraphBuilder(0)
    h = n.op("MaxPool", [n.conv("input", 1, 8)], kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("MaxPool", [n.conv(h, 8, 16)], kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("Relu", [n.gemm(n.op("Flatten", [h], axis=1), 16 * 7 * 7, 32)])
    return n.graph({"input": ((1, 1, 28, 28), "float32")}, n.gemm(h, 32, 10), "chain_cnn")


def camera_cnn():
    """Chain CNN on a 3x64x64 camera frame (12 KB) whose stride-2 stem shrinks the activations
    early: the case where a split inside the model pays off."""
    n = GraphBuilder(2)
    h = n.op("MaxPool", [n.conv("input", 3, 4, stride=2)], kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("MaxPool", [n.conv(h, 4, 8)], kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("MaxPool", [n.conv(h, 8, 16)], kernel_shape=[2, 2], strides=[2, 2])
    h = n.op("Relu", [n.gemm(n.op("Flatten", [h], axis=1), 16 * 4 * 4, 32)])
    return n.graph({"input": ((1, 3, 64, 64), "float32")}, n.gemm(h, 32, 10), "camera_cnn")


def dag_cnn():
    """Residual + inception CNN (~100 nodes) on a 3x64x64 frame after a stride-2 conv and a pool:
    per stage two residual blocks and an inception
    block (1x1 | 1x1->3x3 | pool->1x1, concat, 1x1), then a pool and a widening conv."""
    n = GraphBuilder(1)
    chans = [8, 12, 16, 24]
    h = n.op("MaxPool", [n.conv("input", 3, chans[0], stride=2)], kernel_shape=[2, 2],
             strides=[2, 2])
    for s, c in enumerate(chans):
        for _ in range(2):
            y = n.conv(n.conv(h, c, c), c, c, relu=False)
            h = n.op("Relu", [n.op("Add", [y, h])])
        b1 = n.conv(h, c, c // 2, k=1)
        b2 = n.conv(n.conv(h, c, c // 2, k=1), c // 2, c // 2)
        b3 = n.conv(n.op("MaxPool", [h], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
                    c, c // 2, k=1)
        h = n.conv(n.op("Concat", [b1, b2, b3], axis=1), 3 * (c // 2), c, k=1)
        if s + 1 < len(chans):
            h = n.conv(n.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2]), c, chans[s + 1])
    h = n.op("Flatten", [n.op("GlobalAveragePool", [h])], axis=1)
    return n.graph({"input": ((1, 3, 64, 64), "float32")}, n.gemm(h, chans[-1], 10), "dag_cnn")


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _figures(costs) -> dict:
    rows = {}
    for net, link in LINKS.items():
        plan = solve(costs, link)
        eplan = solve(costs, link, "energy")
        rows[net] = {
            "device_only_s": evaluate(costs, costs.names, link).latency_s,
            "server_only_s": evaluate(costs, (), link).latency_s,
            "split_s": plan.latency_s, "cut": list(plan.cut), "sent_bytes": plan.sent_bytes,
            "device_layers": len(plan.device), "exact": plan.exact,
            "energy_split_j": eplan.device_energy_j, "energy_cut": list(eplan.cut),
            "solve_s": _median_time(lambda: solve(costs, link), 5)}
    t0 = time.perf_counter()
    tab = build_table(costs, LINKS["4G"], bandwidths=np.geomspace(1e4, 1e8, 12),
                      energies=[*np.geomspace(1e-4, 1.0, 7), np.inf],
                      srams=[512, 1024, 2048, 8192, 1e9])
    build_s = time.perf_counter() - t0
    return {"nodes": len(costs.layers), "links": rows, "table": {
        "shape": list(tab.table.shape), "splits": len(tab.splits), "build_s": build_s,
        "c_bytes": int(tab.table.size),
        "lookup_median_s": _median_time(lambda: tab.lookup(3.3e6, 2.2e-2, 1500.0), 20000)}}


def run() -> dict:
    """All figures: per device, model and link the three latencies, the split and timings."""
    graphs = {"chain": chain_cnn(), "camera": camera_cnn(), "dag": dag_cnn()}
    return {f"{dev}/{model}": _figures(costs_from_graph(graph, **coef))
            for dev, coef in DEVICES.items() for model, graph in graphs.items()}


def main(argv=None) -> None:
    """Print the figures (a table, or JSON with --json)."""
    res = run()
    if "--json" in (argv or sys.argv[1:]):
        print(json.dumps(res, indent=2))
        return
    for model, r in res.items():
        print(f"{model} ({r['nodes']} nodes)")
        print(f"  {'link':<6} {'device-only':>12} {'server-only':>12} {'split':>10} "
              f"{'sent B':>7} {'dev layers':>10} {'solve':>9}  cut")
        for net, x in r["links"].items():
            print(f"  {net:<6} {x['device_only_s'] * 1e3:>10.1f}ms"
                  f" {x['server_only_s'] * 1e3:>10.1f}ms {x['split_s'] * 1e3:>8.1f}ms"
                  f" {x['sent_bytes']:>7} {x['device_layers']:>10}"
                  f" {x['solve_s'] * 1e3:>7.2f}ms  {', '.join(x['cut']) or '-'}")
        t = r["table"]
        print(f"  adaptive table {t['shape']} ({t['splits']} splits, {t['c_bytes']} B): built in "
              f"{t['build_s']:.2f} s, lookup median {t['lookup_median_s'] * 1e6:.2f} us")


if __name__ == "__main__":
    main()
