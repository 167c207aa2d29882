"""Full training of the Uno MNIST recipe (slow): >= 96% on the 1,000 held-out digits, < 3 minutes.

Checks both recipes/mnist_uno.yaml (when it trains a model) and the block in bench/train.py. The
accuracy is measured independently of the trainer: the exported ONNX model runs in onnxruntime.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from edgebuild.data import load_dataset
from edgebuild.train import build_net, export_onnx, fit

ROOT = Path(__file__).resolve().parents[2]


def load_recipe(source: str) -> dict:
    if source == "recipe":
        path = ROOT / "recipes" / "mnist_uno.yaml"
        recipe = yaml.safe_load(path.read_text()) if path.is_file() else {}
        if not (recipe.get("model") or {}).get("train"):
            pytest.skip("recipes/mnist_uno.yaml does not train a model")
        return recipe
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "bench" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return yaml.safe_load(module.RECIPE)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["recipe", "bench"])
def test_uno_recipe_reaches_96_percent_in_3_minutes(source, tmp_path):
    recipe = load_recipe(source)
    ds = load_dataset(recipe["dataset"])
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (3500, 500, 1000)
    assert ds.x_train.shape[1:] == (1, 14, 14)
    train = recipe["model"]["train"]
    start = time.perf_counter()
    net = build_net(train["arch"], ds.x_train.shape[1:], seed=train.get("seed", 0))
    fit(net, ds, train)
    seconds = time.perf_counter() - start
    assert net.num_params() <= 5000
    pooled = [int(np.prod(shape)) for name, shape in net.shapes() if name.startswith(("maxpool", "avgpool"))]
    assert max(pooled) <= 400
    export_onnx(net, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    predictions = [session.run(None, {"input": x[None]})[0].argmax() for x in ds.x_test]
    accuracy = float(np.mean(np.array(predictions) == ds.y_test))
    assert accuracy >= 0.96, f"test accuracy {accuracy:.4f}"
    assert seconds < 180, f"training took {seconds:.0f}s"
