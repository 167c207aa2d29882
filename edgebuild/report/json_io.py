"""report.json: machine-readable, stable key order, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def _plain(obj):
    """JSON fallback for numpy scalars and arrays, paths and sets."""
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"report value of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


def dumps(report: dict) -> str:
    """The canonical text of a report: keys sorted, indent 2, UTF-8, trailing newline."""
    return json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False, default=_plain,
                      allow_nan=False) + "\n"


def write_json(report: dict, path: Path) -> Path:
    """Write ``report`` to ``path`` (canonical text, atomic replace) and return the path.

    The same dict always gives the same bytes, so report.json can be content-hashed.
    """
    return atomic_write_text(Path(path), dumps(report))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
