"""The on-disk cache: content-addressed outputs, action records, traces, locks.

Layout under the cache directory::

    objects/<output hash>/...   a rule's output tree, files read-only, never modified in place
    actions/<key>.json          key -> output hash + manifest [(relpath, sha256, size)]
    traces/<label>.json         the latest build trace of each label (recipe / sweep point)
    locks/<key>.lock            per-key lock so concurrent builds compute a key once
    tmp/<pid>-<random>/         work directories and temporary files
    stat-cache.json             stat -> sha256 memo for user files named in ``files``

Crash safety: everything is written under ``tmp/``, fsynced, then renamed into place; an action
record is renamed into place only after its object directory is. A crash at any point leaves at
worst an orphan object (complete) or stale tmp entries, which :meth:`Cache.gc` removes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

from edgebuild.engine.hashing import canonical_json, manifest_hash, sha256_file, sha256_text
from edgebuild.engine.hashing import walk_files

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_EXECUTABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


class Cache:
    """A cache directory. Creating the object touches nothing on disk; writes create dirs."""

    def __init__(self, root: Path):
        self.root = Path(os.path.abspath(root))
        self.objects = self.root / "objects"
        self.actions = self.root / "actions"
        self.traces = self.root / "traces"
        self.locks = self.root / "locks"
        self.tmp = self.root / "tmp"
        self.stat_file = self.root / "stat-cache.json"

    # -- reading -------------------------------------------------------------------------
    def read_action(self, key: str) -> dict | None:
        """The action record for ``key``, or None if absent. Unreadable records count as absent
        and are reported through ``ValueError`` so the caller can warn and rebuild."""
        try:
            text = (self.actions / f"{key}.json").read_text()
        except FileNotFoundError:
            return None
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError(f"action record {key}.json is malformed")
        files = record.get("files")
        if (record.get("key") != key or not isinstance(record.get("output_hash"), str)
                or not isinstance(files, list)
                or not all(isinstance(f, list) and len(f) == 3 for f in files)):
            raise ValueError(f"action record {key}.json is malformed")
        return record

    def object_dir(self, output_hash: str) -> Path:
        """Directory holding the outputs with this output hash."""
        return self.objects / output_hash

    def verify(self, record: dict) -> str | None:
        """Check a record's object directory against its manifest: None if intact, else the
        first problem found (a missing, changed or unexpected file)."""
        root = self.object_dir(record["output_hash"])
        if not root.is_dir():
            return "output directory missing"
        expected = {rel: (sha, size) for rel, sha, size in record["files"]}
        present = walk_files(root)
        for rel in present:
            if rel not in expected:
                return f"unexpected file {rel}"
        for rel, (sha, size) in sorted(expected.items()):
            path = root / rel
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return f"file {rel} deleted"
            if st.st_size != size or sha256_file(path) != sha:
                return f"file {rel} changed"
        return None

    # -- writing -------------------------------------------------------------------------
    def new_workdir(self) -> Path:
        """A fresh private directory under ``tmp/`` named after this process."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        path = self.tmp / f"{os.getpid()}-{os.urandom(6).hex()}"
        path.mkdir()
        return path

    def store(self, key: str, rule: str, out_dir: Path) -> dict:
        """Move a finished rule's ``out_dir`` into the store and record ``key`` -> outputs.

        Files are fsynced and made read-only, the directory is renamed into ``objects/`` (or
        dropped if an intact identical object exists), then the action record is written
        atomically. Returns the record.
        """
        files, identity = [], []
        for rel in walk_files(out_dir):
            path = out_dir / rel
            _fsync_path(path)
            st = path.stat()
            sha = sha256_file(path)
            files.append([rel, sha, st.st_size])
            # An executable output (a host binary) stays executable, and that is part of its identity.
            executable = bool(st.st_mode & stat.S_IXUSR)
            identity.append((rel, sha + ("+x" if executable else "")))
            os.chmod(path, _READ_ONLY | (_EXECUTABLE if executable else 0))
        for dirpath, _, _ in os.walk(out_dir):
            _fsync_path(Path(dirpath), directory=True)
        output_hash = manifest_hash(identity)
        record = {"key": key, "rule": rule, "output_hash": output_hash, "files": files}
        self._place_object(out_dir, output_hash, record)
        self.write_json(self.actions / f"{key}.json", record)
        return record

    def _place_object(self, out_dir: Path, output_hash: str, record: dict) -> None:
        self.objects.mkdir(parents=True, exist_ok=True)
        target = self.object_dir(output_hash)
        for _ in range(3):
            try:
                os.rename(out_dir, target)
                _fsync_path(self.objects, directory=True)
                return
            except OSError:
                if not target.exists():
                    continue
            if self.verify(record) is None:      # an identical object is already in place
                _rmtree(out_dir)
                return
            self._trash(target)                  # a damaged object with the same identity
        raise OSError(f"could not place cache object {output_hash}")

    def discard(self, key: str, record: dict | None) -> None:
        """Remove an action record and its (damaged) object directory."""
        try:
            os.unlink(self.actions / f"{key}.json")
        except FileNotFoundError:
            pass
        if record and "output_hash" in record:
            self._trash(self.object_dir(record["output_hash"]))

    def _trash(self, path: Path) -> None:
        """Rename ``path`` into tmp/ (atomic disappearance), then delete it."""
        if not path.exists():
            return
        self.tmp.mkdir(parents=True, exist_ok=True)
        doomed = self.tmp / f"{os.getpid()}-{os.urandom(6).hex()}.trash"
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return
        _rmtree(doomed)

    def write_json(self, path: Path, obj: object) -> None:
        """Atomically replace ``path`` with ``obj`` as JSON (tmp file, fsync, rename)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / f"{os.getpid()}-{os.urandom(6).hex()}.json"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(canonical_json(obj))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_path(path.parent, directory=True)

    def lock(self, key: str):
        """An (unacquired) inter-process lock for computing ``key``."""
        from filelock import FileLock

        self.locks.mkdir(parents=True, exist_ok=True)
        return FileLock(os.fspath(self.locks / f"{key}.lock"))

    # -- traces --------------------------------------------------------------------------
    def trace_path(self, label: str) -> Path:
        """File holding the latest trace of ``label``."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:80]
        return self.traces / f"{slug}-{sha256_text(label)[:10]}.json"

    def read_trace(self, label: str) -> dict | None:
        """The latest trace stored under ``label``, or None."""
        try:
            return json.loads(self.trace_path(label).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def all_traces(self) -> list[dict]:
        """Every stored trace (one per label)."""
        traces = []
        for path in sorted(self.traces.glob("*.json")) if self.traces.is_dir() else []:
            try:
                traces.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return traces

    # -- garbage collection ----------------------------------------------------------------
    def gc(self, keep_keys: set[str]) -> dict:
        """Delete action records not in ``keep_keys``, objects no kept record refers to, stale
        tmp entries of dead processes, locks of deleted keys and stat-cache entries of files
        that no longer exist. Returns counts and bytes."""
        stats = {"entries_removed": 0, "objects_removed": 0, "tmp_removed": 0,
                 "bytes_freed": 0, "entries_kept": 0}
        keep_objects: set[str] = set()
        for path in sorted(self.actions.glob("*.json")) if self.actions.is_dir() else []:
            key = path.stem
            record = None
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                pass
            if key in keep_keys and record and "output_hash" in record:
                keep_objects.add(record["output_hash"])
                stats["entries_kept"] += 1
                continue
            stats["bytes_freed"] += _size(path)
            path.unlink(missing_ok=True)
            stats["entries_removed"] += 1
            self._remove_lock(key)
        for obj in sorted(self.objects.iterdir()) if self.objects.is_dir() else []:
            if obj.name not in keep_objects:
                stats["bytes_freed"] += _size(obj)
                self._trash(obj)
                stats["objects_removed"] += 1
        for entry in sorted(self.tmp.iterdir()) if self.tmp.is_dir() else []:
            if not _owner_alive(entry.name):
                stats["bytes_freed"] += _size(entry)
                _rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
                stats["tmp_removed"] += 1
        self._prune_stat_cache()
        return stats

    def _prune_stat_cache(self) -> None:
        try:
            stats = json.loads(self.stat_file.read_text())
        except (OSError, ValueError):
            return
        alive = {path: sig for path, sig in stats.items() if os.path.exists(path)}
        if len(alive) != len(stats):
            self.write_json(self.stat_file, alive)

    def _remove_lock(self, key: str) -> None:
        path = self.locks / f"{key}.lock"
        if not path.exists():
            return
        from filelock import Timeout

        lock = self.lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:          # held by a running build: leave it
            return
        try:
            path.unlink(missing_ok=True)
        finally:
            lock.release()


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum((path / rel).stat().st_size for rel in walk_files(path)) if path.is_dir() else 0


def _owner_alive(name: str) -> bool:
    """Whether the process that created tmp entry ``name`` ("<pid>-...") is still running."""
    pid_text = name.split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
