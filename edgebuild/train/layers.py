"""Layers with forward and backward passes (numpy, NCHW). Each works in its inputs' dtype.

A layer keeps what backward needs from the last ``forward(x, train=True)``. Parameters live in
``layer.params`` (name -> array, names "weight"/"bias") and gradients in ``layer.grads``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Layer:
    """Base: no parameters. ``kind`` is the recipe key, ``name`` e.g. "conv1"."""

    kind = ""

    def __init__(self):
        self.name = ""
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        """What copies and pickles carry: parameters and settings, not the caches the last training
        forward left for backward (``_cache``, ``_x``, ``_mask``, ``_shape``): copying those made
        every ``copy.deepcopy`` of a trained net materialise its last batch's im2col windows."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's output (no batch dim) for one sample's input shape."""
        return in_shape

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def spec(self) -> dict:
        """The recipe-style description of this layer, e.g. {"conv": {"out": 8, ...}}."""
        return {self.kind: {}}


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _windows(x: np.ndarray, kh: int, kw: int, stride) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw) strided view of the kh x kw windows of x at ``stride`` (int or (sh, sw))."""
    sh, sw = _pair(stride)
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _scatter_windows(dwin: np.ndarray, in_shape: tuple[int, ...], stride) -> np.ndarray:
    """Inverse of ``_windows`` for gradients: sum each window element back onto its input pixel."""
    n, c, ho, wo, kh, kw = dwin.shape
    sh, sw = _pair(stride)
    dx = np.zeros(in_shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += dwin[:, :, :, :, i, j]
    return dx


class Conv2d(Layer):
    """2-D convolution with zero padding. Weight (out, in / group, kh, kw) as in ONNX.

    ``kernel`` and ``stride``: an int or (h, w); ``pad``: an int or (top, left, bottom, right), as
    ONNX's pads; ``group``: 1, or ``in_ch`` for a depthwise conv (one filter per channel, out == in_ch).
    ``kernel``/``stride``/``pad`` keep the form they were given (ints for the recipe's square convs)."""

    kind = "conv"

    def __init__(self, in_ch: int, out: int, kernel=3, stride=1, pad=0, group: int = 1):
        super().__init__()
        self.in_ch, self.out, self.kernel, self.stride, self.pad, self.group = in_ch, out, kernel, stride, pad, group
        if group != 1 and not (group == in_ch == out):
            raise ValueError(f"conv group {group} with {in_ch} -> {out} channels: only 1 or depthwise")
        kh, kw = _pair(kernel)
        self.params = {"weight": np.zeros((out, in_ch // group, kh, kw), np.float32),
                       "bias": np.zeros(out, np.float32)}

    @property
    def depthwise(self) -> bool:
        return self.group > 1

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """(top, left, bottom, right)."""
        return (int(self.pad),) * 4 if np.ndim(self.pad) == 0 else tuple(int(p) for p in self.pad)

    def out_shape(self, in_shape):
        _, h, w = in_shape
        (kh, kw), (sh, sw), (t, left, b, r) = _pair(self.kernel), _pair(self.stride), self.pads
        return (self.out, (h + t + b - kh) // sh + 1, (w + left + r - kw) // sw + 1)

    def forward(self, x, train=False):
        t, left, b, r = self.pads
        xp = np.pad(x, ((0, 0), (0, 0), (t, b), (left, r))) if any(self.pads) else x
        win = _windows(xp, *_pair(self.kernel), self.stride)             # N C Ho Wo kh kw
        w = self.params["weight"]
        if self.depthwise:
            out = np.einsum("ncijkl,ckl->ncij", win, w[:, 0], optimize=True)
        else:
            out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)   # N O Ho Wo
        out = out + self.params["bias"][None, :, None, None]
        if train:
            self._cache = (xp.shape, win)
        return np.ascontiguousarray(out)

    def backward(self, dout):
        xp_shape, win = self._cache
        w = self.params["weight"]
        self.grads["bias"] = dout.sum(axis=(0, 2, 3))
        if self.depthwise:
            self.grads["weight"] = np.einsum("ncij,ncijkl->ckl", dout, win, optimize=True)[:, None]
            dwin = np.einsum("ncij,ckl->ncijkl", dout, w[:, 0], optimize=True)
        else:
            self.grads["weight"] = np.tensordot(dout, win, axes=([0, 2, 3], [0, 2, 3]))  # O C kh kw
            dwin = np.tensordot(dout, w, axes=([1], [0])).transpose(0, 3, 1, 2, 4, 5)   # N C Ho Wo kh kw
        dxp = _scatter_windows(dwin, xp_shape, self.stride)
        t, left, b, r = self.pads
        return dxp[:, :, t:xp_shape[2] - b, left:xp_shape[3] - r]

    def spec(self):
        args = {"out": self.out, "kernel": self.kernel, "stride": self.stride, "pad": self.pad}
        return {"conv": {**args, "group": self.group} if self.depthwise else args}


class Dense(Layer):
    """Fully connected: y = x @ W.T + b, weight (out, in) as ONNX Gemm with transB=1."""

    kind = "dense"

    def __init__(self, in_features: int, out: int):
        super().__init__()
        self.in_features, self.out = in_features, out
        self.params = {"weight": np.zeros((out, in_features), np.float32), "bias": np.zeros(out, np.float32)}

    def out_shape(self, in_shape):
        return (self.out,)

    def forward(self, x, train=False):
        if train:
            self._x = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, dout):
        self.grads["weight"] = dout.T @ self._x
        self.grads["bias"] = dout.sum(axis=0)
        return dout @ self.params["weight"]

    def spec(self):
        return {"dense": {"out": self.out}}


class ReLU(Layer):
    kind = "relu"

    def forward(self, x, train=False):
        if train:
            self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * self._mask


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), the ONNX Flatten(axis=1) order."""

    kind = "flatten"

    def out_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x, train=False):
        if train:
            self._shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self._shape)


class _Pool(Layer):
    """Square-window pooling without padding; output size floor((H - k) / s) + 1."""

    def __init__(self, kernel: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel, self.stride = kernel, stride or kernel

    def out_shape(self, in_shape):
        c, h, w = in_shape
        k, s = self.kernel, self.stride
        return (c, (h - k) // s + 1, (w - k) // s + 1)

    def spec(self):
        return {self.kind: {"kernel": self.kernel, "stride": self.stride}}


class GlobalAvgPool(Layer):
    """(N, C, H, W) -> (N, C, 1, 1), the mean of each channel (ONNX GlobalAveragePool)."""

    kind = "globalavgpool"

    def out_shape(self, in_shape):
        return (in_shape[0], 1, 1)

    def forward(self, x, train=False):
        if train:
            self._shape = x.shape
        return x.mean(axis=(2, 3), keepdims=True).astype(x.dtype)

    def backward(self, dout):
        n, c, h, w = self._shape
        return np.broadcast_to(dout / (h * w), self._shape).astype(dout.dtype)


class MaxPool2d(_Pool):
    kind = "maxpool"

    def forward(self, x, train=False):
        win = _windows(x, self.kernel, self.kernel, self.stride)
        flat = win.reshape(*win.shape[:4], -1)
        arg = flat.argmax(axis=-1)
        if train:
            self._cache = (x.shape, arg)
        return np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]

    def backward(self, dout):
        shape, arg = self._cache
        k = self.kernel
        onehot = (arg[..., None] == np.arange(k * k)) * dout[..., None]   # gradient to the max only
        return _scatter_windows(onehot.reshape(*arg.shape, k, k).astype(dout.dtype), shape, self.stride)


class AvgPool2d(_Pool):
    kind = "avgpool"

    def forward(self, x, train=False):
        if train:
            self._shape = x.shape
        return _windows(x, self.kernel, self.kernel, self.stride).mean(axis=(4, 5)).astype(x.dtype)

    def backward(self, dout):
        k = self.kernel
        dwin = np.broadcast_to((dout / (k * k))[..., None, None], (*dout.shape, k, k))
        return _scatter_windows(dwin, self._shape, self.stride)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels, and d(loss)/d(logits)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -log_probs[np.arange(n), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1
    return float(loss), grad / n
