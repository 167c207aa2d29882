"""QModel head/tail slicing, costs_from_qmodel, the partition stage and the server runner, on small
quantised models (fast; no toolchain). References: the unsplit int8 model's own run, and costs
recomputed here by hand from the layer shapes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from edgebuild.errors import ConfigError, ModelError, VerificationError
from edgebuild.partition import costs_from_qmodel, encode_frame
from edgebuild.partition.server import TailRunner, finish, load_table, lookup_seconds_median, main
from edgebuild.stages import partition as stage
from split_models import chain_qmodel, residual_qmodel

UNO = {"supply_v": 5.0, "active_current_ma": 9.5, "cycles_per_mac": 22.0}
F_CPU = 16e6
# MACs of chain_qmodel by hand: conv 3x3 pad 1 on 8x8 (1->4), on 4x4 (4->6), dense 24->5.
CHAIN_MACS = [4 * 8 * 8 * 9 * 1, 6 * 4 * 4 * 9 * 4, 24 * 5]
CHAIN_OUT_BYTES = [4 * 4 * 4, 6 * 2 * 2, 5]


@pytest.fixture(scope="module")
def chain():
    return chain_qmodel()


@pytest.fixture(scope="module")
def x_q(chain):
    x = np.random.default_rng(2).uniform(0, 1, (50, 1, 8, 8))
    return chain.quantize_input(x)


def test_head_then_tail_equals_the_unsplit_model(chain, x_q, tmp_path):
    ref = chain.run(x_q)
    assert chain.cut_points() == [0, 1, 2, 3]
    for k in (1, 2, 3):
        head, tail = chain.head(k), chain.tail(k)
        head.save(tmp_path / f"h{k}")
        tail.save(tmp_path / f"t{k}")
        head, tail = type(chain).load(tmp_path / f"h{k}"), type(chain).load(tmp_path / f"t{k}")
        cut = head.run(x_q)
        assert cut.shape == (len(x_q), int(np.prod(chain.layers[k - 1]["out_shape"])))
        assert head.output_scale == chain.layers[k - 1]["scale_out"]
        assert set(head.arrays) | set(tail.arrays) == set(chain.arrays)
        assert not set(head.arrays) & set(tail.arrays)
        np.testing.assert_array_equal(tail.run(cut), ref)
    np.testing.assert_array_equal(chain.tail(0).run(x_q), ref)


def test_a_skip_connection_makes_a_boundary_unrealisable():
    qm = residual_qmodel()
    assert [lay["kind"] for lay in qm.layers] == ["conv", "conv", "add", "dense"]
    assert qm.cut_points() == [0, 1, 3, 4]   # after conv 2 both conv outputs would cross
    with pytest.raises(ModelError) as err:
        qm.head(2)
    assert err.value.field == "partition.at"
    with pytest.raises(ModelError):
        qm.head(0)


def test_costs_from_qmodel_match_hand_computed_costs(chain):
    power = 5.0 * 9.5e-3
    costs = costs_from_qmodel(chain, cycles_per_mac=22, f_cpu=F_CPU, power_w=power, speedup=50)
    assert costs.inputs == {"x": 64} and costs.is_chain()
    for layer, macs, nbytes in zip(costs.layers, CHAIN_MACS, CHAIN_OUT_BYTES):
        assert layer.device_time_s == pytest.approx(22 * macs / F_CPU)
        assert layer.server_time_s == pytest.approx(22 * macs / F_CPU / 50)
        assert layer.device_energy_j == pytest.approx(power * 22 * macs / F_CPU)
        assert layer.out_bytes == nbytes and layer.weight_bytes == 0
    with pytest.raises(ModelError):
        costs_from_qmodel(chain, cycles_per_mac=0, f_cpu=F_CPU, power_w=power)


def _run_stage(tmp_path, qm, x_q, partition, energy=UNO, name="p"):
    """The partition stage on quantise-like outputs of ``qm`` (fake engine context)."""
    src, out = tmp_path / f"{name}_in", tmp_path / f"{name}_out"
    out.mkdir(parents=True)
    qm.save(src / "qmodel")
    ref = qm.run(x_q)
    np.savez(src / "vectors.npz", inputs=x_q.reshape(len(x_q), -1), outputs=ref,
             labels=ref.argmax(1).astype(np.int64), float_pred=ref.argmax(1).astype(np.int64))
    (src / "metrics.json").write_text('{"int8_accuracy": 1.0}\n')
    spec = {"mode": "auto", "at": None, "objective": "latency",
            "link": {"bandwidth_bps": 9600.0, "latency_ms": 20.0, "energy_per_byte_uj": 0.0},
            "server": {"target": "host", "speedup": 100.0}}
    spec.update(partition)
    ctx = SimpleNamespace(params={"partition": spec, "target": "uno", "f_cpu": F_CPU, "energy": energy,
                                  "memories": {"sram": {"size": 2048}}},
                          inputs={"q": src}, out=out, log=lambda m: None, progress=lambda m: None)
    stage.run(ctx)
    return src, out


def test_mode_none_passes_the_quantise_outputs_through_byte_for_byte(tmp_path, chain, x_q):
    src, out = _run_stage(tmp_path, chain, x_q, {"mode": "none"}, energy={"supply_v": 5.0})
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == files
    for f in files:
        assert (src / f).read_bytes() == (out / f).read_bytes(), f


def _expected_latency_ms(k, bw, lat_ms, speedup):
    dev = sum(22 * m / F_CPU for m in CHAIN_MACS[:k])
    srv = sum(22 * m / F_CPU / speedup for m in CHAIN_MACS[k:])
    sent = ([64] + CHAIN_OUT_BYTES)[k] if k < 3 else 0
    return 1e3 * (dev + srv + (sent * 8 / bw + lat_ms * 1e-3 if k < 3 else 0.0))


@pytest.mark.parametrize("bw", [2000.0, 9600.0, 1e6])
def test_auto_picks_the_fastest_split_with_a_device_layer(tmp_path, chain, x_q, bw):
    _, out = _run_stage(tmp_path, chain, x_q, {"link": {"bandwidth_bps": bw, "latency_ms": 5.0,
                                                        "energy_per_byte_uj": 0.0}})
    part = json.loads((out / "partition.json").read_text())
    expect = [_expected_latency_ms(k, bw, 5.0, 100.0) for k in range(4)]
    assert [c["total_ms"] for c in part["candidates"]] == pytest.approx(expect)
    best = 1 + int(np.argmin(expect[1:]))
    assert part["chosen"]["k"] == best and [c["chosen"] for c in part["candidates"]].count(True) == 1
    assert part["chosen"]["layers_on_device"] == [lay["name"] for lay in chain.layers[:best]]
    assert "edge_split_lookup" in (out / "table.h").read_text()
    assert (out / "tail").is_dir() == (best < 3)
    # The adaptive table (as the server loads it) holds the unconstrained optimum, server-only
    # included, at the grid bandwidth at or below the link's; no energy budget, all SRAM free.
    table = load_table(out)
    assert list(table.table.shape) == part["table"]["shape"] == [12, 6, 5]
    grid_bw = max(b for b in stage.BANDWIDTHS if b <= bw)
    k_opt = int(np.argmin([_expected_latency_ms(k, grid_bw, 5.0, 100.0) for k in range(4)]))
    split = table.lookup(bw, float("inf"), 2048)
    assert table.splits[split] == frozenset(lay["name"] for lay in chain.layers[:k_opt])
    assert 0 < lookup_seconds_median(table, repeats=3, batch=200) < 1e-3


def test_mode_at_writes_head_vectors_and_a_tail_the_server_finishes(tmp_path, chain, x_q):
    src, out = _run_stage(tmp_path, chain, x_q, {"mode": "at", "at": "conv4"})
    part = json.loads((out / "partition.json").read_text())
    assert part["chosen"]["k"] == 2 and part["chosen"]["sent_bytes"] == 24
    vec, ref = np.load(out / "vectors.npz"), np.load(src / "vectors.npz")
    np.testing.assert_array_equal(vec["final"], ref["outputs"])
    np.testing.assert_array_equal(vec["inputs"], ref["inputs"])
    assert vec["outputs"].shape == (len(x_q), 24)
    runner = TailRunner(out / "tail")
    frames = [encode_frame(2, row.reshape(6, 2, 2)) for row in vec["outputs"]]
    final = np.stack([runner.finish(f) for f in frames])
    np.testing.assert_array_equal(final, ref["outputs"])
    np.testing.assert_array_equal(finish(out / "tail", frames[3]), ref["outputs"][3])

    corrupt = bytearray(frames[0])
    corrupt[20] ^= 0x04
    for bad in (bytes(corrupt), frames[0][:-5], frames[0][:6], encode_frame(1, vec["outputs"][0].reshape(6, 2, 2)),
                encode_frame(2, vec["outputs"][0].reshape(24))):
        with pytest.raises(VerificationError):
            runner.finish(bad)


def test_server_command_line(tmp_path, chain, x_q, capsys):
    _, out = _run_stage(tmp_path, chain, x_q, {"mode": "at", "at": "t3"})   # a tensor name works too
    vec = np.load(out / "vectors.npz")
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(encode_frame(1, vec["outputs"][0].reshape(4, 4, 4)))
    bad.write_bytes(good.read_bytes()[:-1])
    assert main([str(out / "tail"), str(good)]) == 0
    assert f"argmax {int(vec['final'][0].argmax())}" in capsys.readouterr().out
    assert main([str(out / "tail"), str(bad)]) == 2
    assert "corrupt cut-tensor frame" in capsys.readouterr().err


def test_user_errors_name_the_field(tmp_path, chain, x_q):
    with pytest.raises(ModelError) as err:
        _run_stage(tmp_path, residual_qmodel(), residual_qmodel().quantize_input(
            np.zeros((2, 1, 8, 8))), {"mode": "at", "at": "conv3"}, name="res")
    assert err.value.field == "partition.at" and "conv1" in err.value.fix
    with pytest.raises(ConfigError) as err:
        _run_stage(tmp_path, chain, x_q, {"mode": "auto"}, energy={"supply_v": 5.0, "active_current_ma": 9.5},
                   name="nocpm")
    assert err.value.field == "energy.cycles_per_mac"


def test_split_outputs_are_byte_stable(tmp_path, chain, x_q):
    """Two runs write identical bytes, so an unchanged split cuts the rebuild off downstream."""
    _, a = _run_stage(tmp_path, chain, x_q, {"mode": "auto"}, name="a")
    _, b = _run_stage(tmp_path, chain, x_q, {"mode": "auto"}, name="b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert {"partition.json", "table.h", "table.npz", "vectors.npz"} <= {f.name for f in files}
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
