"""Task kinds: how a model's outputs are scored (recipe field ``task.kind``).

- ``classification``: argmax accuracy against int64 labels.
- ``regression``: mean squared error against float targets (N, k).
- ``anomaly``: an autoencoder; the per-sample score is the reconstruction MSE against the input,
  the task's error is its mean, and where the dataset has 0/1 labels (1 = anomalous) the AUC of that
  score (scikit-learn's ``roc_auc_score``) is reported too.

    score("anomaly", outputs, reference=x.reshape(len(x), -1), labels=y)
    -> {"metric": "mse", "mse": 0.41, "auc": 0.87}
"""

from __future__ import annotations

import numpy as np

from edgebuild.errors import DatasetError

TASK_KINDS = ("classification", "regression", "anomaly")


def reference_of(kind: str, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """What the outputs are compared with: None (classification), targets, or the flattened input."""
    if kind == "classification":
        return None
    if kind == "regression":
        if y.ndim != 2 or not np.issubdtype(y.dtype, np.floating):
            raise DatasetError("task.kind regression needs float targets (N, k) as the dataset's y, got "
                               f"{y.dtype} shape {list(y.shape)}", field="task.kind",
                               fix="give float targets as y, or use task.kind classification/anomaly")
        return y.astype(np.float32)
    return x.reshape(len(x), -1).astype(np.float32)


def check_labels(kind: str, y: np.ndarray) -> None:
    """Classification needs int64 class labels (not -1 'none')."""
    if kind == "classification" and (y.ndim != 1 or y.dtype != np.int64 or (len(y) and y.min() < 0)):
        raise DatasetError("task.kind classification needs integer class labels, but the dataset has "
                           + ("none" if y.ndim == 1 and len(y) and y.min() < 0 else f"{y.dtype} {list(y.shape)}"),
                           field="task.kind",
                           fix="give labels (key y of the .npz, dataset.labels, synthetic.classes), or set "
                               "task.kind to regression or anomaly")


def per_sample_error(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Mean squared error of each row of ``outputs`` against ``reference`` (float64)."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    if out.shape != ref.shape:
        raise DatasetError(f"model outputs {list(out.shape[1:])} values per sample but the reference has "
                           f"{list(ref.shape[1:])}", field="task.kind",
                           fix="an anomaly model must reconstruct its input; a regression model must output "
                               "as many values as the targets")
    return ((out - ref) ** 2).mean(axis=1)


def score(kind: str, outputs: np.ndarray, *, reference: np.ndarray | None, labels: np.ndarray) -> dict:
    """Score real-valued ``outputs`` (N, k) for ``kind``; see the module docstring."""
    if kind == "classification":
        return {"metric": "accuracy", "accuracy": float((outputs.argmax(1) == labels).mean())}
    err = per_sample_error(outputs, reference)
    result = {"metric": "mse", "mse": float(err.mean())}
    if kind == "anomaly":
        result["auc"] = anomaly_auc(err, labels)
    return result


def anomaly_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` against 0/1 ``labels``; None without both classes present."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return None
    known = labels >= 0
    if not set(np.unique(labels[known])) <= {0, 1} or len(np.unique(labels[known])) != 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels[known], scores[known]))


def check_input_shape(model_shape, data_shape, model_file: str, input_name: str = "input") -> None:
    """The dataset's per-sample shape must be the model input's (batch axis excluded); names the
    likely fix when it is the same shape in the other layout."""
    model_shape = [int(d) for d in model_shape]
    data_shape = [int(d) for d in data_shape]
    if model_shape == data_shape:
        return
    fix = "give data of the model's input shape, or resize it (dataset.resize)"
    if len(data_shape) == 3 and len(model_shape) == 3:
        if [data_shape[1], data_shape[2], data_shape[0]] == model_shape:
            fix = "the data looks NCHW and the model NHWC-like; edgebuild models are NCHW: check dataset.layout"
        elif [data_shape[2], data_shape[0], data_shape[1]] == model_shape:
            fix = "the data looks channels-last: set dataset.layout: NHWC so it is converted to NCHW"
    elif int(np.prod(model_shape)) == int(np.prod(data_shape)):
        fix = "same number of values: reshape x in the file to the model's input shape"
    raise DatasetError(f"the dataset's samples have shape {data_shape} but the model's input "
                       f"'{input_name}' is {model_shape}", file=model_file, field="dataset", fix=fix)
