"""The fleet file (fleet.yaml): the boards of a fleet and the models it must serve.

    name: shop-floor
    scheduler: ant_colony          # or round_robin, greedy, min_min, genetic
    seed: 0
    nodes:
      - {board: uno, count: 2, energy_budget_mw: 30, link: serial}
      - {board: mega2560, names: [press, lathe]}
      - {board: netduinoplus2}
    workloads:
      - {name: digits, recipe: recipes/mnist_uno.yaml, rate_hz: 0.5}
      - {name: digits-lite, recipe: recipes/mnist_uno.yaml, overrides: [verify.samples=50], rate_hz: 1}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgebuild.errors import ConfigError

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class NodeGroup(BaseModel):
    """One or more identical boards."""

    model_config = ConfigDict(extra="forbid")
    board: str = Field(description="target name in targets/ (e.g. uno, mega2560, netduinoplus2)")
    count: int | None = Field(default=None, ge=1, description="number of such boards (named <board>-1, ...)")
    names: list[str] | None = Field(default=None, min_length=1,
                                    description="names of the boards (instead of count)")
    energy_budget_mw: float | None = Field(default=None, gt=0,
                                           description="average power each board may spend on inference, mW")
    capacity: float = Field(default=1.0, gt=0, le=1.0,
                            description="fraction of each board's time available to inference (load limit)")
    link: str | None = Field(default=None, description="how the board is reached (informational, e.g. serial, ble)")

    @model_validator(mode="after")
    def _count_or_names(self):
        if self.count is not None and self.names is not None:
            raise ValueError("give either count or names, not both")
        for n in self.names or []:
            if not re.match(_NAME, n):
                raise ValueError(f"node name {n!r} must be letters, digits, '_', '.', '-'")
        return self

    def node_names(self) -> list[str]:
        """The names of the boards of this group."""
        return list(self.names) if self.names else [f"{self.board}-{i + 1}" for i in range(self.count or 1)]


class Workload(BaseModel):
    """One model served at a request rate."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME, description="workload name (unique; names its builds)")
    recipe: str = Field(description="recipe YAML, relative to the working folder or to the fleet file")
    overrides: list[str] = Field(default_factory=list, description="recipe overrides, e.g. verify.samples=50")
    rate_hz: float = Field(gt=0, description="inferences per second the fleet must serve")


class Fleet(BaseModel):
    """A fleet: boards, workloads and the scheduler that assigns one to the other."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME, description="fleet name; outputs go to build/fleet-<name>/")
    nodes: list[NodeGroup] = Field(min_length=1, description="groups of boards")
    workloads: list[Workload] = Field(min_length=1, description="models with request rates")
    scheduler: Literal["ant_colony", "round_robin", "greedy", "min_min", "genetic"] = Field(
        default="ant_colony", description="scheduler whose assignment is built")
    seed: int = Field(default=0, description="seed of the random schedulers")

    @model_validator(mode="after")
    def _unique(self):
        for what, names in (("workload", [w.name for w in self.workloads]),
                            ("node", [n for g in self.nodes for n in g.node_names()])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{what} names must be unique; repeated: {', '.join(dup)}")
        return self


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate a fleet file; ConfigError naming the file, field and fix otherwise."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"fleet file {path} not found", file=str(path), fix="give the path of a fleet YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"fleet file is not valid YAML: {e}", file=str(path), fix="fix the YAML syntax") from None
    try:
        return Fleet.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise ConfigError(f"invalid fleet file: {field}: {err['msg']}", file=str(path), field=field,
                          fix="see `fields` in edgebuild/fleet/config.py or docs/fleet.md") from None
