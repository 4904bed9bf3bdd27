"""An image's verdict, as the verifier gives it and the ledger keeps it: a module of its
own, so that reading verdicts (`cellops status`) loads no registry client or crypto."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    image: str
    digest: str | None
    signer: str | None  # the key's path in the fleet repo, or the keyless identity; None
    # when no signature is required
    reason: str | None  # why the image may not run; None: it may
    at: float
    transient: bool = False  # the registry may answer later: try again

    @property
    def ok(self) -> bool:
        return self.reason is None
