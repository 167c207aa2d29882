"""The `edgebuild` command line.

    edgebuild RECIPE [key=value ...] [-m] [-j N] [--dry-run] [--explain] [--cache DIR] [--debug]
    edgebuild RECIPE -m key=a,b ... [-P N] [--launcher NAME] [--ray-address HOST:PORT]
    edgebuild tune RECIPE 'key=interval(lo,hi)' 'key=choice(a,b)' ... [--trials N] [-P N] [--seed S]
    edgebuild graph RECIPE [--format dot|mermaid]
    edgebuild schema [recipe|target]
    edgebuild gc [--cache DIR]
    edgebuild targets
    edgebuild flash RECIPE --port PORT [--print] [key=value ...]
    edgebuild export RECIPE --arduino DIR [key=value ...]
    edgebuild search RECIPE [key=value ...] [--build-dir DIR]
    edgebuild fleet FLEET.yaml [--build-root DIR]

Errors a user can cause print one message (file, field, fix) and exit 2, with no traceback unless
--debug. Imports stay light: a no-op rebuild must not pay for numpy, onnx, Hydra or SCons.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from edgebuild.errors import EdgebuildError

SUBCOMMANDS = ("build", "graph", "schema", "gc", "targets", "flash", "export", "tune", "fleet", "search")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", type=Path, default=None,
                   help="cache folder (default: $EDGEBUILD_CACHE or ./cache)")
    p.add_argument("--pipeline", type=Path, default=None, help="rule DAG file (default: rules/pipeline.yaml)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-P", "--parallel", type=int, default=1, metavar="N",
                   help="sweep points built at once (Hydra's joblib launcher when N > 1)")
    p.add_argument("--launcher", choices=("basic", "joblib", "ray", "submitit_local", "submitit_slurm"), default=None,
                   help="Hydra launcher of the points (default: basic, joblib with -P, ray with --ray-address); "
                        "set its options with hydra.launcher.KEY=VALUE overrides")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="run the points on this Ray cluster (hydra-ray-launcher)")


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="edgebuild", description="Build verified MCU firmware from a model recipe.")
    sub = top.add_subparsers(dest="command")

    b = sub.add_parser("build", help="build a recipe (the default command)")
    b.add_argument("recipe", help="recipe YAML, e.g. recipes/mnist_uno.yaml")
    b.add_argument("overrides", nargs="*", help="Hydra overrides: key=value, target=NAME")
    b.add_argument("-m", "--multirun", action="store_true", help="sweep: comma-separated values run every combination")
    b.add_argument("-j", "--jobs", type=int, default=1, help="rules run in parallel")
    b.add_argument("-n", "--dry-run", action="store_true", help="print what would run and why; change nothing")
    b.add_argument("--explain", action="store_true", help="print why each rule ran")
    b.add_argument("--build-dir", type=Path, default=None, help="outputs folder (default: build/<recipe name>)")
    _sweep_options(b)
    _common(b)

    g = sub.add_parser("graph", help="print the rule DAG")
    g.add_argument("recipe", nargs="?", help="recipe (rules it skips are marked)")
    g.add_argument("overrides", nargs="*")
    g.add_argument("--format", choices=("dot", "mermaid"), default="dot")
    _common(g)

    s = sub.add_parser("schema", help="print the JSON schema of recipes or targets")
    s.add_argument("which", nargs="?", choices=("recipe", "target"), default="recipe")
    s.add_argument("--debug", action="store_true")

    c = sub.add_parser("gc", help="remove cache entries no build references")
    _common(c)

    t = sub.add_parser("targets", help="list the boards and whether their tools are installed")
    t.add_argument("--debug", action="store_true")

    f = sub.add_parser("flash", help="build, then flash the firmware with avrdude")
    f.add_argument("recipe")
    f.add_argument("overrides", nargs="*")
    f.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    f.add_argument("--programmer", default=None, help="avrdude programmer id (default: the target's)")
    f.add_argument("--print", dest="print_only", action="store_true", help="print the avrdude command only")
    _common(f)

    e = sub.add_parser("export", help="build, then write an Arduino library")
    e.add_argument("recipe")
    e.add_argument("overrides", nargs="*")
    e.add_argument("--arduino", type=Path, required=True, help="destination folder of the library")
    _common(e)

    tu = sub.add_parser("tune", help="Optuna search over overrides, maximising accuracy within the budgets")
    tu.add_argument("recipe")
    tu.add_argument("overrides", nargs="*",
                    help="search space and fixed overrides: key=interval(lo,hi), key=range(a,b), "
                         "key=choice(x,y), key=v")
    tu.add_argument("--trials", type=int, default=10, help="points to build (default 10)")
    tu.add_argument("--seed", type=int, default=0, help="seed of Optuna's TPE sampler")
    tu.add_argument("-j", "--jobs", type=int, default=1, help="rules run in parallel within a point")
    tu.add_argument("--build-dir", type=Path, default=None, help="outputs folder (default: build/<recipe name>)")
    _sweep_options(tu)
    _common(tu)

    fl = sub.add_parser("fleet", help="assign models to a fleet of boards and build each node's firmware")
    fl.add_argument("fleet", type=Path, help="fleet YAML, e.g. fleets/example.yaml")
    fl.add_argument("--build-root", type=Path, default=Path("build"),
                    help="outputs go to BUILD_ROOT/fleet-<name>/ (default: build)")
    _common(fl)

    se = sub.add_parser("search", help="one search for several boards (recipe's search section), then a "
                                       "verified build of each board's model")
    se.add_argument("recipe", help="recipe YAML with a search section, e.g. recipes/mnist_multi.yaml")
    se.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. search.method=nas")
    se.add_argument("--build-dir", type=Path, default=None, help="outputs folder (default: build/<recipe name>)")
    _common(se)
    return top


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; overrides may also follow options (`RECIPE -m a=1,2 b=x`)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and (not hasattr(args, "overrides") or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "build")
    args = _parse(argv)
    if args.command is None:
        _parser().print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except EdgebuildError as e:
        if getattr(args, "debug", False):
            import traceback
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------- helpers
# The commands are thin: every build goes through the public API (edgebuild/api.py) and its one
# build path (edgebuild/driver.py). Nothing else imports this module.

def _opts(args) -> dict:
    return {"cache": args.cache, "pipeline": args.pipeline}


def _load(args, overrides=None) -> dict:
    from edgebuild.api import load_recipe

    return load_recipe(args.recipe, list(args.overrides if overrides is None else overrides), cache=args.cache)


def _summary(build_dir: Path) -> None:
    path = build_dir / "report.json"
    if not path.exists():
        return
    r = json.loads(path.read_text())
    acc, mem, lat, ver = r.get("accuracy", {}), r.get("memory", {}), r.get("latency", {}), r.get("verify", {})

    def pct(v):
        return "—" if v is None else f"{100 * v:.1f}%"

    task = r.get("task") or {}
    score = (f"accuracy float {pct(acc.get('float'))}, int8 {pct(acc.get('int8_host'))}, "
             f"device {pct(acc.get('device'))} on {acc.get('samples')} samples") if task.get("metric") != "mse" else (
        f"{task.get('kind')} MSE float {task.get('float_mse'):.5g}, int8 {task.get('int8_host_mse'):.5g}, "
        f"device {task.get('device_mse'):.5g} on {task.get('samples')} samples")
    lines = [
        f"{r.get('recipe')} on {r.get('target')}: {score}",
        f"  flash {mem.get('flash_bytes')}/{mem.get('flash_limit')} B, SRAM peak {mem.get('sram_peak_bytes')}/"
        f"{mem.get('sram_limit')} B, EEPROM {mem.get('eeprom_bytes')}/{mem.get('eeprom_limit')} B",
        (f"  {round(lat['cycles']):,} cycles/inference" if lat.get("cycles") else
         f"  {round(lat['instructions']):,} instructions/inference" if lat.get("instructions") else "  no timing")
        + (f" ({lat['ms']:.2f} ms)" if lat.get("ms") else "")
        + f", bit-exact {ver.get('bit_exact')}/{ver.get('samples')}",
        f"  report: {build_dir / 'report.html'}",
    ]
    print("\n".join(lines), file=sys.stderr)


# --------------------------------------------------------------------------------------- commands

def cmd_build(args) -> int:
    from edgebuild import api

    if args.multirun:
        return _multirun(args)
    if args.parallel != 1 or args.launcher or args.ray_address:
        raise EdgebuildError("-P, --launcher and --ray-address run sweep points", field="-m",
                             fix="add -m to sweep, e.g. edgebuild RECIPE -m target=uno,host -P 2")
    config = _load(args)
    if config.get("search") and not (args.dry_run or args.explain):
        print(f"{args.recipe} has a search section: running `edgebuild search`", file=sys.stderr)
        return cmd_search(args)
    build_dir = args.build_dir or Path("build") / config["name"]
    report = api.build(config, build_dir=build_dir, jobs=args.jobs, dry_run=args.dry_run, explain=args.explain,
                       check_budget=False, debug=args.debug, **_opts(args))
    if report is not None:
        _summary(build_dir)
        api.check_measured(report, recipe=args.recipe)
    return 0


def _multirun(args, trials: int | None = None) -> int:
    """Sweep (or, with ``trials``, an Optuna search): `edgebuild.sweep`; ends with
    build/<recipe>/sweep.{csv,json,html} and exit 2 when a point failed."""
    from edgebuild import api

    if getattr(args, "dry_run", False):
        raise EdgebuildError("--dry-run does not combine with -m", field="--dry-run",
                             fix="dry-run one point at a time: edgebuild RECIPE key=value --dry-run")
    result = api.sweep(args.recipe, args.overrides, jobs=args.jobs, parallel=args.parallel, launcher=args.launcher,
                       ray_address=args.ray_address, build_dir=args.build_dir,
                       explain=getattr(args, "explain", False), trials=trials, seed=getattr(args, "seed", 0),
                       **_opts(args))
    rows = result.rows
    print(f"sweep: {len(rows) - len(result.failed)} of {len(rows)} points built; summary: {result.paths['html']}",
          file=sys.stderr)
    if trials is not None:
        return _print_best(result.best())
    return 0 if rows and not result.failed else 2


def _print_best(best: dict | None) -> int:
    if best is None:
        print("tune: no point built within the budgets", file=sys.stderr)
        return 2
    flash = "—" if best["flash_bytes"] is None else f"{best['flash_bytes']:,} B"
    print(f"best: {' '.join(best['overrides']) or '(defaults)'}: accuracy {100 * best['accuracy']:.1f}%, "
          f"flash {flash} ({best['point']})")
    return 0


def cmd_tune(args) -> int:
    if args.trials < 1:
        raise EdgebuildError("--trials must be at least 1", field="--trials", fix="e.g. --trials 20")
    return _multirun(args, trials=args.trials)


def cmd_graph(args) -> int:
    from edgebuild.engine import load_pipeline

    from edgebuild.driver import DEFAULT_PIPELINE

    pipe = load_pipeline(args.pipeline or DEFAULT_PIPELINE)
    print(pipe.to_dot() if args.format == "dot" else pipe.to_mermaid())
    return 0


def cmd_schema(args) -> int:
    if args.which == "recipe":
        from edgebuild.recipe import Recipe as model
    else:
        from edgebuild.targets import Target as model
    print(json.dumps(model.model_json_schema(), indent=2))
    return 0


def cmd_gc(args) -> int:
    from edgebuild.driver import engine

    stats = engine(**_opts(args)).gc()
    print(", ".join(f"{k}: {v}" for k, v in stats.items()))
    return 0


def cmd_targets(args) -> int:
    import yaml

    from edgebuild.config import REPO_ROOT

    for path in sorted((REPO_ROOT / "targets").glob("*.yaml")):
        t = yaml.safe_load(path.read_text())
        mems = ", ".join(f"{m} {spec['size']:,} B" for m, spec in t.get("memories", {}).items())
        cc = t.get("toolchain", {}).get("cc")
        sim = t.get("simulator", {}).get("kind")
        sim_tool = {"simavr": "simavr", "qemu": "qemu-system-arm"}.get(sim)
        have_cc = "yes" if cc and shutil.which(cc) else "no"
        have_sim = "n/a" if sim_tool is None else ("yes" if shutil.which(sim_tool) else "no")
        print(f"{t['name']:<10} {t.get('mcu', ''):<12} {mems}")
        print(f"{'':<10} toolchain {cc}: {have_cc}; simulator {sim}: {have_sim}")
    return 0


def _partial_build(args, upto: str) -> tuple[dict, Path]:
    """Build the recipe up to the rule ``upto`` (and what it needs); its config and build folder."""
    from edgebuild.driver import run_config

    config = _load(args)
    build_dir = Path("build") / config["name"]
    run_config(config, label=config["name"], build_dir=build_dir, only=[upto], debug=args.debug, **_opts(args))
    return config, build_dir


def _firmware_build(args) -> tuple[dict, Path]:
    config, build_dir = _partial_build(args, "firmware")
    return config, build_dir / "firmware"


def cmd_flash(args) -> int:
    from edgebuild.firmware.flash import avrdude_command, flash

    config, fw = _firmware_build(args)
    info = json.loads((fw / "firmware.json").read_text())
    hex_path = fw / info["hex"]
    eep = fw / info["eep"] if info.get("eep") else None
    cmd = avrdude_command(config["target"], hex_path, port=args.port, eep=eep, programmer=args.programmer)
    if args.print_only:
        import shlex
        print(shlex.join(cmd))
        return 0
    flash(config["target"], hex_path, port=args.port, eep=eep, programmer=args.programmer)
    return 0


def cmd_export(args) -> int:
    from edgebuild import __version__
    from edgebuild.firmware.flash import export_arduino

    config, build_dir = _partial_build(args, "codegen")
    sources = sorted(p for p in (build_dir / "codegen").rglob("*") if p.is_file())
    dest = export_arduino(sources, args.arduino, name=f"edgebuild_{config['name']}", version=__version__,
                          target=config["target"])
    print(dest)
    return 0


def cmd_fleet(args) -> int:
    from edgebuild.fleet.run import run_fleet

    run_fleet(args.fleet, cache_dir=args.cache, pipeline=args.pipeline, out_root=args.build_root,
              debug=args.debug)
    return 0


def cmd_search(args) -> int:
    from edgebuild.search.run import run_search

    run_search(args.recipe, list(args.overrides), build_dir=args.build_dir, debug=args.debug, **_opts(args))
    return 0


_COMMANDS = {"build": cmd_build, "graph": cmd_graph, "schema": cmd_schema, "gc": cmd_gc,
             "targets": cmd_targets, "flash": cmd_flash, "export": cmd_export, "tune": cmd_tune,
             "fleet": cmd_fleet, "search": cmd_search}

if __name__ == "__main__":
    sys.exit(main())
