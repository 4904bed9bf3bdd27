"""`cellops demo --containers`: signed images, verified before every wave, run as podman
containers in local cells.

In a temporary folder it starts a registry on 127.0.0.1 (Debian's docker-registry),
builds a busybox httpd image offline, signs it with a cosign key made for the run (its
public half in the fleet repo, named by the image policy), and rolls it through the waves
of three local cells, canary first; then a second signed release; then an image nobody
signed, which is rejected before the canary: no cell touched. It exits 0 only if every
cell still answers with the last signed release.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cellops.cli.output import Exit, console

if TYPE_CHECKING:
    from cellops.cli.demo import _Controller
    from cellops.images.build import Pusher, SigningKey
    from cellops.wiring import Wiring

REJECT_TIMEOUT = 120.0
CELLS = {"canary": "canary", "eu-1": "main", "us-1": "main"}
FLEET = """apiVersion: cellops.dev/v1
kind: Fleet
metadata: {{name: {name}}}
spec:
  rollout:
    waves:
      - {{name: canary, selector: {{ring: canary}}, bake: 2s}}
      - {{name: rest, percent: 100, maxConcurrent: 2, bake: 1s}}
    failureBudget: 0
    onFailure: rollback
    progressDeadline: 60s
  imagePolicy:
    requireDigest: true
    allowedRegistries: ["{host}"]
    signatures:
      - key: keys/cosign.pub
"""
CELL = """apiVersion: cellops.dev/v1
kind: Cell
metadata: {{name: {name}, labels: {{ring: {ring}}}}}
spec: {{backend: local}}
"""
SERVICE = """apiVersion: cellops.dev/v1
kind: Service
metadata: {{name: web}}
spec:
  image: {image}
  replicas: 2
  ports: [{{name: http, port: 8080}}]
  env: {{VERSION: "{version}"}}
  probes:
    readiness: {{http: {{path: /hello.txt, port: http}}, periodSeconds: 1}}
  resources: {{limits: {{memory: 64Mi, cpu: 500m}}}}
"""


def demo_containers(keep: bool) -> None:
    from cellops.backends.local.podman import INSTALL, missing_tools
    from cellops.images.localregistry import free_port, registry_config, serve_registry

    missing = missing_tools()
    if missing:
        console.print(f"[red]✗[/] the containers demo needs {' and '.join(missing)}: {INSTALL}")
        raise typer.Exit(Exit.SOURCE)
    workdir = Path(tempfile.mkdtemp(prefix="cellops-demo-containers-"))
    (workdir / "registry").mkdir()
    port = free_port()
    config = workdir / "registry" / "registry.yml"
    config.write_text(registry_config(workdir / "registry", port))
    with contextlib.ExitStack() as stack:
        if not keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            host = stack.enter_context(serve_registry(workdir / "registry", config, port))
        except (FileNotFoundError, RuntimeError) as exc:
            console.print(f"[red]✗[/] the registry did not start: {exc}", markup=False)
            raise typer.Exit(Exit.SOURCE) from None
        held = _run(workdir, host, keep)
    if not held:
        console.print("[red]✗ an unsigned image reached a cell, or a cell lost its release[/]")
        raise typer.Exit(Exit.REJECTED)
    console.print("[green]✓ demo complete:[/] only signed images ran; the unsigned one ran nowhere")


def _run(workdir: Path, host: str, keep: bool) -> bool:
    from cellops.cli.demo import _Controller
    from cellops.controller.reconcile import Settings
    from cellops.images.build import Pusher, new_key_pair
    from cellops.source.git import create_repository
    from cellops.store.records import RolloutState
    from cellops.wiring import wire

    key, public = new_key_pair()
    pusher = Pusher(host)
    repo, state = workdir / "fleet", workdir / "state"
    _fleet(repo, host, public)
    _release(repo, pusher, workdir, "1.0.0", key)
    create_repository(repo, "web 1.0.0, signed, in three cells")
    wiring = wire(repo, state, Settings(poll_interval=30.0))
    runner = _Controller(wiring)
    try:
        runner.start()
        console.rule("1. A signed image reaches the three cells as containers, canary first")
        runner.push_and_wait(repo, None, RolloutState.COMPLETED)
        console.rule("2. Another signed release: web 1.1.0")
        _release(repo, pusher, workdir, "1.1.0", key)
        runner.push_and_wait(repo, "web 1.1.0, signed", RolloutState.COMPLETED)
        console.rule("3. An image nobody signed: web 1.2.0")
        _release(repo, pusher, workdir, "1.2.0", None)
        held = _rejected(runner, repo)
        console.rule("4. Every cell still runs the last signed release")
        return held & _answers(wiring, "1.1.0")
    finally:
        runner.stop()
        if keep:
            console.print(f"\nThe fleet keeps running: cellops down {repo} --state-dir {state}")
        else:
            for cell in CELLS:
                wiring.local.stop(cell, workloads=True)
            wiring.close()


def _fleet(repo: Path, host: str, public: bytes) -> None:
    (repo / "cells").mkdir(parents=True)
    (repo / "keys").mkdir()
    name = f"demo-containers-{secrets.token_hex(3)}"  # addresses derive from it
    (repo / "cellops.yaml").write_text(FLEET.format(name=name, host=host))
    for cell, ring in CELLS.items():
        (repo / "cells" / f"{cell}.yaml").write_text(CELL.format(name=cell, ring=ring))
    (repo / "keys" / "cosign.pub").write_bytes(public)


def _release(
    repo: Path, pusher: Pusher, workdir: Path, version: str, key: SigningKey | None
) -> None:
    """Build and push web `version`, sign it with `key` (None: unsigned), and point the
    service at it by digest."""
    layout = workdir / "layouts" / version
    digest = pusher.image("demo/web", version, layout, f"web {version}")
    if key is not None:
        pusher.sign("demo/web", digest, key)
    image = f"{pusher.host}/demo/web:{version}@{digest}"
    signed = "signed" if key else "unsigned"
    console.print(f"  built {image} ({signed})", markup=False, soft_wrap=True)
    (repo / "services" / "web").mkdir(parents=True, exist_ok=True)
    text = SERVICE.format(image=image, version=version)
    (repo / "services" / "web" / "service.yaml").write_text(text)


def _rejected(runner: _Controller, repo: Path) -> bool:
    """Commit, wake the controller, and wait for the revision to be rejected."""
    from cellops.source.git import commit_all

    head = commit_all(repo, "web 1.2.0, unsigned")
    runner.loop.wake()
    deadline = time.time() + REJECT_TIMEOUT
    while time.time() < deadline:
        record = runner.reader.revision(head)
        if record is not None:
            for problem in record.problems:
                line = f"  rejected: {problem['file']}: {problem['message']}"
                console.print(line, markup=False, soft_wrap=True, style="red")
            if record.accepted:
                console.print("[red]✗ the unsigned image was accepted[/]")
            else:
                console.print("  no rollout started: no cell was given it, not even the canary")
            return not record.accepted
        time.sleep(0.1)
    console.print(f"[red]✗ {head[:12]} was not judged within {REJECT_TIMEOUT:.0f} s[/]")
    return False


def _answers(wiring: Wiring, version: str) -> bool:
    from cellops.spec.cell import local_address

    current = wiring.store.setting("fleet.current") or "HEAD"
    fleet = wiring.compiler.revision(current).fleet.metadata.name
    table = Table("cell", "address", "web answers", "replica (container)", "verdict")
    ok = True
    for cell, desired in sorted(wiring.compiler.desired(current).cells.items()):
        address = local_address(fleet, cell, desired.spec)
        try:
            with urllib.request.urlopen(f"http://{address}:8080/", timeout=5) as answer:
                who = json.loads(answer.read())
        except (OSError, ValueError) as exc:
            who = {"version": f"no answer: {exc}", "replica": "-"}
        fine = who.get("version") == version
        ok &= fine
        verdict = "[green]signed[/]" if fine else "[red]WRONG[/]"
        table.add_row(cell, address, str(who.get("version")), str(who.get("replica")), verdict)
    console.print(table)
    return ok
