"""The pure stages strung together: source -> spec -> render -> diff -> plan.

`Compiler` holds the only state worth keeping between revisions, the parse cache, so that
reading a new commit re-parses only the documents that changed. The controller's reconcile
loop and the CLI both go through here.
"""

from __future__ import annotations

from dataclasses import dataclass

from cellops.diff import ChangeSet, Ledger, diff, ledger_of
from cellops.model.errors import RevisionRejected
from cellops.plan import Plan, plan
from cellops.render import DesiredFleet, render
from cellops.source.base import SnapshotSource
from cellops.spec.documents import ParseCache
from cellops.spec.loader import load_revision
from cellops.spec.revision import Revision


@dataclass(frozen=True)
class PlanResult:
    before: Revision | None
    after: Revision
    desired: DesiredFleet
    changes: ChangeSet
    plan: Plan


class Compiler:
    def __init__(self, source: SnapshotSource) -> None:
        self.source = source
        self.cache = ParseCache()

    def revision(self, rev: str, previous: Revision | None = None) -> Revision:
        """Read and validate `rev`; raises RevisionRejected or SourceError."""
        return load_revision(self.source.snapshot(rev), previous=previous, cache=self.cache)

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
        before = self.revision(from_rev) if from_rev is not None else None
        after = self.revision(to_rev, previous=before)
        ledger: Ledger = ledger_of(render(before)) if before is not None else {}
        return self.plan_against(after, ledger, before)

    def plan_against(
        self, after: Revision, ledger: Ledger, before: Revision | None = None
    ) -> PlanResult:
        desired = render(after)
        changes = diff(desired, ledger)
        return PlanResult(before, after, desired, changes, plan(changes, after.fleet.spec.rollout))
