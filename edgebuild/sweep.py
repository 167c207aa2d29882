"""Sweep expansion for `edgebuild RECIPE -m a=1,2 b=x,y`: every combination is one build point.

Uses Hydra's own override grammar (sweeps, ranges, choice()) so the values mean exactly what they
mean to Hydra, and its BasicSweeper's cartesian product.
"""

from __future__ import annotations

import re

from edgebuild.errors import ConfigError


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """The list of points, each a list of plain `key=value` overrides (user spelling)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise ConfigError(f"cannot parse sweep overrides: {str(e).splitlines()[0]}",
                          fix="write sweeps as key=a,b,c (e.g. target=uno,host verify.samples=100,200)") from None
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [list(point) for batch in batches for point in batch]


def point_name(overrides: list[str]) -> str:
    """A folder-safe, readable name of one sweep point, e.g. `target=host,verify.samples=200`."""
    if not overrides:
        return "default"
    text = ",".join(sorted(overrides))
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "_", text)[:120]
