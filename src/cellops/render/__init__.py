"""Revision + cell -> the desired state of each service there, with a stable content hash.

Pure: no I/O.
"""

from cellops.render.desired import DesiredCell, DesiredFleet, DesiredService
from cellops.render.render import render

__all__ = ["DesiredCell", "DesiredFleet", "DesiredService", "render"]
