"""Content hashing: canonical JSON, files, directory trees and rule code.

Everything a rule key is made of goes through here, so keys are stable across processes and
machines: canonical JSON (sorted keys, no whitespace), sha256, POSIX relative paths.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from pathlib import Path

CODE_SUFFIXES = (".py", ".j2", ".c", ".h", ".yaml")


def canonical_json(obj: object) -> str:
    """Deterministic JSON text of ``obj`` (sorted keys, compact); Paths become strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def _json_default(obj: object) -> object:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"value of type {type(obj).__name__} is not JSON-serialisable")


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def walk_files(root: Path) -> list[str]:
    """Sorted POSIX relative paths of every regular file below ``root`` (any depth)."""
    found = []
    root_s = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root_s):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root_s)
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def manifest_hash(entries: list[tuple[str, str]]) -> str:
    """Hash of a sorted ``(relpath, sha256)`` manifest: the identity of a directory's content."""
    return sha256_text(canonical_json(sorted([rel, sha] for rel, sha in entries)))


class FileHasher:
    """Hashes user files named in rule ``files`` params, memoised by stat.

    The stat cache (path -> size, mtime_ns, inode, sha256) lives in one JSON file in the cache
    directory so that a no-op rebuild does not re-read large datasets. Entries younger than
    ``RACY_SECONDS`` are not trusted (a file rewritten within the timestamp granularity).
    """

    RACY_SECONDS = 2.0

    def __init__(self, stat_file: Path | None):
        self.stat_file = stat_file
        self._stats: dict[str, list] = {}
        self._dirty = False
        if stat_file is not None:
            try:
                self._stats = json.loads(stat_file.read_text())
            except (OSError, ValueError):
                self._stats = {}

    def hash_path(self, path: Path) -> str:
        """``sha256`` of a file, or ``dir:<manifest hash>`` of all files in a directory.

        Raises FileNotFoundError when ``path`` does not exist.
        """
        if path.is_dir():
            entries = [(rel, self._file_sha(path / rel)) for rel in walk_files(path)]
            return "dir:" + manifest_hash(entries)
        return self._file_sha(path)

    def _file_sha(self, path: Path) -> str:
        full = os.path.abspath(path)
        st = os.stat(full)
        sig = [st.st_size, st.st_mtime_ns, st.st_ino]
        cached = self._stats.get(full)
        if cached is not None and cached[:3] == sig:
            return cached[3]
        sha = sha256_file(full)
        if time.time() - st.st_mtime_ns / 1e9 > self.RACY_SECONDS:
            self._stats[full] = sig + [sha]
            self._dirty = True
        return sha

    def save(self, write_json) -> None:
        """Persist the stat cache with ``write_json(path, obj)`` if anything was added."""
        if self._dirty and self.stat_file is not None:
            write_json(self.stat_file, self._stats)
            self._dirty = False


class CodeHasher:
    """Hashes the source of rule actions and ``code`` entries; each file is read once."""

    def __init__(self):
        self._files: dict[str, str] = {}
        self._modules: dict[tuple[str, bool], str] = {}

    def module_hash(self, module: str, *, whole_package: bool) -> str:
        """Hash of ``module``'s source, located with ``find_spec`` (the module is not imported).

        With ``whole_package`` and a package, every code file (.py .j2 .c .h .yaml) under the
        package directory is included. Raises LookupError if the module cannot be found.
        """
        memo_key = (module, whole_package)
        if memo_key not in self._modules:
            self._modules[memo_key] = self._compute(module, whole_package)
        return self._modules[memo_key]

    def _compute(self, module: str, whole_package: bool) -> str:
        spec = _find_spec(module)
        entries: list[tuple[str, str]] = []
        if whole_package and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                base = Path(location)
                for rel in walk_files(base):
                    if rel.endswith(CODE_SUFFIXES) and "__pycache__" not in rel:
                        entries.append((rel, self._file(base / rel)))
        elif spec.origin and spec.has_location:
            entries.append((Path(spec.origin).name, self._file(Path(spec.origin))))
        else:
            raise LookupError(f"module '{module}' has no source file")
        return manifest_hash(entries)

    def _file(self, path: Path) -> str:
        key = os.fspath(path)
        if key not in self._files:
            self._files[key] = sha256_file(path)
        return self._files[key]


def _find_spec(module: str):
    """Locate ``module`` without importing it or its parent packages.

    ``importlib.util.find_spec("a.b.c")`` imports ``a.b``, whose ``__init__`` may pull in numpy or
    networkx: far too slow for a no-op rebuild. Only the top-level package is looked up by name (not
    imported); each further part is searched for on disk in its parent's search locations.
    """
    import importlib.machinery

    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
        for i in range(1, len(parts)):
            if spec is None or not spec.submodule_search_locations:
                spec = None
                break
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join(parts[:i + 1]), list(spec.submodule_search_locations))
    except (ImportError, ValueError) as exc:
        raise LookupError(f"cannot locate module '{module}': {exc}") from None
    if spec is None:
        raise LookupError(f"no module named '{module}'")
    return spec
