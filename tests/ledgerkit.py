"""The ledger entry a controller writes when it applies a service to a cell, for tests
that build a controller's state without running one."""

from __future__ import annotations

import time

from cellops.render import DesiredService
from cellops.render.stored import service_json
from cellops.store.sqlite import SqliteStore


def record_applied(store: SqliteStore, cell: str, name: str, service: DesiredService) -> None:
    store.set_applied(
        cell,
        name,
        rev=service.revision,
        hash_=service.hash,
        depends_on=(),
        now=time.time(),
        spec=service_json(service),
    )
