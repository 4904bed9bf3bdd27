"""Change sets + rollout policy -> ordered waves of cells.

Pure: no I/O.
"""

from cellops.plan.planner import Plan, PlannedCell, Skipped, Wave, plan

__all__ = ["Plan", "PlannedCell", "Skipped", "Wave", "plan"]
