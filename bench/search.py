#!/usr/bin/env python3
"""Multi-target search against one search per target: time and accuracy, for three boards.

    python bench/search.py [--recipe recipes/mnist_multi.yaml] [--splits N] [--episodes N] [--random]
                           [--no-nas] [--no-transfer]

For each of ``--splits`` data splits (default 3: the recipe's split seed, then the next ones; a
fresh train/validation/test split of mnist5k each), trains the recipe's model (numpy trainer, one
BLAS thread), then for the recipe's search.targets (uno, mega2560 and the Cortex-M4 board in
recipes/mnist_multi.yaml):

1. per-target: the compression search (edgebuild.compress.search.search: sensitivity analysis,
   greedy descents, fine-tuning of each candidate) run independently for each board;
2. policy: ONE AMC-style agent trained across the three boards at once, then per board one fine-tune
   (policy, the recipe's default) or one fine-tune and the second, half-rate pass the per-target
   search gives its winner (polished); with ``--random``, also the same episodes from an agent that
   never learns (actor frozen at its start, exploration noise never decays: random search under
   the same budget clipping and refit reward), which measures what the learning adds;
3. transfer: the agent trained on the first two boards only, applied without training to the
   third (what adding a board costs) against that board's own per-target search;
4. nas: the weight-sharing supernet trained once and searched for every board.

(3 and 4 run on the first split only.) Prints per split and board the validation and held-out test
accuracy (1,000 digits), the predicted flash (cost model; `edgebuild search` builds and measures)
and the times; then, averaged over the splits, the two goals of issue 10: total search time of the
policy at least 2x below the three per-target searches, and no board more than 0.5 point less
accurate on the test digits than its per-target search. One split is not enough to judge 0.5
point: 500 validation and 1,000 test digits measure a paired accuracy difference to about +-0.6 and
+-0.4 points (one standard error), and which of two close models wins on validation often loses
on test. The mean over splits is printed with its standard error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup(recipe: str, split: int = 0):
    from threadpoolctl import threadpool_limits

    from edgebuild.config import load_recipe
    from edgebuild.data import load_dataset
    from edgebuild.search.common import TargetBudget
    from edgebuild.train import build_net, evaluate, fit

    config = load_recipe(recipe)
    dataset = {**config["dataset"], "split": {**config["dataset"]["split"]}}
    dataset["split"]["seed"] = dataset["split"].get("seed", 0) + split
    ds = load_dataset(dataset, base_dir=Path(recipe).resolve().parent)
    spec = {**config["model"]["train"], "seed": config["model"]["train"]["seed"] + split}
    t0 = time.perf_counter()
    net = build_net(spec["arch"], ds.x_train.shape[1:], seed=spec["seed"])
    with threadpool_limits(limits=1):
        fit(net, ds, spec)
    print(f"split {split} (seed {dataset['split']['seed']}): base model trained in {time.perf_counter() - t0:.0f} s: "
          f"{net.num_params():,} parameters, "
          f"val {evaluate(net, ds.x_val, ds.y_val):.4f}, test {evaluate(net, ds.x_test, ds.y_test):.4f}", flush=True)
    targets = []
    for t in config["search"]["targets"]:
        board = load_recipe(recipe, [f"target={t['target']}"])["target"]
        limits = {k: v for k, v in t.items() if k != "target" and v is not None}
        targets.append(TargetBudget.from_target(board, limits))
    return config, ds, net, targets


def _one_split(args, split: int) -> dict:
    """Every method on one data split: {"runs", "test", "targets", "transfer"} (see main)."""
    from edgebuild.search.policy import apply_policy, multi_target_policy, per_target_searches
    from edgebuild.train import evaluate

    config, ds, net, targets = _setup(args.recipe, split)
    search = config["search"]
    ft = dict(epochs=search["finetune"]["epochs"], lr=search["finetune"]["lr"], seed=config["seed"] + split)
    episodes = args.episodes or search["policy"]["episodes"]
    say = lambda m: print("  " + m, flush=True)  # noqa: E731

    print(f"\nper-target searches ({', '.join(t.name for t in targets)}):", flush=True)
    per = per_target_searches(net, ds, targets, progress=say, **ft)
    pspec = dict(episodes=episodes, reward_samples=search["policy"]["reward_samples"],
                 reward_on=args.reward_on or search["policy"]["reward_on"])
    print(f"\nmulti-target policy ({episodes} episodes), one fine-tune per board (the recipe default):", flush=True)
    pol = multi_target_policy(net, ds, targets, polish=False, progress=say, **pspec, **ft)
    print("\nmulti-target policy, each choice polished like the per-target search's winner:", flush=True)
    polished = multi_target_policy(net, ds, targets, polish=True, progress=say, **pspec, **ft)
    runs = {"per-target": per, "policy": pol, "polished": polished}
    if args.random:
        from edgebuild.search.agent import PolicyAgent
        from edgebuild.search.policy import A_MIN, STATE_DIM
        print("\nrandom search: the same episodes, clipping and reward, an agent that never learns:", flush=True)
        frozen = PolicyAgent(STATE_DIM, seed=ft["seed"], a_min=A_MIN, lr=0.0, decay=1.0)
        runs["random"] = multi_target_policy(net, ds, targets, polish=False, progress=say, agent=frozen,
                                             **pspec, **ft)
    first = split == 0
    if first and not args.no_nas and search.get("nas"):
        from edgebuild.search.nas import nas_search
        nas = search["nas"]
        print("\nsupernet search:", flush=True)
        runs["nas"] = nas_search(nas["space"], ds, targets, supernet_epochs=nas["supernet_epochs"],
                                 samples=nas["samples"], lr=nas["lr"], finetune_lr=ft["lr"], epochs=ft["epochs"],
                                 seed=ft["seed"], base_val_accuracy=per.base_val_accuracy, progress=say)
    transfer = None
    if first and not args.no_transfer and len(targets) > 1:
        print(f"\ntransfer: policy trained on {', '.join(t.name for t in targets[:-1])}, applied to {targets[-1].name}:",
              flush=True)
        t0 = time.perf_counter()
        two = multi_target_policy(net, ds, targets[:-1], polish=True, progress=say, **pspec, **ft)
        t1 = time.perf_counter()
        choice = apply_policy(two, net, ds, targets[-1], polish=True, progress=say,
                              reward_samples=pspec["reward_samples"], reward_on=pspec["reward_on"], **ft)
        transfer = (choice, time.perf_counter() - t1, t1 - t0)

    test = {name: {t: evaluate(c.net, ds.x_test, ds.y_test) for t, c in r.choices.items()} for name, r in runs.items()}
    print(f"\nsplit {split}:\n{'target':<15}{'method':<12}{'widths / arch':<34}{'val':>8}{'test':>8}{'flash B':>9}"
          f"{'ms':>9}{'uJ':>9}")
    for t in targets:
        for name, r in runs.items():
            c = r.choices[t.name]
            shape = c.detail.get("widths") or c.detail.get("arch") or ""
            print(f"{t.name:<15}{name:<12}{str(shape)[:33]:<34}{c.val_accuracy:>8.4f}{test[name][t.name]:>8.4f}"
                  f"{c.figures['flash_bytes']:>9,}{c.figures['latency_ms']:>9.2f}{c.figures['energy_uj']:>9,.0f}")
    print("search time: " + ", ".join(f"{name} {r.seconds:.0f} s" for name, r in runs.items()))
    if transfer:
        choice, seconds, trained = transfer
        own = per.stats["seconds_per_target"][targets[-1].name]
        print(f"adding {targets[-1].name} to a policy trained on the others: {seconds:.0f} s (policy training "
              f"{trained:.0f} s, once) vs {own:.0f} s for its own search; val {choice.val_accuracy:.4f}, "
              f"test {evaluate(choice.net, ds.x_test, ds.y_test):.4f}, flash {choice.figures['flash_bytes']:,} B "
              f"(per-target: val {per.choices[targets[-1].name].val_accuracy:.4f}, "
              f"test {test['per-target'][targets[-1].name]:.4f})")
    return {"runs": runs, "test": test, "targets": [t.name for t in targets]}


def _mean_se(values: list[float]) -> str:
    import numpy as np

    v = np.asarray(values, float)
    se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return f"{v.mean():+.2f} +- {se:.2f}" if len(v) > 1 else f"{v.mean():+.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "mnist_multi.yaml"))
    ap.add_argument("--splits", type=int, default=3, help="data splits to average over (default 3)")
    ap.add_argument("--episodes", type=int, default=None, help="policy episodes (default: the recipe's)")
    ap.add_argument("--reward-on", choices=("train", "val"), default=None,
                    help="digits the policy's reward is measured on (default: the recipe's)")
    ap.add_argument("--random", action="store_true",
                    help="also run random search (an agent that never learns) with the same episodes")
    ap.add_argument("--no-nas", action="store_true", help="skip the supernet search (first split)")
    ap.add_argument("--no-transfer", action="store_true", help="skip the zero-shot transfer row (first split)")
    args = ap.parse_args()

    results = [_one_split(args, split) for split in range(max(1, args.splits))]
    names = results[0]["targets"]
    print(f"\nover {len(results)} split(s), policy against the per-target searches (points: per-target minus policy; "
          f"positive = policy less accurate; mean +- standard error over splits):")
    for name in [n for n in ("policy", "polished", "random") if n in results[0]["runs"]]:
        ratios = [r["runs"]["per-target"].seconds / r["runs"][name].seconds for r in results]
        gaps = {t: [100 * (r["test"]["per-target"][t] - r["test"][name][t]) for r in results] for t in names}
        val_gaps = {t: [100 * (r["runs"]["per-target"].choices[t].val_accuracy - r["runs"][name].choices[t].val_accuracy)
                        for r in results] for t in names}
        worst = max(sum(g) / len(g) for g in gaps.values())
        ratio = sum(r["runs"]["per-target"].seconds for r in results) / sum(r["runs"][name].seconds for r in results)
        print(f"{name}: {ratio:.2f}x less total search time (per split: {', '.join(f'{x:.2f}x' for x in ratios)}; "
              f"goal >= 2x: {'met' if ratio >= 2 else 'NOT met'})")
        print("  test points below per-target: " + ", ".join(f"{t} {_mean_se(g)}" for t, g in gaps.items())
              + f" (goal <= 0.5 on every board: {'met' if worst <= 0.5 + 1e-9 else 'NOT met'})")
        print("  validation points below:      " + ", ".join(f"{t} {_mean_se(g)}" for t, g in val_gaps.items()))
        print("  per split (test): " + "; ".join(", ".join(f"{t} {g[i]:+.1f}" for t, g in gaps.items())
                                                  for i in range(len(results))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
