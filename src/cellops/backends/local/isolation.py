"""How far local cells are kept apart on this machine, and the means.

As root, each cell gets its own system user, `cellops-<12 hex>` (a hash of the state
folder and the cell's name: two fleets never share one), recorded with the cell's address
in `cells/<cell>/isolation.json`. Its replicas and exec probes run as that user with no
supplementary groups; the cell's folder (records, logs, desired and observed state) stays
root's, 0700, so no cell reads another's state, nor the controller's store. The code runs
from copies published world-readable under /var/lib/cellops (apps.py: root's home, where
state folders usually are, is private). With `nft` (Debian's nftables package) the fleet also
gets network rules (see nftables.py). Otherwise every cell runs as whoever runs cellops:
this is said at `up`, in `status` and in docs/operations.md.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellops.backends.local import apps, nftables, users
from cellops.backends.local.layout import app_dir as state_app_dir
from cellops.backends.local.layout import cell_paths, read_json, write_json
from cellops.backends.local.users import CellUser, IsolationError

RECORD = "isolation.json"


@dataclass(frozen=True)
class Support:
    """What this host lets cellops enforce, and for people, what it cannot and why."""

    users: bool
    network: bool
    nft: str = ""
    gaps: tuple[str, ...] = field(default=())

    def note(self) -> str:
        return " ".join(self.gaps)


@functools.cache
def support() -> Support:
    if os.geteuid() != 0:
        try:
            who = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:  # a uid without a name (containers)
            who = f"uid {os.geteuid()}"
        return Support(
            False,
            False,
            gaps=(
                f"Cells are not isolated: cellops runs as {who}, not root, so every cell's"
                " replicas share its uid, can read each other's state and the controller's,"
                " and reach every cell's address.",
            ),
        )
    if (
        shutil.which("useradd", path=users.SBIN) is None
        or shutil.which("userdel", path=users.SBIN) is None
    ):
        return Support(
            False,
            False,
            gaps=("Cells are not isolated: useradd/userdel are missing, so replicas run as root.",),
        )
    nft = shutil.which("nft", path=users.SBIN) or ""
    why = nftables.usable(nft) if nft else "nft is not installed (Debian package nftables)"
    if why:
        gap = f"Cells' network is not isolated: {why}; any cell can reach every cell's address."
        return Support(True, False, gaps=(gap,))
    return Support(True, True, nft)


def user_name(state_root: Path, cell: str) -> str:
    digest = hashlib.sha256(f"{state_root.resolve()}\0{cell}".encode()).hexdigest()
    return f"cellops-{digest[:12]}"


TABLE_PREFIX = "cellops-"


def table_name(state_root: Path) -> str:
    return f"{TABLE_PREFIX}{apps.fleet_id(state_root)}"


def load_user(cell_root: Path) -> CellUser | None:
    """The user the cell's processes run as (for its agent), or None: not isolated."""
    record = read_json(cell_root / RECORD)
    if record is None:
        return None
    try:
        entry = pwd.getpwnam(str(record["user"]))
    except KeyError:
        raise IsolationError(f"the cell's user {record['user']} does not exist") from None
    if entry.pw_uid != record.get("uid"):
        raise IsolationError(f"{record['user']} is uid {entry.pw_uid}, not {record.get('uid')}")
    return CellUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def user_of(state_root: Path, cell: str) -> str | None:
    """The name of the user a cell runs as, as recorded (None: not isolated)."""
    record = read_json(cell_paths(state_root, cell).root / RECORD) or {}
    return str(record["user"]) if "user" in record else None


def app_dir(state_root: Path, tree_id: str) -> Path:
    """Where the copy of an app tree lives: readable by cells' users when they have some."""
    if support().users:
        return apps.apps_root(state_root) / tree_id
    return state_app_dir(state_root, tree_id)


def publish(state_root: Path, target: Path, export: Callable[[Path], None]) -> None:
    """Make the copy of an app tree at `target` (from `app_dir`) with `export`."""
    if target.is_relative_to(apps.FLEETS):
        apps.publish(state_root, target, export)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        export(target)


class Isolation:
    """The isolation of one fleet's local cells (one state folder)."""

    def __init__(self, state_root: Path) -> None:
        self.root = state_root
        self.table = table_name(state_root)

    def prepare(self, cell: str, address: str, reach: tuple[str, ...] = ()) -> CellUser | None:
        """Before a cell's agent starts: its folder private, its user made and recorded,
        the fleet's rules with this cell in them. None: this host isolates nothing."""
        folder = cell_paths(self.root, cell).root
        for path in (folder.parent, folder):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.chmod(0o700)
        if not support().users:
            return None
        user = users.ensure(user_name(self.root, cell), f"cellops {cell} {self.root.resolve()}")
        record = {"user": user.name, "uid": user.uid, "gid": user.gid, "address": address}
        write_json(folder / RECORD, {**record, "reach": list(reach)})
        self.sync()
        return user

    def forget(self, cell: str) -> None:
        """The cell's processes are gone: its rules and its user go too."""
        record = read_json(cell_paths(self.root, cell).root / RECORD)
        if record is None or not support().users:  # not root: nothing it could remove
            return
        (cell_paths(self.root, cell).root / RECORD).unlink(missing_ok=True)
        self.sync()
        users.remove(str(record["user"]))

    def release(self) -> None:
        """Every cell of the fleet is stopped (`down`): no rules, no users left."""
        for cell in sorted(p.parent.name for p in (self.root / "cells").glob(f"*/{RECORD}")):
            self.forget(cell)
        if support().network:
            nftables.install(support().nft, nftables.render(self.table, []))

    def restore(self) -> None:
        """At controller start: the fleet's rules as its records say (a reboot or a firewall
        reload dropped them), and users whose state folder is gone removed."""
        if support().users:
            # tables first: a uid in a dead fleet's table, once its user is removed and
            # the uid reused by another fleet's cell, would cut that cell off
            collect_orphan_tables()
            users.collect_orphans()
            apps.collect_orphans()
        self.sync()

    def sync(self) -> None:
        """The fleet's table, as the cells' records say (one transaction)."""
        if not support().network:
            return
        rules = [
            nftables.CellRule(int(r["uid"]), str(r["address"]), tuple(r.get("reach", ())))
            for r in self._records()
        ]
        script = nftables.render(self.table, rules, nftables.loopback_resolvers())
        nftables.install(support().nft, script)

    def _records(self) -> list[dict[str, Any]]:
        found = (read_json(path) for path in sorted((self.root / "cells").glob(f"*/{RECORD}")))
        return [r for r in found if r is not None]


def collect_orphan_tables() -> list[str]:
    """Remove the rule tables of fleets whose state folder is gone (deleted without
    `down`): no uid in the table is a user of that fleet any more. The names removed."""
    if not support().network:
        return []
    gone = []
    for table in nftables.tables(support().nft, TABLE_PREFIX):
        if not any(_serves(uid, table) for uid in nftables.uids(support().nft, table)):
            nftables.install(support().nft, nftables.render(table, []))
            gone.append(table)
    return gone


def _serves(uid: int, table: str) -> bool:
    """`uid` is a live cell user of the fleet whose table this is (a user whose comment
    names no folder, or no other user, is given the benefit of the doubt)."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return False
    words = entry.pw_gecos.split(" ", 2)
    if len(words) < 3 or words[0] != "cellops":
        return True
    state = Path(words[2])
    return state.exists() and table_name(state) == table


def describe(state_root: Path) -> dict[str, Any]:
    """What the controller could enforce for this fleet, as it recorded at `up`."""
    return read_json(state_root / RECORD) or {}


def announce(state_root: Path) -> str:
    """Record, for `status`, what this host lets cellops enforce; the note to show at `up`."""
    host = support()
    write_json(
        state_root / RECORD,
        {"users": host.users, "network": host.network, "note": host.note()},
    )
    return host.note()
