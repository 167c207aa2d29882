"""Pruning of a numpy-trainer ``Net``: structured (L1 filters/neurons) and unstructured (magnitude).

Structured pruning really shrinks the network: removing output channel ``c`` of a conv (or neuron
``c`` of a dense layer) deletes its weight row and bias and the matching input channel (or input
columns, through a Flatten) of the next weighted layer, so shapes, parameters, MACs and flash all
fall. Unstructured pruning only sets masks (``Net.set_mask``); it saves flash only where the code
generator stores weights sparsely.
"""

from __future__ import annotations

import copy

import numpy as np

from edgebuild.train.layers import Conv2d, Dense, Flatten
from edgebuild.train.net import Net


def weighted_layers(net: Net) -> list[str]:
    """Names of the conv/dense layers in order."""
    return [layer.name for layer in net.layers if isinstance(layer, (Conv2d, Dense))]


def prunable_layers(net: Net) -> list[str]:
    """Layers whose outputs may be removed: every weighted layer but the last (the logits)."""
    # a depthwise conv's channels are its input's: it is narrowed with the layer before it
    return [layer.name for layer in net.layers[:_last_weighted(net)]
            if isinstance(layer, (Conv2d, Dense)) and not getattr(layer, "depthwise", False)]


def _last_weighted(net: Net) -> int:
    return max(i for i, layer in enumerate(net.layers) if isinstance(layer, (Conv2d, Dense)))


def widths(net: Net) -> dict[str, int]:
    """Output channels/neurons of each weighted layer."""
    return {layer.name: layer.out for layer in net.layers if isinstance(layer, (Conv2d, Dense))}


def l1_order(layer) -> np.ndarray:
    """Output indices of ``layer`` from the largest to the smallest L1 norm (ties: lower index first)."""
    w = layer.params["weight"]
    norms = np.abs(w.reshape(w.shape[0], -1)).sum(axis=1)
    return np.argsort(-norms, kind="stable")


def prune_structured(net: Net, keep: dict[str, int]) -> Net:
    """A copy of ``net`` where layer ``name`` keeps its ``keep[name]`` outputs of largest L1 norm.

    The next weighted layer loses the matching input channels (through any ReLU/pooling) or input
    columns (through a Flatten). Masks are dropped. Raises ValueError for an unknown or
    non-prunable layer or a count outside 1..width.
    """
    bad = set(keep) - set(prunable_layers(net))
    if bad:
        raise ValueError(f"cannot prune {sorted(bad)}; prunable layers: {prunable_layers(net)}")
    new = copy.deepcopy(net)
    new.masks = {}
    layers = new.layers
    for i, layer in enumerate(layers):
        if layer.name not in keep:
            continue
        n = int(keep[layer.name])
        if not 1 <= n <= layer.out:
            raise ValueError(f"{layer.name}: keep {n} of {layer.out} outputs; need 1..{layer.out}")
        idx = np.sort(l1_order(layer)[:n])
        old = layer.out
        layer.params = {k: np.ascontiguousarray(v[idx]) for k, v in layer.params.items()}
        layer.out = n
        _drop_inputs(layers[i + 1:], idx, old)
    return new


def _drop_inputs(after: list, idx: np.ndarray, old: int) -> None:
    """Keep only input channels ``idx`` (of ``old``) of the first weighted layer in ``after``."""
    flat = False
    for nxt in after:
        if isinstance(nxt, Flatten):
            flat = True
        elif isinstance(nxt, Conv2d) and nxt.depthwise:
            # the channels pass through: drop the same ones here and go on to the next weighted layer
            nxt.params = {k: np.ascontiguousarray(v[idx]) for k, v in nxt.params.items()}
            nxt.in_ch = nxt.out = nxt.group = len(idx)
        elif isinstance(nxt, Conv2d):
            nxt.params["weight"] = np.ascontiguousarray(nxt.params["weight"][:, idx])
            nxt.in_ch = len(idx)
            return
        elif isinstance(nxt, Dense):
            w = nxt.params["weight"]
            per = w.shape[1] // old if flat else 1      # NCHW flatten: channel c owns a block of H*W
            cols = (idx[:, None] * per + np.arange(per)[None, :]).reshape(-1)
            nxt.params["weight"] = np.ascontiguousarray(w[:, cols])
            nxt.in_features = len(cols)
            return
    raise AssertionError("a prunable layer always has a weighted successor")


def magnitude_masks(net: Net, sparsity: dict[str, float]) -> dict[str, np.ndarray]:
    """Per layer name -> 0/1 mask of its weight keeping the ``1 - sparsity`` largest magnitudes.

    Exactly ``round(size * (1 - sparsity))`` weights survive (ties broken by position), at least one.
    """
    params = net.params()
    masks = {}
    for name, s in sparsity.items():
        w = params[f"{name}.weight"]
        keep = max(1, int(round(w.size * (1.0 - s))))
        order = np.argsort(-np.abs(w).reshape(-1), kind="stable")
        mask = np.zeros(w.size, np.float32)
        mask[order[:keep]] = 1.0
        masks[name] = mask.reshape(w.shape)
    return masks


def apply_masks(net: Net, masks: dict[str, np.ndarray]) -> None:
    """Fix the zeros of ``masks`` (layer name -> weight mask) in ``net`` for training and export."""
    for name, mask in masks.items():
        net.set_mask(f"{name}.weight", mask)
