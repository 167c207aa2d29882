"""Small helpers shared by the stages: stable JSON files."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: Path, data) -> Path:
    """Write JSON with sorted keys and a trailing newline (byte-stable for the cache)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n")
    return path


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def _default(obj):
    # numpy scalars/arrays reach JSON through here, without importing numpy on the no-op path.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
