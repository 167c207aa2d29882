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


def _windows(x: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw) strided view of the kh x kw windows of x at ``stride``."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def _scatter_windows(dwin: np.ndarray, in_shape: tuple[int, ...], stride: int) -> np.ndarray:
    """Inverse of ``_windows`` for gradients: sum each window element back onto its input pixel."""
    n, c, ho, wo, kh, kw = dwin.shape
    dx = np.zeros(in_shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += dwin[:, :, :, :, i, j]
    return dx


class Conv2d(Layer):
    """2-D convolution, square kernel, symmetric zero padding. Weight (out, in, k, k) as in ONNX."""

    kind = "conv"

    def __init__(self, in_ch: int, out: int, kernel: int = 3, stride: int = 1, pad: int = 0):
        super().__init__()
        self.in_ch, self.out, self.kernel, self.stride, self.pad = in_ch, out, kernel, stride, pad
        self.params = {"weight": np.zeros((out, in_ch, kernel, kernel), np.float32),
                       "bias": np.zeros(out, np.float32)}

    def out_shape(self, in_shape):
        _, h, w = in_shape
        k, s, p = self.kernel, self.stride, self.pad
        return (self.out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)

    def forward(self, x, train=False):
        p = self.pad
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        win = _windows(xp, self.kernel, self.kernel, self.stride)        # N C Ho Wo k k
        w = self.params["weight"]
        out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))          # N Ho Wo O
        out = out.transpose(0, 3, 1, 2) + self.params["bias"][None, :, None, None]
        if train:
            self._cache = (xp.shape, win)
        return np.ascontiguousarray(out)

    def backward(self, dout):
        xp_shape, win = self._cache
        w = self.params["weight"]
        self.grads["weight"] = np.tensordot(dout, win, axes=([0, 2, 3], [0, 2, 3]))  # O C k k
        self.grads["bias"] = dout.sum(axis=(0, 2, 3))
        dwin = np.tensordot(dout, w, axes=([1], [0]))                    # N Ho Wo C k k
        dxp = _scatter_windows(dwin.transpose(0, 3, 1, 2, 4, 5), xp_shape, self.stride)
        p = self.pad
        return dxp[:, :, p:xp_shape[2] - p, p:xp_shape[3] - p] if p else dxp

    def spec(self):
        return {"conv": {"out": self.out, "kernel": self.kernel, "stride": self.stride, "pad": self.pad}}


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
