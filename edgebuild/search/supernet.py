"""A weight-sharing supernet of small CNNs (OFA / BigNAS style) trained with the numpy trainer.

The search space is a chain of conv stages, then flatten, an optional hidden dense layer and the
classifier. Each stage is ``depth`` convolutions (same padding, each followed by ReLU) and a 2x2
max-pool. A space is a JSON-able dict::

    {"stages": [{"channels": [4, 8, 12], "kernels": [3, 5], "depth": [1, 2]}, ...],
     "dense": [0, 32],        # hidden dense widths; 0 = no hidden layer
     "classes": 10}

and an architecture (one sub-network) picks one value per choice::

    {"stages": [{"channels": 8, "kernel": 3, "depth": 2}, ...], "dense": 32}

The supernet holds only the largest tensors. A sub-network uses the first ``channels`` output
channels (and the first input channels its predecessor produces), the centre ``kernel`` x ``kernel``
crop of the largest kernel and the first ``depth`` convolutions of a stage. ``extract`` copies those
slices into an ordinary ``Net`` (the layers ``build_net`` makes), so a sub-network exports to ONNX
and goes through the normal pipeline.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable

import numpy as np

from edgebuild.errors import ConfigError
from edgebuild.train.fit import Adam, shift_images
from edgebuild.train.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU, softmax_cross_entropy
from edgebuild.train.net import Net

_FIELD = "search.space"
_EXAMPLE = ('{"stages": [{"channels": [4, 8], "kernels": [3, 5], "depth": [1, 2]}], '
            '"dense": [0, 32], "classes": 10}')


def _int_list(value, field: str, *, minimum: int, odd: bool = False) -> list[int]:
    """A non-empty list of distinct integers >= minimum (odd if asked), sorted ascending."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"must be a non-empty list of integers, got {value!r}", field=field,
                          fix=f"e.g. {_EXAMPLE}")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum or (odd and v % 2 == 0):
            kind = "odd integers" if odd else "integers"
            raise ConfigError(f"must hold {kind} >= {minimum}, got {v!r}", field=field,
                              fix="kernels must be odd for same padding" if odd else f"e.g. {_EXAMPLE}")
    if len(set(value)) != len(value):
        raise ConfigError(f"lists a value twice: {value!r}", field=field, fix="list each choice once")
    return sorted(value)


def validate_space(space, input_shape: tuple[int, ...]) -> dict:
    """Check a search space against ``input_shape`` (C, H, W); return it normalised (sorted lists).

    Raises ConfigError naming the field (``search.space.stages[1].kernels``, ...) and the fix.
    """
    if not isinstance(space, dict):
        raise ConfigError(f"the search space must be a mapping, got {type(space).__name__}", field=_FIELD,
                          fix=f"e.g. {_EXAMPLE}")
    unknown = set(space) - {"stages", "dense", "classes"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", field=_FIELD, fix="use stages, dense and classes")
    stages = space.get("stages")
    if not isinstance(stages, (list, tuple)) or not stages:
        raise ConfigError("needs a non-empty list of stages", field=f"{_FIELD}.stages", fix=f"e.g. {_EXAMPLE}")
    out_stages = []
    for i, stage in enumerate(stages):
        field = f"{_FIELD}.stages[{i}]"
        if not isinstance(stage, dict) or set(stage) != {"channels", "kernels", "depth"}:
            raise ConfigError(f"a stage needs exactly the keys channels, kernels, depth; got {stage!r}",
                              field=field, fix='e.g. {"channels": [4, 8], "kernels": [3, 5], "depth": [1, 2]}')
        out_stages.append({"channels": _int_list(stage["channels"], f"{field}.channels", minimum=1),
                           "kernels": _int_list(stage["kernels"], f"{field}.kernels", minimum=1, odd=True),
                           "depth": _int_list(stage["depth"], f"{field}.depth", minimum=1)})
    dense = _int_list(space.get("dense", [0]), f"{_FIELD}.dense", minimum=0)
    classes = space.get("classes", 10)
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
        raise ConfigError(f"must be an integer >= 2, got {classes!r}", field=f"{_FIELD}.classes",
                          fix="set it to the number of labels of the dataset")
    if len(input_shape) != 3:
        raise ConfigError(f"the supernet needs image inputs (C, H, W), got shape {tuple(input_shape)}",
                          field=_FIELD, fix="use an image dataset")
    side = min(input_shape[1:]) >> len(out_stages)
    if side < 1:
        raise ConfigError(f"{len(out_stages)} stages of 2x2 max-pooling do not fit a "
                          f"{input_shape[1]}x{input_shape[2]} input", field=f"{_FIELD}.stages",
                          fix="use fewer stages or a larger input resize")
    return {"stages": out_stages, "dense": dense, "classes": classes}


class Supernet:
    """Shared weights of every sub-network of ``space`` for one-sample ``input_shape`` (C, H, W).

    ``weights`` maps shared tensor names to arrays: ``s{i}.conv{j}.weight`` (Cmax, Cin_max, Kmax,
    Kmax) and ``.bias``, ``hidden.weight``/``.bias`` (largest hidden width), ``head.weight``/``.bias``
    (classifier after the hidden layer) and ``head_flat.weight``/``.bias`` (classifier straight
    after flatten, when the space allows no hidden layer). He-normal init from ``seed``.
    """

    def __init__(self, space: dict, input_shape: tuple[int, ...], seed: int = 0):
        self.input_shape = tuple(int(d) for d in input_shape)
        self.space = validate_space(space, self.input_shape)
        rng = np.random.default_rng(seed)
        shapes: dict[str, tuple] = {}
        fan_in: dict[str, int] = {}
        in_ch = self.input_shape[0]
        for i, stage in enumerate(self.space["stages"]):
            cmax, kmax = stage["channels"][-1], stage["kernels"][-1]
            for j in range(stage["depth"][-1]):
                shapes[f"s{i}.conv{j}"] = (cmax, in_ch, kmax, kmax)
                fan_in[f"s{i}.conv{j}"] = in_ch * kmax * kmax
                in_ch = cmax
        pools = len(self.space["stages"])                                  # one 2x2 max-pool per stage
        self._spatial = (self.input_shape[1] >> pools) * (self.input_shape[2] >> pools)
        flat, classes, hidden = in_ch * self._spatial, self.space["classes"], self.space["dense"][-1]
        if hidden:
            shapes["hidden"], fan_in["hidden"] = (hidden, flat), flat
            shapes["head"], fan_in["head"] = (classes, hidden), hidden
        if self.space["dense"][0] == 0:
            shapes["head_flat"], fan_in["head_flat"] = (classes, flat), flat
        self.weights: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            self.weights[f"{name}.weight"] = rng.normal(0.0, np.sqrt(2.0 / fan_in[name]), size=shape).astype(np.float32)
            self.weights[f"{name}.bias"] = np.zeros(shape[0], np.float32)

    # ---- architectures -------------------------------------------------------------------------

    def largest(self) -> dict:
        """The architecture with every choice at its maximum."""
        return self._corner(-1)

    def smallest(self) -> dict:
        """The architecture with every choice at its minimum."""
        return self._corner(0)

    def _corner(self, idx: int) -> dict:
        return {"stages": [{"channels": s["channels"][idx], "kernel": s["kernels"][idx], "depth": s["depth"][idx]}
                           for s in self.space["stages"]], "dense": self.space["dense"][idx]}

    def sample(self, rng: np.random.Generator) -> dict:
        """A uniformly random architecture (each choice drawn independently)."""
        def pick(values):
            return int(values[rng.integers(len(values))])
        return {"stages": [{"channels": pick(s["channels"]), "kernel": pick(s["kernels"]), "depth": pick(s["depth"])}
                           for s in self.space["stages"]], "dense": pick(self.space["dense"])}

    def size(self) -> int:
        """How many distinct architectures the space holds."""
        n = len(self.space["dense"])
        for s in self.space["stages"]:
            n *= len(s["channels"]) * len(s["kernels"]) * len(s["depth"])
        return n

    def enumerate(self) -> list[dict]:
        """Every architecture of the space (use only when ``size()`` is small)."""
        per_stage = [list(itertools.product(s["channels"], s["kernels"], s["depth"])) for s in self.space["stages"]]
        return [{"stages": [{"channels": c, "kernel": k, "depth": d} for c, k, d in combo], "dense": h}
                for combo in itertools.product(*per_stage) for h in self.space["dense"]]

    def check_arch(self, arch) -> None:
        """Raise ConfigError unless ``arch`` picks one allowed value for every choice of the space."""
        field = "arch"
        stages = arch.get("stages") if isinstance(arch, dict) else None
        if not isinstance(stages, list) or len(stages) != len(self.space["stages"]) or "dense" not in arch:
            raise ConfigError(f"an architecture needs 'stages' (one entry per stage, "
                              f"{len(self.space['stages'])} here) and 'dense', got {arch!r}", field=field,
                              fix="build it with Supernet.sample/largest/smallest")
        for i, (pick, stage) in enumerate(zip(stages, self.space["stages"])):
            for key, options in (("channels", stage["channels"]), ("kernel", stage["kernels"]),
                                 ("depth", stage["depth"])):
                if not isinstance(pick, dict) or pick.get(key) not in options:
                    raise ConfigError(f"{key} must be one of {options}, got "
                                      f"{pick.get(key) if isinstance(pick, dict) else pick!r}",
                                      field=f"{field}.stages[{i}].{key}", fix="pick a value the search space lists")
        if arch["dense"] not in self.space["dense"]:
            raise ConfigError(f"dense must be one of {self.space['dense']}, got {arch['dense']!r}",
                              field=f"{field}.dense", fix="pick a value the search space lists")

    def arch_to_layers(self, arch: dict) -> list[dict]:
        """The ``build_net`` layer list of ``arch`` (conv pads are kernel // 2: same padding)."""
        self.check_arch(arch)
        layers: list[dict] = []
        for stage in arch["stages"]:
            k = stage["kernel"]
            for _ in range(stage["depth"]):
                layers += [{"conv": {"out": stage["channels"], "kernel": k, "stride": 1, "pad": k // 2}}, {"relu": {}}]
            layers.append({"maxpool": {"kernel": 2, "stride": 2}})
        layers.append({"flatten": {}})
        if arch["dense"]:
            layers += [{"dense": {"out": arch["dense"]}}, {"relu": {}}]
        layers.append({"dense": {"out": self.space["classes"]}})
        return layers

    # ---- extraction and gradient scatter ------------------------------------------------------------

    def _slices(self, arch: dict) -> list[tuple[object, str | None, tuple]]:
        """Per layer of ``arch``: (layer, shared tensor prefix or None, weight slice)."""
        self.check_arch(arch)
        out = []
        in_ch = self.input_shape[0]
        for i, (stage, space) in enumerate(zip(arch["stages"], self.space["stages"])):
            c, k = stage["channels"], stage["kernel"]
            o = (space["kernels"][-1] - k) // 2                           # centre crop offset
            for j in range(stage["depth"]):
                out.append((Conv2d(in_ch, c, k, 1, k // 2), f"s{i}.conv{j}",
                            (slice(0, c), slice(0, in_ch), slice(o, o + k), slice(o, o + k))))
                out.append((ReLU(), None, ()))
                in_ch = c
            out.append((MaxPool2d(2, 2), None, ()))
        out.append((Flatten(), None, ()))
        flat = in_ch * self._spatial                                       # first channels = first features
        if arch["dense"]:
            h = arch["dense"]
            out += [(Dense(flat, h), "hidden", (slice(0, h), slice(0, flat))), (ReLU(), None, ())]
            out.append((Dense(h, self.space["classes"]), "head", (slice(None), slice(0, h))))
        else:
            out.append((Dense(flat, self.space["classes"]), "head_flat", (slice(None), slice(0, flat))))
        return out

    def _extract(self, arch: dict) -> tuple[Net, dict[str, tuple[str, tuple]]]:
        """The sub-network and, per sub-net parameter name, (shared tensor name, slice)."""
        parts = self._slices(arch)
        net = Net([layer for layer, _, _ in parts], self.input_shape)
        where: dict[str, tuple[str, tuple]] = {}
        for layer, prefix, wslice in parts:
            if prefix is None:
                continue
            w, b = self.weights[f"{prefix}.weight"], self.weights[f"{prefix}.bias"]
            layer.params = {"weight": w[wslice].copy(), "bias": b[wslice[0]].copy()}
            where[f"{layer.name}.weight"] = (f"{prefix}.weight", wslice)
            where[f"{layer.name}.bias"] = (f"{prefix}.bias", wslice[:1])
        return net, where

    def extract(self, arch: dict) -> Net:
        """A plain ``Net`` for ``arch`` whose parameters are copies of slices of the shared weights."""
        return self._extract(arch)[0]

    def scatter(self, net: Net, where: dict[str, tuple[str, tuple]], into: dict[str, np.ndarray]) -> None:
        """Add the sub-net's gradients (from its last ``backward``) into ``into`` at the shared slices."""
        for name, grad in net.grads().items():
            key, wslice = where[name]
            into[key][wslice] += grad

    def loss_and_grads(self, arch: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of ``arch`` on (x, y) and its gradient w.r.t. every shared tensor."""
        net, where = self._extract(arch)
        logits = net.forward(x, train=True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        net.backward(dlogits.astype(logits.dtype))
        grads = {k: np.zeros_like(v) for k, v in self.weights.items()}
        self.scatter(net, where, grads)
        return loss, grads

    # ---- weight-sharing training -----------------------------------------------------------------

    def train(self, ds, epochs: int, lr: float, seed: int, progress: Callable[[str], None] | None = None, *,
              batch_size: int = 32, shift: int = 1, random_subnets: int = 2, weight_decay: float = 0.0) -> dict:
        """Train the shared weights on ``ds.x_train``/``ds.y_train`` with the sandwich rule.

        Per minibatch: the largest, the smallest and ``random_subnets`` random sub-networks each
        run forward and backward on the same (shift-augmented) batch; their gradients are summed
        into the shared tensors and one Adam step (cosine-decayed ``lr``) updates them.
        Deterministic for ``seed``. Returns per-epoch ``loss`` (of the largest sub-net),
        ``val_largest``/``val_smallest`` accuracy and ``seconds``, and ``total_seconds``.
        """
        from edgebuild.train.fit import evaluate

        rng = np.random.default_rng(seed)
        opt = Adam(lr)
        grads = {k: np.zeros_like(v) for k, v in self.weights.items()}
        n = len(ds.y_train)
        steps, step = max(1, epochs * -(-n // batch_size)), 0
        history: dict = {"loss": [], "val_largest": [], "val_smallest": [], "seconds": []}
        big, small = self.largest(), self.smallest()
        start = time.perf_counter()
        for epoch in range(epochs):
            t0, total = time.perf_counter(), 0.0
            order = rng.permutation(n)
            x_epoch = shift_images(ds.x_train[order], shift, rng)
            y_epoch = ds.y_train[order]
            for i in range(0, n, batch_size):
                xb, yb = x_epoch[i:i + batch_size], y_epoch[i:i + batch_size]
                for g in grads.values():
                    g.fill(0)
                for r, arch in enumerate([big, small] + [self.sample(rng) for _ in range(random_subnets)]):
                    net, where = self._extract(arch)
                    logits = net.forward(xb, train=True)
                    loss, dlogits = softmax_cross_entropy(logits, yb)
                    if r == 0:
                        total += loss * len(yb)
                    net.backward(dlogits.astype(logits.dtype))
                    self.scatter(net, where, grads)
                if weight_decay:
                    for key, g in grads.items():
                        if key.endswith(".weight"):
                            g += weight_decay * self.weights[key]
                opt.step(self.weights, grads, 0.5 * lr * (1 + np.cos(np.pi * step / steps)))
                step += 1
            history["loss"].append(total / n)
            history["val_largest"].append(evaluate(self.extract(big), ds.x_val, ds.y_val))
            history["val_smallest"].append(evaluate(self.extract(small), ds.x_val, ds.y_val))
            history["seconds"].append(time.perf_counter() - t0)
            if progress:
                progress(f"supernet epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f} "
                         f"val largest {history['val_largest'][-1]:.4f} smallest {history['val_smallest'][-1]:.4f} "
                         f"({history['seconds'][-1]:.1f}s)")
        history["total_seconds"] = time.perf_counter() - start
        return history
