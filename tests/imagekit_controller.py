"""Signed images through the real controller: a local fleet started with Docker credentials
for the tests' registry, and what a rejected commit must leave alone (shared by the
key-signed and keyless controller tests)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cellops.store.records import RolloutState
from tests.imagekit import PASSWORD, USER, LocalRegistry
from tests.integration.controller_harness import Fleet, wait_for


@contextmanager
def started(fleet: Fleet, registry: LocalRegistry, folder: Path) -> Iterator[Fleet]:
    """`fleet` started with a Docker config.json (in `folder`) holding the tests'
    credentials for `registry`, its first rollout completed; brought down after, leaving
    nothing behind."""
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    try:
        fleet.start(env={"DOCKER_CONFIG": str(folder)})
        fleet.wait_rollout(fleet.head, RolloutState.COMPLETED)
        yield fleet
    finally:
        leftovers = fleet.down()
        assert not leftovers, leftovers


def rejected_untouched(fleet: Fleet, commit: str, image: str) -> str:
    """Commits `commit` (a message) and waits for it to be judged: rejected at the service's
    file, naming `image`, the fleet's current revision, every cell's desired state and
    the events unchanged but for the rejection. The rejection's message."""
    good = fleet.head
    before = {c: fleet.desired_file(c).read_bytes() for c in fleet.cells}
    mark = fleet.last_event_id()
    bad = fleet.commit(commit)
    record: Any = wait_for("the revision to be judged", lambda: fleet.store.revision(bad), 30)
    assert not record.accepted
    [problem] = record.problems
    assert problem["file"] == "services/web/service.yaml"
    message = str(problem["message"])
    assert message.startswith(f"{image} cannot run: ")
    assert fleet.store.setting("fleet.current") == good
    assert fleet.rollout_of(bad) is None
    assert {c: fleet.desired_file(c).read_bytes() for c in fleet.cells} == before
    touched = [e for e in fleet.events(after=mark) if e.kind != "revision-rejected"]
    assert not touched, touched
    return message
