"""The `cellops` command: the fast path or the typer app, and errors mapped to exit codes.

Nothing here imports typer: `fast.py` runs a plain invocation of an everyday command
without it, and only what it cannot take goes to the typer app (`app.py`).
"""

from __future__ import annotations

import contextlib
import os
import sys

# pydantic looks for plugins in the entry points of every installed distribution at the
# first model it builds, for plugins cellops never uses. A user who wants one (say, to
# instrument cellops' models) sets the variable themselves.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from cellops.cli.fast import run_fast
from cellops.cli.output import Exit, errors
from cellops.model.errors import CellopsError, SourceError, StartupError


def main() -> None:
    try:
        if not _fast(sys.argv[1:]):
            from cellops.cli.app import app

            app()
    except (SourceError, StartupError) as exc:
        errors.print(f"✗ {exc}", markup=False)
        raise SystemExit(Exit.SOURCE) from None
    except CellopsError as exc:
        errors.print(f"✗ {exc}", markup=False)
        raise SystemExit(Exit.REJECTED) from None
    except Exception as exc:
        sqlite3 = sys.modules.get("sqlite3")  # not loaded: not one of its errors either
        if sqlite3 is None or not isinstance(exc, sqlite3.Error):
            raise
        # the store failed after it opened (damage deeper in it)
        errors.print(
            f'✗ the controller\'s store failed: {exc}: see docs/operations.md, "Store faults"',
            markup=False,
        )
        raise SystemExit(Exit.SOURCE) from None


def _fast(argv: list[str]) -> bool:
    """`run_fast`, ended as typer ends a command: Ctrl-C is exit 130 and a reader that
    went away (`| head`) exit 1, each without a traceback."""
    try:
        return run_fast(argv)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:
        # nothing more reaches the reader, nor a complaint when Python flushes at exit
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
