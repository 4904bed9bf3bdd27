"""Which process is the controller: `up --detach` reports the one it started, probing
never takes the lock, `down` signals nothing else, and the webhook secret reaches the
controller without being on its command line or in anyone's environment."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from cellops.backends.local.layout import cell_paths, read_json
from cellops.backends.local.process import start_time
from cellops.controller import process
from tests.integration.controller_harness import Fleet, ServiceDef, pid_alive, wait_for

pytestmark = pytest.mark.slow


def _fleet(tmp_path: Path, *services: ServiceDef) -> Fleet:
    tag = hashlib.sha256(str(tmp_path).encode()).hexdigest()[:5]
    return Fleet(tmp_path, f"p{tag}", services, regions=())


def _detach(fleet: Fleet, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    args = ["up", "--detach", str(fleet.repo.path), "--state-dir", str(fleet.state), *extra]
    environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "cellops.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def _reported_pid(done: subprocess.CompletedProcess[str]) -> int:
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"controller running \(pid (\d+)", done.stdout)
    assert found, done.stdout
    return int(found.group(1))


def _lock_holder(state: Path) -> int | None:
    """Who holds the controller lock, as the kernel says (not through the code tested)."""
    inode = (state / "controller.lock").stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            return int(fields[4])
    return None


# Loaded by the controllers the test starts: each holds its lock for a second before going
# on, as one with a big store or a remote repo to open does.
SLOW_START = """
import time
from cellops.controller import process

_lock = process.lock


def _slow_lock(state):
    handle = _lock(state)
    time.sleep(1.0)
    return handle


process.lock = _slow_lock
"""


def test_up_detach_after_kill_9_reports_the_controller_it_started(tmp_path: Path) -> None:
    """The record a killed controller leaves names a dead pid with `ready`: never taken for
    the new controller's success, however long the new one takes to get ready."""
    fleet = _fleet(tmp_path)
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW_START)
    path = os.pathsep.join(filter(None, [str(tmp_path / "slow"), os.environ.get("PYTHONPATH")]))
    killed: list[int] = []
    try:
        for _ in range(3):
            pid = _reported_pid(_detach(fleet, "--poll", "0.2s", PYTHONPATH=path))
            assert pid not in killed, f"reported the killed controller {pid} again"
            assert pid_alive(pid) and _lock_holder(fleet.state) == pid
            os.kill(pid, signal.SIGKILL)
            wait_for("the killed controller to let go", lambda: not _lock_holder(fleet.state), 10)
            killed.append(pid)
    finally:
        leftovers = fleet.down()
    assert not leftovers, leftovers


PROBE_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cellops.controller import process
    state, stop = Path(sys.argv[1]), Path(sys.argv[2])
    print("probing", flush=True)
    while not stop.exists():
        process.running_pid(state)
    """
)


def test_probing_for_the_controller_never_takes_its_lock(tmp_path: Path) -> None:
    """Another process asking who runs (as `up --detach` does while its child starts)
    never makes a controller's own lock attempt fail."""
    state, stop = tmp_path / "state", tmp_path / "stop"
    process.lock(state).close()
    prober = subprocess.Popen(
        [sys.executable, "-c", PROBE_LOOP, str(state), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert prober.stdout is not None and prober.stdout.readline().strip() == "probing"
        refused = 0
        for _ in range(3000):
            try:
                process.lock(state).close()
            except process.AlreadyRunning:
                refused += 1
        assert refused == 0, f"{refused} of 3000 lock attempts lost to a mere probe"
    finally:
        stop.touch()
        prober.wait(timeout=30)


HOLDER = textwrap.dedent(
    """
    import fcntl, sys, time
    handle = open(sys.argv[1], "a+")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("holding", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("stale", ["another process", "a reused pid"])
def test_down_never_signals_a_process_that_is_not_its_controller(
    tmp_path: Path, stale: str
) -> None:
    """The lock is held, but the records name someone else (a pid reused since a crash),
    or the holder with another start time: `down` refuses, and signals nobody."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state / "controller.lock")],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    bystander = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        named = bystander.pid if stale == "another process" else holder.pid
        started = start_time(named) if stale == "another process" else 1
        for record in ("controller.json", "controller.lock"):
            (state / record).write_text(json.dumps({"pid": named, "started": started}))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cellops.cli.main",
                "down",
                str(tmp_path),
                "--state-dir",
                str(state),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3, done.stdout + done.stderr
        assert f"held by pid {holder.pid}, which is not recorded" in done.stderr, done.stderr
        assert bystander.poll() is None and holder.poll() is None
    finally:
        for child in (holder, bystander):
            child.kill()
            child.wait(timeout=10)


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def _push(port: int, secret: str) -> int:
    body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook",
        data=body,
        method="POST",
        headers={"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


@pytest.mark.parametrize("given", ["file", "environment"])
def test_the_webhook_secret_is_in_no_command_line_and_no_environment(
    tmp_path: Path, given: str
) -> None:
    fleet = _fleet(tmp_path, ServiceDef("web", 8080))  # on an address of this test's own
    secret = "s3cret-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    (tmp_path / "secret").write_text(secret + "\n")
    extra = ["--webhook", "0", "--poll", "0.2s"]
    try:
        if given == "file":
            done = _detach(fleet, *extra, "--webhook-secret-file", str(tmp_path / "secret"))
        else:
            done = _detach(fleet, *extra, CELLOPS_WEBHOOK_SECRET=secret)
        pid = _reported_pid(done)
        port = int(str((read_json(fleet.state / "controller.json") or {})["webhook"]))
        assert _push(port, secret) in (200, 202)  # the controller has the secret
        canary = f"{fleet.prefix}-canary"
        agent = wait_for(
            "the canary's agent",
            lambda: (read_json(cell_paths(fleet.state, canary).pidfile) or {}).get("pid"),
            30,
        )
        for who in (pid, int(agent)):
            assert secret.encode() not in _environ(who), f"pid {who} has it in its environment"
            assert secret.encode() not in Path(f"/proc/{who}/cmdline").read_bytes()
        assert b"CELLOPS_WEBHOOK_SECRET" not in _environ(int(agent))
    finally:
        leftovers = fleet.down()
    assert not leftovers, leftovers


# Loaded by the `down` the next test starts: tearing each cell down waits for a go-ahead,
# as stopping many cells with slow workloads does.
SLOW_TEARDOWN = """
import os, time
from pathlib import Path
from cellops.backends.local import backend

_stop = backend.LocalCells.stop


def _slow_stop(self, cell, workloads=False):
    go = Path(os.environ["TEARDOWN_GO"])
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return _stop(self, cell, workloads=workloads)


backend.LocalCells.stop = _slow_stop
"""


def test_no_controller_starts_while_down_tears_the_cells_down(tmp_path: Path) -> None:
    """`down` holds the controller lock until every cell and its rules are gone: an `up`
    (or a second `down`) arriving meanwhile is refused with who is stopping the fleet,
    instead of starting cells that `down` is removing."""
    state = tmp_path / "state"
    (state / "cells" / "a").mkdir(parents=True, mode=0o700)
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "sitecustomize.py").write_text(SLOW_TEARDOWN)
    go = tmp_path / "go"
    path = os.pathsep.join(filter(None, [str(tmp_path / "slow"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "TEARDOWN_GO": str(go), "NO_COLOR": "1"}
    cli = [sys.executable, "-m", "cellops.cli.main"]
    down = subprocess.Popen(
        [*cli, "down", str(tmp_path), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert down.stdout is not None
        assert "controller was not running" in down.stdout.readline()
        for args in (["up", "--detach"], ["down"]):
            refused = subprocess.run(
                [*cli, *args, str(tmp_path), "--state-dir", str(state)],
                capture_output=True,
                text=True,
                timeout=60,
                env={**env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                check=False,
            )
            assert refused.returncode == 3, refused.stdout + refused.stderr
            assert f"`cellops down` (pid {down.pid})" in refused.stderr, refused.stderr
        assert _lock_holder(state) == down.pid
    finally:
        go.touch()
        out = down.communicate(timeout=60)[0]
    assert down.returncode == 0, out
    assert _lock_holder(state) is None
