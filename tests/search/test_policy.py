"""The multi-target pruning policy (edgebuild.search.policy) and its agent (edgebuild.search.agent).

A small CNN on scikit-learn's 8x8 digits, a tight-flash Uno and a loose host-like target. Budgets
and widths are checked independently of the policy's bookkeeping: figures recomputed by the cost
model from the returned net, widths and weight sparsity read back from the exported ONNX file,
accuracy recomputed with onnxruntime; the least-squares refit against numpy's lstsq.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from edgebuild_testlib import digits8x8, trained_net
from onnx import numpy_helper

from edgebuild.compress.budget import Budget, Costing
from edgebuild.config import load_recipe
from edgebuild.errors import BudgetError, ConfigError
from edgebuild.search.agent import PolicyAgent, learn, rollout
from edgebuild.search.common import SearchResult, TargetBudget
from edgebuild.compress.prune import prune_structured
from edgebuild.search.policy import (A_MIN, RIDGE, STATE_DIM, Evaluator, PruningEnv, apply_policy,
                                     multi_target_policy, per_target_searches)
from edgebuild.train import export_onnx

ARCH = [{"conv": {"out": 6, "kernel": 3, "pad": 1}}, {"relu": {}}, {"maxpool": {"kernel": 2}},
        {"conv": {"out": 8, "kernel": 3, "pad": 0}}, {"relu": {}}, {"flatten": {}},
        {"dense": {"out": 24}}, {"relu": {}}, {"dense": {"out": 10}}]
RUN = dict(episodes=48, epochs=2, lr=2e-3, seed=0)


@pytest.fixture(scope="module")
def digits():
    return digits8x8()


@pytest.fixture(scope="module")
def net(digits):
    return trained_net(ARCH, digits)


@pytest.fixture(scope="module")
def uno():
    return load_recipe("recipes/mnist_uno.yaml")["target"]


def _uno_target(uno, net, flash_cut: int, name: str = "uno-tight") -> TargetBudget:
    costing = Costing(uno["energy"], uno["f_cpu"])
    full = costing.net_figures(net)
    return TargetBudget(name, costing, Budget(flash_bytes=full["flash_bytes"] - flash_cut, sram_bytes=2048,
                                               max_accuracy_drop=0.25))


@pytest.fixture(scope="module")
def targets(uno, net):
    host = load_recipe("recipes/mnist_uno.yaml", ["target=host"])["target"]
    return [_uno_target(uno, net, 700), TargetBudget.from_target(host, {"max_accuracy_drop": 0.25})]


@pytest.fixture(scope="module")
def result(net, digits, targets) -> SearchResult:
    return multi_target_policy(net, digits, targets, **RUN)


def _onnx_weights(net, tmp_path, name="m.onnx") -> dict[str, np.ndarray]:
    path = tmp_path / name
    export_onnx(net, path)
    model = onnx.load(path)
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}, path


def test_every_choice_meets_its_budget_by_independent_checks(result, targets, net, digits, tmp_path):
    assert set(result.choices) == {"uno-tight", "host"}
    for target in targets:
        choice = result.choices[target.name]
        assert choice.method == "policy"
        assert target.budget.shortfalls(target.costing.net_figures(choice.net)) == {}   # recomputed figures
        weights, path = _onnx_weights(choice.net, tmp_path, f"{target.name}.onnx")
        for layer, width in choice.detail["widths"].items():
            assert weights[f"{layer}.weight"].shape[0] == width                       # ONNX shapes
        for layer, density in choice.detail["density"].items():
            w = weights[f"{layer}.weight"]
            assert np.count_nonzero(w) <= max(1, round(w.size * density))
        sess = ort.InferenceSession(str(path))
        feed = sess.get_inputs()[0].name
        preds = [sess.run(None, {feed: x[None]})[0].argmax() for x in digits.x_val.astype(np.float32)]
        acc = float(np.mean(np.array(preds) == digits.y_val))
        assert acc == pytest.approx(choice.val_accuracy, abs=1e-9)
        assert result.base_val_accuracy - acc <= target.budget.max_accuracy_drop + 1e-9
    tight = result.choices["uno-tight"]
    assert tight.figures["flash_bytes"] <= targets[0].budget.flash_bytes
    assert result.choices["host"].detail.get("unpruned") and result.choices["host"].net is net
    stats = result.stats
    assert stats["episodes"] == RUN["episodes"]    # one reward per episode, plus one per grown choice
    assert RUN["episodes"] <= stats["evaluations"] + stats["cache_hits"] <= RUN["episodes"] + len(targets)
    assert isinstance(stats["agent"], PolicyAgent) and result.seconds >= stats["seconds_finetune"] > 0


def test_same_seed_same_result(result, net, digits, targets):
    again = multi_target_policy(net, digits, targets, **RUN)
    for name, choice in result.choices.items():
        assert again.choices[name].detail == choice.detail
        assert again.choices[name].val_accuracy == choice.val_accuracy


def test_the_budget_is_part_of_the_state(result, net, digits, targets):
    """Two targets on the same layer differ only in the budget part of the state (the flash ratio
    and the headroom it leaves this layer), so a trained actor can tell them apart (the toy test
    below shows actions that do differ by budget); the clipped actions taken do differ."""
    ev = Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=None)
    tight, loose = (PruningEnv(net, t, ev) for t in targets)
    s_tight, s_loose = tight.observe(0, []), loose.observe(0, [])
    assert s_tight[-4] < 1.0 and np.all(s_loose[-4:] == 1.0)     # flash ratio, and no limit at all
    differ = np.flatnonzero(s_tight != s_loose)
    assert set(differ) <= {len(s_tight) - 5, len(s_tight) - 4}  # the budget's headroom and flash ratio
    agent = result.stats["agent"]
    taken = [rollout(agent, env, explore=False).taken for env in (tight, loose)]
    assert taken[0] != taken[1]


def test_impossible_budget_raises_budget_error_naming_the_target(net, digits, uno):
    costing = Costing(uno["energy"], uno["f_cpu"])
    impossible = TargetBudget("uno-impossible", costing, Budget(flash_bytes=500, sram_bytes=2048))
    with pytest.raises(BudgetError) as err:
        multi_target_policy(net, digits, [impossible], **RUN)
    assert "uno-impossible" in str(err.value) and "flash_bytes" in err.value.shortfalls
    assert err.value.shortfalls["flash_bytes"]["limit"] == 500


def test_duplicate_targets_are_a_config_error(net, digits, targets):
    with pytest.raises(ConfigError):
        multi_target_policy(net, digits, [targets[0], targets[0]], **RUN)


def test_a_given_agent_is_the_one_trained(result, net, digits, targets):
    # an agent that never learns (bench/search.py --random): same episodes, its actor untouched
    frozen = PolicyAgent(STATE_DIM, seed=0, a_min=A_MIN, lr=0.0, decay=1.0)
    before = {k: v.copy() for k, v in frozen.actor.params.items()}
    res = multi_target_policy(net, digits, targets, agent=frozen, **RUN)
    assert res.stats["agent"] is frozen and frozen.updates > 0 and frozen.sigma == frozen.sigma0
    assert all(np.array_equal(before[k], v) for k, v in frozen.actor.params.items())
    assert result.stats["agent"].sigma < result.stats["agent"].sigma0      # the default agent learns
    for t in targets:                                                      # and still meets every budget
        assert not t.budget.shortfalls(res.choices[t.name].figures)


def test_nested_budgets_share_the_best_fine_tuned_model(net, digits, uno):
    """Two Uno budgets, one inside the other: each board's choice must be the most accurate of the
    fine-tuned models (recomputed on the validation digits) whose recomputed figures meet its
    budget, so the looser board never ends up less accurate than the tighter one's model."""
    tight, loose = _uno_target(uno, net, 900, "uno-900"), _uno_target(uno, net, 300, "uno-300")
    res = multi_target_policy(net, digits, [tight, loose], **RUN)
    nets = {name: c.net for name, c in res.choices.items()}
    val = {name: float(np.mean(n.forward(digits.x_val).argmax(axis=1) == digits.y_val)) for name, n in nets.items()}
    for target in (tight, loose):
        choice = res.choices[target.name]
        assert val[target.name] == pytest.approx(choice.val_accuracy, abs=1e-9)
        fits = [name for name, n in nets.items() if not target.budget.shortfalls(target.costing.net_figures(n))]
        assert target.name in fits
        assert val[target.name] >= max(val[name] for name in fits) - 1e-9
        assert choice.detail.get("shared_from", target.name) in nets
    assert val["uno-300"] >= val["uno-900"] - 1e-9


def test_reward_digits_are_held_out_from_the_refit_and_from_validation(net, digits):
    """The default reward is measured on training digits the refit does not use, so the choice is
    not fitted to the validation digits that judge it; reward_on="val" uses validation digits."""
    def rows(a):
        return {x.tobytes() for x in a}
    ev = Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=300)
    assert len(ev.y) == 300 and rows(ev.x) <= rows(digits.x_train)
    assert not rows(ev.x) & rows(ev.x_fit) and not rows(ev.x) & rows(digits.x_val)
    val = Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=None, reward_on="val")
    assert rows(val.x) == rows(digits.x_val) and len(val.y) == len(digits.y_val)
    keep = {"conv1": 4, "conv2": 8, "dense1": 24}
    pruned = val.realise(keep, {})
    assert val.reward(keep, {}) == pytest.approx(float(np.mean(pruned.forward(digits.x_val).argmax(1) == digits.y_val)))
    with pytest.raises(ConfigError) as err:
        Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=None, reward_on="test")
    assert err.value.field == "search.policy.reward_on"


def test_cached_rewards_and_nets_equal_a_fresh_evaluation(net, digits):
    """Blocks are cached by prefix: the net and reward of a (widths, densities) pair must not
    depend on what was evaluated before. Checked against a fresh Evaluator per pair and against
    the numpy forward pass of the realised net."""
    pairs = [({"conv1": 3, "conv2": 8, "dense1": 24}, {}), ({"conv1": 3, "conv2": 5, "dense1": 24}, {"dense1": 0.3}),
             ({"conv1": 3, "conv2": 5, "dense1": 12}, {"dense1": 0.3}), ({"conv1": 6, "conv2": 5, "dense1": 12}, {}),
             ({"conv1": 3, "conv2": 8, "dense1": 24}, {"conv2": 0.45})]
    shared = Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=None)
    for keep, density in pairs:
        fresh = Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=None)
        a, b = shared.realise(keep, density), fresh.realise(keep, density)
        for name, value in b.params().items():
            np.testing.assert_array_equal(a.params()[name], value)
        assert sorted(a.masks) == sorted(b.masks)
        acc = float(np.mean(b.forward(fresh.x).argmax(axis=1) == fresh.y))
        assert shared.reward(keep, density) == pytest.approx(acc, abs=1e-12)
    assert len(shared.blocks) < 4 * len(pairs)               # prefixes were shared


def test_apply_policy_to_an_unseen_target(result, net, digits, uno, tmp_path):
    target = _uno_target(uno, net, 450, name="uno-medium")
    choice = apply_policy(result, net, digits, target, epochs=2, lr=2e-3, seed=0)
    assert choice.target == "uno-medium" and choice.detail["transfer"]
    assert target.budget.shortfalls(target.costing.net_figures(choice.net)) == {}
    weights, _ = _onnx_weights(choice.net, tmp_path)
    assert {k: weights[f"{k}.weight"].shape[0] for k in choice.detail["widths"]} == choice.detail["widths"]


def test_per_target_searches_baseline(net, digits, targets):
    base = per_target_searches(net, digits, targets, epochs=1, lr=2e-3, seed=0)
    assert {c.method for c in base.choices.values()} == {"per-target"}
    for target in targets:
        assert target.budget.shortfalls(target.costing.net_figures(base.choices[target.name].net)) == {}
    assert base.seconds >= sum(base.stats["seconds_per_target"].values()) > 0


def _im2col(x: np.ndarray, k: int, pad: int) -> np.ndarray:
    """Rows (sample, y, x) x columns (channel, ky, kx) of a stride-1 convolution's inputs, by loops."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, w = xp.shape
    rows = [xp[i, :, r:r + k, q:q + k].reshape(-1)
            for i in range(n) for r in range(h - k + 1) for q in range(w - k + 1)]
    return np.array(rows, dtype=np.float64)


def _ridge(design: np.ndarray, target: np.ndarray, lam: float) -> np.ndarray:
    """argmin ||design w - target||^2 + lam ||w||^2, by lstsq on the augmented system."""
    aug = np.vstack([design, np.sqrt(lam) * np.eye(design.shape[1])])
    rhs = np.concatenate([target, np.zeros((design.shape[1],) + target.shape[1:])])
    return np.linalg.lstsq(aug, rhs, rcond=None)[0]


def test_refit_is_the_ridge_least_squares_fit(net, digits):
    """Pruning conv1 refits conv2 (and later layers): conv2's outputs must be the ridge
    least-squares fit of the unpruned conv2's outputs on the pruned conv1's activations."""
    ev = Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=None)
    keep = {"conv1": 3, "conv2": 8, "dense1": 24}
    pruned = ev.realise(keep, {})
    a = ev.x_fit
    for layer in pruned.layers[:3]:                            # conv1, relu, maxpool of the pruned net
        a = layer.forward(a)
    design = np.hstack([_im2col(a, 3, 0), np.ones((len(a) * 2 * 2, 1))])
    full_out = ev.x_fit
    for layer in net.layers[:4]:                               # the unpruned net up to conv2
        full_out = layer.forward(full_out)
    target = full_out.transpose(0, 2, 3, 1).reshape(-1, 8).astype(np.float64)
    want = design @ _ridge(design, target, RIDGE * np.mean(np.sum(design ** 2, axis=0)))
    got = pruned.layers[3].forward(a).transpose(0, 2, 3, 1).reshape(-1, 8)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    plain = prune_structured(net, keep)
    a0 = ev.x_fit
    for layer in plain.layers[:4]:
        a0 = layer.forward(a0)
    plain_err = np.sum((a0.transpose(0, 2, 3, 1).reshape(-1, 8) - target) ** 2)
    assert np.sum((got - target) ** 2) < 0.5 * plain_err      # the refit repairs most of the damage


def test_sparse_refit_keeps_the_density_and_fits_on_the_support(net, digits):
    ev = Evaluator(net, digits, reconstruct=True, seed=0, reward_samples=None)
    pruned = ev.realise({"conv1": 6, "conv2": 8, "dense1": 24}, {"dense2": 0.3})
    w = pruned.params()["dense2.weight"]
    assert np.count_nonzero(w) == round(w.size * 0.3) and "dense2.weight" in pruned.masks
    a = ev.x_fit
    for layer in pruned.layers[:-1]:
        a = layer.forward(a)
    full = np.hstack([a, np.ones((len(a), 1))]).astype(np.float64)
    lam = RIDGE * np.mean(np.sum(full ** 2, axis=0))
    target = net.forward(ev.x_fit).astype(np.float64)
    for o in range(10):                                         # each logit: ridge fit on its support
        design = full[:, list(np.flatnonzero(w[o])) + [full.shape[1] - 1]]
        want = design @ _ridge(design, target[:, o], lam)
        got = a @ w[o] + pruned.params()["dense2.bias"][o]
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


class _Toy:
    """Four decisions whose optimum depends on a budget b in the state: a_t* = b * (0.5 + 0.15 t)."""

    n_steps = 4

    def __init__(self, b: float):
        self.b = b

    def observe(self, t, taken):
        return np.array([t / 4, self.b, taken[-1] if taken else 1.0])

    def take(self, t, a, taken):
        return a

    def reward(self, taken):
        return -float(np.mean([abs(a - self.b * (0.5 + 0.15 * t)) for t, a in enumerate(taken)]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agent_beats_random_search_on_a_known_optimum(seed):
    envs = [_Toy(0.4), _Toy(1.0)]
    agent = PolicyAgent(3, seed=seed)
    episodes = learn(agent, envs, 300)
    learned = [rollout(agent, env, explore=False).reward for env in envs]
    rng = np.random.default_rng(seed)
    randoms = [max(env.reward(list(rng.uniform(0.05, 1.0, 4))) for _ in range(len(episodes) // 2)) for env in envs]
    assert all(lr > rr for lr, rr in zip(learned, randoms)), (learned, randoms)
    assert min(learned) > -0.06                                 # within 6 points of the optimum per step
    low, high = (np.mean(rollout(agent, env, explore=False).taken) for env in envs)
    assert high - low > 0.3                                     # the budget in the state steers the actions
