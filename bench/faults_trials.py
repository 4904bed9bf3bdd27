"""One fault trial: release, kill the controller (SIGKILL) at a fail point or at a random
moment, start a clean controller, wait until the fleet has settled, check the invariants
(`faults_checks.py`), and put the fleet back at rest for the next trial."""

from __future__ import annotations

import random
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.controller_harness import Crash, Fleet, wait_for

from cellops.failpoint import TRACE_VARIABLE, VARIABLE
from cellops.store.records import RolloutState
from faults_checks import Before, Expect, look_before, violations

APPLY = "apply.local"
SETTLE = 45.0  # seconds a clean controller gets to settle the fleet (progressDeadline 20 s)


@dataclass(frozen=True)
class Scenario:
    name: str
    service: str  # the service released
    crash: Crash  # False: a good release; True: crashes everywhere; cells: crashes there
    state: RolloutState  # how its rollout must end
    after: str | None = None  # fail points from the commit of this event on (None: all)


@dataclass
class Calibration:
    """A run of the scenario without a kill: the fail points it passed in order, where the
    targeted ones start (1-based), and how long it took."""

    points: list[str]
    first: int
    seconds: float

    def target(self, index: int, n: int, rng: random.Random) -> str:
        """The fail point of trial `index` of `n`. Even trials: the m-th point after a cell
        apply of the targeted span (`apply.local:<j>+<m>`, m < 4: exact whatever number
        of commits came before); odd ones: the k-th point of any kind, k spread over the
        span (the count before it varies a little from run to run)."""
        span = range(self.first - 1, len(self.points))
        anchors = [i for i in span if self.points[i] == APPLY]
        if index % 2 == 0 and anchors:
            turn = index // 2
            at = anchors[turn % len(anchors)]
            room = min(4, len(self.points) - at)
            then = (turn // len(anchors)) % room
            return f"{APPLY}:{self.points[: at + 1].count(APPLY)}+{then}"
        k = self.first + min(len(span) - 1, int((index + rng.random()) * len(span) / n))
        return f"*:{k}"


@dataclass
class Outcome:
    scenario: str
    kills: list[tuple[str, str]] = field(default_factory=list)  # (fail point, moment)
    violations: list[str] = field(default_factory=list)
    recovery: float | None = None  # clean start -> settled, seconds
    note: str = ""
    calibration: bool = False


class Trials:
    def __init__(self, fleet: Fleet, work: Path, seed: int) -> None:
        self.fleet = fleet
        self.work = work
        self.rng = random.Random(seed)
        self.count = 0

    # -- a trial --------------------------------------------------------------------------
    def calibrate(self, scenario: Scenario) -> tuple[Calibration, Outcome]:
        revision, expect, before = self._release(scenario, "cal")
        trace = self._trace()
        started = time.monotonic()
        self.fleet.start(wait=False, env={TRACE_VARIABLE: str(trace)})
        outcome = Outcome(scenario.name, note="calibration: no kill", calibration=True)
        outcome.violations = self._settle(revision, expect, before)
        seconds = time.monotonic() - started
        outcome.recovery = seconds
        hits = _read_trace(trace)
        first = 1
        rollout = self.fleet.rollout_of(revision)
        if scenario.after is not None and rollout is not None:
            moments = [e.at for e in self.fleet.events(rollout=rollout.id, kind=scenario.after)]
            if moments:
                first = next((n for n, _, at in hits if at >= min(moments)), len(hits))
        self._restore(scenario)
        return Calibration([name for _, name, _ in hits], first, seconds), outcome

    def at_point(self, scenario: Scenario, point: str) -> Outcome:
        """Kill at a fail point (`<name>:<n>`, counted from the controller's start)."""
        revision, expect, before = self._release(scenario, "p")
        trace = self._trace()
        outcome = Outcome(scenario.name, note=point)
        self.fleet.start(wait=False, env={VARIABLE: point, TRACE_VARIABLE: str(trace)})
        status = self._killed_or_settled(revision, expect, before)
        if status == -signal.SIGKILL:
            hits = _read_trace(trace)
            point = hits[-1][1] if hits else "?"
            outcome.kills.append((point, moment(self.fleet, revision)))
        else:  # this run passed fewer points than the calibration did
            self.fleet.stop_controller()
            outcome.note += ": not reached"
        if status not in (None, -signal.SIGKILL):
            died = f"controller exit {status}: {self.fleet.controller_log(10)}"
            return Outcome(scenario.name, note=point, violations=[died])
        return self._recover(scenario, revision, expect, before, outcome)

    def _killed_or_settled(self, revision: str, expect: Expect, before: Before) -> int | None:
        """The controller's exit status once its fail point killed it; None if the fleet
        settled first (or at the deadline)."""
        process = self.fleet.controller
        assert process is not None
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            try:
                return process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                rollout = self.fleet.rollout_of(revision)
                ended = rollout is not None and rollout.state is not RolloutState.RUNNING
                if ended and not violations(self.fleet, revision, expect, before):
                    return None
        return None

    def at_random(self, scenario: Scenario, window: float) -> Outcome:
        """Kill once or twice at a random moment of the rollout."""
        revision, expect, before = self._release(scenario, f"r{self.count}")
        outcome = Outcome(scenario.name)
        for _ in range(2 if self.rng.random() < 0.5 else 1):
            self.fleet.start(wait=False)
            delay = self.rng.uniform(0, window)
            time.sleep(delay)
            if self.fleet.kill(signal.SIGKILL) == -signal.SIGKILL:
                outcome.kills.append((f"after {delay:.1f}s", moment(self.fleet, revision)))
        return self._recover(scenario, revision, expect, before, outcome)

    # -- its parts ------------------------------------------------------------------------
    def _release(self, scenario: Scenario, label: str) -> tuple[str, Expect, Before]:
        self.count += 1
        self.fleet.stop_controller()
        before = look_before(self.fleet)
        version = f"{scenario.name}-{label}-{self.count}"
        revision = self.fleet.release(scenario.service, version, crash=scenario.crash)
        crash = scenario.crash
        crashes_in = frozenset(self.fleet.cells) if crash is True else frozenset(crash or ())
        return revision, Expect(scenario.state, scenario.service, version, crashes_in), before

    def _recover(
        self, scenario: Scenario, revision: str, expect: Expect, before: Before, outcome: Outcome
    ) -> Outcome:
        started = time.monotonic()
        self.fleet.start(wait=False)
        outcome.violations = self._settle(revision, expect, before)
        if not outcome.violations:
            outcome.recovery = time.monotonic() - started
        if self.fleet.controller_running:
            # a controller still starting up would outlive a `cellops down` issued now
            self.fleet.wait_ready()
        self._restore(scenario)
        return outcome

    def _settle(self, revision: str, expect: Expect, before: Before) -> list[str]:
        """[] once every invariant holds; what still does not at the deadline."""
        deadline = time.monotonic() + SETTLE
        while True:
            found = violations(self.fleet, revision, expect, before)
            if not found or time.monotonic() > deadline:
                return found
            if not self.fleet.controller_running:
                return [f"the clean controller exited:\n{self.fleet.controller_log(10)}"]
            time.sleep(0.2)

    def _restore(self, scenario: Scenario) -> None:
        """After a crashing release: its service's good app again (same content, same hash:
        cells rolled back need no change), rolled out where the release was kept."""
        if not scenario.crash:
            return
        service = scenario.service
        revision = self.fleet.release(service, self.fleet.versions[service])
        if not self.fleet.controller_running:
            self.fleet.start(wait=False)
        judged = self.fleet.store.revision
        wait_for(f"{revision[:12]} judged", lambda: judged(revision) is not None, SETTLE)
        if self.fleet.rollout_of(revision) is not None:
            self.fleet.wait_rollout(revision, RolloutState.COMPLETED, timeout=SETTLE)
        self.fleet.wait_serving(service, self.fleet.versions[service], timeout=SETTLE)

    def _trace(self) -> Path:
        return self.work / f"trace-{self.count}"


def moment(fleet: Fleet, revision: str) -> str:
    """What the rollout was doing when the controller died, in a few words."""
    rollout = fleet.rollout_of(revision)
    if rollout is None:
        return "judging the commit"
    steps = {str(step) for _, step, _ in fleet.store.cell_steps(rollout.id).values()}
    events = fleet.events(rollout=rollout.id)
    rolled = {e.cell for e in events if e.kind == "rolled-back"}
    recovered = {e.cell for e in events if e.kind == "recovered"}
    if "failed" in steps:
        return "failed cell, before its rollback"
    if rollout.state is RolloutState.HALTED:
        return "halted, recovered" if rolled <= recovered else "halted, rolled back"
    if rollout.state is not RolloutState.RUNNING:
        return str(rollout.state)
    if rolled - recovered:
        return "rolled back, not halted yet"
    if rollout.wave >= len(rollout.plan):
        return "every wave done, not completed yet"
    return f"wave {rollout.wave}: {rollout.phase}"


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _read_trace(trace: Path) -> list[tuple[int, str, float]]:
    try:
        lines = trace.read_text().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            found.append((int(parts[0]), parts[1], float(parts[2])))
    return found
