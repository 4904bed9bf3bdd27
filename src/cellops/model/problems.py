"""Problems found in a revision, each pointing at a file, a line and a field.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong (or suspicious) in a revision.

    `line` is 1-based, or None when the problem is about a file as a whole that has no
    meaningful line (a symlink, a file that is too large).
    """

    file: str
    line: int | None
    field: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        prefix = "" if self.severity is Severity.ERROR else "warning: "
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {prefix}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "severity": str(self.severity),
        }


def errors_of(problems: tuple[Problem, ...] | list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity is Severity.ERROR]
