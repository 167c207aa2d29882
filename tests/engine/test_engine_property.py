"""Property test: on random DAGs, a param change reruns exactly the changed rules and
everything downstream of them (every demo rule's output depends on all its inputs and params)."""

import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@st.composite
def dags_and_changes(draw):
    n = draw(st.integers(2, 6))
    deps = {i: sorted(draw(st.sets(st.integers(0, i - 1), max_size=min(i, 3)))) if i else []
            for i in range(n)}
    changed = draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n))
    return deps, changed


def pipeline_yaml(deps: dict[int, list[int]]) -> str:
    lines = ["version: 1", "rules:"]
    for i, ups in deps.items():
        inputs = ", ".join(f"i{u}: r{u}" for u in ups)
        lines.append(f'  r{i}: {{action: "engine_demo_rules:concat", params: {{v: p.r{i}}}, '
                     f"inputs: {{{inputs}}}}}")
    return "\n".join(lines) + "\n"


def downstream_closure(deps: dict[int, list[int]], changed: set[int]) -> set[int]:
    """Reference: the changed rules plus every rule that (transitively) reads one of them."""
    hit = set(changed)
    for i in sorted(deps):                    # rule numbers are already topological
        if any(u in hit for u in deps[i]):
            hit.add(i)
    return hit


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dags_and_changes())
def test_param_change_reruns_exactly_the_downstream_closure(project, case):
    deps, changed = case
    shutil.rmtree(project.cache, ignore_errors=True)
    eng = project.engine(pipeline_yaml(deps))
    before = {"p": {f"r{i}": 0 for i in deps}}
    assert eng.build(before, label="t").ok
    project.ran()
    after = {"p": {f"r{i}": int(i in changed) for i in deps}}
    res = eng.build(after, label="t")
    expected = downstream_closure(deps, changed)
    assert project.ran() == sorted(f"r{i}" for i in expected)
    assert {n for n, r in res.rules.items() if r.status == "ran"} == {f"r{i}" for i in expected}
    assert {n for n, r in res.rules.items() if r.status == "cached"} == {
        f"r{i}" for i in deps if i not in expected}
