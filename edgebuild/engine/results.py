"""Data passed to rule actions and returned from a build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("ran", "cached", "cutoff", "skipped", "would-run", "failed")


@dataclass
class RuleResult:
    """Outcome of one rule in one build.

    ``status`` is one of ``STATUSES``; ``cutoff`` means the key matched the cache although an
    upstream rule ran (its output came out byte-identical). ``output_dir`` is the read-only
    cached output directory; ``why`` says why the rule ran / would run / was cut off / skipped.
    """

    name: str
    status: str
    seconds: float = 0.0
    key: str | None = None
    output_dir: Path | None = None
    output_hash: str | None = None
    why: list[str] = field(default_factory=list)


@dataclass
class BuildResult:
    """Outcome of :meth:`Engine.build`.

    ``rules`` holds every rule that was reached, in completion order; after a failure, rules
    that were never started are absent. ``error`` is the exception that stopped the build:
    an ``EdgebuildError`` to print as is, or any other exception whose ``__traceback__`` is
    kept for ``--debug``.
    """

    ok: bool
    rules: dict[str, RuleResult]
    error: BaseException | None = None
    failed_rule: str | None = None
    label: str = ""
    seconds: float = 0.0


@dataclass
class RuleContext:
    """What an action ``function(ctx)`` gets. It writes its outputs into ``out`` only.

    ``inputs`` are read-only upstream output directories, ``files`` the user files named by the
    rule's ``files`` (Path, list of Path, or None), ``tmp`` a scratch directory removed after
    the rule.
    """

    name: str
    params: dict
    files: dict
    inputs: dict[str, Path]
    out: Path
    tmp: Path
    _reporter: object = field(repr=False, default=None)

    def log(self, msg: str) -> None:
        """Print a line attributed to this rule."""
        if self._reporter is not None:
            self._reporter.log(self.name, msg)

    def progress(self, msg: str) -> None:
        """Update the live status line of this rule (terminal only)."""
        if self._reporter is not None:
            self._reporter.progress(self.name, msg)
