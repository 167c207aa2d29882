"""The one build path: a composed recipe -> the engine -> a published report.

Every command goes through `run_config`: the public API (`edgebuild.build`, edgebuild/api.py), the
command line, sweep points, fleet pairs and the multi-board search. It sits below all of them and
imports none of them, so there is no import circle. Imports stay light: the no-op rebuild path
runs through here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgebuild.errors import EdgebuildError

DEFAULT_PIPELINE = Path(__file__).resolve().parent.parent / "rules" / "pipeline.yaml"


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache``, else $EDGEBUILD_CACHE, else ./cache."""
    return Path(cache or os.environ.get("EDGEBUILD_CACHE") or "cache")


def engine(cache: str | os.PathLike | None = None, pipeline: str | os.PathLike | None = None, jobs: int = 1):
    from edgebuild.engine import Engine, load_pipeline

    return Engine(load_pipeline(Path(pipeline) if pipeline else DEFAULT_PIPELINE), cache_dir=cache_dir(cache),
                  jobs=jobs)


class InternalError(EdgebuildError):
    """A rule failed with an exception that is not an EdgebuildError: a bug in edgebuild."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message, fix="this is a bug in edgebuild: rerun with --debug and report the traceback")


def run_config(config: dict, *, label: str, build_dir: Path | None, cache=None, pipeline=None, jobs: int = 1,
               dry_run: bool = False, explain: bool = False, only: list[str] | None = None, debug: bool = False):
    """Build one composed recipe; publish report.json/html (with the stages) at the top of build_dir.

    Returns the engine's result. A rule that fails with an EdgebuildError raises it again, prefixed
    with the rule's name (same exit code); any other failure raises InternalError.
    """
    res = engine(cache, pipeline, jobs).build(config, label=label, build_dir=None if dry_run else build_dir,
                                              dry_run=dry_run, explain=explain, only=only)
    if not res.ok:
        err = res.error
        if isinstance(err, EdgebuildError):
            wrapped = EdgebuildError(f"rule '{res.failed_rule}' failed:\n{err}")
            wrapped.exit_code = err.exit_code
            raise wrapped from err
        if debug and err is not None:
            import traceback
            traceback.print_exception(err)
        raise InternalError(f"rule '{res.failed_rule}' failed with {type(err).__name__}: {err}")
    if not dry_run and build_dir is not None and "report" in res.rules and res.rules["report"].output_dir is not None:
        publish_report(res, Path(build_dir))
    return res


def stage_rows(res) -> dict:
    """report.json's ``stages``: per rule, ran / cached / cutoff, its seconds and key."""
    return {name: {"status": r.status, "seconds": round(r.seconds, 3), "key": r.key} for name, r in res.rules.items()}


def publish_report(res, build_dir: Path) -> None:
    """Copy the cached report to build_dir with the stages of this build filled in, on both pages.

    The cached report artifact cannot hold the stages (only the engine knows them, while it builds),
    so they are added to report.json and written into the page's "Build stages" section here.
    """
    from edgebuild.report.html import fill_stages

    src = res.rules["report"].output_dir
    report = json.loads((src / "report.json").read_text())
    report["stages"] = stage_rows(res)
    build_dir.mkdir(parents=True, exist_ok=True)
    page = fill_stages((src / "report.html").read_text(encoding="utf-8"), report["stages"])
    for name, text in (("report.json", json.dumps(report, indent=2) + "\n"), ("report.html", page)):
        tmp = build_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, build_dir / name)
