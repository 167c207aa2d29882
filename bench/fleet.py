"""Fleet schedulers on synthetic heterogeneous fleets (issue 9).

    python bench/fleet.py [--quick]

For each case (nodes, tasks, seed) every scheduler runs; printed: total energy (uJ/s), makespan,
load imbalance (max/mean), runtime, and for cases up to 100 tasks the gap to scipy's MILP
solution (20 s limit; marked optimal when proven, else its lower bound is shown). Checks that ant colony is within 2% of the best scheduler on energy
in every case and strictly better than round robin and greedy on average; exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from edgebuild.fleet.problem import evaluate
from edgebuild.fleet.schedulers import SCHEDULERS, exact
from edgebuild.fleet.synthetic import synthetic_problem

CASES = [(5, 20, 0), (5, 20, 1), (10, 40, 2), (10, 60, 3), (20, 100, 4), (20, 200, 5), (50, 300, 6), (50, 500, 7)]
EXACT_MAX_TASKS = 100


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the cases up to 100 tasks")
    args = ap.parse_args()
    ok, ratios = True, {name: [] for name in SCHEDULERS}
    print(f"{'case':<14}{'scheduler':<12}{'energy uJ/s':>14}{'makespan':>10}{'imbal':>7}{'secs':>7}{'gap':>8}")
    for nodes, tasks, seed in [c for c in CASES if not args.quick or c[1] <= 100]:
        p = synthetic_problem(nodes, tasks, seed)
        ref, proven = None, False
        if tasks <= EXACT_MAX_TASKS:
            a_opt, bound = exact(p, time_limit=20)
            if a_opt is not None:
                ref = evaluate(p, a_opt).energy
                proven = bound is not None and ref <= bound * (1 + 1e-6)
                print(f"{nodes}x{tasks} s{seed:<6}{'milp':<12}{ref:>14,.0f}{'':>24}"
                      f"{'optimal' if proven else f'bound {bound:,.0f}':>15}")
        results = {}
        for name, fn in SCHEDULERS.items():
            t0 = time.perf_counter()
            kw = {"iterations": 10} if name == "ant_colony" and tasks > 200 else {}
            a = fn(p, **kw)
            dt = time.perf_counter() - t0
            m = evaluate(p, a)
            results[name] = m
            gap = "" if ref is None else f"{100 * (m.energy / ref - 1):.2f}%"
            flag = "" if m.feasible else "  INFEASIBLE"
            print(f"{nodes}x{tasks} s{seed:<6}{name:<12}{m.energy:>14,.0f}{m.makespan:>10.3f}{m.imbalance:>7.2f}"
                  f"{dt:>7.2f}{gap:>8}{flag}")
        best = min(m.energy for m in results.values() if m.feasible)
        aco = results["ant_colony"].energy
        for name, m in results.items():
            ratios[name].append(m.energy / aco)
        if not results["ant_colony"].feasible or aco > 1.02 * best:
            print(f"  FAIL: ant colony {aco:,.0f} is not within 2% of the best {best:,.0f}")
            ok = False
    print("mean energy relative to ant colony: "
          + ", ".join(f"{n} {np.mean(r):.3f}" for n, r in ratios.items()))
    for name in ("round_robin", "greedy"):
        if not np.mean(ratios[name]) > 1.0:
            print(f"FAIL: ant colony is not strictly better than {name} on average")
            ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
