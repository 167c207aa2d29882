"""Why did a rule (re)build? Compare a rule's trace entry with the previous build's.

A trace entry records everything the key is made of: action, version, code hash, params, file
hashes and the output hashes of inputs. The reasons are phrased for people:
``param seed changed: 1 -> 2``, ``input data changed``, ``code changed``.
"""

from __future__ import annotations

from edgebuild.engine.hashing import canonical_json

MAX_VALUE_CHARS = 40


def short(value: object) -> str:
    """Compact JSON rendering of a param value, truncated to ``MAX_VALUE_CHARS``."""
    text = canonical_json(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


def reasons(prev: dict | None, cur: dict, *, pending_inputs: tuple[str, ...] = ()) -> list[str]:
    """What differs between trace entries ``prev`` and ``cur`` of one rule.

    ``pending_inputs`` are inputs whose upstream rule will be rebuilt (dry run: hash unknown).
    Returns an empty list when nothing that makes up the key changed.
    """
    if prev is None or prev.get("key") is None:
        return ["first build" if prev is None else "previously skipped"]
    why = [f"input {name} will be rebuilt" for name in pending_inputs]
    if prev.get("action") != cur.get("action"):
        why.append(f"action changed: {prev.get('action')} -> {cur.get('action')}")
    if prev.get("version") != cur.get("version"):
        why.append(f"version changed: {prev.get('version')} -> {cur.get('version')}")
    old_code, new_code = prev.get("code") or {}, cur.get("code") or {}
    why += [f"code changed: {name}" for name in sorted(set(old_code) | set(new_code))
            if old_code.get(name) != new_code.get(name)]
    why += _dict_diff("param", prev.get("params", {}), cur.get("params", {}), show_values=True)
    why += _file_diff(prev.get("files", {}), cur.get("files", {}))
    cur_inputs = {k: v for k, v in cur.get("inputs", {}).items() if k not in pending_inputs}
    prev_inputs = {k: v for k, v in prev.get("inputs", {}).items() if k not in pending_inputs}
    why += _dict_diff("input", prev_inputs, cur_inputs, show_values=False)
    return why


def _dict_diff(kind: str, old: dict, new: dict, *, show_values: bool) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(f"{kind} {name} added" + (f": {short(new[name])}" if show_values else ""))
        elif name not in new:
            out.append(f"{kind} {name} removed")
        elif old[name] != new[name]:
            out.append(f"{kind} {name} changed" +
                       (f": {short(old[name])} -> {short(new[name])}" if show_values else ""))
    return out


def _file_diff(old: dict, new: dict) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name) or {}, new.get(name) or {}
        if before.get("sha") == after.get("sha"):
            continue
        if before.get("path") != after.get("path"):
            out.append(f"file {name} changed: {short(before.get('path'))} -> "
                       f"{short(after.get('path'))}")
        else:
            out.append(f"file {name} changed")
    return out
