"""Loading and validating ``pipeline.yaml``: the rule DAG as data.

Format::

    version: 1
    rules:
      train:
        action: edgebuild.stages.train:run   # called as run(ctx) when the rule runs
        params: {epochs: model.train.epochs} # local name -> dotted config path (missing -> None)
        files: {path: dataset.path}          # config values naming files/dirs; content is hashed
        inputs: {data: dataset, m: "prev?"}  # local name -> upstream rule ("?": optional)
        when: model.train                    # skip when falsy ("!path" negates)
        code: [edgebuild.train]              # extra modules/packages whose source is hashed
        version: 1                           # bump to invalidate cached results
        publish: false                       # copy outputs to <build_dir>/train/
        on_demand: false                     # true: built only when asked for (Engine.build(only=...))
        description: "..."                   # shown by graph renderings

Every problem a user can make in the file raises :class:`~edgebuild.errors.ConfigError` naming
the pipeline file, the rule and the field, and saying how to fix it.
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgebuild.errors import ConfigError

RULE_KEYS = ("action", "params", "files", "inputs", "when", "code", "version", "publish",
             "on_demand", "description")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ACTION_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_DOTTED_RE = re.compile(r"^[\w.-]+$")


@dataclass(frozen=True)
class RuleSpec:
    """One rule of the pipeline, as written in ``pipeline.yaml`` (validated)."""

    name: str
    action: str
    params: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)   # local name -> "rule" or "rule?"
    when: str | None = None
    code: tuple[str, ...] = ()
    version: int = 1
    publish: bool = False
    on_demand: bool = False
    description: str = ""

    @property
    def module(self) -> str:
        """The module part of ``action`` ("pkg.mod" of "pkg.mod:func")."""
        return self.action.partition(":")[0]

    @property
    def function(self) -> str:
        """The function part of ``action``."""
        return self.action.partition(":")[2]

    def input_rules(self) -> dict[str, tuple[str, bool]]:
        """Map each input's local name to ``(upstream rule, optional)``."""
        return {local: (ref.rstrip("?"), ref.endswith("?")) for local, ref in self.inputs.items()}

    def deps(self) -> set[str]:
        """Names of the upstream rules this rule reads."""
        return {rule for rule, _ in self.input_rules().values()}


class Pipeline:
    """A validated rule DAG. ``rules`` keeps file order; :meth:`order` is topological."""

    def __init__(self, rules: dict[str, RuleSpec], path: Path | None = None):
        self.rules = rules
        self.path = path
        self._order = _topological_order(rules, path)

    def order(self) -> list[str]:
        """Rule names in a dependency-respecting order (stable for a given file)."""
        return list(self._order)

    def default_rules(self) -> list[str]:
        """The rules a build without ``only`` brings up to date: all but the on-demand ones (and
        an on-demand rule another of them reads), in topological order."""
        return self.closure([n for n in self._order if not self.rules[n].on_demand])

    def closure(self, names: list[str]) -> list[str]:
        """``names`` plus all their transitive upstream rules, in topological order."""
        unknown = [n for n in names if n not in self.rules]
        if unknown:
            raise ConfigError(f"unknown rule(s) {', '.join(map(repr, unknown))}",
                              file=str(self.path or "pipeline"), field="only",
                              fix=f"choose from: {', '.join(self.rules)}")
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.rules[name].deps())
        return [n for n in self._order if n in wanted]

    def to_dot(self) -> str:
        """Graphviz rendering: one node per rule, edges labelled with the input's local name."""
        lines = ["digraph pipeline {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
        for name in self._order:
            rule = self.rules[name]
            label = name + (f"\\nwhen {rule.when}" if rule.when else "") + ("\\non demand" if rule.on_demand else "")
            attrs = [f'label="{_dot_escape(label)}"']
            if rule.description:
                attrs.append(f'tooltip="{_dot_escape(rule.description)}"')
            if rule.publish:
                attrs.append("peripheries=2")
            lines.append(f'  "{name}" [{", ".join(attrs)}];')
        for name in self._order:
            for local, (up, optional) in sorted(self.rules[name].input_rules().items()):
                style = ", style=dashed" if optional else ""
                lines.append(f'  "{up}" -> "{name}" [label="{_dot_escape(local)}"{style}];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """Mermaid flowchart rendering (optional inputs drawn dotted)."""
        lines = ["flowchart LR"]
        for name in self._order:
            rule = self.rules[name]
            text = name + (f"<br/>when {rule.when}" if rule.when else "") + ("<br/>on demand" if rule.on_demand else "")
            lines.append(f'  {_mermaid_id(name)}["{text}"]')
        for name in self._order:
            for local, (up, optional) in sorted(self.rules[name].input_rules().items()):
                arrow = "-.->" if optional else "-->"
                lines.append(f"  {_mermaid_id(up)} {arrow}|{local}| {_mermaid_id(name)}")
        return "\n".join(lines) + "\n"


def load_pipeline(path: Path) -> Pipeline:
    """Read and validate a ``pipeline.yaml``; raise ConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read pipeline file ({exc.strerror})", file=str(path),
                          fix="check the path to rules/pipeline.yaml") from None
    return parse_pipeline(text, path)


def parse_pipeline(text: str, path: Path | str = "pipeline.yaml") -> Pipeline:
    """Validate pipeline YAML ``text``; ``path`` is only used in error messages."""
    import yaml

    where = str(path)
    try:
        doc = yaml.load(text, Loader=_loader_class())
    except _DuplicateKey as exc:
        raise ConfigError(f"duplicate rule or key '{exc.key}' at line {exc.line}", file=where,
                          field=exc.key, fix="give every rule (and every key) a unique name; "
                          "merge or rename the second definition") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=where,
                          fix="fix the YAML syntax at the position shown") from None
    if not isinstance(doc, dict):
        raise ConfigError("top level must be a mapping with 'version' and 'rules'", file=where,
                          fix="start the file with 'version: 1' and 'rules:'")
    unknown = sorted(set(doc) - {"version", "rules"})
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown}", file=where, field=unknown[0],
                          fix="only 'version' and 'rules' are allowed at the top level")
    if doc.get("version") != 1:
        raise ConfigError(f"unsupported version {doc.get('version')!r}", file=where,
                          field="version", fix="set 'version: 1'")
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, dict) or not raw_rules:
        raise ConfigError("'rules' must be a non-empty mapping of rule name to rule", file=where,
                          field="rules", fix="add at least one rule under 'rules:'")
    rules = {str(name): _parse_rule(str(name), body, where) for name, body in raw_rules.items()}
    for rule in rules.values():
        for local, (up, _) in rule.input_rules().items():
            if up not in rules:
                raise ConfigError(f"input '{local}' names rule '{up}', which does not exist",
                                  file=where, field=f"rules.{rule.name}.inputs.{local}",
                                  fix=f"use one of: {', '.join(sorted(rules))}")
    return Pipeline(rules, Path(path))


def _parse_rule(name: str, body: object, where: str) -> RuleSpec:
    def fail(fieldname: str | None, message: str, fix: str) -> ConfigError:
        fld = f"rules.{name}" + (f".{fieldname}" if fieldname else "")
        return ConfigError(f"rule '{name}': {message}", file=where, field=fld, fix=fix)

    if not _NAME_RE.match(name):
        raise fail(None, "bad rule name", "use letters, digits, '_', '-' or '.', "
                   "starting with a letter")
    if not isinstance(body, dict):
        raise fail(None, f"must be a mapping, got {type(body).__name__}",
                   "write the rule as a mapping with at least 'action: module:function'")
    unknown = sorted(set(map(str, body)) - set(RULE_KEYS))
    if unknown:
        raise fail(unknown[0], f"unknown key '{unknown[0]}'",
                   f"remove it or use one of: {', '.join(RULE_KEYS)}")
    action = body.get("action")
    if action is None:
        raise fail("action", "missing 'action'", "add 'action: package.module:function'")
    if not isinstance(action, str) or not _ACTION_RE.match(action):
        raise fail("action", f"action {action!r} is not of the form 'module:function'",
                   "write it as 'package.module:function', e.g. 'edgebuild.stages.train:run'")

    def str_map(key: str, what: str) -> dict[str, str]:
        value = body.get(key) or {}
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()):
            raise fail(key, f"'{key}' must map local names to {what}",
                       f"write '{key}: {{local_name: {what.split()[0]}}}'")
        return dict(value)

    params = str_map("params", "dotted config paths")
    files = str_map("files", "dotted config paths")
    inputs = str_map("inputs", "rule names")
    for key, mapping in (("params", params), ("files", files)):
        for local, dotted in mapping.items():
            if not _DOTTED_RE.match(dotted):
                raise fail(f"{key}.{local}", f"'{dotted}' is not a dotted config path",
                           "write a path such as 'model.train.epochs'")
    for local, ref in inputs.items():
        if ref.rstrip("?") == name:
            raise fail(f"inputs.{local}", f"cycle: {name} -> {name}",
                       "a rule cannot read its own output; remove this input")
    when = body.get("when")
    if when is not None and (not isinstance(when, str) or not _DOTTED_RE.match(when.lstrip("!"))):
        raise fail("when", f"'when' must be a dotted config path (optionally '!path'), got "
                   f"{when!r}", "write e.g. 'when: model.train' or 'when: \"!verify.skip\"'")
    code = body.get("code") or []
    if isinstance(code, str):
        code = [code]
    if not isinstance(code, list) or not all(isinstance(c, str) and c for c in code):
        raise fail("code", "'code' must be a list of module or package names",
                   "write e.g. 'code: [edgebuild.data]'")
    version = body.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise fail("version", f"'version' must be an integer, got {version!r}",
                   "write e.g. 'version: 2'")
    publish = body.get("publish", False)
    if not isinstance(publish, bool):
        raise fail("publish", f"'publish' must be true or false, got {publish!r}",
                   "write 'publish: true' or 'publish: false'")
    on_demand = body.get("on_demand", False)
    if not isinstance(on_demand, bool):
        raise fail("on_demand", f"'on_demand' must be true or false, got {on_demand!r}",
                   "write 'on_demand: true' or leave it out")
    description = body.get("description") or ""
    if not isinstance(description, str):
        raise fail("description", "'description' must be a string", "quote the description")
    return RuleSpec(name=name, action=action, params=params, files=files, inputs=inputs,
                    when=when, code=tuple(code), version=version, publish=publish,
                    on_demand=on_demand, description=description)


def _topological_order(rules: dict[str, RuleSpec], path: Path | None) -> list[str]:
    sorter = graphlib.TopologicalSorter({name: sorted(r.deps()) for name, r in rules.items()})
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = exc.args[1]      # each rule is an input of the next: data-flow order
        chain = " -> ".join(cycle)
        raise ConfigError(f"cycle between rules: {chain}", file=str(path or "pipeline"),
                          field=f"rules.{cycle[1]}.inputs",
                          fix="remove one of these inputs so data flows one way") from None


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int):
        super().__init__(key)
        self.key, self.line = key, line


def _loader_class():
    """A safe YAML loader (libyaml when available) that rejects duplicate mapping keys."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise _DuplicateKey(str(key), key_node.start_mark.line + 1)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader


def _dot_escape(text: str) -> str:
    return text.replace("\\n", "\x00").replace("\\", "\\\\").replace('"', '\\"').replace(
        "\x00", "\\n")


def _mermaid_id(name: str) -> str:
    return re.sub(r"\W", "_", name)
