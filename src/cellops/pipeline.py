"""The pure stages strung together: source -> spec -> render -> diff -> plan.

`Compiler` holds the only state worth keeping between revisions, the parse cache, so that
reading a new commit re-parses only the documents that changed. The controller's reconcile
loop and the CLI both go through here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from cellops.diff import ChangeSet, Ledger, diff, ledger_of
from cellops.model.errors import RevisionRejected
from cellops.model.problems import Problem, Severity
from cellops.plan import Plan, plan
from cellops.render import DesiredFleet, render
from cellops.source.base import SnapshotSource
from cellops.spec.documents import ParseCache
from cellops.spec.loader import load_revision
from cellops.spec.revision import Revision
from cellops.tenancy.fleet import tenant_shares


@dataclass(frozen=True)
class PlanResult:
    before: Revision | None
    after: Revision
    desired: DesiredFleet
    changes: ChangeSet
    plan: Plan


Check = Callable[[Revision, DesiredFleet], list[Problem]]
Prepare = Callable[[Revision], Revision]


class Compiler:
    """`checks` run on each valid, rendered revision; any error they find rejects it (the
    edge's checks: Kubernetes schemas, which need manifests built outside the core).
    `prepare` steps run on each valid revision before it is rendered (the edge's: image
    tags pinned to digests); they raise RevisionRejected or SourceError."""

    def __init__(
        self,
        source: SnapshotSource,
        remember: int = 4,
        checks: Sequence[Check] = (),
        prepare: Sequence[Prepare] = (),
    ) -> None:
        self.source = source
        self.cache = ParseCache()
        self.checks = tuple(checks)
        self.prepare = tuple(prepare)
        # Recent revisions and their renders, by commit id: the revision planned last is
        # the `from` of the next plan, and both are immutable once computed.
        self._recent: OrderedDict[str, tuple[Revision, DesiredFleet]] = OrderedDict()
        self._remember = remember

    def revision(self, rev: str, previous: Revision | None = None) -> Revision:
        """Read and validate `rev`; raises RevisionRejected or SourceError."""
        return self._compiled(rev, previous)[0]

    def desired(self, rev: str) -> DesiredFleet:
        return self._compiled(rev, None)[1]

    def known(self, commit: str) -> DesiredFleet | None:
        """The render of `commit` (a full id) if already compiled, without compiling it or
        touching Git: safe from another thread (the API's)."""
        hit = self._recent.get(commit)
        return None if hit is None else hit[1]

    def _compiled(self, rev: str, previous: Revision | None) -> tuple[Revision, DesiredFleet]:
        commit = self.source.resolve(rev)
        hit = self._recent.get(commit)
        if hit is not None:  # `previous` only words rejections, and those are not kept
            self._recent.move_to_end(commit)
            return hit
        revision = load_revision(self.source.snapshot(commit), previous, self.cache)
        for step in self.prepare:
            revision = step(revision)
        compiled = (revision, render(revision))
        found = [p for check in self.checks for p in check(*compiled)]
        if any(p.severity is Severity.ERROR for p in found):
            raise RevisionRejected(revision.id, (*found, *revision.warnings))
        if found:  # warnings only: the revision carries them
            revision = replace(revision, warnings=(*revision.warnings, *found))
            compiled = (revision, compiled[1])
        self._recent[commit] = compiled
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)
        return compiled

    def last_valid_ancestor(self, rev: str, limit: int = 100) -> tuple[str | None, list[str]]:
        """The nearest ancestor of `rev` that validates, and the invalid ones passed over.

        A fleet keeps running its last accepted revision when a commit is rejected, so
        that ancestor, not merely the parent, is what a new commit is rolled out from.
        """
        skipped: list[str] = []
        parent = self.source.parent(rev)
        while parent is not None and len(skipped) < limit:
            try:
                self.revision(parent)
            except RevisionRejected:
                skipped.append(parent)
                parent = self.source.parent(parent)
            else:
                return parent, skipped
        return None, skipped

    def plan(self, to_rev: str, from_rev: str | None) -> PlanResult:
        """The plan that takes a fleet running `from_rev` (None: nothing) to `to_rev`."""
        before = self._compiled(from_rev, None) if from_rev is not None else None
        after, desired = self._compiled(to_rev, before[0] if before else None)
        ledger: Ledger = ledger_of(before[1]) if before is not None else {}
        return self.plan_against(after, desired, ledger, before[0] if before else None)

    def plan_against(
        self,
        after: Revision,
        desired: DesiredFleet,
        ledger: Ledger,
        before: Revision | None = None,
    ) -> PlanResult:
        """Plan `after` (rendered as `desired`) against what a ledger says was applied."""
        changes = diff(desired, ledger)
        return PlanResult(before, after, desired, changes, _plan(changes, after))


def _plan(changes: ChangeSet, revision: Revision) -> Plan:
    """The plan of `revision`, its capped waves batched by each cell's share of tenants."""
    fleet = revision.fleet
    shares = tenant_shares(fleet, revision.cells, revision.tenants)
    return plan(changes, fleet.spec.rollout, shares)
