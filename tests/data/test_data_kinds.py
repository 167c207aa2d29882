"""The arrays / images / synthetic dataset kinds and the task metrics, on small generated files,
checked against hand-computed values and independent numpy/Pillow computations."""

from __future__ import annotations

import numpy as np
import pytest

from edgebuild.data import load_dataset, load_saved, save_dataset
from edgebuild.data.tasks import anomaly_auc, check_input_shape, check_labels, per_sample_error, score
from edgebuild.errors import DatasetError

SPLIT = {"test": 4, "val": 2, "seed": 0}


def _rows(x):
    return {r.tobytes() for r in np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1)}


def test_npz_nhwc_converted_to_nchw(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 5, 4, 3)).astype(np.float32)          # N, H, W, C
    y = rng.integers(0, 3, 20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset({"name": "arrays", "path": str(tmp_path / "d.npz"), "layout": "NHWC", "split": SPLIT})
    assert ds.x_train.shape[1:] == (3, 5, 4)
    # every sample appears exactly once, channel c of sample i equals x[i, :, :, c]
    got = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    labels = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    assert _rows(got) == _rows(np.stack([x[i][..., c] for i in range(20) for c in range(3)]).reshape(20, 3, 5, 4))
    for sample, label in zip(got, labels):
        i = next(i for i in range(20) if np.array_equal(x[i][:, :, 0], sample[0]))
        assert label == y[i] and ds.y_train.dtype == np.int64


def test_npy_pair_any_rank_and_no_labels(tmp_path):
    x = np.arange(30 * 7, dtype=np.float64).reshape(30, 7)
    np.save(tmp_path / "x.npy", x)
    ds = load_dataset({"name": "arrays", "path": str(tmp_path / "x.npy"), "split": SPLIT})
    assert ds.x_train.shape[1:] == (7,) and ds.meta["labels"] is False
    assert (ds.y_train == -1).all() and len(ds.y_test) == 4
    with pytest.raises(DatasetError, match="needs integer class labels"):
        check_labels("classification", ds.y_test)
    t = np.arange(30 * 2, dtype=np.float32).reshape(30, 2) / 7
    np.save(tmp_path / "t.npy", t)
    ds = load_dataset({"name": "arrays", "path": str(tmp_path / "x.npy"), "labels": str(tmp_path / "t.npy"),
                       "split": SPLIT})
    assert ds.y_train.dtype == np.float32 and ds.y_train.shape[1:] == (2,)
    # targets stay paired with their inputs: t[i] = [2i, 2i+1] / 7 and x[i, 0] = 7i
    np.testing.assert_allclose(ds.y_test[:, 0] * 7, ds.x_test[:, 0] / 7 * 2, rtol=1e-6)


def test_saved_dataset_roundtrip_keeps_targets(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((12, 3), np.float32))
    np.save(tmp_path / "y.npy", np.full((12, 2), 0.5, np.float32))
    ds = load_dataset({"name": "arrays", "path": str(tmp_path / "x.npy"), "labels": str(tmp_path / "y.npy"),
                       "split": SPLIT})
    save_dataset(ds, tmp_path / "s.npz")
    back = load_saved(tmp_path / "s.npz")
    assert back.y_val.dtype == np.float32 and np.array_equal(back.y_val, ds.y_val)


@pytest.mark.parametrize("make, match, field", [
    (lambda p: np.savez(p / "d.npz", inputs=np.ones((5, 2))), "no 'x'", "dataset.path"),
    (lambda p: np.savez(p / "d.npz", x=np.ones((5, 2, 2)), y=np.ones(4)), "y has 4 rows", "dataset.labels"),
    (lambda p: np.savez(p / "d.npz", x=np.ones(5)), "rank >= 2", "dataset.path"),
])
def test_npz_errors_name_file_field_fix(tmp_path, make, match, field):
    make(tmp_path)
    with pytest.raises(DatasetError, match=match) as e:
        load_dataset({"name": "arrays", "path": str(tmp_path / "d.npz"), "split": {"test": 1, "val": 1}})
    assert e.value.field == field and e.value.fix and str(tmp_path / "d.npz") in str(e.value)


def test_nhwc_needs_rank_4(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((6, 3, 3), np.float32))
    with pytest.raises(DatasetError, match="NHWC needs x of rank 4") as e:
        load_dataset({"name": "arrays", "path": str(tmp_path / "x.npy"), "layout": "NHWC"})
    assert e.value.field == "dataset.layout"


def test_layout_mismatch_with_model_names_the_fix():
    check_input_shape([3, 8, 8], [3, 8, 8], "m")
    with pytest.raises(DatasetError, match=r"shape \[8, 8, 3\] but the model's input 'input' is \[3, 8, 8\]") as e:
        check_input_shape([3, 8, 8], [8, 8, 3], "m")
    assert "dataset.layout: NHWC" in e.value.fix
    with pytest.raises(DatasetError) as e:
        check_input_shape([1, 49, 10], [490], "m")
    assert "reshape" in e.value.fix


def _png_folder(root, sizes, mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(3)
    truth = {}
    for cls, n in sizes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            Image.fromarray(a, "RGB").save(root / cls / f"{i}.png")
            truth[a.tobytes()] = cls
    return truth


def test_image_folder_rgb_labels_from_subfolders(tmp_path):
    truth = _png_folder(tmp_path / "imgs", {"cat": 4, "dog": 5})
    ds = load_dataset({"name": "images", "path": str(tmp_path / "imgs"), "color": "rgb",
                       "split": {"test": 3, "val": 1, "seed": 0}})
    assert ds.meta["classes"] == ["cat", "dog"] and ds.x_train.shape[1:] == (3, 6, 5)
    for x, y in zip(np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])):
        pixels = np.rint(x.transpose(1, 2, 0) * 255).astype(np.uint8).tobytes()   # PNG is lossless
        assert truth[pixels] == ["cat", "dog"][y]


def test_image_folder_grayscale_resize_matches_pillow(tmp_path):
    from PIL import Image

    _png_folder(tmp_path / "imgs", {"a": 3, "b": 3})
    ds = load_dataset({"name": "images", "path": str(tmp_path / "imgs"), "resize": [4, 4],
                       "split": {"test": 2, "val": 1, "seed": 0}})
    assert ds.x_train.shape[1:] == (1, 4, 4)
    ref = {np.asarray(Image.open(f).convert("L").resize((4, 4), Image.Resampling.BILINEAR)).tobytes()
           for f in (tmp_path / "imgs").glob("*/*.png")}
    got = {np.rint(x[0] * 255).astype(np.uint8).tobytes() for x in np.concatenate([ds.x_train, ds.x_val, ds.x_test])}
    assert got == ref


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class subfolders"):
        load_dataset({"name": "images", "path": str(tmp_path / "empty")})
    (tmp_path / "empty" / "cls").mkdir()
    with pytest.raises(DatasetError, match="holds no PNG or JPEG") as e:
        load_dataset({"name": "images", "path": str(tmp_path / "empty")})
    assert e.value.fix


def test_synthetic_is_seeded_and_shaped():
    spec = {"name": "synthetic", "synthetic": {"shape": [1, 4, 3], "classes": 5, "samples": 40, "seed": 2},
            "split": SPLIT}
    a, b = load_dataset(spec), load_dataset(spec)
    assert np.array_equal(a.x_train, b.x_train) and a.x_train.shape[1:] == (1, 4, 3)
    assert set(np.unique(np.concatenate([a.y_train, a.y_test]))) <= set(range(5))
    assert "mean nothing" in a.meta["note"]
    other = load_dataset({**spec, "synthetic": {**spec["synthetic"], "seed": 3}})
    assert not np.array_equal(a.x_train, other.x_train)


def test_recipe_schema_for_new_kinds():
    from pydantic import ValidationError

    from edgebuild.recipe import DatasetSpec, ModelSpec, Task

    with pytest.raises(ValidationError, match="needs dataset.path"):
        DatasetSpec(name="arrays")
    with pytest.raises(ValidationError, match="needs dataset.synthetic"):
        DatasetSpec(name="synthetic")
    with pytest.raises(ValidationError, match="exactly one of"):
        ModelSpec(onnx="a.onnx", zoo={"name": "ds_cnn"})
    assert Task().kind == "classification"


# --- task metrics against hand-computed values --------------------------------------------------

def test_classification_accuracy_by_argmax():
    out = np.array([[0.1, 0.9], [2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    assert score("classification", out, reference=None, labels=np.array([1, 0, 0, 1])) == \
        {"metric": "accuracy", "accuracy": 0.5}


def test_regression_mse_by_hand():
    out = np.array([[1.0, 2.0], [0.0, 0.0]])
    ref = np.array([[1.0, 4.0], [3.0, -1.0]])
    # sample errors: (0 + 4) / 2 = 2, (9 + 1) / 2 = 5; mean 3.5
    np.testing.assert_allclose(per_sample_error(out, ref), [2.0, 5.0])
    assert score("regression", out, reference=ref, labels=np.array([-1, -1]))["mse"] == 3.5


def test_anomaly_auc_by_hand():
    # scores 0.1 0.4 0.35 0.8, labels 0 0 1 1: positive/negative pairs (0.35>0.1, 0.35<0.4, 0.8>both) -> 3/4
    assert anomaly_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert anomaly_auc(np.array([0.1, 0.4]), np.array([-1, -1])) is None
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    recon = np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 2.0]])      # errors 0, 0.5, 2
    s = score("anomaly", recon, reference=x, labels=np.array([0, 1, 1]))
    assert s["mse"] == pytest.approx(2.5 / 3) and s["auc"] == 1.0
