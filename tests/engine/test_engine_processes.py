"""Crash safety (SIGKILL) and concurrent builds on one cache, with real child processes."""

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine_testlib import HERE, subprocess_env, tree_digest

CHILD = str(HERE / "engine_child.py")

HANG = """
version: 1
rules:
  first: {action: "engine_demo_rules:source", params: {seed: seed}}
  half: {action: "engine_demo_rules:half_then_hang", inputs: {f: first}}
  after: {action: "engine_demo_rules:concat", inputs: {h: half}}
"""


def start_child(project, config: dict, label: str = "t", **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, CHILD, str(project.pipeline_file), str(project.cache),
         json.dumps(config), label],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=subprocess_env({k: str(v) for k, v in env.items()}))


def wait_for_event(project, rule: str, event: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["rule"] == rule and e["event"] == event for e in project.events()):
            return
        time.sleep(0.02)
    raise AssertionError(f"no {event} event from {rule} within {timeout}s")


def assert_cache_consistent(cache: Path) -> None:
    """Every action record points at a complete object whose files match the record (checked
    with hashlib here, independently of the engine)."""
    records = [json.loads(p.read_text()) for p in (cache / "actions").glob("*.json")]
    for record in records:
        obj = cache / "objects" / record["output_hash"]
        assert tree_digest(obj) == {rel: sha for rel, sha, _ in record["files"]}
    for leftover in (cache / "actions").iterdir():
        assert leftover.suffix == ".json"


def test_sigkill_mid_rule_leaves_a_valid_cache(project):
    project.pipeline_file.write_text(HANG)
    child = start_child(project, {"seed": 1}, EB_TEST_HANG=60)
    try:
        wait_for_event(project, "half", "half")
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    assert_cache_consistent(project.cache)
    stored = {json.loads(p.read_text())["rule"] for p in (project.cache / "actions").iterdir()}
    assert stored == {"first"}                              # no half entry for 'half'
    assert not any("part1.bin" in tree_digest(o) for o in (project.cache / "objects").iterdir())
    project.ran()

    res = project.engine().build({"seed": 1}, label="t")
    assert res.ok
    assert {n: r.status for n, r in res.rules.items()} == {
        "first": "cached", "half": "ran", "after": "ran"}
    assert tree_digest(res.rules["half"].output_dir) == {
        "part1.bin": hashlib.sha256(b"x" * 100_000).hexdigest(),
        "part2.bin": hashlib.sha256(b"y" * 100_000).hexdigest()}
    assert_cache_consistent(project.cache)
    assert project.engine().gc()["tmp_removed"] == 1       # the killed build's work dir


MANY = "version: 1\nrules:\n" + "".join(
    f"  r{i}: {{action: \"engine_demo_rules:slow_writer\", params: {{seed: seed, i: n{i}}}}}\n"
    for i in range(12))


def test_sigkill_at_random_moments_never_corrupts(project):
    project.pipeline_file.write_text(MANY)
    rng = random.Random(1234)
    interrupted = 0
    for seed in range(5):                    # a new seed each round: every key is new
        config = {"seed": seed, **{f"n{i}": i for i in range(12)}}
        # 12 rules x 4 x 0.1 s: the child is still building whenever the kill lands.
        child = start_child(project, config, label=f"s{seed}", EB_TEST_SLOW=0.1)
        time.sleep(rng.uniform(0.2, 1.5))
        child.send_signal(signal.SIGKILL)
        child.communicate()
        interrupted += child.returncode == -signal.SIGKILL
        assert_cache_consistent(project.cache)
        res = project.engine(jobs=2).build(config, label=f"s{seed}")
        assert res.ok and set(r.status for r in res.rules.values()) <= {"ran", "cached"}
        for i in range(12):
            params = json.loads((res.rules[f"r{i}"].output_dir / "params.json").read_text())
            assert params == {"seed": seed, "i": i}
        assert_cache_consistent(project.cache)
    assert interrupted == 5                  # every round really was cut short


CONCURRENT = """
version: 1
rules:
  a: {action: "engine_demo_rules:counted", params: {n: n}}
  b: {action: "engine_demo_rules:counted", params: {n: n}}
  c: {action: "engine_demo_rules:counted", params: {n: n}}
  d: {action: "engine_demo_rules:concat", inputs: {a: a, b: b, c: c}}
"""


def test_two_concurrent_builds_compute_each_key_once(project):
    project.pipeline_file.write_text(CONCURRENT)
    counter = project.root / "counter.txt"
    children = [start_child(project, {"n": 7}, EB_TEST_COUNTER=counter) for _ in range(2)]
    outputs = [child.communicate(timeout=60) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
        assert json.loads(out)["ok"]
    lines = counter.read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == ["a", "b", "c"]
    runs = [e["rule"] for e in project.events() if e["event"] == "run"]
    assert sorted(runs) == ["a", "b", "c", "d"]
    statuses = [json.loads(out)["status"] for out, _ in outputs]
    for rule in "abcd":                      # one build ran it, the other reused it
        ran, reused = sorted((s[rule] for s in statuses), key=lambda st: st != "ran")
        assert ran == "ran" and reused in ("cached", "cutoff")
    res = project.engine().build({"n": 7}, label="t")
    assert (res.rules["d"].output_dir / "concat.bin").read_bytes() == b"|".join(
        [b"a,b,c;{}", b"a:7", b"b:7", b"c:7"])
    assert_cache_consistent(project.cache)
