"""Multi-target automated pruning: one learned policy for several boards (AMC-style).

``multi_target_policy`` trains ONE agent (``edgebuild.search.agent.PolicyAgent``, PPO-clip
actor-critic; why not AMC's DDPG: see that module) on episodes of every target at once. An episode
walks the weighted layers in order (He et al., AMC, ECCV 2018) and, per layer, decides its width
(keep ratio of its outputs, prunable layers only) and then its weight density (magnitude pruning,
snapped to 1.0 or ``compress.search.DENSITIES``; below about one half the code generator stores
weights sparsely), so structured and unstructured compression combine as in ``compress.search``:

- *state*: step index and kind, the layer's in/out channels, kernel, stride, input size, conv or
  dense, its share of the MACs and weights, the MACs and weights already removed, the MACs still
  to decide, the previous action, the largest action the budget still allows at this step, and
  the target's budgets as fractions of the unpruned model's figures on that target (flash, SRAM,
  energy, latency; 1.0 where there is no limit). The budget in the state lets one actor serve
  every board, and boards it has never seen (``apply_policy``).
- *action* in [A_MIN, 1], clipped so the budget stays reachable with every undecided layer at its
  floor (one output; weights all dense or all at the lowest density, whichever costs the target
  less). The figures come from the analytic cost model (``Costing.figures``): no training.
- *reward*: accuracy of the pruned net without fine-tuning, on training digits the refit below
  does not use (``reward_on="train"``, the default) or on validation digits (``"val"``). Episodes
  are feasible by construction; a budget the clipping could not enforce would cost ``PENALTY``
  per unit of excess. Why not validation: the policy picks among some 50-200 models per board by
  this reward, and the chosen model is then judged on the validation digits; rewarding on them
  overfits the choice to them. Measured with bench/search.py over 3 data splits of mnist_multi:
  rewarded on validation, the policy was 0.2-0.3 point below the per-target search on validation
  but 0.8, 0.8 and 0.2 point below on the held-out test digits; rewarded on training digits, it
  was 0.4 below, 0.2 below and 0.4 above on test (one fine-tune per board).
  With ``reconstruct`` (default) every changed layer and those after it are refitted by ridge
  least squares to the unpruned net's outputs on ``RECON_SAMPLES`` training images (channel
  reconstruction as in ThiNet/AMC; a sparse layer keeps its largest refitted weights and refits
  each output on that support). Measured on mnist_uno: without it the zero-fine-tune accuracy of
  the Pareto widths is 0.24-0.76 and orders them almost at random; with it, 0.75-0.96, in the
  order of their fine-tuned accuracy; magnitude pruning at density 0.2-0.45 reads 0.79 without
  the sparse refit and 0.95 with it (0.96 after fine-tuning).

Rewards depend only on (widths, densities), not on the target, so they are cached and shared by
all targets: the multi-target search evaluates each model once however many boards want it.
After training, each target's best episode (of those within one standard error of the best
reward, the one keeping the most weights), grown into any budget it leaves unused when that does
not lower its reward, is fine-tuned once (``compress.finetune.train``) from the pruned trained
weights. The fine-tuned models are pooled: each target takes the most accurate (validation) one
that meets its budget, so targets whose budgets nest share the best of several fine-tunes.

``per_target_searches`` is the baseline: ``compress.search.search`` once per target.
"""

from __future__ import annotations

import copy
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgebuild.compress.budget import RESOURCES, net_graph
from edgebuild.compress.finetune import train
from edgebuild.compress.prune import prunable_layers, prune_structured, widths
from edgebuild.compress.search import DENSITIES, TOL, Candidate, _fail, realise, search
from edgebuild.errors import BudgetError, ConfigError
from edgebuild.search.agent import Episode, PolicyAgent, learn, rollout
from edgebuild.search.common import Choice, Progress, SearchResult, TargetBudget
from edgebuild.train import evaluate
from edgebuild.train.layers import Conv2d, Dense
from edgebuild.train.net import Net

A_MIN = 0.05           # smallest keep ratio the actor proposes (widths never fall below one)
PENALTY = 1.0          # reward lost per unit of relative budget excess
RIDGE = 1e-3           # reconstruction: ridge strength relative to the mean diagonal of X'X
RECON_SAMPLES = 512    # training images used to refit the layers after a pruned one
LAYER_FEATURES = 15
STATE_DIM = LAYER_FEATURES + len(RESOURCES)


def _threads():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def layer_table(net: Net) -> list[dict]:
    """Per weighted layer in order: name, kind, in/out channels, kernel, stride, input pixels, MACs, params."""
    rows, shape = [], net.input_shape
    for layer in net.layers:
        out_shape = layer.out_shape(shape)
        if isinstance(layer, Conv2d):
            weights = layer.params["weight"].size
            macs = weights * out_shape[1] * out_shape[2]
            rows.append({"name": layer.name, "conv": 1.0, "in": layer.in_ch, "out": layer.out,
                         "kernel": float(np.sqrt(weights / (layer.out * layer.in_ch // layer.group))),
                         "stride": float(np.mean(np.ravel(layer.stride))), "pixels": shape[1] * shape[2],
                         "macs": macs, "params": weights + layer.out})
        elif isinstance(layer, Dense):
            rows.append({"name": layer.name, "conv": 0.0, "in": layer.in_features, "out": layer.out, "kernel": 1,
                         "stride": 1, "pixels": 1, "macs": layer.out * layer.in_features,
                         "params": layer.out * layer.in_features + layer.out})
        shape = out_shape
    return rows


def _design(layer, a: np.ndarray) -> np.ndarray:
    """Rows of ``layer``'s inputs (im2col for a conv) with a trailing 1 for the bias."""
    if isinstance(layer, Conv2d):
        p, k = layer.pad, layer.kernel
        a = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p))) if p else a
        win = sliding_window_view(a, (k, k), axis=(2, 3))[:, :, ::layer.stride, ::layer.stride]
        a = win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, layer.in_ch * k * k)
    return np.hstack([a.astype(np.float64), np.ones((len(a), 1))])


def _rows(layer, y: np.ndarray) -> np.ndarray:
    """Pre-activation outputs as (rows, out channels), matching ``_design``."""
    return y.transpose(0, 2, 3, 1).reshape(-1, y.shape[1]) if isinstance(layer, Conv2d) else y


class Evaluator:
    """(widths, densities) -> pruned net and reward (cached, shared by every target) and IR graph.

    With reconstruction the work is cached per *prefix*: a block (a weighted layer and the layers
    up to the next one) has weights and outputs fixed by the widths and densities of the layers up
    to it, so each block is refitted and run once per prefix however many episodes share it (the
    episodes of a search mostly differ in their later layers).
    """

    def __init__(self, net: Net, ds, *, reconstruct: bool, seed: int, reward_samples: int | None,
                 reward_on: str = "train"):
        if reward_on not in ("train", "val"):
            raise ConfigError(f"reward_on must be 'train' or 'val', got {reward_on!r}", field="search.policy.reward_on",
                              fix="use train (held-out training digits, the default) or val")
        self.net, self.reconstruct = net, reconstruct
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(ds.y_train))
        self.x_fit = ds.x_train[np.sort(order[:RECON_SAMPLES])]
        if reward_on == "val":
            n = len(ds.y_val) if reward_samples is None else min(reward_samples, len(ds.y_val))
            pick = np.sort(rng.permutation(len(ds.y_val))[:n])
            self.x, self.y = ds.x_val[pick], ds.y_val[pick]
        else:       # training digits the refit does not use (all of them when there are too few)
            rest = order[RECON_SAMPLES:] if len(order) > RECON_SAMPLES else order
            pick = np.sort(rest[:len(rest) if reward_samples is None else reward_samples])
            self.x, self.y = ds.x_train[pick], ds.y_train[pick]
        self.targets, a = {}, self.x_fit
        for layer in net.layers:
            a = layer.forward(a)
            if isinstance(layer, (Conv2d, Dense)):
                self.targets[layer.name] = a
        weighted = [i for i, layer in enumerate(net.layers) if isinstance(layer, (Conv2d, Dense))]
        self.spans = list(zip(weighted, weighted[1:] + [len(net.layers)]))
        self.stem_fit, self.stem_reward = self.x_fit, self.x
        for layer in net.layers[:weighted[0]]:
            self.stem_fit, self.stem_reward = layer.forward(self.stem_fit), layer.forward(self.stem_reward)
        self.rewards: dict[tuple, float] = {}
        self.graphs: dict[tuple, object] = {}
        self.normal: dict[tuple, tuple] = {}
        self.blocks: dict[tuple, tuple] = {}
        self.hits = 0
        self.seconds = {"evaluation": 0.0, "costing": 0.0}

    @staticmethod
    def key(keep: dict[str, int], density: dict[str, float]) -> tuple:
        return tuple(sorted(keep.items())), tuple(sorted((n, d) for n, d in density.items() if d < 1.0))

    def realise(self, keep: dict[str, int], density: dict[str, float]) -> Net:
        """``net`` L1-pruned to ``keep`` and magnitude-pruned to ``density`` (masks, held by the
        fine-tuning); with reconstruction, every changed layer and those after it are refitted."""
        if not self.reconstruct:
            return realise(self.net, keep, density)
        return self._walk(keep, density)[0]

    def _kept(self, keep: dict[str, int]) -> dict[str, np.ndarray]:
        """Original output indices each layer keeps: prune a copy whose biases are 0..out-1 (L1
        ranks weights only, so the copy keeps the same outputs) and read the biases back."""
        probe = prune_structured(self.net, {})
        for layer in probe.layers:
            if isinstance(layer, (Conv2d, Dense)):
                layer.params["bias"] = np.arange(layer.out, dtype=np.float64)
        return {layer.name: layer.params["bias"].astype(int) for layer in prune_structured(probe, keep).layers
                if isinstance(layer, (Conv2d, Dense))}

    def _walk(self, keep: dict[str, int], density: dict[str, float], net: bool = True) -> tuple[Net | None, np.ndarray]:
        """The refitted pruned net (None unless ``net``) and its logits on the reward images.
        Block by block from the first changed layer (fewer inputs or outputs, or a density below 1): ridge
        regression of the unpruned layer's (kept) outputs on the pruned net's inputs to it; a
        sparse layer keeps the largest refitted weights and refits each output on its support.
        Each block's weights, mask and outputs are cached by its prefix."""
        blocks, prefix, started, narrowed = [], (), False, False
        for first, _ in self.spans:
            layer = self.net.layers[first]
            d = density.get(layer.name, 1.0)
            width = keep.get(layer.name, layer.out)
            started = started or d < 1.0 or narrowed or width < layer.out      # fewer inputs or outputs
            prefix += ((layer.name, width, d),)
            blocks.append((prefix, started))
            narrowed = width < layer.out
        if not net and blocks[-1][0] in self.blocks:
            return None, self.blocks[blocks[-1][0]][2]
        pruned, kept = prune_structured(self.net, keep), None
        a_fit, a_rew = self.stem_fit, self.stem_reward
        for (first, stop), (block, started) in zip(self.spans, blocks):
            layer = pruned.layers[first]
            if block not in self.blocks:
                solved = None
                if started:
                    kept = kept if kept is not None else self._kept(keep)
                    solved = self._solve(layer, a_fit, block[:-1], kept[layer.name], block[-1][2])
                    layer.params["weight"], layer.params["bias"] = solved[0], solved[1]
                last = stop == len(pruned.layers)
                out_fit, out_rew = (None if last else a_fit), a_rew
                for nxt in pruned.layers[first:stop]:
                    out_fit = None if last else nxt.forward(out_fit)
                    out_rew = nxt.forward(out_rew)
                self.blocks[block] = (solved, out_fit, out_rew)
            solved, a_fit, a_rew = self.blocks[block]
            if solved is not None:
                layer.params["weight"], layer.params["bias"] = solved[0].copy(), solved[1].copy()
                if solved[2] is not None:
                    pruned.set_mask(f"{layer.name}.weight", solved[2])
        return pruned, a_rew

    def _solve(self, layer, a: np.ndarray, prefix: tuple, kept: np.ndarray, d: float) -> tuple:
        """(weight, bias, mask or None) of ``layer`` refitted on its inputs ``a``."""
        gram, xty = self._normal_equations(layer, a, prefix)
        xty = xty[:, kept]
        sol = np.linalg.solve(gram, xty)                          # (inputs + 1, outputs)
        shape = layer.params["weight"].shape
        mask = None
        if d < 1.0:
            w = sol[:-1].T.reshape(-1)
            mask = np.zeros(w.size, np.float32)
            mask[np.argsort(-np.abs(w), kind="stable")[:max(1, int(round(w.size * d)))]] = 1.0
            mask = mask.reshape(shape[0], -1)
            sol[:] = 0.0
            for o in range(shape[0]):
                idx = np.append(np.flatnonzero(mask[o]), len(gram) - 1)
                sol[idx, o] = np.linalg.solve(gram[np.ix_(idx, idx)], xty[idx, o])
            mask = mask.reshape(shape)
        dtype = layer.params["weight"].dtype
        return (np.ascontiguousarray(sol[:-1].T.reshape(shape)).astype(dtype), sol[-1].astype(dtype), mask)

    def _normal_equations(self, layer, a: np.ndarray, prefix: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Ridge-regularised X'X and X'Y (all the unpruned layer's outputs) for ``layer``'s inputs
        ``a``, cached by the widths and densities of the layers before it (which fix ``a``)."""
        key = (prefix, layer.name)
        if key not in self.normal:
            x = _design(layer, a)
            gram = x.T @ x
            gram[np.diag_indices_from(gram)] += RIDGE * np.mean(np.diag(gram))
            self.normal[key] = gram, x.T @ _rows(layer, self.targets[layer.name]).astype(np.float64)
        return self.normal[key]

    def reward(self, keep: dict[str, int], density: dict[str, float]) -> float:
        """Accuracy of the pruned net on the reward digits, without fine-tuning; cached."""
        key = self.key(keep, density)
        if key in self.rewards:
            self.hits += 1
        else:
            t0 = time.perf_counter()
            if self.reconstruct:
                logits = self._walk(keep, density, net=False)[1]
                self.rewards[key] = float(np.mean(logits.argmax(axis=1) == self.y)) if len(self.y) else 0.0
            else:
                self.rewards[key] = evaluate(realise(self.net, keep, density), self.x, self.y)
            self.seconds["evaluation"] += time.perf_counter() - t0
        return self.rewards[key]

    def graph(self, keep: dict[str, int], density: dict[str, float]):
        """The IR graph of the pruned net without refitting (its cost depends on shapes and on how
        many weights are zero, not on their values)."""
        key = self.key(keep, density)
        if key not in self.graphs:
            t0 = time.perf_counter()
            self.graphs[key] = net_graph(realise(self.net, keep, dict(key[1])))
            self.seconds["costing"] += time.perf_counter() - t0
        return self.graphs[key]


class PruningEnv:
    """Episodes of pruning for one target (the agent protocol of ``edgebuild.search.agent``).

    Walking the weighted layers in order, an episode decides each prunable layer's width (keep
    ratio) and then every weighted layer's weight density (snapped to 1.0 or ``DENSITIES``; below
    about one half the code generator stores weights sparsely). Every decision is clipped so the
    budget stays reachable with the undecided layers at their floor: one output each, and weights
    either all dense or all at the lowest density, whichever costs this target less.
    """

    def __init__(self, net: Net, target: TargetBudget, evaluator: Evaluator):
        self.target, self.ev = target, evaluator
        self.table = layer_table(net)
        prunable = set(prunable_layers(net))
        self.steps = [(kind, row["name"]) for row in self.table
                      for kind in (("width", "density") if row["name"] in prunable else ("density",))]
        self.n_steps = len(self.steps)
        self.full = {n: w for n, w in widths(net).items() if n in prunable}
        self.figs: dict[tuple, dict] = {}
        self.limits: dict[tuple, float] = {}
        self.base = self.figures(self.full, {})
        self.total_macs = sum(r["macs"] for r in self.table)
        self.total_params = sum(r["params"] for r in self.table)
        self.chans = max(max(r["in"] if r["conv"] else 0, r["out"]) for r in self.table)
        limits = target.budget.limits()
        self.budget_state = [min(1.0, limits[k] / self.base[k]) if k in limits and self.base[k] > 0 else 1.0
                             for k in RESOURCES]
        ones = {n: 1 for n in self.full}
        sparsest = {r["name"]: DENSITIES[-1] for r in self.table}
        self.floor_density = min(({}, sparsest), key=lambda d: self.excess(ones, d))

    def figures(self, keep: dict[str, int], density: dict[str, float]) -> dict:
        key = self.ev.key(keep, density)
        if key not in self.figs:
            self.figs[key] = self.target.costing.figures(self.ev.graph(keep, density))
        return self.figs[key]

    def excess(self, keep: dict[str, int], density: dict[str, float]) -> float:
        return self.target.budget.excess(self.figures(keep, density))

    def decode(self, taken: list[float], floor: bool = False) -> tuple[dict[str, int], dict[str, float]]:
        """(widths, densities) of a possibly partial list of taken actions; undecided layers stay
        full and dense, or sit at the floor when ``floor``."""
        keep = {n: 1 for n in self.full} if floor else dict(self.full)
        density = dict(self.floor_density) if floor else {}
        for (kind, name), a in zip(self.steps, taken):
            if kind == "width":
                keep[name] = max(1, int(round(a * self.full[name])))
            else:
                density[name] = a
        return keep, {n: d for n, d in density.items() if d < 1.0}

    def smallest(self) -> tuple[dict[str, int], dict[str, float]]:
        return self.decode([], floor=True)

    def check_reachable(self) -> None:
        """Raise BudgetError naming the target when not even one output per layer meets its budget."""
        keep, density = self.smallest()
        if self.excess(keep, density) > 0:
            raise _fail(self.target.budget, Candidate(keep, self.figures(keep, density), "one output per layer",
                                                      density=density), 0.0,
                        f"target '{self.target.name}': no pruning meets the budget, not even one output per layer",
                        field=self.target.field)

    def _shares(self, keep: dict[str, int], density: dict[str, float]) -> tuple[float, float]:
        """Fractions of the chain's MACs and stored weights that widths and densities keep (a layer
        scales with its own and its input's width)."""
        macs = params = 0.0
        prev = 1.0
        for row in self.table:
            own = keep.get(row["name"], row["out"]) / row["out"]
            macs += row["macs"] * own * prev
            params += row["params"] * own * prev * density.get(row["name"], 1.0)
            prev = own
        return macs / self.total_macs, params / self.total_params

    def kept_share(self, taken: list[float]) -> float:
        """Fraction of the chain's weights an episode keeps."""
        return self._shares(*self.decode(taken))[1]

    def observe(self, t: int, taken: list[float]) -> np.ndarray:
        kind, name = self.steps[t]
        i = next(j for j, r in enumerate(self.table) if r["name"] == name)
        row = self.table[i]
        macs, params = self._shares(*self.decode(taken))
        rest = sum(r["macs"] for r in self.table[i + 1:]) / self.total_macs
        return np.array([t / self.n_steps, float(kind == "density"), min(row["in"], self.chans) / self.chans,
                         row["out"] / self.chans, row["kernel"] / max(r["kernel"] for r in self.table),
                         1.0 / row["stride"], row["pixels"] / max(r["pixels"] for r in self.table), row["conv"],
                         row["macs"] / self.total_macs, row["params"] / self.total_params,
                         1.0 - macs, 1.0 - params, rest, taken[-1] if taken else 1.0, self.limit(t, taken),
                         *self.budget_state])

    def _fits(self, taken: list[float], value: float) -> bool:
        """Whether the budget stays reachable after taking ``value`` (undecided layers at the floor)."""
        return self.excess(*self.decode(taken + [value], floor=True)) == 0

    def limit(self, t: int, taken: list[float]) -> float:
        """The largest action step ``t`` may take with the budget still reachable: the widest
        width (binary search on the cost model) or the highest density of the grid."""
        key = (t, tuple(taken))
        if key not in self.limits:
            kind, name = self.steps[t]
            if kind == "density":
                self.limits[key] = next((d for d in (1.0, *DENSITIES) if self._fits(taken, d)), DENSITIES[-1])
            else:
                full, lo, hi = self.full[name], 1, self.full[name]
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if self._fits(taken, mid / full) else (lo, mid - 1)
                self.limits[key] = lo / full
        return self.limits[key]

    def take(self, t: int, a: float, taken: list[float]) -> float:
        """The action really taken for proposal ``a``: a width clipped to ``limit``; a density
        snapped to the nearest grid value that keeps the budget reachable."""
        kind, name = self.steps[t]
        if kind == "density":
            grid = sorted((1.0, *DENSITIES), key=lambda d: (abs(d - a), -d))
            return next((d for d in grid if self._fits(taken, d)), grid[-1])
        full = self.full[name]
        return min(self.limit(t, taken), max(1, int(round(a * full))) / full)

    def reward(self, taken: list[float]) -> float:
        keep, density = self.decode(taken)
        return self.ev.reward(keep, density) - PENALTY * self.excess(keep, density)


def _tune(env: PruningEnv, taken: list[float], ds, *, epochs: int, lr: float, seed: int, warm: bool) -> tuple:
    """(net, val accuracy, detail) of the episode's model fine-tuned once: from the L1/magnitude
    pruned trained weights, or from the least-squares refitted ones when ``warm``."""
    keep, density = env.decode(taken)
    pruned = env.ev.realise(keep, density) if warm else realise(env.ev.net, keep, density)
    if epochs:
        train(pruned, ds, epochs=epochs, lr=lr, seed=seed)
    return pruned, evaluate(pruned, ds.x_val, ds.y_val), {"widths": keep, "density": density}


def _polish(net: Net, acc: float, ds, *, epochs: int, lr: float, seed: int) -> tuple[Net, float]:
    """As ``compress.search`` treats its winner: a second pass of ``epochs`` at ``lr / 2``
    (seed + 1), kept unless validation accuracy falls."""
    if not epochs:
        return net, acc
    longer = copy.deepcopy(net)
    train(longer, ds, epochs=epochs, lr=lr / 2, seed=seed + 1)
    longer_acc = evaluate(longer, ds.x_val, ds.y_val)
    return (longer, longer_acc) if longer_acc >= acc else (net, acc)


def _assign(env: PruningEnv, pool: dict, own, base_acc: float) -> tuple[object, dict]:
    """The key of the most accurate fine-tuned model in ``pool`` (key -> (net, acc, detail)) that
    meets ``env``'s budgets when costed on its target (its own model ``own`` first on a tie), and
    that model's figures there. Any board's model may serve another: a model fine-tuned for the Uno
    that also fits the Mega and is more accurate than the Mega's own is the Mega's best choice."""
    target, best = env.target, None
    for key in sorted(pool, key=lambda k: (-pool[k][1], k != own)):
        figures = target.costing.net_figures(pool[key][0])
        if not target.budget.shortfalls(figures):
            return key, figures
        best = best or (key, figures)
    net, acc, tuned = pool[own]
    cand = Candidate(tuned["widths"], best[1], f"policy ({target.name})", acc, net, tuned["density"])
    raise _fail(target.budget, cand, base_acc, f"target '{target.name}': the policy's best pruned model "
                                               f"misses its budget (base val accuracy {base_acc:.4f})",
                field=target.field)


def _unpruned(env: PruningEnv, base_acc: float, detail: dict) -> Choice | None:
    """The unpruned net when it already meets the target's budgets."""
    if env.excess(env.full, {}) == 0:
        return Choice(env.target.name, env.ev.net, base_acc, env.base, "policy",
                      {**detail, "widths": dict(env.full), "density": {}, "unpruned": True})
    return None


def _finish(env: PruningEnv, taken: list[float], detail: dict, base_acc: float, ds, *, epochs: int, lr: float,
            seed: int, warm: bool, polish: bool) -> Choice:
    """One board's episode fine-tuned (and polished) and checked against every budget; the
    unpruned net when it already fits."""
    done = _unpruned(env, base_acc, detail)
    if done:
        return done
    net, acc, tuned = _tune(env, taken, ds, epochs=epochs, lr=lr, seed=seed, warm=warm)
    if polish:
        net, acc = _polish(net, acc, ds, epochs=epochs, lr=lr, seed=seed)
    figures = _assign(env, {0: (net, acc, tuned)}, 0, base_acc)[1]
    # The accuracy limit is judged by the caller against every method's choice (edgebuild.stages.search).
    return Choice(env.target.name, net, acc, figures, "policy", {**detail, **tuned})


def _pick(env: "PruningEnv", found: list[tuple], n: int) -> tuple:
    """The episode to fine-tune among (reward, taken, number): rewards within one standard error
    (``sqrt(p (1 - p) / n)`` on ``n`` images) of the best are a statistical tie, and of those the
    one keeping the most weights wins (more capacity recovers more in fine-tuning)."""
    top = max(r for r, _, _ in found)
    tied = [f for f in found if f[0] >= top - np.sqrt(max(top * (1 - top), 1e-12) / n) - TOL]
    return max(tied, key=lambda f: (env.kept_share(f[1]), f[0], -f[2]))


def _fill(env: "PruningEnv", taken: list[float], reward: float) -> tuple[list[float], float]:
    """Grow an episode into any budget it leaves unused: one output or one density step at a time,
    layer by layer, while every budget is still met; kept only if the reward does not fall."""
    grown, changed = list(taken), True
    while changed:
        changed = False
        for t, (kind, name) in enumerate(env.steps):
            if kind == "width":
                up = min(1.0, (round(grown[t] * env.full[name]) + 1) / env.full[name])
            else:
                up = min((d for d in (1.0, *DENSITIES) if d > grown[t] + 1e-12), default=grown[t])
            trial = grown[:t] + [up] + grown[t + 1:]
            if up != grown[t] and env.excess(*env.decode(trial)) == 0:
                grown, changed = trial, True
    new = env.reward(grown)
    return (grown, new) if new >= reward else (list(taken), reward)


def _check_names(targets: list[TargetBudget]) -> None:
    names = [t.name for t in targets]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"targets must be a non-empty list of distinct boards, got {names}", field="targets",
                          fix="list each board once")


def multi_target_policy(net: Net, ds, targets: list[TargetBudget], *, episodes: int = 150, epochs: int = 6,
                        lr: float = 1e-3, seed: int = 0, progress: Progress | None = None,
                        reconstruct: bool = True, reward_samples: int | None = None, batch: int = 8,
                        warm_start: bool = False, polish: bool = False, reward_on: str = "train",
                        agent: PolicyAgent | None = None) -> SearchResult:
    """For every target the most accurate pruned ``net`` meeting its budget, from ONE trained policy.

    ``episodes`` in total, round-robin over ``targets`` (``batch`` episodes per target per PPO
    update); the chosen episode of each target (module docstring) is fine-tuned once (``epochs``,
    ``lr``, ``seed``), from the L1/magnitude-pruned trained weights, or from the least-squares
    refitted ones when ``warm_start`` (measured on mnist_multi, 6 models x 3 seeds: the refitted
    start scores 0.3-0.8 point lower on the 1,000 test digits, while validation is mixed). The
    fine-tuned models are then pooled: every board takes the most accurate one (validation) that
    meets its budgets, its own or another board's, so boards whose budgets nest share the best of
    several fine-tunes for free. A target whose budget the unpruned net meets gets the unpruned
    net. ``reconstruct``: refit layers after pruning before measuring the reward;
    ``reward_on``: the digits the reward is measured on, "train" (training digits the refit does
    not use) or "val"; ``reward_samples``: how many (None: all); ``polish``: a second
    fine-tuning pass, as ``compress.search`` gives its winner, once per distinct chosen model.
    ``agent``: the agent to train (default a fresh ``PolicyAgent`` seeded with ``seed``); e.g. one
    with ``lr=0, decay=1`` never learns and is random search with the same clipping (bench/search.py
    ``--random``). ``stats``: episodes, evaluations, cache_hits, cost_models, seconds_agent/evaluation/costing/
    finetune, best_reward_history (per target, after each of its episodes) and ``agent``, the
    trained ``PolicyAgent`` for ``apply_policy``.
    Raises BudgetError naming the target when no width vector meets its resource budgets (before
    any training) or when its fine-tuned model loses more than ``max_accuracy_drop``.
    """
    say = progress or (lambda _m: None)
    _check_names(targets)
    t0 = time.perf_counter()
    with _threads():
        ev = Evaluator(net, ds, reconstruct=reconstruct, seed=seed, reward_samples=reward_samples,
                       reward_on=reward_on)
        envs = [PruningEnv(net, t, ev) for t in targets]
        for env in envs:
            env.check_reachable()
        base_acc = evaluate(net, ds.x_val, ds.y_val)
        agent = agent or PolicyAgent(STATE_DIM, seed=seed, a_min=A_MIN)
        best: list[tuple | None] = [None] * len(envs)
        seen: list[dict] = [{} for _ in envs]
        history: list[list[float]] = [[] for _ in envs]

        def on_episode(ep: Episode, number: int) -> None:
            seen[ep.env].setdefault(ev.key(*envs[ep.env].decode(ep.taken)), (ep.reward, ep.taken, number))
            if best[ep.env] is None or ep.reward > best[ep.env][0]:
                best[ep.env] = (ep.reward, ep.taken, number)
            history[ep.env].append(best[ep.env][0])
            if number % 30 == 0 or number == episodes:
                say(f"policy: episode {number}/{episodes}, best per target: "
                    + " ".join(f"{e.target.name} {b[0]:.3f}" for e, b in zip(envs, best) if b))

        t_learn, before = time.perf_counter(), sum(ev.seconds.values())
        learn(agent, envs, episodes, batch=batch, on_episode=on_episode)
        t_agent = time.perf_counter() - t_learn - (sum(ev.seconds.values()) - before)
        t_ft, choices, pool, own, details = time.perf_counter(), {}, {}, {}, {}
        for env, found in zip(envs, seen):
            reward, taken, number = _pick(env, list(found.values()), len(ev.y))
            taken, reward = _fill(env, taken, reward)
            details[env.target.name] = {"episode": number, "reward": reward}
            done = _unpruned(env, base_acc, details[env.target.name])
            if done:
                choices[env.target.name] = done
                continue
            key = own[env.target.name] = ev.key(*env.decode(taken))
            if key in pool:
                say(f"policy: {env.target.name}: same widths and densities as an earlier board, fine-tuned once")
                continue
            say(f"policy: fine-tuning {env.target.name}: widths, densities {env.decode(taken)} "
                f"(episode {number}, reward {reward:.4f})")
            pool[key] = _tune(env, taken, ds, epochs=epochs, lr=lr, seed=seed, warm=warm_start and reconstruct)
        assigned = {}
        for env in envs:
            if env.target.name in own:
                assigned[env.target.name] = _assign(env, pool, own[env.target.name], base_acc)[0]
        if polish:
            for key in dict.fromkeys(assigned.values()):
                net, acc, tuned = pool[key]
                pool[key] = (*_polish(net, acc, ds, epochs=epochs, lr=lr, seed=seed), tuned)
        for env in envs:
            name = env.target.name
            if name not in assigned:
                continue
            key = assigned[name]
            net, acc, tuned = pool[key]
            figures = env.target.costing.net_figures(net)
            if env.target.budget.shortfalls(figures):     # polishing keeps widths and masks: cannot happen
                raise _fail(env.target.budget, Candidate(tuned["widths"], figures, f"policy ({name})", acc, net,
                                                         tuned["density"]), base_acc,
                            f"target '{name}': the polished model misses its budget", field=env.target.field)
            detail = {**details[name], **tuned}
            if key != own[name]:
                donor = next(n for n, k in own.items() if k == key)
                detail["shared_from"] = donor
                say(f"policy: {name} takes the model fine-tuned for {donor} (val {acc:.4f}, more accurate than "
                    f"its own {pool[own[name]][1]:.4f}, and within its budget)")
            choices[name] = Choice(name, net, acc, figures, "policy", detail)
        t_ft = time.perf_counter() - t_ft
    stats = {"episodes": episodes, "evaluations": len(ev.rewards), "cache_hits": ev.hits,
             "seconds_agent": t_agent,
             "seconds_evaluation": ev.seconds["evaluation"], "seconds_costing": ev.seconds["costing"],
             "cost_models": len(ev.graphs),
             "seconds_finetune": t_ft, "best_reward_history": {e.target.name: h for e, h in zip(envs, history)},
             "agent": agent}
    return SearchResult(choices, time.perf_counter() - t0, base_acc, stats)


def apply_policy(agent_or_result: PolicyAgent | SearchResult, net: Net, ds, target: TargetBudget, *,
                 rollouts: int = 8, epochs: int = 6, lr: float = 1e-3, seed: int = 0,
                 progress: Progress | None = None, reconstruct: bool = True,
                 reward_samples: int | None = None, polish: bool = False, warm_start: bool = False,
                 reward_on: str = "train") -> Choice:
    """Zero-shot transfer: prune ``net`` for a ``target`` the policy was not trained on.

    Runs the trained actor (``SearchResult.stats["agent"]`` or a ``PolicyAgent``) without learning:
    one deterministic rollout (the actor's means) and ``rollouts - 1`` with the agent's final, small
    noise (``sigma_min``, from ``seed``); the highest-reward one, grown into unused budget (as in
    ``multi_target_policy``), is fine-tuned once. Same BudgetError rules as ``multi_target_policy``.
    """
    say = progress or (lambda _m: None)
    agent = agent_or_result.stats["agent"] if isinstance(agent_or_result, SearchResult) else agent_or_result
    with _threads():
        ev = Evaluator(net, ds, reconstruct=reconstruct, seed=seed, reward_samples=reward_samples,
                       reward_on=reward_on)
        env = PruningEnv(net, target, ev)
        env.check_reachable()
        rng = np.random.default_rng(seed)
        eps = [rollout(agent, env, explore=i > 0, sigma=agent.sigma_min, rng=rng) for i in range(max(1, rollouts))]
        pick = max(range(len(eps)), key=lambda i: eps[i].reward)
        taken, reward = _fill(env, eps[pick].taken, eps[pick].reward)
        say(f"policy: {target.name}: widths, densities {env.decode(taken)} "
            f"(rollout {pick + 1}/{len(eps)}, reward {reward:.4f})")
        base_acc = evaluate(net, ds.x_val, ds.y_val)
        return _finish(env, taken, {"rollout": pick, "reward": reward, "transfer": True}, base_acc, ds,
                       epochs=epochs, lr=lr, seed=seed, warm=warm_start and reconstruct, polish=polish)


def per_target_searches(net: Net, ds, targets: list[TargetBudget], *, epochs: int = 6, lr: float = 1e-3,
                        seed: int = 0, progress: Progress | None = None) -> SearchResult:
    """The baseline: ``compress.search.search`` run independently for every target (its own
    sensitivity analysis and fine-tunes). ``seconds`` is the total wall time."""
    _check_names(targets)
    t0 = time.perf_counter()
    choices, seconds = {}, {}
    with _threads():
        base_acc = evaluate(net, ds.x_val, ds.y_val)
        for target in targets:
            t1 = time.perf_counter()
            tell = (lambda m, name=target.name: progress(f"{name}: {m}")) if progress else None
            try:
                best, cands = search(net, ds, target.costing, target.budget, epochs=epochs, lr=lr, seed=seed,
                                     progress=tell, field=target.field)
            except BudgetError as e:        # fine-tuned, but outside the accuracy limit: still the best it found
                best, cands = getattr(e, "candidate", None), []
                if best is None or best.net is None or target.budget.shortfalls(best.figures):
                    raise
                if progress:
                    progress(f"{target.name}: {str(e).splitlines()[0][:160]}")
            choices[target.name] = Choice(target.name, best.net, best.val_accuracy,
                                          target.costing.net_figures(best.net), "per-target",
                                          {"widths": best.keep, "density": best.density, "origin": best.origin,
                                           "candidates": len(cands)})
            seconds[target.name] = time.perf_counter() - t1
    return SearchResult(choices, time.perf_counter() - t0, base_acc, {"seconds_per_target": seconds})
