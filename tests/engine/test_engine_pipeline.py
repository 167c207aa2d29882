"""pipeline.yaml loading: validation messages, ordering, graph rendering."""

import textwrap

import pytest

from edgebuild.engine import Pipeline, RuleSpec, load_pipeline
from edgebuild.errors import ConfigError


def load(tmp_path, text):
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return load_pipeline(path)


def error_of(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "pipeline.yaml")), message
    assert "\n  fix: " in message
    return message


def test_valid_pipeline_fields_and_order(tmp_path):
    pipe = load(tmp_path, """
        version: 1
        rules:
          report:
            action: pkg.report:run
            inputs: {model: train?, data: dataset}
            publish: true
          train:
            action: pkg.train:run
            params: {epochs: model.train.epochs}
            inputs: {data: dataset}
            when: model.train
            code: [pkg.common]
            version: 3
            description: trains
          dataset:
            action: pkg.data:run
            files: {path: dataset.path}
        """)
    assert isinstance(pipe, Pipeline)
    assert list(pipe.rules) == ["report", "train", "dataset"]
    order = pipe.order()
    assert order.index("dataset") < order.index("train") < order.index("report")
    train = pipe.rules["train"]
    assert isinstance(train, RuleSpec)
    assert (train.module, train.function, train.version, train.code, train.when) == (
        "pkg.train", "run", 3, ("pkg.common",), "model.train")
    assert pipe.rules["report"].input_rules() == {"model": ("train", True),
                                                 "data": ("dataset", False)}
    assert pipe.rules["dataset"].version == 1 and not pipe.rules["dataset"].publish
    assert pipe.closure(["train"]) == ["dataset", "train"]


def test_to_dot_and_mermaid(tmp_path):
    pipe = load(tmp_path, """
        version: 1
        rules:
          a: {action: "m:f", description: 'say "hi"'}
          b: {action: "m:f", inputs: {x: a, y: "c?"}, when: "!skip"}
          c: {action: "m:f"}
        """)
    dot = pipe.to_dot()
    assert dot.startswith("digraph pipeline {") and dot.rstrip().endswith("}")
    assert '"a" -> "b" [label="x"];' in dot
    assert '"c" -> "b" [label="y", style=dashed];' in dot
    assert 'tooltip="say \\"hi\\""' in dot
    mermaid = pipe.to_mermaid()
    assert mermaid.startswith("flowchart LR")
    assert "a -->|x| b" in mermaid and "c -.->|y| b" in mermaid


@pytest.mark.parametrize("text, expected", [
    ("""
     version: 1
     rules:
       a: {action: "m:f", inputs: {x: nope}}
     """, ["field 'rules.a.inputs.x'", "names rule 'nope', which does not exist",
           "fix: use one of: a"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", inputs: {x: c}}
       b: {action: "m:f", inputs: {x: a}}
       c: {action: "m:f", inputs: {x: "b?"}}
     """, ["cycle between rules: ", "remove one of these inputs"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", inputs: {me: a}}
     """, ["field 'rules.a.inputs.me'", "cycle: a -> a"]),
    ("""
     version: 1
     rules:
       a: {action: "just_a_module"}
     """, ["field 'rules.a.action'", "is not of the form 'module:function'"]),
    ("""
     version: 1
     rules:
       a: {params: {x: y}}
     """, ["field 'rules.a.action'", "missing 'action'"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", inptus: {x: b}}
     """, ["field 'rules.a.inptus'", "unknown key 'inptus'", "remove it or use one of: action"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f"}
       a: {action: "m:g"}
     """, ["duplicate rule or key 'a' at line 5"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", params: [x]}
     """, ["field 'rules.a.params'", "must map local names to dotted config paths"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", version: "2"}
     """, ["field 'rules.a.version'", "must be an integer"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", publish: "yes please"}
     """, ["field 'rules.a.publish'", "must be true or false"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", code: [1]}
     """, ["field 'rules.a.code'", "list of module or package names"]),
    ("""
     version: 1
     rules:
       a: {action: "m:f", when: [x]}
     """, ["field 'rules.a.when'", "dotted config path"]),
    ("""
     version: 2
     rules:
       a: {action: "m:f"}
     """, ["field 'version'", "set 'version: 1'"]),
    ("""
     version: 1
     stages: {}
     """, ["field 'stages'", "unknown top-level key"]),
    ("""
     version: 1
     rules: {}
     """, ["field 'rules'", "non-empty mapping"]),
    ("""
     version: 1
     rules:
       a: [1, 2
     """, ["not valid YAML"]),
])
def test_validation_errors(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_cycle_names_every_rule_in_data_flow_order(tmp_path):
    message = error_of(tmp_path, """
        version: 1
        rules:
          a: {action: "m:f", inputs: {x: c}}
          b: {action: "m:f", inputs: {x: a}}
          c: {action: "m:f", inputs: {x: b}}
          d: {action: "m:f"}
        """)
    chain = message.split("cycle between rules: ")[1].splitlines()[0].split(" -> ")
    assert len(chain) == 4 and chain[0] == chain[-1] and set(chain) == {"a", "b", "c"}
    # every consecutive pair is a real data-flow edge (upstream -> dependant)
    edges = {("c", "a"), ("a", "b"), ("b", "c")}
    assert all((chain[i], chain[i + 1]) in edges for i in range(3))
    assert "d" not in chain


def test_missing_pipeline_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read pipeline file"):
        load_pipeline(tmp_path / "absent.yaml")
