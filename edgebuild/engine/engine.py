"""The engine facade: ``Engine(pipeline, cache_dir=...)`` with ``build`` and ``gc``."""

from __future__ import annotations

from pathlib import Path

from edgebuild.engine.build import Build
from edgebuild.engine.pipeline import Pipeline
from edgebuild.engine.progress import make_reporter
from edgebuild.engine.results import BuildResult
from edgebuild.engine.store import Cache


class Engine:
    """Runs a :class:`Pipeline` against a content-addressed cache directory.

    ``jobs`` independent rules run at once (threads). ``console`` is a rich Console for
    progress output; None prints to stderr (plain lines when stderr is not a terminal).
    """

    def __init__(self, pipeline: Pipeline, cache_dir: Path, jobs: int = 1, console=None):
        self.pipeline = pipeline
        self.cache = Cache(Path(cache_dir))
        self.jobs = jobs
        self.console = console

    def build(self, config: dict, *, label: str, build_dir: Path | None = None,
              dry_run: bool = False, explain: bool = False,
              only: list[str] | None = None) -> BuildResult:
        """Bring the rules (all, or ``only`` these and their dependencies) up to date.

        ``config`` is the plain nested dict params/files/when paths are resolved in. ``label``
        names the trace (recipe or sweep point) the next build explains itself against.
        ``dry_run`` computes what it can and changes nothing. ``explain`` prints why each rule
        ran. Publishing rules are copied to ``build_dir/<rule>/`` after a successful build.
        Raises ConfigError only for a bad ``only`` list; rule failures are in the result.
        """
        build = Build(self, config, label=label, build_dir=build_dir, dry_run=dry_run,
                      explain_=explain, only=only, reporter=None)
        build.reporter = make_reporter(self.console, names=build.names)
        try:
            return build.run()
        finally:
            build.reporter.close()

    def gc(self) -> dict:
        """Delete cache entries not referenced by the latest trace of any label.

        Returns ``entries_removed``, ``objects_removed``, ``tmp_removed``, ``entries_kept`` and
        ``bytes_freed``.
        """
        keep = {entry["key"] for trace in self.cache.all_traces()
                for entry in trace.get("rules", {}).values() if entry.get("key")}
        return self.cache.gc(keep)

    def trace(self, label: str) -> dict | None:
        """The latest stored trace of ``label`` (per-rule key, params, hashes, status, why)."""
        return self.cache.read_trace(label)
