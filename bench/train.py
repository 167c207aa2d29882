"""Benchmark the numpy trainer on the Uno MNIST recipe: train seconds and held-out test accuracy.

    python bench/train.py                         # the built-in recipe block below
    python bench/train.py recipes/mnist_uno.yaml  # the `dataset` and `model.train` of a recipe
    python bench/train.py --seeds 0 1 2           # repeat with other training seeds

Activation sizes assume int8 and the device's fusion of conv+relu+maxpool (a fused conv's full
output is never stored), so the stored tensors are the input and each fused block's output.
"""

from __future__ import annotations

import argparse
import time

import yaml

from edgebuild.data import load_dataset
from edgebuild.train import build_net, evaluate, fit

RECIPE = """
dataset:
  name: mnist5k
  resize: [14, 14]
  normalize: {mean: 0.0, std: 1.0}
  split: {test: 1000, val: 500, seed: 0}
model:
  train:
    arch:
      - conv: {out: 8, kernel: 5, stride: 1, pad: 2}
      - relu: {}
      - maxpool: {kernel: 2}
      - conv: {out: 24, kernel: 3, stride: 1, pad: 1}
      - relu: {}
      - maxpool: {kernel: 2}
      - flatten: {}
      - dense: {out: 10}
    epochs: 40
    batch_size: 32
    optimizer: adam
    lr: 0.01
    momentum: 0.9
    weight_decay: 0.0005
    augment: {shift: 1}
    seed: 0
"""


def stored_activations(net) -> list[tuple[str, int]]:
    """(tensor, int8 bytes) of the tensors a fused conv+relu+pool device program must hold."""
    shapes = dict(net.shapes())
    kinds = [layer.kind for layer in net.layers]
    stored = [("input", _size(net.input_shape))]
    for i, layer in enumerate(net.layers):
        after = [k for k in kinds[i + 1:] if k != "relu"][:1]
        fused_into_pool = layer.kind == "conv" and after and after[0] in ("maxpool", "avgpool")
        if layer.kind in ("conv", "dense", "maxpool", "avgpool") and not fused_into_pool:
            stored.append((layer.name, _size(shapes[layer.name])))
    return stored


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", help="recipe YAML (default: the built-in block)")
    parser.add_argument("--seeds", type=int, nargs="*", help="training seeds (default: the recipe's)")
    args = parser.parse_args()
    recipe = yaml.safe_load(open(args.recipe) if args.recipe else RECIPE)
    t0 = time.perf_counter()
    ds = load_dataset(recipe.get("dataset") or {})
    print(f"dataset: {ds.meta['counts']} input {ds.meta['input_shape']} ({time.perf_counter() - t0:.1f}s)")
    train = recipe["model"]["train"]
    for seed in args.seeds if args.seeds else [train.get("seed", 0)]:
        cfg = {**train, "seed": seed}
        t0 = time.perf_counter()
        net = build_net(train["arch"], ds.x_train.shape[1:], seed=seed)
        history = fit(net, ds, cfg)
        seconds = time.perf_counter() - t0
        acts = ", ".join(f"{name} {size} B" for name, size in stored_activations(net))
        print(f"seed {seed}: params {net.num_params()}  train {seconds:.1f}s  "
              f"val {history['val_acc'][-1]:.4f}  test {evaluate(net, ds.x_test, ds.y_test):.4f}  "
              f"stored activations (int8): {acts}")


if __name__ == "__main__":
    main()
