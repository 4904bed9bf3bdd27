"""The fail-point hook kills a real process (SIGKILL) at exactly the n-th hit of a point,
tells no child process about it, and does nothing at all when it is not asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cellops import failpoint

# hits a, b, a, b, a, b (one line printed after each hit), then prints a child's view of
# the variable and exits 0
PROGRAM = """
import os, subprocess, sys
from cellops import failpoint
for index, name in enumerate("ababab", start=1):
    failpoint.hit(name)
    print(index, name, flush=True)
child = "import os; print(os.environ.get('CELLOPS_FAILPOINT'))"
print("child sees", subprocess.run([sys.executable, "-c", child], capture_output=True,
      text=True).stdout.strip(), flush=True)
"""


def run(spec: str | None, trace: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLOPS_FAILPOINT")}
    if spec is not None:
        env[failpoint.VARIABLE] = spec
    if trace is not None:
        env[failpoint.TRACE_VARIABLE] = str(trace)
    return subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def printed(done: subprocess.CompletedProcess[str]) -> list[str]:
    return done.stdout.splitlines()


def test_the_nth_hit_of_a_point_kills_the_process_with_sigkill() -> None:
    done = run("a:2")  # a is hit 1st and 3rd: the process dies before printing "3 a"
    assert done.returncode == -signal.SIGKILL, done
    assert printed(done) == ["1 a", "2 b"]


def test_only_the_named_point_counts() -> None:
    done = run("b:3")  # the 3rd b is the 6th hit
    assert done.returncode == -signal.SIGKILL, done
    assert printed(done) == ["1 a", "2 b", "3 a", "4 b", "5 a"]


def test_star_counts_every_point() -> None:
    done = run("*:4")
    assert done.returncode == -signal.SIGKILL, done
    assert printed(done) == ["1 a", "2 b", "3 a"]


def test_plus_m_counts_any_point_after_the_nth_hit() -> None:
    done = run("b:1+2")  # the 1st b is the 2nd hit; two points later: the 4th
    assert done.returncode == -signal.SIGKILL, done
    assert printed(done) == ["1 a", "2 b", "3 a"]
    done = run("a:3+0")
    assert done.returncode == -signal.SIGKILL, done
    assert printed(done) == ["1 a", "2 b", "3 a", "4 b"]


def test_a_count_never_reached_changes_nothing_and_children_do_not_inherit_it() -> None:
    done = run("a:4")
    assert done.returncode == 0, done
    assert printed(done)[-1] == "child sees None"
    assert len(printed(done)) == 7


def test_the_trace_lists_every_hit_up_to_the_fatal_one(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    done = run("*:5", trace)
    assert done.returncode == -signal.SIGKILL, done
    lines = [line.split() for line in trace.read_text().splitlines()]
    assert [(n, name) for n, name, _ in lines] == [
        ("1", "a"),
        ("2", "b"),
        ("3", "a"),
        ("4", "b"),
        ("5", "a"),
    ]
    times = [float(t) for _, _, t in lines]
    assert times == sorted(times)


def test_a_trace_alone_counts_and_kills_nothing(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    done = run(None, trace)
    assert done.returncode == 0, done
    assert len(trace.read_text().splitlines()) == 6


def test_unset_it_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the variable the module holds no fail point: `hit` is one None check."""
    assert failpoint.VARIABLE not in os.environ
    assert failpoint._POINT is None

    def never(*args: object) -> None:
        raise AssertionError("hit() did something with no fail point set")

    monkeypatch.setattr(os, "kill", never)
    monkeypatch.setattr("builtins.open", never)
    for _ in range(1000):
        failpoint.hit("store.commit")


@pytest.mark.parametrize(
    "spec", ["store.commit", "store.commit:0", "store.commit:x", ":3", "a:1+", "a:1+x"]
)
def test_a_malformed_setting_says_what_is_expected(spec: str) -> None:
    with pytest.raises(ValueError, match=r"CELLOPS_FAILPOINT=.*expected <point>:<n>"):
        failpoint.parse(spec, None)
    done = run(spec)
    assert done.returncode == 1 and "expected <point>:<n>[+<m>] with n >= 1" in done.stderr
