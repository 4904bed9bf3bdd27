"""Which cells a selector picks, answered from a label index (fast for thousands of cells).

Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping

from cellops.spec.base import CellSelector
from cellops.spec.cell import CellDocument


class CellIndex:
    def __init__(self, cells: Mapping[str, CellDocument]) -> None:
        self.all: frozenset[str] = frozenset(cells)
        by_label: dict[tuple[str, str], set[str]] = defaultdict(set)
        for name, cell in cells.items():
            for key, value in cell.metadata.labels.items():
                by_label[(key, value)].add(name)
        self._by_label = {key: frozenset(names) for key, names in by_label.items()}
        self._ordered = sorted(self.all)

    def ordered(self, cells: Collection[str]) -> list[str]:
        """`cells` (all in the index) in name order, without sorting them one by one."""
        if len(cells) == len(self._ordered):
            return list(self._ordered)
        if 4 * len(cells) >= len(self._ordered):
            return list(filter(cells.__contains__, self._ordered))
        return sorted(cells)

    def select(self, selector: CellSelector) -> frozenset[str]:
        return self.match_labels(selector.selector, selector.names)

    def match_labels(
        self, labels: Mapping[str, str], names: list[str] | None = None
    ) -> frozenset[str]:
        found = self.all if not names else self.all & frozenset(names)
        for item in sorted(labels.items(), key=lambda kv: len(self._by_label.get(kv, ()))):
            found = found & self._by_label.get(item, frozenset())
            if not found:
                break
        return found
