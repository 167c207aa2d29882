"""ADMM weight pruning (Zhang et al., "A Systematic DNN Weight Pruning Framework using ADMM", ECCV 2018).

Minimise loss(W) subject to W_i in S_i = {at most k_i non-zeros} by splitting W = Z:

    W-step: minimise loss(W) + sum_i rho/2 ||W_i - Z_i + U_i||^2     (a few epochs of Adam)
    Z-step: Z_i = Proj_S_i(W_i + U_i)       (keep the k_i largest magnitudes, zero the rest)
    U-step: U_i = U_i + W_i - Z_i

After the ADMM rounds, W is hard-pruned to the support of Z and retrained with the mask fixed
(masked retraining), which recovers the accuracy lost by the projection.

``structure="filters"`` uses the paper's structured variant: S_i = {at most k_i non-zero output
rows} (conv filters / dense neurons), projected by keeping the rows of largest L2 norm; the
hard-prune step then removes those rows for real (``prune_structured``), so the network shrinks.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgebuild.compress.finetune import train
from edgebuild.compress.prune import apply_masks, prune_structured
from edgebuild.train.net import Net


def project(w: np.ndarray, keep: int) -> np.ndarray:
    """Euclidean projection of ``w`` onto {at most ``keep`` non-zeros}: keep the largest magnitudes."""
    flat = w.reshape(-1)
    out = np.zeros_like(flat)
    idx = np.argsort(-np.abs(flat), kind="stable")[:keep]
    out[idx] = flat[idx]
    return out.reshape(w.shape)


def project_rows(w: np.ndarray, keep: int) -> np.ndarray:
    """Euclidean projection of ``w`` onto {at most ``keep`` non-zero output rows}: largest L2 rows."""
    norms = np.linalg.norm(w.reshape(w.shape[0], -1), axis=1)
    out = np.zeros_like(w)
    idx = np.argsort(-norms, kind="stable")[:keep]
    out[idx] = w[idx]
    return out


def admm_prune(net: Net, ds, ratio: dict[str, float], *, structure: str = "weights", rounds: int = 4,
               epochs_per_round: int = 1, retrain_epochs: int = 4, rho: float = 0.1, lr: float = 1e-3,
               seed: int = 0, progress: Callable[[str], None] | None = None) -> Net:
    """ADMM-prune ``net`` to keep ``ratio[layer]`` of each layer's weights (or output rows).

    ``structure``: "weights" (unstructured: ``net`` is trained, masked and returned) or "filters"
    (rows: ``net`` is trained in place, then a new, smaller net is returned). Deterministic for ``seed``.
    """
    params = net.params()
    names = {layer: f"{layer}.weight" for layer in ratio}
    rows = structure == "filters"
    proj = project_rows if rows else project
    keep = {layer: max(1, int(round((params[p].shape[0] if rows else params[p].size) * ratio[layer])))
            for layer, p in names.items()}
    z = {layer: proj(params[p], keep[layer]) for layer, p in names.items()}
    u = {layer: np.zeros_like(params[p]) for layer, p in names.items()}

    def penalty(ps):
        return {p: rho * (ps[p] - z[layer] + u[layer]) for layer, p in names.items()}

    def update(epoch):                      # Z- and U-steps after every round of W-step epochs
        if (epoch + 1) % epochs_per_round:
            return
        gap = 0.0
        for layer, p in names.items():
            z[layer] = proj(params[p] + u[layer], keep[layer])
            u[layer] += params[p] - z[layer]
            gap = max(gap, float(np.linalg.norm(params[p] - z[layer]) / (np.linalg.norm(params[p]) + 1e-12)))
        if progress:
            progress(f"ADMM round {(epoch + 1) // epochs_per_round}/{rounds}: max relative ||W - Z|| {gap:.3f}")

    # One optimiser and one learning-rate schedule across all rounds (restarting Adam every
    # round would undo much of the previous round's progress).
    train(net, ds, epochs=rounds * epochs_per_round, lr=lr, seed=seed, penalty=penalty, on_epoch=update)
    if rows:
        for layer, p in names.items():      # hard-prune to Z's support: prune_structured keeps it by L1
            params[p][...] = z[layer]
        net = prune_structured(net, keep)
    else:
        apply_masks(net, {layer: (z[layer] != 0).astype(np.float32) for layer in names})
    train(net, ds, epochs=retrain_epochs, lr=lr, seed=seed + 1)
    return net
