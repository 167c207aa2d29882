"""Minibatch training: SGD with momentum or Adam, L2 weight decay, shift augmentation, masks."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgebuild.errors import ConfigError
from edgebuild.train.layers import softmax_cross_entropy
from edgebuild.train.net import Net

DEFAULTS = {"epochs": 10, "batch_size": 32, "optimizer": "adam", "lr": 0.005, "momentum": 0.9,
            "weight_decay": 0.0, "augment": {"shift": 0}, "seed": 0}


class SGD:
    """SGD with (heavy-ball) momentum."""

    def __init__(self, lr: float, momentum: float = 0.9):
        self.lr, self.momentum, self.velocity = lr, momentum, {}

    def step(self, params: dict, grads: dict, lr: float) -> None:
        for name, p in params.items():
            v = self.velocity.setdefault(name, np.zeros_like(p))
            v *= self.momentum
            v -= lr * grads[name]
            p += v


class Adam:
    """Adam (Kingma & Ba) with bias correction."""

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self.t = {}, {}, 0

    def step(self, params: dict, grads: dict, lr: float) -> None:
        self.t += 1
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        for name, p in params.items():
            g = grads[name]
            m = self.m.setdefault(name, np.zeros_like(p))
            v = self.v.setdefault(name, np.zeros_like(p))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= (lr * (m / c1) / (np.sqrt(v / c2) + self.eps)).astype(p.dtype)


def shift_images(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift every image by its own random (dy, dx) in [-max_shift, max_shift], repeating edge pixels."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    s = max_shift
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
    views = sliding_window_view(padded, (h, w), axis=(2, 3))            # N C 2s+1 2s+1 H W
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    return np.ascontiguousarray(views[np.arange(n), :, dy, dx])


def evaluate(net: Net, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``net`` on images ``x`` with integer labels ``y`` (0.0 for an empty set)."""
    if len(y) == 0:
        return 0.0
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int((net.forward(x[i:i + batch_size]).argmax(axis=1) == y[i:i + batch_size]).sum())
    return correct / len(y)


def _config(cfg: dict | None) -> dict:
    cfg = {**DEFAULTS, **{k: v for k, v in (cfg or {}).items() if k != "arch"}}
    cfg["augment"] = {"shift": 0, **(cfg.get("augment") or {})}
    if cfg["optimizer"] not in ("adam", "sgd"):
        raise ConfigError(f"unknown optimizer '{cfg['optimizer']}'", field="model.train.optimizer",
                          fix="use adam or sgd")
    return cfg


def fit(net: Net, ds, cfg: dict | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Train ``net`` in place on ``ds.x_train``/``ds.y_train`` with the recipe's ``model.train`` settings.

    Deterministic for ``cfg["seed"]`` (shuffling and augmentation). The learning rate follows a
    cosine decay from ``lr`` to 0 over the epochs. Weight decay is L2 on weights (not biases).
    Masked parameters (``net.masks``) stay zero. Returns the history: per-epoch ``loss``,
    ``train_acc`` (on the augmented minibatches), ``val_acc``, ``seconds``; and ``total_seconds``.
    """
    cfg = _config(cfg)
    rng = np.random.default_rng(cfg["seed"])
    opt = Adam(cfg["lr"]) if cfg["optimizer"] == "adam" else SGD(cfg["lr"], cfg["momentum"])
    params = net.params()
    decay = {name: name.endswith(".weight") for name in params}
    x_all, y_all = ds.x_train, ds.y_train
    n, bs, epochs = len(y_all), cfg["batch_size"], cfg["epochs"]
    steps, step = epochs * -(-n // bs), 0
    history = {"loss": [], "train_acc": [], "val_acc": [], "seconds": []}
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        x_epoch = shift_images(x_all[order], cfg["augment"]["shift"], rng)
        y_epoch = y_all[order]
        total_loss, correct = 0.0, 0
        for i in range(0, n, bs):
            xb, yb = x_epoch[i:i + bs], y_epoch[i:i + bs]
            logits = net.forward(xb, train=True)
            loss, dlogits = softmax_cross_entropy(logits, yb)
            net.backward(dlogits.astype(logits.dtype))
            grads = net.grads()
            for name, g in grads.items():
                if cfg["weight_decay"] and decay[name]:
                    g += cfg["weight_decay"] * params[name]
                if name in net.masks:
                    g *= net.masks[name]
            lr = 0.5 * cfg["lr"] * (1 + np.cos(np.pi * step / steps))
            opt.step(params, grads, lr)
            net.apply_masks()
            step += 1
            total_loss += loss * len(yb)
            correct += int((logits.argmax(axis=1) == yb).sum())
        history["loss"].append(total_loss / n)
        history["train_acc"].append(correct / n)
        history["val_acc"].append(evaluate(net, ds.x_val, ds.y_val))
        history["seconds"].append(time.perf_counter() - t0)
        if progress:
            progress(f"epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f} "
                     f"train {history['train_acc'][-1]:.4f} val {history['val_acc'][-1]:.4f} "
                     f"({history['seconds'][-1]:.1f}s)")
    history["total_seconds"] = time.perf_counter() - start
    return history
