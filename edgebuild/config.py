"""Recipe loading: Hydra composition, schema validation, friendly errors, and a compose cache.

A recipe is a Hydra config in a folder (recipes/) whose parent holds the `targets/` config group:
the recipe's defaults list says `- targets@target: uno`, and `target=host` on the command line picks
another board (rewritten here to Hydra's `targets@target=host`).

Composition with Hydra and validation with pydantic cost ~0.3 s of imports. The validated config is
therefore cached under <cache>/compose/, keyed by the bytes of every YAML file Hydra could read, the
overrides, and the source of the schema modules: a no-op rebuild never imports Hydra or pydantic.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from edgebuild.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent
_SCHEMA_SOURCES = ("config.py", "recipe.py", "targets.py")
_TARGET_OVERRIDE = re.compile(r"^(\+{0,2})target=([A-Za-z0-9_.-]+)$")
_PLAIN_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=")


def target_dirs(recipe_path: Path) -> list[Path]:
    """Folders that may hold the `targets/` config group: beside the recipe's folder, then the checkout's."""
    found = []
    for root in (recipe_path.resolve().parent.parent, REPO_ROOT):
        if (root / "targets").is_dir() and root not in found:
            found.append(root)
    return found


def available_targets(recipe_path: Path) -> list[str]:
    names = set()
    for root in target_dirs(recipe_path):
        names.update(p.stem for p in (root / "targets").glob("*.yaml"))
    return sorted(names)


def rewrite_overrides(overrides: list[str]) -> list[str]:
    """Turn user overrides into Hydra's.

    `target=NAME` selects targets/NAME.yaml (Hydra: `targets@target=NAME`). A plain `key=value` sets a
    field whether or not the recipe file spells it out (Hydra: `++key=value`); the schema then
    rejects unknown fields with a did-you-mean. Prefixed (`+`, `~`, `++`) and `hydra.` overrides pass.
    """
    out = []
    for ov in overrides:
        m = _TARGET_OVERRIDE.match(ov)
        if m:
            out.append(f"targets@target={m.group(2)}")
        elif _PLAIN_OVERRIDE.match(ov) and not ov.startswith("hydra."):
            out.append("++" + ov)
        else:
            out.append(ov)
    return out


def _compose_key(recipe_path: Path, overrides: list[str]) -> str:
    from edgebuild import __version__

    h = hashlib.sha256()
    h.update(json.dumps([__version__, str(recipe_path), overrides]).encode())
    for name in _SCHEMA_SOURCES:
        h.update((PACKAGE_ROOT / name).read_bytes())
    files = sorted(recipe_path.parent.glob("*.yaml"))
    for root in target_dirs(recipe_path):
        files += sorted((root / "targets").glob("*.yaml"))
    for f in files:
        h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def load_recipe(recipe: str | os.PathLike, overrides: list[str] = (), *, cache_dir: Path | None = None) -> dict:
    """Compose, validate and return the recipe as a plain JSON-able dict.

    Relative paths in the recipe (model.onnx, dataset.path) are resolved against the recipe's folder.
    Raises ConfigError naming the file, the field and the fix.
    """
    path = Path(recipe)
    if not path.exists():
        raise ConfigError("recipe file not found", file=str(recipe),
                          fix="give the path of a recipe YAML, e.g. recipes/mnist_uno.yaml")
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        raise ConfigError("a recipe must be a .yaml file", file=str(recipe),
                          fix="give the path of a recipe YAML, e.g. recipes/mnist_uno.yaml")
    path = path.resolve()
    overrides = rewrite_overrides(list(overrides))
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / "compose" / f"{_compose_key(path, overrides)}.json"
        try:
            return json.loads(cache_file.read_text())
        except (OSError, ValueError):
            pass
    config = _compose_and_validate(path, overrides, display=str(recipe))
    if cache_file is not None:
        _atomic_write(cache_file, json.dumps(config, sort_keys=True))
    return config


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _check_yaml(path: Path, display: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"not valid YAML{where}: {getattr(e, 'problem', e)}", file=display,
                          fix="fix the YAML syntax (indentation, colons, quotes)") from None
    if not isinstance(data, dict):
        raise ConfigError("a recipe must be a YAML mapping of fields", file=display,
                          fix="start from recipes/mnist_uno.yaml")
    return data


def _compose_and_validate(path: Path, overrides: list[str], display: str) -> dict:
    _check_yaml(path, display)
    roots = target_dirs(path)
    config = _hydra_compose(path, overrides, roots, display)
    if not isinstance(config.get("target"), dict):
        raise ConfigError("the recipe does not pick a board", file=display, field="defaults",
                          fix="add `defaults: [{targets@target: uno}, _self_]` or `target=NAME` (boards: "
                              f"{', '.join(available_targets(path))})")
    config.setdefault("name", path.stem)
    _resolve_paths(config, path.parent)
    validated = _validate(config, display, path)
    _check_paths(validated, display)
    return validated


def _hydra_compose(path: Path, overrides: list[str], roots: list[Path], display: str) -> dict:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    searchpath = "[" + ",".join(f"file://{r}" for r in roots) + "]"
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(path.parent), version_base=None):
            cfg = compose(config_name=path.stem, overrides=overrides + [f"hydra.searchpath={searchpath}"])
        return OmegaConf.to_container(cfg, resolve=True)
    except MissingConfigException as e:
        text = str(e)
        m = re.search(r"Could not find '([^']+)'", text)
        if m and m.group(1).startswith("targets/"):
            name = m.group(1).split("/", 1)[1]
            raise ConfigError(f"unknown target '{name}'", file=display, field="target",
                              fix=f"use one of: {', '.join(available_targets(path))} "
                                  "(or add targets/<name>.yaml)") from None
        raise ConfigError(text.splitlines()[0], file=display, fix="check the defaults list") from None
    except (HydraException, OmegaConfBaseException) as e:
        msg = str(e).strip().splitlines()
        raise ConfigError(msg[0] if msg else type(e).__name__, file=display,
                          fix="check the override syntax: key=value, e.g. verify.samples=200 target=host"
                              + ("" if len(msg) < 2 else f" ({' '.join(msg[1:])[:200]})")) from None
    finally:
        GlobalHydra.instance().clear()


def _resolve_paths(config: dict, base: Path) -> None:
    model = config.get("model")
    for key in ("onnx", "tflite"):
        if isinstance(model, dict) and isinstance(model.get(key), str) and model[key] != "???":
            model[key] = str((base / model[key]).resolve())
    dataset = config.get("dataset")
    for key in ("path", "labels"):
        if isinstance(dataset, dict) and isinstance(dataset.get(key), str):
            dataset[key] = str((base / dataset[key]).resolve())


def _check_paths(config: dict, display: str) -> None:
    onnx = config["model"].get("onnx")
    if onnx is not None and not Path(onnx).is_file():
        raise ConfigError(f"ONNX file not found: {onnx}", file=display, field="model.onnx",
                          fix="give the path of an .onnx file, relative to the recipe's folder")
    tfl = config["model"].get("tflite")
    if tfl == "???":
        raise ConfigError("the recipe needs a .tflite file", file=display, field="model.tflite",
                          fix="give it on the command line: model.tflite=/path/to/model.tflite")
    if tfl is not None and not Path(tfl).is_file():
        raise ConfigError(f"TFLite file not found: {tfl}", file=display, field="model.tflite",
                          fix="give the path of a .tflite file, relative to the recipe's folder (or absolute)")
    data_path = config["dataset"].get("path")
    if data_path is not None and not Path(data_path).exists():
        raise ConfigError(f"dataset path not found: {data_path}", file=display, field="dataset.path",
                          fix="give the folder holding the IDX files, relative to the recipe's folder")


def _validate(config: dict, display: str, path: Path) -> dict:
    from pydantic import ValidationError

    from edgebuild.recipe import Recipe

    try:
        recipe = Recipe.model_validate(config)
    except ValidationError as e:
        raise ConfigError(_explain_validation(e, config, display, path)) from None
    return recipe.model_dump(mode="json")


def _model_at(loc: tuple):
    """The pydantic model class that owns the last element of `loc` (for listing allowed fields)."""
    import typing

    from pydantic import BaseModel

    from edgebuild.recipe import Recipe

    cls = Recipe
    for part in loc[:-1]:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return None
        ann = cls.model_fields[part].annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)] or [ann]
        if typing.get_origin(ann) is dict:
            return None
        cls = args[0] if isinstance(args[0], type) else None
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _explain_validation(err, config: dict, display: str, path: Path) -> str:
    import difflib

    lines = []
    for e in err.errors()[:12]:
        loc = tuple(p for p in e["loc"] if not isinstance(p, str) or not p.startswith("function-"))
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = display
        if loc and loc[0] == "target":
            tname = config.get("target", {}).get("name", "?") if isinstance(config.get("target"), dict) else "?"
            where = f"targets/{tname}.yaml"
            field = ".".join(str(p) for p in loc[1:]) or "(top level)"
        kind = e["type"]
        msg = e["msg"]
        owner = _model_at(loc) if loc else None
        if kind == "extra_forbidden":
            known = sorted(owner.model_fields) if owner else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            fix = (f"did you mean '{close[0]}'? " if close else "remove it; ") + \
                  (f"fields allowed here: {', '.join(known)}" if known else "")
            msg = "unknown field"
        elif kind == "missing":
            desc = owner.model_fields[loc[-1]].description if owner and loc[-1] in owner.model_fields else None
            fix = f"add `{loc[-1]}:`" + (f" ({desc})" if desc else "")
            msg = "required field is missing"
        elif kind == "value_error":
            # A validator of the whole recipe (empty loc) may start its message with the field it is
            # about ("storage.pins.x: ...") and end it with "\nfix: ..." (see recipe.Recipe).
            msg, _, fix = msg.removeprefix("Value error, ").partition("\nfix: ")
            fix = fix or "see `edgebuild schema` for what this field takes"
            head, sep, rest = msg.partition(": ")
            if not loc and sep and head.replace(".", "").replace("_", "").isalnum():
                field, msg = head, rest
        else:
            if "input" in e and not isinstance(e["input"], (dict, list)):
                msg += f" (got {e['input']!r})"
            fix = _FIXES.get(kind, "see `edgebuild schema` for the allowed values")
        lines.append(f"{where}: field '{field}': {msg}\n  fix: {fix}")
    more = len(err.errors()) - 12
    if more > 0:
        lines.append(f"... and {more} more")
    return "\n".join(lines)


_FIXES = {
    "int_parsing": "give a whole number, e.g. 32256",
    "int_type": "give a whole number, e.g. 32256",
    "int_from_float": "give a whole number, e.g. 32256",
    "float_parsing": "give a number, e.g. 0.01",
    "float_type": "give a number, e.g. 0.01",
    "bool_parsing": "give true or false",
    "bool_type": "give true or false",
    "string_type": "give a string",
    "literal_error": "use one of the values listed",
    "greater_than": "give a larger value",
    "greater_than_equal": "give a larger value",
    "less_than": "give a smaller value",
    "less_than_equal": "give a smaller value",
    "list_type": "give a list, e.g. [14, 14]",
    "dict_type": "give a mapping of fields",
    "model_type": "give a mapping of fields",
    "value_error": "see the message above",
}
