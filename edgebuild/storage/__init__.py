"""Storage layout: which medium holds each weight, and where each activation lives in SRAM.

``plan_memory`` is the entry point; see :mod:`edgebuild.storage.plan` for the policies and
:mod:`edgebuild.storage.arena` for the activation arena planner.
"""

from edgebuild.storage.arena import ArenaPlan, Buffer, lower_bound, plan_arena
from edgebuild.storage.plan import POLICIES, MemoryPlan, Placement, plan_memory

__all__ = ["ArenaPlan", "Buffer", "MemoryPlan", "POLICIES", "Placement", "lower_bound",
           "plan_arena", "plan_memory"]
