"""Child process for the engine's crash and concurrency tests.

usage: python engine_child.py PIPELINE CACHE CONFIG_JSON LABEL
Prints {"ok": bool, "status": {rule: status}} as JSON on stdout; exit code 0 when ok.
"""

import json
import sys
from pathlib import Path

from edgebuild.engine import Engine, load_pipeline


def main() -> int:
    pipeline, cache, config, label = sys.argv[1:5]
    engine = Engine(load_pipeline(Path(pipeline)), cache_dir=Path(cache), jobs=2)
    res = engine.build(json.loads(config), label=label)
    print(json.dumps({"ok": res.ok, "status": {n: r.status for n, r in res.rules.items()}}))
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
