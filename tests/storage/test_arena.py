"""Activation arena planner: checked against brute-force references written here, not the code."""

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from edgebuild.storage import Buffer, lower_bound, plan_arena


def _ref_lower_bound(buffers, align):
    """Sum of aligned live sizes at every integer step, maximised (a separate, naive scan)."""
    if not buffers:
        return 0
    lo, hi = min(b.first for b in buffers), max(b.last for b in buffers)
    pad = lambda n: (n + align - 1) // align * align  # noqa: E731
    return max(sum(pad(b.size) for b in buffers if b.first <= t <= b.last) for t in range(lo, hi + 1))


def _assert_no_live_overlap(buffers, offsets):
    """At every step, the byte ranges of the live buffers must be pairwise disjoint."""
    for a, b in itertools.combinations(buffers, 2):
        if a.first <= b.last and b.first <= a.last and a.size and b.size:
            oa, ob = offsets[a.name], offsets[b.name]
            assert oa + a.size <= ob or ob + b.size <= oa, (a, b, oa, ob)


buffers_st = st.lists(
    st.tuples(st.integers(0, 300), st.integers(0, 12), st.integers(0, 5)),
    max_size=14,
).map(lambda xs: [Buffer(f"t{i}", s, f, f + d) for i, (s, f, d) in enumerate(xs)])


@settings(max_examples=300, deadline=None)
@given(buffers_st, st.sampled_from([1, 2, 4, 8]))
def test_live_buffers_never_overlap_and_arena_bounds(buffers, align):
    plan = plan_arena(buffers, align)
    _assert_no_live_overlap(buffers, plan.offsets)
    assert all(off % align == 0 and off >= 0 for off in plan.offsets.values())
    assert all(plan.offsets[b.name] + b.size <= plan.size for b in buffers)
    assert plan.lower_bound == _ref_lower_bound(buffers, align)
    assert plan.size >= plan.lower_bound
    assert plan.size <= sum((b.size + align - 1) // align * align for b in buffers)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=1, max_size=12), st.sampled_from([1, 4]))
def test_chain_reaches_lower_bound(sizes, align):
    # a sequential model: tensor i is produced by layer i and read by layer i + 1
    buffers = [Buffer(f"t{i}", s, i, i + 1) for i, s in enumerate(sizes)]
    plan = plan_arena(buffers, align)
    _assert_no_live_overlap(buffers, plan.offsets)
    pad = [(s + align - 1) // align * align for s in sizes]
    expected = max([pad[0]] + [a + b for a, b in zip(pad, pad[1:])])
    assert plan.size == plan.lower_bound == expected


def test_greedy_by_size_misses_the_bound_and_ping_pong_recovers_it():
    # first-fit largest-first places the 5-byte tensor above the 9-byte one: arena 24 > 19
    buffers = [Buffer("a", 10, 0, 1), Buffer("b", 9, 1, 2), Buffer("c", 5, 2, 3), Buffer("d", 8, 3, 4)]
    plan = plan_arena(buffers)
    assert (plan.size, plan.lower_bound) == (19, 19)
    assert plan.strategy != "greedy-by-size"


def test_known_layout_tflm_example():
    # three buffers alive together (a, b, c) then d reuses a's space once a is dead
    buffers = [Buffer("a", 100, 0, 1), Buffer("b", 50, 0, 2), Buffer("c", 30, 1, 2), Buffer("d", 90, 2, 3)]
    plan = plan_arena(buffers)
    _assert_no_live_overlap(buffers, plan.offsets)
    # live sets: {a,b}=150, {a,b,c}=180, {b,c,d}=170, {d}=90
    assert plan.lower_bound == 180
    assert plan.size == 180
    assert plan.offsets["d"] == 0 and plan.offsets["a"] == 0


@settings(max_examples=50, deadline=None)
@given(buffers_st)
def test_deterministic_and_order_of_result_follows_input(buffers):
    a, b = plan_arena(buffers), plan_arena(list(buffers))
    assert a == b
    assert list(a.offsets) == [x.name for x in buffers]


def test_empty_and_single():
    assert plan_arena([]).size == 0 and lower_bound([]) == 0
    plan = plan_arena([Buffer("x", 7, 3, 3)], align=4)
    assert (plan.size, plan.offsets) == (8, {"x": 0})


@pytest.mark.parametrize("bad", [
    [Buffer("x", 1, 0, 0), Buffer("x", 2, 0, 1)],
    [Buffer("x", -1, 0, 0)],
    [Buffer("x", 1, 2, 1)],
])
def test_rejects_malformed_buffers(bad):
    with pytest.raises(ValueError, match="x"):
        plan_arena(bad)
