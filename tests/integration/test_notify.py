"""Notifications against a real receiver on 127.0.0.1: signed bodies, a receiver down and
then up (retried with back-off, every attempt recorded), a bad secret refused for good."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from cellops.model.errors import StartupError
from cellops.notify.config import Target, load_targets
from cellops.notify.notifier import Notifier
from cellops.store.sqlite import SqliteStore
from tests.integration.controller_harness import wait_for
from tests.integration.notify_receiver import Receiver

pytestmark = pytest.mark.slow


def _store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "cellops.db")


def _deliveries(store: SqliteStore) -> list[tuple[int, str, int, int | None, int]]:
    rows = store._all(
        "SELECT event, target, attempt, status, delivered FROM notify_deliveries ORDER BY id"
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _notifier(store: SqliteStore, *targets: Target, attempts: int = 6) -> Notifier:
    notifier = Notifier(
        store_path(store), targets, fleet="f", attempts=attempts, base=0.05, cap=0.4, poll=0.05
    )
    notifier.start()
    return notifier


def store_path(store: SqliteStore) -> Path:
    return Path(store._db.execute("PRAGMA database_list").fetchone()[2])


def test_signed_json_and_slack_bodies_and_only_notified_kinds(tmp_path: Path) -> None:
    store, receiver = _store(tmp_path), Receiver("s3cret")
    store.add_event(1.0, "rollout-started", "before the notifier started")
    notifier = _notifier(
        store,
        Target("generic", receiver.url, "s3cret"),
        Target(
            "slack", receiver.url, "s3cret", format="slack", events=frozenset({"rollout-halted"})
        ),
    )
    try:
        store.add_event(2.0, "applied", "not notified", cell="c1")
        store.add_event(3.0, "rollout-halted", "halted (c1 failed)", revision="a" * 40, rollout=7)
        wait_for("two deliveries", lambda: len(receiver.accepted) == 2, timeout=20)
    finally:
        notifier.stop()
        receiver.close()
    generic, slack = receiver.accepted
    assert generic["body"]["kind"] == "rollout-halted" and generic["body"]["rollout"] == 7
    assert generic["body"]["title"] == "rollout halted" and generic["body"]["at"].endswith("Z")
    assert generic["headers"]["X-Cellops-Event"] == "rollout-halted"
    assert slack["body"] == {"text": "cellops (f): rollout halted: halted (c1 failed)"}
    assert [d[4] for d in _deliveries(store)] == [1, 1]  # history before the start: not sent


def test_receiver_down_then_up_is_retried_with_back_off(tmp_path: Path) -> None:
    store, port = _store(tmp_path), _free_port()
    # enough tries that a busy machine's pause never exhausts them before the receiver is up
    target = Target("late", f"http://127.0.0.1:{port}/hook", "k")
    notifier = _notifier(store, target, attempts=200)
    receiver = None
    try:
        store.add_event(1.0, "drift", "c1/web: replica restarted", cell="c1")
        wait_for("failed attempts", lambda: len(_deliveries(store)) >= 2, timeout=20)
        receiver = Receiver("k", port=port)
        wait_for("the delivery", lambda: receiver.accepted, timeout=20)
    finally:
        notifier.stop()
        if receiver is not None:
            receiver.close()
    attempts = _deliveries(store)
    assert attempts[-1][4] == 1 and attempts[-1][2] == len(attempts)  # the last try worked
    assert all(a[4] == 0 and a[3] is None for a in attempts[:-1])  # connection refused
    assert receiver.kinds() == ["drift"]


def test_a_bad_secret_is_refused_by_the_receiver_and_not_retried(tmp_path: Path) -> None:
    store, receiver = _store(tmp_path), Receiver("the-right-one")
    notifier = _notifier(store, Target("wrong", receiver.url, "a-wrong-one"))
    try:
        store.add_event(1.0, "revision-rejected", "abc rejected", revision="abc")
        store.add_event(2.0, "rollout-started", "def: 2 wave(s)", revision="def")
        wait_for("both refused", lambda: len(_deliveries(store)) == 2, timeout=20)
    finally:
        notifier.stop()
        receiver.close()
    assert receiver.refused == 2 and not receiver.accepted
    assert [(d[2], d[3], d[4]) for d in _deliveries(store)] == [(1, 401, 0), (1, 401, 0)]


def test_targets_come_from_a_file_or_the_environment_never_with_the_secret_inline(
    tmp_path: Path,
) -> None:
    config = tmp_path / "notify.yaml"
    config.write_text(
        json.dumps({"targets": [{"name": "a", "url": "https://x.example/h", "secretEnv": "S"}]})
    )
    (target,) = load_targets(config, {"S": "from-env"})
    assert target.secret == "from-env" and "from-env" not in repr(target)
    (env,) = load_targets(None, {"CELLOPS_NOTIFY_URL": "http://h/x", "CELLOPS_NOTIFY_SECRET": "z"})
    assert env.secret == "z" and env.format == "json"
    assert load_targets(None, {}) == []
    config.write_text(json.dumps({"targets": [{"url": "https://x/h", "secret": "inline"}]}))
    with pytest.raises(StartupError, match=r"notify.yaml: targets\[0\].secret: not in the file"):
        load_targets(config, {})
    config.write_text(json.dumps({"targets": [{"url": "ftp://x"}]}))
    with pytest.raises(StartupError, match=r"targets\[0\].url: expected an http"):
        load_targets(config, {})
