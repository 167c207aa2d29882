"""Engine behaviour on small demo rules: caching, rebuild precision, cutoff, explain, gc..."""

import io
import json
import os
import shutil
import sys
import textwrap

import pytest
from engine_testlib import snapshot, tree_digest

from edgebuild.errors import ConfigError, DatasetError

DIAMOND = """
version: 1
rules:
  src:
    action: engine_demo_rules:source
    params: {seed: seed, size: size}
  par:
    action: engine_demo_rules:parity
    params: {seed: seed}
  left:
    action: engine_demo_rules:concat
    inputs: {s: src}
  right:
    action: engine_demo_rules:concat
    params: {tag: tag}
    inputs: {p: par}
  top:
    action: engine_demo_rules:concat
    inputs: {l: left, r: right}
    publish: true
"""
CONFIG = {"seed": 1, "size": 3, "tag": "a"}


def statuses(res):
    return {name: r.status for name, r in res.rules.items()}


def test_first_build_runs_everything_and_stores_outputs(project):
    res = project.engine(DIAMOND).build(CONFIG, label="t")
    assert res.ok and res.error is None
    assert statuses(res) == dict.fromkeys(["src", "par", "left", "right", "top"], "ran")
    assert project.ran() == ["left", "par", "right", "src", "top"]
    src = res.rules["src"]
    assert json.loads((src.output_dir / "params.json").read_text()) == {"seed": 1, "size": 3}
    assert (src.output_dir / "sub/deep/blob.bin").read_bytes() == bytes(range(256)) * 4
    # top = "l,r;{}" | left's files | right's files, computed here from the upstream outputs
    left = (res.rules["left"].output_dir / "concat.bin").read_bytes()
    right = (res.rules["right"].output_dir / "concat.bin").read_bytes()
    assert (res.rules["top"].output_dir / "concat.bin").read_bytes() == b"|".join(
        [b"l,r;{}", left, right])
    assert right == b'p;{"tag": "a"}|1'


def test_noop_second_run_is_all_cached(project):
    eng = project.engine(DIAMOND)
    first = eng.build(CONFIG, label="t")
    project.ran()
    again = project.engine().build(CONFIG, label="t")
    assert statuses(again) == dict.fromkeys(first.rules, "cached")
    assert project.ran() == []
    for name, r in again.rules.items():
        assert r.key == first.rules[name].key
        assert r.output_hash == first.rules[name].output_hash
        assert tree_digest(r.output_dir) == tree_digest(first.rules[name].output_dir)


def test_param_change_reruns_exactly_the_dependants(project):
    eng = project.engine(DIAMOND)
    eng.build(CONFIG, label="t")
    project.ran()
    res = eng.build(dict(CONFIG, size=4), label="t")
    assert project.ran() == ["left", "src", "top"]
    assert statuses(res) == {"src": "ran", "par": "cached", "left": "ran", "right": "cached",
                             "top": "ran"}
    res = eng.build(dict(CONFIG, tag="b"), label="t")
    assert project.ran() == ["right", "top"]


def test_early_cutoff_when_upstream_output_is_identical(project):
    eng = project.engine("""
version: 1
rules:
  par: {action: "engine_demo_rules:parity", params: {seed: seed}}
  right: {action: "engine_demo_rules:concat", inputs: {p: par}}
  after: {action: "engine_demo_rules:concat", inputs: {r: right}}
""")
    eng.build({"seed": 1}, label="t")
    project.ran()
    res = eng.build({"seed": 3}, label="t", explain=True)     # 3 % 2 == 1 % 2
    assert project.ran() == ["par"]
    assert statuses(res) == {"par": "ran", "right": "cutoff", "after": "cached"}
    assert res.rules["right"].why == ["input p rebuilt with identical output"]
    res = eng.build({"seed": 2}, label="t")
    assert project.ran() == ["after", "par", "right"]


EDITABLE = """
version: 1
rules:
  src: {action: "eb_editable_rules:source", params: {seed: seed}}
  par: {action: "engine_demo_rules:parity", params: {seed: seed}}
  left: {action: "engine_demo_rules:concat", inputs: {s: src}}
  top: {action: "engine_demo_rules:concat", inputs: {l: left, p: par}}
"""


def test_code_edit_reruns_that_rule_and_its_dependants_only(project, monkeypatch):
    moddir = project.root / "mods"
    moddir.mkdir()
    module = moddir / "eb_editable_rules.py"
    shutil.copy(os.path.join(os.path.dirname(__file__), "engine_demo_rules.py"), module)
    monkeypatch.syspath_prepend(str(moddir))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    eng = project.engine(EDITABLE)
    eng.build({"seed": 1}, label="t")
    project.ran()

    # a comment: the rule reruns, produces the same bytes, dependants are cut off
    module.write_text(module.read_text() + "\n# a comment\n")
    res = eng.build({"seed": 1}, label="t", explain=True)
    assert project.ran() == ["src"]
    assert statuses(res) == {"src": "ran", "par": "cached", "left": "cutoff", "top": "cached"}
    assert res.rules["src"].why == ["code changed: eb_editable_rules"]

    # a behaviour change: the new code runs, and everything downstream of it reruns
    module.write_text(module.read_text().replace(
        '(ctx.out / "params.json").write_text(json.dumps(ctx.params, sort_keys=True))',
        '(ctx.out / "params.json").write_text("edited")'))
    res = eng.build({"seed": 1}, label="t")
    assert project.ran() == ["left", "src", "top"]
    assert (res.rules["src"].output_dir / "params.json").read_text() == "edited"


def test_code_entry_package_is_hashed(project, monkeypatch):
    pkg = project.root / "mods" / "eb_helper_pkg"
    (pkg / "templates").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "templates" / "k.c.j2").write_text("int x;\n")
    (pkg / "notes.txt").write_text("not code")
    monkeypatch.syspath_prepend(str(pkg.parent))
    eng = project.engine("""
version: 1
rules:
  par: {action: "engine_demo_rules:parity", params: {seed: seed}, code: [eb_helper_pkg]}
""")
    eng.build({"seed": 1}, label="t")
    (pkg / "notes.txt").write_text("still not code")
    assert statuses(eng.build({"seed": 1}, label="t")) == {"par": "cached"}
    (pkg / "templates" / "k.c.j2").write_text("int y;\n")
    res = eng.build({"seed": 1}, label="t", explain=True)
    assert statuses(res) == {"par": "ran"}
    assert res.rules["par"].why == ["code changed: eb_helper_pkg"]


FILES = """
version: 1
rules:
  copy: {action: "engine_demo_rules:copy_file", files: {src: data.path}}
  after: {action: "engine_demo_rules:concat", inputs: {c: copy}}
"""


def test_file_content_change_reruns(project):
    data = project.root / "data.bin"
    data.write_bytes(b"one")
    eng = project.engine(FILES)
    cfg = {"data": {"path": str(data)}}
    res = eng.build(cfg, label="t")
    assert (res.rules["copy"].output_dir / "copy.bin").read_bytes() == b"one"
    project.ran()
    data.write_bytes(b"one")                       # rewritten, same content
    assert statuses(eng.build(cfg, label="t")) == {"copy": "cached", "after": "cached"}
    data.write_bytes(b"two")
    res = eng.build(cfg, label="t", explain=True)
    assert project.ran() == ["after", "copy"]
    assert (res.rules["copy"].output_dir / "copy.bin").read_bytes() == b"two"
    assert res.rules["copy"].why == ["file src changed"]


def test_directory_file_param_hashes_all_files(project):
    d = project.root / "dataset"
    (d / "a").mkdir(parents=True)
    (d / "a" / "x.txt").write_text("x")
    eng = project.engine(FILES)
    cfg = {"data": {"path": str(d)}}
    eng.build(cfg, label="t")
    project.ran()
    (d / "a" / "y.txt").write_text("y")
    res = eng.build(cfg, label="t")
    assert project.ran() == ["after", "copy"]
    assert (res.rules["copy"].output_dir / "copy.bin").read_bytes() == b"xy"


def test_missing_file_is_a_config_error(project):
    res = project.engine(FILES).build({"data": {"path": str(project.root / "nope.bin")}},
                                      label="t")
    assert not res.ok and res.failed_rule == "copy"
    assert isinstance(res.error, ConfigError)
    assert "nope.bin" in str(res.error) and "data.path" in str(res.error)


OPTIONAL = """
version: 1
rules:
  src: {action: "engine_demo_rules:source", params: {seed: seed}}
  extra: {action: "engine_demo_rules:parity", params: {seed: seed}, when: feature.on}
  plain: {action: "engine_demo_rules:parity", params: {seed: seed}, when: "!feature.on"}
  user: {action: "engine_demo_rules:concat", inputs: {s: src, e: "extra?"}}
"""


def test_optional_inputs_and_when(project):
    eng = project.engine(OPTIONAL)
    res = eng.build({"seed": 1, "feature": {"on": False}}, label="t")
    assert statuses(res) == {"src": "ran", "extra": "skipped", "plain": "ran", "user": "ran"}
    assert res.rules["extra"].why == ["when feature.on is false"]
    assert [e["inputs"] for e in project.events() if e["rule"] == "user"] == [["s"]]
    project.ran()
    res = eng.build({"seed": 1, "feature": {"on": True}}, label="t")
    assert statuses(res) == {"src": "cached", "extra": "ran", "plain": "skipped", "user": "ran"}
    assert [e["inputs"] for e in project.events() if e["rule"] == "user"] == [["e", "s"]]
    # a missing config path counts as false
    res = eng.build({"seed": 1}, label="t")
    assert statuses(res)["extra"] == "skipped" and statuses(res)["user"] == "cached"


def test_required_input_of_skipped_rule_is_an_error(project):
    eng = project.engine(OPTIONAL.replace('"extra?"', "extra"))
    res = eng.build({"seed": 1, "feature": {"on": False}}, label="t")
    assert not res.ok and res.failed_rule == "user"
    assert isinstance(res.error, ConfigError)
    assert "rules.user.inputs.e" in str(res.error) and "'extra?'" in str(res.error)


def test_on_demand_rule_is_built_only_when_asked_for(project):
    eng = project.engine(DIAMOND + """
  extra:
    action: engine_demo_rules:concat
    inputs: {t: top, s: src}
    on_demand: true
""")
    res = eng.build(CONFIG, label="t")
    assert "extra" not in res.rules and statuses(res)["top"] == "ran"
    assert "extra" not in project.ran()
    res = eng.build(CONFIG, label="t", only=["extra"])
    assert statuses(res) == {"src": "cached", "par": "cached", "left": "cached", "right": "cached",
                             "top": "cached", "extra": "ran"}
    assert project.ran() == ["extra"]
    # an on-demand rule a default rule reads is built with it
    eng = project.engine(DIAMOND.replace("    inputs: {s: src}\n", "    inputs: {s: src}\n    on_demand: true\n"))
    assert statuses(eng.build(CONFIG, label="t"))["left"] == "cached"
    with pytest.raises(ConfigError, match="on_demand"):
        project.engine(DIAMOND.replace("    inputs: {s: src}\n", "    inputs: {s: src}\n    on_demand: 3\n"))


def test_flipped_byte_in_cache_is_detected_and_rebuilt(project, capsys):
    eng = project.engine(DIAMOND)
    first = eng.build(CONFIG, label="t")
    project.ran()
    blob = first.rules["src"].output_dir / "sub/deep/blob.bin"
    good = tree_digest(first.rules["src"].output_dir)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    blob.write_bytes(bytes(data))
    capsys.readouterr()
    res = eng.build(CONFIG, label="t")
    err = capsys.readouterr().err
    assert "cache entry of rule 'src' is corrupted: file sub/deep/blob.bin changed" in err
    assert project.ran() == ["src"]
    assert statuses(res)["src"] == "ran" and statuses(res)["left"] == "cutoff"
    assert tree_digest(res.rules["src"].output_dir) == good
    assert statuses(eng.build(CONFIG, label="t")) == dict.fromkeys(first.rules, "cached")


def test_deleted_cache_file_is_detected_and_rebuilt(project, capsys):
    eng = project.engine(DIAMOND)
    first = eng.build(CONFIG, label="t")
    project.ran()
    good = tree_digest(first.rules["top"].output_dir)
    (first.rules["top"].output_dir / "concat.bin").unlink()
    capsys.readouterr()
    res = eng.build(CONFIG, label="t", explain=True)
    assert "rule 'top' is corrupted: file concat.bin deleted" in capsys.readouterr().err
    assert project.ran() == ["top"]
    assert res.rules["top"].why[0] == "cache entry corrupted (file concat.bin deleted)"
    assert tree_digest(res.rules["top"].output_dir) == good


def test_dry_run_changes_nothing(project, capsys):
    eng = project.engine(DIAMOND)
    res = eng.build(CONFIG, label="t", dry_run=True)
    assert not project.cache.exists()
    assert statuses(res) == {"src": "would-run", "par": "would-run", "left": "would-run",
                             "right": "would-run", "top": "would-run"}
    assert res.rules["src"].why == ["first build"]
    eng.build(CONFIG, label="t", build_dir=project.root / "build")
    project.ran()
    before = snapshot(project.root)
    capsys.readouterr()
    res = eng.build(dict(CONFIG, seed=2), label="t", dry_run=True,
                    build_dir=project.root / "build")
    assert snapshot(project.root) == before
    assert project.ran() == []
    assert statuses(res) == {"src": "would-run", "par": "would-run", "left": "would-run",
                             "right": "would-run", "top": "would-run"}
    assert res.rules["src"].why == ["param seed changed: 1 -> 2"]
    assert res.rules["left"].why == ["input s will be rebuilt"]
    assert "would-run" in capsys.readouterr().err
    res = eng.build(dict(CONFIG, tag="b"), label="t", dry_run=True)
    assert statuses(res) == {"src": "cached", "par": "cached", "left": "cached",
                             "right": "would-run", "top": "would-run"}


def test_explain_lists_the_changed_param(project, capsys):
    eng = project.engine(DIAMOND)
    eng.build(CONFIG, label="t")
    capsys.readouterr()
    long_tag = "z" * 100
    res = eng.build(dict(CONFIG, tag=long_tag), label="t", explain=True)
    expected = 'param tag changed: "a" -> "' + "z" * 36 + "..."
    assert res.rules["right"].why == [expected]
    assert res.rules["top"].why == ["input r changed"]
    err = capsys.readouterr().err
    assert expected in err
    res = eng.build(dict(CONFIG, tag=long_tag), label="other", explain=True)
    assert res.rules["top"].why == []                   # cached: nothing to explain
    assert eng.trace("t")["rules"]["right"]["params"] == {"tag": long_tag}


def test_gc_removes_unreferenced_and_keeps_referenced(project):
    eng = project.engine(DIAMOND)
    eng.build(CONFIG, label="a")
    eng.build(dict(CONFIG, seed=2), label="b")
    eng.build(dict(CONFIG, size=9), label="a")        # label a now references size=9 entries
    (project.cache / "tmp" / "999999999-dead").mkdir(parents=True)
    keys_before = {p.stem for p in (project.cache / "actions").iterdir()}
    actions_before = len(keys_before)
    stats = eng.gc()
    removed = keys_before - {p.stem for p in (project.cache / "actions").iterdir()}
    assert removed and not any((project.cache / "locks" / f"{k}.lock").exists() for k in removed)
    # size=3/seed=1 entries of src, left, top are referenced by no latest trace
    assert stats["entries_removed"] == 3 and stats["tmp_removed"] == 1
    assert stats["bytes_freed"] > 0
    assert len(list((project.cache / "actions").iterdir())) == actions_before - 3
    project.ran()
    assert statuses(eng.build(dict(CONFIG, size=9), label="a")) == dict.fromkeys(
        ["src", "par", "left", "right", "top"], "cached")
    assert statuses(eng.build(dict(CONFIG, seed=2), label="b")) == dict.fromkeys(
        ["src", "par", "left", "right", "top"], "cached")
    assert project.ran() == []
    eng.build(CONFIG, label="c")
    assert project.ran() == ["left", "src", "top"]
    assert eng.gc()["entries_removed"] == 0


def test_jobs_2_runs_independent_rules_concurrently(project):
    eng = project.engine("""
version: 1
rules:
  one: {action: "engine_demo_rules:sleepy", params: {seconds: t}}
  two: {action: "engine_demo_rules:sleepy", params: {seconds: t}}
  join: {action: "engine_demo_rules:concat", inputs: {a: one, b: two}}
""", jobs=2)
    res = eng.build({"t": 0.4}, label="t")
    assert res.ok
    ev = {(e["rule"], e["event"]): e["t"] for e in project.events()}
    assert max(ev["one", "start"], ev["two", "start"]) < min(ev["one", "end"], ev["two", "end"])
    assert ev["join", "run"] >= max(ev["one", "end"], ev["two", "end"])


def test_jobs_1_runs_rules_one_after_another(project, capsys):
    eng = project.engine("""
version: 1
rules:
  one: {action: "engine_demo_rules:sleepy", params: {seconds: t}}
  two: {action: "engine_demo_rules:sleepy", params: {seconds: t}}
""", jobs=1)
    eng.build({"t": 0.1}, label="t")
    ev = {(e["rule"], e["event"]): e["t"] for e in project.events()}
    first, second = sorted(["one", "two"], key=lambda n: ev[n, "start"])
    assert ev[second, "start"] >= ev[first, "end"]
    assert "  [one] slept 0.1s" in capsys.readouterr().err.splitlines()


FAILING = """
version: 1
rules:
  bad: {action: "engine_demo_rules:%s"}
  slow: {action: "engine_demo_rules:sleepy", params: {seconds: t}}
  after: {action: "engine_demo_rules:concat", inputs: {b: bad}}
"""


def test_user_error_stops_the_build_and_stores_nothing(project, capsys):
    eng = project.engine(FAILING % "user_error", jobs=2)
    res = eng.build({"t": 0.3}, label="t")
    assert not res.ok and res.failed_rule == "bad"
    assert isinstance(res.error, DatasetError)
    assert "dataset.path" in str(res.error)
    assert res.rules["bad"].status == "failed" and "after" not in res.rules
    assert res.rules["slow"].status == "ran"               # running rules finish
    stored = [json.loads(p.read_text())["rule"] for p in (project.cache / "actions").iterdir()]
    assert stored == ["slow"]
    assert not list((project.cache / "tmp").glob("*/out"))
    assert "failed" in capsys.readouterr().err


def test_programming_error_keeps_traceback(project):
    eng = project.engine(FAILING % "crash")
    res = eng.build({"t": 0.0}, label="t")
    assert not res.ok and isinstance(res.error, ZeroDivisionError)
    assert res.error.__traceback__ is not None
    assert res.rules["bad"].why == ["division by zero"]


def test_missing_action_function_is_a_config_error(project):
    res = project.engine(FAILING % "no_such_function").build({"t": 0}, label="t")
    assert isinstance(res.error, ConfigError)
    assert "rules.bad.action" in str(res.error) and "no_such_function" in str(res.error)
    res = project.engine(FAILING.replace("engine_demo_rules:%s", "eb_no_such_module:run")
                         ).build({"t": 0}, label="t")
    assert isinstance(res.error, ConfigError)
    assert "eb_no_such_module" in str(res.error) and "rules.bad.action" in str(res.error)


def test_publish_copies_outputs_and_skips_identical(project):
    eng = project.engine(DIAMOND)
    build_dir = project.root / "build"
    res = eng.build(CONFIG, label="t", build_dir=build_dir)
    assert sorted(p.name for p in build_dir.iterdir()) == ["top"]
    assert tree_digest(build_dir / "top") == tree_digest(res.rules["top"].output_dir)
    before = snapshot(build_dir)
    eng.build(CONFIG, label="t", build_dir=build_dir)
    assert snapshot(build_dir) == before
    res = eng.build(dict(CONFIG, tag="b"), label="t", build_dir=build_dir)
    assert tree_digest(build_dir / "top") == tree_digest(res.rules["top"].output_dir)
    assert os.access(build_dir / "top" / "concat.bin", os.W_OK)
    assert not list(build_dir.glob(".*"))


def test_only_builds_the_rule_and_its_dependencies(project):
    res = project.engine(DIAMOND).build(CONFIG, label="t", only=["left"])
    assert statuses(res) == {"src": "ran", "left": "ran"}
    with pytest.raises(ConfigError, match="unknown rule"):
        project.engine().build(CONFIG, label="t", only=["nope"])


def test_plain_output_when_not_a_terminal(project, capsys):
    project.engine(DIAMOND).build(CONFIG, label="t")
    project.engine().build(dict(CONFIG, tag="b"), label="t")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    assert any(line.split()[:2] == ["ran", "right"] for line in lines)
    assert any(line.split()[:2] == ["cached", "src"] for line in lines)


def test_cutoff_status_is_printed_as_cut_off(project, capsys):
    eng = project.engine(textwrap.dedent("""
        version: 1
        rules:
          par: {action: "engine_demo_rules:parity", params: {seed: seed}}
          right: {action: "engine_demo_rules:concat", inputs: {p: par}}
    """))
    eng.build({"seed": 1}, label="t")
    capsys.readouterr()
    eng.build({"seed": 3}, label="t")
    assert any(line.split()[:3] == ["cut", "off", "right"]
               for line in capsys.readouterr().err.splitlines())


def test_rich_console_output(project):
    from rich.console import Console

    console = Console(record=True, width=100, force_terminal=False)
    eng = project.engine(DIAMOND)
    eng.console = console
    eng.build(CONFIG, label="t")
    text = console.export_text()
    assert "ran" in text and "top" in text


def test_truncated_action_record_is_treated_as_corrupt(project, capsys):
    eng = project.engine(DIAMOND)
    first = eng.build(CONFIG, label="t")
    project.ran()
    record = project.cache / "actions" / f"{first.rules['par'].key}.json"
    record.write_text(record.read_text()[:20])
    capsys.readouterr()
    res = eng.build(CONFIG, label="t")
    assert "rule 'par' is corrupted: unreadable action record" in capsys.readouterr().err
    assert project.ran() == ["par"]
    assert statuses(res)["right"] == "cutoff"
    assert json.loads(record.read_text())["output_hash"] == first.rules["par"].output_hash


def test_live_spinner_on_a_terminal(project):
    from rich.console import Console

    console = Console(record=True, width=100, force_terminal=True, file=io.StringIO())
    eng = project.engine("""
version: 1
rules:
  one: {action: "engine_demo_rules:sleepy", params: {seconds: t}}
  two: {action: "engine_demo_rules:sleepy", params: {seconds: t}}
""", jobs=2)
    eng.console = console
    assert eng.build({"t": 0.3}, label="t").ok
    text = console.export_text()
    assert "ran" in text and "one" in text and "two" in text


SCRIPT = """
version: 1
rules:
  s:
    action: engine_demo_rules:script
    params: {exec: exec}
    publish: true
"""


def test_executable_outputs_stay_executable_and_count_in_identity(project, tmp_path):
    import subprocess

    res = project.engine(SCRIPT).build({"exec": True}, label="x", build_dir=tmp_path / "b")
    cached = res.rules["s"].output_dir / "run.sh"
    mode = cached.stat().st_mode
    assert mode & 0o111 and not mode & 0o222          # executable, read-only
    assert subprocess.run([str(cached)], capture_output=True, text=True).stdout == "hello\n"
    published = tmp_path / "b" / "s" / "run.sh"
    assert subprocess.run([str(published)], capture_output=True, text=True).stdout == "hello\n"
    plain = project.engine(SCRIPT).build({"exec": False}, label="y")
    # Same bytes, different mode: a different output identity.
    assert plain.rules["s"].output_hash != res.rules["s"].output_hash
    assert not (plain.rules["s"].output_dir / "run.sh").stat().st_mode & 0o111
