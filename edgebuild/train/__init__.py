"""The numpy trainer: build a small CNN from a recipe, train it, evaluate it, export/import ONNX.

    net = build_net(recipe["model"]["train"]["arch"], ds.x_train.shape[1:], seed=0)
    history = fit(net, ds, recipe["model"]["train"], progress=print)
    evaluate(net, ds.x_test, ds.y_test); export_onnx(net, "model.onnx")
"""

from edgebuild.train.fit import evaluate, fit
from edgebuild.train.net import Net, build_net
from edgebuild.train.onnx_io import export_onnx, net_from_onnx

__all__ = ["Net", "build_net", "fit", "evaluate", "export_onnx", "net_from_onnx"]
