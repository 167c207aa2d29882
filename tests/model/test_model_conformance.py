"""ONNX backend conformance: every shipped case whose operators we support runs through
Graph.run and must match the expected outputs (the ONNX reference data) within the backend's
tolerances (rtol=1e-3, atol=1e-7). Cases using unsupported operators, attributes, dtypes or
opsets are skipped with the loader's reason.

Adaptations, each documented where it happens: cases generated at a newer opset are relabelled
when the operator means the same at ours; shape/axes/pads operands fed as graph inputs are bound
to their test values (the IR needs static shapes); opset-6 PyTorch models are upgraded with
onnx's version converter.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgebuild.errors import ModelError
from edgebuild.model import from_onnx, ops, optimise

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
UNSUPPORTED_MARKERS = ("not supported", "unsupported", "not a numeric tensor")


def _array(value):
    """Case data may be arrays or TensorProtos."""
    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value


def _node_cases():
    """Node cases of the supported operators (importing only their case modules is fast)."""
    import onnx.backend.test.case.node as pkg
    wanted = {op.lower() for op in ops.supported()}
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.replace("_", "") in wanted:
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return sorted(pkg._NodeTestCases, key=lambda c: c.name)


def _data_dirs():
    return [d for kind in ("pytorch-converted", "pytorch-operator")
            for d in sorted((DATA / kind).glob("test_*")) if (d / "model.onnx").is_file()]


def _same_at_max_opset(node, version):
    """True when ``node`` means the same at our maximum opset as at ``version``: same inputs
    and outputs, and every attribute it uses already defined (later versions only added
    element types or new attributes the node does not use)."""
    new, old = (onnx.defs.get_schema(node.op_type, v) for v in (version, ops.MAX_OPSET))
    return ([i.name for i in new.inputs], [o.name for o in new.outputs]) == \
        ([i.name for i in old.inputs], [o.name for o in old.outputs]) \
        and {a.name for a in node.attribute} <= set(old.attributes)


def _relabel_newer(model):
    """Cases generated at an opset above ours are relabelled to our maximum opset when every
    node means the same there; other cases are left for the loader to reject."""
    version = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if version <= ops.MAX_OPSET or any(
            n.op_type not in ops.REGISTRY or not _same_at_max_opset(n, version)
            for n in model.graph.node):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for o in out.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = ops.MAX_OPSET
    return out


def _freeze_operands(model, inputs):
    """The IR needs static shapes: bind every input but the first (shape/axes/pads operands)
    to its test value as an initializer. Returns (model, remaining inputs)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.input[:]
    rest = []
    for k, (vi, value) in enumerate(zip(model.graph.input, map(_array, inputs))):
        if k > 0:
            out.graph.initializer.append(numpy_helper.from_array(value, vi.name))
        else:
            out.graph.input.append(vi)
            rest.append(value)
    return out, rest


def _load_or_skip(model, name, counter, datasets, retry=True):
    """(graph, datasets) or pytest.skip when the loader says the case is unsupported."""
    model = _relabel_newer(model)
    try:
        return from_onnx(model, source=name), datasets
    except ModelError as exc:
        if "non-constant" in str(exc) and len(datasets) == 1 and retry:
            frozen, rest = _freeze_operands(model, datasets[0][0])
            return _load_or_skip(frozen, name, counter, [(rest, datasets[0][1])], False)
        if any(m in str(exc) for m in UNSUPPORTED_MARKERS):
            counter["skipped"] += 1
            pytest.skip(str(exc).splitlines()[0])
        raise


def _check(graph, datasets, rtol, atol, counter):
    counter["ran"] += 1
    for inputs, expected in datasets:
        inputs, expected = [_array(v) for v in inputs], [_array(v) for v in expected]
        got = graph.run(dict(zip(graph.inputs, inputs)))
        assert len(expected) == len(graph.outputs)
        for name, want in zip(graph.outputs, expected):
            y = got[name]
            assert y.shape == want.shape, name
            assert y.dtype == want.dtype, name
            assert graph.shapes[name][1:] == want.shape[1:], name
            np.testing.assert_allclose(y, want, rtol=rtol, atol=atol, err_msg=name)
    counter["passed"] += 1


NODE_CASES = _node_cases()


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_node_case(case, conformance):
    """onnx/backend/test/case/node: one operator per model, outputs from the ONNX reference.
    The optimised graph is checked too."""
    graph, datasets = _load_or_skip(case.model, case.name, conformance, case.data_sets)
    _check(graph, datasets, case.rtol, case.atol, conformance)
    _check(optimise(graph), datasets, case.rtol, case.atol, conformance)


def _read_pb(path):
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


@pytest.mark.parametrize("case_dir", _data_dirs(), ids=lambda d: f"{d.parent.name}/{d.name}")
def test_data_case(case_dir, conformance):
    """pytorch-converted / pytorch-operator models. Most are opset 6, below our range: the
    loader upgrades them with onnx's own version converter and says so in the graph's log."""
    model = onnx.load(str(case_dir / "model.onnx"))
    version = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    datasets = []
    for ds in sorted(case_dir.glob("test_data_set_*")):
        ins = [_read_pb(p) for p in sorted(ds.glob("input_*.pb"))]
        outs = [_read_pb(p) for p in sorted(ds.glob("output_*.pb"))]
        datasets.append((ins, outs))
    try:
        graph, datasets = _load_or_skip(model, case_dir.name, conformance, datasets)
    except ModelError as exc:
        if version >= ops.MIN_OPSET:
            raise
        # e.g. PRelu-6 channel slopes are not rewritten to (C, 1, 1); onnxruntime fails too
        conformance["skipped"] += 1
        pytest.skip(f"onnx's opset-{version} upgrade is invalid: {str(exc).splitlines()[0]}")
    if version < ops.MIN_OPSET:
        assert graph.log[:1] == [f"upgraded from opset {version} to {ops.MIN_OPSET} with onnx.version_converter"]
        assert graph.opset == ops.MIN_OPSET
    _check(graph, datasets, 1e-3, 1e-7, conformance)
    _check(optimise(graph), datasets, 1e-3, 1e-7, conformance)


def _real_cases():
    from onnx.backend.test.case.model import collect_testcases
    return [c for c in collect_testcases() if c.kind == "real"]


@pytest.mark.parametrize("case", _real_cases(), ids=lambda c: c.name)
def test_real_model(case, conformance):
    """The 'light' zoo models (weights made by ConstantOfShape): input and expected output as
    the ONNX backend runner makes them. The optimised graph must agree as well."""
    from onnx.backend.test.runner import Runner
    path = DATA.parent.parent.parent.parent / case.url
    model = onnx.load(str(path))
    try:
        graph = from_onnx(model, source=path.name)
    except ModelError as exc:
        if any(m in str(exc) for m in UNSUPPORTED_MARKERS + ("limit",)):
            conformance["skipped"] += 1
            pytest.skip(str(exc).splitlines()[0])
        raise
    vi = next(v for v in model.graph.input if v.name == graph.inputs[0])
    x = Runner.generate_dummy_data(vi, seed=0, name=case.model_name, random=False)
    want = _read_pb(path.with_name(f"{path.stem}_output_0.pb"))
    _check(graph, [([x], [want])], case.rtol, case.atol, conformance)
    _check(optimise(graph), [([x], [want])], case.rtol, case.atol, conformance)
