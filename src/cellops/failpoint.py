"""Fail points: a process that kills itself (SIGKILL) at an exact point, for the fault bench.

The controller calls `hit(name)` right after each side effect it must survive losing the
rest of its work after: a store transaction committed (`store.commit`), a local cell's
desired state written (`apply.local`), a Kubernetes object applied or pruned
(`apply.k8s`). With the environment variable

    CELLOPS_FAILPOINT=<name>:<n>[+<m>]    e.g. store.commit:12, *:40, apply.local:2+1

the n-th hit of that point (counting from 1; `*` counts every point), or with `+m` the
m-th point of any kind passed after it, sends the process SIGKILL: no handler, no
`finally`, no flush, exactly what a crash or an OOM kill leaves. (`+m` reaches points a
count from the start cannot: those after an apply, when a varying number of commits
came before it.)
`CELLOPS_FAILPOINT_TRACE=<file>` appends one line per hit (`<n> <name> <time>`), which is
how the bench learns how many points a rollout passes.

Both variables are read once, at import, and removed from the environment, so the
processes the controller starts (cell agents, `kubectl`) neither inherit nor obey them.
Unset, `hit` is one comparison with None: nothing else runs.
"""

from __future__ import annotations

import os
import signal
import time

ANY = "*"
VARIABLE = "CELLOPS_FAILPOINT"
TRACE_VARIABLE = "CELLOPS_FAILPOINT_TRACE"


class FailPoint:
    """Counts hits; kills the process at the chosen one, and writes the trace if asked."""

    def __init__(self, target: str | None, at: int, trace: str | None, then: int = 0) -> None:
        self.target = target
        self.at = at
        self.then = then  # points to pass after the target's n-th hit
        self.trace = trace
        self.passed = 0  # every point
        self.hits = 0  # the target's
        self.after: int | None = None  # points passed since the target's n-th hit

    def hit(self, name: str) -> None:
        self.passed += 1
        if self.trace:
            with open(self.trace, "a") as out:
                out.write(f"{self.passed} {name} {time.time():.6f}\n")
        if self.after is not None:
            self.after += 1
        elif self.target in (ANY, name):
            self.hits += 1
            if self.hits == self.at:
                self.after = 0
        if self.after == self.then:
            os.kill(os.getpid(), signal.SIGKILL)


def parse(spec: str | None, trace: str | None) -> FailPoint | None:
    """The fail point `spec` (`<name>:<n>[+<m>]`, n >= 1) names; None when nothing is
    asked."""
    if not spec and not trace:
        return None
    if not spec:
        return FailPoint(None, 0, trace)
    name, sep, count = spec.rpartition(":")
    count, plus, then = count.partition("+")
    if (
        not sep
        or not name
        or not count.isdigit()
        or int(count) < 1
        or (plus and not then.isdigit())
    ):
        raise ValueError(
            f"{VARIABLE}={spec!r}: expected <point>:<n>[+<m>] with n >= 1,"
            " e.g. store.commit:3, *:10 or apply.local:2+1"
        )
    return FailPoint(name, int(count), trace, int(then or 0))


_POINT = parse(os.environ.pop(VARIABLE, None), os.environ.pop(TRACE_VARIABLE, None))


def hit(name: str) -> None:
    """The process passed point `name`; it dies here if the fail point says so."""
    if _POINT is not None:
        _POINT.hit(name)
