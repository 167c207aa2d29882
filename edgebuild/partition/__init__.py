"""Edge-device partitioning: run the head of a model on the board and the tail on a server.

- ``costs_from_graph`` / ``CostGraph`` / ``Layer`` / ``Link``: the stage-independent cost input;
  ``costs_from_qmodel`` builds it from an int8 QModel (one layer per fused layer).
- ``solve``: Neurosurgeon (chains, exhaustive) or DADS min-cut (DAGs), under memory and energy
  budgets; ``split_at`` for a fixed split; ``evaluate`` for the breakdown of any device set;
  ``plan_for`` for a recipe's ``partition`` section (mode none / at / auto).
- ``build_table`` / ``AdaptiveTable``: precomputed splits over bandwidth x energy x SRAM with an
  O(log n) ``lookup`` and a C form (``to_c``).
- ``encode_frame`` / ``decode_frame``: the CRC-32 framed wire format of a cut tensor.
"""

from .costs import CostGraph, Layer, Link, costs_from_graph
from .frame import decode_frame, encode_frame
from .plan import Plan, evaluate
from .qcosts import costs_from_qmodel
from .solve import candidates, plan_for, solve, split_at
from .table import AdaptiveTable, build_table

__all__ = ["AdaptiveTable", "CostGraph", "Layer", "Link", "Plan", "build_table", "candidates",
           "costs_from_graph", "costs_from_qmodel", "decode_frame", "encode_frame", "evaluate", "plan_for",
           "solve", "split_at"]
