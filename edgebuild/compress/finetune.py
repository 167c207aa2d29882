"""Fine-tuning for compression: the numpy trainer's Adam loop with an optional extra gradient term.

``fit`` (edgebuild.train) trains from a recipe spec; pruning needs two more things: a penalty
gradient added to the loss gradient (ADMM's ``rho * (W - Z + U)``) and a callback after every
epoch (ADMM's Z and U updates). Masked weights (``net.masks``) stay zero as in ``fit``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgebuild.train.fit import Adam, shift_images
from edgebuild.train.layers import softmax_cross_entropy
from edgebuild.train.net import Net


def train(net: Net, ds, *, epochs: int, lr: float, seed: int, batch_size: int = 32, shift: int = 1,
          weight_decay: float = 0.0, penalty: Callable[[dict], dict] | None = None,
          on_epoch: Callable[[int], None] | None = None) -> None:
    """Train ``net`` in place on ``ds.x_train``/``ds.y_train`` with Adam and a cosine-decayed ``lr``.

    ``penalty(params)`` returns extra gradients by parameter name, added to the loss gradients;
    ``on_epoch(epoch)`` runs after each epoch. Deterministic for ``seed``.
    """
    rng = np.random.default_rng(seed)
    opt = Adam(lr)
    params = net.params()
    n = len(ds.y_train)
    steps, step = max(1, epochs * -(-n // batch_size)), 0
    for epoch in range(epochs):
        order = rng.permutation(n)
        x_epoch = shift_images(ds.x_train[order], shift, rng)
        y_epoch = ds.y_train[order]
        for i in range(0, n, batch_size):
            logits = net.forward(x_epoch[i:i + batch_size], train=True)
            _, dlogits = softmax_cross_entropy(logits, y_epoch[i:i + batch_size])
            net.backward(dlogits.astype(logits.dtype))
            grads = net.grads()
            extra = penalty(params) if penalty else {}
            for name, g in grads.items():
                if weight_decay and name.endswith(".weight"):
                    g += weight_decay * params[name]
                if name in extra:
                    g += extra[name].astype(g.dtype)
                if name in net.masks:
                    g *= net.masks[name]
            opt.step(params, grads, 0.5 * lr * (1 + np.cos(np.pi * step / steps)))
            net.apply_masks()
            step += 1
        if on_epoch:
            on_epoch(epoch)
