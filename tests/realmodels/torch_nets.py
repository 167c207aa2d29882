"""The four MLPerf Tiny reference networks written in PyTorch, as a user's training script would, and
exported with ``torch.onnx.export``: a fixture generator for tests/realmodels/test_torch_exports.py
(needs the `torch` extra: ``pip install -e .[torch]``). Architectures follow the MLPerf Tiny
reference models (github.com/mlcommons/tiny, benchmark/training): DS-CNN for keyword spotting,
ResNet-8 for CIFAR-10, MobileNetV1 x0.25 at 96x96 for visual wake words, and the FC autoencoder
for anomaly detection. Weights are PyTorch's default initialisation with seeded, non-trivial
BatchNorm statistics (so folding them is exercised), never trained.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def _bn_stats(module: nn.Module, gen: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def _cbr(cin, cout, k, stride=1, groups=1, pad=None, relu=True):
    pad = tuple(x // 2 for x in k) if pad is None else pad
    layers = [nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class DSCNN(nn.Module):
    """49x10x1 MFCC -> conv 10x4 stride 2 (64) -> 4 x (depthwise 3x3 + pointwise 64) -> GAP -> dense 12."""

    def __init__(self, ch: int = 64, classes: int = 12):
        super().__init__()
        blocks = [_cbr(1, ch, (10, 4), stride=2, pad=(5, 1))]
        for _ in range(4):
            blocks += [_cbr(ch, ch, (3, 3), groups=ch), _cbr(ch, ch, (1, 1))]
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class _Residual(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = _cbr(cin, cout, (3, 3), stride)
        self.b = _cbr(cout, cout, (3, 3), relu=False)
        self.short = (nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + self.short(x))


class ResNet8(nn.Module):
    """32x32x3 -> conv 16 -> residual stacks 16 / 32 (stride 2) / 64 (stride 2) -> avg pool -> dense 10."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = _cbr(3, 16, (3, 3))
        self.stacks = nn.Sequential(_Residual(16, 16, 1), _Residual(16, 32, 2), _Residual(32, 64, 2))
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(self.pool(self.stacks(self.stem(x))).view(x.shape[0], -1))


class MobileNetV1(nn.Module):
    """96x96x3, width 0.25, 2 classes (visual wake words): conv 3x3 stride 2, 13 depthwise-separable
    blocks, global average pool, dense 2."""

    PLAN = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
            (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, alpha: float = 0.25, classes: int = 2):
        super().__init__()
        c = int(32 * alpha)
        layers = [_cbr(3, c, (3, 3), stride=2)]
        for out, stride in self.PLAN:
            o = int(out * alpha)
            layers += [_cbr(c, c, (3, 3), stride=stride, groups=c), _cbr(c, o, (1, 1))]
            c = o
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


class FCAutoencoder(nn.Module):
    """640 -> 128 x4 -> 8 -> 128 x4 -> 640, each hidden dense followed by BatchNorm1d and ReLU."""

    def __init__(self, n: int = 640, hidden: int = 128, code: int = 8):
        super().__init__()
        sizes = [n, hidden, hidden, hidden, hidden, code, hidden, hidden, hidden, hidden]
        layers = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Linear(hidden, n))

    def forward(self, x):
        return self.body(x)


# name -> (constructor, input shape without the batch, recipe dataset/task snippet)
NETS = {
    "ds_cnn": (DSCNN, (1, 49, 10)),
    "resnet8": (ResNet8, (3, 32, 32)),
    "mobilenet_v1": (MobileNetV1, (3, 96, 96)),
    "fc_autoencoder": (FCAutoencoder, (640,)),
}


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = NETS[name][0]()
    _bn_stats(net, torch.Generator().manual_seed(seed + 1))
    return net.eval()


def export(name: str, path: str | Path, *, opset: int, dynamo: bool = False, seed: int = 0) -> Path:
    """``name`` exported to ``path`` as a user would: a dynamic batch axis, named input/output.
    ``dynamo``: the torch.export-based exporter (opset 18 and up), else the TorchScript one."""
    net = build(name, seed)
    x = torch.zeros((1, *NETS[name][1]))
    kw = {"dynamo": dynamo, "input_names": ["input"], "output_names": ["output"]}
    if dynamo:
        kw["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch", min=1, max=64)}}
    else:
        kw["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(net, (x,), str(path), opset_version=opset, **kw)
    return Path(path)
