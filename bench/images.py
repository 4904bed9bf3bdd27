"""Image verification: what one image costs cold and cached, and what a wave's re-check
costs when every verdict is cached; and how long a replica takes from start to serving,
as a podman container of a busybox httpd image and as a process of the same busybox.

Against Debian's docker-registry on 127.0.0.1 (htpasswd auth), with images and cosign
signatures made here (tests/imagekit.py). Registry requests are counted by the client.
Targets: a cached verdict costs 0 requests; a 1,000-cell wave with cached verdicts, 0.

Run: .venv/bin/python bench/images.py [--cells 1000] [--services 10] [--starts 10] [--quick]
Exit status: 1 if a target is missed or a verdict is wrong.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.imagekit import LocalRegistry, new_key, public_pem, running_registry  # noqa: E402

from cellops.images.gate import WaveGate  # noqa: E402
from cellops.images.registry import Registry  # noqa: E402
from cellops.images.verify import ImageVerifier  # noqa: E402
from cellops.spec.image_policy import ImagePolicy, SignatureAuthority  # noqa: E402
from cellops.spec.service import ServiceSpec  # noqa: E402
from replica_start import start_to_ready  # noqa: E402

KEY = "keys/cosign.pub"


class NoEvents:
    def add_event(self, *args: object, **fields: object) -> None:
        raise AssertionError(f"the wave was blocked: {args}")


def fleet_of(images: list[str], cells: int, policy: ImagePolicy) -> Any:
    """What the wave gate reads of a revision: each service placed in every cell."""
    names = [f"cell-{i:04d}" for i in range(cells)]
    specs = {f"svc-{i:02d}": ServiceSpec(image=image) for i, image in enumerate(images)}
    return SimpleNamespace(
        placement={name: dict.fromkeys(names, spec) for name, spec in specs.items()},
        services={name: SimpleNamespace(spec=spec) for name, spec in specs.items()},
        fleet=SimpleNamespace(spec=SimpleNamespace(image_policy=policy)),
    ), frozenset(names)


def measure(registry: LocalRegistry, cells: int, services: int) -> int:
    key = new_key()
    images = []
    for index in range(services):
        digest = registry.push_image(f"bench/svc-{index:02d}", "1.0", note=str(index))
        registry.sign(f"bench/svc-{index:02d}", digest, key)
        images.append(f"{registry.host}/bench/svc-{index:02d}@{digest}")
    policy = ImagePolicy(signatures=[SignatureAuthority(key=KEY)])
    client = Registry(registry.credentials)
    verifier = ImageVerifier(client)
    read_key = {KEY: public_pem(key)}.__getitem__
    failures = 0
    print(f"{'measure':<38} {'requests':>9} {'ms':>9}")
    for label in ("one image, cold", "one image, cached"):
        before, started = client.requests, time.perf_counter()
        verdict = verifier.verify(images[0], policy, read_key)
        spent = (time.perf_counter() - started) * 1000
        print(f"{label:<38} {client.requests - before:>9} {spent:>9.2f}")
        failures += not verdict.ok
    revision, names = fleet_of(images, cells, policy)
    for image in images[1:]:
        verifier.verify(image, policy, read_key)
    gate = WaveGate(verifier, lambda _: revision, lambda: read_key, NoEvents())  # type: ignore[arg-type]
    before, started = client.requests, time.perf_counter()
    reason = gate("bench", names)
    spent = (time.perf_counter() - started) * 1000
    label = f"wave of {cells} cells x {services} images, cached"
    print(f"{label:<38} {client.requests - before:>9} {spent:>9.2f}")
    if reason is not None or client.requests != before:
        print(f"MISSED: the cached wave asked the registry or was blocked ({reason})")
        failures += 1
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--starts", type=int, default=10, help="replica starts to time")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, once")
    args = parser.parse_args()
    if shutil.which("docker-registry") is None:
        print("docker-registry is not installed (.ci/run installs it): nothing measured")
        return 0
    cells, services = (50, 2) if args.quick else (args.cells, args.services)
    with (
        tempfile.TemporaryDirectory(prefix="cellops-bench-images-") as tmp,
        running_registry(Path(tmp) / "registry") as registry,
    ):
        failures = measure(registry, cells, services)
        print()
        failures += start_to_ready(registry, Path(tmp), 2 if args.quick else args.starts)
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
