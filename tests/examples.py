"""How many examples a property test tries: all of them in `make suite`, a quarter in the
fast tier (`make unit` sets CELLOPS_FAST_TIER), where a minute is the budget."""

from __future__ import annotations

import os


def examples(count: int) -> int:
    return max(20, count // 4) if os.environ.get("CELLOPS_FAST_TIER") else count
