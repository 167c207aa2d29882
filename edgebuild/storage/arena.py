"""Activation arena planning: offsets in one SRAM buffer so that live tensors never share bytes.

A tensor is live over the closed step interval ``[first, last]`` (the layer that produces it to
the last layer that reads it). Two tensors may share bytes only if their intervals are disjoint.

The planner is TFLite Micro's ``GreedyMemoryPlanner``: take buffers largest first, and put each
at the lowest offset where it fits between the buffers already placed whose lifetimes overlap it
(first fit). Because greedy-by-size is a heuristic, two more candidates are tried and the smallest
arena wins (ties keep the earlier strategy in this list):

- ``ping-pong``: when at most two tensors are live at any step (every sequential model), the
  lifetimes form a forest, so two colours suffice; colour 0 goes to the bottom of the arena and
  colour 1 to the top. Any two overlapping tensors are live together at some step, so their sizes
  sum to at most the lower bound: this layout *is* the lower bound (optimal).
- ``greedy-by-first-use``: the same first-fit pass with buffers in order of first use.

The lower bound ``max over steps of the sum of live sizes`` is returned alongside so callers can
show how close the result is; no plan can be smaller than it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Buffer:
    """One activation tensor to place: ``size`` bytes live over steps ``first..last`` inclusive."""

    name: str
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class ArenaPlan:
    """Result of :func:`plan_arena`: byte offsets per buffer name, arena size and lower bound."""

    offsets: dict[str, int]
    size: int
    lower_bound: int
    strategy: str


def align_up(n: int, align: int) -> int:
    """Round ``n`` up to a multiple of ``align`` (``align >= 1``)."""
    return -(-n // align) * align


def overlaps(a: Buffer, b: Buffer) -> bool:
    """True when the closed lifetimes of ``a`` and ``b`` share at least one step."""
    return a.first <= b.last and b.first <= a.last


def lower_bound(buffers: list[Buffer], align: int = 1) -> int:
    """Largest total (aligned) size of buffers live at the same step; 0 for no buffers."""
    steps = {b.first for b in buffers}  # the live set only grows at a buffer's first step
    return max((sum(align_up(b.size, align) for b in buffers if b.first <= s <= b.last)
                for s in steps), default=0)


def _first_fit(order: list[Buffer], align: int) -> dict[str, int]:
    """Place buffers in ``order`` at the lowest aligned offset free of overlapping placed ones."""
    placed: list[tuple[int, int, Buffer]] = []  # (offset, aligned size, buffer)
    offsets: dict[str, int] = {}
    for buf in order:
        size = align_up(buf.size, align)
        candidate = 0
        for offset, other_size, other in sorted(placed, key=lambda p: (p[0], p[2].name)):
            if not overlaps(buf, other):
                continue
            if offset - candidate >= size:
                break
            candidate = max(candidate, align_up(offset + other_size, align))
        offsets[buf.name] = candidate
        placed.append((candidate, size, buf))
    return offsets


def greedy_by_size(buffers: list[Buffer], align: int) -> dict[str, int]:
    """TFLite Micro's GreedyMemoryPlanner order: largest first (ties: earlier first use, name), first fit."""
    return _first_fit(sorted(buffers, key=lambda b: (-b.size, b.first, b.name)), align)


def extent(buffers: list[Buffer], offsets: dict[str, int], align: int) -> int:
    """Arena bytes the placement ``offsets`` spans."""
    return max((offsets[b.name] + align_up(b.size, align) for b in buffers), default=0)


def _ping_pong(buffers: list[Buffer], align: int, bound: int) -> dict[str, int] | None:
    """Two-ended placement (see module docstring); None when three tensors are live at once."""
    steps = {b.first for b in buffers}
    if any(sum(1 for b in buffers if b.first <= s <= b.last) > 2 for s in steps):
        return None
    order = sorted(buffers, key=lambda b: (b.first, b.last, b.name))
    colour: dict[str, int] = {}
    for root in order:  # 2-colour each tree of the overlap forest, walking it breadth first
        if root.name in colour:
            continue
        colour[root.name] = 0
        queue = [root]
        while queue:
            buf = queue.pop(0)
            for other in order:
                if other.name not in colour and other is not buf and overlaps(buf, other):
                    colour[other.name] = 1 - colour[buf.name]
                    queue.append(other)
    return {b.name: 0 if colour[b.name] == 0 else bound - align_up(b.size, align) for b in buffers}


def plan_arena(buffers: list[Buffer], align: int = 1) -> ArenaPlan:
    """Plan offsets for ``buffers`` in one arena; deterministic for a given input list.

    Raises ``ValueError`` for duplicate names, negative sizes or ``first > last`` (these come
    from the graph, not from the user).
    """
    if align < 1:
        raise ValueError(f"align must be >= 1, got {align}")
    names = [b.name for b in buffers]
    if len(set(names)) != len(names):
        raise ValueError("duplicate activation names: "
                         + ", ".join(sorted({n for n in names if names.count(n) > 1})))
    for b in buffers:
        if b.size < 0 or b.first > b.last:
            raise ValueError(f"activation {b.name!r}: need size >= 0 and first <= last, got "
                             f"size={b.size}, first={b.first}, last={b.last}")
    bound = lower_bound(buffers, align)
    candidates = {
        "greedy-by-size": greedy_by_size(buffers, align),
        "ping-pong": _ping_pong(buffers, align, bound),
        "greedy-by-first-use": _first_fit(sorted(buffers, key=lambda b: (b.first, -b.size, b.name)),
                                          align),
    }
    best: ArenaPlan | None = None
    for strategy, offsets in candidates.items():
        if offsets is None:
            continue
        size = extent(buffers, offsets, align)
        if best is None or size < best.size:
            best = ArenaPlan(offsets={b.name: offsets[b.name] for b in buffers}, size=size,
                             lower_bound=bound, strategy=strategy)
    return best
