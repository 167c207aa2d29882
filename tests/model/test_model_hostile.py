"""Hostile or broken ONNX files are rejected with a ModelError naming the file/tensor/node and a
fix, before any large allocation; hostile names are kept as data and sanitised for C."""

from __future__ import annotations

import os
import re
import time
import tracemalloc

import numpy as np
import onnx
import pytest
from model_builders import Builder, ort_run
from onnx import TensorProto, helper

from edgebuild.errors import ModelError
from edgebuild.model import c_identifier, from_onnx, load


def _tiny(name="fc"):
    b = Builder(0)
    b.node("Gemm", ["x", b.weight("w", (4, 3)), b.weight("b", (3,))], ["y"])
    b.nodes[-1].name = name
    return b.model([("x", ["N", 4])], [("y", ["N", 3])])


def _save(model, path):
    onnx.save(model, str(path))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found") as err:
        load(tmp_path / "nope.onnx")
    assert "nope.onnx" in str(err.value) and "fix:" in str(err.value)


def test_truncated_file(tmp_path):
    data = _tiny().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as err:
        load(path)
    assert "cut.onnx" in str(err.value)


def test_garbage_bytes(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    with pytest.raises(ModelError) as err:
        load(path)
    assert "junk.onnx" in str(err.value)


def _external(model, location, length=48):
    w = next(t for t in model.graph.initializer if t.name == "w")
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        w.external_data.add(key=key, value=value)
    return model


@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_folder(tmp_path, location):
    path = _save(_external(_tiny(), location), tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="outside the model's folder") as err:
        load(path)
    assert "tensor 'w'" in str(err.value)


def test_external_data_symlink_escape(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(bytes(48))
    (tmp_path / "m").mkdir()
    os.symlink(outside, tmp_path / "m" / "w.bin")
    path = _save(_external(_tiny(), "w.bin"), tmp_path / "m" / "m.onnx")
    with pytest.raises(ModelError, match="outside"):
        load(path)


def test_external_data_inside_folder_loads(tmp_path):
    model = _tiny()
    weights = onnx.numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    (tmp_path / "w.bin").write_bytes(weights.tobytes())
    graph = load(_save(_external(model, "w.bin"), tmp_path / "m.onnx"))
    np.testing.assert_array_equal(graph.initializers["w"], weights)


def test_external_data_too_short(tmp_path):
    (tmp_path / "w.bin").write_bytes(bytes(8))
    with pytest.raises(ModelError, match="does not hold 48 bytes"):
        load(_save(_external(_tiny(), "w.bin"), tmp_path / "m.onnx"))


def _fast_and_small(fn):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelError) as err:
            fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0
    assert peak < 32 * 1024 * 1024, f"peak {peak} bytes"
    return err.value


def test_huge_initializer_dims_rejected_without_allocating():
    model = _tiny()
    w = next(t for t in model.graph.initializer if t.name == "w")
    del w.dims[:]
    w.dims.extend([1 << 20, 1 << 20])
    err = _fast_and_small(lambda: from_onnx(model, source="huge.onnx"))
    assert "tensor 'w'" in str(err) and "limit" in str(err)


def test_huge_intermediate_rejected_without_allocating():
    b = Builder(0)
    b.node("MatMul", ["x", b.const("w", np.ones((1, 1 << 16), np.float32))], ["y"])
    model = b.model([("x", [1 << 16, 1])], [("y", [1 << 16, 1 << 16])])
    err = _fast_and_small(lambda: from_onnx(model, source="big.onnx"))
    assert "tensor 'y'" in str(err)


def test_data_size_mismatch():
    model = _tiny()
    w = next(t for t in model.graph.initializer if t.name == "w")
    w.dims[0] = 5
    with pytest.raises(ModelError, match="tensor 'w'"):
        from_onnx(model)


def test_hostile_names_kept_and_sanitised(tmp_path):
    evil = "conv;rm -rf /*"
    model = _tiny(evil)
    for t in model.graph.initializer:
        if t.name == "w":
            t.name = "$(reboot)`w`"
    model.graph.node[0].input[1] = "$(reboot)`w`"
    graph = load(_save(model, tmp_path / "evil.onnx"))
    assert graph.nodes[0].name == evil
    assert "$(reboot)`w`" in graph.initializers
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(graph.run({"x": x})["y"], ort_run(model, {"x": x})["y"], rtol=1e-6)
    taken = set()
    ids = [c_identifier(n, taken) for n in (evil, "$(reboot)`w`", "conv rm rf", "int", "9lives")]
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", i) for i in ids)
    assert len(set(ids)) == len(ids) and ids[3] != "int" and not ids[4][0].isdigit()


def test_unsupported_op_names_the_node():
    b = Builder(0)
    b.node("Relu", ["x"], ["r"])
    b.node("Erf", ["r"], ["y"])
    b.nodes[-1].name = "my_erf"
    with pytest.raises(ModelError) as err:
        from_onnx(b.model([("x", [1, 4])], [("y", [1, 4])]), source="m.onnx")
    msg = str(err.value)
    assert "my_erf" in msg and "Erf" in msg and "Conv" in msg and "m.onnx" in msg


def test_unsupported_opset_and_domain():
    model = _tiny()
    model.opset_import[0].version = 5
    with pytest.raises(ModelError, match="opset 5"):
        from_onnx(model)
    model = _tiny()
    model.graph.node[0].domain = "com.evil"
    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    with pytest.raises(ModelError, match="com.evil"):
        from_onnx(model)


def test_dynamic_non_batch_dim():
    b = Builder(0)
    b.node("Relu", ["x"], ["y"])
    with pytest.raises(ModelError, match="input 'x'.*static shapes|static shapes") as err:
        from_onnx(b.model([("x", ["N", "C"])], [("y", ["N", "C"])]))
    assert "'x'" in str(err.value)


def test_unknown_attribute_rejected():
    model = _tiny()
    model.graph.node[0].attribute.append(helper.make_attribute("fancy", 1))
    with pytest.raises(ModelError, match="fancy"):
        from_onnx(model)


def test_huge_graph_input_rejected():
    b = Builder(0)
    b.node("Relu", ["x"], ["y"])
    model = b.model([("x", [1 << 20, 1 << 20])], [("y", [1 << 20, 1 << 20])])
    err = _fast_and_small(lambda: from_onnx(model, source="in.onnx"))
    assert "tensor 'x'" in str(err)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="no ONNX graph") as err:
        load(path)
    assert "empty.onnx" in str(err.value)
