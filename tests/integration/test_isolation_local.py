"""Escapes tried from inside a replica, as an attacker who owns one would: its HTTP handler
tries them and says what it got. As root (these machines, CI), every one must fail: the
cell runs as a user of its own, behind network rules of its fleet.

A fleet of two cells (canary, a1) runs one service, `spy`; the canary's replica is asked
to read the other cell's state and the controller's store, connect to the other cell's
raw replica port, answer as the other cell's address, and read the controller's and its
agent's environment (the controller was given a webhook secret by the environment).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cellops.backends.local.layout import cell_paths, read_json
from cellops.store.records import RolloutState
from tests.integration.controller_harness import CELLOPS, PYTHON, Fleet, ServiceDef

NFT = shutil.which("nft", path="/usr/local/sbin:/usr/sbin:/sbin")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="cells get users of their own only as root"),
]

SPY = r'''
"""Tries escapes on request and reports; its exec probe reports its own environment."""
import json, os, socket, sys, threading, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return type(exc).__name__


def read(path):
    if os.path.isdir(path):
        os.listdir(path)
    else:
        with open(path, "rb") as handle:
            handle.read(1)


def connect(target):
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3):
        pass


def squat(host):
    """Listen on another cell's address; say `spy` to whoever connects."""
    server = socket.create_server((host, 0))
    def serve():
        connection, _ = server.accept()
        connection.sendall(b"spy")
        connection.close()
    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as handle:
        handle.read()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        ask = json.loads(urllib.parse.parse_qs(url.query).get("q", ["{}"])[0])
        answer = {"uid": os.getuid(), "secret": "CELLOPS_WEBHOOK_SECRET" in os.environ}
        answer["read"] = {p: attempt(lambda p=p: read(p)) for p in ask.get("read", [])}
        answer["connect"] = {t: attempt(lambda t=t: connect(t)) for t in ask.get("connect", [])}
        answer["environ"] = {p: attempt(lambda p=p: environ(p)) for p in ask.get("environ", [])}
        if ask.get("squat"):
            answer["squat"] = squat(ask["squat"])
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
'''

PROBE = r"""
import json, os, sys
report = {"uid": os.getuid(), "env": sorted(os.environ),
          "secret": any("CELLOPS_WEBHOOK_SECRET" in k for k in os.environ)}
name = os.path.join(sys.argv[1], f"probe-{os.getpid()}.json")
with open(name, "w") as handle:
    json.dump(report, handle)
"""

PORT = 8080


class Spied:
    """The running fleet, and what a test needs to aim the spy."""

    def __init__(self, fleet: Fleet, reports: Path, secret: str) -> None:
        self.fleet, self.reports, self.secret = fleet, reports, secret
        self.canary, self.other = f"{fleet.prefix}-canary", f"{fleet.prefix}-a1"

    def address(self, cell: str) -> str:
        return str((read_json(cell_paths(self.fleet.state, cell).desired) or {})["address"])

    def pods(self, cell: str) -> list[dict[str, Any]]:
        status = read_json(cell_paths(self.fleet.state, cell).status) or {}
        return list(status["services"]["spy"]["pods"])

    def ask(self, **question: object) -> dict[str, Any]:
        query = urllib.parse.urlencode({"q": json.dumps(question)})
        url = f"http://{self.address(self.canary)}:{PORT}/?{query}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def spied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spied]:
    root = tmp_path_factory.mktemp("isolation")
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:5]
    fleet = Fleet(root, f"i{tag}", [ServiceDef("spy", PORT)], regions=("a",))
    reports = Path(tempfile.mkdtemp(prefix="cellops-probe-reports-"))
    reports.chmod(0o1777)  # the probes, as the cells' users, write here
    fleet.repo.write("services/spy/app/server.py", SPY)
    fleet.repo.write("services/spy/app/probe.py", PROBE)
    fleet.repo.replace(
        "services/spy/service.yaml",
        "  replicas: 1\n",
        "  replicas: 1\n"
        "  probes:\n"
        "    readiness:\n"
        f"      exec: {{command: [{PYTHON}, -I, -S, probe.py, {reports}]}}\n"
        "      periodSeconds: 1\n",
    )
    fleet.head = fleet.repo.commit("a spy in every cell")
    secret = "hush-" + tag
    environment = {**os.environ, "CELLOPS_WEBHOOK_SECRET": secret, "NO_COLOR": "1"}
    args = [CELLOPS, "up", str(fleet.repo.path), "--state-dir", str(fleet.state), "--no-view"]
    try:
        with open(root / "controller.out", "ab") as log:
            fleet.controller = subprocess.Popen(
                [*args, "--poll", "0.2s", "--webhook", "0"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        fleet.wait_ready()
        fleet.wait_rollout(fleet.head, RolloutState.COMPLETED, timeout=60)
        yield Spied(fleet, reports, secret)
    finally:
        leftovers = fleet.down()
        shutil.rmtree(reports, ignore_errors=True)
    assert not leftovers, f"processes outlived `cellops down`: {leftovers}"


def test_a_replica_cannot_read_another_cells_state_nor_the_controllers(spied: Spied) -> None:
    state = spied.fleet.state
    other, mine = cell_paths(state, spied.other), cell_paths(state, spied.canary)
    targets = [
        state / "cellops.db",  # the ledger: reading it is the first step to writing it
        state / "controller.json",
        other.root,
        other.status,
        other.desired,
        mine.status,  # its own cell's records too: the agent keeps them, not the replicas
        state / "cells",
    ]
    answer = spied.ask(read=[str(t) for t in targets])
    assert answer["read"] == {str(t): "PermissionError" for t in targets}, answer
    assert answer["uid"] != 0


def test_a_replica_reaches_only_its_own_cells_address(spied: Spied) -> None:
    if NFT is None:
        pytest.skip("nft is not installed (Debian package nftables): no network rules")
    other = spied.address(spied.other)
    raw = spied.pods(spied.other)[0]["ports"]["http"]
    webhook = spied.fleet.record()["webhook"]
    mine = f"{spied.address(spied.canary)}:{PORT}"
    targets = [f"{other}:{raw}", f"{other}:{PORT}", f"127.0.0.1:{webhook}"]
    answer = spied.ask(connect=[mine, *targets])
    assert answer["connect"] == {mine: "ok", **dict.fromkeys(targets, "ConnectionRefusedError")}

    # a listener on another cell's address answers no one there
    port = spied.ask(squat=other)["squat"]
    with socket.socket() as client:
        client.settimeout(3)
        try:
            client.connect((other, port))
            heard = client.recv(3)
        except OSError:
            heard = b""
    assert heard != b"spy", "a replica answered as another cell's address"


def test_a_replica_cannot_read_the_controllers_environment(spied: Spied) -> None:
    controller = spied.fleet.record()["pid"]
    agent = (read_json(cell_paths(spied.fleet.state, spied.canary).pidfile) or {})["pid"]
    answer = spied.ask(environ=[controller, agent])
    assert answer["environ"] == {
        str(controller): "PermissionError",
        str(agent): "PermissionError",
    }, answer
    assert answer["secret"] is False
    # the controller was given it by its environment; nothing it started inherits it
    assert b"CELLOPS_WEBHOOK_SECRET" not in Path(f"/proc/{agent}/environ").read_bytes()


def test_exec_probes_run_as_the_replica_with_its_environment(spied: Spied) -> None:
    reports = [json.loads(p.read_text()) for p in sorted(spied.reports.glob("probe-*.json"))]
    assert reports, "no exec probe ran"
    for report in reports:
        assert report["secret"] is False, report
        assert {"HOST", "PORT", "CELLOPS_REPLICA", "CELLOPS_CELL"} <= set(report["env"]), report
    uids = {pwd.getpwnam(u).pw_uid for u in _cell_users(spied.fleet)}
    assert {r["uid"] for r in reports} == uids  # every cell's probes, each as its cell's user


def _cell_users(fleet: Fleet) -> list[str]:
    return [
        str((read_json(cell_paths(fleet.state, cell).root / "isolation.json") or {})["user"])
        for cell in fleet.cells
    ]


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def test_each_cell_runs_as_its_own_user_and_down_removes_users_and_rules(
    tmp_path: Path,
) -> None:
    from cellops.backends.local.isolation import table_name

    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:5]
    fleet = Fleet(tmp_path, f"u{tag}", [ServiceDef("web", PORT)], regions=("a",))
    table = table_name(fleet.state)
    try:
        fleet.start()
        fleet.wait_rollout(fleet.head, RolloutState.COMPLETED, timeout=60)
        users = _cell_users(fleet)
        assert len(set(users)) == len(fleet.cells) and all(u.startswith("cellops-") for u in users)
        for cell, user in zip(fleet.cells, users, strict=True):
            status = read_json(cell_paths(fleet.state, cell).status) or {}
            pids = [p["pid"] for p in status["services"]["web"]["pods"]]
            assert pids and all(_uid_of(pid) == pwd.getpwnam(user).pw_uid for pid in pids)
            assert cell_paths(fleet.state, cell).root.stat().st_mode & 0o777 == 0o700
        if NFT is not None:
            assert table in _tables()
        where = (fleet.repo.path, "--state-dir", fleet.state)
        shown = json.loads(fleet.cli("status", *where, "-o", "json").stdout)["isolation"]
        assert shown == {"users": True, "network": NFT is not None, "note": shown["note"]}
        # what a controller run as another user records, `status` says under its table
        note = "Cells are not isolated: cellops runs as alice, not root, so every cell's..."
        record = {"users": False, "network": False, "note": note}
        (fleet.state / "isolation.json").write_text(json.dumps(record))
        assert note in fleet.cli("status", *where).stdout
    finally:
        leftovers = fleet.down()
    assert not leftovers, leftovers
    assert table not in _tables()
    for user in users:
        with pytest.raises(KeyError):
            pwd.getpwnam(user)


def _tables() -> str:
    if NFT is None:
        return ""
    return subprocess.run(
        [NFT, "list", "tables"], capture_output=True, text=True, check=True
    ).stdout


def test_users_whose_state_folder_is_gone_are_collected(tmp_path: Path) -> None:
    """A state folder removed without `cellops down` leaves its cells' users behind;
    the next controller started as root removes them (there are under 1000 system uids)."""
    from cellops.backends.local import users

    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:10]
    kept, orphan = f"cellops-k{tag}", f"cellops-o{tag}"
    try:
        users.ensure(kept, f"cellops eu-1 {tmp_path}")
        users.ensure(orphan, f"cellops eu-1 {tmp_path / 'removed'}")
        removed = users.collect_orphans()  # (another run's controller may collect it first)
        assert kept not in removed
        pwd.getpwnam(kept)
        with pytest.raises(KeyError):
            pwd.getpwnam(orphan)
    finally:
        users.remove(kept)
        users.remove(orphan)


def test_app_copies_are_readable_by_any_user_and_go_with_their_state_folder(
    tmp_path: Path,
) -> None:
    from cellops.backends.local import apps

    state = tmp_path / "state"
    state.mkdir()
    target = apps.apps_root(state) / "0123abcd"

    def export(there: Path) -> None:
        (there / "lib").mkdir(parents=True)
        (there / "lib" / "code.py").write_text("print('hi')\n")
        (there / "lib" / "code.py").chmod(0o444)

    apps.publish(state, target, export)
    assert (target / "lib" / "code.py").read_text() == "print('hi')\n"
    assert [p.stat().st_mode & 0o777 for p in (target, target / "lib")] == [0o755, 0o755]
    for folder in target.parents:  # passable by anyone, listable by no one
        if folder == apps.FLEETS.parent.parent:
            break
        assert folder.stat().st_mode & 0o777 == 0o711, folder
    assert [p.name for p in target.parent.iterdir()] == ["0123abcd"]  # no staging left

    assert target.parent.parent not in apps.collect_orphans()  # its state folder is there
    shutil.rmtree(state)
    apps.collect_orphans()  # (another run's controller may collect it first)
    assert not target.parent.parent.exists()


def test_the_rules_of_a_fleet_whose_state_folder_is_gone_are_collected(tmp_path: Path) -> None:
    """A state folder removed without `cellops down` leaves its table behind. Once its
    users are collected, their uids are free for the next fleet's cells; the old table
    still naming one would cut that cell off from its own address (its replies dropped).
    The next controller started as root removes the dead fleet's table with its users,
    and leaves a live fleet's alone."""
    if NFT is None:
        pytest.skip("nft is not installed (Debian package nftables): no network rules")
    from cellops.backends.local import isolation

    dead, live = tmp_path / "dead", tmp_path / "live"
    fleets = {folder: isolation.Isolation(folder) for folder in (dead, live)}
    made = []
    try:
        for index, fleet in enumerate(fleets.values()):
            user = fleet.prepare("eu-1", f"127.77.{os.getpid() % 250}.{index + 1}")
            assert user is not None and fleet.table in _tables()
            made.append(user.name)
        shutil.rmtree(dead)
        fleets[live].restore()  # what `cellops up` does first
        assert fleets[dead].table not in _tables()
        with pytest.raises(KeyError):
            pwd.getpwnam(made[0])
        assert fleets[live].table in _tables()
        pwd.getpwnam(made[1])
    finally:
        fleets[live].release()
        dead.mkdir(exist_ok=True)
        fleets[dead].release()
