"""Ordered health statuses and their assessment.

Pure: no I/O.
"""

from cellops.health.status import Health, worst

__all__ = ["Health", "worst"]
