"""Per-fleet nftables rules that keep each local cell's processes to their own addresses.

One table per state folder, `inet cellops-<hash>`, replaced whole in one transaction. For
each cell's user (matched by `meta skuid`), on the loopback interface (where every
address of this machine is reached from itself):

- a new connection (or datagram flow) may go only to the cell's allowed addresses (its
  own, and those of the cells it consumes contracts from) and to a loopback DNS resolver
  on port 53; anything else is refused at once, like a closed port;
- every packet leaves from the cell's own address (connections to its own address get
  it as their source), and nothing else leaves: a listener of the cell that bound
  another cell's address, or 0.0.0.0, answers nothing addressed to another cell;
- no IPv6 at all (cells have IPv4 addresses).

Traffic of other users (the controller, agents, other programs) and traffic leaving the
machine are untouched.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cellops.model.errors import StartupError


@dataclass(frozen=True)
class CellRule:
    uid: int
    address: str
    reach: tuple[str, ...]  # addresses it may connect to, its own among them


class RulesError(StartupError):
    pass


def render(table: str, cells: Iterable[CellRule], resolvers: Iterable[str] = ()) -> str:
    """The nft script that replaces `table` with the rules of `cells` (deletes it if none)."""
    cells = sorted(cells, key=lambda c: c.uid)
    script = [f"table inet {table} {{}}", f"delete table inet {table}"]
    if not cells:
        return "\n".join(script) + "\n"
    dns = ", ".join(sorted(set(resolvers)))
    output, chains, nat, source = [], [], [], []
    for cell in cells:
        chain, mine = f"cell_{cell.uid}", cell.address
        output.append(f'    oif "lo" meta skuid {cell.uid} jump {chain}')
        reach = ", ".join(sorted({mine, *cell.reach}))
        chains += [f"  chain {chain} {{"]
        if dns:
            chains += [
                f"    ct state new ip daddr {{ {dns} }} meta l4proto {{ tcp, udp }}"
                " th dport 53 accept"
            ]
        chains += [
            f"    ct state new ip daddr != {{ {reach} }} reject",
            "    meta nfproto ipv6 reject",
            "  }",
        ]
        nat.append(f'    oif "lo" meta skuid {cell.uid} ip saddr != {mine} snat ip to {mine}')
        source.append(f'    oif "lo" meta skuid {cell.uid} ip saddr != {mine} drop')
    script += [
        f"table inet {table} {{",
        "  chain output {",
        "    type filter hook output priority filter; policy accept;",
        *output,
        "  }",
        *chains,
        "  chain source_nat {",
        "    type nat hook postrouting priority srcnat; policy accept;",
        *nat,
        "  }",
        "  chain own_source {",
        "    type filter hook postrouting priority srcnat + 10; policy accept;",
        *source,
        "  }",
        "}",
    ]
    return "\n".join(script) + "\n"


def install(nft: str, script: str) -> None:
    """Run an nft script as one transaction: all of it applies, or none."""
    try:
        done = subprocess.run(
            [nft, "-f", "-"], input=script, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RulesError(f"cannot run {nft}: {exc}") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise RulesError(f"{nft} refused the cells' network rules: {said[0] if said else '?'}")


def _listed(nft: str, *what: str) -> str:
    """What `nft list ...` prints (nothing if there is no such table)."""
    try:
        done = subprocess.run(
            [nft, "list", *what], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RulesError(f"cannot run {nft}: {exc}") from None
    return done.stdout


def tables(nft: str, prefix: str) -> list[str]:
    """The names of this host's `inet` tables that start with `prefix`."""
    words = (line.split() for line in _listed(nft, "tables", "inet").splitlines())
    return [
        w[2]
        for w in words
        if len(w) == 3 and w[:2] == ["table", "inet"] and w[2].startswith(prefix)
    ]


def uids(nft: str, table: str) -> set[int]:
    """The users the rules of `table` are about."""
    found = re.findall(r"\bskuid (\d+)\b", _listed(nft, "table", "inet", table))
    return {int(uid) for uid in found}


def usable(nft: str) -> str | None:
    """None if `nft` can read (and so, as root, change) this host's rules; else why not."""
    try:
        done = subprocess.run(
            [nft, "list", "tables"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{nft} cannot run ({exc})"
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        return f"{nft} cannot read this host's rules ({said[0] if said else done.returncode})"
    return None


def loopback_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> tuple[str, ...]:
    """DNS servers of this host on loopback addresses (127.0.0.53 with systemd-resolved):
    cells may still resolve names through them."""
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return ()
    found = []
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                address = ipaddress.ip_address(words[1])
            except ValueError:
                continue
            if address.version == 4 and address.is_loopback:
                found.append(str(address))
    return tuple(found)
