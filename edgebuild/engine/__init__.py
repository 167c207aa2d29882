"""A content-keyed rule DAG runner: the build engine of edgebuild.

It knows nothing about neural networks. ``load_pipeline`` reads ``rules/pipeline.yaml`` into a
validated :class:`Pipeline`; :class:`Engine` builds it against a cache directory, reusing
outputs whose key (code, params, file contents, input output hashes) is unchanged.
"""

from edgebuild.engine.engine import Engine
from edgebuild.engine.pipeline import Pipeline, RuleSpec, load_pipeline
from edgebuild.engine.results import BuildResult, RuleContext, RuleResult

__all__ = ["load_pipeline", "Pipeline", "RuleSpec", "Engine", "BuildResult", "RuleResult",
           "RuleContext"]
