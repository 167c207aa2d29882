"""Memory planner: place every weight in a medium and every activation in one SRAM arena.

Policies (recipe ``storage.policy``); in all of them ``storage.pins`` are honoured exactly:

- ``auto`` (default): unpinned weights go to flash, read in place. If flash then overflows and the
  target has an ``eeprom`` medium, unpinned flash weights are moved to EEPROM largest first
  (ties by name); a tensor too big for the EEPROM room left is skipped and the next one tried;
  moving stops as soon as flash fits or nothing else fits in EEPROM.
- ``flash``: unpinned weights go to flash and nothing is moved automatically; a model that does
  not fit fails rather than changing layout behind the user's back.
- ``pinned-only``: the layout is exactly the pins; every weight must be pinned (the error lists
  the unpinned ones).

Activations always live in SRAM, in one arena planned by lifetime (:mod:`.arena`). Weights in a
medium are laid out in input order from offset 0 of that medium's weight region, each aligned to
``align``. Usage per medium = reserved bytes + weights (+ the arena for SRAM); any medium over its
capacity makes the plan fail with :class:`~edgebuild.errors.BudgetError`.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field

from edgebuild.errors import BudgetError, ConfigError
from edgebuild.storage.arena import Buffer, align_up, plan_arena

POLICIES = ("auto", "flash", "pinned-only")
DEFAULT_MEDIUM = "flash"
SPILL_MEDIUM = "eeprom"
ARENA_MEDIUM = "sram"


@dataclass(frozen=True)
class Placement:
    """Where one tensor lives: ``offset`` within its medium's weight region (or the arena)."""

    medium: str
    offset: int
    nbytes: int


@dataclass
class MemoryPlan:
    """A complete memory layout. ``usage`` includes the reserved bytes of each medium."""

    weights: dict[str, Placement]
    activations: dict[str, Placement]
    arena_size: int
    arena_lower_bound: int
    arena_strategy: str
    usage: dict[str, int]
    capacity: dict[str, int]
    reserved: dict[str, int]
    align: int = 1
    kinds: dict[str, str] = field(default_factory=dict)
    lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict)

    def to_json(self) -> dict:
        """Plain JSON-ready dict; :meth:`from_json` inverts it exactly."""
        return {
            "weights": {n: asdict(p) for n, p in self.weights.items()},
            "activations": {n: asdict(p) for n, p in self.activations.items()},
            "arena_size": self.arena_size,
            "arena_lower_bound": self.arena_lower_bound,
            "arena_strategy": self.arena_strategy,
            "usage": dict(self.usage),
            "capacity": dict(self.capacity),
            "reserved": dict(self.reserved),
            "align": self.align,
            "kinds": dict(self.kinds),
            "lifetimes": {n: list(v) for n, v in self.lifetimes.items()},
        }

    @classmethod
    def from_json(cls, d: dict) -> "MemoryPlan":
        """Rebuild a plan from :meth:`to_json` output."""
        return cls(
            weights={n: Placement(**p) for n, p in d["weights"].items()},
            activations={n: Placement(**p) for n, p in d["activations"].items()},
            arena_size=d["arena_size"],
            arena_lower_bound=d["arena_lower_bound"],
            arena_strategy=d["arena_strategy"],
            usage=dict(d["usage"]),
            capacity=dict(d["capacity"]),
            reserved=dict(d["reserved"]),
            align=d.get("align", 1),
            kinds=dict(d.get("kinds", {})),
            lifetimes={n: tuple(v) for n, v in d.get("lifetimes", {}).items()},
        )

    def memory_map(self) -> list[dict]:
        """Rows ``{name, medium, offset, nbytes, kind}`` laid out per medium for display.

        Per medium: the weight region from offset 0, then (SRAM) the activation arena, then the
        reserved bytes (code, stack, harness) as one ``reserved`` row. Activation rows carry
        ``first``/``last`` too and overlap in offset when their lifetimes do not.
        """
        rows: list[dict] = []
        for medium in self.capacity:
            weights = [(n, p) for n, p in self.weights.items() if p.medium == medium]
            for name, p in weights:
                rows.append({"name": name, "medium": medium, "offset": p.offset,
                             "nbytes": p.nbytes, "kind": self.kinds.get(name, "weight")})
            end = _region_size(weights, self.align)
            if medium == ARENA_MEDIUM:
                for name, p in self.activations.items():
                    first, last = self.lifetimes.get(name, (None, None))
                    rows.append({"name": name, "medium": medium, "offset": end + p.offset,
                                 "nbytes": p.nbytes, "kind": "activation",
                                 "first": first, "last": last})
                end += self.arena_size
            if self.reserved.get(medium):
                rows.append({"name": "reserved", "medium": medium, "offset": end,
                             "nbytes": self.reserved[medium], "kind": "reserved"})
        return rows


def _region_size(placed: list[tuple[str, Placement]], align: int) -> int:
    return max((p.offset + align_up(p.nbytes, align) for _, p in placed), default=0)


def _closest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _check_pins(pins: dict[str, str], weights: dict[str, dict], activations: set[str],
                media: dict, source: str | None) -> None:
    for name, medium in pins.items():
        where = f"storage.pins.{name}"
        if name in activations:
            raise ConfigError(f"'{name}' is an activation; activations always live in the "
                              f"{ARENA_MEDIUM} arena and cannot be pinned",
                              file=source, field=where, fix=f"remove '{name}' from storage.pins")
        if name not in weights:
            raise ConfigError(f"no weight tensor named '{name}'{_closest(name, weights)}",
                              file=source, field=where,
                              fix="use the name of one of the model's weight tensors "
                                  "(its ONNX initializers)")
        if medium not in media:
            raise ConfigError(f"unknown medium '{medium}'; this target has: "
                              + ", ".join(media), file=source, field=where,
                              fix=f"pin '{name}' to one of: {', '.join(media)}")


def _assign_media(weights: dict[str, dict], pins: dict[str, str], policy: str, media: dict,
                  reserved: dict[str, int], align: int, source: str | None) -> dict[str, str]:
    """Medium per weight name, following the policy described in the module docstring."""
    if policy == "pinned-only":
        unpinned = [n for n in weights if n not in pins]
        if unpinned:
            raise ConfigError("policy 'pinned-only' needs a pin for every weight; unpinned: "
                              + ", ".join(unpinned), file=source, field="storage.pins",
                              fix="pin these tensors, or use storage.policy: auto")
    medium = {n: pins.get(n, DEFAULT_MEDIUM) for n in weights}
    if policy != "auto" or SPILL_MEDIUM not in media:
        return medium

    def used(m: str) -> int:
        return reserved.get(m, 0) + sum(align_up(w["nbytes"], align)
                                        for n, w in weights.items() if medium[n] == m)

    flash_cap = media[DEFAULT_MEDIUM]["capacity"]
    spill_room = media[SPILL_MEDIUM]["capacity"] - used(SPILL_MEDIUM)
    flash_used = used(DEFAULT_MEDIUM)
    movable = sorted((n for n in weights if n not in pins),
                     key=lambda n: (-weights[n]["nbytes"], n))
    for name in movable:
        if flash_used <= flash_cap:
            break
        size = align_up(weights[name]["nbytes"], align)
        if size <= spill_room:
            medium[name] = SPILL_MEDIUM
            spill_room -= size
            flash_used -= size
    return medium


def _budget_error(usage: dict[str, int], media: dict, parts: dict[str, dict[str, int]],
                  policy: str, target: str, source: str | None) -> BudgetError | None:
    over = {m: n for m, n in usage.items() if n > media[m]["capacity"]}
    if not over:
        return None
    shortfalls = {m: {"need": n, "limit": media[m]["capacity"],
                      "shortfall": n - media[m]["capacity"]} for m, n in over.items()}
    summary = "; ".join(f"{m} needs {s['need']:,} bytes, limit {s['limit']:,} "
                        f"(short by {s['shortfall']:,} bytes)" for m, s in shortfalls.items())
    detail = "\n".join(f"  {m}: " + " + ".join(f"{k} {v:,}" for k, v in parts[m].items() if v)
                       for m in over)
    hints = [f"let the build compress the model to fit: set compression.flash_bytes (e.g. "
             f"compression.flash_bytes={media[DEFAULT_MEDIUM]['capacity']}) and/or compression.sram_bytes"
             if DEFAULT_MEDIUM in media else "compress the model (pruning, int8 quantisation)"]
    if DEFAULT_MEDIUM in over and SPILL_MEDIUM in media:
        free = media[SPILL_MEDIUM]["capacity"] - usage.get(SPILL_MEDIUM, 0)
        hints.append(f"pin weights to {SPILL_MEDIUM} in storage.pins ({max(free, 0):,} bytes free)")
        if policy != "auto":
            hints.append(f"set storage.policy: auto to move weights to {SPILL_MEDIUM} automatically")
    if ARENA_MEDIUM in over:
        hints.append("shrink the largest activations (fewer channels, smaller input)")
    hints.append("or pick a target with more memory")
    return BudgetError(f"does not fit {target}: {summary}\n{detail}", shortfalls=shortfalls,
                       file=source, fix="; ".join(hints))


def plan_memory(weights: list[dict], activations: list[dict], media: dict[str, dict], *,
                pins: dict[str, str] | None = None, policy: str = "auto",
                reserved: dict[str, int] | None = None, source: str | None = None,
                align: int = 1, target: str = "the target") -> MemoryPlan:
    """Place weights in media and activations in one SRAM arena; raise if anything overflows.

    ``weights``: ``[{name, nbytes, layer?, kind?}]``; ``activations``: ``[{name, nbytes, first,
    last}]`` with first/last = producing / last consuming layer index; ``media``: ``{medium:
    {"capacity": bytes}}`` (usable bytes, e.g. flash minus the bootloader); ``pins``: tensor name
    -> medium; ``reserved``: bytes per medium already used by code/stack/harness; ``source`` and
    ``target`` name the recipe file and the board in error messages.

    Raises ``ConfigError`` for bad pins or policy and ``BudgetError`` (with ``shortfalls``) when
    the plan does not fit.
    """
    pins = dict(pins or {})
    reserved = {m: int(n) for m, n in (reserved or {}).items() if n}
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy '{policy}'{_closest(policy, POLICIES)}", file=source,
                          field="storage.policy", fix=f"use one of: {', '.join(POLICIES)}")
    for m in (DEFAULT_MEDIUM, ARENA_MEDIUM, *reserved):
        if m not in media:
            raise ConfigError(f"target has no '{m}' memory (it has: {', '.join(media)})",
                              file=source, fix="add the memory to the target file")
    by_name = {w["name"]: w for w in weights}
    if len(by_name) != len(weights):
        raise ValueError("duplicate weight names")
    _check_pins(pins, by_name, {a["name"] for a in activations}, media, source)

    assigned = _assign_media(by_name, pins, policy, media, reserved, align, source)
    placements: dict[str, Placement] = {}
    cursor = dict.fromkeys(media, 0)
    for w in weights:
        m = assigned[w["name"]]
        placements[w["name"]] = Placement(m, cursor[m], int(w["nbytes"]))
        cursor[m] += align_up(int(w["nbytes"]), align)

    arena = plan_arena([Buffer(a["name"], int(a["nbytes"]), int(a["first"]), int(a["last"]))
                        for a in activations], align)
    parts = {m: {"weights": cursor[m], "activation arena": arena.size if m == ARENA_MEDIUM else 0,
                 "reserved": reserved.get(m, 0)} for m in media}
    usage = {m: sum(p.values()) for m, p in parts.items()}
    error = _budget_error(usage, media, parts, policy, target, source)
    if error:
        raise error
    return MemoryPlan(
        weights=placements,
        activations={a["name"]: Placement(ARENA_MEDIUM, arena.offsets[a["name"]], int(a["nbytes"]))
                     for a in activations},
        arena_size=arena.size, arena_lower_bound=arena.lower_bound,
        arena_strategy=arena.strategy, usage=usage,
        capacity={m: int(v["capacity"]) for m, v in media.items()}, reserved=reserved,
        align=align, kinds={w["name"]: w.get("kind", "weight") for w in weights},
        lifetimes={a["name"]: (int(a["first"]), int(a["last"])) for a in activations},
    )
