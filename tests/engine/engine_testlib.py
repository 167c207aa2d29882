"""Helpers for the engine tests: a scratch project (pipeline, cache, event log) and
independent tree digests."""

import hashlib
import json
import os
from pathlib import Path

from edgebuild.engine import Engine, load_pipeline

HERE = Path(__file__).resolve().parent


class Project:
    """A pipeline file + cache dir in tmp_path, and the event log the demo actions append to."""

    def __init__(self, root: Path):
        self.root = root
        self.cache = root / "cache"
        self.log = root / "events.jsonl"
        self.pipeline_file = root / "pipeline.yaml"

    def engine(self, yaml_text: str | None = None, jobs: int = 1) -> Engine:
        """An Engine over ``yaml_text`` (or the last pipeline written)."""
        if yaml_text is not None:
            self.pipeline_file.write_text(yaml_text)
        return Engine(load_pipeline(self.pipeline_file), cache_dir=self.cache, jobs=jobs)

    def events(self) -> list[dict]:
        """All events the demo actions recorded so far."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def ran(self) -> list[str]:
        """Rules whose action ran since the last call (and forget them)."""
        names = [e["rule"] for e in self.events() if e["event"] == "run"]
        self.log.unlink(missing_ok=True)
        return sorted(names)


def tree_digest(root: Path) -> dict[str, str]:
    """Independent reference: relpath -> sha256 of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its size and mtime (to prove nothing changed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def subprocess_env(extra: dict | None = None) -> dict:
    """Environment for a child Python that can import edgebuild and the demo rules."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent.parent)])
    env.update(extra or {})
    return env
