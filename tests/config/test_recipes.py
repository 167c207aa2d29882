"""Malformed recipes and targets: each gives one clear message naming the file, the field and the fix,
exits with status 2 from the CLI, and prints no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgebuild.config import load_recipe
from edgebuild.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

GOOD = textwrap.dedent("""\
    defaults:
      - targets@target: uno
      - _self_
    name: t
    model:
      train:
        arch:
          - conv: {out: 4, kernel: 3, pad: 1}
          - relu: {}
          - flatten: {}
          - dense: {out: 10}
    dataset: {name: mnist5k, resize: [14, 14]}
    verify: {samples: 10}
    """)


def write_recipe(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    d = tmp_path / "recipes"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(text)
    return p


def test_good_recipe_loads(tmp_path):
    cfg = load_recipe(write_recipe(tmp_path, GOOD))
    assert cfg["target"]["mcu"] == "atmega328p"
    assert cfg["target"]["memories"]["flash"]["reserved"] == 512
    assert cfg["verify"]["samples"] == 10
    assert cfg["dataset"]["split"] == {"test": 1000, "val": 500, "seed": 0}


def test_overrides_and_target_switch(tmp_path):
    cfg = load_recipe(write_recipe(tmp_path, GOOD), ["target=host", "verify.samples=200",
                                                     "compression.flash_bytes=20000"])
    assert cfg["target"]["name"] == "host"
    assert cfg["verify"]["samples"] == 200
    assert cfg["compression"]["flash_bytes"] == 20000


def test_compose_cache_hit_skips_composition(tmp_path):
    p = write_recipe(tmp_path, GOOD)
    cache = tmp_path / "cache"
    first = load_recipe(p, ["verify.samples=7"], cache_dir=cache)
    assert list((cache / "compose").glob("*.json"))
    assert load_recipe(p, ["verify.samples=7"], cache_dir=cache) == first
    # Editing the recipe changes the key: the new value is seen.
    p.write_text(GOOD.replace("samples: 10", "samples: 11"))
    assert load_recipe(p, [], cache_dir=cache)["verify"]["samples"] == 11


# (recipe text or a transform of GOOD, overrides, substrings the message must contain)
CASES = {
    "yaml_syntax": ("defaults: [\n  - x: : :\n", [], ["r.yaml", "not valid YAML", "line"]),
    "not_a_mapping": ("- 1\n- 2\n", [], ["r.yaml", "YAML mapping"]),
    "no_target": (GOOD.replace("  - targets@target: uno\n", ""), [], ["field 'defaults'", "does not pick a board", "uno"]),
    "unknown_target": (GOOD.replace("targets@target: uno", "targets@target: nano"), [],
                       ["unknown target 'nano'", "host", "uno"]),
    "unknown_target_override": (GOOD, ["target=nope"], ["field 'target'", "unknown target 'nope'"]),
    "unknown_top_field": (GOOD + "verfy: {samples: 3}\n", [], ["field 'verfy'", "unknown field", "did you mean 'verify'"]),
    "typo_nested": (GOOD.replace("resize: [14, 14]", "resise: [14, 14]"), [],
                    ["field 'dataset.resise'", "did you mean 'resize'"]),
    "wrong_type": (GOOD.replace("samples: 10", "samples: many"), [],
                   ["field 'verify.samples'", "valid integer", "'many'", "whole number"]),
    "too_small": (GOOD.replace("samples: 10", "samples: 0"), [], ["field 'verify.samples'", "greater than or equal to 1"]),
    "both_models": (GOOD.replace("model:\n", "model:\n  onnx: m.onnx\n"), [], ["field 'model'", "exactly one"]),
    "no_model": (GOOD.split("model:")[0] + "verify: {samples: 3}\n", [], ["field 'model'", "missing", "add `model:`"]),
    "bad_dataset": (GOOD.replace("name: mnist5k", "name: cifar"), [], ["field 'dataset.name'", "'mnist5k'", "'cifar'"]),
    "idx_without_path": (GOOD.replace("name: mnist5k", "name: idx"), [], ["field 'dataset'", "needs dataset.path"]),
    "resize_shape": (GOOD.replace("[14, 14]", "[14]"), [], ["field 'dataset.resize'", "[height, width]"]),
    "bad_layer": (GOOD.replace("relu: {}", "gelu: {}"), [], ["model.train.arch", "unknown layer 'gelu'"]),
    "pin_medium_missing": (GOOD, ["target=host", "storage.pins={conv1.weight: eeprom}"],
                           ["field 'storage.pins.conv1.weight'", "'eeprom' is not on target 'host'",
                            "fix: pin conv1.weight to one of"]),
    "bad_medium": (GOOD, ["storage.pins={conv1.weight: tape}"], ["field 'storage.pins.conv1.weight'", "'flash'"]),
    "onnx_missing": (GOOD.split("model:")[0] + "model: {onnx: nothere.onnx}\n", [],
                     ["field 'model.onnx'", "not found", "nothere.onnx"]),
    "idx_path_missing": (GOOD.replace("name: mnist5k", "name: idx, path: no/such/dir"), [],
                         ["field 'dataset.path'", "not found"]),
    "override_syntax": (GOOD, ["verify.samples"], ["override", "key=value"]),
    "override_unknown": (GOOD, ["verify.sampels=3"], ["field 'verify.sampels'", "did you mean 'samples'"]),
    "bad_policy": (GOOD + "storage: {policy: smart}\n", [], ["field 'storage.policy'", "'auto'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_recipe(tmp_path, case):
    text, overrides, expected = CASES[case]
    p = write_recipe(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_recipe(p, overrides)
    msg = str(exc.value)
    for part in expected:
        assert part in msg, f"{part!r} not in message:\n{msg}"
    assert "fix:" in msg
    assert "Traceback" not in msg


def test_missing_recipe_file(tmp_path):
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_broken_target_file_names_the_target(tmp_path):
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "weird.yaml").write_text(
        (REPO / "targets" / "uno.yaml").read_text().replace("name: uno", "name: weird")
        .replace("f_cpu: 16000000", "f_cpu: fast"))
    p = write_recipe(tmp_path, GOOD.replace("targets@target: uno", "targets@target: weird"))
    with pytest.raises(ConfigError) as exc:
        load_recipe(p)
    assert "targets/weird.yaml: field 'f_cpu'" in str(exc.value)


def test_cli_prints_one_message_and_exits_2(tmp_path):
    p = write_recipe(tmp_path, GOOD.replace("samples: 10", "samples: many"))
    proc = subprocess.run([sys.executable, "-m", "edgebuild.cli", str(p), "--cache", str(tmp_path / "c")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "field 'verify.samples'" in proc.stderr and "fix:" in proc.stderr


def test_schema_lists_every_field_with_a_description():
    from edgebuild.recipe import Recipe

    schema = Recipe.model_json_schema()
    missing = []

    def walk(node, path):
        for name, prop in node.get("properties", {}).items():
            if "description" not in prop and "$ref" not in prop and "allOf" not in prop:
                missing.append(f"{path}.{name}")
    walk(schema, "recipe")
    for name, d in schema.get("$defs", {}).items():
        if name != "Target":
            walk(d, name)
    assert not missing, missing
