"""Where a fleet's controller keeps its state, found from the fleet repo.

By default, per fleet repo (path or URL): `$CELLOPS_STATE_DIR`, else
`~/.local/state/cellops/<name>-<hash>` (`$XDG_STATE_HOME`). A controller started with
`--state-dir`, or on the repo's URL, or from another folder of the repo is found too: `up`
notes its state folder under `~/.local/state/cellops/known/`, by the repo's root and by its
URL, and a command run anywhere inside a clone of the repo looks there (its root, then
each remote URL in its `.git/config`). Light on purpose: every CLI command starts here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

DB = "cellops.db"


def is_url(text: str) -> bool:
    return "://" in text or bool(re.match(r"^[\w.-]+@[\w.-]+:", text))


def _base() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "cellops"


def _where(repo: str | Path) -> str:
    text = str(repo)
    return text.rstrip("/") if is_url(text) else str(Path(text).resolve())


def default_state_dir(repo: str | Path) -> Path:
    """Per fleet repo (path or URL): $CELLOPS_STATE_DIR, else
    ~/.local/state/cellops/<name>-<hash>."""
    explicit = os.environ.get("CELLOPS_STATE_DIR")
    if explicit:
        return Path(explicit)
    where = _where(repo)
    name = where.rsplit("/", 1)[-1].removesuffix(".git") or "fleet"
    digest = hashlib.sha256(where.encode()).hexdigest()[:10]
    return _base() / f"{name}-{digest}"


def _note(key: str) -> Path:
    return _base() / "known" / hashlib.sha256(key.encode()).hexdigest()[:16]


def remember(repo: str | Path, state: Path) -> None:
    """Note that the controller of `repo` keeps its state in `state` (by the repo's root
    and its remote URLs, or by the URL it was started on). Best effort."""
    keys = {_where(repo)}
    if not is_url(str(repo)):
        root = git_root(Path(repo))
        keys |= {str(root), *remotes(root)} if root is not None else set()
    for key in keys:
        with contextlib.suppress(OSError):
            path = _note(key)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(str(state.resolve()))


def find_state_dir(repo: str | Path) -> Path:
    """The state folder of `repo`'s controller: the default one if it has a store, else
    one `up` noted for the repo's root or one of its remote URLs, else the default."""
    default = default_state_dir(repo)
    if os.environ.get("CELLOPS_STATE_DIR") or (default / DB).exists():
        return default
    if is_url(str(repo)):
        keys = [_where(repo)]
    else:
        root = git_root(Path(repo))
        if root is None:
            return default
        keys = [str(root), *remotes(root)]
        if (default_state_dir(root) / DB).exists():
            return default_state_dir(root)
    for key in keys:
        with contextlib.suppress(OSError):
            noted = Path(_note(key).read_text().strip())
            if (noted / DB).exists():
                return noted
    return default


def git_root(path: Path) -> Path | None:
    """The work tree's root that `path` is in (a folder with `.git`), or None."""
    here = path.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def remotes(root: Path) -> list[str]:
    """The remote URLs in the repo's `.git/config` (a plain reading; no Git needed)."""
    try:
        text = (root / ".git" / "config").read_text()
    except OSError:
        return []
    return [m.strip().rstrip("/") for m in re.findall(r"^\s*url\s*=\s*(.+)$", text, re.M)]
