"""One build: the rebuilder (decide and run one rule) and the scheduler (order, parallelism).

The rebuilder computes a rule's key from its action code, params, file contents and the output
hashes of its inputs, then either reuses the cached outputs or runs the action into a fresh
directory and stores the result. Because keys use input *output* hashes, a rule whose upstream
rebuilt to identical bytes hits the cache: early cutoff.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import threading
import time
from pathlib import Path

from edgebuild.engine import explain
from edgebuild.engine.hashing import CodeHasher, FileHasher, canonical_json, sha256_text
from edgebuild.engine.publish import publish
from edgebuild.engine.results import BuildResult, RuleContext, RuleResult
from edgebuild.errors import ConfigError

KEY_FORMAT = 2                      # bump when the key recipe below or the object format changes
                                    # (2: executable bits are kept and part of an output's identity)
_IMPORT_LOCK = threading.Lock()
_LOADED_CODE: dict[str, str] = {}   # module -> hash of its source when this process loaded it


def resolve(config: object, dotted: str) -> object:
    """Value at ``a.b.c`` in nested mappings/lists; None when any step is missing."""
    value = config
    for part in dotted.split("."):
        if hasattr(value, "keys") and hasattr(value, "get"):      # dict or DictConfig
            value = value.get(part)
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


class Build:
    """State of one ``Engine.build`` call."""

    def __init__(self, engine, config: dict, *, label: str, build_dir: Path | None,
                 dry_run: bool, explain_: bool, only: list[str] | None, reporter):
        self.pipe = engine.pipeline
        self.cache = engine.cache
        self.jobs = max(1, int(engine.jobs))
        self.config = config
        self.label = label
        self.build_dir = Path(build_dir) if build_dir is not None else None
        self.dry_run = dry_run
        self.explain = explain_
        self.names = self.pipe.closure(list(only)) if only else self.pipe.default_rules()
        self.reporter = reporter
        self.where = str(self.pipe.path or "pipeline")
        self.code = CodeHasher()
        self.files = FileHasher(self.cache.stat_file)
        self.prev = (self.cache.read_trace(label) or {}).get("rules", {})
        self.results: dict[str, RuleResult] = {}
        self.entries: dict[str, dict] = {}
        self.records: dict[str, dict] = {}
        self.verified: dict[str, str | None] = {}
        self.error: BaseException | None = None
        self.failed_rule: str | None = None

    # -- scheduler -----------------------------------------------------------------------
    def run(self) -> BuildResult:
        """Build the selected rules in dependency order, ``jobs`` at a time."""
        started = time.perf_counter()
        importlib.invalidate_caches()
        if self.jobs == 1:
            for name in self.names:
                if self.process(name).status == "failed":
                    break
        else:
            self._run_parallel()
        ok = self.error is None
        if not self.dry_run:
            ok = self._finish(ok)
        return BuildResult(ok=ok, rules=self.results, error=self.error,
                           failed_rule=self.failed_rule, label=self.label,
                           seconds=time.perf_counter() - started)

    def _run_parallel(self) -> None:
        import graphlib
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        selected = set(self.names)
        sorter = graphlib.TopologicalSorter(
            {n: sorted(self.pipe.rules[n].deps() & selected) for n in self.names})
        sorter.prepare()
        running = {}
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            while sorter.is_active():
                if self.error is None:
                    for name in sorter.get_ready():
                        running[pool.submit(self.process, name)] = name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    sorter.done(running.pop(fut))
                    fut.result()            # re-raise KeyboardInterrupt & co. from a worker

    def _finish(self, ok: bool) -> bool:
        """Store the trace, the stat cache and (on success) publish outputs."""
        try:
            self.files.save(self.cache.write_json)
            self._write_trace(ok)
            if ok and self.build_dir is not None:
                for name in self.names:
                    record = self.records.get(name)
                    if self.pipe.rules[name].publish and record is not None:
                        publish(self.cache.object_dir(record["output_hash"]), record["files"],
                                self.build_dir / name)
        except OSError as exc:
            self.error = exc
            return False
        return ok

    def _write_trace(self, ok: bool) -> None:
        rules = {n: e for n, e in self.prev.items() if n in self.pipe.rules}
        for name, result in self.results.items():
            if result.status != "failed":
                rules[name] = dict(self.entries[name], status=result.status,
                                   seconds=round(result.seconds, 4), why=result.why)
        self.cache.write_json(self.cache.trace_path(self.label),
                              {"label": self.label, "time": time.time(), "ok": ok,
                               "rules": rules})

    # -- rebuilder -----------------------------------------------------------------------
    def process(self, name: str) -> RuleResult:
        """Decide and (if needed) run one rule; never raises, failures are recorded."""
        t0 = time.perf_counter()
        try:
            result = self._process(self.pipe.rules[name])
        except (Exception, SystemExit) as exc:  # any action failure becomes a failed rule
            first_line = (str(exc) or type(exc).__name__).splitlines()[0]
            result = RuleResult(name, "failed", why=[first_line])
            if self.error is None:
                self.error, self.failed_rule = exc, name
        result.seconds = time.perf_counter() - t0
        self.results[name] = result
        show_why = self.explain or result.status in ("would-run", "failed")
        self.reporter.finish(result.status, name, result.seconds,
                             result.why if show_why else [])
        return result

    def _process(self, spec) -> RuleResult:
        name = spec.name
        if spec.when and not self._when(spec.when):
            self.entries[name] = {"key": None}
            return RuleResult(name, "skipped", why=[f"when {spec.when} is false"])
        inputs, input_dirs, pending, upstream_ran = self._inputs(spec)
        params = self._params(spec)
        files, file_paths = self._files(spec)
        entry = {"action": spec.action, "version": spec.version, "code": self._code(spec),
                 "params": params, "files": files, "inputs": inputs}
        prev = self.prev.get(name)
        if pending:
            return RuleResult(name, "would-run",
                              why=explain.reasons(prev, entry, pending_inputs=tuple(pending)))
        key = sha256_text(canonical_json({
            "format": KEY_FORMAT, "rule": name, "action": spec.action, "version": spec.version,
            "code": entry["code"], "params": params, "inputs": inputs,
            "files": {k: (v["sha"] if isinstance(v, dict) else [f["sha"] for f in v])
                      if v is not None else None for k, v in files.items()}}))
        entry["key"] = key
        self.entries[name] = entry
        record, problem = self._lookup(key, name)
        if record is not None:
            if upstream_ran:
                why = [f"input {', '.join(upstream_ran)} rebuilt with identical output"]
                return self._hit(name, "cutoff", key, record, why)
            return self._hit(name, "cached", key, record, [])
        why = explain.reasons(prev, entry)
        if problem:
            why.insert(0, f"cache entry corrupted ({problem})")
        elif not why:
            why = ["not in cache"]
        if self.dry_run:
            return RuleResult(name, "would-run", key=key, why=why)
        record, fresh = self._run(spec, key, params, file_paths, input_dirs)
        return self._hit(name, "ran" if fresh else "cached", key, record, why if fresh else [])

    def _hit(self, name: str, status: str, key: str, record: dict, why: list[str]) -> RuleResult:
        self.records[name] = record
        return RuleResult(name, status, key=key, why=why,
                          output_dir=self.cache.object_dir(record["output_hash"]),
                          output_hash=record["output_hash"])

    def _when(self, condition: str) -> bool:
        negate = condition.startswith("!")
        return bool(resolve(self.config, condition.lstrip("!"))) != negate

    def _inputs(self, spec):
        inputs, dirs, pending, upstream_ran = {}, {}, [], []
        for local, (up, optional) in sorted(spec.input_rules().items()):
            result = self.results[up]
            if result.status == "skipped":
                if optional:
                    continue
                raise ConfigError(
                    f"rule '{spec.name}' needs input '{local}' from rule '{up}', which is "
                    f"skipped (when: {self.pipe.rules[up].when})", file=self.where,
                    field=f"rules.{spec.name}.inputs.{local}",
                    fix=f"make the input optional ('{up}?') or change the config so '{up}' runs")
            if result.output_hash is None:
                pending.append(local)
                continue
            inputs[local] = result.output_hash
            dirs[local] = result.output_dir
            if result.status == "ran":
                upstream_ran.append(local)
        return inputs, dirs, pending, upstream_ran

    def _params(self, spec) -> dict:
        params = {local: resolve(self.config, dotted) for local, dotted in spec.params.items()}
        try:
            return json.loads(canonical_json(params))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"rule '{spec.name}': a param value cannot be hashed ({exc})",
                              file=self.where, field=f"rules.{spec.name}.params",
                              fix="params must be plain data: numbers, strings, lists, mappings"
                              ) from None

    def _files(self, spec):
        hashed, paths = {}, {}
        for local, dotted in spec.files.items():
            value = resolve(self.config, dotted)
            if value is None:
                hashed[local], paths[local] = None, None
            elif isinstance(value, (str, Path)):
                paths[local] = Path(value)
                hashed[local] = self._file_entry(spec, dotted, Path(value))
            elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, Path))
                                                          for v in value):
                paths[local] = [Path(v) for v in value]
                hashed[local] = [self._file_entry(spec, dotted, p) for p in paths[local]]
            else:
                raise ConfigError(
                    f"rule '{spec.name}': config value '{dotted}' must be a path or a list of "
                    f"paths, got {type(value).__name__}", file=self.where,
                    field=f"rules.{spec.name}.files.{local}",
                    fix=f"set '{dotted}' to a file or directory path in the recipe")
        return hashed, paths

    def _file_entry(self, spec, dotted: str, path: Path) -> dict:
        try:
            return {"path": str(path), "sha": self.files.hash_path(path)}
        except FileNotFoundError:
            raise ConfigError(f"file '{path}' (needed by rule '{spec.name}') does not exist",
                              file=str(path), field=dotted,
                              fix=f"set '{dotted}' to an existing file or directory") from None

    def _code(self, spec) -> dict:
        try:
            code = {spec.module: self.code.module_hash(spec.module, whole_package=False)}
        except LookupError as exc:
            raise ConfigError(f"rule '{spec.name}': {exc}", file=self.where,
                              field=f"rules.{spec.name}.action",
                              fix="check the module name and that it is importable") from None
        for entry in spec.code:
            try:
                code[entry] = self.code.module_hash(entry, whole_package=True)
            except LookupError as exc:
                raise ConfigError(f"rule '{spec.name}': {exc}", file=self.where,
                                  field=f"rules.{spec.name}.code",
                                  fix="list importable modules or packages") from None
        return code

    def _lookup(self, key: str, name: str, *, fresh: bool = False, quiet: bool = False):
        """``(record, None)`` for an intact cache entry, ``(None, problem)`` for a damaged one
        (reported), ``(None, None)`` when absent."""
        try:
            record = self.cache.read_action(key)
        except (OSError, ValueError) as exc:
            record, problem = None, f"unreadable action record: {exc}"
        else:
            if record is None:
                return None, None
            ohash = record["output_hash"]
            if fresh or ohash not in self.verified:
                self.verified[ohash] = self.cache.verify(record)
            problem = self.verified[ohash]
            if problem is None:
                return record, None
        if not quiet:
            self.reporter.warn(f"cache entry of rule '{name}' is corrupted: {problem}; "
                               + ("it would be rebuilt" if self.dry_run else "rebuilding it"))
        return None, problem

    def _run(self, spec, key: str, params: dict, file_paths: dict, input_dirs: dict):
        """Run the action under the key's lock; returns ``(record, ran)``."""
        from filelock import Timeout

        lock = self.cache.lock(key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.reporter.start(spec.name)
            self.reporter.progress(spec.name, "waiting for another build")
            lock.acquire()
        try:
            record, problem = self._lookup(key, spec.name, fresh=True, quiet=True)
            if record is not None:           # another build stored it while we waited
                return record, False
            if problem:
                self.cache.discard(key, self._raw_record(key))
            self.reporter.start(spec.name)
            work = self.cache.new_workdir()
            try:
                out, scratch = work / "out", work / "scratch"
                out.mkdir()
                scratch.mkdir()
                action = _load_action(spec, self.entries[spec.name]["code"][spec.module],
                                      self.where)
                action(RuleContext(name=spec.name, params=json.loads(canonical_json(params)),
                                   files=file_paths, inputs=dict(input_dirs), out=out,
                                   tmp=scratch, _reporter=self.reporter))
                record = self.cache.store(key, spec.name, out)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            self.verified[record["output_hash"]] = None
            return record, True
        finally:
            lock.release()

    def _raw_record(self, key: str) -> dict | None:
        try:
            return self.cache.read_action(key)
        except (OSError, ValueError):
            return None


def _load_action(spec, code_hash: str, where: str):
    """Import the action's module (reloading it if its source changed since this process
    imported it) and return the function."""
    with _IMPORT_LOCK:
        module = sys.modules.get(spec.module)
        try:
            if module is None:
                module = importlib.import_module(spec.module)
            elif _LOADED_CODE.get(spec.module, code_hash) != code_hash:
                module = importlib.reload(module)
        except ModuleNotFoundError as exc:
            if exc.name != spec.module:
                raise
            raise ConfigError(f"rule '{spec.name}': module '{spec.module}' not found",
                              file=where, field=f"rules.{spec.name}.action",
                              fix="check the module name") from None
        _LOADED_CODE[spec.module] = code_hash
    function = getattr(module, spec.function, None)
    if not callable(function):
        raise ConfigError(f"rule '{spec.name}': module '{spec.module}' has no function "
                          f"'{spec.function}'", file=where, field=f"rules.{spec.name}.action",
                          fix=f"define '{spec.function}(ctx)' in {spec.module} or fix the name")
    return function
