"""``Net``: a chain of layers built from a recipe's ``model.train.arch`` list."""

from __future__ import annotations

import numpy as np

from edgebuild.errors import ConfigError
from edgebuild.train.layers import AvgPool2d, Conv2d, Dense, Flatten, Layer, MaxPool2d, ReLU

# Layer kind -> (allowed keys, required keys).
_KEYS = {
    "conv": ({"out", "kernel", "stride", "pad"}, {"out"}),
    "dense": ({"out"}, {"out"}),
    "relu": (set(), set()),
    "flatten": (set(), set()),
    "maxpool": ({"kernel", "stride"}, set()),
    "avgpool": ({"kernel", "stride"}, set()),
}


class Net:
    """A sequential network. Parameters are addressed as "<layer>.<param>", e.g. "conv1.weight".

    ``masks`` maps such names to 0/1 arrays; a masked weight is held at zero (see ``apply_masks``).
    """

    def __init__(self, layers: list[Layer], input_shape: tuple[int, ...]):
        self.layers = layers
        self.input_shape = tuple(input_shape)
        self.masks: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        for layer in layers:
            counts[layer.kind] = counts.get(layer.kind, 0) + 1
            layer.name = f"{layer.kind}{counts[layer.kind]}"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Logits for a batch ``x`` of shape (N, *input_shape)."""
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, dout: np.ndarray) -> None:
        """Backpropagate d(loss)/d(logits) through the last training forward; fills ``layer.grads``."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)

    def params(self) -> dict[str, np.ndarray]:
        """Name -> parameter array (the live arrays, in layer order)."""
        return {f"{layer.name}.{key}": value for layer in self.layers for key, value in layer.params.items()}

    def grads(self) -> dict[str, np.ndarray]:
        """Name -> gradient from the last ``backward``."""
        return {f"{layer.name}.{key}": value for layer in self.layers for key, value in layer.grads.items()}

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params().values()))

    def shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(layer name, one sample's output shape) for every layer."""
        out, shape = [], self.input_shape
        for layer in self.layers:
            shape = layer.out_shape(shape)
            out.append((layer.name, shape))
        return out

    def set_mask(self, name: str, mask: np.ndarray) -> None:
        """Hold the zeros of ``mask`` at zero in parameter ``name`` from now on (pruning)."""
        param = self.params()[name]
        mask = np.asarray(mask, dtype=param.dtype)
        if mask.shape != param.shape:
            raise ValueError(f"mask for {name} has shape {mask.shape}, parameter has {param.shape}")
        self.masks[name] = mask
        param *= mask

    def apply_masks(self) -> None:
        """Zero masked parameters in place."""
        params = self.params()
        for name, mask in self.masks.items():
            params[name] *= mask

    def arch(self) -> list[dict]:
        """The recipe-style architecture list of this network."""
        return [layer.spec() for layer in self.layers]

    def astype(self, dtype) -> "Net":
        """Convert all parameters (in place) to ``dtype``; returns self."""
        for layer in self.layers:
            layer.params = {k: v.astype(dtype) for k, v in layer.params.items()}
        self.masks = {k: v.astype(dtype) for k, v in self.masks.items()}
        return self


def _check_layer(i: int, spec) -> tuple[str, dict]:
    field = f"model.train.arch[{i}]"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"each layer must be a one-key mapping like {{conv: {{out: 8}}}}, got {spec!r}", field=field,
                          fix="write the layer as `- conv: {out: 8, kernel: 3}`")
    kind, args = next(iter(spec.items()))
    if kind not in _KEYS:
        raise ConfigError(f"unknown layer '{kind}'", field=field, fix=f"use one of {', '.join(_KEYS)}")
    args = dict(args or {})
    allowed, required = _KEYS[kind]
    if set(args) - allowed or required - set(args):
        raise ConfigError(f"layer '{kind}' takes {sorted(allowed) or 'no arguments'} (required: "
                          f"{sorted(required) or 'none'}), got {sorted(args)}", field=field,
                          fix=f"e.g. {_EXAMPLES[kind]}")
    for key, value in args.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "pad" else 1):
            raise ConfigError(f"'{key}' must be a {'non-negative' if key == 'pad' else 'positive'} integer, got {value!r}",
                              field=f"{field}.{kind}.{key}", fix=f"e.g. {_EXAMPLES[kind]}")
    return kind, args


_EXAMPLES = {"conv": "conv: {out: 8, kernel: 3, stride: 1, pad: 1}", "dense": "dense: {out: 10}",
             "relu": "relu: {}", "flatten": "flatten: {}", "maxpool": "maxpool: {kernel: 2}",
             "avgpool": "avgpool: {kernel: 2}"}


def build_net(arch: list[dict], input_shape: tuple, seed: int = 0) -> Net:
    """Build a ``Net`` for one-sample ``input_shape`` (C, H, W) from recipe layers; He-normal init from ``seed``.

    Raises ConfigError naming the layer when a layer is malformed or shapes do not fit.
    """
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    shape = tuple(int(d) for d in input_shape)
    for i, spec in enumerate(arch):
        kind, args = _check_layer(i, spec)
        field = f"model.train.arch[{i}]"
        if kind in ("conv", "maxpool", "avgpool") and len(shape) != 3:
            raise ConfigError(f"'{kind}' needs an image input (C, H, W) but gets shape {shape}", field=field,
                              fix="put convolution and pooling layers before flatten")
        if kind == "conv":
            layer = Conv2d(shape[0], args["out"], args.get("kernel", 3), args.get("stride", 1), args.get("pad", 0))
            fan_in = shape[0] * layer.kernel ** 2
        elif kind == "dense":
            if len(shape) != 1:
                raise ConfigError(f"'dense' needs a flat input but gets shape {shape}", field=field,
                                  fix="insert `- flatten: {}` before the first dense layer")
            layer, fan_in = Dense(shape[0], args["out"]), shape[0]
        else:
            layer = {"relu": ReLU, "flatten": Flatten, "maxpool": MaxPool2d, "avgpool": AvgPool2d}[kind](**args)
        new_shape = layer.out_shape(shape)
        if min(new_shape) < 1:
            raise ConfigError(f"'{kind}' turns shape {shape} into {new_shape}", field=field,
                              fix="use a smaller kernel/stride, more padding or fewer pooling layers")
        if "weight" in layer.params:
            w = layer.params["weight"]
            w[...] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=w.shape)
        layers.append(layer)
        shape = new_shape
    return Net(layers, tuple(int(d) for d in input_shape))
