"""plan_memory: media assignment, pins, policies, budgets and error messages.

Expected numbers are worked out by hand in each test from the inputs.
"""

import pytest
from hypothesis import given, settings, strategies as st

from edgebuild.errors import BudgetError, ConfigError
from edgebuild.storage import MemoryPlan, Placement, plan_memory

UNO = {"flash": {"capacity": 32256}, "sram": {"capacity": 2048}, "eeprom": {"capacity": 1024}}
SRC = "recipes/mnist_uno.yaml"


def _weights(**sizes):
    return [{"name": n.replace("_", "."), "nbytes": s, "kind": "bias" if n.endswith("bias") else "weight"}
            for n, s in sizes.items()]


CHAIN = [{"name": "input", "nbytes": 784, "first": 0, "last": 0},
         {"name": "t1", "nbytes": 392, "first": 0, "last": 1},
         {"name": "t2", "nbytes": 256, "first": 1, "last": 2},
         {"name": "out", "nbytes": 10, "first": 2, "last": 3}]


def test_default_layout_is_flash_in_input_order():
    w = _weights(conv1_weight=72, conv1_bias=32, fc_weight=1000)
    plan = plan_memory(w, CHAIN, UNO, reserved={"flash": 6000, "sram": 600}, source=SRC)
    assert plan.weights == {"conv1.weight": Placement("flash", 0, 72),
                            "conv1.bias": Placement("flash", 72, 32),
                            "fc.weight": Placement("flash", 104, 1000)}
    # arena: input+t1 live at step 0 = 1176 (the peak)
    assert (plan.arena_size, plan.arena_lower_bound) == (1176, 1176)
    assert plan.usage == {"flash": 6000 + 1104, "sram": 600 + 1176, "eeprom": 0}
    assert all(p.medium == "sram" for p in plan.activations.values())


def test_alignment_pads_weight_offsets():
    w = _weights(a=3, b=5, c=1)
    plan = plan_memory(w, [], UNO, align=4)
    assert [plan.weights[n].offset for n in "abc"] == [0, 4, 12]
    assert plan.usage["flash"] == 16


def test_pins_are_honoured_exactly_even_when_flash_has_room():
    w = _weights(conv1_weight=72, conv1_bias=32, fc_weight=1000)
    plan = plan_memory(w, CHAIN, UNO, pins={"fc.weight": "eeprom", "conv1.bias": "sram"})
    assert plan.weights["fc.weight"] == Placement("eeprom", 0, 1000)
    assert plan.weights["conv1.bias"] == Placement("sram", 0, 32)
    assert plan.weights["conv1.weight"] == Placement("flash", 0, 72)
    assert plan.usage == {"flash": 72, "sram": 32 + 1176, "eeprom": 1000}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=10), st.data())
def test_pins_honoured_property(sizes, data):
    w = [{"name": f"w{i}", "nbytes": s} for i, s in enumerate(sizes)]
    pins = data.draw(st.dictionaries(st.sampled_from([x["name"] for x in w]),
                                     st.sampled_from(["flash", "eeprom", "sram"])))
    media = {m: {"capacity": 10 ** 6} for m in ("flash", "sram", "eeprom")}
    plan = plan_memory(w, [], media, pins=pins)
    for name, medium in pins.items():
        assert plan.weights[name].medium == medium
    for medium in media:  # weights in one medium are packed without overlap, in input order
        placed = [plan.weights[x["name"]] for x in w if plan.weights[x["name"]].medium == medium]
        assert [p.offset for p in placed] == [sum(q.nbytes for q in placed[:i]) for i in range(len(placed))]
    assert plan_memory(w, [], media, pins=pins) == plan


def test_auto_moves_largest_unpinned_tensors_to_eeprom_until_flash_fits():
    media = {"flash": {"capacity": 3000}, "sram": {"capacity": 2048}, "eeprom": {"capacity": 1024}}
    # flash need = 500 reserved + 1200 + 900 + 700 + 300 = 3600 > 3000
    w = _weights(a=1200, b=900, c=700, d=300)
    plan = plan_memory(w, [], media, reserved={"flash": 500}, pins={"c": "flash"})
    # a (1200) does not fit eeprom's 1024 -> skipped; b (900) moves -> flash 2700 fits -> stop
    assert {n: p.medium for n, p in plan.weights.items()} == {"a": "flash", "b": "eeprom",
                                                              "c": "flash", "d": "flash"}
    assert plan.usage["flash"] == 2700 and plan.usage["eeprom"] == 900
    assert plan.weights["d"].offset == 1900  # after a (1200) and c (700)


def test_flash_policy_never_moves_and_reports_exact_shortfall():
    media = {"flash": {"capacity": 3000}, "sram": {"capacity": 2048}, "eeprom": {"capacity": 1024}}
    w = _weights(a=1200, b=900, c=700, d=300)
    with pytest.raises(BudgetError) as err:
        plan_memory(w, [], media, reserved={"flash": 500}, policy="flash", source=SRC, target="atmega328p")
    assert err.value.shortfalls == {"flash": {"need": 3600, "limit": 3000, "shortfall": 600}}
    assert str(err.value).startswith(
        "recipes/mnist_uno.yaml: does not fit atmega328p: flash needs 3,600 bytes, limit 3,000 "
        "(short by 600 bytes)")
    assert "pin weights to eeprom" in str(err.value) and "larger" not in str(err.value)
    assert "more memory" in err.value.fix and "storage.policy: auto" in err.value.fix


def test_shortfalls_for_every_medium_over():
    # flash: weights 34,112 + reserved 6,000 = 40,112 (too big to move to eeprom)
    w = [{"name": "big", "nbytes": 34112}]
    acts = [{"name": "a", "nbytes": 1500, "first": 0, "last": 1},
            {"name": "b", "nbytes": 300, "first": 1, "last": 2}]
    with pytest.raises(BudgetError) as err:
        plan_memory(w, acts, UNO, reserved={"flash": 6000, "sram": 600}, source="recipes/x.yaml",
                    target="atmega328p")
    e = err.value
    assert e.shortfalls == {"flash": {"need": 40112, "limit": 32256, "shortfall": 7856},
                            "sram": {"need": 2400, "limit": 2048, "shortfall": 352}}
    text = str(e)
    assert ("recipes/x.yaml: does not fit atmega328p: flash needs 40,112 bytes, limit 32,256 "
            "(short by 7,856 bytes); sram needs 2,400 bytes, limit 2,048 (short by 352 bytes)") in text
    assert "sram: activation arena 1,800 + reserved 600" in text
    assert "compress" in e.fix and "activations" in e.fix


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=8), st.integers(0, 4000),
       st.integers(1000, 20000))
def test_shortfall_numbers_exact_under_flash_policy(sizes, reserved, capacity):
    w = [{"name": f"w{i}", "nbytes": s} for i, s in enumerate(sizes)]
    media = {"flash": {"capacity": capacity}, "sram": {"capacity": 2048}}
    need = sum(sizes) + reserved
    if need <= capacity:
        assert plan_memory(w, [], media, reserved={"flash": reserved}, policy="flash").usage["flash"] == need
    else:
        with pytest.raises(BudgetError) as err:
            plan_memory(w, [], media, reserved={"flash": reserved}, policy="flash")
        assert err.value.shortfalls == {"flash": {"need": need, "limit": capacity,
                                                  "shortfall": need - capacity}}


def test_unknown_pin_name_suggests_close_matches():
    w = _weights(conv1_weight=72, conv2_weight=72)
    with pytest.raises(ConfigError) as err:
        plan_memory(w, CHAIN, UNO, pins={"conv1.weigth": "eeprom"}, source=SRC)
    text = str(err.value)
    assert text.startswith(f"{SRC}: field 'storage.pins.conv1.weigth': no weight tensor named")
    assert "'conv1.weight'" in text


def test_unknown_medium_lists_target_media():
    with pytest.raises(ConfigError) as err:
        plan_memory(_weights(a=1), [], UNO, pins={"a": "sdcard"}, source=SRC)
    assert "storage.pins.a" in str(err.value)
    assert "unknown medium 'sdcard'; this target has: flash, sram, eeprom" in str(err.value)


def test_pinning_an_activation_is_refused():
    with pytest.raises(ConfigError, match="t1' is an activation"):
        plan_memory(_weights(a=1), CHAIN, UNO, pins={"t1": "eeprom"})


def test_pinned_only_needs_every_weight_pinned():
    w = _weights(a=10, b=20, c=30)
    with pytest.raises(ConfigError, match="unpinned: b, c"):
        plan_memory(w, [], UNO, policy="pinned-only", pins={"a": "eeprom"})
    plan = plan_memory(w, [], UNO, policy="pinned-only", pins={"a": "eeprom", "b": "flash", "c": "eeprom"})
    assert plan.weights["c"] == Placement("eeprom", 10, 30)


def test_unknown_policy_and_missing_medium():
    with pytest.raises(ConfigError, match="unknown policy 'autoo' \\(did you mean 'auto'\\?\\)"):
        plan_memory([], [], UNO, policy="autoo")
    with pytest.raises(ConfigError, match="target has no 'sram' memory"):
        plan_memory([], [], {"flash": {"capacity": 10}})


def test_json_round_trip_and_memory_map():
    w = _weights(conv1_weight=72, fc_weight=1000)
    plan = plan_memory(w, CHAIN, UNO, reserved={"flash": 6000, "sram": 600}, pins={"fc.weight": "eeprom"})
    import json
    again = MemoryPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan
    rows = plan.memory_map()
    assert {(r["name"], r["medium"], r["offset"], r["nbytes"], r["kind"]) for r in rows} >= {
        ("conv1.weight", "flash", 0, 72, "weight"),
        ("reserved", "flash", 72, 6000, "reserved"),
        ("fc.weight", "eeprom", 0, 1000, "weight"),
        ("reserved", "sram", 1176, 600, "reserved"),
    }
    acts = {r["name"]: r for r in rows if r["kind"] == "activation"}
    assert set(acts) == {"input", "t1", "t2", "out"}
    assert all(r["offset"] + r["nbytes"] <= 1176 for r in acts.values())
    assert (acts["t1"]["first"], acts["t1"]["last"]) == (0, 1)
