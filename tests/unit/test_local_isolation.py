"""The pieces of local isolation that need no root: rule scripts, names, environments,
reachability, and the webhook secret's sources."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from cellops.backends.local import isolation, nftables, process, users
from cellops.backends.local.users import CellUser
from cellops.cli.controller import webhook_secret

USER = CellUser("cellops-0123456789ab", 990, 990, "/nonexistent")


def test_rules_keep_each_cell_to_its_addresses_and_its_own_source() -> None:
    script = nftables.render(
        "cellops-f00",
        [
            nftables.CellRule(991, "127.1.1.1", ("127.1.1.1",)),
            nftables.CellRule(990, "127.2.2.2", ("127.2.2.2", "127.3.3.3")),
        ],
        resolvers=("127.0.0.53",),
    )
    lines = [line.strip() for line in script.splitlines()]
    # replaced whole, in one transaction: made if missing, deleted, made again
    assert lines[:3] == [
        "table inet cellops-f00 {}",
        "delete table inet cellops-f00",
        "table inet cellops-f00 {",
    ]
    assert 'oif "lo" meta skuid 990 jump cell_990' in lines
    assert "ct state new ip daddr != { 127.2.2.2, 127.3.3.3 } reject" in lines
    assert "ct state new ip daddr != { 127.1.1.1 } reject" in lines
    assert 'oif "lo" meta skuid 991 ip saddr != 127.1.1.1 snat ip to 127.1.1.1' in lines
    assert 'oif "lo" meta skuid 991 ip saddr != 127.1.1.1 drop' in lines
    assert lines.count("meta nfproto ipv6 reject") == 2
    dns = "ct state new ip daddr { 127.0.0.53 } meta l4proto { tcp, udp } th dport 53 accept"
    assert lines.count(dns) == 2
    # resolvers come before the refusal, in each cell's chain
    assert lines.index(dns) < lines.index(
        "ct state new ip daddr != { 127.2.2.2, 127.3.3.3 } reject"
    )


def test_no_cells_means_no_table() -> None:
    assert nftables.render("cellops-f00", []) == (
        "table inet cellops-f00 {}\ndelete table inet cellops-f00\n"
    )


def test_only_loopback_resolvers_are_let_through(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "# local\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nsearch x\n"
    )
    assert nftables.loopback_resolvers(conf) == ("127.0.0.53",)
    assert nftables.loopback_resolvers(tmp_path / "missing") == ()


def test_user_names_are_per_fleet_and_cell_and_fit_useradd(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    names = {isolation.user_name(s, c) for s in (one, two) for c in ("eu-1", "us-1")}
    assert len(names) == 4
    assert all(n.startswith("cellops-") and len(n) <= 32 for n in names)
    assert isolation.user_name(one, "eu-1") == isolation.user_name(one, "eu-1")
    assert isolation.table_name(one) != isolation.table_name(two)


def test_a_replica_gets_no_secret_and_only_reachable_folders_on_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"
    (private / "bin").mkdir(parents=True)
    private.chmod(0o700)
    monkeypatch.setenv("PATH", f"{private / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("CELLOPS_WEBHOOK_SECRET", "hush")
    monkeypatch.setenv("PYTHONPATH", str(private))
    spec = {"env": {"SERVICE_NAME": "ledger"}}
    env = process.replica_env(spec, "127.1.2.3", "ledger-1", {"http": 20001}, USER)
    assert env["PATH"] == "/usr/bin:/bin" and env["HOME"] == "/nonexistent"
    assert "CELLOPS_WEBHOOK_SECRET" not in env and "PYTHONPATH" not in env
    assert (env["HOST"], env["PORT"], env["PORT_HTTP"]) == ("127.1.2.3", "20001", "20001")
    assert env["SERVICE_NAME"] == "ledger" and env["CELLOPS_REPLICA"] == "ledger-1"
    # without a user of its own, the agent's PATH as it is
    assert process.replica_env(spec, "h", "r", {}, None)["PATH"].startswith(str(private))


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user can pass through (pytest's own are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="cellops-open-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_a_program_the_cells_user_cannot_reach_is_refused_saying_why(open_folder: Path) -> None:
    tmp_path = open_folder
    private = tmp_path / "home"
    (private / "bin").mkdir(parents=True)
    program = private / "bin" / "python3"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    private.chmod(0o700)
    assert process.private_part(program) == private
    launch = process.Launch(tmp_path, {"PATH": str(private / "bin")}, USER)
    with pytest.raises(PermissionError) as caught:
        process.check_reachable("python3", launch, USER)
    assert f"{USER.name} (the cell's user) cannot run it: {private} is private" in str(caught.value)
    process.check_reachable("sh", process.Launch(tmp_path, {"PATH": "/bin"}, USER), USER)


def test_an_agent_starts_with_a_clean_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLOPS_WEBHOOK_SECRET", "hush")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hush")
    env = process.agent_env(tmp_path)
    assert set(env) <= {*process.PASSED_ENV, "CELLOPS_STATE_DIR"}
    assert env["CELLOPS_STATE_DIR"] == str(tmp_path) and env["PATH"] == os.environ["PATH"]


def test_the_webhook_secret_comes_from_one_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLOPS_WEBHOOK_SECRET", "from-env")
    assert webhook_secret("given", None) == "given"
    assert "CELLOPS_WEBHOOK_SECRET" not in os.environ  # nothing started later inherits it
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    assert webhook_secret(None, secret) == "from-file"
    with pytest.raises(typer.BadParameter, match="give the secret once"):
        webhook_secret("given", secret)
    with pytest.raises(typer.BadParameter, match="cannot read"):
        webhook_secret(None, tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(typer.BadParameter, match="is empty"):
        webhook_secret(None, tmp_path / "empty")


@pytest.fixture
def fresh_support() -> Iterator[None]:
    isolation.support.cache_clear()
    yield
    isolation.support.cache_clear()


@pytest.mark.usefixtures("fresh_support")
def test_run_as_another_user_cells_share_its_uid_and_it_is_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 65534)
    host = isolation.support()
    assert (host.users, host.network) == (False, False)
    assert "replicas share its uid" in host.note() and "not root" in host.note()


@pytest.mark.usefixtures("fresh_support")
def test_as_root_without_nft_the_open_network_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(isolation.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        isolation.shutil,
        "which",
        lambda name, path=None: None if name == "nft" else real(name, path=path),
    )
    host = isolation.support()
    if shutil.which("useradd", path=users.SBIN) is None:
        pytest.skip("this host has no useradd")
    assert (host.users, host.network) == (True, False)
    assert "nft is not installed (Debian package nftables)" in host.note()
